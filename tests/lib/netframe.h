/*
 * Network frames for the tests of virtio-net's MMDS stack (tests/unit/test_net_mmds.c,
 * tests/fuzz/fuzz_net_mmds.c): big-endian fields, the Internet checksum, and a guest's
 * ARP request and TCP/IPv4 segment with valid checksums. The checksum code is the tests'
 * own, written apart from devices/virtio/net_mmds.c's on purpose: it checks the stack's
 * sums independently.
 */
#ifndef FLINT_TEST_NETFRAME_H
#define FLINT_TEST_NETFRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

void nf_put16(uint8_t *p, uint16_t v);
void nf_put32(uint8_t *p, uint32_t v);
uint16_t nf_get16(const uint8_t *p);
uint32_t nf_get32(const uint8_t *p);
/* @s plus the 16-bit words of @p (an odd last byte padded with zero), not folded. */
uint32_t nf_sum16(uint32_t s, const uint8_t *p, size_t len);
/* The carries folded in: a valid checksum's sum folds to 0xffff. */
uint16_t nf_fold(uint32_t s);
/* The TCP pseudo-header's sum: addresses, protocol 6, @len bytes of TCP. */
uint32_t nf_pseudo(uint32_t src, uint32_t dst, size_t len);

/* An ARP frame, broadcast, from @smac (also the sender's hardware address). Returns 42. */
size_t nf_arp_frame(uint8_t *f, const uint8_t smac[6], uint16_t op, uint32_t spa, uint32_t tpa);

/* What a test says of a guest segment; nf_tcp_frame() fills in the rest. */
struct nf_tcp {
	const uint8_t *dmac, *smac; /* Ethernet */
	uint32_t src, dst;          /* IPv4 */
	uint16_t sport, dport;
	uint32_t seq, ack;
	uint8_t flags;
	uint16_t win;
	const uint8_t *opts;
	size_t optlen;
	const void *data;
	size_t len;
	size_t ipopts; /* bytes of IP options (NOPs) */
	bool partial;  /* the TCP checksum as Linux leaves it with VIRTIO_NET_F_CSUM */
};

/* A TCP/IPv4 frame (DF set, TTL 64) with valid checksums, or a partial TCP one. Returns
 * its length: 14 + 20 + ipopts + 20 + optlen + len. */
size_t nf_tcp_frame(uint8_t *f, const struct nf_tcp *t);

#endif
