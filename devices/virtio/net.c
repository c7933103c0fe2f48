/* virtio-net over a TAP: the vnet header passes through, every frame is served on the loop. */
#include "devices/virtio/net.h"
#include "vmm/base/clock.h"
#include "vmm/base/log.h"
#include "vmm/base/loop.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <linux/virtio_net.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

_Static_assert(sizeof(struct virtio_net_hdr_v1) == VIRTIO_NET_HDR_LEN, "vnet header size");

/* Chains served per callback before the loop runs other work (QEMU's TX_BURST). */
#define NET_BURST 256
/* Where num_buffers sits in struct virtio_net_hdr_v1. */
#define HDR_NUM_BUFFERS 10

#define F(bit) VIRTIO_FEATURE(VIRTIO_NET_F_##bit)
/* What the TAP takes from any writer, so what the guest may always send. */
#define HOST_FEATURES                                                                              \
	(F(CSUM) | F(HOST_TSO4) | F(HOST_TSO6) | F(HOST_UFO) | F(MRG_RXBUF) | F(STATUS))

static void __attribute__((format(printf, 2, 3)))
guest_error(struct virtio_net *n, const char *fmt, ...)
{
	char why[200];
	va_list ap;

	if (!log_ratelimit_ok(&n->rl))
		return;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	log_warn("%s: %s", n->dev.name, why);
}

static bool acked(const struct virtio_net *n, unsigned bit)
{
	return n->dev.acked & VIRTIO_FEATURE(bit);
}

/* ---- The TAP ---- */

static int tap_setiff_failed(const char *who, const char *name, int err, bool existed)
{
	const char *why;

	switch (err) {
	case EBUSY:
		why = "is busy: another process (or another interface of this VM) has it open";
		break;
	case EPERM:
		why = existed ? "is not flint's to use: permission denied (it belongs to another "
		                "user or group, or flint lacks CAP_NET_ADMIN)"
		              : "does not exist, and creating it needs CAP_NET_ADMIN";
		break;
	case EINVAL:
		why = "exists but is not a TAP flint can attach to (a TUN, a multi-queue TAP, or "
		      "another kind of interface)";
		break;
	default:
		why = NULL;
	}
	if (why)
		log_error("%s: TAP %s %s", who, MSG_ESC(name), why);
	else
		log_error("%s: cannot attach to TAP %s: %s", who, MSG_ESC(name), strerror(err));
	return -err;
}

static int tap_open(const char *who, const char *name, int *out)
{
	struct ifreq ifr = { .ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR };
	int hdr = VIRTIO_NET_HDR_LEN, fd, err;
	bool existed = if_nametoindex(name) != 0;

	if (strlen(name) >= IFNAMSIZ) {
		log_error("%s: TAP %s: the name is longer than %d bytes", who, MSG_ESC(name),
		          IFNAMSIZ - 1);
		return -EINVAL;
	}
	/* TUNSETIFF would create a missing TAP (as root): a network nobody set up. Refuse. */
	if (!existed) {
		log_error("%s: TAP %s does not exist: create it first (ip tuntap add %s mode tap)",
		          who, MSG_ESC(name), MSG_ESC(name));
		return -ENODEV;
	}
	fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		err = errno;
		log_error("%s: TAP %s: cannot open /dev/net/tun: %s", who, MSG_ESC(name),
		          err == ENOENT ? "it does not exist (no tun driver?)" : strerror(err));
		return -err;
	}
	memcpy(ifr.ifr_name, name, strlen(name) + 1);
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		err = errno;
		close(fd);
		return tap_setiff_failed(who, name, err, existed);
	}
	/* The guest's header is 12 bytes (virtio 1.x): the TAP must read and write as many. */
	if (ioctl(fd, TUNSETVNETHDRSZ, &hdr) < 0) {
		err = errno;
		close(fd);
		log_error("%s: TAP %s: cannot set its vnet header size: %s", who, MSG_ESC(name),
		          strerror(err));
		return -err;
	}
	*out = fd;
	return 0;
}

int virtio_net_open_tap(const char *name, int *fd)
{
	return tap_open("virtio-net", name, fd);
}

/*
 * The guest receive offloads the TAP takes (TSO needs CSUM there too). Then none until the
 * driver says which it takes: a persistent TAP may keep a previous user's.
 */
static unsigned tap_probe_offloads(int fd)
{
	static const unsigned tries[] = {
		TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_UFO,
		TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6,
		TUN_F_CSUM,
	};

	for (unsigned i = 0; i < sizeof(tries) / sizeof(tries[0]); i++)
		if (ioctl(fd, TUNSETOFFLOAD, tries[i]) == 0) {
			(void)ioctl(fd, TUNSETOFFLOAD, 0);
			return tries[i];
		}
	return 0; /* not a TAP (a test's socket), or one that offloads nothing */
}

static uint64_t guest_features(unsigned tap)
{
	uint64_t f = 0;

	if (tap & TUN_F_CSUM)
		f |= F(GUEST_CSUM);
	if (tap & TUN_F_TSO4)
		f |= F(GUEST_TSO4);
	if (tap & TUN_F_TSO6)
		f |= F(GUEST_TSO6);
	if (tap & TUN_F_UFO)
		f |= F(GUEST_UFO);
	return f;
}

/* TSO and UFO frames come with partial checksums: without GUEST_CSUM, none of them. */
static unsigned wanted_offloads(const struct virtio_net *n)
{
	unsigned o;

	if (!acked(n, VIRTIO_NET_F_GUEST_CSUM))
		return 0;
	o = TUN_F_CSUM;
	if (acked(n, VIRTIO_NET_F_GUEST_TSO4))
		o |= TUN_F_TSO4;
	if (acked(n, VIRTIO_NET_F_GUEST_TSO6))
		o |= TUN_F_TSO6;
	if (acked(n, VIRTIO_NET_F_GUEST_UFO))
		o |= TUN_F_UFO;
	return o & n->tap_offloads;
}

/* ---- Loop-side plumbing ---- */

static void on_readable(int fd, int events, void *arg);
static void on_writable(int fd, int events, void *arg);
static void on_resume(void *arg);
static void on_mmds_timer(void *arg);

/* The stack's timer, moved to its next deadline; none when nothing is in flight. */
static void mmds_timer_update(struct virtio_net *n)
{
	long long at = n->mmds ? net_mmds_deadline(n->mmds) : 0, wait;

	if (at == n->mmds_timer_at && (n->mmds_timer || !at))
		return;
	loop_remove(n->mmds_timer);
	n->mmds_timer = NULL;
	n->mmds_timer_at = 0;
	if (!at)
		return;
	wait = at - clock_now_ns();
	/* Rounded up: a timer that fires early would find nothing due and be armed again. */
	n->mmds_timer = loop_add_timer(n->loop, wait > 0 ? (uint64_t)(wait + 999) / 1000 : 1, false,
	                               on_mmds_timer, n);
	if (!n->mmds_timer)
		log_error("%s: cannot arm the MMDS timer: out of memory", n->dev.name);
	else
		n->mmds_timer_at = at;
}
static void rx_run(struct virtio_net *n);

/* The RX watch is on only while the guest has buffers: a readable TAP must not spin. */
static void rx_watch(struct virtio_net *n, bool on)
{
	if (on && !n->rx_watch) {
		n->rx_watch = loop_add_fd(n->loop, n->fd, LOOP_READ, on_readable, n);
		if (!n->rx_watch)
			log_error("%s: cannot watch the TAP: out of memory", n->dev.name);
	} else if (!on && n->rx_watch) {
		loop_remove(n->rx_watch);
		n->rx_watch = NULL;
	}
}

/* The rest of a burst, once the loop served everything else that was ready. */
static void resume_later(struct virtio_net *n)
{
	if (!n->resume && !(n->resume = loop_add_timer(n->loop, 0, false, on_resume, n)))
		log_error("%s: cannot schedule more work: out of memory", n->dev.name);
}

/*
 * 1 with a chain, 0 when none is left: then asks the driver (avail_event) to kick for the
 * next one, and looks once more for a chain that came meanwhile.
 */
static int pop_or_wait(struct virtqueue *vq, struct virtqueue_chain *c)
{
	int r = virtqueue_pop(vq, c);

	if (r == 0 && (r = virtqueue_set_avail_event(vq)) == 1)
		r = virtqueue_pop(vq, c);
	return r;
}

/*
 * Takes tokens for @bytes from @rl, all or nothing; when there are not enough, arms @t for
 * when there will be. true: go ahead.
 */
static bool admit(struct virtio_net *n, struct ratelimit *rl, struct ratelimit_timer *t,
                  uint64_t bytes)
{
	uint64_t now;

	if (ratelimit_unlimited(rl))
		return true;
	now = (uint64_t)clock_now_ns();
	if (ratelimit_consume(rl, bytes, 1, now))
		return true;
	if (ratelimit_timer_arm(t, ratelimit_wait_ns(rl, bytes, 1, now)))
		log_error("%s: cannot arm its rate limiter timer: out of memory", n->dev.name);
	return false;
}

/* ---- TX: guest to TAP ---- */

/* Copies @len readable bytes of @c from offset @off to @dst: each guest byte is read once. */
static void chain_read_from(const struct virtqueue_chain *c, uint32_t off, uint8_t *dst,
                            uint32_t len)
{
	for (unsigned i = 0; i < c->nreadable && len; i++) {
		uint32_t k;
		if (off >= c->segs[i].len) {
			off -= c->segs[i].len;
			continue;
		}
		k = c->segs[i].len - off < len ? c->segs[i].len - off : len;
		memcpy(dst, (const uint8_t *)c->segs[i].hva + off, k);
		dst += k;
		len -= k;
		off = 0;
	}
}

static void chain_read(const struct virtqueue_chain *c, uint8_t *dst, uint32_t len)
{
	chain_read_from(c, 0, dst, len);
}

/* The header as copied: what the driver may ask of the TAP is what it negotiated. */
static const char *tx_header_bad(const struct virtio_net *n)
{
	const struct virtio_net_hdr_v1 *h = (const void *)n->tx_hdr;

	if ((h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) && !acked(n, VIRTIO_NET_F_CSUM))
		return "asks for a checksum without VIRTIO_NET_F_CSUM";
	switch (h->gso_type) {
	case VIRTIO_NET_HDR_GSO_NONE:
		return NULL;
	case VIRTIO_NET_HDR_GSO_TCPV4:
		return acked(n, VIRTIO_NET_F_HOST_TSO4) ? NULL : "is TSO4 without HOST_TSO4";
	case VIRTIO_NET_HDR_GSO_TCPV6:
		return acked(n, VIRTIO_NET_F_HOST_TSO6) ? NULL : "is TSO6 without HOST_TSO6";
	case VIRTIO_NET_HDR_GSO_UDP:
		return acked(n, VIRTIO_NET_F_HOST_UFO) ? NULL : "is UFO without HOST_UFO";
	default:
		return "has a GSO type never offered";
	}
}

/*
 * The TAP gets the copy of the header and the frame's first bytes (checked, and safe from
 * the guest rewriting them: what decided that the frame is not the MMDS's is what goes),
 * then the rest of the frame straight from guest memory.
 */
static void tx_build_iov(struct virtio_net *n)
{
	const struct virtqueue_chain *c = &n->tx_chain;
	uint32_t skip = n->tx_hdr_len;
	unsigned k = 0;

	n->tx_iov[k++] = (struct iovec){ n->tx_hdr, n->tx_hdr_len };
	for (unsigned i = 0; i < c->nreadable; i++) {
		const struct virtqueue_seg *s = &c->segs[i];
		if (skip >= s->len) {
			skip -= s->len;
			continue;
		}
		n->tx_iov[k++] = (struct iovec){ (uint8_t *)s->hva + skip, s->len - skip };
		skip = 0;
	}
	n->tx_iovcnt = k;
}

/* A driver error drops the packet; the device goes on (Linux never sends such chains). */
static const char *tx_prepare(struct virtio_net *n)
{
	const struct virtqueue_chain *c = &n->tx_chain;

	if (c->nsegs > c->nreadable)
		return "has a device-writable buffer";
	if (c->readable_len < VIRTIO_NET_HDR_LEN)
		return "is shorter than the 12-byte header";
	if (c->readable_len > VIRTIO_NET_MAX_PACKET)
		return "is longer than 65562 bytes";
	n->tx_hdr_len = c->readable_len < VIRTIO_NET_TX_HEAD ? (uint32_t)c->readable_len
	                                                     : VIRTIO_NET_TX_HEAD;
	chain_read(c, n->tx_hdr, n->tx_hdr_len);
	tx_build_iov(n);
	return tx_header_bad(n);
}

/* 0 when the frame went (or was dropped), -EAGAIN when the TAP pushes back. */
static int tx_send(struct virtio_net *n)
{
	uint64_t len = n->tx_chain.readable_len;
	ssize_t w;

	do
		w = writev(n->fd, n->tx_iov, (int)n->tx_iovcnt);
	while (w < 0 && errno == EINTR);
	if (w < 0 && errno == EAGAIN)
		return -EAGAIN;
	if (w < 0) {
		n->tx_dropped++;
		guest_error(n, "the TAP refused a %llu-byte frame: %s; dropped",
		            (unsigned long long)(len - VIRTIO_NET_HDR_LEN), strerror(errno));
		return 0;
	}
	n->tx_packets++;
	n->tx_bytes += len - VIRTIO_NET_HDR_LEN;
	return 0;
}

/*
 * A frame for the MMDS goes to the stack, copied whole (it parses what cannot change
 * under it), never to the TAP and never charged to the TX rate limiter (as in Firecracker; its
 * answers are charged to the RX one).
 */
static bool tx_mmds(struct virtio_net *n)
{
	uint32_t len = (uint32_t)n->tx_chain.readable_len - VIRTIO_NET_HDR_LEN;
	uint32_t head = n->tx_hdr_len - VIRTIO_NET_HDR_LEN;

	if (!n->mmds || !net_mmds_claims(n->mmds, n->tx_hdr + VIRTIO_NET_HDR_LEN, head))
		return false;
	/* The bytes that decided come from the copy, the rest from the chain. */
	memcpy(n->tx_frame, n->tx_hdr + VIRTIO_NET_HDR_LEN, head);
	chain_read_from(&n->tx_chain, n->tx_hdr_len, n->tx_frame + head, len - head);
	net_mmds_input(n->mmds, n->tx_hdr, n->tx_frame, len);
	n->tx_to_mmds = true;
	return true;
}

/* The next chain to send into tx_chain: 1, or 2 when a bad one was returned, 0, -errno. */
static int tx_next(struct virtio_net *n)
{
	struct virtqueue *vq = &n->dev.vqs[VIRTIO_NET_Q_TX];
	const char *why;
	int r = pop_or_wait(vq, &n->tx_chain);

	if (r <= 0)
		return r;
	why = tx_prepare(n);
	if (!why && tx_mmds(n)) {
		virtqueue_push(vq, n->tx_chain.head, 0);
		return 2;
	}
	if (!why) {
		n->tx_pending = true;
		n->tx_paid = false;
		return 1;
	}
	n->tx_dropped++;
	guest_error(n, "TX chain %u %s: dropped", n->tx_chain.head, why);
	virtqueue_push(vq, n->tx_chain.head, 0);
	return 2;
}

static void tx_run(struct virtio_net *n)
{
	struct virtqueue *vq = &n->dev.vqs[VIRTIO_NET_Q_TX];
	unsigned steps = 0;
	int r = 0;

	/* Blocked on the TAP or the rate limiter: its callback resumes, in order. */
	if (n->tx_watch || ratelimit_timer_armed(&n->tx_timer))
		return;
	for (;; steps++) {
		if (steps == NET_BURST) {
			resume_later(n);
			break;
		}
		if (!n->tx_pending && (r = tx_next(n)) != 1) {
			if (r == 2)
				continue;
			break;
		}
		if (!n->tx_paid)
			n->tx_paid = admit(n, &n->tx_rl, &n->tx_timer, n->tx_chain.readable_len);
		if (!n->tx_paid)
			break; /* its timer resumes, with this chain first */
		if (tx_send(n) == -EAGAIN) {
			n->tx_watch = loop_add_fd(n->loop, n->fd, LOOP_WRITE, on_writable, n);
			if (!n->tx_watch)
				log_error("%s: cannot watch the TAP: out of memory", n->dev.name);
			break;
		}
		virtqueue_push(vq, n->tx_chain.head, 0);
		n->tx_pending = false;
	}
	if (r < 0)
		virtio_dev_needs_reset(&n->dev, VIRTIO_NET_Q_TX, r);
	virtio_dev_used(&n->dev, VIRTIO_NET_Q_TX);
	/* The stack may have answers now: into the guest's buffers, if it has some. */
	if (n->tx_to_mmds) {
		n->tx_to_mmds = false;
		if (net_mmds_pending(n->mmds))
			rx_run(n);
		mmds_timer_update(n); /* ACKs stop it, or move it */
	}
}

/* ---- RX: TAP to guest ---- */

/*
 * The header as the TAP wrote it, against what the driver negotiated: the TAP only
 * offloads what activate allowed, but a frame queued before may be left over.
 */
static bool rx_header_ok(struct virtio_net *n)
{
	struct virtio_net_hdr_v1 *h = (void *)n->rx_buf;
	bool csum = acked(n, VIRTIO_NET_F_GUEST_CSUM);

	if ((h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) && !csum)
		return false;
	switch (h->gso_type) {
	case VIRTIO_NET_HDR_GSO_NONE:
		break;
	case VIRTIO_NET_HDR_GSO_TCPV4:
		if (!acked(n, VIRTIO_NET_F_GUEST_TSO4))
			return false;
		break;
	case VIRTIO_NET_HDR_GSO_TCPV6:
		if (!acked(n, VIRTIO_NET_F_GUEST_TSO6))
			return false;
		break;
	case VIRTIO_NET_HDR_GSO_UDP:
		if (!acked(n, VIRTIO_NET_F_GUEST_UFO))
			return false;
		break;
	default:
		return false;
	}
	/* Without GUEST_CSUM the spec wants flags 0 (DATA_VALID means nothing there). */
	h->flags &= csum ? VIRTIO_NET_HDR_F_NEEDS_CSUM | VIRTIO_NET_HDR_F_DATA_VALID : 0;
	return true;
}

static void rx_drop(struct virtio_net *n)
{
	n->rx_dropped++; /* the stack's frames too: a guest that posts buffers too small */
	n->rx_len = n->rx_done = 0;
	n->rx_paid = false;
}

/* Reads the next frame into rx_buf: 1 with one, 2 when it was dropped, 0 when none, -errno. */
static int rx_read(struct virtio_net *n)
{
	ssize_t r;

	do
		r = read(n->fd, n->rx_buf, VIRTIO_NET_MAX_PACKET);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return errno == EAGAIN ? 0 : -errno;
	n->rx_len = (uint32_t)r;
	n->rx_done = 0;
	n->rx_paid = false;
	if (r >= VIRTIO_NET_HDR_LEN && rx_header_ok(n))
		return 1;
	rx_drop(n);
	if (log_ratelimit_ok(&n->rl))
		log_warn("%s: dropped a %zd-byte frame from the TAP: no header, or offloads the "
		         "driver did not take",
		         n->dev.name, r);
	return 2;
}

static const char *rx_chain_bad(const struct virtqueue_chain *c)
{
	if (c->nreadable)
		return "has a device-readable buffer";
	if (c->writable_len < VIRTIO_NET_HDR_LEN)
		return "is shorter than the 12-byte header";
	return NULL;
}

/* A checked chain in rx_chain: 1, 2 when a bad one was returned unused, 0 when none, -errno. */
static int rx_take_chain(struct virtio_net *n)
{
	struct virtqueue *vq = &n->dev.vqs[VIRTIO_NET_Q_RX];
	const char *why;
	int r;

	if (n->rx_chain_held)
		return 1;
	r = pop_or_wait(vq, &n->rx_chain);
	if (r <= 0)
		return r;
	why = rx_chain_bad(&n->rx_chain);
	if (!why) {
		n->rx_chain_held = true;
		return 1;
	}
	guest_error(n, "RX chain %u %s: returned unused", n->rx_chain.head, why);
	virtqueue_push(vq, n->rx_chain.head, 0);
	return 2;
}

/* Writes @len bytes at offset @off of the chain's buffers (all writable: checked). */
static void chain_write(const struct virtqueue_chain *c, uint32_t off, const uint8_t *src,
                        uint32_t len)
{
	for (unsigned i = 0; i < c->nsegs && len; i++) {
		const struct virtqueue_seg *s = &c->segs[i];
		uint32_t k;
		if (off >= s->len) {
			off -= s->len;
			continue;
		}
		k = s->len - off < len ? s->len - off : len;
		memcpy((uint8_t *)s->hva + off, src, k);
		src += k;
		len -= k;
		off = 0;
	}
}

static uint8_t *chain_byte(const struct virtqueue_chain *c, uint32_t off)
{
	for (unsigned i = 0; i < c->nsegs; i++) {
		if (off < c->segs[i].len)
			return (uint8_t *)c->segs[i].hva + off;
		off -= c->segs[i].len;
	}
	return NULL; /* never: the chain holds the header */
}

static void rx_delivered(struct virtio_net *n)
{
	if (!n->rx_from_mmds) {
		n->rx_packets++;
		n->rx_bytes += n->rx_len - VIRTIO_NET_HDR_LEN;
	}
	n->rx_len = n->rx_done = 0;
	n->rx_paid = false;
}

/* Without MRG_RXBUF one chain holds the whole frame; a smaller one waits for a smaller frame. */
static void rx_fill_whole(struct virtio_net *n)
{
	struct virtio_net_hdr_v1 *h = (void *)n->rx_buf;
	struct virtqueue_chain *c = &n->rx_chain;

	if (c->writable_len < n->rx_len) {
		guest_error(n,
		            "RX chain %u of %llu bytes is too small for a %u-byte frame "
		            "(no MRG_RXBUF): frame dropped",
		            c->head, (unsigned long long)c->writable_len, n->rx_len);
		rx_drop(n);
		return;
	}
	h->num_buffers = htole16(1);
	chain_write(c, 0, n->rx_buf, n->rx_len);
	virtqueue_push(&n->dev.vqs[VIRTIO_NET_Q_RX], c->head, n->rx_len);
	n->rx_chain_held = false;
	rx_delivered(n);
}

/*
 * The frame's chains go back together, num_buffers in the first one's header, published
 * with one used->idx store: the driver never sees part of a frame.
 */
static void rx_finish_parts(struct virtio_net *n, bool deliver)
{
	struct virtqueue *vq = &n->dev.vqs[VIRTIO_NET_Q_RX];
	uint16_t nb = (uint16_t)n->rx_nparts;

	if (deliver) {
		*n->rx_num_buffers[0] = (uint8_t)nb;
		*n->rx_num_buffers[1] = (uint8_t)(nb >> 8);
	}
	for (unsigned i = 0; i < n->rx_nparts; i++)
		virtqueue_fill(vq, n->rx_parts[i].head, deliver ? n->rx_parts[i].len : 0);
	virtqueue_publish(vq);
	n->rx_nparts = 0;
	if (deliver)
		rx_delivered(n);
	else
		rx_drop(n);
}

/* With MRG_RXBUF: fills the held chain with the next part of the frame. */
static void rx_fill_part(struct virtio_net *n)
{
	struct virtqueue_chain *c = &n->rx_chain;
	uint32_t left = n->rx_len - n->rx_done;
	uint32_t len = c->writable_len < left ? (uint32_t)c->writable_len : left;

	if (n->rx_nparts == 0) {
		n->rx_num_buffers[0] = chain_byte(c, HDR_NUM_BUFFERS);
		n->rx_num_buffers[1] = chain_byte(c, HDR_NUM_BUFFERS + 1);
	}
	chain_write(c, 0, n->rx_buf + n->rx_done, len);
	n->rx_parts[n->rx_nparts++] = (struct virtio_net_rx_part){ c->head, len };
	n->rx_chain_held = false;
	n->rx_done += len;
	if (n->rx_done == n->rx_len) {
		rx_finish_parts(n, true);
	} else if (n->rx_nparts == VIRTIO_NET_QUEUE_MAX) {
		/* Only a queue larger than offered, of tiny buffers: they go back unused. */
		guest_error(n, "a %u-byte frame needs more than %u RX buffers: dropped", n->rx_len,
		            VIRTIO_NET_QUEUE_MAX);
		rx_finish_parts(n, false);
	}
}

/* One chain's worth of the waiting frame: 1 on progress, 0 when the guest has no buffer. */
static int rx_step(struct virtio_net *n)
{
	int r = rx_take_chain(n);

	if (r != 1)
		return r == 2 ? 1 : r;
	if (acked(n, VIRTIO_NET_F_MRG_RXBUF))
		rx_fill_part(n);
	else
		rx_fill_whole(n);
	return 1;
}

/*
 * The stack's next frame into rx_buf: 1 with one, 2 when a bad chain was returned, 0 when
 * it has none (or none that fits the chain waiting), -errno for a broken ring. Without
 * MRG_RXBUF the frame is made for the chain it goes into, never larger.
 */
static int rx_mmds_frame(struct virtio_net *n)
{
	struct virtio_net_hdr_v1 *h = (void *)n->rx_buf;
	size_t cap = VIRTIO_NET_MAX_PACKET, len;
	int r;

	if (!n->mmds || !net_mmds_pending(n->mmds))
		return 0;
	if (!acked(n, VIRTIO_NET_F_MRG_RXBUF)) {
		r = rx_take_chain(n);
		if (r != 1)
			return r;
		if (n->rx_chain.writable_len < cap)
			cap = (size_t)n->rx_chain.writable_len;
	}
	len = net_mmds_output(n->mmds, n->rx_buf + VIRTIO_NET_HDR_LEN, cap - VIRTIO_NET_HDR_LEN);
	if (!len)
		return 0;
	/* Full checksums, no offload: the header says nothing but its one buffer. */
	memset(h, 0, VIRTIO_NET_HDR_LEN);
	h->gso_type = VIRTIO_NET_HDR_GSO_NONE;
	n->rx_len = (uint32_t)(VIRTIO_NET_HDR_LEN + len);
	n->rx_done = 0;
	/*
	 * Charged to the RX limiter like the TAP's frames (Firecracker's MMDS frames go through
	 * its RX limiter; only TX refunds them): a guest cannot get past its limit by asking
	 * the MMDS. Made already, it waits in rx_buf for the limiter's timer, as a TAP frame.
	 */
	n->rx_paid = false;
	n->rx_from_mmds = true;
	return 1;
}

/*
 * The next frame for the guest: the stack's and the TAP's take turns, so neither starves
 * the other. As rx_read, 0 when both have none (the TAP is then watched).
 */
static int rx_next(struct virtio_net *n)
{
	int r;

	if (n->rx_mmds_turn && (r = rx_mmds_frame(n)) != 0) {
		n->rx_mmds_turn = false;
		return r;
	}
	n->rx_from_mmds = false;
	r = rx_read(n);
	if (r != 0) {
		n->rx_mmds_turn = true;
		return r;
	}
	return rx_mmds_frame(n);
}

static void rx_run(struct virtio_net *n)
{
	unsigned steps = 0;
	int r = 0;

	if (ratelimit_timer_armed(&n->rx_timer))
		return; /* its callback resumes */
	for (;; steps++) {
		if (steps == NET_BURST) {
			resume_later(n);
			break;
		}
		if (!n->rx_len) {
			r = rx_next(n);
			if (r == 2)
				continue;
			if (r <= 0) {
				/* Nothing to read: wait for the TAP. An error: for the next kick.
				 */
				if (r < 0 && log_ratelimit_ok(&n->rl))
					log_error("%s: cannot read from the TAP: %s", n->dev.name,
					          strerror(-r));
				rx_watch(n, r == 0);
				r = 0;
				break;
			}
		}
		if (!n->rx_paid)
			n->rx_paid = admit(n, &n->rx_rl, &n->rx_timer, n->rx_len);
		if (!n->rx_paid) {
			rx_watch(n, false); /* its timer resumes, with this frame first */
			break;
		}
		r = rx_step(n);
		if (r <= 0) {
			rx_watch(n, false); /* no buffers: the driver's kick brings us back */
			break;
		}
	}
	if (r < 0)
		virtio_dev_needs_reset(&n->dev, VIRTIO_NET_Q_RX, r);
	virtio_dev_used(&n->dev, VIRTIO_NET_Q_RX);
	mmds_timer_update(n);
}

/* ---- Callbacks ---- */

static void on_readable(int fd, int events, void *arg)
{
	struct virtio_net *n = arg;

	(void)fd;
	(void)events;
	virtio_dev_lock(&n->dev);
	n->rx_wakeups++;
	if (virtio_dev_active(&n->dev))
		rx_run(n);
	else
		rx_watch(n, false); /* reset meanwhile: the next activation kicks RX again */
	virtio_dev_unlock(&n->dev);
}

static void on_writable(int fd, int events, void *arg)
{
	struct virtio_net *n = arg;

	(void)fd;
	(void)events;
	virtio_dev_lock(&n->dev);
	n->tx_wakeups++;
	loop_remove(n->tx_watch); /* tx_run watches again if the TAP pushes back again */
	n->tx_watch = NULL;
	if (virtio_dev_active(&n->dev))
		tx_run(n);
	virtio_dev_unlock(&n->dev);
}

static void on_resume(void *arg)
{
	struct virtio_net *n = arg;

	n->resume = NULL; /* the loop freed its one-shot watch */
	virtio_dev_lock(&n->dev);
	if (virtio_dev_active(&n->dev)) {
		tx_run(n);
		rx_run(n);
	}
	virtio_dev_unlock(&n->dev);
}

static void on_mmds_timer(void *arg)
{
	struct virtio_net *n = arg;

	virtio_dev_lock(&n->dev);
	n->mmds_timer = NULL; /* the loop freed its one-shot watch */
	n->mmds_timer_at = 0;
	if (virtio_dev_active(&n->dev)) {
		net_mmds_timeout(n->mmds, clock_now_ns());
		rx_run(n); /* re-arms it */
	}
	virtio_dev_unlock(&n->dev);
}

static void on_tx_timer(void *arg)
{
	struct virtio_net *n = arg;

	virtio_dev_lock(&n->dev);
	if (virtio_dev_active(&n->dev))
		tx_run(n);
	virtio_dev_unlock(&n->dev);
}

static void on_rx_timer(void *arg)
{
	struct virtio_net *n = arg;

	virtio_dev_lock(&n->dev);
	if (virtio_dev_active(&n->dev))
		rx_run(n);
	virtio_dev_unlock(&n->dev);
}

/* ---- Device ops ---- */

static void net_config_read(struct virtio_dev *d, uint32_t off, uint8_t *data, uint32_t len)
{
	memcpy(data, ((struct virtio_net *)d)->config + off, len);
}

/* On a vCPU thread: only the TAP's offloads change here; the queues' kicks start the rest. */
static int net_activate(struct virtio_dev *d)
{
	struct virtio_net *n = (struct virtio_net *)d;

	n->offloads = wanted_offloads(n);
	if (n->tap_offloads && ioctl(n->fd, TUNSETOFFLOAD, n->offloads) < 0) {
		/* Still correct: the features acked allow offloads, they do not ask for them. */
		log_warn(
		        "%s: cannot set the TAP's offloads to %#x: %s; the guest gets plain frames",
		        d->name, n->offloads, strerror(errno));
		n->offloads = 0;
		(void)ioctl(n->fd, TUNSETOFFLOAD, 0);
	}
	return 0;
}

static void net_notify(struct virtio_dev *d, unsigned q)
{
	struct virtio_net *n = (struct virtio_net *)d;

	if (q == VIRTIO_NET_Q_RX)
		rx_run(n);
	else if (q == VIRTIO_NET_Q_TX)
		tx_run(n);
}

/*
 * On a vCPU thread, under the lock: forgets every chain popped (the frame waiting in
 * rx_buf is dropped). The watches stay; their callbacks see the device inactive.
 */
static void net_reset(struct virtio_dev *d)
{
	struct virtio_net *n = (struct virtio_net *)d;

	if (n->rx_len)
		n->rx_dropped++;
	if (n->mmds)
		net_mmds_reset(n->mmds); /* the guest's connections are gone with its driver */
	loop_remove(n->mmds_timer);
	n->mmds_timer = NULL;
	n->mmds_timer_at = 0;
	n->rx_from_mmds = false;
	n->tx_pending = n->tx_paid = false;
	n->rx_len = n->rx_done = 0;
	n->rx_paid = false;
	n->rx_chain_held = false;
	n->rx_nparts = 0;
}

static const struct virtio_dev_ops net_ops = {
	.config_read = net_config_read,
	.activate = net_activate,
	.queue_notify = net_notify,
	.reset = net_reset,
};

/* ---- Life ---- */

static void fill_config(struct virtio_net *n, const struct net_config *cfg)
{
	uint16_t status = htole16(VIRTIO_NET_S_LINK_UP), pairs = htole16(1);

	if (cfg->has_mac)
		memcpy(n->config, cfg->mac, 6);
	memcpy(n->config + 6, &status, 2);
	memcpy(n->config + 8, &pairs, 2);
}

int virtio_net_init_fd(struct virtio_net *n, int fd, const struct net_config *cfg,
                       struct loop *loop)
{
	uint64_t now = (uint64_t)clock_now_ns();
	char id[32];

	memset(n, 0, sizeof(*n));
	n->fd = fd;
	n->rl = (struct log_ratelimit){ .burst = 10 };
	snprintf(n->dev.name, sizeof(n->dev.name), "virtio-net %s",
	         msg_escape(id, sizeof(id), cfg->id ? cfg->id : ""));
	n->rx_buf = malloc(VIRTIO_NET_MAX_PACKET);
	if (!n->rx_buf) {
		log_error("%s: out of memory", n->dev.name);
		virtio_net_destroy(n);
		return -ENOMEM;
	}
	if (cfg->mmds) {
		n->mmds = net_mmds_new(cfg->mmds, n->dev.name);
		n->tx_frame = malloc(VIRTIO_NET_MAX_PACKET);
		if (!n->mmds || !n->tx_frame) {
			log_error("%s: MMDS: out of memory", n->dev.name);
			virtio_net_destroy(n);
			return -ENOMEM;
		}
	}
	n->tap_offloads = tap_probe_offloads(fd);
	n->dev.ops = &net_ops;
	n->dev.device_id = VIRTIO_ID_NET;
	n->dev.features =
	        HOST_FEATURES | guest_features(n->tap_offloads) | (cfg->has_mac ? F(MAC) : 0);
	n->dev.nqueues = 2;
	n->dev.queue_max = VIRTIO_NET_QUEUE_MAX;
	n->dev.config_len = VIRTIO_NET_CONFIG_LEN;
	fill_config(n, cfg);
	n->tx_chain = (struct virtqueue_chain){ .segs = n->tx_segs, .max = VIRTIO_NET_QUEUE_MAX };
	n->rx_chain = (struct virtqueue_chain){ .segs = n->rx_segs, .max = VIRTIO_NET_QUEUE_MAX };
	ratelimit_init(&n->tx_rl, &cfg->tx, now);
	ratelimit_init(&n->rx_rl, &cfg->rx, now);
	n->loop = loop;
	ratelimit_timer_init(&n->tx_timer, loop, on_tx_timer, n);
	ratelimit_timer_init(&n->rx_timer, loop, on_rx_timer, n);
	return 0;
}

int virtio_net_init(struct virtio_net *n, const struct net_config *cfg, struct loop *loop)
{
	char who[48], id[32];
	int fd, r;

	snprintf(who, sizeof(who), "virtio-net %s",
	         msg_escape(id, sizeof(id), cfg->id ? cfg->id : ""));
	r = tap_open(who, cfg->host_dev, &fd);
	if (r) {
		memset(n, 0, sizeof(*n));
		n->fd = -1;
		return r;
	}
	return virtio_net_init_fd(n, fd, cfg, loop);
}

/* Disarms @t. true when it was armed: a frame waits for limits that just changed. */
static bool disarm(struct ratelimit_timer *t)
{
	bool armed = ratelimit_timer_armed(t);

	ratelimit_timer_cancel(t);
	return armed;
}

void virtio_net_set_limiters(struct virtio_net *n, const struct rate_limiter *rx,
                             const struct rate_limiter *tx)
{
	uint64_t now = (uint64_t)clock_now_ns();
	bool retry_rx = false, retry_tx = false;

	virtio_dev_lock(&n->dev);
	if (rx) {
		ratelimit_update(&n->rx_rl, rx, now);
		retry_rx = disarm(&n->rx_timer);
	}
	if (tx) {
		ratelimit_update(&n->tx_rl, tx, now);
		retry_tx = disarm(&n->tx_timer);
	}
	if (virtio_dev_active(&n->dev)) {
		if (retry_tx)
			tx_run(n);
		if (retry_rx)
			rx_run(n);
	}
	virtio_dev_unlock(&n->dev);
}

void virtio_net_destroy(struct virtio_net *n)
{
	loop_remove(n->rx_watch);
	loop_remove(n->tx_watch);
	loop_remove(n->resume);
	n->rx_watch = n->tx_watch = n->resume = NULL;
	loop_remove(n->mmds_timer);
	n->mmds_timer = NULL;
	ratelimit_timer_cancel(&n->tx_timer);
	ratelimit_timer_cancel(&n->rx_timer);
	if (n->fd >= 0)
		close(n->fd);
	n->fd = -1;
	free(n->rx_buf);
	n->rx_buf = NULL;
	net_mmds_free(n->mmds);
	n->mmds = NULL;
	free(n->tx_frame);
	n->tx_frame = NULL;
}
