/*
 * virtio-net through the test driver, over a datagram socketpair that stands in for the
 * TAP (it keeps frame boundaries as a TAP does): frames both ways byte-exact with their
 * header, whole and mergeable RX buffers, frames waiting for buffers without spinning, TX
 * backpressure, hostile chains, reset mid-traffic, rate limits; and a real TAP: opening it,
 * its errors, its offloads, frames through it.
 */
#include "devices/virtio/net.h"
#include "tests/lib/util.h"
#include "tests/lib/virtio_driver.h"
#include "vmm/base/clock.h"
#include "vmm/base/log.h"

#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <linux/virtio_net.h>
#include <net/if.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#define HDR     VIRTIO_NET_HDR_LEN
#define RX      VIRTIO_NET_Q_RX
#define TX      VIRTIO_NET_Q_TX
#define NF(bit) VIRTIO_FEATURE(VIRTIO_NET_F_##bit)

static const uint64_t BASE = VIRTIO_FEATURE(VIRTIO_F_VERSION_1) |
                             VIRTIO_FEATURE(VIRTIO_F_EVENT_IDX) |
                             VIRTIO_FEATURE(VIRTIO_F_INDIRECT_DESC) | NF(CSUM) | NF(HOST_TSO4) |
                             NF(HOST_TSO6) | NF(STATUS) | NF(MAC);
#define MRG (BASE | NF(MRG_RXBUF))

static const uint8_t MAC[6] = { 0x06, 0x00, 0xac, 0x10, 0x00, 0x02 };

struct fixture {
	struct virtio_net n;
	struct vdrv d;
	struct net_config cfg;
	int host;             /* the other end: what the host side of the TAP sees */
	uint64_t rx_gpa[256]; /* RX buffer of each head */
};

/* ---- Fixture ---- */

static struct fixture *fixture_new(const struct net_config *cfg)
{
	struct fixture *f = calloc(1, sizeof(*f));
	int sv[2];

	assert_non_null(f);
	f->cfg = *cfg;
	assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(vdrv_setup(&f->d, 64 << 20), 0);
	assert_int_equal(virtio_net_init_fd(&f->n, sv[0], &f->cfg, f->d.loop), 0);
	assert_int_equal(vdrv_bind(&f->d, &f->n.dev), 0);
	f->host = sv[1];
	return f;
}

static void fixture_free(struct fixture *f)
{
	vdrv_unbind(&f->d); /* resets the device first, as the VM does */
	virtio_net_destroy(&f->n);
	vdrv_destroy(&f->d);
	if (f->host >= 0)
		close(f->host);
	free(f);
}

static int setup(void **state)
{
	struct net_config cfg = { .id = "eth0", .has_mac = true };

	memcpy(cfg.mac, MAC, 6);
	*state = fixture_new(&cfg);
	return 0;
}

static int setup_nomac(void **state)
{
	struct net_config cfg = { .id = "eth1" };

	*state = fixture_new(&cfg);
	return 0;
}

/* TX: 2 packets, then 2 more every 100 ms. RX: 2000 bytes, then 2000 more every 100 ms. */
static int setup_limited(void **state)
{
	struct net_config cfg = { .id = "slow" };

	cfg.tx.ops = (struct token_bucket){ .present = true, .size = 2, .refill_time_ms = 100 };
	cfg.rx.bandwidth =
	        (struct token_bucket){ .present = true, .size = 2000, .refill_time_ms = 100 };
	*state = fixture_new(&cfg);
	return 0;
}

/* One frame each way per 100 s: the second waits for a refill the test never sees. */
static int setup_strict(void **state)
{
	struct net_config cfg = { .id = "strict" };

	cfg.tx.ops = (struct token_bucket){ .present = true, .size = 1, .refill_time_ms = 100000 };
	cfg.rx.ops = cfg.tx.ops;
	*state = fixture_new(&cfg);
	return 0;
}

static int teardown(void **state)
{
	fixture_free(*state);
	return 0;
}

/* ---- Helpers ---- */

static void pattern(uint8_t *p, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(seed * 31 + i * 7 + (i >> 8));
}

static struct virtio_net_hdr_v1 hdr_plain(void)
{
	return (struct virtio_net_hdr_v1){ .gso_type = VIRTIO_NET_HDR_GSO_NONE };
}

/* The host side sends one frame, header first, as the TAP would hand it to the device. */
static void host_send(struct fixture *f, const struct virtio_net_hdr_v1 *h, const uint8_t *frame,
                      size_t len)
{
	uint8_t *b = malloc(HDR + len);

	assert_non_null(b);
	memcpy(b, h, HDR);
	memcpy(b + HDR, frame, len);
	assert_int_equal(send(f->host, b, HDR + len, MSG_DONTWAIT), (ssize_t)(HDR + len));
	free(b);
}

static ssize_t host_recv(struct fixture *f, uint8_t *buf, size_t cap)
{
	return recv(f->host, buf, cap, MSG_DONTWAIT);
}

/*
 * Puts header + frame into guest memory as a readable chain of @nsegs buffers (the first
 * one 5 bytes when there are several, so the header is split too). No kick.
 */
static uint16_t guest_tx_add(struct fixture *f, const struct virtio_net_hdr_v1 *h,
                             const uint8_t *frame, size_t len, unsigned nsegs)
{
	size_t total = HDR + len, off = 0;
	uint64_t gpa = vdrv_alloc(&f->d, total, 8);
	uint8_t *p = vdrv_hva(&f->d, gpa, total);
	struct vdrv_buf bufs[256];

	assert_true(nsegs >= 1 && nsegs <= 256);
	memcpy(p, h, HDR);
	memcpy(p + HDR, frame, len);
	for (unsigned i = 0; i < nsegs; i++) {
		size_t n = i + 1 == nsegs ? total - off : (i == 0 ? 5 : (total - 5) / (nsegs - 1));
		bufs[i] = (struct vdrv_buf){ gpa + off, (uint32_t)n, false };
		off += n;
	}
	return vdrv_add(&f->d, TX, bufs, nsegs);
}

/* One writable RX chain of @len bytes. */
static uint16_t rx_post(struct fixture *f, uint32_t len)
{
	uint64_t gpa = vdrv_alloc(&f->d, len, 8);
	struct vdrv_buf b = { gpa, len, true };
	uint16_t head = vdrv_add(&f->d, RX, &b, 1);

	f->rx_gpa[head] = gpa;
	return head;
}

static bool used_pending(struct fixture *f, unsigned q)
{
	return vdrv_used_idx(&f->d, q) != f->d.q[q].last_used;
}

static void run_loop(struct fixture *f, unsigned rounds, uint64_t usec)
{
	for (unsigned i = 0; i < rounds; i++)
		loop_run_once(f->d.loop, usec);
}

static uint32_t device_status(struct fixture *f)
{
	return vdrv_read(&f->d, VIRTIO_MMIO_STATUS);
}

static uint16_t hdr_num_buffers(const void *p)
{
	return le16toh(((const struct virtio_net_hdr_v1 *)p)->num_buffers);
}

static uint16_t avail_event(struct fixture *f, unsigned q)
{
	struct vdrv_queue *vq = &f->d.q[q];
	uint16_t *used = vdrv_hva(&f->d, vq->used, VIRTQ_USED_BYTES(vq->size));

	return le16toh(used[2 + 4 * vq->size]);
}

static unsigned count_lines(const char *s)
{
	unsigned n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

/* ---- Config space and features ---- */

static void test_config_mac(void **state)
{
	struct fixture *f = *state;
	uint8_t cfg[10];
	uint32_t lo;

	assert_int_equal(vdrv_read(&f->d, VIRTIO_MMIO_DEVICE_ID), VIRTIO_ID_NET);
	vdrv_write(&f->d, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	lo = vdrv_read(&f->d, VIRTIO_MMIO_DEVICE_FEATURES);
	assert_true(lo & (1u << VIRTIO_NET_F_MAC));
	assert_true(lo & (1u << VIRTIO_NET_F_MRG_RXBUF));
	assert_true(lo & (1u << VIRTIO_NET_F_STATUS));
	assert_true(lo & (1u << VIRTIO_NET_F_CSUM));
	assert_true(lo & (1u << VIRTIO_NET_F_HOST_TSO4));
	assert_false(lo & (1u << VIRTIO_NET_F_MQ));
	assert_false(lo & (1u << VIRTIO_NET_F_MTU));
	assert_false(lo & (1u << VIRTIO_NET_F_CTRL_VQ));
	/* A socket takes no TUNSETOFFLOAD: no receive offload is offered to the guest. */
	assert_false(lo & (1u << VIRTIO_NET_F_GUEST_CSUM));
	assert_false(lo & (1u << VIRTIO_NET_F_GUEST_TSO4));

	vdrv_read_n(&f->d, VIRTIO_MMIO_CONFIG, cfg, sizeof(cfg));
	assert_memory_equal(cfg, MAC, 6);
	assert_int_equal(cfg[6] | cfg[7] << 8, VIRTIO_NET_S_LINK_UP);
	assert_int_equal(cfg[8] | cfg[9] << 8, 1);
	/* Byte by byte, as Linux reads the MAC. */
	for (unsigned i = 0; i < 6; i++) {
		uint8_t b = 0;
		vdrv_read_n(&f->d, VIRTIO_MMIO_CONFIG + i, &b, 1);
		assert_int_equal(b, MAC[i]);
	}
	/* Writes are ignored: the MAC is the host's. */
	vdrv_write_n(&f->d, VIRTIO_MMIO_CONFIG, "\xff\xff", 2);
	vdrv_read_n(&f->d, VIRTIO_MMIO_CONFIG, cfg, 6);
	assert_memory_equal(cfg, MAC, 6);
	assert_int_equal(vdrv_start(&f->d, MRG, 256) & VIRTIO_STATUS_DEVICE_NEEDS_RESET, 0);
	assert_string_equal(f->n.dev.name, "virtio-net eth0");
}

static void test_config_no_mac(void **state)
{
	struct fixture *f = *state;
	uint8_t mac[6];

	vdrv_write(&f->d, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	assert_false(vdrv_read(&f->d, VIRTIO_MMIO_DEVICE_FEATURES) & (1u << VIRTIO_NET_F_MAC));
	vdrv_read_n(&f->d, VIRTIO_MMIO_CONFIG, mac, 6);
	assert_memory_equal(mac, "\0\0\0\0\0\0", 6);
	/* The guest picks its own MAC and runs without the feature. */
	assert_int_equal(vdrv_negotiate(&f->d, MRG) & NF(MAC), 0);
}

/* ---- TX ---- */

static void test_tx_byte_exact(void **state)
{
	struct fixture *f = *state;
	static const size_t lens[] = { 60, 1514, 65550 };
	static const unsigned segs[] = { 1, 5, 4 };
	static uint8_t frame[65550], got[70000];
	struct virtio_net_hdr_v1 h = { .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
		                       .gso_type = VIRTIO_NET_HDR_GSO_TCPV4,
		                       .hdr_len = htole16(54),
		                       .gso_size = htole16(1448),
		                       .csum_start = htole16(34),
		                       .csum_offset = htole16(16) };
	uint16_t heads[3];
	uint32_t id, len;

	vdrv_start(&f->d, MRG, 256);
	for (unsigned i = 0; i < 3; i++) {
		pattern(frame, lens[i], i + 1);
		heads[i] = guest_tx_add(f, &h, frame, lens[i], segs[i]);
	}
	vdrv_kick(&f->d, TX);
	for (unsigned i = 0; i < 3; i++) {
		assert_int_equal(vdrv_wait_used(&f->d, TX, &id, &len, 1000), 1);
		assert_int_equal(id, heads[i]);
		assert_int_equal(len, 0); /* the device writes nothing into TX buffers */
		pattern(frame, lens[i], i + 1);
		assert_int_equal(host_recv(f, got, sizeof(got)), (ssize_t)(HDR + lens[i]));
		assert_memory_equal(got, &h, HDR);
		assert_memory_equal(got + HDR, frame, lens[i]);
	}
	assert_int_equal(host_recv(f, got, sizeof(got)), -1);
	assert_int_equal(f->n.tx_packets, 3);
	assert_int_equal(f->n.tx_bytes, 60 + 1514 + 65550);
	assert_true(f->d.t.irqs > 0);
	/* Waiting for the next chain, the device asked for a kick at it (EVENT_IDX). */
	assert_int_equal(avail_event(f, TX), 3);
}

/* A full socket: the device waits for it to drain, loses nothing, keeps the order. */
static void test_tx_backpressure(void **state)
{
	struct fixture *f = *state;
	enum { N = 100, LEN = 1000 };
	int sndbuf = 4096;
	uint8_t frame[LEN], got[2048];
	struct virtio_net_hdr_v1 h = hdr_plain();
	unsigned received = 0;
	long long deadline;
	uint64_t wakeups;

	assert_int_equal(setsockopt(f->n.fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)), 0);
	vdrv_start(&f->d, MRG, 256);
	for (unsigned i = 0; i < N; i++) {
		pattern(frame, LEN, i);
		memcpy(frame, &i, sizeof(i));
		guest_tx_add(f, &h, frame, LEN, 2);
	}
	vdrv_kick(&f->d, TX);
	assert_true(f->n.tx_packets < N);
	assert_non_null(f->n.tx_watch);
	/* Blocked: the loop sleeps, the device is not woken while nobody reads. */
	wakeups = f->n.tx_wakeups;
	run_loop(f, 10, 10000);
	assert_int_equal(f->n.tx_wakeups, wakeups);
	/* A kick while blocked changes nothing either. */
	vdrv_kick(&f->d, TX);
	deadline = clock_now_ns() + 5000000000LL;
	while (received < N && clock_now_ns() < deadline) {
		ssize_t r = host_recv(f, got, sizeof(got));
		if (r < 0) {
			loop_run_once(f->d.loop, 1000);
			continue;
		}
		assert_int_equal(r, HDR + LEN);
		pattern(frame, LEN, received);
		memcpy(frame, &received, sizeof(received));
		assert_memory_equal(got + HDR, frame, LEN);
		received++;
	}
	assert_int_equal(received, N);
	for (unsigned i = 0; i < N; i++)
		assert_int_equal(vdrv_wait_used(&f->d, TX, NULL, NULL, 1000), 1);
	assert_int_equal(f->n.tx_dropped, 0);
	assert_true(f->n.tx_wakeups > wakeups);
	assert_null(f->n.tx_watch);
}

/* Bad chains are dropped and returned with len 0; the device goes on. */
static void test_hostile_tx(void **state)
{
	struct fixture *f = *state;
	uint64_t gpa = vdrv_alloc(&f->d, 70000, 8);
	struct vdrv_buf shortc = { gpa, 8, false };
	struct vdrv_buf withw[] = { { gpa, 100, false }, { gpa + 100, 64, true } };
	struct vdrv_buf huge[] = { { gpa, 35000, false }, { gpa + 35000, 35000, false } };
	struct virtio_net_hdr_v1 ufo = { .gso_type = VIRTIO_NET_HDR_GSO_UDP };
	struct virtio_net_hdr_v1 ecn = { .gso_type = VIRTIO_NET_HDR_GSO_TCPV4 |
		                                     VIRTIO_NET_HDR_GSO_ECN };
	struct virtio_net_hdr_v1 h = hdr_plain();
	uint8_t frame[100] = { 1, 2, 3 }, got[200];
	uint16_t heads[6];
	uint32_t id, len;

	vdrv_start(&f->d, MRG, 256); /* HOST_UFO not taken */
	memset(vdrv_hva(&f->d, gpa, 70000), 0, 70000);
	heads[0] = vdrv_add(&f->d, TX, &shortc, 1);
	heads[1] = vdrv_add(&f->d, TX, withw, 2);
	heads[2] = vdrv_add(&f->d, TX, huge, 2);
	heads[3] = guest_tx_add(f, &ufo, frame, sizeof(frame), 1);
	heads[4] = guest_tx_add(f, &ecn, frame, sizeof(frame), 1);
	heads[5] = guest_tx_add(f, &h, frame, sizeof(frame), 3);
	vdrv_kick(&f->d, TX);
	for (unsigned i = 0; i < 6; i++) {
		assert_int_equal(vdrv_wait_used(&f->d, TX, &id, &len, 1000), 1);
		assert_int_equal(id, heads[i]);
		assert_int_equal(len, 0);
	}
	/* Only the good one reached the host. */
	assert_int_equal(host_recv(f, got, sizeof(got)), HDR + sizeof(frame));
	assert_memory_equal(got + HDR, frame, sizeof(frame));
	assert_int_equal(host_recv(f, got, sizeof(got)), -1);
	assert_int_equal(f->n.tx_dropped, 5);
	assert_int_equal(device_status(f) & VIRTIO_STATUS_DEVICE_NEEDS_RESET, 0);
	/* The writable buffer was left alone. */
	assert_memory_equal(vdrv_hva(&f->d, gpa + 100, 64), (uint8_t[64]){ 0 }, 64);
}

/* The largest chains the device takes: a full queue of descriptors, one table of them. */
static void test_hostile_huge_chains(void **state)
{
	struct fixture *f = *state;
	static uint8_t frame[65560], got[70000];
	struct virtio_net_hdr_v1 h = hdr_plain();
	size_t len = 256 * 256 - HDR; /* 256 descriptors of 256 bytes */
	uint16_t head;
	uint32_t id, used_len;

	vdrv_start(&f->d, MRG, 256);
	pattern(frame, len, 9);
	head = guest_tx_add(f, &h, frame, len, 256);
	vdrv_kick(&f->d, TX);
	assert_int_equal(vdrv_wait_used(&f->d, TX, &id, NULL, 1000), 1);
	assert_int_equal(id, head);
	assert_int_equal(host_recv(f, got, sizeof(got)), (ssize_t)(HDR + len));
	assert_memory_equal(got + HDR, frame, len);
	/* One byte over the limit, in 256 descriptors: dropped. */
	head = guest_tx_add(f, &h, frame, 65551, 256);
	vdrv_kick(&f->d, TX);
	assert_int_equal(vdrv_wait_used(&f->d, TX, &id, NULL, 1000), 1);
	assert_int_equal(id, head);
	assert_int_equal(host_recv(f, got, sizeof(got)), -1);
	assert_int_equal(f->n.tx_dropped, 1);
	/* A 1 MiB RX buffer takes a frame like any other. */
	head = rx_post(f, 1 << 20);
	vdrv_kick(&f->d, RX);
	host_send(f, &h, frame, 65550);
	run_loop(f, 4, 0);
	assert_int_equal(vdrv_wait_used(&f->d, RX, &id, &used_len, 1000), 1);
	assert_int_equal(id, head);
	assert_int_equal(used_len, HDR + 65550);
	assert_memory_equal((uint8_t *)vdrv_hva(&f->d, f->rx_gpa[head], HDR + 65550) + HDR, frame,
	                    65550);
	assert_int_equal(device_status(f) & VIRTIO_STATUS_DEVICE_NEEDS_RESET, 0);
}

/* ---- RX ---- */

/* Without MRG_RXBUF: one chain per frame, num_buffers 1, flags cleared without GUEST_CSUM. */
static void test_rx_whole(void **state)
{
	struct fixture *f = *state;
	struct virtio_net_hdr_v1 h = { .flags = VIRTIO_NET_HDR_F_DATA_VALID };
	uint64_t hdr_gpa = vdrv_alloc(&f->d, HDR, 8), data_gpa = vdrv_alloc(&f->d, 4096, 8);
	struct vdrv_buf bufs[] = { { hdr_gpa, HDR, true }, { data_gpa, 4096, true } };
	uint8_t frame[5000];
	uint16_t head;
	uint32_t id, len;

	vdrv_start(&f->d, BASE, 256);
	head = vdrv_add(&f->d, RX, bufs, 2);
	vdrv_kick(&f->d, RX);
	pattern(frame, 1000, 3);
	host_send(f, &h, frame, 1000);
	run_loop(f, 4, 0);
	assert_int_equal(vdrv_wait_used(&f->d, RX, &id, &len, 1000), 1);
	assert_int_equal(id, head);
	assert_int_equal(len, HDR + 1000);
	assert_int_equal(hdr_num_buffers(vdrv_hva(&f->d, hdr_gpa, HDR)), 1);
	assert_int_equal(((struct virtio_net_hdr_v1 *)vdrv_hva(&f->d, hdr_gpa, HDR))->flags, 0);
	assert_memory_equal(vdrv_hva(&f->d, data_gpa, 1000), frame, 1000);

	/* A frame larger than the chain is dropped; the chain waits for the next frame. */
	head = vdrv_add(&f->d, RX, bufs, 2);
	vdrv_kick(&f->d, RX);
	pattern(frame, sizeof(frame), 4);
	host_send(f, &h, frame, sizeof(frame));
	pattern(frame, 100, 5);
	host_send(f, &h, frame, 100);
	run_loop(f, 4, 0);
	assert_int_equal(vdrv_wait_used(&f->d, RX, &id, &len, 1000), 1);
	assert_int_equal(id, head);
	assert_int_equal(len, HDR + 100);
	assert_memory_equal(vdrv_hva(&f->d, data_gpa, 100), frame, 100);
	assert_false(used_pending(f, RX));
	assert_int_equal(f->n.rx_dropped, 1);
	assert_int_equal(f->n.rx_packets, 2);
}

/* With MRG_RXBUF: a small frame in one buffer, a 60 KiB one across sixteen. */
static void test_rx_mergeable(void **state)
{
	struct fixture *f = *state;
	static uint8_t frame[61440], got[61440 + HDR];
	struct virtio_net_hdr_v1 h = hdr_plain();
	uint16_t heads[32];
	uint32_t id, first, len, total = 0;

	vdrv_start(&f->d, MRG, 256);
	for (unsigned i = 0; i < 32; i++)
		heads[i] = rx_post(f, 4096);
	vdrv_kick(&f->d, RX);
	pattern(frame, 100, 6);
	host_send(f, &h, frame, 100);
	run_loop(f, 4, 0);
	assert_int_equal(vdrv_wait_used(&f->d, RX, &id, &len, 1000), 1);
	assert_int_equal(id, heads[0]);
	assert_int_equal(len, HDR + 100);
	assert_int_equal(hdr_num_buffers(vdrv_hva(&f->d, f->rx_gpa[id], HDR)), 1);
	assert_memory_equal((uint8_t *)vdrv_hva(&f->d, f->rx_gpa[id], HDR + 100) + HDR, frame, 100);

	pattern(frame, sizeof(frame), 7);
	host_send(f, &h, frame, sizeof(frame));
	run_loop(f, 4, 0);
	assert_int_equal(vdrv_wait_used(&f->d, RX, &first, &len, 1000), 1);
	assert_int_equal(first, heads[1]);
	assert_int_equal(hdr_num_buffers(vdrv_hva(&f->d, f->rx_gpa[first], HDR)), 16);
	memcpy(got, vdrv_hva(&f->d, f->rx_gpa[first], len), len);
	total = len;
	for (unsigned i = 1; i < 16; i++) {
		assert_int_equal(vdrv_wait_used(&f->d, RX, &id, &len, 1000), 1);
		assert_int_equal(id, heads[1 + i]);
		assert_true(total + len <= sizeof(got));
		memcpy(got + total, vdrv_hva(&f->d, f->rx_gpa[id], len), len);
		total += len;
	}
	assert_int_equal(total, HDR + sizeof(frame));
	assert_memory_equal(got + HDR, frame, sizeof(frame));
	assert_false(used_pending(f, RX));
	assert_int_equal(f->n.rx_packets, 2);
}

/* No RX buffers: frames wait in the socket, the loop goes idle, then they all arrive. */
static void test_rx_waits_for_buffers(void **state)
{
	struct fixture *f = *state;
	struct virtio_net_hdr_v1 h = hdr_plain();
	uint8_t frame[3][300];
	uint32_t id, len;
	uint16_t heads[3];

	vdrv_start(&f->d, MRG, 256);
	for (unsigned i = 0; i < 3; i++) {
		pattern(frame[i], sizeof(frame[i]), 10 + i);
		host_send(f, &h, frame[i], sizeof(frame[i]));
	}
	run_loop(f, 20, 10000); /* 200 ms */
	assert_true(f->n.rx_wakeups <= 2);
	assert_null(f->n.rx_watch);
	assert_false(used_pending(f, RX));
	assert_int_equal(f->n.rx_dropped, 0);
	/* The device asked to be kicked at the very next buffer (EVENT_IDX). */
	assert_int_equal(avail_event(f, RX), 0);

	for (unsigned i = 0; i < 3; i++)
		heads[i] = rx_post(f, 2048);
	vdrv_kick(&f->d, RX);
	for (unsigned i = 0; i < 3; i++) {
		assert_int_equal(vdrv_wait_used(&f->d, RX, &id, &len, 1000), 1);
		assert_int_equal(id, heads[i]);
		assert_int_equal(len, HDR + 300);
		assert_memory_equal((uint8_t *)vdrv_hva(&f->d, f->rx_gpa[id], len) + HDR, frame[i],
		                    300);
	}
	assert_int_equal(f->n.rx_packets, 3);
	/* Buffers left and nothing to read: the device watches the socket again. */
	rx_post(f, 2048);
	vdrv_kick(&f->d, RX);
	assert_non_null(f->n.rx_watch);
}

/* RX chains the device cannot use go back with len 0; the frame takes the next good one. */
static void test_hostile_rx(void **state)
{
	struct fixture *f = *state;
	uint64_t gpa = vdrv_alloc(&f->d, 8192, 8);
	struct vdrv_buf readable[] = { { gpa, 16, false }, { gpa + 16, 4096, true } };
	struct vdrv_buf tiny = { gpa + 4200, 8, true };
	struct virtio_net_hdr_v1 h = hdr_plain();
	struct virtio_net_hdr_v1 gso = { .gso_type = VIRTIO_NET_HDR_GSO_TCPV4,
		                         .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM };
	uint8_t frame[500];
	uint16_t bad1, bad2, good;
	uint32_t id, len;

	vdrv_start(&f->d, MRG, 256);
	bad1 = vdrv_add(&f->d, RX, readable, 2);
	bad2 = vdrv_add(&f->d, RX, &tiny, 1);
	good = rx_post(f, 2048);
	vdrv_kick(&f->d, RX);
	/* A frame with offloads the driver did not take (GUEST_TSO4): dropped, never delivered. */
	host_send(f, &gso, frame, sizeof(frame));
	pattern(frame, sizeof(frame), 12);
	host_send(f, &h, frame, sizeof(frame));
	run_loop(f, 4, 0);
	assert_int_equal(vdrv_wait_used(&f->d, RX, &id, &len, 1000), 1);
	assert_int_equal(id, bad1);
	assert_int_equal(len, 0);
	assert_int_equal(vdrv_wait_used(&f->d, RX, &id, &len, 1000), 1);
	assert_int_equal(id, bad2);
	assert_int_equal(len, 0);
	assert_int_equal(vdrv_wait_used(&f->d, RX, &id, &len, 1000), 1);
	assert_int_equal(id, good);
	assert_int_equal(len, HDR + sizeof(frame));
	assert_memory_equal((uint8_t *)vdrv_hva(&f->d, f->rx_gpa[good], len) + HDR, frame,
	                    sizeof(frame));
	assert_int_equal(f->n.rx_dropped, 1);
	/* The readable buffer was not written. */
	assert_memory_equal(vdrv_hva(&f->d, gpa, 16), (uint8_t[16]){ 0 }, 16);
	assert_int_equal(device_status(f) & VIRTIO_STATUS_DEVICE_NEEDS_RESET, 0);
}

/* A broken RX ring stops the device until the driver resets it; the socket is not spun on. */
static void test_hostile_rx_ring(void **state)
{
	struct fixture *f = *state;
	struct virtio_net_hdr_v1 h = hdr_plain();
	uint8_t frame[64] = { 0 };

	vdrv_start(&f->d, MRG, 16);
	host_send(f, &h, frame, sizeof(frame));
	vdrv_set_avail_idx(&f->d, RX, 100); /* 100 chains in a 16-entry queue */
	vdrv_kick(&f->d, RX);
	assert_true(device_status(f) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	host_send(f, &h, frame, sizeof(frame));
	run_loop(f, 10, 5000);
	assert_true(f->n.rx_wakeups <= 2);
	assert_null(f->n.rx_watch);
	/* After a reset it works again, and the frame that waited in the socket arrives. */
	vdrv_start(&f->d, MRG, 16);
	rx_post(f, 2048);
	vdrv_kick(&f->d, RX);
	assert_int_equal(vdrv_wait_used(&f->d, RX, NULL, NULL, 1000), 1);
}

/*
 * Reset with a TX chain waiting for a full socket and a 60 KiB frame half copied into RX
 * buffers: when the reset returns the device touches guest memory no more, its watches go
 * once they fire, and after a restart traffic flows both ways.
 */
static void test_reset_mid_traffic(void **state)
{
	struct fixture *f = *state;
	static uint8_t frame[61440], got[70000];
	struct virtio_net_hdr_v1 h = hdr_plain();
	int sndbuf = 4096;
	uint16_t rx_used, tx_used, heads[4];
	uint8_t small[200] = { 0 };
	ssize_t r;

	assert_int_equal(setsockopt(f->n.fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)), 0);
	vdrv_start(&f->d, MRG, 256);
	for (unsigned i = 0; i < 4; i++)
		heads[i] = rx_post(f, 4096);
	vdrv_kick(&f->d, RX);
	pattern(frame, sizeof(frame), 20);
	host_send(f, &h, frame, sizeof(frame)); /* needs 16 buffers: 4 are there */
	for (unsigned i = 0; i < 50; i++)
		guest_tx_add(f, &h, small, sizeof(small), 1);
	vdrv_kick(&f->d, TX);
	run_loop(f, 4, 0);
	assert_true(f->n.tx_pending);
	assert_int_equal(f->n.rx_nparts, 4);
	rx_used = vdrv_used_idx(&f->d, RX);
	tx_used = vdrv_used_idx(&f->d, TX);
	assert_int_equal(rx_used, 0);

	vdrv_write(&f->d, VIRTIO_MMIO_STATUS, 0);
	for (unsigned i = 0; i < 4; i++)
		memset(vdrv_hva(&f->d, f->rx_gpa[heads[i]], 4096), 0x5a, 4096);
	/* The socket drains and fills: both watches fire, find the device reset, go. */
	while ((r = host_recv(f, got, sizeof(got))) >= 0)
		;
	host_send(f, &h, small, sizeof(small));
	run_loop(f, 10, 5000);
	assert_null(f->n.tx_watch);
	assert_null(f->n.rx_watch);
	assert_int_equal(vdrv_used_idx(&f->d, RX), rx_used);
	assert_int_equal(vdrv_used_idx(&f->d, TX), tx_used);
	for (unsigned i = 0; i < 4; i++) {
		uint8_t *p = vdrv_hva(&f->d, f->rx_gpa[heads[i]], 4096);
		for (unsigned j = 0; j < 4096; j++)
			assert_int_equal(p[j], 0x5a);
	}

	/* Fresh start: the frame sent during the reset arrives, TX flows. */
	vdrv_start(&f->d, MRG, 256);
	rx_post(f, 4096);
	vdrv_kick(&f->d, RX);
	assert_int_equal(vdrv_wait_used(&f->d, RX, NULL, NULL, 1000), 1);
	pattern(small, sizeof(small), 21);
	guest_tx_add(f, &h, small, sizeof(small), 1);
	vdrv_kick(&f->d, TX);
	assert_int_equal(vdrv_wait_used(&f->d, TX, NULL, NULL, 1000), 1);
	assert_int_equal(host_recv(f, got, sizeof(got)), HDR + sizeof(small));
	assert_memory_equal(got + HDR, small, sizeof(small));
}

/* ---- Rate limits ---- */

static void test_rate_limit_tx(void **state)
{
	struct fixture *f = *state;
	struct virtio_net_hdr_v1 h = hdr_plain();
	uint8_t frame[100], got[200];
	long long t0 = clock_now_ns(), deadline = t0 + 2000000000LL;
	unsigned received = 0;

	vdrv_start(&f->d, MRG, 256);
	for (unsigned i = 0; i < 5; i++) {
		memset(frame, (int)i, sizeof(frame));
		guest_tx_add(f, &h, frame, sizeof(frame), 1);
	}
	vdrv_kick(&f->d, TX);
	assert_int_equal(f->n.tx_packets, 2); /* the bucket held two */
	assert_true(ratelimit_timer_armed(&f->n.tx_timer));
	while (received < 5 && clock_now_ns() < deadline) {
		if (host_recv(f, got, sizeof(got)) < 0) {
			loop_run_once(f->d.loop, 5000);
			continue;
		}
		assert_int_equal(got[HDR], received);
		received++;
	}
	assert_int_equal(received, 5);
	/* Three more at two per 100 ms: the last one not before ~100 ms. */
	assert_true(clock_now_ns() - t0 >= 90000000LL);
	assert_int_equal(f->n.tx_dropped, 0);
}

static void test_rate_limit_rx(void **state)
{
	struct fixture *f = *state;
	struct virtio_net_hdr_v1 h = hdr_plain();
	uint8_t frame[988]; /* 1000 bytes with the header */
	long long t0 = clock_now_ns();
	uint32_t id;
	uint16_t heads[3];

	vdrv_start(&f->d, MRG, 256);
	for (unsigned i = 0; i < 3; i++)
		heads[i] = rx_post(f, 2048);
	vdrv_kick(&f->d, RX);
	for (unsigned i = 0; i < 3; i++) {
		memset(frame, (int)i, sizeof(frame));
		host_send(f, &h, frame, sizeof(frame));
	}
	run_loop(f, 4, 0);
	assert_int_equal(f->n.rx_packets, 2); /* 2000 bytes of budget */
	assert_true(ratelimit_timer_armed(&f->n.rx_timer));
	assert_null(f->n.rx_watch); /* blocked: the socket is not watched meanwhile */
	for (unsigned i = 0; i < 3; i++) {
		assert_int_equal(vdrv_wait_used(&f->d, RX, &id, NULL, 2000), 1);
		assert_int_equal(id, heads[i]);
		assert_int_equal(((uint8_t *)vdrv_hva(&f->d, f->rx_gpa[id], HDR + 1))[HDR], i);
	}
	assert_true(clock_now_ns() - t0 >= 40000000LL);
	assert_true(f->n.rx_wakeups <= 3);
}

/*
 * PATCH /network-interfaces: a direction whose limit is lifted sends its held frame at
 * once; the other direction, not in the update, stays held.
 */
static void test_rate_limit_update(void **state)
{
	struct fixture *f = *state;
	const struct rate_limiter lift = { .ops = { .present = true } };
	struct virtio_net_hdr_v1 h = hdr_plain();
	uint8_t frame[100], got[200];

	vdrv_start(&f->d, MRG, 256);
	for (unsigned i = 0; i < 2; i++) {
		memset(frame, (int)i, sizeof(frame));
		guest_tx_add(f, &h, frame, sizeof(frame), 1);
		rx_post(f, 2048);
		host_send(f, &h, frame, sizeof(frame));
	}
	vdrv_kick(&f->d, TX);
	vdrv_kick(&f->d, RX);
	run_loop(f, 4, 0);
	assert_int_equal(f->n.tx_packets, 1);
	assert_int_equal(f->n.rx_packets, 1);
	assert_true(ratelimit_timer_armed(&f->n.tx_timer));
	assert_true(ratelimit_timer_armed(&f->n.rx_timer));
	virtio_net_set_limiters(&f->n, NULL, &lift);
	run_loop(f, 4, 0);
	assert_int_equal(f->n.tx_packets, 2);
	assert_int_equal(host_recv(f, got, sizeof(got)), HDR + sizeof(frame));
	assert_int_equal(host_recv(f, got, sizeof(got)), HDR + sizeof(frame));
	assert_int_equal(got[HDR], 1);
	assert_int_equal(f->n.rx_packets, 1); /* RX was not in the update */
	assert_true(ratelimit_timer_armed(&f->n.rx_timer));
	virtio_net_set_limiters(&f->n, &lift, NULL);
	run_loop(f, 4, 0);
	assert_int_equal(f->n.rx_packets, 2);
	assert_false(ratelimit_timer_armed(&f->n.rx_timer));
}

/* ---- A real TAP ---- */

static void tap_name(char *buf, size_t len, const char *tag)
{
	snprintf(buf, len, "fltn%d%s", (int)getpid() % 100000, tag);
}

/* Opening: a missing TAP is created (and said so), a busy one and a non-TAP are refused. */
/*
 * A persistent TAP, as an orchestrator makes one before it starts the VMM
 * (ip tuntap add NAME mode tap). The machine runs tests as root with /dev/net/tun.
 */
static void tap_persist(const char *name, bool on)
{
	struct ifreq ifr = { .ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR };
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);

	if (fd < 0)
		fail_msg("/dev/net/tun: %s (the net tests need it, and root)", strerror(errno));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	if (ioctl(fd, TUNSETIFF, &ifr) < 0 || ioctl(fd, TUNSETPERSIST, on ? 1 : 0) < 0)
		fail_msg("TAP %s: %s", name, strerror(errno));
	close(fd);
}

static void test_tap_open_errors(void **state)
{
	struct net_config cfg = { .id = "tap0" };
	struct virtio_net *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b));
	char name[IFNAMSIZ];
	const char *log;
	long off;

	(void)state;
	assert_non_null(a);
	assert_non_null(b);
	tap_name(name, sizeof(name), "a");
	assert_int_equal(if_nametoindex(name), 0);
	cfg.host_dev = name;
	/* Missing: refused, not created (TUNSETIFF would make one nobody set up). */
	off = test_log_mark();
	assert_int_equal(virtio_net_init(a, &cfg, NULL), -ENODEV);
	log = test_log_since(off);
	assert_int_equal(count_lines(log), 1);
	assert_non_null(strstr(log, "does not exist"));
	assert_int_equal(if_nametoindex(name), 0);
	tap_persist(name, true);
	assert_int_equal(virtio_net_init(a, &cfg, NULL), 0);
	/* The TAP takes guest receive offloads: they are offered. */
	assert_true(a->dev.features & NF(GUEST_CSUM));
	assert_true(a->dev.features & NF(GUEST_TSO4));
	assert_true(a->dev.features & NF(GUEST_TSO6));

	/* Busy: one line naming it. */
	off = test_log_mark();
	assert_int_equal(virtio_net_init(b, &cfg, NULL), -EBUSY);
	log = test_log_since(off);
	assert_int_equal(count_lines(log), 1);
	assert_non_null(strstr(log, name));
	assert_non_null(strstr(log, "busy"));
	assert_non_null(strstr(log, "virtio-net tap0"));
	virtio_net_destroy(b);

	/* Not a TAP. */
	cfg.host_dev = "lo";
	off = test_log_mark();
	assert_int_equal(virtio_net_init(b, &cfg, NULL), -EINVAL);
	log = test_log_since(off);
	assert_int_equal(count_lines(log), 1);
	assert_non_null(strstr(log, "TAP lo exists but is not a TAP"));

	/* Too long a name. */
	cfg.host_dev = "a-name-too-long-for-linux";
	assert_int_equal(virtio_net_init(b, &cfg, NULL), -EINVAL);

	virtio_net_destroy(a);
	assert_true(if_nametoindex(name) != 0); /* the orchestrator's: flint leaves it */
	tap_persist(name, false);
	assert_int_equal(if_nametoindex(name), 0);
	free(a);
	free(b);
}

static int if_up(const char *name)
{
	struct ifreq ifr = { 0 };
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), r;
	char path[128];
	FILE *fp;

	/* No IPv6 router solicitations or DAD into the TAP: only the test's frames. */
	snprintf(path, sizeof(path), "/proc/sys/net/ipv6/conf/%s/disable_ipv6", name);
	fp = fopen(path, "w");
	if (fp) {
		fputs("1", fp);
		fclose(fp);
	}
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	r = ioctl(s, SIOCGIFFLAGS, &ifr);
	ifr.ifr_flags |= IFF_UP;
	if (!r)
		r = ioctl(s, SIOCSIFFLAGS, &ifr);
	close(s);
	return r;
}

/* A packet socket on the TAP's interface: the host's side of it. */
static int packet_socket(const char *name)
{
	struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL) };
	int s = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, htons(ETH_P_ALL));

	assert_true(s >= 0);
	sll.sll_ifindex = (int)if_nametoindex(name);
	assert_int_equal(bind(s, (struct sockaddr *)&sll, sizeof(sll)), 0);
	return s;
}

/* An Ethernet frame of a made-up EtherType (0x88b5, local experimental) with @tag. */
static void test_frame(uint8_t *p, size_t len, const uint8_t *dst, const uint8_t *src, uint8_t tag)
{
	memcpy(p, dst, 6);
	memcpy(p + 6, src, 6);
	p[12] = 0x88;
	p[13] = 0xb5;
	for (size_t i = 14; i < len; i++)
		p[i] = (uint8_t)(tag + i);
}

/* Offloads at activate, and frames through a real TAP both ways. */
static void test_tap_traffic(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct net_config cfg = { .id = "tap1", .has_mac = true };
	static const uint8_t peer[6] = { 0x02, 0, 0, 0, 0, 9 };
	struct virtio_net_hdr_v1 h = hdr_plain();
	uint8_t frame[200], got[2048];
	long long deadline;
	char name[IFNAMSIZ];
	int ps, r;
	bool seen = false;

	(void)state;
	assert_non_null(f);
	tap_name(name, sizeof(name), "b");
	memcpy(cfg.mac, MAC, 6);
	cfg.host_dev = name;
	f->cfg = cfg;
	assert_int_equal(vdrv_setup(&f->d, 64 << 20), 0);
	tap_persist(name, true);
	r = virtio_net_init(&f->n, &f->cfg, f->d.loop);
	assert_int_equal(r, 0);
	assert_int_equal(vdrv_bind(&f->d, &f->n.dev), 0);
	f->host = -1;
	assert_int_equal(if_up(name), 0);
	ps = packet_socket(name);

	assert_int_equal(vdrv_start(&f->d, MRG | NF(GUEST_CSUM) | NF(GUEST_TSO4), 256) &
	                         VIRTIO_STATUS_DEVICE_NEEDS_RESET,
	                 0);
	assert_int_equal(f->n.offloads, TUN_F_CSUM | TUN_F_TSO4);

	/* Guest to host: the packet socket sees the frame, exactly. */
	test_frame(frame, sizeof(frame), peer, MAC, 1);
	guest_tx_add(f, &h, frame, sizeof(frame), 2);
	vdrv_kick(&f->d, TX);
	assert_int_equal(vdrv_wait_used(&f->d, TX, NULL, NULL, 1000), 1);
	assert_int_equal(f->n.tx_packets, 1);
	deadline = clock_now_ns() + 1000000000LL;
	while (!seen && clock_now_ns() < deadline) {
		ssize_t n = recv(ps, got, sizeof(got), 0);
		if (n == (ssize_t)sizeof(frame) && memcmp(got, frame, sizeof(frame)) == 0)
			seen = true;
		else if (n < 0)
			usleep(1000);
	}
	assert_true(seen);

	/* Host to guest: what the packet socket sends out of the interface reaches the guest. */
	for (unsigned i = 0; i < 8; i++)
		rx_post(f, 4096);
	vdrv_kick(&f->d, RX);
	test_frame(frame, sizeof(frame), MAC, peer, 2);
	assert_int_equal(send(ps, frame, sizeof(frame), 0), (ssize_t)sizeof(frame));
	seen = false;
	deadline = clock_now_ns() + 1000000000LL;
	while (!seen && clock_now_ns() < deadline) {
		uint32_t id, len;
		uint8_t *p;
		if (!vdrv_wait_used(&f->d, RX, &id, &len, 100))
			continue;
		p = vdrv_hva(&f->d, f->rx_gpa[id], len);
		seen = len == HDR + sizeof(frame) && memcmp(p + HDR, frame, sizeof(frame)) == 0;
		if (seen)
			assert_int_equal(hdr_num_buffers(p), 1);
	}
	assert_true(seen);
	close(ps);
	fixture_free(f);
	tap_persist(name, false);
}

static int group_setup(void **state)
{
	(void)state;
	return test_log_capture("net.log");
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_config_mac, setup, teardown),
		cmocka_unit_test_setup_teardown(test_config_no_mac, setup_nomac, teardown),
		cmocka_unit_test_setup_teardown(test_tx_byte_exact, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tx_backpressure, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_tx, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_huge_chains, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rx_whole, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rx_mergeable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rx_waits_for_buffers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_rx, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_rx_ring, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reset_mid_traffic, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rate_limit_tx, setup_limited, teardown),
		cmocka_unit_test_setup_teardown(test_rate_limit_rx, setup_limited, teardown),
		cmocka_unit_test_setup_teardown(test_rate_limit_update, setup_strict, teardown),
		cmocka_unit_test(test_tap_open_errors),
		cmocka_unit_test(test_tap_traffic),
	};
	return TEST_MAIN(tests, group_setup, test_log_group_teardown);
}
