/* virtio-rng (virtio 1.x section 5.4): each chain's writable buffers filled with random bytes. */
#include "devices/virtio/rng.h"
#include "vmm/base/clock.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

/* No request asks for more than this: the guest's hwrng reads are small, and a huge one would stall
 * the loop. */
#define RNG_MAX_PER_CHAIN (64 * 1024)

static void rng_config_read(struct virtio_dev *d, uint32_t off, uint8_t *data, uint32_t len)
{
	(void)d;
	(void)off;
	memset(data, 0, len); /* no config space: config_len is 0, so never reached */
}

static int rng_activate(struct virtio_dev *d)
{
	(void)d;
	return 0;
}

/* Fills @len bytes; getrandom() returns at most 32 MiB at once and may be interrupted. */
static int fill(uint8_t *p, uint32_t len)
{
	while (len) {
		ssize_t n = getrandom(p, len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		p += n;
		len -= (uint32_t)n;
	}
	return 0;
}

static uint32_t serve_chain(struct virtio_rng *r, const struct virtqueue_chain *c)
{
	uint32_t done = 0;

	for (unsigned i = c->nreadable; i < c->nsegs && done < RNG_MAX_PER_CHAIN; i++) {
		uint32_t n = c->segs[i].len;
		if (n > RNG_MAX_PER_CHAIN - done)
			n = RNG_MAX_PER_CHAIN - done;
		if (fill(c->segs[i].hva, n))
			break;
		done += n;
	}
	r->bytes += done;
	return done;
}

static uint32_t request_bytes(const struct virtqueue_chain *c)
{
	return c->writable_len < RNG_MAX_PER_CHAIN ? (uint32_t)c->writable_len : RNG_MAX_PER_CHAIN;
}

/* Over the limit: the chain stays popped and held until the timer lets it go. */
static bool throttled(struct virtio_rng *r)
{
	uint64_t now = (uint64_t)clock_now_ns(), bytes = request_bytes(&r->chain);

	if (ratelimit_unlimited(&r->limit) || ratelimit_consume(&r->limit, bytes, 1, now))
		return false;
	r->held = true;
	r->throttled++;
	ratelimit_timer_arm(&r->timer, ratelimit_wait_ns(&r->limit, bytes, 1, now));
	return true;
}

static void rng_notify(struct virtio_dev *d, unsigned q)
{
	struct virtio_rng *r = (struct virtio_rng *)d;
	struct virtqueue *vq = &d->vqs[q];
	unsigned budget = VIRTIO_DEV_BUDGET;
	int n = 0;

	if (r->held)
		return; /* the timer resumes */
	r->chain = (struct virtqueue_chain){ .segs = r->segs, .max = VIRTIO_RNG_SEGS };
	do {
		while (budget && (n = virtqueue_pop(vq, &r->chain)) == 1 && !throttled(r)) {
			virtqueue_push(vq, r->chain.head, serve_chain(r, &r->chain));
			budget--;
		}
		if (r->held)
			break;
		if (!budget) {
			/* The rest on a later turn: the loop serves everything else first. */
			virtio_dev_kick_later(d, q);
			break;
		}
		if (n == 0)
			n = virtqueue_set_avail_event(vq);
	} while (n == 1);
	if (n < 0)
		virtio_dev_needs_reset(d, (int)q, n);
	virtio_dev_used(d, q);
}

/* On the loop: the held chain may go now. */
static void on_limit_timer(void *arg)
{
	struct virtio_rng *r = arg;
	struct virtqueue *vq = &r->dev.vqs[0];

	virtio_dev_lock(&r->dev);
	if (r->held && virtio_dev_active(&r->dev)) {
		r->held = false;
		if (!throttled(r)) {
			virtqueue_push(vq, r->chain.head, serve_chain(r, &r->chain));
			rng_notify(&r->dev, 0);
		}
	}
	virtio_dev_unlock(&r->dev);
}

static void rng_reset(struct virtio_dev *d)
{
	/* Nothing in flight but a held chain, which the reset drops. The timer finds it gone. */
	((struct virtio_rng *)d)->held = false;
}

static const struct virtio_dev_ops rng_ops = {
	.config_read = rng_config_read,
	.activate = rng_activate,
	.queue_notify = rng_notify,
	.reset = rng_reset,
};

void virtio_rng_init(struct virtio_rng *r, const struct rate_limiter *limiter, struct loop *loop)
{
	memset(r, 0, sizeof(*r));
	ratelimit_init(&r->limit, limiter ? limiter : &(struct rate_limiter){ 0 },
	               (uint64_t)clock_now_ns());
	ratelimit_timer_init(&r->timer, loop, on_limit_timer, r);
	r->dev = (struct virtio_dev){ .ops = &rng_ops,
		                      .name = "virtio-rng",
		                      .device_id = VIRTIO_ID_RNG,
		                      .nqueues = 1,
		                      .queue_max = 256 };
}

void virtio_rng_destroy(struct virtio_rng *r)
{
	ratelimit_timer_cancel(&r->timer);
}
