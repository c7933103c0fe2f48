/* virtio-net (virtio 1.x section 5.1): one RX/TX queue pair over a host TAP device. */
/*
 * Everything runs on the loop, under the device's lock: TX pops a chain, checks it and
 * writev()s header + frame to the TAP; when the TAP pushes back (EAGAIN) the chain waits
 * for a LOOP_WRITE watch. RX reads one frame into a bounce buffer and copies it into the
 * guest's buffers (several with MRG_RXBUF); the TAP is watched only while the guest has
 * buffers, so frames wait in the TAP, never dropped and never spun on.
 *
 * With an MMDS (cfg->mmds), a TX frame for its address goes to the stack (net_mmds.c)
 * instead of the TAP, decided on a copy of its first bytes that is also what the TAP gets;
 * the stack's frames go into the RX queue taking turns with the TAP's, made only when
 * there is a buffer for them.
 *
 * A chain the driver got wrong (TX: a writable buffer, shorter than the header, longer
 * than VIRTIO_NET_MAX_PACKET, offloads not negotiated; RX: a readable buffer, shorter than
 * the header) is returned with len 0 and a rate-limited warning: that packet is lost, the
 * device goes on. A broken ring (virtqueue_pop's errors) sets DEVICE_NEEDS_RESET.
 */
#ifndef FLINT_VIRTIO_NET_H
#define FLINT_VIRTIO_NET_H

#include "devices/virtio/device.h"
#include "devices/virtio/rate_limiter.h"
#include "devices/virtio/config.h"
#include "devices/virtio/net_mmds_stack.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#define VIRTIO_NET_Q_RX      0
#define VIRTIO_NET_Q_TX      1
#define VIRTIO_NET_QUEUE_MAX 256
/* struct virtio_net_hdr_v1: what precedes every frame, both ways, and what the TAP takes. */
#define VIRTIO_NET_HDR_LEN 12
/*
 * The largest frame either way: a 64 KiB GSO packet with its Ethernet header and a VLAN
 * tag (65550 bytes), plus the vnet header. Firecracker's limit too.
 */
#define VIRTIO_NET_MAX_PACKET 65562
/* Config space: mac[6], status, max_virtqueue_pairs (1: no MQ). */
#define VIRTIO_NET_CONFIG_LEN 10

/* What the device copies of each TX frame: the header, and what decides the MMDS's. */
#define VIRTIO_NET_TX_HEAD (VIRTIO_NET_HDR_LEN + NET_MMDS_CLAIM_LEN)

/* A chain of the frame being received with MRG_RXBUF, filled and not yet pushed. */
struct virtio_net_rx_part {
	uint16_t head;
	uint32_t len;
};

struct virtio_net {
	struct virtio_dev dev; /* first: the transport sees this */
	struct loop *loop;     /* where the TAP is watched */
	int fd;                /* the TAP (or, in tests, a datagram socket) */
	unsigned tap_offloads; /* TUN_F_* the TAP accepted at init; 0 for a socket */
	unsigned offloads;     /* TUN_F_* set at the last activate */
	uint8_t config[VIRTIO_NET_CONFIG_LEN];
	struct log_ratelimit rl; /* the guest's errors, rate-limited */
	/*
	 * Loop-thread only (queue_notify and the callbacks run there; activate and reset
	 * never touch them): a watch's callback removes it once the device is not active.
	 */
	struct loop_watch *rx_watch; /* TAP readable, only while the guest has RX buffers */
	struct loop_watch *tx_watch; /* TAP writable, only while a frame waits for it */
	struct loop_watch *resume;   /* a 0 s timer: the rest of a burst, after other work */
	/* TX: the chain being sent; pending when the TAP pushed back (EAGAIN). */
	struct virtqueue_seg tx_segs[VIRTIO_NET_QUEUE_MAX];
	struct virtqueue_chain tx_chain;
	struct iovec tx_iov[VIRTIO_NET_QUEUE_MAX + 1];
	unsigned tx_iovcnt;
	uint8_t tx_hdr[VIRTIO_NET_TX_HEAD]; /* the header and the frame's first bytes */
	uint32_t tx_hdr_len;
	bool tx_pending;
	bool tx_paid; /* the pending chain's tokens are taken */
	/* RX: one frame read from the TAP at a time, then copied into the guest's buffers. */
	uint8_t *rx_buf;  /* VIRTIO_NET_MAX_PACKET bytes */
	uint32_t rx_len;  /* 0: no frame waiting */
	uint32_t rx_done; /* bytes of it already in guest buffers (MRG_RXBUF) */
	struct virtqueue_seg rx_segs[VIRTIO_NET_QUEUE_MAX];
	struct virtqueue_chain rx_chain;
	bool rx_chain_held; /* popped, checked, not yet written */
	struct virtio_net_rx_part rx_parts[VIRTIO_NET_QUEUE_MAX];
	unsigned rx_nparts;
	uint8_t *rx_num_buffers[2]; /* where the first part's num_buffers bytes are */
	bool rx_paid;               /* the waiting frame's tokens are taken */
	/* The MMDS stack, or NULL; its TX frames are copied whole into tx_frame. */
	struct net_mmds *mmds;
	uint8_t *tx_frame; /* VIRTIO_NET_MAX_PACKET bytes, with an MMDS only */
	bool rx_mmds_turn; /* the stack's frame goes next, if it has one */
	bool rx_from_mmds; /* the frame in rx_buf is the stack's */
	bool tx_to_mmds;   /* this TX run gave the stack frames */
	/* The stack's retransmission timer (one per device), due at mmds_timer_at. */
	struct loop_watch *mmds_timer;
	long long mmds_timer_at;
	/* cfg->tx and cfg->rx; a blocked direction waits for its timer, never sleeps. */
	struct ratelimit tx_rl, rx_rl;
	struct ratelimit_timer tx_timer, rx_timer;
	/* Counters, for tests and metrics: the TAP's frames (the MMDS stack counts its own). */
	uint64_t tx_packets, tx_bytes, tx_dropped, tx_wakeups;
	uint64_t rx_packets, rx_bytes, rx_dropped, rx_wakeups;
};

/*
 * Opens TAP @name (created when it does not exist and flint may create it) with the
 * vnet header: O_NONBLOCK, IFF_TAP | IFF_NO_PI | IFF_VNET_HDR, a 12-byte header. Returns 0
 * with *@fd, or -errno after one log line naming the interface and the reason.
 */
int virtio_net_open_tap(const char *name, int *fd);

/*
 * Opens cfg->host_dev and fills @n: name "virtio-net <id>", VIRTIO_ID_NET, queues rx=0
 * tx=1, features (MAC when cfg->has_mac, MRG_RXBUF, STATUS, CSUM and the host TSO/UFO
 * offloads; the guest receive offloads the TAP takes). Before the transport binds it.
 * Returns 0 or -errno (logged once); after a failure destroy is harmless but not needed.
 */
int virtio_net_init(struct virtio_net *n, const struct net_config *cfg, struct loop *loop);
/*
 * The same over @fd, already open and non-blocking, which @n owns from now on (closed by
 * destroy, or here on failure): a TAP, or a datagram socket for tests (frames keep their
 * boundaries, TUNSETOFFLOAD fails, so no guest receive offload is offered).
 */
int virtio_net_init_fd(struct virtio_net *n, int fd, const struct net_config *cfg,
                       struct loop *loop);
/*
 * After the transport was destroyed (the device is reset), before the loop is freed:
 * removes the watches, closes the TAP.
 */
void virtio_net_destroy(struct virtio_net *n);

/*
 * Firecracker's PATCH /network-interfaces: ratelimit_update() of the running RX limiter
 * with @rx and of the TX one with @tx (NULL: that direction unchanged); a frame held for
 * the old limits tries the new ones at once. Loop thread, device bound to its transport.
 */
void virtio_net_set_limiters(struct virtio_net *n, const struct rate_limiter *rx,
                             const struct rate_limiter *tx);

#endif
