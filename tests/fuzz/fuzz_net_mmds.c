/*
 * virtio-net's MMDS stack (devices/virtio/net_mmds.c) fed guest frames through the real
 * device: TX chains into the queue, RX buffers posted, the "TAP" a datagram socketpair,
 * the responder a stand-in. The input is a list of operations after one byte of features:
 *   byte 0: bit 0 MRG_RXBUF, bit 1 the host side sends frames too; bits 2-3 RX buffer size
 *   then, until the input ends (at most MAX_OPS), an operation byte % 7:
 *   0  a raw guest frame: u16 length (% 1600), a vnet header flags byte, csum_start and
 *      csum_offset (u16 each), the frame's bytes
 *   1  a TCP segment built right (checksums valid, partial or full) from compact fields:
 *      port (u8 % 4), flags, seq and ack deltas (s8) from what the guest side knows,
 *      window (u16), IP options (u8 % 3 * 4 bytes), payload (u8 length, bytes), where a
 *      payload starting 'G' is made a whole request ("GET /<n> HTTP/1.1\r\n\r\n")
 *   2  RX buffers posted: count (u8 % 32)
 *   3  the loop runs, the guest reads what came (and learns the stack's sequence numbers)
 *   4  an ARP request: target address the MMDS's or not (u8 & 1), then 28 bytes raw
 *      when (u8 & 2)
 *   5  the host side sends a frame (u8 length, bytes)
 *   6  a device reset and a fresh start
 * Checked: no frame for the MMDS address reaches the TAP; every frame the stack sends has
 * valid IPv4 and TCP checksums and lengths, and comes from its MAC; at most 30
 * connections; nothing leaks (ASan); each input ends with the device reset.
 */
#include "devices/virtio/net.h"
#include "devices/virtio/net_mmds_stack.h"
#include "tests/fuzz/common.h"
#include "tests/lib/netframe.h"
#include "tests/lib/virtio_driver.h"

#include <endian.h>
#include <linux/virtio_net.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define HDR     VIRTIO_NET_HDR_LEN
#define RX      VIRTIO_NET_Q_RX
#define TX      VIRTIO_NET_Q_TX
#define MEM     (8u << 20)
#define MAX_OPS 256
#define MIP     NET_MMDS_DEFAULT_IPV4
#define GIP     0xac100002u
#define NF(bit) VIRTIO_FEATURE(VIRTIO_NET_F_##bit)
#define FEATURES                                                                                   \
	(VIRTIO_FEATURE(VIRTIO_F_VERSION_1) | VIRTIO_FEATURE(VIRTIO_F_EVENT_IDX) | NF(CSUM) |      \
	 NF(HOST_TSO4) | NF(STATUS) | NF(MAC))

static struct virtio_net net;
static struct vdrv drv;
static int host = -1;
static uint64_t rx_gpa[256];
static uint32_t rx_size;
static unsigned rx_posted; /* not yet used: the driver never overfills its ring */
static uint8_t frame[70000];

/* The guest's side of four connections: what it sends next, what it expects. */
static struct {
	uint32_t seq, ack;
} gc[4];

/* ---- The stand-in responder ---- */

static long serve(void *ctx, const uint8_t *in, size_t len, uint8_t **out, size_t *out_len)
{
	(void)ctx;
	for (size_t i = 0; i + 3 < len; i++) {
		if (memcmp(in + i, "\r\n\r\n", 4))
			continue;
		/* Answers of up to 20,000 bytes; a request starting X is refused. */
		size_t n = (size_t)in[len > 5 ? 5 : 0] * 79 % 20000;
		*out = malloc(n ? n : 1);
		FUZZ_CHECK(*out, "out of memory");
		memset(*out, 'r', n);
		*out_len = n;
		return in[0] == 'X' ? -1 : (long)(i + 4);
	}
	return 0;
}

static struct net_mmds_config mcfg = { .responder = { serve, NULL }, .isn_seed = 1 };

/* ---- The guest ---- */

static bool room(uint64_t len)
{
	return drv.brk + len + 4096 < MEM;
}

static void tx(const struct virtio_net_hdr_v1 *h, const uint8_t *f, size_t len)
{
	uint64_t gpa;

	if (!room(HDR + len))
		return;
	gpa = vdrv_alloc(&drv, HDR + len, 8);
	memcpy(vdrv_hva(&drv, gpa, HDR + len), h, HDR);
	memcpy((uint8_t *)vdrv_hva(&drv, gpa, HDR + len) + HDR, f, len);
	struct vdrv_buf b = { gpa, (uint32_t)(HDR + len), false };
	vdrv_add(&drv, TX, &b, 1);
	vdrv_kick(&drv, TX);
}

static void rx_post(unsigned n)
{
	for (unsigned i = 0; i < n && room(rx_size) && rx_posted < 200; i++, rx_posted++) {
		uint64_t gpa = vdrv_alloc(&drv, rx_size, 8);
		struct vdrv_buf b = { gpa, rx_size, true };
		rx_gpa[vdrv_add(&drv, RX, &b, 1)] = gpa;
	}
	vdrv_kick(&drv, RX);
}

static void check_mmds_frame(const uint8_t *f, size_t len)
{
	const uint8_t *ip = f + 14;
	size_t tot, tl;

	if (nf_get16(f + 12) == 0x0806) {
		FUZZ_CHECK(len == 42 && nf_get32(f + 14 + 14) == MIP, "ARP reply of %zu bytes",
		           len);
		return;
	}
	FUZZ_CHECK(len >= 54 && nf_get16(f + 12) == 0x0800 && ip[0] == 0x45, "frame of %zu bytes",
	           len);
	tot = nf_get16(ip + 2);
	FUZZ_CHECK(tot == len - 14, "IPv4 length %zu in a %zu-byte frame", tot, len);
	FUZZ_CHECK(nf_fold(nf_sum16(0, ip, 20)) == 0xffff, "IPv4 checksum");
	FUZZ_CHECK(nf_get32(ip + 12) == MIP, "source address");
	tl = tot - 20;
	FUZZ_CHECK(nf_fold(nf_sum16(nf_pseudo(nf_get32(ip + 12), nf_get32(ip + 16), tl), ip + 20,
	                            tl)) == 0xffff,
	           "TCP checksum");
	/* The guest learns where the stack is: it ACKs all of it next time. */
	uint16_t port = nf_get16(ip + 20 + 2);
	if (port >= 40000 && port < 40004) {
		unsigned k = port - 40000;
		size_t doff = (size_t)(ip[20 + 12] >> 4) * 4;
		uint8_t fl = ip[20 + 13];
		gc[k].ack = nf_get32(ip + 20 + 4) + (uint32_t)(tl - doff) + !!(fl & 0x02) +
		            !!(fl & 0x01);
	}
}

/* What the guest received: each frame checked. */
static void rx_read(void)
{
	static uint8_t buf[70000];
	uint32_t id, len;

	while (vdrv_wait_used(&drv, RX, &id, &len, 0)) {
		size_t total = 0;
		rx_posted--;
		uint16_t nb = 1;
		for (unsigned i = 0;; i++) {
			uint8_t *p = vdrv_hva(&drv, rx_gpa[id], len);
			FUZZ_CHECK(p && len <= rx_size, "used length %u", len);
			if (i == 0) {
				FUZZ_CHECK(len >= HDR, "used length %u", len);
				nb = le16toh(((struct virtio_net_hdr_v1 *)p)->num_buffers);
				p += HDR;
				len -= HDR;
			}
			FUZZ_CHECK(total + len <= sizeof(buf), "a frame of over %zu bytes", total);
			memcpy(buf + total, p, len);
			total += len;
			if (i + 1 >= nb || !vdrv_wait_used(&drv, RX, &id, &len, 0))
				break;
			rx_posted--;
		}
		if (total >= 12 && !memcmp(buf + 6, net_mmds_mac, 6))
			check_mmds_frame(buf, total);
	}
}

/* Nothing for the MMDS reaches the TAP. */
static void host_read(void)
{
	static uint8_t buf[70000];
	ssize_t r;

	while ((r = recv(host, buf, sizeof(buf), MSG_DONTWAIT)) >= 0) {
		const uint8_t *f = buf + HDR;
		size_t len = (size_t)r - HDR;
		FUZZ_CHECK(r >= HDR, "a %zd-byte write to the TAP", r);
		FUZZ_CHECK(!net_mmds_claims(net.mmds, f, len),
		           "a frame for the MMDS reached the TAP");
	}
}

static void op_raw(struct fuzz_in *in)
{
	size_t len = fin_u16(in) % 1600;
	struct virtio_net_hdr_v1 h = { .gso_type = VIRTIO_NET_HDR_GSO_NONE };

	h.flags = fin_u8(in) & VIRTIO_NET_HDR_F_NEEDS_CSUM;
	h.csum_start = htole16(fin_u16(in));
	h.csum_offset = htole16(fin_u16(in));
	fin_bytes(in, frame, len);
	tx(&h, frame, len);
}

static const uint8_t gmac[6] = { 0x06, 0x00, 0xac, 0x10, 0x00, 0x02 };

static void op_tcp(struct fuzz_in *in)
{
	unsigned k = fin_u8(in) % 4;
	uint8_t flags = fin_u8(in);
	int8_t ds = (int8_t)fin_u8(in), da = (int8_t)fin_u8(in);
	uint16_t win = fin_u16(in);
	size_t ipopts = (size_t)(fin_u8(in) % 3) * 4, len = fin_u8(in);
	bool partial = flags & 0x80; /* CWR's bit: the checksum Linux leaves with CSUM */
	uint8_t data[256];
	struct virtio_net_hdr_v1 h = { .gso_type = VIRTIO_NET_HDR_GSO_NONE };

	fin_bytes(in, data, len);
	if (len && data[0] == 'G') {
		int n = snprintf((char *)data, sizeof(data), "GET /%u HTTP/1.1\r\n\r\n",
		                 len > 1 ? data[1] : 0);
		len = (size_t)n < len ? (size_t)n : len;
	}
	struct nf_tcp t = { .dmac = net_mmds_mac,
		            .smac = gmac,
		            .src = GIP,
		            .dst = MIP,
		            .sport = (uint16_t)(40000 + k),
		            .dport = 80,
		            .seq = gc[k].seq + (uint32_t)(int32_t)ds,
		            .ack = gc[k].ack + (uint32_t)(int32_t)da,
		            .flags = flags & 0x3f,
		            .win = win,
		            .data = data,
		            .len = len,
		            .ipopts = ipopts,
		            .partial = partial };
	if (partial) {
		h.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
		h.csum_start = htole16((uint16_t)(14 + ipopts + 20));
		h.csum_offset = htole16(16);
	}
	if (ds == 0)
		gc[k].seq += (uint32_t)len + !!(flags & 0x02) + !!(flags & 0x01);
	tx(&h, frame, nf_tcp_frame(frame, &t));
}

static void op_arp(struct fuzz_in *in)
{
	uint8_t how = fin_u8(in);
	struct virtio_net_hdr_v1 h = { .gso_type = VIRTIO_NET_HDR_GSO_NONE };

	nf_arp_frame(frame, gmac, 1, GIP, how & 1 ? MIP : GIP - 1);
	if (how & 2)
		fin_bytes(in, frame + 14, 28);
	tx(&h, frame, 42);
}

static void op_host(struct fuzz_in *in)
{
	uint8_t buf[HDR + 256] = { 0 };
	size_t len = fin_u8(in);

	fin_bytes(in, buf + HDR, len);
	/* The guest tells the stack's frames by their source MAC: a host frame may not forge it. */
	if (len >= 12 && !memcmp(buf + HDR + 6, net_mmds_mac, 6))
		buf[HDR + 11] ^= 0xff;
	(void)send(host, buf, HDR + len, MSG_DONTWAIT);
}

static void start(uint8_t how)
{
	/* A reset first: the device forgets the rings, so guest memory starts over. */
	vdrv_write(&drv, VIRTIO_MMIO_STATUS, 0);
	drv.brk = 0x1000;
	memset(gc, 0, sizeof(gc));
	rx_posted = 0;
	vdrv_start(&drv, FEATURES | (how & 1 ? NF(MRG_RXBUF) : 0), 256);
	rx_size = (uint32_t[]){ 2048, 1526, 300, 70 }[(how >> 2) & 3];
}

/* ---- The target ---- */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct net_config cfg = { .id = "fuzz", .mmds = &mcfg };
	int sv[2];

	(void)argc, (void)argv;
	fuzz_setup();
	FUZZ_CHECK(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0,
	           "socketpair");
	FUZZ_CHECK(vdrv_setup(&drv, MEM) == 0, "guest memory");
	FUZZ_CHECK(virtio_net_init_fd(&net, sv[0], &cfg, drv.loop) == 0, "virtio_net_init_fd()");
	FUZZ_CHECK(vdrv_bind(&drv, &net.dev) == 0, "vdrv_bind()");
	host = sv[1];
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };
	uint8_t how = fin_u8(&in);

	start(how);
	for (unsigned ops = 0; ops < MAX_OPS && !fin_empty(&in); ops++) {
		switch (fin_u8(&in) % 7) {
		case 0:
			op_raw(&in);
			break;
		case 1:
			op_tcp(&in);
			break;
		case 2:
			rx_post(fin_u8(&in) % 32);
			break;
		case 3:
			loop_run_once(drv.loop, 0);
			rx_read();
			break;
		case 4:
			op_arp(&in);
			break;
		case 5:
			if (how & 2)
				op_host(&in);
			break;
		default:
			start(how);
			break;
		}
		FUZZ_CHECK(net_mmds_conns(net.mmds) <= NET_MMDS_MAX_CONNS, "%u connections",
		           net_mmds_conns(net.mmds));
		host_read();
	}
	rx_read();
	/* Reset: every connection and its answer are freed (LeakSanitizer sees the rest). */
	vdrv_write(&drv, VIRTIO_MMIO_STATUS, 0);
	FUZZ_CHECK(net_mmds_conns(net.mmds) == 0, "connections after a reset");
	while (recv(host, frame, sizeof(frame), MSG_DONTWAIT) >= 0)
		;
	return 0;
}
