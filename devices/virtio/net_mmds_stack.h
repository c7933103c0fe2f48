/*
 * virtio-net's MMDS stack (net_mmds.c): the frames a guest sends to the MMDS address (an
 * ARP request for it, any IPv4 packet to it) are taken off the TX path before the TAP and
 * answered by flint: ARP replies, and a small TCP on port 80 that hands each connection's
 * bytes to the responder (net_mmds.h, the seam) and sends its answers back.
 *
 * Nothing is queued as frames: the stack makes its next frame only when the device has an
 * RX buffer for it (net_mmds_output), from each connection's state, so a guest that never
 * reads holds at most NET_MMDS_MAX_CONNS connections, one response each, one ARP reply and
 * NET_MMDS_MAX_RSTS resets. The virtual link loses no frame (a full RX ring makes frames
 * wait, it does not drop them), but a guest may still drop one (netfilter, memory): an
 * answer and our FIN are kept until acknowledged and sent again after three duplicate ACKs
 * or a retransmission timeout (one timer per device, net_mmds_deadline()).
 *
 * Facts from Firecracker's MMDS (src/vmm/src/mmds/ns.rs, src/vmm/src/dumbo/): the MAC
 * 06:01:23:45:67:01, default address 169.254.169.254, port 80, 30 connections, 100 pending
 * resets, 2500 bytes of request per connection, a connection idle 10 s may make room for a
 * new one (with a reset), the guest's MSS (536 without the option, refused below 100).
 * Single-threaded: the device calls it under its lock.
 */
#ifndef FLINT_VIRTIO_NET_MMDS_STACK_H
#define FLINT_VIRTIO_NET_MMDS_STACK_H

#include "devices/virtio/net_mmds.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NET_MMDS_DEFAULT_IPV4 0xa9fea9feu /* 169.254.169.254, host byte order */
#define NET_MMDS_PORT         80
#define NET_MMDS_MAX_CONNS    30
#define NET_MMDS_MAX_RSTS     100
/* What one connection holds of requests not yet answered; its receive window. */
#define NET_MMDS_RCV_MAX 2500
/* A connection this long without a segment from the guest may be evicted for a new one. */
#define NET_MMDS_IDLE_NS (10 * 1000000000ULL)
/*
 * Unacknowledged data or FIN is sent again after this long (Firecracker: 1.2e9 TSC cycles,
 * about 300 ms), at most NET_MMDS_RTO_MAX times in a row; then the connection is reset.
 */
#define NET_MMDS_RTO_NS  (300 * 1000000ULL)
#define NET_MMDS_RTO_MAX 15

extern const uint8_t net_mmds_mac[6];

/* What turns the stack on for one interface (struct net_config's mmds). */
struct net_mmds_config {
	uint32_t ipv4; /* host byte order; 0: NET_MMDS_DEFAULT_IPV4 */
	struct net_mmds_responder responder;
	/* Tests' knobs; 0: the defaults. */
	uint64_t idle_ns;  /* instead of NET_MMDS_IDLE_NS */
	uint64_t rto_ns;   /* instead of NET_MMDS_RTO_NS */
	uint32_t isn_seed; /* fixed initial sequence numbers instead of getrandom()'s */
};

/* Counters, for tests and metrics. Every frame taken counts once in rx_frames. */
struct net_mmds_stats {
	uint64_t rx_frames;     /* frames the stack took off the TX path */
	uint64_t rx_arp;        /* ARP requests for the address (answered) */
	uint64_t rx_segments;   /* well-formed TCP segments to the address */
	uint64_t rx_malformed;  /* truncated, bad lengths or options, not ARP/IPv4 */
	uint64_t rx_bad_eth;    /* of those, shorter than an Ethernet header */
	uint64_t rx_bad_csum;   /* IPv4 header or TCP checksum wrong */
	uint64_t rx_fragments;  /* IPv4 fragments (never reassembled) */
	uint64_t rx_unusual;    /* not TCP (UDP, ICMP), ARP that is no request for us */
	uint64_t rx_out_of_wnd; /* data beyond the window or out of order: not kept */
	uint64_t tx_frames;     /* frames made for the guest */
	uint64_t tx_bytes;      /* their length (Ethernet header on) */
	uint64_t conns_opened;  /* SYNs accepted */
	uint64_t conns_closed;  /* both FINs acknowledged, or replaced by a new SYN */
	uint64_t conns_reset;   /* by the guest's RST, or by flint (overflow, eviction) */
	uint64_t conns_evicted; /* idle ones that made room for a new one */
	uint64_t conns_refused; /* SYNs answered with RST: limit reached, bad MSS */
	uint64_t rsts_sent;     /* every RST segment made */
	uint64_t rsts_lost;     /* RSTs not queued: NET_MMDS_MAX_RSTS were waiting */
	uint64_t bad_requests;  /* the responder refused the bytes (serve < 0) */
	uint64_t retransmits;   /* retransmission timeouts that sent data or FIN again */
};

struct net_mmds;

/* The stack for one interface, named @who in log lines; NULL (logged) when out of memory. */
struct net_mmds *net_mmds_new(const struct net_mmds_config *cfg, const char *who);
void net_mmds_free(struct net_mmds *m);

/*
 * Whether the guest frame whose first @len bytes are @frame is the stack's: an ARP packet
 * whose target address is the MMDS address, or an IPv4 packet to it (what Firecracker
 * takes). Such a frame never goes to the TAP, whatever is wrong with it. 42 bytes decide.
 */
#define NET_MMDS_CLAIM_LEN 42
bool net_mmds_claims(const struct net_mmds *m, const uint8_t *frame, size_t len);
/*
 * One claimed frame, a private copy the stack may modify, with its vnet header @vnet_hdr
 * (12 bytes: a partial checksum is completed as a device would, then checked).
 */
void net_mmds_input(struct net_mmds *m, const uint8_t *vnet_hdr, uint8_t *frame, size_t len);
/* Whether the stack has a frame to send (it may still not fit a small buffer). */
bool net_mmds_pending(const struct net_mmds *m);
/*
 * Writes the next frame (Ethernet header first, full checksums) into @frame, at most @cap
 * bytes. Returns its length, 0 when there is none or none fits.
 */
size_t net_mmds_output(struct net_mmds *m, uint8_t *frame, size_t cap);
/*
 * When (clock_now_ns()) something in flight is due to be sent again; 0: nothing. The device
 * keeps one loop timer for it and calls net_mmds_timeout() then (frames follow through
 * net_mmds_pending()/net_mmds_output()).
 */
long long net_mmds_deadline(const struct net_mmds *m);
void net_mmds_timeout(struct net_mmds *m, long long now);
/* The device was reset: every connection and pending reply is forgotten. */
void net_mmds_reset(struct net_mmds *m);

const struct net_mmds_stats *net_mmds_stats(const struct net_mmds *m);
/* Connections open (any state). */
unsigned net_mmds_conns(const struct net_mmds *m);

#endif
