/* virtio-blk (virtio 1.x section 5.2): requests parsed at the boundary, I/O on the workers. */
#include "devices/virtio/blk.h"
#include "vmm/base/clock.h"
#include "vmm/base/log.h"

#include <errno.h>
#include <stdarg.h>
#include <linux/fs.h>
#include <linux/virtio_blk.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#define SECTOR 512ULL

static void __attribute__((format(printf, 2, 3)))
guest_error(struct virtio_blk *b, const char *fmt, ...)
{
	char why[160];
	va_list ap;

	b->errors++;
	if (!log_ratelimit_ok(&b->rl))
		return;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	log_warn("%s: %s", b->dev.name, why);
}

static void blk_config_read(struct virtio_dev *d, uint32_t off, uint8_t *data, uint32_t len)
{
	struct virtio_blk *b = (struct virtio_blk *)d;
	struct virtio_blk_config cfg = { .capacity = b->capacity,
		                         .size_max = VIRTIO_BLK_SIZE_MAX,
		                         .seg_max = VIRTIO_BLK_SEG_MAX };

	memcpy(data, (uint8_t *)&cfg + off, len); /* off + len <= config_len: the transport */
}

static int blk_activate(struct virtio_dev *d)
{
	(void)d;
	return 0;
}

/* Copies up to @len bytes from the chain's readable segments, from the start. */
static uint32_t gather(const struct virtqueue_chain *c, void *dst, uint32_t len)
{
	uint32_t done = 0;

	for (unsigned i = 0; i < c->nreadable && done < len; i++) {
		uint32_t n = c->segs[i].len < len - done ? c->segs[i].len : len - done;
		memcpy((uint8_t *)dst + done, c->segs[i].hva, n);
		done += n;
	}
	return done;
}

/*
 * The data part of a request as iovecs: for a write the readable bytes after the
 * 16-byte header, for a read (or GET_ID) the writable bytes before the status byte.
 * Returns the iovec count, or -E2BIG past VIRTIO_BLK_SEG_MAX.
 */
static int data_iov(const struct virtqueue_chain *c, bool writable, struct iovec *iov,
                    uint64_t *total)
{
	uint64_t skip = writable ? 0 : sizeof(struct virtio_blk_outhdr);
	uint64_t keep = writable ? c->writable_len - 1 : c->readable_len - skip;
	unsigned first = writable ? c->nreadable : 0, last = writable ? c->nsegs : c->nreadable;
	int n = 0;

	*total = keep;
	for (unsigned i = first; i < last && keep; i++) {
		uint8_t *p = c->segs[i].hva;
		uint64_t len = c->segs[i].len;
		if (skip >= len) {
			skip -= len;
			continue;
		}
		p += skip;
		len -= skip;
		skip = 0;
		if (len > keep)
			len = keep;
		if (n == VIRTIO_BLK_SEG_MAX)
			return -E2BIG;
		iov[n++] = (struct iovec){ p, len };
		keep -= len;
	}
	return n;
}

static struct virtio_blk_req *req_get(struct virtio_blk *b)
{
	for (unsigned i = 0; i < VIRTIO_BLK_QUEUE_SIZE; i++)
		if (!b->reqs[i].busy) {
			b->reqs[i].busy = true;
			return &b->reqs[i];
		}
	return NULL;
}

/* Answers the request now: status byte, used ring. */
static void finish(struct virtio_blk *b, struct virtio_blk_req *r, uint8_t status)
{
	*r->status = status;
	if (status != VIRTIO_BLK_S_OK)
		r->written = 1; /* nothing the driver may use but the status */
	virtqueue_push(&b->dev.vqs[0], r->head, r->written);
	r->busy = false;
}

/* The requested range lies inside the disk: sector and length overflow-checked. */
static bool in_disk(const struct virtio_blk *b, uint64_t sector, uint64_t len)
{
	return sector <= b->capacity && len <= (b->capacity - sector) * SECTOR;
}

/* Status values of a request not answered yet. */
#define STATUS_RUN  0xff /* parsed: run it */
#define STATUS_NONE 0xfe /* no status byte to answer with: used length 0 */

/*
 * Checks the chain as request @type and lays out its data in r->iov. Returns STATUS_RUN,
 * or the status to answer with at once.
 */
static uint8_t parse_data(struct virtio_blk *b, struct virtio_blk_req *r,
                          const struct virtqueue_chain *c)
{
	bool in = r->type == VIRTIO_BLK_T_IN || r->type == VIRTIO_BLK_T_GET_ID;
	int n = r->type == VIRTIO_BLK_T_FLUSH ? 0 : data_iov(c, in, r->iov, &r->want);

	if (n < 0) {
		guest_error(b, "request of more than %u segments", VIRTIO_BLK_SEG_MAX);
		return VIRTIO_BLK_S_IOERR;
	}
	r->iovcnt = (unsigned)n;
	if (r->type == VIRTIO_BLK_T_FLUSH || r->type == VIRTIO_BLK_T_GET_ID)
		return STATUS_RUN;
	if (r->want > VIRTIO_BLK_REQ_MAX) {
		guest_error(
		        b, "request of %llu bytes: more than the %u segments of %u bytes announced",
		        (unsigned long long)r->want, VIRTIO_BLK_SEG_MAX, VIRTIO_BLK_SIZE_MAX);
		return VIRTIO_BLK_S_IOERR;
	}
	if (r->want % SECTOR || !in_disk(b, r->sector, r->want)) {
		guest_error(b,
		            "%s of %llu bytes at sector %llu: outside the disk's %llu sectors "
		            "or not whole sectors",
		            in ? "read" : "write", (unsigned long long)r->want,
		            (unsigned long long)r->sector, (unsigned long long)b->capacity);
		return VIRTIO_BLK_S_IOERR;
	}
	return STATUS_RUN;
}

/* One chain: header, data, status byte, all checked before anything is done. */
static uint8_t parse(struct virtio_blk *b, struct virtio_blk_req *r,
                     const struct virtqueue_chain *c)
{
	const struct virtqueue_seg *last = &c->segs[c->nsegs - 1];
	struct virtio_blk_outhdr h;

	r->head = c->head;
	r->written = 1;
	r->want = 0;
	if (gather(c, &h, sizeof(h)) < sizeof(h) || !c->writable_len) {
		guest_error(b, "request without a 16-byte header or a status byte");
		return STATUS_NONE;
	}
	r->status = (uint8_t *)last->hva + last->len - 1;
	r->type = h.type;
	r->sector = h.sector;
	switch (h.type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_GET_ID:
		return parse_data(b, r, c);
	case VIRTIO_BLK_T_OUT:
		return b->read_only ? VIRTIO_BLK_S_IOERR : parse_data(b, r, c);
	case VIRTIO_BLK_T_FLUSH:
		return b->flush ? parse_data(b, r, c) : VIRTIO_BLK_S_UNSUPP;
	default:
		return VIRTIO_BLK_S_UNSUPP;
	}
}

static uint8_t get_id(struct virtio_blk *b, struct virtio_blk_req *r)
{
	size_t id_len = strnlen(b->id, VIRTIO_BLK_ID_BYTES), done = 0;

	for (unsigned i = 0; i < r->iovcnt && done < id_len; i++) {
		size_t k = r->iov[i].iov_len < id_len - done ? r->iov[i].iov_len : id_len - done;
		memcpy(r->iov[i].iov_base, b->id + done, k);
		done += k;
	}
	r->written = (uint32_t)done + 1;
	return VIRTIO_BLK_S_OK;
}

/* Runs a parsed request: GET_ID at once, the rest on the I/O engine. */
static void execute(struct virtio_blk *b, struct virtio_blk_req *r)
{
	bool in = r->type == VIRTIO_BLK_T_IN;

	if (r->type == VIRTIO_BLK_T_GET_ID) {
		finish(b, r, get_id(b, r));
		return;
	}
	/* Checked when parsed, but a request the limiter held may meet a smaller new image. */
	if (r->type != VIRTIO_BLK_T_FLUSH && !in_disk(b, r->sector, r->want)) {
		guest_error(b,
		            "request at sector %llu: outside the disk's %llu sectors since the "
		            "image was swapped",
		            (unsigned long long)r->sector, (unsigned long long)b->capacity);
		finish(b, r, VIRTIO_BLK_S_IOERR);
		return;
	}
	r->io = (struct blk_io_req){ .op = in                            ? BLK_IO_READ
		                           : r->type == VIRTIO_BLK_T_OUT ? BLK_IO_WRITE
		                                                         : BLK_IO_FLUSH,
		                     .offset = r->sector * SECTOR,
		                     .iov = r->iov,
		                     .iovcnt = r->iovcnt,
		                     .cookie = r };
	r->written = (uint32_t)(in ? r->want + 1 : 1);
	r->generation = b->generation;
	if (blk_io_submit(b->io, &r->io))
		finish(b, r, VIRTIO_BLK_S_IOERR);
	else
		b->inflight++;
}

/*
 * The rate limiter: one op and the data bytes per request. A request over the limit is
 * held (popped, not run) and the device takes nothing more until the timer lets it go.
 */
static bool throttled(struct virtio_blk *b, struct virtio_blk_req *r)
{
	uint64_t bytes = r->type == VIRTIO_BLK_T_GET_ID ? 0 : r->want;
	uint64_t now = (uint64_t)clock_now_ns();

	if (ratelimit_unlimited(&b->limit) || ratelimit_consume(&b->limit, bytes, 1, now))
		return false;
	b->held = r;
	b->throttled++;
	ratelimit_timer_arm(&b->timer, ratelimit_wait_ns(&b->limit, bytes, 1, now));
	return true;
}

static void serve(struct virtio_blk *b, struct virtio_blk_req *r, const struct virtqueue_chain *c)
{
	uint8_t status = parse(b, r, c);

	if (status == STATUS_NONE) {
		virtqueue_push(&b->dev.vqs[0], c->head, 0);
		r->busy = false;
	} else if (status != STATUS_RUN) {
		finish(b, r, status);
	} else if (!throttled(b, r)) {
		execute(b, r);
	}
}

static void blk_notify(struct virtio_dev *d, unsigned q)
{
	struct virtio_blk *b = (struct virtio_blk *)d;
	struct virtqueue *vq = &d->vqs[q];
	struct virtqueue_chain c = { .segs = b->segs, .max = VIRTIO_BLK_SEG_MAX + 2 };
	struct virtio_blk_req *r = NULL;
	unsigned budget = VIRTIO_DEV_BUDGET;
	int n = 0;

	if (b->held || b->next_fd >= 0)
		return; /* the rate limiter's timer resumes, or the swapped-in image taking over */
	do {
		/* A slot first, then the chain: a popped chain always has somewhere to go. */
		while (budget && !b->held && (r = req_get(b)) && (n = virtqueue_pop(vq, &c)) == 1) {
			serve(b, r, &c);
			budget--;
		}
		if (b->held)
			break;
		if (!budget) {
			/* The rest on a later turn: the loop serves everything else first. */
			virtio_dev_kick_later(d, q);
			break;
		}
		if (!r) {
			b->stalled = true; /* every slot in flight: the next completion resumes */
			break;
		}
		r->busy = false;
		if (n == 0)
			n = virtqueue_set_avail_event(vq);
	} while (n == 1);
	if (n < 0)
		virtio_dev_needs_reset(d, (int)q, n);
	virtio_dev_used(d, q);
}

/* With the lock: the held request tries the limiter again, then the queue goes on. */
static void retry_held(struct virtio_blk *b)
{
	struct virtio_blk_req *r = b->held;

	if (r && virtio_dev_active(&b->dev)) {
		b->held = NULL;
		if (!throttled(b, r))
			execute(b, r);
		virtio_dev_used(&b->dev, 0);
		blk_notify(&b->dev, 0);
	}
}

/* On the loop: the rate limiter lets the held request try again. */
static void on_limit_timer(void *arg)
{
	struct virtio_blk *b = arg;

	virtio_dev_lock(&b->dev);
	retry_held(b);
	virtio_dev_unlock(&b->dev);
}

/*
 * With the lock, no request on the engine: the swapped-in image takes over, the driver
 * hears of its size, and the chains that waited for it are served.
 */
static void switch_image(struct virtio_blk *b)
{
	int r = blk_io_set_fd(b->io, b->next_fd), old = b->own_fd;

	if (r) { /* a bug (nothing is in flight by our count): the old image serves on */
		log_error("%s: cannot switch to the new image: %s", b->dev.name, strerror(-r));
		close(b->next_fd);
		b->next_fd = -1;
		if (virtio_dev_active(&b->dev))
			blk_notify(&b->dev, 0);
		return;
	}
	log_info("%s: the new image took over: %llu sectors (were %llu)", b->dev.name,
	         (unsigned long long)b->next_capacity, (unsigned long long)b->capacity);
	b->own_fd = b->next_fd;
	b->next_fd = -1;
	b->capacity = b->next_capacity;
	b->swaps++;
	if (old >= 0)
		close(old); /* no worker holds it: nothing was in flight */
	virtio_dev_config_changed(&b->dev);
	if (virtio_dev_active(&b->dev)) {
		b->stalled = false;
		blk_notify(&b->dev, 0);
	}
}

/* A completion not made stale by a reset: to the guest, if the device still runs. */
static void answer(struct virtio_blk *b, struct virtio_blk_req *r, const struct blk_io_req *io)
{
	bool ok = io->result >= 0 && (uint64_t)io->result == r->want;

	virtio_dev_lock(&b->dev);
	if (r->generation != b->generation || !virtio_dev_active(&b->dev)) {
		r->busy = false;
	} else {
		if (!ok)
			guest_error(b, "%s at byte %llu failed: %s",
			            io->op == BLK_IO_READ    ? "read"
			            : io->op == BLK_IO_WRITE ? "write"
			                                     : "flush",
			            (unsigned long long)io->offset,
			            io->result < 0 ? strerror((int)-io->result) : "short transfer");
		b->reads += io->op == BLK_IO_READ;
		b->writes += io->op == BLK_IO_WRITE;
		b->flushes += io->op == BLK_IO_FLUSH;
		finish(b, r, ok ? VIRTIO_BLK_S_OK : VIRTIO_BLK_S_IOERR);
		virtio_dev_used(&b->dev, 0);
		if (b->stalled) {
			b->stalled = false;
			blk_notify(&b->dev, 0);
		}
	}
	virtio_dev_unlock(&b->dev);
}

/* On the loop, for every request the engine finished. */
static void on_done(void *arg, struct blk_io_req *io)
{
	struct virtio_blk_req *r = io->cookie;
	struct virtio_blk *b = arg;

	b->inflight--; /* loop thread only, as every change of it */
	if (io->stale)
		r->busy = false; /* the device was reset: the guest no longer waits for it */
	else
		answer(b, r, io);
	/* The last request on the old image is done: the swapped-in one takes over. */
	if (!b->inflight && b->next_fd >= 0) {
		virtio_dev_lock(&b->dev);
		switch_image(b);
		virtio_dev_unlock(&b->dev);
	}
}

/* Under the lock, maybe on a vCPU thread: no worker touches guest memory after this. */
static void blk_reset(struct virtio_dev *d)
{
	struct virtio_blk *b = (struct virtio_blk *)d;

	b->generation++;
	b->stalled = false;
	if (b->held)
		b->held->busy = false; /* never run: the driver no longer waits for it */
	b->held = NULL;
	blk_io_cancel(b->io);
}

static const struct virtio_dev_ops blk_ops = {
	.config_read = blk_config_read,
	.activate = blk_activate,
	.queue_notify = blk_notify,
	.reset = blk_reset,
};

static int image_size(int fd, uint64_t *bytes)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (S_ISBLK(st.st_mode))
		return ioctl(fd, BLKGETSIZE64, bytes) < 0 ? -errno : 0;
	*bytes = (uint64_t)st.st_size;
	return 0;
}

/* The image's size in whole sectors, what the guest sees; problems logged. */
static int image_sectors(const struct virtio_blk *b, int fd, uint64_t *sectors)
{
	uint64_t bytes;
	int r = image_size(fd, &bytes);

	if (r) {
		log_error("%s: cannot size the image: %s", b->dev.name, strerror(-r));
		return r;
	}
	if (bytes % SECTOR)
		log_warn("%s: the image is %llu bytes, not whole 512-byte sectors: the last %llu "
		         "bytes are out of the guest's reach",
		         b->dev.name, (unsigned long long)bytes,
		         (unsigned long long)(bytes % SECTOR));
	*sectors = bytes / SECTOR;
	return 0;
}

int virtio_blk_init(struct virtio_blk *b, const struct virtio_blk_options *o)
{
	int r;

	memset(b, 0, sizeof(*b));
	b->own_fd = b->next_fd = -1;
	b->rl = (struct log_ratelimit){ .burst = 10 };
	snprintf(b->dev.name, sizeof(b->dev.name), "virtio-blk %s", MSG_ESC(o->id));
	snprintf(b->id, sizeof(b->id), "%s", o->id);
	b->read_only = o->read_only;
	b->flush = o->flush;
	r = image_sectors(b, o->fd, &b->capacity);
	if (r)
		return r;
	b->dev.ops = &blk_ops;
	b->dev.device_id = VIRTIO_ID_BLOCK;
	b->dev.features = VIRTIO_FEATURE(VIRTIO_BLK_F_SEG_MAX) |
	                  VIRTIO_FEATURE(VIRTIO_BLK_F_SIZE_MAX) |
	                  (o->read_only ? VIRTIO_FEATURE(VIRTIO_BLK_F_RO) : 0) |
	                  (o->flush ? VIRTIO_FEATURE(VIRTIO_BLK_F_FLUSH) : 0);
	b->dev.nqueues = 1;
	b->dev.queue_max = VIRTIO_BLK_QUEUE_SIZE;
	b->dev.config_len = sizeof(struct virtio_blk_config);
	for (unsigned i = 0; i < VIRTIO_BLK_QUEUE_SIZE; i++)
		b->reqs[i].blk = b;
	ratelimit_init(&b->limit, o->limiter ? o->limiter : &(struct rate_limiter){ 0 },
	               (uint64_t)clock_now_ns());
	ratelimit_timer_init(&b->timer, o->loop, on_limit_timer, b);
	b->image_fd = o->fd;
	b->loop = o->loop;
	return o->defer_io ? 0 : virtio_blk_start(b, NULL);
}

int virtio_blk_start(struct virtio_blk *b, const struct sysfilter *filter)
{
	int r;

	if (b->io)
		return 0;
	r = blk_io_open(&b->io, b->image_fd, b->loop, VIRTIO_BLK_THREADS, filter, on_done, b);
	if (r)
		log_error("%s: cannot start its I/O threads: %s", b->dev.name, strerror(-r));
	return r;
}

void virtio_blk_destroy(struct virtio_blk *b)
{
	ratelimit_timer_cancel(&b->timer);
	/* A swap still waiting never takes over: the transport and its lock are gone. */
	if (b->next_fd >= 0)
		close(b->next_fd);
	b->next_fd = -1;
	blk_io_close(b->io); /* completions not delivered come back stale: nothing to lock */
	b->io = NULL;
	if (b->own_fd >= 0)
		close(b->own_fd); /* after the workers are gone */
	b->own_fd = -1;
}

int virtio_blk_set_image(struct virtio_blk *b, int fd)
{
	uint64_t sectors;
	int r = image_sectors(b, fd, &sectors);

	if (r)
		return r;
	virtio_dev_lock(&b->dev);
	if (b->next_fd >= 0)
		close(b->next_fd); /* swapped again before it took over: the newest wins */
	b->next_fd = fd;
	b->next_capacity = sectors;
	/* Else the last completion on the old image switches (on_done). */
	if (!b->inflight)
		switch_image(b);
	virtio_dev_unlock(&b->dev);
	return 0;
}

void virtio_blk_set_limiter(struct virtio_blk *b, const struct rate_limiter *l)
{
	virtio_dev_lock(&b->dev);
	ratelimit_update(&b->limit, l, (uint64_t)clock_now_ns());
	/* The held request waited for the old limits: the new ones decide now. */
	if (ratelimit_timer_armed(&b->timer)) {
		ratelimit_timer_cancel(&b->timer);
		retry_held(b);
	}
	virtio_dev_unlock(&b->dev);
}
