/* virtio-vsock (virtio 1.x section 5.10): its queues, packets, activation and reset. */
#include "devices/virtio/vsock.h"
#include "vmm/base/log.h"
#include "vmm/base/loop.h"
#include "devices/virtio/config.h"

#include <endian.h>
#include <errno.h>
#include <linux/virtio_vsock.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

enum { RXQ, TXQ, EVQ, NQUEUES };

#define HDR_LEN ((uint32_t)sizeof(struct virtio_vsock_hdr))

/* A packet header in host byte order. */
struct pkt {
	uint64_t src_cid, dst_cid;
	uint32_t src_port, dst_port, len;
	uint16_t type, op;
	uint32_t flags, buf_alloc, fwd_cnt;
};

void vsock_guest_error(struct virtio_vsock *v, const char *fmt, ...)
{
	char why[200];
	va_list ap;

	if (!log_ratelimit_ok(&v->rl))
		return;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	log_warn("%s: %s", v->dev.name, why);
}

/*
 * Copies @len bytes at offset @off of segments [@first, @end) of @c to @buf, or from it
 * when @to_chain. Returns the bytes copied (fewer when the segments end first).
 */
static uint32_t chain_copy(const struct virtqueue_chain *c, unsigned first, unsigned end,
                           uint32_t off, void *buf, uint32_t len, bool to_chain)
{
	uint8_t *p = buf;
	uint32_t done = 0;

	for (unsigned i = first; i < end && done < len; i++) {
		uint32_t l = c->segs[i].len;
		if (off >= l) {
			off -= l;
			continue;
		}
		l -= off;
		if (l > len - done)
			l = len - done;
		if (to_chain)
			memcpy((uint8_t *)c->segs[i].hva + off, p + done, l);
		else
			memcpy(p + done, (uint8_t *)c->segs[i].hva + off, l);
		done += l;
		off = 0;
	}
	return done;
}

/* @len bytes at offset @off of segments [@first, @end) as an iovec. Returns its count. */
static int chain_iov(const struct virtqueue_chain *c, unsigned first, unsigned end, uint32_t off,
                     uint32_t len, struct iovec *iov)
{
	int n = 0;

	for (unsigned i = first; i < end && len; i++) {
		uint32_t l = c->segs[i].len;
		if (off >= l) {
			off -= l;
			continue;
		}
		l -= off;
		if (l > len)
			l = len;
		iov[n++] = (struct iovec){ (uint8_t *)c->segs[i].hva + off, l };
		len -= l;
		off = 0;
	}
	return n;
}

static void decode(const struct virtio_vsock_hdr *h, struct pkt *p)
{
	*p = (struct pkt){ .src_cid = le64toh(h->src_cid),
		           .dst_cid = le64toh(h->dst_cid),
		           .src_port = le32toh(h->src_port),
		           .dst_port = le32toh(h->dst_port),
		           .len = le32toh(h->len),
		           .type = le16toh(h->type),
		           .op = le16toh(h->op),
		           .flags = le32toh(h->flags),
		           .buf_alloc = le32toh(h->buf_alloc),
		           .fwd_cnt = le32toh(h->fwd_cnt) };
}

static void encode(const struct pkt *p, struct virtio_vsock_hdr *h)
{
	h->src_cid = htole64(p->src_cid);
	h->dst_cid = htole64(p->dst_cid);
	h->src_port = htole32(p->src_port);
	h->dst_port = htole32(p->dst_port);
	h->len = htole32(p->len);
	h->type = htole16(p->type);
	h->op = htole16(p->op);
	h->flags = htole32(p->flags);
	h->buf_alloc = htole32(p->buf_alloc);
	h->fwd_cnt = htole32(p->fwd_cnt);
}

/* ---- RX: packets to the guest ---- */

/* The header into the held RX chain (its payload is there already). Returns the length. */
static uint32_t rx_write(struct virtio_vsock *v, const struct pkt *p)
{
	struct virtio_vsock_hdr h;

	encode(p, &h);
	chain_copy(&v->rx_chain, v->rx_chain.nreadable, v->rx_chain.nsegs, 0, &h, HDR_LEN, true);
	return HDR_LEN + p->len;
}

static void conn_hdr(const struct virtio_vsock *v, const struct vsock_conn *c, struct pkt *p)
{
	*p = (struct pkt){ .src_cid = VSOCK_HOST_CID,
		           .dst_cid = v->guest_cid,
		           .src_port = c->local_port,
		           .dst_port = c->peer_port,
		           .type = VIRTIO_VSOCK_TYPE_STREAM,
		           .buf_alloc = VSOCK_BUF_ALLOC,
		           .fwd_cnt = c->fwd_cnt };
}

/*
 * What the host socket holds, read straight into the RX chain, as far as the guest's
 * credit goes. False when that gave no packet (nothing to read, or the connection died).
 */
static bool rx_data(struct virtio_vsock *v, struct vsock_conn *c, struct pkt *p)
{
	const struct virtqueue_chain *ch = &v->rx_chain;
	uint64_t room = ch->writable_len - HDR_LEN;
	uint32_t max = vsock_conn_credit(c);
	struct iovec iov[VSOCK_SEGS];
	ssize_t n;

	if (c->state != VC_ESTABLISHED || c->host_eof || c->peer_shut_rcv) {
		c->pending &= ~(unsigned)VC_P_RW;
		return false;
	}
	if (!max) {
		/* Out of credit: ask once; any packet from the guest then says how much. */
		c->pending &= ~(unsigned)VC_P_RW;
		if (c->credit_requested)
			return false;
		c->credit_requested = true;
		p->op = VIRTIO_VSOCK_OP_CREDIT_REQUEST;
		return true;
	}
	if (max > VSOCK_MAX_PKT)
		max = VSOCK_MAX_PKT;
	if (max > room)
		max = (uint32_t)room;
	n = readv(c->fd, iov, chain_iov(ch, ch->nreadable, ch->nsegs, HDR_LEN, max, iov));
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
		c->pending &= ~(unsigned)VC_P_RW;
		return false;
	}
	if (n < 0) {
		if (log_ratelimit_ok(&v->rl))
			log_info("%s: connection %u:%u: host peer: %s", v->dev.name, c->local_port,
			         c->peer_port, strerror(errno));
		vsock_conn_kill(c);
		return false;
	}
	if (n == 0) {
		/* The host sends no more; it may still read, so only SEND (not RCV). */
		c->host_eof = true;
		c->pending &= ~(unsigned)VC_P_RW;
		p->op = VIRTIO_VSOCK_OP_SHUTDOWN;
		p->flags = VIRTIO_VSOCK_SHUTDOWN_SEND;
		return true;
	}
	if ((uint32_t)n < max)
		c->pending &= ~(unsigned)VC_P_RW; /* drained for now: the watch says when more */
	p->op = VIRTIO_VSOCK_OP_RW;
	p->len = (uint32_t)n;
	c->rx_cnt += (uint32_t)n;
	return true;
}

/* The next packet @c owes the guest, into the held chain. 0 when none came of it. */
static uint32_t conn_rx(struct virtio_vsock *v, struct vsock_conn *c, bool *freed)
{
	struct pkt p;
	uint32_t n;

	conn_hdr(v, c, &p);
	if (c->pending & VC_P_RST) {
		p.op = VIRTIO_VSOCK_OP_RST;
		n = rx_write(v, &p);
		vsock_conn_free(c);
		*freed = true;
		return n;
	}
	if (c->pending & VC_P_RESPONSE) {
		c->pending &= ~(unsigned)VC_P_RESPONSE;
		p.op = VIRTIO_VSOCK_OP_RESPONSE;
		c->state = VC_ESTABLISHED;
	} else if (c->pending & VC_P_REQUEST) {
		c->pending &= ~(unsigned)VC_P_REQUEST;
		p.op = VIRTIO_VSOCK_OP_REQUEST;
	} else if (c->pending & VC_P_RW) {
		if (!rx_data(v, c, &p))
			return 0;
	} else if (c->pending & VC_P_CREDIT_UPDATE) {
		p.op = VIRTIO_VSOCK_OP_CREDIT_UPDATE;
	} else {
		return 0;
	}
	/* Every packet carries fwd_cnt: a credit update owed goes with it. */
	c->pending &= ~(unsigned)VC_P_CREDIT_UPDATE;
	c->last_fwd_cnt_sent = c->fwd_cnt;
	n = rx_write(v, &p);
	vsock_conn_watch(c);
	return n;
}

/* Fills the held chain with the next packet owed. 0 when nothing came of it. */
static uint32_t rx_fill(struct virtio_vsock *v)
{
	struct vsock_conn *c = v->rx_head;
	bool freed = false;
	uint32_t n;

	if (v->rst_len) {
		struct vsock_rst r = v->rst[v->rst_head];
		struct pkt p = { .src_cid = VSOCK_HOST_CID,
			         .dst_cid = v->guest_cid,
			         .src_port = r.local_port,
			         .dst_port = r.peer_port,
			         .type = VIRTIO_VSOCK_TYPE_STREAM,
			         .op = VIRTIO_VSOCK_OP_RST };
		v->rst_head = (v->rst_head + 1) % VSOCK_RST_RING;
		v->rst_len--;
		return rx_write(v, &p);
	}
	vsock_conn_unschedule(c);
	n = conn_rx(v, c, &freed);
	if (!freed && c->pending)
		vsock_conn_schedule(c, 0); /* round robin: to the back */
	return n;
}

/* Takes an RX chain with room for a header and some payload, unless one is held. */
static int rx_take(struct virtio_vsock *v, bool *pushed)
{
	struct virtqueue *vq = &v->dev.vqs[RXQ];
	int r;

	while (!v->rx_held) {
		v->rx_chain = (struct virtqueue_chain){ .segs = v->rx_segs, .max = VSOCK_SEGS };
		r = virtqueue_pop(vq, &v->rx_chain);
		if (r == 0 && (r = virtqueue_set_avail_event(vq)) == 1)
			continue;
		if (r < 0)
			virtio_dev_needs_reset(&v->dev, RXQ, r);
		if (r <= 0)
			return r; /* none: the guest's next RX buffer notifies the queue */
		if (v->rx_chain.writable_len > HDR_LEN) {
			v->rx_held = true;
			break;
		}
		vsock_guest_error(v, "RX buffer of %llu writable bytes: too small, returned unused",
		                  (unsigned long long)v->rx_chain.writable_len);
		virtqueue_push(vq, v->rx_chain.head, 0);
		*pushed = true;
	}
	return 1;
}

void vsock_rx_pump(struct virtio_vsock *v)
{
	bool pushed = false;

	while ((v->rst_len || v->rx_head) && virtio_dev_active(&v->dev)) {
		uint32_t n;
		if (rx_take(v, &pushed) <= 0)
			break;
		n = rx_fill(v);
		if (!n)
			continue;
		virtqueue_push(&v->dev.vqs[RXQ], v->rx_chain.head, n);
		v->rx_held = false;
		v->rx_packets++;
		pushed = true;
	}
	if (pushed)
		virtio_dev_used(&v->dev, RXQ);
}

/* ---- TX: packets from the guest ---- */

static void queue_rst(struct virtio_vsock *v, uint32_t local_port, uint32_t peer_port)
{
	if (v->rst_len == VSOCK_RST_RING) {
		vsock_guest_error(v, "RST for %u:%u dropped: %u already wait for RX buffers",
		                  local_port, peer_port, VSOCK_RST_RING);
		return;
	}
	v->rst[(v->rst_head + v->rst_len++) % VSOCK_RST_RING] =
	        (struct vsock_rst){ local_port, peer_port };
}

/* The guest connects to host port dst_port: "<uds_path>_<dst_port>" must listen. */
static void peer_request(struct virtio_vsock *v, const struct pkt *p)
{
	struct vsock_conn *c;
	int fd;

	if (v->nconns >= VSOCK_MAX_CONNS) {
		vsock_guest_error(v, "%u connections already: guest connection to port %u refused",
		                  VSOCK_MAX_CONNS, p->dst_port);
		queue_rst(v, p->dst_port, p->src_port);
		return;
	}
	fd = vsock_host_connect(v, p->dst_port);
	if (fd < 0) {
		log_debug("%s: guest connection to port %u refused: %s_%u: %s", v->dev.name,
		          p->dst_port, MSG_ESC(v->uds_path), p->dst_port, strerror(-fd));
		queue_rst(v, p->dst_port, p->src_port);
		return;
	}
	c = vsock_conn_new(v, fd, VC_PEER_INIT);
	if (!c) {
		close(fd);
		queue_rst(v, p->dst_port, p->src_port);
		return;
	}
	vsock_conn_hash(c, p->dst_port, p->src_port);
	c->peer_buf_alloc = p->buf_alloc;
	c->peer_fwd_cnt = p->fwd_cnt;
	vsock_conn_schedule(c, VC_P_RESPONSE);
}

static void tx_rw(struct virtio_vsock *v, struct vsock_conn *c, const struct virtqueue_chain *ch,
                  const struct pkt *p)
{
	struct iovec iov[VSOCK_SEGS];
	int r;

	if (c->state != VC_ESTABLISHED || c->peer_shut_send) {
		vsock_guest_error(
		        v, "connection %u:%u: data %s: dropped", c->local_port, c->peer_port,
		        c->peer_shut_send ? "after the guest's shutdown" : "before RESPONSE");
		return;
	}
	if (!p->len)
		return;
	r = vsock_conn_from_guest(c, iov, chain_iov(ch, 0, ch->nreadable, HDR_LEN, p->len, iov),
	                          p->len);
	if (r == -EDQUOT)
		vsock_guest_error(v, "connection %u:%u: the guest sent beyond its credit: reset",
		                  c->local_port, c->peer_port);
	else if (r)
		if (log_ratelimit_ok(&v->rl))
			log_info("%s: connection %u:%u: host peer: %s", v->dev.name, c->local_port,
			         c->peer_port, strerror(-r));
	if (r)
		vsock_conn_kill(c); /* established: @c stays until its RST is out */
}

/* A packet for connection @c, which is not being reset. */
static void tx_conn(struct virtio_vsock *v, struct vsock_conn *c, const struct virtqueue_chain *ch,
                    const struct pkt *p)
{
	c->peer_buf_alloc = p->buf_alloc;
	c->peer_fwd_cnt = p->fwd_cnt;
	c->credit_requested = false;
	switch (p->op) {
	case VIRTIO_VSOCK_OP_RW:
		tx_rw(v, c, ch, p);
		break;
	case VIRTIO_VSOCK_OP_RESPONSE:
		if (c->state == VC_LOCAL_INIT && !(c->pending & VC_P_REQUEST)) {
			vsock_conn_established(c);
			return;
		}
		vsock_guest_error(v, "connection %u:%u: unexpected RESPONSE: dropped",
		                  c->local_port, c->peer_port);
		break;
	case VIRTIO_VSOCK_OP_SHUTDOWN:
		if (c->state != VC_ESTABLISHED) {
			vsock_conn_kill(c); /* the guest gave up before it was up */
			return;
		}
		vsock_conn_guest_shutdown(c, p->flags);
		break;
	case VIRTIO_VSOCK_OP_CREDIT_UPDATE:
		break; /* the credit was taken above */
	case VIRTIO_VSOCK_OP_CREDIT_REQUEST:
		vsock_conn_schedule(c, VC_P_CREDIT_UPDATE);
		break;
	default: /* a REQUEST for a live connection, or no op at all */
		vsock_guest_error(v, "connection %u:%u: op %u: reset", c->local_port, c->peer_port,
		                  p->op);
		vsock_conn_kill(c);
		return;
	}
	vsock_conn_watch(c); /* the credit, or the state, changed */
}

static void tx_packet(struct virtio_vsock *v, const struct virtqueue_chain *ch)
{
	struct virtio_vsock_hdr h;
	struct vsock_conn *c;
	struct pkt p;

	v->tx_packets++;
	if (ch->readable_len < HDR_LEN) {
		vsock_guest_error(v, "TX packet of %llu bytes, shorter than a header: dropped",
		                  (unsigned long long)ch->readable_len);
		return;
	}
	chain_copy(ch, 0, ch->nreadable, 0, &h, HDR_LEN, false);
	decode(&h, &p);
	if (p.dst_cid != VSOCK_HOST_CID || p.src_cid != v->guest_cid) {
		vsock_guest_error(
		        v, "TX packet from CID %llu to CID %llu: dropped (the guest is %llu)",
		        (unsigned long long)p.src_cid, (unsigned long long)p.dst_cid,
		        (unsigned long long)v->guest_cid);
		return;
	}
	c = vsock_conn_find(v, p.dst_port, p.src_port);
	if (p.type != VIRTIO_VSOCK_TYPE_STREAM || p.len > VSOCK_MAX_PKT ||
	    p.len > ch->readable_len - HDR_LEN) {
		vsock_guest_error(v, "TX packet %u:%u of type %u, len %u in %llu bytes: refused",
		                  p.dst_port, p.src_port, p.type, p.len,
		                  (unsigned long long)ch->readable_len);
		if (c)
			vsock_conn_kill(c);
		else if (p.op != VIRTIO_VSOCK_OP_RST)
			queue_rst(v, p.dst_port, p.src_port);
		return;
	}
	if (p.op == VIRTIO_VSOCK_OP_RST) {
		if (c)
			vsock_conn_free(c); /* the guest is done with it: nothing to answer */
	} else if (!c && p.op == VIRTIO_VSOCK_OP_REQUEST) {
		peer_request(v, &p);
	} else if (!c) {
		queue_rst(v, p.dst_port, p.src_port);
	} else if (c->state != VC_KILLED) { /* else its RST is on the way */
		tx_conn(v, c, ch, &p);
	}
}

static void tx_process(struct virtio_vsock *v)
{
	struct virtqueue *vq = &v->dev.vqs[TXQ];
	struct virtqueue_chain c = { .segs = v->tx_segs, .max = VSOCK_SEGS };
	unsigned budget = VIRTIO_DEV_BUDGET;
	bool pushed = false;
	int r = 0;

	do {
		while (budget && virtio_dev_active(&v->dev) && (r = virtqueue_pop(vq, &c)) == 1) {
			tx_packet(v, &c);
			virtqueue_push(vq, c.head, 0);
			pushed = true;
			budget--;
		}
		if (!virtio_dev_active(&v->dev))
			return;
		if (!budget) {
			virtio_dev_kick_later(&v->dev, TXQ); /* the rest on a later loop turn */
			break;
		}
		if (r == 0)
			r = virtqueue_set_avail_event(vq);
	} while (r == 1);
	if (r < 0)
		virtio_dev_needs_reset(&v->dev, TXQ, r);
	if (pushed)
		virtio_dev_used(&v->dev, TXQ);
}

/* ---- The device ---- */

/*
 * With the lock held. Drops what an older activation left (reset bumped the epoch), or
 * everything once the device stopped; listens while it runs. True when the device runs
 * and nothing was dropped (so what the caller held is still there).
 */
static bool vsock_sync(struct virtio_vsock *v)
{
	bool active = virtio_dev_active(&v->dev), kept = true;

	if (v->synced_epoch != v->epoch || !active) {
		vsock_close_all(v);
		v->synced_epoch = v->epoch;
		kept = false;
	}
	if (active && vsock_listen_start(v))
		log_error("%s: cannot watch %s: out of memory", v->dev.name, MSG_ESC(v->uds_path));
	return kept && active;
}

bool vsock_enter(struct virtio_vsock *v)
{
	virtio_dev_lock(&v->dev);
	if (vsock_sync(v))
		return true;
	virtio_dev_unlock(&v->dev);
	return false;
}

static void on_doorbell(int fd, int events, void *arg)
{
	struct virtio_vsock *v = arg;
	uint64_t n;

	(void)events;
	if (read(fd, &n, sizeof(n)) < 0)
		return; /* EAGAIN: another wake-up took it */
	virtio_dev_lock(&v->dev);
	vsock_sync(v);
	virtio_dev_unlock(&v->dev);
}

/* From a vCPU thread: the loop does the work (device.h). */
static void ring_doorbell(struct virtio_vsock *v)
{
	uint64_t one = 1;

	if (v->doorbell_fd >= 0 && write(v->doorbell_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_error("%s: cannot wake the loop: %s", v->dev.name, strerror(errno));
}

static void vsock_config_read(struct virtio_dev *d, uint32_t off, uint8_t *data, uint32_t len)
{
	uint64_t cid = htole64(((struct virtio_vsock *)d)->guest_cid);

	memcpy(data, (uint8_t *)&cid + off, len); /* the transport checked off + len <= 8 */
}

static int vsock_activate(struct virtio_dev *d)
{
	ring_doorbell((struct virtio_vsock *)d); /* the loop starts listening */
	return 0;
}

static void vsock_notify(struct virtio_dev *d, unsigned q)
{
	struct virtio_vsock *v = (struct virtio_vsock *)d;

	if (v->destroyed)
		return;
	vsock_sync(v);
	if (q == TXQ)
		tx_process(v);
	/* After TX too: what the guest sent may be answered at once. */
	if (q == TXQ || q == RXQ)
		vsock_rx_pump(v);
	/* EVQ: its buffers stay with the device, as flint sends no events. */
}

static void vsock_reset(struct virtio_dev *d)
{
	struct virtio_vsock *v = (struct virtio_vsock *)d;

	v->epoch++; /* every connection is the past: the loop closes them */
	ring_doorbell(v);
}

static const struct virtio_dev_ops vsock_ops = {
	.config_read = vsock_config_read,
	.activate = vsock_activate,
	.queue_notify = vsock_notify,
	.reset = vsock_reset,
};

/* Firecracker binds uds_path as it is: an existing file is an error, never removed. */
static int bind_listen(struct virtio_vsock *v)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	size_t len = strlen(v->uds_path);
	const char *what = "";
	int r = 0;

	if (!len || len >= sizeof(a.sun_path)) {
		log_error("vsock: uds_path %s: %zu bytes, a Unix socket path takes 1 to %zu",
		          MSG_ESC(v->uds_path), len, sizeof(a.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	memcpy(a.sun_path, v->uds_path, len);
	v->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (v->listen_fd < 0) {
		r = -errno;
		what = "create a socket for";
	} else if (bind(v->listen_fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		r = -errno;
		what = "bind";
	} else if (listen(v->listen_fd, SOMAXCONN) < 0) {
		r = -errno;
		what = "listen on";
		unlink(v->uds_path);
	}
	if (r)
		log_error("vsock: cannot %s uds_path %s: %s%s", what, MSG_ESC(v->uds_path),
		          strerror(-r),
		          r == -EADDRINUSE ? " (remove the stale file first, as for Firecracker)"
		                           : "");
	return r;
}

static int doorbell(struct virtio_vsock *v)
{
	v->doorbell_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (v->doorbell_fd < 0)
		return -errno;
	v->doorbell_watch = loop_add_fd(v->loop, v->doorbell_fd, LOOP_READ, on_doorbell, v);
	return v->doorbell_watch ? 0 : -ENOMEM;
}

static void release(struct virtio_vsock *v, bool bound)
{
	loop_remove(v->doorbell_watch);
	v->doorbell_watch = NULL;
	if (v->doorbell_fd >= 0)
		close(v->doorbell_fd);
	v->doorbell_fd = -1;
	if (v->listen_fd >= 0) {
		close(v->listen_fd);
		if (bound)
			unlink(v->uds_path);
	}
	v->listen_fd = -1;
	free(v->uds_path);
	v->uds_path = NULL;
	v->destroyed = true;
}

int virtio_vsock_init(struct virtio_vsock *v, const struct vsock_config *cfg, struct loop *loop)
{
	int r;

	memset(v, 0, sizeof(*v));
	v->dev = (struct virtio_dev){ .ops = &vsock_ops,
		                      .name = "virtio-vsock",
		                      .device_id = VIRTIO_ID_VSOCK,
		                      .nqueues = NQUEUES,
		                      .queue_max = 256,
		                      .config_len = sizeof(uint64_t) };
	v->loop = loop;
	v->guest_cid = cfg->guest_cid;
	v->listen_fd = v->doorbell_fd = -1;
	v->last_local_port = VSOCK_LOCAL_PORT_BASE - 1;
	v->rl = (struct log_ratelimit){ .burst = 10 };
	v->uds_path = strdup(cfg->uds_path ? cfg->uds_path : "");
	if (!v->uds_path) {
		v->destroyed = true;
		return -ENOMEM;
	}
	r = bind_listen(v);
	if (r) {
		release(v, false);
		return r;
	}
	r = doorbell(v);
	if (r) {
		log_error("vsock: uds_path %s: cannot set up its loop wake-up: %s",
		          MSG_ESC(v->uds_path), strerror(-r));
		release(v, true);
	}
	return r;
}

void virtio_vsock_destroy(struct virtio_vsock *v)
{
	if (v->destroyed)
		return;
	vsock_close_all(v);
	release(v, true);
}
