/*
 * virtio-vsock with Firecracker's hybrid Unix sockets, driven from both ends: a test guest
 * driver over the MMIO transport plays the guest's vsock driver, plain Unix sockets play
 * the host processes. Handshakes both ways, data and credit, a host that stops reading, a
 * guest that breaks flow control, garbage from either side, reset, and many connections.
 */
#include "devices/virtio/vsock.h"
#include "tests/lib/util.h"
#include "tests/lib/virtio_driver.h"
#include "vmm/base/clock.h"
#include "vmm/base/log.h"
#include "vmm/base/loop.h"
#include "vmm/vm_config.h"

#include <endian.h>
#include <errno.h>
#include <linux/virtio_vsock.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#define GUEST_CID 3
#define QSIZE     128
#define HDR       44u
#define RXBUF     (HDR + 4096) /* Linux's RX buffers: a header and 4 KiB */
#define TXBUF     (HDR + 65536 + 64)
#define MEM       (64ull << 20)
#define MIB       (1u << 20)

/* A packet header in host byte order. */
struct tpkt {
	uint64_t src_cid, dst_cid;
	uint32_t src_port, dst_port, len;
	uint16_t type, op;
	uint32_t flags, buf_alloc, fwd_cnt;
};

/* The guest's end of one connection. */
struct gconn {
	uint32_t gport, hport;
	uint32_t tx_cnt;                       /* bytes the guest sent */
	uint32_t peer_buf_alloc, peer_fwd_cnt; /* flint's credit, as last heard */
	uint32_t fwd_cnt;                      /* bytes the guest's application took */
	uint32_t buf_alloc;
};

struct fixture {
	struct virtio_vsock v;
	struct vdrv d;
	char path[80];
	uint64_t rxbuf[QSIZE], txbuf[QSIZE]; /* per descriptor: chains are one descriptor */
	unsigned rx_posted;
	bool vsock_gone;
};

static uint8_t *pattern(size_t len, unsigned seed)
{
	uint8_t *p = malloc(len);

	assert_non_null(p);
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)((i * 131 + seed * 7 + (i >> 12)) & 0xff);
	return p;
}

/* ---- Fixture ---- */

static void start_guest(struct fixture *f)
{
	uint64_t want = VIRTIO_FEATURE(VIRTIO_F_VERSION_1) | VIRTIO_FEATURE(VIRTIO_F_EVENT_IDX);

	assert_true(vdrv_start(&f->d, want, QSIZE) & VIRTIO_STATUS_DRIVER_OK);
	f->rx_posted = 0;
}

static int setup(void **state)
{
	static unsigned n;
	struct fixture *f = calloc(1, sizeof(*f));
	struct vsock_config cfg = { .present = true, .guest_cid = GUEST_CID };
	struct vdrv *d;

	assert_non_null(f);
	d = &f->d;
	snprintf(f->path, sizeof(f->path), "%s/v%u.sock", test_tmpdir(), n++);
	cfg.uds_path = f->path;
	assert_int_equal(vdrv_setup(d, MEM), 0); /* the loop first: the device needs it */
	assert_int_equal(virtio_vsock_init(&f->v, &cfg, d->loop), 0);
	assert_int_equal(vdrv_bind(d, &f->v.dev), 0);
	for (unsigned i = 0; i < QSIZE; i++) {
		f->rxbuf[i] = vdrv_alloc(d, RXBUF, 64);
		f->txbuf[i] = vdrv_alloc(d, TXBUF, 64);
	}
	start_guest(f);
	*state = f;
	return 0;
}

/* As the VMM tears down: transport, device, loop. */
static int teardown(void **state)
{
	struct fixture *f = *state;

	vdrv_unbind(&f->d);
	if (!f->vsock_gone)
		virtio_vsock_destroy(&f->v);
	vdrv_destroy(&f->d);
	free(f);
	return 0;
}

static void run(struct fixture *f, unsigned ms)
{
	long long end = clock_now_ns() + (long long)ms * 1000000;

	do
		loop_run_once(f->d.loop, 1000);
	while (clock_now_ns() < end);
}

/* ---- The guest driver's packets ---- */

static void encode(const struct tpkt *p, struct virtio_vsock_hdr *h)
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

static void decode(const struct virtio_vsock_hdr *h, struct tpkt *p)
{
	*p = (struct tpkt){ le64toh(h->src_cid),  le64toh(h->dst_cid), le32toh(h->src_port),
		            le32toh(h->dst_port), le32toh(h->len),     le16toh(h->type),
		            le16toh(h->op),       le32toh(h->flags),   le32toh(h->buf_alloc),
		            le32toh(h->fwd_cnt) };
}

static void rx_post(struct fixture *f, unsigned n)
{
	for (unsigned i = 0; i < n && f->rx_posted < QSIZE; i++) {
		uint16_t head = f->d.q[0].next_desc;
		struct vdrv_buf b = { f->rxbuf[head], RXBUF, true };
		vdrv_add(&f->d, 0, &b, 1);
		f->rx_posted++;
	}
	vdrv_kick(&f->d, 0);
}

/* Keeps the RX queue stocked, as Linux refills it. */
static void rx_refill(struct fixture *f)
{
	if (f->rx_posted < QSIZE / 2)
		rx_post(f, QSIZE - f->rx_posted);
}

/* The next packet to the guest within @ms; its payload into @data. 0 on timeout. */
static int rx_get(struct fixture *f, struct tpkt *p, uint8_t *data, unsigned ms)
{
	struct virtio_vsock_hdr h;
	uint32_t id, len;

	if (!vdrv_wait_used(&f->d, 0, &id, &len, ms))
		return 0;
	f->rx_posted--;
	assert_in_range(id, 0, QSIZE - 1);
	assert_in_range(len, HDR, RXBUF);
	memcpy(&h, vdrv_hva(&f->d, f->rxbuf[id], HDR), HDR);
	decode(&h, p);
	assert_int_equal(p->len, len - HDR);
	assert_int_equal(p->src_cid, VSOCK_HOST_CID);
	assert_int_equal(p->dst_cid, GUEST_CID);
	assert_int_equal(p->type, VIRTIO_VSOCK_TYPE_STREAM);
	if (data)
		memcpy(data, vdrv_hva(&f->d, f->rxbuf[id] + HDR, p->len ? p->len : 1), p->len);
	return 1;
}

static void rx_expect_data(struct fixture *f, struct tpkt *p, uint16_t op, uint8_t *data)
{
	rx_refill(f);
	assert_int_equal(rx_get(f, p, data, 3000), 1);
	assert_int_equal(p->op, op);
}

static void rx_expect(struct fixture *f, struct tpkt *p, uint16_t op)
{
	rx_expect_data(f, p, op, NULL);
}

/* A chain of @len bytes at @data (a header and more, or less) on the TX queue. */
static void tx_raw(struct fixture *f, const void *data, uint32_t len)
{
	uint16_t head = f->d.q[1].next_desc;
	struct vdrv_buf b = { f->txbuf[head], len, false };

	assert_true(len <= TXBUF);
	memcpy(vdrv_hva(&f->d, f->txbuf[head], len), data, len);
	vdrv_add(&f->d, 1, &b, 1);
	vdrv_kick(&f->d, 1);
	assert_int_equal(vdrv_wait_used(&f->d, 1, NULL, NULL, 1000), 1);
}

static void tx_send(struct fixture *f, const struct tpkt *p, const void *data)
{
	static uint8_t buf[TXBUF];

	encode(p, (struct virtio_vsock_hdr *)buf);
	if (p->len)
		memcpy(buf + HDR, data, p->len);
	tx_raw(f, buf, HDR + p->len);
}

static struct tpkt gpkt(const struct gconn *g, uint16_t op, uint32_t len)
{
	return (struct tpkt){ .src_cid = GUEST_CID,
		              .dst_cid = VSOCK_HOST_CID,
		              .src_port = g->gport,
		              .dst_port = g->hport,
		              .len = len,
		              .type = VIRTIO_VSOCK_TYPE_STREAM,
		              .op = op,
		              .buf_alloc = g->buf_alloc,
		              .fwd_cnt = g->fwd_cnt };
}

static void g_op(struct fixture *f, struct gconn *g, uint16_t op, uint32_t flags)
{
	struct tpkt p = gpkt(g, op, 0);

	p.flags = flags;
	tx_send(f, &p, NULL);
}

static void g_send(struct fixture *f, struct gconn *g, const void *data, uint32_t len)
{
	struct tpkt p = gpkt(g, VIRTIO_VSOCK_OP_RW, len);

	tx_send(f, &p, data);
	g->tx_cnt += len;
}

/* A packet from flint for @g: its ports, and the credit it carries. */
static void g_heard(struct gconn *g, const struct tpkt *p)
{
	assert_int_equal(p->src_port, g->hport);
	assert_int_equal(p->dst_port, g->gport);
	assert_int_equal(p->buf_alloc, VSOCK_BUF_ALLOC);
	g->peer_buf_alloc = p->buf_alloc;
	g->peer_fwd_cnt = p->fwd_cnt;
}

static uint32_t g_credit(const struct gconn *g)
{
	return g->peer_buf_alloc - (g->tx_cnt - g->peer_fwd_cnt);
}

/* ---- The host's processes ---- */

static int host_connect(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	return fd;
}

static int host_listen(struct fixture *f, uint32_t port)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	snprintf(a.sun_path, sizeof(a.sun_path), "%s_%u", f->path, port);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fd, 256), 0);
	return fd;
}

static void host_write(int fd, const void *data, size_t len)
{
	assert_int_equal(send(fd, data, len, MSG_NOSIGNAL), (ssize_t)len);
}

/* Reads what there is within @ms, running the loop meanwhile. 0 at EOF, -1 on timeout. */
static ssize_t host_read(struct fixture *f, int fd, void *buf, size_t cap, unsigned ms)
{
	long long end = clock_now_ns() + (long long)ms * 1000000;

	for (;;) {
		ssize_t n = recv(fd, buf, cap, MSG_DONTWAIT);
		if (n >= 0)
			return n;
		if (errno == ECONNRESET)
			return 0;
		assert_true(errno == EAGAIN);
		if (clock_now_ns() > end)
			return -1;
		loop_run_once(f->d.loop, 1000);
	}
}

static void host_read_exact(struct fixture *f, int fd, const void *want, size_t len)
{
	uint8_t *got = malloc(len + 1);
	size_t have = 0;

	while (have < len) {
		ssize_t n = host_read(f, fd, got + have, len - have, 3000);
		assert_true(n > 0);
		have += (size_t)n;
	}
	assert_memory_equal(got, want, len);
	free(got);
}

/* The host's end saw EOF (flint closed it), whatever data came first. */
static void host_expect_eof(struct fixture *f, int fd)
{
	uint8_t buf[4096];
	ssize_t n;

	while ((n = host_read(f, fd, buf, sizeof(buf), 3000)) > 0)
		;
	assert_int_equal(n, 0);
}

static int host_accept(struct fixture *f, int lfd)
{
	long long end = clock_now_ns() + 3000000000LL;
	int fd;

	while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) < 0) {
		assert_true(clock_now_ns() < end);
		loop_run_once(f->d.loop, 1000);
	}
	return fd;
}

/* ---- Connections, established from either end ---- */

/* The host asks for guest port @port; the guest takes it. Returns the host's socket. */
static int host_init(struct fixture *f, struct gconn *g, uint32_t port)
{
	int fd = host_connect(f->path);
	char line[32], ok[32];
	struct tpkt p;

	snprintf(line, sizeof(line), "CONNECT %u\n", port);
	host_write(fd, line, strlen(line));
	rx_expect(f, &p, VIRTIO_VSOCK_OP_REQUEST);
	assert_int_equal(p.dst_port, port);
	assert_true(p.src_port >= VSOCK_LOCAL_PORT_BASE && p.src_port < (1u << 31));
	*g = (struct gconn){ .gport = port, .hport = p.src_port, .buf_alloc = 256 * 1024 };
	g_heard(g, &p);
	g_op(f, g, VIRTIO_VSOCK_OP_RESPONSE, 0);
	snprintf(ok, sizeof(ok), "OK %u\n", g->hport);
	host_read_exact(f, fd, ok, strlen(ok));
	return fd;
}

/* The guest connects to host port @hport from @gport; @lfd listens for it. */
static int guest_init(struct fixture *f, struct gconn *g, int lfd, uint32_t hport, uint32_t gport)
{
	struct tpkt p;

	*g = (struct gconn){ .gport = gport, .hport = hport, .buf_alloc = 256 * 1024 };
	g_op(f, g, VIRTIO_VSOCK_OP_REQUEST, 0);
	rx_expect(f, &p, VIRTIO_VSOCK_OP_RESPONSE);
	g_heard(g, &p);
	return host_accept(f, lfd);
}

/* Data from the host, as the guest reads it: @len bytes in RW packets. */
static void guest_read_exact(struct fixture *f, struct gconn *g, const void *want, uint32_t len)
{
	uint8_t *got = malloc(len + RXBUF);
	uint32_t have = 0;
	struct tpkt p;

	assert_non_null(got);
	while (have < len) {
		rx_expect_data(f, &p, VIRTIO_VSOCK_OP_RW, got + have);
		g_heard(g, &p);
		assert_true(p.len > 0 && have + p.len <= len);
		have += p.len;
	}
	g->fwd_cnt += len;
	assert_memory_equal(got, want, len);
	free(got);
}

/* ---- Tests ---- */

static void test_config_and_identity(void **state)
{
	struct fixture *f = *state;
	uint64_t cid = 0;
	uint32_t feat;

	assert_int_equal(vdrv_read(&f->d, VIRTIO_MMIO_DEVICE_ID), VIRTIO_ID_VSOCK);
	vdrv_read_n(&f->d, VIRTIO_MMIO_CONFIG, &cid, 8);
	assert_int_equal(le64toh(cid), GUEST_CID);
	vdrv_write(&f->d, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	feat = vdrv_read(&f->d, VIRTIO_MMIO_DEVICE_FEATURES);
	assert_false(feat & (1u << VIRTIO_VSOCK_F_SEQPACKET));
	vdrv_write(&f->d, VIRTIO_MMIO_QUEUE_SEL, 2);
	assert_int_equal(vdrv_read(&f->d, VIRTIO_MMIO_QUEUE_READY), 1); /* the event queue */
}

/* Host-initiated: CONNECT, REQUEST, RESPONSE, "OK <port>", then bytes both ways. */
static void test_host_connect(void **state)
{
	struct fixture *f = *state;
	struct gconn g, g2;
	int fd = host_init(f, &g, 1234), fd2;

	assert_int_equal(g.hport, VSOCK_LOCAL_PORT_BASE);
	host_write(fd, "ping from the host", 18);
	guest_read_exact(f, &g, "ping from the host", 18);
	g_send(f, &g, "pong from the guest", 19);
	host_read_exact(f, fd, "pong from the guest", 19);
	/* A second connection to the same guest port: the next host port. */
	fd2 = host_init(f, &g2, 1234);
	assert_int_equal(g2.hport, VSOCK_LOCAL_PORT_BASE + 1);
	assert_int_equal(f->v.nconns, 2);
	close(fd);
	close(fd2);
}

/* Bytes the host writes right behind its CONNECT line are the stream's, not lost. */
static void test_connect_line_then_data(void **state)
{
	struct fixture *f = *state;
	struct gconn g;
	char ok[32];
	struct tpkt p;
	int fd = host_connect(f->path);

	host_write(fd, "CONNECT 555\nearly bytes", 23);
	rx_expect(f, &p, VIRTIO_VSOCK_OP_REQUEST);
	assert_int_equal(p.dst_port, 555);
	g = (struct gconn){ .gport = 555, .hport = p.src_port, .buf_alloc = 65536 };
	g_heard(&g, &p);
	g_op(f, &g, VIRTIO_VSOCK_OP_RESPONSE, 0);
	snprintf(ok, sizeof(ok), "OK %u\n", g.hport);
	host_read_exact(f, fd, ok, strlen(ok));
	guest_read_exact(f, &g, "early bytes", 11);
	close(fd);
}

/* The guest refuses (RST): the host's connection is closed, without an OK. */
static void test_host_connect_refused(void **state)
{
	struct fixture *f = *state;
	struct gconn g;
	struct tpkt p;
	char buf[16];
	int fd = host_connect(f->path);

	host_write(fd, "CONNECT 99\n", 11);
	rx_expect(f, &p, VIRTIO_VSOCK_OP_REQUEST);
	g = (struct gconn){ .gport = 99, .hport = p.src_port };
	g_op(f, &g, VIRTIO_VSOCK_OP_RST, 0);
	assert_int_equal(host_read(f, fd, buf, sizeof(buf), 3000), 0);
	assert_int_equal(f->v.nconns, 0);
	close(fd);
}

/* The guest never answers: after Firecracker's 2 s the host is closed, the guest reset. */
static void test_host_connect_timeout(void **state)
{
	struct fixture *f = *state;
	struct tpkt p;
	uint32_t hport;
	int fd = host_connect(f->path);

	host_write(fd, "CONNECT 4321\n", 13);
	rx_expect(f, &p, VIRTIO_VSOCK_OP_REQUEST);
	hport = p.src_port;
	host_expect_eof(f, fd);
	rx_expect(f, &p, VIRTIO_VSOCK_OP_RST);
	assert_int_equal(p.src_port, hport);
	assert_int_equal(p.dst_port, 4321);
	assert_int_equal(f->v.nconns, 0);
	close(fd);
}

/* Guest-initiated to <uds_path>_5000, then a half-close each way and the end. */
static void test_guest_connect(void **state)
{
	struct fixture *f = *state;
	int lfd = host_listen(f, 5000);
	struct gconn g;
	struct tpkt p;
	char buf[16];
	int fd = guest_init(f, &g, lfd, 5000, 40000);

	g_send(f, &g, "hello host", 10);
	host_read_exact(f, fd, "hello host", 10);
	host_write(fd, "hello guest", 11);
	guest_read_exact(f, &g, "hello guest", 11);
	/* The guest sends no more: the host reads EOF, and may still write. */
	g_op(f, &g, VIRTIO_VSOCK_OP_SHUTDOWN, VIRTIO_VSOCK_SHUTDOWN_SEND);
	assert_int_equal(host_read(f, fd, buf, sizeof(buf), 3000), 0);
	host_write(fd, "still here", 10);
	guest_read_exact(f, &g, "still here", 10);
	/* The guest closes: flint confirms with RST. */
	g_op(f, &g, VIRTIO_VSOCK_OP_SHUTDOWN,
	     VIRTIO_VSOCK_SHUTDOWN_RCV | VIRTIO_VSOCK_SHUTDOWN_SEND);
	rx_expect(f, &p, VIRTIO_VSOCK_OP_RST);
	assert_int_equal(p.src_port, 5000);
	assert_int_equal(p.dst_port, 40000);
	assert_int_equal(f->v.nconns, 0);
	close(fd);
	close(lfd);
}

/* The host closes: the guest hears SHUTDOWN(SEND), answers RST, the entry goes. */
static void test_host_closes(void **state)
{
	struct fixture *f = *state;
	struct gconn g;
	struct tpkt p;
	int fd = host_init(f, &g, 77);

	host_write(fd, "last words", 10);
	close(fd);
	guest_read_exact(f, &g, "last words", 10);
	rx_expect(f, &p, VIRTIO_VSOCK_OP_SHUTDOWN);
	assert_int_equal(p.flags, VIRTIO_VSOCK_SHUTDOWN_SEND);
	g_op(f, &g, VIRTIO_VSOCK_OP_RST, 0);
	assert_int_equal(f->v.nconns, 0);
}

/* No listener at <uds_path>_P (no file, or a stale one): RST. */
static void test_guest_connect_refused(void **state)
{
	struct fixture *f = *state;
	struct gconn g = { .gport = 40001, .hport = 5001 };
	struct tpkt p;
	int stale;

	g_op(f, &g, VIRTIO_VSOCK_OP_REQUEST, 0);
	rx_expect(f, &p, VIRTIO_VSOCK_OP_RST);
	assert_int_equal(p.src_port, 5001);
	assert_int_equal(p.dst_port, 40001);
	stale = host_listen(f, 5002);
	close(stale); /* the file stays, nobody listens */
	g.hport = 5002;
	g_op(f, &g, VIRTIO_VSOCK_OP_REQUEST, 0);
	rx_expect(f, &p, VIRTIO_VSOCK_OP_RST);
	assert_int_equal(p.src_port, 5002);
	assert_int_equal(f->v.nconns, 0);
}

/* 1 MiB host to guest, never beyond the guest's credit: it grants more as it reads. */
static void big_to_guest(struct fixture *f, struct gconn *g, int fd)
{
	uint8_t *src = pattern(MIB, 1), *dst = malloc(MIB + RXBUF);
	long long end = clock_now_ns() + 30000000000LL;
	uint32_t got = 0, told;
	size_t sent = 0;
	struct tpkt p;

	assert_non_null(dst);
	g->buf_alloc = 64 * 1024; /* small, so that credit must flow */
	g_op(f, g, VIRTIO_VSOCK_OP_CREDIT_UPDATE, 0);
	told = g->fwd_cnt;
	while (got < MIB) {
		ssize_t n;
		assert_true(clock_now_ns() < end);
		n = send(fd, src + sent, MIB - sent, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (sent < MIB && n > 0)
			sent += (size_t)n;
		rx_refill(f);
		while (rx_get(f, &p, dst + got, 0)) {
			g_heard(g, &p);
			if (p.op == VIRTIO_VSOCK_OP_CREDIT_REQUEST) {
				g_op(f, g, VIRTIO_VSOCK_OP_CREDIT_UPDATE, 0);
				told = g->fwd_cnt;
				continue;
			}
			assert_int_equal(p.op, VIRTIO_VSOCK_OP_RW);
			got += p.len;
			g->fwd_cnt += p.len; /* the application takes it at once */
			assert_true(g->fwd_cnt - told <= g->buf_alloc); /* within its credit */
		}
		if (g->fwd_cnt - told >= g->buf_alloc / 2) {
			g_op(f, g, VIRTIO_VSOCK_OP_CREDIT_UPDATE, 0);
			told = g->fwd_cnt;
		}
		loop_run_once(f->d.loop, 1000);
	}
	assert_memory_equal(dst, src, MIB);
	free(src);
	free(dst);
}

/* 1 MiB guest to host, the guest within flint's credit; flint's updates keep it going. */
static void big_to_host(struct fixture *f, struct gconn *g, int fd)
{
	uint8_t *src = pattern(MIB, 2), *dst = malloc(MIB);
	long long end = clock_now_ns() + 30000000000LL;
	uint32_t sent = 0, got = 0;
	struct tpkt p;

	assert_non_null(dst);
	while (got < MIB) {
		uint32_t credit = g_credit(g), n = MIB - sent;
		ssize_t r;
		assert_true(clock_now_ns() < end);
		n = n < credit ? n : credit;
		n = n < 4096 ? n : 4096;
		if (n)
			g_send(f, g, src + sent, n);
		sent += n;
		r = recv(fd, dst + got, MIB - got, MSG_DONTWAIT);
		if (r > 0)
			got += (uint32_t)r;
		rx_refill(f);
		while (rx_get(f, &p, NULL, 0)) {
			g_heard(g, &p);
			assert_int_equal(p.op, VIRTIO_VSOCK_OP_CREDIT_UPDATE);
		}
		assert_true(f->v.buffered <= VSOCK_BUF_ALLOC);
	}
	assert_int_equal(sent, MIB);
	assert_memory_equal(dst, src, MIB);
	free(src);
	free(dst);
}

static void test_big_transfer(void **state)
{
	struct fixture *f = *state;
	int lfd = host_listen(f, 5000);
	struct gconn g, g2;
	int fd = host_init(f, &g, 1234), fd2 = guest_init(f, &g2, lfd, 5000, 40000);

	big_to_guest(f, &g, fd);
	big_to_host(f, &g, fd);
	big_to_host(f, &g2, fd2);
	big_to_guest(f, &g2, fd2);
	close(fd);
	close(fd2);
	close(lfd);
}

/* Drains flint's packets to @g (credit updates) without waiting. */
static void g_drain(struct fixture *f, struct gconn *g)
{
	struct tpkt p;

	rx_refill(f);
	while (rx_get(f, &p, NULL, 0)) {
		g_heard(g, &p);
		assert_int_equal(p.op, VIRTIO_VSOCK_OP_CREDIT_UPDATE);
	}
}

/* The host stops reading: flint holds at most its buf_alloc, the guest stops, then resumes. */
static void test_host_stops_reading(void **state)
{
	struct fixture *f = *state;
	const uint32_t total = 2 * MIB;
	uint8_t *src = pattern(total, 3), *dst = malloc(total);
	int lfd = host_listen(f, 6000);
	struct gconn g;
	int fd = guest_init(f, &g, lfd, 6000, 41000);
	long long end = clock_now_ns() + 30000000000LL;
	uint32_t sent = 0, got = 0;
	uint64_t held;

	assert_non_null(dst);
	for (;;) {
		uint32_t n = g_credit(&g);
		if (!n) {
			run(f, 50);
			g_drain(f, &g);
			if (!g_credit(&g))
				break;
			continue;
		}
		n = n < 4096 ? n : 4096;
		g_send(f, &g, src + sent, n);
		sent += n;
		g_drain(f, &g);
		assert_true(f->v.buffered <= VSOCK_BUF_ALLOC);
		assert_true(sent < total); /* the guest is held back long before the end */
	}
	held = f->v.buffered;
	assert_true(held > 0 && held <= VSOCK_BUF_ALLOC);
	run(f, 100); /* nothing moves while nobody reads */
	g_drain(f, &g);
	assert_int_equal(g_credit(&g), 0);
	assert_int_equal(f->v.buffered, held);
	/* The host reads again: everything arrives, in order. */
	while (got < total) {
		uint32_t n = g_credit(&g);
		ssize_t r;
		assert_true(clock_now_ns() < end);
		n = n < total - sent ? n : total - sent;
		n = n < 4096 ? n : 4096;
		if (n)
			g_send(f, &g, src + sent, n);
		sent += n;
		r = recv(fd, dst + got, total - got, MSG_DONTWAIT);
		if (r > 0)
			got += (uint32_t)r;
		else
			loop_run_once(f->d.loop, 1000);
		g_drain(f, &g);
		assert_true(f->v.buffered <= VSOCK_BUF_ALLOC);
	}
	assert_memory_equal(dst, src, total);
	assert_int_equal(f->v.buffered, 0);
	free(src);
	free(dst);
	close(fd);
	close(lfd);
}

/* A guest that sends beyond the credit flint advertised is reset, its bytes dropped. */
static void test_credit_violation(void **state)
{
	struct fixture *f = *state;
	uint8_t chunk[4096];
	int lfd = host_listen(f, 7000), fd;
	struct gconn g = { .gport = 41000, .hport = 7000, .buf_alloc = 65536 };
	struct tpkt p;

	memset(chunk, 'v', sizeof(chunk));
	/* One RX buffer, for the RESPONSE: flint can grant the guest nothing after it. */
	g_op(f, &g, VIRTIO_VSOCK_OP_REQUEST, 0);
	rx_post(f, 1);
	assert_int_equal(rx_get(f, &p, NULL, 3000), 1);
	assert_int_equal(p.op, VIRTIO_VSOCK_OP_RESPONSE);
	g_heard(&g, &p);
	fd = host_accept(f, lfd);
	for (unsigned i = 0; i < VSOCK_BUF_ALLOC / sizeof(chunk); i++)
		g_send(f, &g, chunk, sizeof(chunk)); /* all of the credit: fine */
	assert_int_equal(g_credit(&g), 0);
	assert_int_equal(f->v.nconns, 1);
	assert_true(f->v.buffered > 0);
	g_send(f, &g, chunk, 1); /* one byte more */
	assert_int_equal(f->v.buffered, 0);
	rx_post(f, 1);
	assert_int_equal(rx_get(f, &p, NULL, 3000), 1);
	assert_int_equal(p.op, VIRTIO_VSOCK_OP_RST);
	assert_int_equal(p.src_port, 7000);
	assert_int_equal(p.dst_port, 41000);
	host_expect_eof(f, fd);
	assert_int_equal(f->v.nconns, 0);
	close(fd);
	close(lfd);
}

static struct tpkt stray(uint16_t op, uint32_t hport)
{
	return (struct tpkt){ .src_cid = GUEST_CID,
		              .dst_cid = VSOCK_HOST_CID,
		              .src_port = 42000,
		              .dst_port = hport,
		              .type = VIRTIO_VSOCK_TYPE_STREAM,
		              .op = op,
		              .buf_alloc = 4096 };
}

static void expect_rst_for(struct fixture *f, uint32_t hport)
{
	struct tpkt p;

	rx_expect(f, &p, VIRTIO_VSOCK_OP_RST);
	assert_int_equal(p.src_port, hport);
	assert_int_equal(p.dst_port, 42000);
}

/* Garbage from the guest: dropped or answered with RST, never a crash or a stall. */
static void test_garbage_packets(void **state)
{
	struct fixture *f = *state;
	static uint8_t raw[TXBUF];
	struct tpkt p = stray(VIRTIO_VSOCK_OP_REQUEST, 9000);
	struct vdrv_buf tiny = { f->rxbuf[0], 20, true };
	uint32_t id, len;
	struct gconn g;
	int fd;

	/* An RX buffer too small for a header comes back unused. */
	vdrv_add(&f->d, 0, &tiny, 1);
	f->rx_posted++;
	vdrv_kick(&f->d, 0);
	/* Shorter than a header; not from the guest's CID; not to the host: dropped. */
	memset(raw, 0xab, sizeof(raw));
	tx_raw(f, raw, 20);
	p.dst_cid = 7;
	tx_send(f, &p, NULL);
	p.dst_cid = VSOCK_HOST_CID;
	p.src_cid = 4;
	tx_send(f, &p, NULL);
	p = stray(VIRTIO_VSOCK_OP_RST, 9000); /* an RST for nothing: nothing */
	tx_send(f, &p, NULL);
	run(f, 20);
	assert_int_equal(f->v.rx_packets, 0);
	/* Unknown op, op 0, wrong type, data and credit for no connection: RST each. */
	p = stray(99, 9001);
	tx_send(f, &p, NULL);
	assert_int_equal(vdrv_wait_used(&f->d, 0, &id, &len, 1000), 1);
	assert_int_equal(len, 0); /* the tiny buffer, unused */
	f->rx_posted--;
	expect_rst_for(f, 9001);
	p = stray(0, 9002);
	tx_send(f, &p, NULL);
	expect_rst_for(f, 9002);
	p = stray(VIRTIO_VSOCK_OP_REQUEST, 9003);
	p.type = VIRTIO_VSOCK_TYPE_SEQPACKET;
	tx_send(f, &p, NULL);
	expect_rst_for(f, 9003);
	p = stray(VIRTIO_VSOCK_OP_RW, 9004);
	p.len = 5;
	tx_send(f, &p, "bytes");
	expect_rst_for(f, 9004);
	p = stray(VIRTIO_VSOCK_OP_CREDIT_UPDATE, 9005);
	tx_send(f, &p, NULL);
	expect_rst_for(f, 9005);
	/* A len beyond the chain, and beyond 64 KiB. */
	p = stray(VIRTIO_VSOCK_OP_RW, 9006);
	p.len = 100;
	encode(&p, (struct virtio_vsock_hdr *)raw);
	tx_raw(f, raw, HDR + 10);
	expect_rst_for(f, 9006);
	p = stray(VIRTIO_VSOCK_OP_RW, 9007);
	p.len = VSOCK_MAX_PKT + 1;
	encode(&p, (struct virtio_vsock_hdr *)raw);
	tx_raw(f, raw, HDR + VSOCK_MAX_PKT + 1);
	expect_rst_for(f, 9007);
	assert_int_equal(f->v.nconns, 0);
	/* Garbage on a live connection resets it, and the host sees it closed. */
	fd = host_init(f, &g, 1234);
	p = gpkt(&g, VIRTIO_VSOCK_OP_RW, 1000);
	encode(&p, (struct virtio_vsock_hdr *)raw);
	tx_raw(f, raw, HDR + 999);
	rx_expect(f, &p, VIRTIO_VSOCK_OP_RST);
	assert_int_equal(p.src_port, g.hport);
	host_expect_eof(f, fd);
	close(fd);
	/* And the device still works. */
	fd = host_init(f, &g, 1235);
	host_write(fd, "fine", 4);
	guest_read_exact(f, &g, "fine", 4);
	close(fd);
}

/* Bad CONNECT lines from the host: the connection is closed, the guest hears nothing. */
static void test_connect_garbage(void **state)
{
	struct fixture *f = *state;
	static const char *bad[] = { "HELLO 12\n",
		                     "CONNECT\n",
		                     "CONNECT abc\n",
		                     "CONNECT 4294967296\n",
		                     "CONNECT -1\n",
		                     "CONNECT 12x\n",
		                     "\n",
		                     "OK 5\n",
		                     "CONNECT \0 5\n" };
	char junk[VSOCK_LINE_MAX];
	struct tpkt p;
	int fd;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		fd = host_connect(f->path);
		host_write(fd, bad[i], strlen(bad[i]) + (i == 8 ? 4 : 0));
		host_expect_eof(f, fd);
		close(fd);
	}
	/* No newline within VSOCK_LINE_MAX bytes, in two writes. */
	memset(junk, 'A', sizeof(junk));
	fd = host_connect(f->path);
	host_write(fd, junk, 10);
	run(f, 10);
	host_write(fd, junk, sizeof(junk) - 10);
	host_expect_eof(f, fd);
	close(fd);
	rx_refill(f);
	assert_int_equal(rx_get(f, &p, NULL, 50), 0);
	assert_int_equal(f->v.nconns, 0);
	/* A line in pieces is fine, and so is Firecracker's leniency (case, spaces, more words). */
	fd = host_connect(f->path);
	for (const char *s = "CONNECT 321\n"; *s; s++) {
		host_write(fd, s, 1);
		run(f, 2);
	}
	rx_expect(f, &p, VIRTIO_VSOCK_OP_REQUEST);
	assert_int_equal(p.dst_port, 321);
	close(fd);
	fd = host_connect(f->path);
	host_write(fd, "connect  77 extra\r\n", 19);
	rx_expect(f, &p, VIRTIO_VSOCK_OP_REQUEST);
	assert_int_equal(p.dst_port, 77);
	close(fd);
}

/* A device reset closes every connection; the socket waits until the next activation. */
static void test_reset_closes(void **state)
{
	struct fixture *f = *state;
	int lfd = host_listen(f, 5000), h1, h2, h3;
	struct gconn a, b;
	struct tpkt p;

	h1 = host_init(f, &a, 1234);
	h2 = guest_init(f, &b, lfd, 5000, 40000);
	host_write(h1, "in flight", 9);
	assert_int_equal(f->v.nconns, 2);
	vdrv_write(&f->d, VIRTIO_MMIO_STATUS, 0);
	run(f, 10);
	host_expect_eof(f, h1);
	host_expect_eof(f, h2);
	assert_int_equal(f->v.nconns, 0);
	/* While reset, a host may connect, but nothing is served. */
	h3 = host_connect(f->path);
	host_write(h3, "CONNECT 1\n", 10);
	run(f, 20);
	assert_int_equal(f->v.nconns, 0);
	start_guest(f);
	rx_expect(f, &p, VIRTIO_VSOCK_OP_REQUEST);
	assert_int_equal(p.dst_port, 1);
	assert_int_equal(p.src_port, VSOCK_LOCAL_PORT_BASE); /* ports start over */
	close(h1);
	close(h2);
	close(h3);
	close(lfd);
}

/* 200 connections open at once, closed every way there is: nothing left (ASan: leaks). */
static void test_many_connections(void **state)
{
	struct fixture *f = *state;
	enum { N = 200 };
	int lfd = host_listen(f, 5000), fd[N];
	struct gconn g[N];
	struct tpkt p;
	char b[2];

	for (int i = 0; i < N / 2; i++)
		fd[i] = host_init(f, &g[i], 100 + (uint32_t)i);
	for (int i = N / 2; i < N; i++)
		fd[i] = guest_init(f, &g[i], lfd, 5000, 30000 + (uint32_t)i);
	assert_int_equal(f->v.nconns, N);
	for (int i = 0; i < N; i += 17) {
		host_write(fd[i], "x", 1);
		guest_read_exact(f, &g[i], "x", 1);
		g_send(f, &g[i], "y", 1);
		host_read_exact(f, fd[i], "y", 1);
	}
	for (int i = 0; i < N; i++) {
		if (i % 3 == 0) {
			g_op(f, &g[i], VIRTIO_VSOCK_OP_SHUTDOWN,
			     VIRTIO_VSOCK_SHUTDOWN_RCV | VIRTIO_VSOCK_SHUTDOWN_SEND);
			rx_expect(f, &p, VIRTIO_VSOCK_OP_RST);
			g_heard(&g[i], &p);
			assert_int_equal(host_read(f, fd[i], b, sizeof(b), 3000), 0);
		} else if (i % 3 == 1) {
			g_op(f, &g[i], VIRTIO_VSOCK_OP_RST, 0);
			assert_int_equal(host_read(f, fd[i], b, sizeof(b), 3000), 0);
		} else {
			close(fd[i]);
			fd[i] = -1;
			rx_expect(f, &p, VIRTIO_VSOCK_OP_SHUTDOWN);
			g_heard(&g[i], &p);
			g_op(f, &g[i], VIRTIO_VSOCK_OP_RST, 0);
		}
		if (fd[i] >= 0)
			close(fd[i]);
	}
	assert_int_equal(f->v.nconns, 0);
	assert_int_equal(f->v.buffered, 0);
	close(lfd);
}

/* At VSOCK_MAX_CONNS, guests are refused with RST and hosts closed; one freed, one more fits. */
static void test_connection_limit(void **state)
{
	struct fixture *f = *state;
	struct rlimit rl;
	int lfd = host_listen(f, 5000), *fd = calloc(VSOCK_MAX_CONNS, sizeof(int)), h;
	struct gconn *g = calloc(VSOCK_MAX_CONNS + 1, sizeof(*g));
	struct tpkt p;

	assert_non_null(fd);
	assert_non_null(g);
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
	/* flint's end and the host's end of each connection, in one process (root may raise it). */
	if (rl.rlim_cur < 2 * VSOCK_MAX_CONNS + 64) {
		rl.rlim_cur = 2 * VSOCK_MAX_CONNS + 64;
		if (rl.rlim_max < rl.rlim_cur)
			rl.rlim_max = rl.rlim_cur;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			fail_msg("RLIMIT_NOFILE %llu: %s", (unsigned long long)rl.rlim_cur,
			         strerror(errno));
	}
	for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++)
		fd[i] = guest_init(f, &g[i], lfd, 5000, 20000 + i);
	assert_int_equal(f->v.nconns, VSOCK_MAX_CONNS);
	g[VSOCK_MAX_CONNS] = (struct gconn){ .gport = 19999, .hport = 5000 };
	g_op(f, &g[VSOCK_MAX_CONNS], VIRTIO_VSOCK_OP_REQUEST, 0);
	rx_expect(f, &p, VIRTIO_VSOCK_OP_RST);
	assert_int_equal(p.dst_port, 19999);
	h = host_connect(f->path);
	host_write(h, "CONNECT 1\n", 10);
	host_expect_eof(f, h);
	close(h);
	assert_int_equal(f->v.nconns, VSOCK_MAX_CONNS);
	/* One goes: one more fits. */
	g_op(f, &g[0], VIRTIO_VSOCK_OP_RST, 0);
	close(fd[0]);
	fd[0] = guest_init(f, &g[VSOCK_MAX_CONNS], lfd, 5000, 19999);
	for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++)
		close(fd[i]);
	free(fd);
	free(g);
	close(lfd);
}

/* Headers and payloads split across descriptors, as drivers may lay them out. */
static void test_split_chains(void **state)
{
	struct fixture *f = *state;
	int lfd = host_listen(f, 5000), fd;
	struct gconn g = { .gport = 40000, .hport = 5000, .buf_alloc = 65536 };
	uint8_t got[64];
	struct tpkt p;
	uint64_t base;
	uint16_t head;

	/* Connected with one RX buffer, so the split one below is the next one used. */
	g_op(f, &g, VIRTIO_VSOCK_OP_REQUEST, 0);
	rx_post(f, 1);
	assert_int_equal(rx_get(f, &p, NULL, 3000), 1);
	assert_int_equal(p.op, VIRTIO_VSOCK_OP_RESPONSE);
	g_heard(&g, &p);
	fd = host_accept(f, lfd);
	/* TX: the header in two pieces, the second with the payload's start. */
	head = f->d.q[1].next_desc;
	base = f->txbuf[head];
	p = gpkt(&g, VIRTIO_VSOCK_OP_RW, 11);
	encode(&p, vdrv_hva(&f->d, base, HDR));
	memcpy(vdrv_hva(&f->d, base + HDR, 11), "split hello", 11);
	vdrv_add(&f->d, 1,
	         (struct vdrv_buf[]){
	                 { base, 20, false }, { base + 20, 27, false }, { base + 47, 8, false } },
	         3);
	vdrv_kick(&f->d, 1);
	assert_int_equal(vdrv_wait_used(&f->d, 1, NULL, NULL, 1000), 1);
	host_read_exact(f, fd, "split hello", 11);
	/* RX: the header across two descriptors, the payload in a third. */
	head = f->d.q[0].next_desc;
	base = f->rxbuf[head];
	vdrv_add(&f->d, 0,
	         (struct vdrv_buf[]){
	                 { base, 10, true }, { base + 10, 40, true }, { base + 50, 4000, true } },
	         3);
	f->rx_posted++;
	vdrv_kick(&f->d, 0);
	host_write(fd, "across descriptors", 18);
	assert_int_equal(rx_get(f, &p, got, 3000), 1);
	assert_int_equal(p.op, VIRTIO_VSOCK_OP_RW);
	assert_int_equal(p.len, 18);
	assert_memory_equal(got, "across descriptors", 18);
	close(fd);
	close(lfd);
}

/* Rounds of the loop that each wait for nothing: @ms or more when nothing spins it. */
static long long idle_ms(struct fixture *f, unsigned rounds)
{
	long long t = clock_now_ns();

	for (unsigned i = 0; i < rounds; i++)
		loop_run_once(f->d.loop, 20000);
	return (clock_now_ns() - t) / 1000000;
}

/* No RX buffers, or no credit: host data waits, and the loop sleeps rather than spins. */
static void test_rx_starved_does_not_spin(void **state)
{
	struct fixture *f = *state;
	int lfd = host_listen(f, 5000), fd, fd2;
	struct gconn g = { .gport = 41000, .hport = 5000, .buf_alloc = 65536 };
	struct gconn g2 = { .gport = 41001, .hport = 5000, .buf_alloc = 0 };
	struct tpkt p;

	g_op(f, &g, VIRTIO_VSOCK_OP_REQUEST, 0);
	g_op(f, &g2, VIRTIO_VSOCK_OP_REQUEST, 0);
	rx_post(f, 2);
	assert_int_equal(rx_get(f, &p, NULL, 3000), 1);
	assert_int_equal(p.op, VIRTIO_VSOCK_OP_RESPONSE);
	assert_int_equal(rx_get(f, &p, NULL, 3000), 1);
	assert_int_equal(p.op, VIRTIO_VSOCK_OP_RESPONSE);
	fd = host_accept(f, lfd);
	fd2 = host_accept(f, lfd);
	host_write(fd, "waiting", 7);
	host_write(fd2, "no credit", 9);
	assert_true(idle_ms(f, 10) >= 150);
	assert_int_equal(f->v.rx_packets, 2);
	/* An RX buffer: the data comes. */
	guest_read_exact(f, &g, "waiting", 7);
	/* Credit: the other's data comes too. */
	g2.buf_alloc = 4096;
	g_op(f, &g2, VIRTIO_VSOCK_OP_CREDIT_UPDATE, 0);
	guest_read_exact(f, &g2, "no credit", 9);
	close(fd);
	close(fd2);
	close(lfd);
}

/* destroy before the transport's teardown: closes everything, unlinks the socket. */
static void test_destroy(void **state)
{
	struct fixture *f = *state;
	int lfd = host_listen(f, 5000), h1, h2;
	struct gconn a, b;
	struct stat st;
	char buf[4];

	h1 = host_init(f, &a, 1234);
	h2 = guest_init(f, &b, lfd, 5000, 40000);
	virtio_vsock_destroy(&f->v);
	f->vsock_gone = true;
	assert_int_equal(stat(f->path, &st), -1);
	assert_int_equal(errno, ENOENT);
	assert_true(recv(h1, buf, sizeof(buf), MSG_DONTWAIT) <= 0);
	assert_int_equal(recv(h2, buf, sizeof(buf), MSG_DONTWAIT), 0);
	close(h1);
	close(h2);
	close(lfd);
}

/* uds_path in the way, too long, in no directory: one error each, nothing removed. */
static void test_init_errors(void **state)
{
	struct loop *l = loop_new();
	struct virtio_vsock v;
	struct vsock_config cfg = { .present = true, .guest_cid = GUEST_CID };
	char longp[200];
	struct stat st;

	(void)state;
	assert_non_null(l);
	cfg.uds_path = test_write_file("busy.sock", "x", 1);
	assert_int_equal(virtio_vsock_init(&v, &cfg, l), -EADDRINUSE);
	assert_int_equal(stat(cfg.uds_path, &st), 0);
	virtio_vsock_destroy(&v); /* after a failed init: nothing to do */
	assert_int_equal(stat(cfg.uds_path, &st), 0);
	free(cfg.uds_path);
	snprintf(longp, sizeof(longp), "%s/%0150d", test_tmpdir(), 0);
	cfg.uds_path = longp;
	assert_int_equal(virtio_vsock_init(&v, &cfg, l), -ENAMETOOLONG);
	cfg.uds_path = "/nonexistent-flint-dir/v.sock";
	assert_int_equal(virtio_vsock_init(&v, &cfg, l), -ENOENT);
	loop_free(l);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_config_and_identity, setup, teardown),
		cmocka_unit_test_setup_teardown(test_host_connect, setup, teardown),
		cmocka_unit_test_setup_teardown(test_connect_line_then_data, setup, teardown),
		cmocka_unit_test_setup_teardown(test_host_connect_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_host_connect_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_guest_connect, setup, teardown),
		cmocka_unit_test_setup_teardown(test_host_closes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_guest_connect_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_big_transfer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_host_stops_reading, setup, teardown),
		cmocka_unit_test_setup_teardown(test_credit_violation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_garbage_packets, setup, teardown),
		cmocka_unit_test_setup_teardown(test_connect_garbage, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reset_closes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_connections, setup, teardown),
		cmocka_unit_test_setup_teardown(test_connection_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_split_chains, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rx_starved_does_not_spin, setup, teardown),
		cmocka_unit_test_setup_teardown(test_destroy, setup, teardown),
		cmocka_unit_test(test_init_errors),
	};
	log_set_level(LOG_ERROR); /* the hostile tests make the device complain, as it should */
	return TEST_MAIN(tests, NULL, test_group_teardown);
}
