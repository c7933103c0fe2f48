/*
 * The MMDS stack inside virtio-net (devices/virtio/net_mmds.c), driven as a guest drives
 * it: frames into the TX queue, answers out of the RX queue, through the test driver over
 * a datagram socketpair standing in for the TAP, with a stand-in responder. ARP, the
 * handshake, requests whole and in pieces (partial checksums too), a response larger than
 * the guest's window, pipelined requests, FIN and RST both ways, the connection limit and
 * eviction, a full RX ring, buffers without MRG_RXBUF, hostile frames; and every other
 * frame still reaches the "TAP" as it was.
 */
#include "devices/virtio/net.h"
#include "devices/virtio/net_mmds_stack.h"
#include "tests/lib/netframe.h"
#include "tests/lib/util.h"
#include "tests/lib/virtio_driver.h"
#include "vmm/base/clock.h"
#include "vmm/base/log.h"

#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <linux/virtio_net.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#define HDR     VIRTIO_NET_HDR_LEN
#define RX      VIRTIO_NET_Q_RX
#define TX      VIRTIO_NET_Q_TX
#define NF(bit) VIRTIO_FEATURE(VIRTIO_NET_F_##bit)

static const uint64_t BASE = VIRTIO_FEATURE(VIRTIO_F_VERSION_1) |
                             VIRTIO_FEATURE(VIRTIO_F_EVENT_IDX) | NF(CSUM) | NF(HOST_TSO4) |
                             NF(STATUS) | NF(MAC);
#define MRG (BASE | NF(MRG_RXBUF))

static const uint8_t GMAC[6] = { 0x06, 0x00, 0xac, 0x10, 0x00, 0x02 };
#define GIP   0xac100002u /* 172.16.0.2 */
#define MIP   NET_MMDS_DEFAULT_IPV4
#define OTHER 0xac100001u /* 172.16.0.1: the host side */

/* ---- The stand-in responder ---- */

/*
 * A request is everything up to a blank line. "GET /size/N" answers N bytes of pattern,
 * "GET /bad" is refused (with a 400), "GET /mute" refused with no answer, anything else
 * answers "hello <path>".
 */
struct responder {
	unsigned calls, served;
};

static uint8_t body_byte(size_t i)
{
	return (uint8_t)('a' + (i * 7 + i / 251) % 26);
}

static long serve(void *ctx, const uint8_t *in, size_t len, uint8_t **out, size_t *out_len)
{
	struct responder *r = ctx;
	const uint8_t *end = NULL;
	char path[64] = "";
	size_t body_len, head_len;
	char head[128];
	uint8_t *o;

	r->calls++;
	for (size_t i = 0; i + 3 < len; i++)
		if (!memcmp(in + i, "\r\n\r\n", 4)) {
			end = in + i + 4;
			break;
		}
	if (!end)
		return 0;
	if (sscanf((const char *)in, "GET %63s", path) == 1 && !strcmp(path, "/mute"))
		return -EMSGSIZE;
	if (sscanf((const char *)in, "GET %63s", path) != 1 || !strcmp(path, "/bad")) {
		*out = (uint8_t *)strdup("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
		*out_len = strlen((char *)*out);
		return -1;
	}
	body_len = !strncmp(path, "/size/", 6) ? strtoul(path + 6, NULL, 10) : 6 + strlen(path);
	head_len = (size_t)snprintf(head, sizeof(head),
	                            "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", body_len);
	o = malloc(head_len + body_len + 1); /* snprintf's NUL */
	assert_non_null(o);
	memcpy(o, head, head_len);
	if (!strncmp(path, "/size/", 6))
		for (size_t i = 0; i < body_len; i++)
			o[head_len + i] = body_byte(i);
	else
		snprintf((char *)o + head_len, body_len + 1, "hello %s", path);
	*out = o;
	*out_len = head_len + body_len;
	r->served++;
	return end - in;
}

/* ---- Fixture ---- */

struct fixture {
	struct virtio_net n;
	struct vdrv d;
	struct net_config cfg;
	struct net_mmds_config mcfg;
	struct responder resp;
	int host;
	uint64_t rx_gpa[256];
	uint32_t rx_size; /* of each buffer posted again after use; 0: none posted */
};

static struct fixture *fixture_new(uint64_t idle_ns, uint64_t rto_ns)
{
	struct fixture *f = calloc(1, sizeof(*f));
	int sv[2];

	assert_non_null(f);
	f->cfg = (struct net_config){ .id = "eth0", .has_mac = true, .mmds = &f->mcfg };
	memcpy(f->cfg.mac, GMAC, 6);
	f->mcfg = (struct net_mmds_config){ .responder = { serve, &f->resp },
		                            .idle_ns = idle_ns,
		                            .rto_ns = rto_ns,
		                            .isn_seed = 12345 };
	assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(vdrv_setup(&f->d, 64 << 20), 0);
	assert_int_equal(virtio_net_init_fd(&f->n, sv[0], &f->cfg, f->d.loop), 0);
	assert_int_equal(vdrv_bind(&f->d, &f->n.dev), 0);
	f->host = sv[1];
	return f;
}

static int setup(void **state)
{
	*state = fixture_new(0, 0);
	return 0;
}

/* Connections idle 50 ms may be evicted. */
static int setup_idle(void **state)
{
	*state = fixture_new(50 * 1000000ULL, 0);
	return 0;
}

/* What is in flight is sent again after 30 ms. */
static int setup_rto(void **state)
{
	*state = fixture_new(0, 30 * 1000000ULL);
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	vdrv_unbind(&f->d);
	virtio_net_destroy(&f->n);
	vdrv_destroy(&f->d);
	close(f->host);
	free(f);
	return 0;
}

static const struct net_mmds_stats *stats(struct fixture *f)
{
	return net_mmds_stats(f->n.mmds);
}

/* ---- Frames ---- */

/* A guest segment (tests/lib/netframe.c) from GMAC and GIP; to the MMDS's MAC, to its
 * address and port 80 unless the test says another. */
static size_t tcp_frame(uint8_t *f, const struct nf_tcp *t)
{
	struct nf_tcp g = *t;

	g.dmac = net_mmds_mac;
	g.smac = GMAC;
	g.src = GIP;
	g.dst = t->dst ? t->dst : MIP;
	g.dport = t->dport ? t->dport : 80;
	return nf_tcp_frame(f, &g);
}

/* The guest sends one frame (no kick). */
static void tx_add(struct fixture *f, const struct virtio_net_hdr_v1 *h, const uint8_t *frame,
                   size_t len)
{
	size_t total = HDR + len;
	uint64_t gpa = vdrv_alloc(&f->d, total, 8);
	uint8_t *p = vdrv_hva(&f->d, gpa, total);
	struct vdrv_buf b[2] = { { gpa, HDR, false }, { gpa + HDR, (uint32_t)len, false } };

	memcpy(p, h, HDR);
	memcpy(p + HDR, frame, len);
	vdrv_add(&f->d, TX, b, len ? 2 : 1);
}

static void tx_frame(struct fixture *f, const uint8_t *frame, size_t len)
{
	struct virtio_net_hdr_v1 h = { .gso_type = VIRTIO_NET_HDR_GSO_NONE };

	tx_add(f, &h, frame, len);
	vdrv_kick(&f->d, TX);
}

static void tx_tcp(struct fixture *f, const struct nf_tcp *t)
{
	static uint8_t frame[70000];
	size_t len = tcp_frame(frame, t);
	struct virtio_net_hdr_v1 h = { .gso_type = VIRTIO_NET_HDR_GSO_NONE };

	if (t->partial) {
		h.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
		h.csum_start = htole16((uint16_t)(14 + 20 + t->ipopts));
		h.csum_offset = htole16(16);
	}
	tx_add(f, &h, frame, len);
	vdrv_kick(&f->d, TX);
}

static uint16_t rx_post(struct fixture *f, uint32_t len)
{
	uint64_t gpa = vdrv_alloc(&f->d, len, 8);
	struct vdrv_buf b = { gpa, len, true };
	uint16_t head = vdrv_add(&f->d, RX, &b, 1);

	f->rx_gpa[head] = gpa;
	return head;
}

/* @n RX buffers of @size bytes, each posted again once used. */
static void rx_stock(struct fixture *f, unsigned n, uint32_t size)
{
	f->rx_size = size;
	for (unsigned i = 0; i < n; i++)
		rx_post(f, size);
	vdrv_kick(&f->d, RX);
}

/*
 * The next frame the guest receives (without the vnet header), or -1 when none comes
 * within @ms (the device answers within the kick: a short wait says "none").
 */
static long rx_frame_wait(struct fixture *f, uint8_t *buf, size_t cap, unsigned ms)
{
	uint32_t id, len;
	uint16_t nb;
	size_t total = 0;

	if (!vdrv_wait_used(&f->d, RX, &id, &len, ms))
		return -1;
	for (unsigned i = 0;; i++) {
		uint8_t *p = vdrv_hva(&f->d, f->rx_gpa[id], len);
		if (i == 0) {
			assert_true(len >= HDR);
			nb = le16toh(((struct virtio_net_hdr_v1 *)p)->num_buffers);
			assert_int_equal(((struct virtio_net_hdr_v1 *)p)->flags, 0);
			assert_int_equal(((struct virtio_net_hdr_v1 *)p)->gso_type, 0);
			p += HDR;
			len -= HDR;
		}
		assert_true(total + len <= cap);
		memcpy(buf + total, p, len);
		total += len;
		if (f->rx_size)
			rx_post(f, f->rx_size);
		if (i + 1 == nb)
			break;
		assert_int_equal(vdrv_wait_used(&f->d, RX, &id, &len, 200), 1);
	}
	if (f->rx_size)
		vdrv_kick(&f->d, RX);
	return (long)total;
}

static long rx_frame(struct fixture *f, uint8_t *buf, size_t cap)
{
	return rx_frame_wait(f, buf, cap, 1000);
}

/* Nothing for the guest. */
static bool rx_none(struct fixture *f)
{
	static uint8_t buf[70000];

	return rx_frame_wait(f, buf, sizeof(buf), 10) < 0;
}

/* A segment from the stack, checked on the way: headers, addresses, both checksums. */
struct seg {
	uint16_t sport, dport;
	uint32_t seq, ack;
	uint8_t flags;
	uint16_t win, mss;
	uint8_t data[70000];
	size_t len;
};

static void parse_seg(const uint8_t *p, long len, struct seg *s)
{
	const uint8_t *ip = p + 14, *t;
	size_t tl, doff;

	assert_true(len >= 54);
	assert_memory_equal(p, GMAC, 6);
	assert_memory_equal(p + 6, net_mmds_mac, 6);
	assert_int_equal(nf_get16(p + 12), 0x0800);
	assert_int_equal(ip[0], 0x45);
	assert_int_equal(nf_get16(ip + 2), len - 14);
	assert_int_equal(ip[9], 6);
	assert_int_equal(nf_get32(ip + 12), MIP);
	assert_int_equal(nf_get32(ip + 16), GIP);
	assert_int_equal(nf_fold(nf_sum16(0, ip, 20)), 0xffff);
	t = ip + 20;
	tl = (size_t)len - 34;
	assert_int_equal(nf_fold(nf_sum16(nf_pseudo(MIP, GIP, tl), t, tl)), 0xffff);
	doff = (size_t)(t[12] >> 4) * 4;
	assert_true(doff >= 20 && doff <= tl);
	s->sport = nf_get16(t);
	s->dport = nf_get16(t + 2);
	s->seq = nf_get32(t + 4);
	s->ack = nf_get32(t + 8);
	s->flags = t[13];
	s->win = nf_get16(t + 14);
	s->mss = doff == 24 && t[20] == 2 && t[21] == 4 ? nf_get16(t + 22) : 0;
	s->len = tl - doff;
	memcpy(s->data, t + doff, s->len);
}

static bool rx_seg(struct fixture *f, struct seg *s)
{
	static uint8_t buf[70000];
	long len = rx_frame(f, buf, sizeof(buf));

	if (len < 0)
		return false;
	parse_seg(buf, len, s);
	return true;
}

static ssize_t host_recv(struct fixture *f, uint8_t *buf, size_t cap)
{
	return recv(f->host, buf, cap, MSG_DONTWAIT);
}

/* ---- A guest connection ---- */

struct gconn {
	uint16_t port;
	uint32_t seq; /* next to send */
	uint32_t ack; /* next expected */
	uint16_t win;
	uint16_t mss;
};

#define FIN 0x01
#define SYN 0x02
#define RST 0x04
#define PSH 0x08
#define ACK 0x10

static const uint8_t MSS1460[4] = { 2, 4, 0x05, 0xb4 };

static void g_send(struct fixture *f, struct gconn *g, uint8_t flags, const void *data, size_t len)
{
	struct nf_tcp t = { .sport = g->port,
		            .seq = g->seq,
		            .ack = g->ack,
		            .flags = flags,
		            .win = g->win,
		            .data = data,
		            .len = len };

	tx_tcp(f, &t);
	g->seq += (uint32_t)len + !!(flags & SYN) + !!(flags & FIN);
}

/* SYN, SYN-ACK (checked), ACK. */
static void g_connect(struct fixture *f, struct gconn *g)
{
	uint8_t mss[4] = { 2, 4, (uint8_t)(g->mss >> 8), (uint8_t)g->mss };
	struct nf_tcp t = { .sport = g->port,
		            .seq = g->seq,
		            .flags = SYN,
		            .win = g->win,
		            .opts = mss,
		            .optlen = g->mss ? 4 : 0 };
	struct seg s;

	tx_tcp(f, &t);
	g->seq++;
	assert_true(rx_seg(f, &s));
	assert_int_equal(s.flags, SYN | ACK);
	assert_int_equal(s.sport, 80);
	assert_int_equal(s.dport, g->port);
	assert_int_equal(s.ack, g->seq);
	assert_int_equal(s.mss, g->mss ? g->mss : 536);
	assert_int_equal(s.win, NET_MMDS_RCV_MAX);
	assert_int_equal(s.len, 0);
	g->ack = s.seq + 1;
	g_send(f, g, ACK, NULL, 0);
}

/*
 * Reads segments until @want bytes of data came (each in order, within @g's window and
 * MSS), ACKing as it goes when @ack_each. Returns the flags seen, or'ed.
 */
static uint8_t g_read(struct fixture *f, struct gconn *g, uint8_t *out, size_t want, bool ack_each)
{
	static struct seg s;
	size_t got = 0;
	uint8_t seen = 0;
	uint32_t acked = g->ack;

	while (got < want) {
		assert_true(rx_seg(f, &s));
		assert_int_equal(s.seq, g->ack);
		assert_true(s.flags & ACK);
		assert_true(s.len <= (g->mss ? g->mss : 536));
		/* Never beyond the window the guest last showed. */
		assert_true(g->ack + s.len - acked <= g->win);
		assert_true(got + s.len <= want);
		memcpy(out + got, s.data, s.len);
		got += s.len;
		g->ack += (uint32_t)s.len + !!(s.flags & FIN);
		seen |= s.flags;
		if (ack_each) {
			g_send(f, g, ACK, NULL, 0);
			acked = g->ack;
		}
	}
	return seen;
}

static size_t response(char *buf, size_t body)
{
	size_t n = (size_t)sprintf(buf, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", body);

	for (size_t i = 0; i < body; i++)
		buf[n + i] = (char)body_byte(i);
	return n + body;
}

/* ---- Tests ---- */

static void test_arp(void **state)
{
	struct fixture *f = *state;
	uint8_t frame[64], got[2048];
	long len;

	vdrv_start(&f->d, MRG, 256);
	rx_stock(f, 16, 2048);
	tx_frame(f, frame, nf_arp_frame(frame, GMAC, 1, GIP, MIP));
	len = rx_frame(f, got, sizeof(got));
	assert_int_equal(len, 42);
	assert_memory_equal(got, GMAC, 6);
	assert_memory_equal(got + 6, "\x06\x01\x23\x45\x67\x01", 6);
	assert_int_equal(nf_get16(got + 12), 0x0806);
	assert_int_equal(nf_get16(got + 20), 2); /* reply */
	assert_memory_equal(got + 22, net_mmds_mac, 6);
	assert_int_equal(nf_get32(got + 28), MIP);
	assert_memory_equal(got + 32, GMAC, 6);
	assert_int_equal(nf_get32(got + 38), GIP);
	assert_int_equal(stats(f)->rx_arp, 1);
	/* Nothing went to the TAP. */
	assert_int_equal(host_recv(f, got, sizeof(got)), -1);

	/* An ARP request for another address is the TAP's, byte for byte. */
	len = (long)nf_arp_frame(frame, GMAC, 1, GIP, OTHER);
	tx_frame(f, frame, (size_t)len);
	assert_int_equal(host_recv(f, got, sizeof(got)), HDR + len);
	assert_memory_equal(got + HDR, frame, (size_t)len);
	/* An ARP reply to the MMDS address is the stack's, and not answered. */
	tx_frame(f, frame, nf_arp_frame(frame, GMAC, 2, GIP, MIP));
	assert_true(rx_none(f));
	assert_int_equal(host_recv(f, got, sizeof(got)), -1);
	assert_int_equal(stats(f)->rx_unusual, 1);
	assert_int_equal(f->n.tx_packets, 1);
}

/* The stack's frames pass the RX limiter like the TAP's: the second waits for its token. */
static void test_rx_limiter(void **state)
{
	struct fixture *f = *state;
	const struct rate_limiter rx = {
		.ops = { .present = true, .size = 1, .refill_time_ms = 300 }
	};
	uint8_t frame[64], got[2048];

	vdrv_start(&f->d, MRG, 256);
	rx_stock(f, 16, 2048);
	virtio_net_set_limiters(&f->n, &rx, NULL);
	tx_frame(f, frame, nf_arp_frame(frame, GMAC, 1, GIP, MIP));
	assert_int_equal(rx_frame(f, got, sizeof(got)), 42);
	tx_frame(f, frame, nf_arp_frame(frame, GMAC, 1, GIP, MIP));
	assert_int_equal(rx_frame_wait(f, got, sizeof(got), 100), -1);
	/* The limiter's timer brings it, without another kick. */
	assert_int_equal(rx_frame(f, got, sizeof(got)), 42);
	assert_int_equal(stats(f)->rx_arp, 2);
}

static void test_get(void **state)
{
	struct fixture *f = *state;
	struct gconn g = { .port = 40000, .seq = 1000, .win = 64240, .mss = 1460 };
	const char *req = "GET /latest/meta-data HTTP/1.1\r\nHost: 169.254.169.254\r\n\r\n";
	const char *want = "HTTP/1.1 200 OK\r\nContent-Length: 23\r\n\r\nhello /latest/meta-data";
	char got[256];
	struct seg s;

	vdrv_start(&f->d, MRG, 256);
	rx_stock(f, 32, 2048);
	g_connect(f, &g);
	assert_int_equal(net_mmds_conns(f->n.mmds), 1);
	g_send(f, &g, ACK | PSH, req, strlen(req));
	assert_int_equal(g_read(f, &g, (uint8_t *)got, strlen(want), false) & PSH, PSH);
	assert_memory_equal(got, want, strlen(want));
	/* The request was ACKed with the answer. */
	g_send(f, &g, ACK, NULL, 0);
	assert_true(rx_none(f));
	/* The guest closes: its FIN is ACKed with ours, ours ACKed ends the connection. */
	g_send(f, &g, FIN | ACK, NULL, 0);
	assert_true(rx_seg(f, &s));
	assert_int_equal(s.flags, FIN | ACK);
	assert_int_equal(s.ack, g.seq);
	assert_int_equal(s.seq, g.ack);
	g.ack++;
	assert_int_equal(net_mmds_conns(f->n.mmds), 1);
	g_send(f, &g, ACK, NULL, 0);
	assert_int_equal(net_mmds_conns(f->n.mmds), 0);
	assert_int_equal(stats(f)->conns_opened, 1);
	assert_int_equal(stats(f)->conns_closed, 1);
	assert_int_equal(f->resp.served, 1);
	assert_int_equal(host_recv(f, (uint8_t *)got, sizeof(got)), -1);
	assert_int_equal(f->n.tx_packets, 0);
}

/*
 * A request one byte a segment, with partial checksums as Linux sends them with
 * VIRTIO_NET_F_CSUM; a segment sent again is ACKed, not taken twice.
 */
static void test_request_in_pieces(void **state)
{
	struct fixture *f = *state;
	struct gconn g = { .port = 40001, .seq = 0xfffffff0u, .win = 64240, .mss = 1460 };
	const char *req = "GET /pieces HTTP/1.1\r\nAccept: */*\r\n\r\n";
	const char *want = "HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\nhello /pieces";
	char got[256];
	struct seg s;

	vdrv_start(&f->d, MRG, 256);
	rx_stock(f, 64, 2048);
	g_connect(f, &g); /* the guest's sequence numbers wrap meanwhile */
	for (size_t i = 0; i < strlen(req); i++) {
		struct nf_tcp t = { .sport = g.port,
			            .seq = g.seq,
			            .ack = g.ack,
			            .flags = ACK,
			            .win = g.win,
			            .data = req + i,
			            .len = 1,
			            .partial = true };
		tx_tcp(f, &t);
		if (i == 3)
			tx_tcp(f, &t); /* again: ACKed, not taken twice */
		g.seq++;
		if (i + 1 < strlen(req)) {
			assert_true(rx_seg(f, &s));
			assert_int_equal(s.flags, ACK);
			assert_int_equal(s.ack, g.seq);
			if (i == 3) {
				assert_true(rx_seg(f, &s));
				assert_int_equal(s.ack, g.seq);
			}
			assert_int_equal(s.len, 0);
		}
	}
	g_read(f, &g, (uint8_t *)got, strlen(want), true);
	assert_memory_equal(got, want, strlen(want));
	assert_int_equal(stats(f)->rx_bad_csum, 0);
	assert_int_equal(f->resp.served, 1);
}

/* 100,000 bytes to a guest with a 2,500-byte window (not a multiple of the MSS) and a 1,000-byte
 * MSS. */
static void test_large_response(void **state)
{
	enum { W = 2500 };
	struct fixture *f = *state;
	struct gconn g = { .port = 40002, .seq = 5, .win = W, .mss = 1000 };
	const char *req = "GET /size/100000 HTTP/1.1\r\n\r\n";
	static char got[110000], want[110000];
	size_t wlen = response(want, 100000), got_len = 0;
	unsigned rounds = 0;
	struct seg s;

	vdrv_start(&f->d, MRG, 256);
	rx_stock(f, 64, 2048);
	g_connect(f, &g);
	g_send(f, &g, ACK, req, strlen(req));
	while (got_len < wlen) {
		/* One window's worth, then nothing until the guest ACKs. */
		size_t n = wlen - got_len < W ? wlen - got_len : W;
		g_read(f, &g, (uint8_t *)got + got_len, n, false);
		got_len += n;
		assert_true(rx_none(f));
		g_send(f, &g, ACK, NULL, 0);
		rounds++;
	}
	assert_int_equal(rounds, (wlen + W - 1) / W);
	assert_memory_equal(got, want, wlen);
	/* A window closed to 0 stops the stack; reopened, the next answer flows. */
	g.win = 0;
	g_send(f, &g, ACK, req, strlen(req));
	assert_true(rx_seg(f, &s)); /* the ACK of the request: no data fits */
	assert_int_equal(s.len, 0);
	assert_true(rx_none(f));
	g.win = W;
	g_send(f, &g, ACK, NULL, 0);
	g_read(f, &g, (uint8_t *)got, W, false);
	assert_memory_equal(got, want, W);
}

/* Three requests in one segment: three answers, in order, one after the other. */
static void test_pipelined(void **state)
{
	struct fixture *f = *state;
	struct gconn g = { .port = 40003, .seq = 77, .win = 65535, .mss = 1460 };
	const char *req =
	        "GET /a HTTP/1.1\r\n\r\nGET /size/5000 HTTP/1.1\r\n\r\nGET /c HTTP/1.1\r\n\r\n";
	static char want[8000], got[8000];
	size_t n = 0;

	n += (size_t)sprintf(want, "HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nhello /a");
	n += response(want + n, 5000);
	n += (size_t)sprintf(want + n, "HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nhello /c");
	vdrv_start(&f->d, MRG, 256);
	rx_stock(f, 64, 2048);
	g_connect(f, &g);
	g_send(f, &g, ACK | PSH, req, strlen(req));
	g_read(f, &g, (uint8_t *)got, n, true); /* each answer once the last is acknowledged */
	assert_memory_equal(got, want, n);
	assert_int_equal(f->resp.served, 3);
	/* The guest half-closes after one more request: answer, then FIN. */
	g_send(f, &g, ACK | FIN, "GET /d HTTP/1.1\r\n\r\n", 19);
	assert_int_equal(g_read(f, &g, (uint8_t *)got, 46, false) & FIN, FIN);
	assert_memory_equal(got + 38, "hello /d", 8);
	g_send(f, &g, ACK, NULL, 0);
	assert_int_equal(net_mmds_conns(f->n.mmds), 0);
}

/*
 * A data segment the guest dropped (netfilter, memory): its three duplicate ACKs bring it
 * again, and what followed it, before any timer (300 ms here).
 */
static void test_dup_ack_resend(void **state)
{
	struct fixture *f = *state;
	struct gconn g = { .port = 40030, .seq = 1, .win = 65535, .mss = 536 };
	static char want[4000], got[4000];
	static struct seg s;
	size_t n = response(want, 3000), have, lost;

	vdrv_start(&f->d, MRG, 256);
	rx_stock(f, 64, 2048);
	g_connect(f, &g);
	g_send(f, &g, ACK | PSH, "GET /size/3000 HTTP/1.1\r\n\r\n", 27);
	/* The first segment arrives; the second is lost; the rest arrive, out of order. */
	assert_true(rx_seg(f, &s));
	assert_int_equal(s.seq, g.ack);
	memcpy(got, s.data, s.len);
	have = s.len;
	g.ack += (uint32_t)s.len;
	g_send(f, &g, ACK, NULL, 0);
	assert_true(rx_seg(f, &s));
	lost = s.len;
	for (size_t sent = have + lost; sent < n; sent += s.len)
		assert_true(rx_seg(f, &s));
	assert_true(rx_none(f));
	for (int i = 0; i < 3; i++)
		g_send(f, &g, ACK, NULL, 0);
	/* From the lost one on, again; nothing lost this time. */
	g_read(f, &g, (uint8_t *)got + have, n - have, true);
	assert_memory_equal(got, want, n);
	assert_int_equal(stats(f)->retransmits, 0);
	assert_int_equal(net_mmds_conns(f->n.mmds), 1);
	assert_true(rx_none(f));
}

/* The last segment and its FIN dropped: the timer sends them again, until acknowledged. */
static void test_rto_resend(void **state)
{
	struct fixture *f = *state;
	struct gconn g = { .port = 40031, .seq = 1, .win = 65535, .mss = 1460 };
	static struct seg s, again;

	vdrv_start(&f->d, MRG, 256);
	rx_stock(f, 64, 2048);
	g_connect(f, &g);
	g_send(f, &g, ACK | FIN, "GET /a HTTP/1.1\r\n\r\n", 19);
	assert_true(rx_seg(f, &s));
	assert_int_equal(s.flags & FIN, FIN);
	/* Dropped: not acknowledged. The same bytes and FIN come again, twice. */
	for (int i = 1; i <= 2; i++) {
		assert_true(rx_seg(f, &again));
		assert_int_equal(again.seq, s.seq);
		assert_int_equal(again.flags & FIN, FIN);
		assert_int_equal(again.len, s.len);
		assert_memory_equal(again.data, s.data, s.len);
		assert_int_equal(stats(f)->retransmits, i);
	}
	g.ack = s.seq + (uint32_t)s.len + 1;
	g_send(f, &g, ACK, NULL, 0);
	assert_int_equal(net_mmds_conns(f->n.mmds), 0);
	assert_true(rx_frame_wait(f, (uint8_t[2048]){ 0 }, 2048, 100) < 0);
}

/* A guest that never acknowledges: 15 retransmissions, then a RST, and the slot is free. */
static void test_rto_give_up(void **state)
{
	struct fixture *f = *state;
	struct gconn g = { .port = 40032, .seq = 1, .win = 65535, .mss = 1460 };
	static struct seg s;
	unsigned copies = 0;

	vdrv_start(&f->d, MRG, 256);
	rx_stock(f, 64, 2048);
	g_connect(f, &g);
	g_send(f, &g, ACK | PSH, "GET /a HTTP/1.1\r\n\r\n", 19);
	for (;;) {
		assert_true(rx_seg(f, &s));
		if (s.flags & RST)
			break;
		assert_int_equal(s.seq, g.ack);
		copies++;
	}
	assert_int_equal(copies, 1 + NET_MMDS_RTO_MAX);
	assert_int_equal(s.flags, RST | ACK);
	assert_int_equal(stats(f)->retransmits, NET_MMDS_RTO_MAX);
	assert_int_equal(net_mmds_conns(f->n.mmds), 0);
	assert_true(rx_frame_wait(f, (uint8_t[2048]){ 0 }, 2048, 100) < 0);
}

static void test_resets(void **state)
{
	struct fixture *f = *state;
	struct gconn g = { .port = 40004, .seq = 1, .win = 65535, .mss = 1460 };
	static uint8_t big[NET_MMDS_RCV_MAX];
	char got[512];
	struct seg s;

	vdrv_start(&f->d, MRG, 256);
	rx_stock(f, 64, 2048);
	/* A RST out of the window is ignored; one in it ends the connection, unanswered. */
	g_connect(f, &g);
	g.seq += 100000;
	g_send(f, &g, RST, NULL, 0);
	assert_int_equal(net_mmds_conns(f->n.mmds), 1);
	g.seq -= 100000;
	g_send(f, &g, RST, NULL, 0);
	assert_int_equal(net_mmds_conns(f->n.mmds), 0);
	assert_true(rx_none(f));

	/* A request that fills the window without ending: reset, seq where the guest is. */
	g = (struct gconn){ .port = 40005, .seq = 1, .win = 65535, .mss = 1460 };
	g_connect(f, &g);
	memset(big, 'x', sizeof(big));
	g_send(f, &g, ACK, big, sizeof(big));
	assert_true(rx_seg(f, &s));
	assert_int_equal(s.flags, RST | ACK);
	assert_int_equal(s.seq, g.ack);
	assert_int_equal(net_mmds_conns(f->n.mmds), 0);

	/* The responder refuses a request: its answer, then FIN; more bytes are dropped. */
	g = (struct gconn){ .port = 40006, .seq = 1, .win = 65535, .mss = 1460 };
	g_connect(f, &g);
	g_send(f, &g, ACK, "GET /bad HTTP/1.1\r\n\r\n", 21);
	assert_int_equal(g_read(f, &g, (uint8_t *)got, 47, false) & FIN, FIN);
	assert_memory_equal(got, "HTTP/1.1 400", 12);
	assert_int_equal(stats(f)->bad_requests, 1);
	g_send(f, &g, ACK, "GET / HTTP/1.1\r\n\r\n", 18);
	assert_true(rx_seg(f, &s));
	assert_int_equal(s.len, 0);
	assert_int_equal(s.ack, g.seq);
	assert_int_equal(f->resp.served, 0);
	/* Its FIN after ours was acknowledged: ACKed, then the connection is gone. */
	g_send(f, &g, ACK | FIN, NULL, 0);
	assert_true(rx_seg(f, &s));
	assert_int_equal(s.flags, ACK);
	assert_int_equal(s.ack, g.seq);
	assert_int_equal(net_mmds_conns(f->n.mmds), 0);

	/* Refused with no answer (mmds_serve()'s head too long): RST, as Firecracker. */
	g = (struct gconn){ .port = 40009, .seq = 1, .win = 65535, .mss = 1460 };
	g_connect(f, &g);
	g_send(f, &g, ACK, "GET /mute HTTP/1.1\r\n\r\n", 22);
	assert_true(rx_seg(f, &s));
	assert_int_equal(s.flags, RST | ACK);
	assert_int_equal(s.seq, g.ack);
	assert_int_equal(stats(f)->bad_requests, 2);
	assert_int_equal(net_mmds_conns(f->n.mmds), 0);
	assert_true(rx_none(f));

	/* A segment for no connection, and one to another port: RST, as RFC 793 makes it. */
	g = (struct gconn){ .port = 40007, .seq = 555, .ack = 777, .win = 100 };
	g_send(f, &g, ACK, "x", 1);
	assert_true(rx_seg(f, &s));
	assert_int_equal(s.flags, RST);
	assert_int_equal(s.seq, 777);
	struct nf_tcp t = { .sport = 40008, .dport = 8080, .seq = 9, .flags = SYN };
	tx_tcp(f, &t);
	assert_true(rx_seg(f, &s));
	assert_int_equal(s.flags, RST | ACK);
	assert_int_equal(s.sport, 8080);
	assert_int_equal(s.ack, 10);
	/* A RST for nothing is not answered. */
	g_send(f, &g, RST, NULL, 0);
	assert_true(rx_none(f));
}

/* 30 connections; the 31st SYN is refused, or takes the place of an idle one. */
static void test_conn_limit(void **state)
{
	struct fixture *f = *state;
	struct gconn g[NET_MMDS_MAX_CONNS + 1];
	struct nf_tcp t = { .sport = 50000 + NET_MMDS_MAX_CONNS, .seq = 42, .flags = SYN };
	struct seg s;

	vdrv_start(&f->d, MRG, 256);
	rx_stock(f, 64, 2048);
	for (unsigned i = 0; i < NET_MMDS_MAX_CONNS; i++) {
		g[i] = (struct gconn){
			.port = (uint16_t)(50000 + i), .seq = i, .win = 65535, .mss = 1460
		};
		g_connect(f, &g[i]);
	}
	assert_int_equal(net_mmds_conns(f->n.mmds), NET_MMDS_MAX_CONNS);
	tx_tcp(f, &t);
	assert_true(rx_seg(f, &s));
	assert_int_equal(s.flags, RST | ACK);
	assert_int_equal(s.ack, 43);
	assert_int_equal(stats(f)->conns_refused, 1);
	/* Idle long enough (the fixture's 50 ms): the oldest goes, with a RST, for the new one. */
	usleep(60000);
	for (unsigned i = 1; i < NET_MMDS_MAX_CONNS; i++)
		g_send(f, &g[i], ACK, NULL, 0); /* all but the first are busy */
	tx_tcp(f, &t);
	assert_true(rx_seg(f, &s));
	assert_int_equal(s.flags, RST | ACK);
	assert_int_equal(s.dport, 50000);
	assert_int_equal(s.seq, g[0].ack);
	assert_true(rx_seg(f, &s));
	assert_int_equal(s.flags, SYN | ACK);
	assert_int_equal(s.dport, 50000 + NET_MMDS_MAX_CONNS);
	assert_int_equal(stats(f)->conns_evicted, 1);
	assert_int_equal(net_mmds_conns(f->n.mmds), NET_MMDS_MAX_CONNS);
}

/*
 * No RX buffers: the stack's answers and the TAP's frames wait, the guest's frames still
 * go out; with buffers, both arrive, taking turns.
 */
static void test_rx_ring_full(void **state)
{
	struct fixture *f = *state;
	struct virtio_net_hdr_v1 h = { .gso_type = VIRTIO_NET_HDR_GSO_NONE };
	uint8_t frame[200], got[4096];
	unsigned mmds = 0, tap = 0, switches = 0;
	bool last_mmds = false;
	long len;

	vdrv_start(&f->d, MRG, 256);
	for (unsigned i = 0; i < 20; i++) {
		struct nf_tcp t = { .sport = (uint16_t)(60000 + i), .seq = i, .flags = SYN };
		tx_tcp(f, &t);
		memset(frame, (int)i, sizeof(frame));
		memcpy(frame, "\x52\x54\x00\x00\x00\x01", 6);
		memcpy(frame + 6, GMAC, 6);
		uint8_t b[HDR + 200];
		memcpy(b, &h, HDR);
		memcpy(b + HDR, frame, 200);
		assert_int_equal(send(f->host, b, sizeof(b), 0), (ssize_t)sizeof(b));
	}
	/* The guest's ordinary frames are not held up. */
	memset(frame, 0x5a, sizeof(frame));
	nf_put16(frame + 12, 0x0800);
	tx_frame(f, frame, sizeof(frame));
	assert_int_equal(host_recv(f, got, sizeof(got)), HDR + sizeof(frame));
	for (unsigned i = 0; i < 20; i++)
		loop_run_once(f->d.loop, 1000);
	assert_int_equal(net_mmds_conns(f->n.mmds), 20);
	assert_true(net_mmds_pending(f->n.mmds));
	/* At most one frame made, waiting in the device for a buffer. */
	assert_true(stats(f)->tx_frames <= 1);
	assert_int_equal(f->n.rx_packets, 0);

	rx_stock(f, 16, 2048);
	while ((len = rx_frame(f, got, sizeof(got))) >= 0) {
		bool is_mmds = !memcmp(got + 6, net_mmds_mac, 6);
		mmds += is_mmds;
		tap += !is_mmds;
		switches += (mmds + tap > 1 && is_mmds != last_mmds);
		last_mmds = is_mmds;
	}
	assert_int_equal(mmds, 20);
	assert_int_equal(tap, 20);
	/* Turns: never more than a frame from one side while the other waits. */
	assert_true(switches >= 38);
	assert_int_equal(f->n.rx_dropped, 0);
}

/* Without MRG_RXBUF each frame is made for the buffer it goes into. */
static void test_no_mrg(void **state)
{
	struct fixture *f = *state;
	struct gconn g = { .port = 40010, .seq = 1, .win = 65535, .mss = 1460 };
	const char *req = "GET /size/5000 HTTP/1.1\r\n\r\n";
	static char got[6000], want[6000];
	size_t wlen = response(want, 5000), n = 0;
	struct seg s;

	vdrv_start(&f->d, BASE, 256);
	rx_stock(f, 64, HDR + 1514);
	g_connect(f, &g);
	g_send(f, &g, ACK, req, strlen(req));
	g_read(f, &g, (uint8_t *)got, wlen, true);
	assert_memory_equal(got, want, wlen);
	/* Buffers of 300 bytes: segments of 300 - 12 - 54 bytes, never a dropped frame. */
	vdrv_start(&f->d, BASE, 256);
	f->rx_size = 0;
	rx_stock(f, 64, 300);
	f->rx_size = 300;
	g = (struct gconn){ .port = 40011, .seq = 1, .win = 65535, .mss = 1460 };
	g_connect(f, &g);
	g_send(f, &g, ACK, req, strlen(req));
	while (n < wlen) {
		assert_true(rx_seg(f, &s));
		assert_int_equal(s.seq, g.ack);
		assert_true(s.len <= 300 - HDR - 54);
		assert_memory_equal(s.data, want + n, s.len);
		n += s.len;
		g.ack += (uint32_t)s.len;
	}
	assert_int_equal(f->n.rx_dropped, 0);
}

/* Frames nobody sends but a broken or hostile guest: each counted, none crashes. */
static void test_hostile(void **state)
{
	struct fixture *f = *state;
	static uint8_t frame[2000], got[4096];
	const struct net_mmds_stats *st;
	struct nf_tcp t = { .sport = 41000, .seq = 1, .flags = SYN, .opts = MSS1460, .optlen = 4 };
	struct seg s;
	size_t len;

	vdrv_start(&f->d, MRG, 256);
	rx_stock(f, 64, 2048);
	st = stats(f);
	/* Truncated: an IPv4 header cut short, a TCP header cut short. */
	len = tcp_frame(frame, &t);
	tx_frame(f, frame, 34);
	tx_frame(f, frame, 40);
	nf_put16(frame + 16, 30); /* total length: a 10-byte TCP header */
	nf_put16(frame + 24, 0);
	nf_put16(frame + 24, (uint16_t)~nf_fold(nf_sum16(0, frame + 14, 20)));
	tx_frame(f, frame, len);
	assert_int_equal(st->rx_malformed, 3);
	/* Bad lengths: total length beyond the frame, header length below 20. */
	len = tcp_frame(frame, &t);
	nf_put16(frame + 16, 2000);
	tx_frame(f, frame, len);
	len = tcp_frame(frame, &t);
	frame[14] = 0x44;
	tx_frame(f, frame, len);
	len = tcp_frame(frame, &t);
	frame[14] = 0x65; /* IPv6 in an IPv4 frame */
	tx_frame(f, frame, len);
	/* TCP data offset below 5, and beyond the segment. */
	len = tcp_frame(frame, &t);
	frame[46] = 0x40;
	tx_frame(f, frame, len);
	frame[46] = 0xf0;
	tx_frame(f, frame, len);
	assert_int_equal(st->rx_malformed, 8);
	/* Bad checksums: IPv4 header, TCP. */
	len = tcp_frame(frame, &t);
	frame[24] ^= 1;
	tx_frame(f, frame, len);
	len = tcp_frame(frame, &t);
	frame[50] ^= 1;
	tx_frame(f, frame, len);
	assert_int_equal(st->rx_bad_csum, 2);
	/* A partial checksum whose start is past the frame. */
	struct virtio_net_hdr_v1 h = { .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
		                       .csum_start = htole16(5000),
		                       .csum_offset = htole16(16) };
	len = tcp_frame(frame, &t);
	tx_add(f, &h, frame, len);
	vdrv_kick(&f->d, TX);
	assert_int_equal(st->rx_malformed, 9);
	/* Fragments: more-fragments, and an offset. */
	len = tcp_frame(frame, &t);
	nf_put16(frame + 20, 0x2000);
	nf_put16(frame + 24, 0);
	nf_put16(frame + 24, (uint16_t)~nf_fold(nf_sum16(0, frame + 14, 20)));
	tx_frame(f, frame, len);
	nf_put16(frame + 20, 0x0010);
	nf_put16(frame + 24, 0);
	nf_put16(frame + 24, (uint16_t)~nf_fold(nf_sum16(0, frame + 14, 20)));
	tx_frame(f, frame, len);
	assert_int_equal(st->rx_fragments, 2);
	/* UDP and ICMP to the address: the stack's, dropped. */
	len = tcp_frame(frame, &t);
	frame[23] = 17;
	nf_put16(frame + 24, 0);
	nf_put16(frame + 24, (uint16_t)~nf_fold(nf_sum16(0, frame + 14, 20)));
	tx_frame(f, frame, len);
	assert_int_equal(st->rx_unusual, 1);
	/* A SYN with options that run past the header, one with an MSS of 50. */
	uint8_t badopt[4] = { 8, 10, 0, 0 }, tiny[4] = { 2, 4, 0, 50 };
	struct nf_tcp t2 = t;
	t2.opts = badopt;
	tx_tcp(f, &t2);
	assert_int_equal(st->rx_malformed, 10);
	t2.opts = tiny;
	tx_tcp(f, &t2);
	assert_true(rx_seg(f, &s));
	assert_int_equal(s.flags, RST | ACK);
	assert_int_equal(st->conns_refused, 1);
	/* None of it made a connection or reached the TAP. */
	assert_true(rx_none(f));
	assert_int_equal(host_recv(f, got, sizeof(got)), -1);
	assert_int_equal(net_mmds_conns(f->n.mmds), 0);
	/* IP options are skipped: the SYN is taken. */
	t.ipopts = 8;
	tx_tcp(f, &t);
	assert_true(rx_seg(f, &s));
	assert_int_equal(s.flags, SYN | ACK);
	assert_int_equal(net_mmds_conns(f->n.mmds), 1);
	assert_int_equal(st->rx_frames, 17);
	assert_int_equal(f->n.tx_dropped, 0);
	assert_int_equal(f->n.tx_packets, 0);
}

/* Data out of order or beyond the window is not kept; the guest gets an ACK saying so. */
static void test_out_of_window(void **state)
{
	struct fixture *f = *state;
	struct gconn g = { .port = 40020, .seq = 1, .win = 65535, .mss = 1460 };
	static uint8_t big[3000];
	struct seg s;

	vdrv_start(&f->d, MRG, 256);
	rx_stock(f, 64, 2048);
	g_connect(f, &g);
	/* A gap: ACK of what was taken, nothing kept. */
	struct nf_tcp t = { .sport = g.port,
		            .seq = g.seq + 10,
		            .ack = g.ack,
		            .flags = ACK,
		            .data = "GET",
		            .len = 3 };
	tx_tcp(f, &t);
	assert_true(rx_seg(f, &s));
	assert_int_equal(s.ack, g.seq);
	assert_int_equal(stats(f)->rx_out_of_wnd, 1);
	/* 3000 bytes into a 2500-byte window: 2500 taken, then a reset for the overflow. */
	memset(big, 'y', sizeof(big));
	g_send(f, &g, ACK, big, sizeof(big));
	assert_true(rx_seg(f, &s));
	assert_int_equal(s.flags, RST | ACK);
	assert_int_equal(stats(f)->rx_out_of_wnd, 2);
	/* An ACK of data never sent is answered with an ACK and dropped. */
	g = (struct gconn){ .port = 40021, .seq = 1, .win = 65535, .mss = 1460 };
	g_connect(f, &g);
	g.ack += 5000;
	g_send(f, &g, ACK, "GET / HTTP/1.1\r\n\r\n", 18);
	assert_true(rx_seg(f, &s));
	assert_int_equal(s.len, 0);
	assert_int_equal(s.ack, g.seq - 18);
	assert_int_equal(f->resp.calls, 1); /* the 2500 bytes of y, never a request */
}

/*
 * A SYN flood with no RX buffers: 30 connections, 100 resets waiting, the rest lost and
 * counted; the memory held does not grow with the flood.
 */
static void test_syn_flood(void **state)
{
	struct fixture *f = *state;
	uint8_t got[2048];
	unsigned n = 0;

	vdrv_start(&f->d, MRG, 256);
	for (unsigned i = 0; i < 1000; i++) {
		struct nf_tcp t = { .sport = (uint16_t)(1024 + i), .seq = i * 7, .flags = SYN };
		tx_tcp(f, &t);
	}
	assert_int_equal(net_mmds_conns(f->n.mmds), NET_MMDS_MAX_CONNS);
	assert_int_equal(stats(f)->conns_refused, 1000 - NET_MMDS_MAX_CONNS);
	assert_int_equal(stats(f)->rsts_lost, 1000 - NET_MMDS_MAX_CONNS - NET_MMDS_MAX_RSTS);
	rx_stock(f, 64, 2048);
	while (rx_frame(f, got, sizeof(got)) >= 0)
		n++;
	assert_int_equal(n, NET_MMDS_MAX_CONNS + NET_MMDS_MAX_RSTS);
	assert_int_equal(host_recv(f, got, sizeof(got)), -1);
}

/* A device reset forgets every connection and what was waiting. */
static void test_reset(void **state)
{
	struct fixture *f = *state;
	struct gconn g = { .port = 40030, .seq = 1, .win = 100, .mss = 1460 };
	const char *req = "GET /size/50000 HTTP/1.1\r\n\r\n";
	uint8_t got[2048];

	vdrv_start(&f->d, MRG, 256);
	rx_stock(f, 8, 2048);
	g_connect(f, &g);
	g_send(f, &g, ACK, req, strlen(req));
	assert_int_equal(net_mmds_conns(f->n.mmds), 1);
	vdrv_start(&f->d, MRG, 256);
	assert_int_equal(net_mmds_conns(f->n.mmds), 0);
	assert_false(net_mmds_pending(f->n.mmds));
	f->rx_size = 0;
	rx_stock(f, 8, 2048);
	/* The old connection's segments are answered with RST now. */
	g_send(f, &g, ACK, NULL, 0);
	assert_true(rx_frame(f, got, sizeof(got)) > 0);
	assert_int_equal(got[14 + 20 + 13], RST);
}

/* ---- The kernel's TCP as the guest ---- */

/*
 * In a forked child (cmocka's asserts would unwind into the child's copy of the runner):
 * a check that ends the child with one line.
 */
#define CHILD_CHECK(cond, ...)                                                                     \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "kernel tcp: line %d: %s: ", __LINE__, #cond);             \
			fprintf(stderr, __VA_ARGS__);                                              \
			fprintf(stderr, "\n");                                                     \
			_exit(1);                                                                  \
		}                                                                                  \
	} while (0)

static int ifreq_ioctl(int s, unsigned long req, const char *name, uint32_t addr)
{
	struct ifreq ifr = { 0 };
	struct sockaddr_in *sin = (struct sockaddr_in *)&ifr.ifr_addr;

	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = htonl(addr);
	return ioctl(s, req, &ifr);
}

/* A TAP in this (new) network namespace, 169.254.0.2/16, with the offloads a guest has. */
static int kernel_tap(void)
{
	struct ifreq ifr = { .ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR };
	int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC), hdr = HDR;
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	FILE *fp;

	CHILD_CHECK(fd >= 0 && s >= 0, "/dev/net/tun: %s", strerror(errno));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "mmds0");
	CHILD_CHECK(ioctl(fd, TUNSETIFF, &ifr) == 0, "TUNSETIFF: %s", strerror(errno));
	CHILD_CHECK(ioctl(fd, TUNSETVNETHDRSZ, &hdr) == 0, "TUNSETVNETHDRSZ: %s", strerror(errno));
	/* What the kernel hands the TAP is what a Linux guest hands virtio-net with CSUM+TSO. */
	CHILD_CHECK(ioctl(fd, TUNSETOFFLOAD, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6) == 0,
	            "TUNSETOFFLOAD: %s", strerror(errno));
	fp = fopen("/proc/sys/net/ipv6/conf/mmds0/disable_ipv6", "w");
	if (fp) {
		fputs("1", fp);
		fclose(fp);
	}
	CHILD_CHECK(ifreq_ioctl(s, SIOCSIFADDR, "mmds0", 0xa9fe0002) == 0, "address: %s",
	            strerror(errno));
	CHILD_CHECK(ifreq_ioctl(s, SIOCSIFNETMASK, "mmds0", 0xffff0000) == 0, "netmask: %s",
	            strerror(errno));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "mmds0");
	CHILD_CHECK(ioctl(s, SIOCGIFFLAGS, &ifr) == 0, "flags: %s", strerror(errno));
	ifr.ifr_flags |= IFF_UP;
	CHILD_CHECK(ioctl(s, SIOCSIFFLAGS, &ifr) == 0, "up: %s", strerror(errno));
	close(s);
	return fd;
}

struct pump {
	struct fixture *f;
	int tap;
	uint64_t gso_frames, partial_frames; /* from the kernel, as a guest sends them */
};

/* Frames both ways between the kernel's TAP and the device, once. */
static void pump_once(struct pump *p)
{
	static uint8_t buf[HDR + 70000];
	struct fixture *f = p->f;
	uint32_t id, len;
	ssize_t r;

	while ((r = read(p->tap, buf, sizeof(buf))) > HDR) {
		const struct virtio_net_hdr_v1 *h = (const void *)buf;
		p->gso_frames += h->gso_type != VIRTIO_NET_HDR_GSO_NONE;
		p->partial_frames += !!(h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM);
		if (f->d.brk + (uint64_t)r + (1 << 20) > (64 << 20))
			f->d.brk = 8 << 20; /* old frames' memory: long since used */
		tx_add(f, h, buf + HDR, (size_t)r - HDR);
		vdrv_kick(&f->d, TX);
	}
	loop_run_once(f->d.loop, 0);
	/* What the kernel sends elsewhere goes to the device's "TAP": read, so it never fills. */
	while (recv(f->host, buf, sizeof(buf), MSG_DONTWAIT) > 0)
		;
	while (vdrv_used_idx(&f->d, RX) != f->d.q[RX].last_used &&
	       vdrv_wait_used(&f->d, RX, &id, &len, 0)) {
		uint8_t *q = vdrv_hva(&f->d, f->rx_gpa[id], len);
		CHILD_CHECK(len > HDR && le16toh(((struct virtio_net_hdr_v1 *)q)->num_buffers) == 1,
		            "RX of %u bytes", len);
		CHILD_CHECK(write(p->tap, q, len) == (ssize_t)len, "write to the TAP: %s",
		            strerror(errno));
		rx_post(f, 4096);
		vdrv_kick(&f->d, RX);
	}
}

/* Pumps until @fd is ready for @events (or 10 s). */
static void pump_until(struct pump *p, int fd, short events)
{
	long long deadline = clock_now_ns() + 10000000000LL;

	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = events };
		pump_once(p);
		if (poll(&pfd, 1, 1) == 1)
			return;
		CHILD_CHECK(clock_now_ns() < deadline, "nothing for 10 s");
	}
}

/* Sends @req and reads @want bytes of answer, on the kernel's socket @fd. */
static void kernel_exchange(struct pump *p, int fd, const char *req, const char *want,
                            size_t want_len)
{
	static char got[200000];
	size_t sent = 0, n = 0, len = strlen(req);

	while (sent < len) {
		ssize_t r = send(fd, req + sent, len - sent, MSG_NOSIGNAL);
		if (r > 0)
			sent += (size_t)r;
		else
			pump_until(p, fd, POLLOUT);
	}
	while (n < want_len) {
		ssize_t r = recv(fd, got + n, sizeof(got) - n, 0);
		CHILD_CHECK(r != 0, "EOF after %zu of %zu bytes", n, want_len);
		if (r > 0)
			n += (size_t)r;
		else
			pump_until(p, fd, POLLIN);
	}
	CHILD_CHECK(n == want_len && !memcmp(got, want, want_len), "the answer differs (%zu bytes)",
	            n);
}

static void kernel_child(void)
{
	static char want[200000], big[2400];
	struct pump p = { 0 };
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(80) };
	int fd, r;
	size_t wlen;

	CHILD_CHECK(unshare(CLONE_NEWNET) == 0, "unshare(CLONE_NEWNET): %s", strerror(errno));
	p.tap = kernel_tap();
	p.f = fixture_new(0, 0);
	CHILD_CHECK(!(vdrv_start(&p.f->d, MRG, 256) & VIRTIO_STATUS_DEVICE_NEEDS_RESET), "start");
	rx_stock(p.f, 64, 4096);
	p.f->rx_size = 0; /* pump_once posts them again */

	/* ARP, handshake, 100,000 bytes back, then a second request on the connection. */
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	sa.sin_addr.s_addr = htonl(MIP);
	r = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	CHILD_CHECK(r == 0 || errno == EINPROGRESS, "connect: %s", strerror(errno));
	pump_until(&p, fd, POLLOUT);
	socklen_t sl = sizeof(r);
	CHILD_CHECK(getsockopt(fd, SOL_SOCKET, SO_ERROR, &r, &sl) == 0 && r == 0, "connect: %s",
	            strerror(r));
	wlen = response(want, 100000);
	kernel_exchange(&p, fd, "GET /size/100000 HTTP/1.1\r\nHost: 169.254.169.254\r\n\r\n", want,
	                wlen);
	kernel_exchange(&p, fd, "GET /again HTTP/1.1\r\n\r\n",
	                "HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\nhello /again", 51);
	/* A request larger than the MSS: the kernel sends it as one TSO frame or several. */
	memset(big, 'p', sizeof(big));
	memcpy(big, "GET /big HTTP/1.1\r\nX-Pad: ", 26);
	memcpy(big + sizeof(big) - 5, "\r\n\r\n", 5);
	kernel_exchange(&p, fd, big, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello /big", 49);
	/* The kernel closes: our FIN comes back (EOF), and the connection ends on both sides. */
	CHILD_CHECK(shutdown(fd, SHUT_WR) == 0, "shutdown: %s", strerror(errno));
	char c;
	for (;;) {
		ssize_t n = recv(fd, &c, 1, 0);
		CHILD_CHECK(n <= 0, "data after the answers");
		if (n == 0)
			break;
		pump_until(&p, fd, POLLIN);
	}
	for (unsigned i = 0; i < 100 && net_mmds_conns(p.f->n.mmds); i++) {
		pump_once(&p);
		usleep(1000);
	}
	CHILD_CHECK(net_mmds_conns(p.f->n.mmds) == 0, "%u connections left",
	            net_mmds_conns(p.f->n.mmds));
	CHILD_CHECK(p.partial_frames > 0, "the kernel sent no partial checksum");
	CHILD_CHECK(net_mmds_stats(p.f->n.mmds)->rx_bad_csum == 0 &&
	                    net_mmds_stats(p.f->n.mmds)->rx_malformed == 0,
	            "frames dropped");
	fprintf(stderr,
	        "kernel tcp: %llu frames from the kernel had partial checksums, %llu were TSO\n",
	        (unsigned long long)p.partial_frames, (unsigned long long)p.gso_frames);
	close(fd);
	_exit(0);
}

/*
 * Linux's own TCP (in a network namespace of its own, over a TAP with the offloads a
 * guest negotiates: partial checksums, TSO) talks to the stack through the real device.
 */
static void test_kernel_tcp(void **state)
{
	int status;
	pid_t pid;

	(void)state;
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		kernel_child();
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

/* ---- main ---- */

static int group_setup(void **state)
{
	(void)state;
	return test_log_capture("mmds.log");
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_arp, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rx_limiter, setup, teardown),
		cmocka_unit_test_setup_teardown(test_get, setup, teardown),
		cmocka_unit_test_setup_teardown(test_request_in_pieces, setup, teardown),
		cmocka_unit_test_setup_teardown(test_large_response, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pipelined, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dup_ack_resend, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rto_resend, setup_rto, teardown),
		cmocka_unit_test_setup_teardown(test_rto_give_up, setup_rto, teardown),
		cmocka_unit_test_setup_teardown(test_resets, setup, teardown),
		cmocka_unit_test_setup_teardown(test_conn_limit, setup_idle, teardown),
		cmocka_unit_test_setup_teardown(test_rx_ring_full, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_mrg, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile, setup, teardown),
		cmocka_unit_test_setup_teardown(test_out_of_window, setup, teardown),
		cmocka_unit_test_setup_teardown(test_syn_flood, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reset, setup, teardown),
		cmocka_unit_test(test_kernel_tcp),
	};
	return TEST_MAIN(tests, group_setup, test_log_group_teardown);
}
