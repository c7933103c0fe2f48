/* virtio-vsock (virtio 1.x section 5.10) with Firecracker's hybrid Unix socket backend. */
#ifndef FLINT_VIRTIO_VSOCK_H
#define FLINT_VIRTIO_VSOCK_H

#include "devices/virtio/device.h"
#include "vmm/base/log.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

/*
 * How the host reaches the guest, as Firecracker does it (docs/vsock.md):
 *  - host-initiated: a host process connects to the Unix socket at uds_path and writes
 *    "CONNECT <port>\n"; flint asks guest port <port> (REQUEST) and, once the guest
 *    accepts (RESPONSE), writes "OK <host_port>\n" back, host_port being the local port
 *    flint assigned (from 1 << 30 up). A refusal (RST) or no answer in 2 s closes it,
 *    and so does a bad line, or none within VSOCK_LINE_MAX bytes or 10 s.
 *  - guest-initiated: a guest connecting to CID 2 port P makes flint connect to the
 *    Unix socket "<uds_path>_P"; RESPONSE when that works, RST when it does not.
 * Bytes then flow both ways under the spec's credit-based flow control: flint never
 * sends the guest more than its credit, and advertises VSOCK_BUF_ALLOC per connection:
 * that is all it ever holds for a host peer that does not read, and a guest that sends
 * beyond it has its connection reset. Host data is read straight into the guest's RX
 * buffers, only while it has given some: without, host sockets are not read.
 * A host EOF is SHUTDOWN(SEND) to the guest, a guest SHUTDOWN(SEND) is shutdown(SHUT_WR)
 * on the host socket (once its data is out), so half-closes work both ways.
 *
 * Threading (device.h): activate and reset only bump state and ring a doorbell eventfd
 * watched on the loop (an eventfd the device owns, not loop_post(), so nothing queued
 * can outlive it); everything else (the listening socket, host connections, timers)
 * runs on the loop under the device lock, and drops what a reset left behind first.
 */

#define VSOCK_HOST_CID        2
#define VSOCK_BUF_ALLOC       (256u * 1024) /* per connection, advertised as buf_alloc */
#define VSOCK_MAX_PKT         (64u * 1024)  /* payload of one packet, either way */
#define VSOCK_MAX_CONNS       1024          /* everything: CONNECT lines, live, resetting */
#define VSOCK_SEGS            64            /* segments of one chain flint takes */
#define VSOCK_RST_RING        256           /* RSTs owed for packets of no connection */
#define VSOCK_HASH            256           /* buckets of the connection table */
#define VSOCK_LINE_MAX        64            /* "CONNECT <port>\n", newline included */
#define VSOCK_LOCAL_PORT_BASE (1u << 30)

struct loop;
struct loop_watch;
struct vsock_config;
struct vsock_conn; /* devices/virtio/vsock_conn.c */

struct vsock_rst {
	uint32_t local_port, peer_port;
};

struct virtio_vsock {
	struct virtio_dev dev; /* first: the transport sees this */
	struct loop *loop;
	uint64_t guest_cid;
	char *uds_path;
	int listen_fd;
	struct loop_watch *listen_watch; /* only while the device is active */
	int doorbell_fd;                 /* activate/reset ring it; the loop does the work */
	struct loop_watch *doorbell_watch;
	struct loop_watch *timer; /* only while some connection has a deadline */
	unsigned epoch;           /* bumped by reset: the loop drops what is older */
	unsigned synced_epoch;
	bool listen_paused; /* accept failed (EMFILE...): the timer listens again */
	bool destroyed;
	/* The connection table. */
	struct vsock_conn *conns; /* every connection */
	struct vsock_conn *buckets[VSOCK_HASH];
	struct vsock_conn *rx_head, *rx_tail; /* connections owing the guest a packet */
	unsigned nconns;
	uint32_t last_local_port;
	struct vsock_rst rst[VSOCK_RST_RING];
	unsigned rst_head, rst_len;
	/* An RX chain taken from the guest and not filled yet: kept for the next packet. */
	struct virtqueue_seg rx_segs[VSOCK_SEGS];
	struct virtqueue_chain rx_chain;
	bool rx_held;
	struct virtqueue_seg tx_segs[VSOCK_SEGS];
	struct log_ratelimit rl;
	/* Counters, for tests. */
	uint64_t buffered; /* guest bytes held for host peers, every connection */
	uint64_t rx_packets, tx_packets;
};

/*
 * Binds and listens on cfg->uds_path (which must not exist, as in Firecracker) and fills
 * in @v->dev for virtio_mmio_init(). Connections are accepted from the first activation
 * on. Returns 0 or -errno, with one log line naming the path.
 */
int virtio_vsock_init(struct virtio_vsock *v, const struct vsock_config *cfg, struct loop *loop);
/*
 * On the loop thread, before the loop is freed, after the vCPUs stopped (before or after
 * virtio_mmio_destroy()): closes every connection and the listening socket, unlinks
 * uds_path.
 */
void virtio_vsock_destroy(struct virtio_vsock *v);

/* Internal: shared by vsock.c (the device, its queues) and vsock_conn.c (host side). */
enum vsock_conn_state {
	VC_LINE,        /* host connected, its CONNECT line not read yet */
	VC_LOCAL_INIT,  /* REQUEST owed or sent to the guest */
	VC_PEER_INIT,   /* the guest asked, the host socket is connected: RESPONSE owed */
	VC_ESTABLISHED, /* data both ways */
	VC_KILLED,      /* host side closed, RST owed to the guest */
};

/* Packets a connection owes the guest. */
enum {
	VC_P_RST = 1,
	VC_P_RESPONSE = 2,
	VC_P_REQUEST = 4,
	VC_P_RW = 8, /* the host socket is readable */
	VC_P_CREDIT_UPDATE = 16,
};

struct vsock_conn {
	struct virtio_vsock *v;
	struct vsock_conn *prev, *next;       /* v->conns */
	struct vsock_conn *hnext;             /* bucket; hashed unless in VC_LINE */
	struct vsock_conn *rx_prev, *rx_next; /* v->rx_head, while in_rx */
	bool in_rx, hashed;
	enum vsock_conn_state state;
	uint32_t local_port, peer_port;
	int fd;
	struct loop_watch *watch;
	int events;
	unsigned pending; /* VC_P_* */
	/* Host to guest. */
	uint32_t rx_cnt; /* bytes sent to the guest */
	uint32_t peer_buf_alloc, peer_fwd_cnt;
	bool credit_requested;
	/* Guest to host. */
	uint32_t tx_cnt;            /* bytes taken from the guest */
	uint32_t fwd_cnt;           /* of which written to the host socket */
	uint32_t last_fwd_cnt_sent; /* fwd_cnt in the last packet to the guest */
	uint8_t *buf;               /* ring of VSOCK_BUF_ALLOC bytes while not empty */
	uint32_t buf_head, buf_len;
	bool peer_shut_rcv, peer_shut_send, host_eof, host_wr_shut;
	long long deadline_ns; /* 0: none */
	char line[VSOCK_LINE_MAX];
	unsigned line_len;
};

/* vsock.c */
void vsock_rx_pump(struct virtio_vsock *v);
bool vsock_enter(struct virtio_vsock *v);
void vsock_guest_error(struct virtio_vsock *v, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

/* vsock_conn.c */
struct vsock_conn *vsock_conn_new(struct virtio_vsock *v, int fd, enum vsock_conn_state st);
void vsock_conn_hash(struct vsock_conn *c, uint32_t local_port, uint32_t peer_port);
struct vsock_conn *vsock_conn_find(struct virtio_vsock *v, uint32_t local_port, uint32_t peer_port);
void vsock_conn_free(struct vsock_conn *c);
void vsock_conn_kill(struct vsock_conn *c); /* may free @c: do not touch it after */
void vsock_conn_schedule(struct vsock_conn *c, unsigned pending);
void vsock_conn_unschedule(struct vsock_conn *c);
void vsock_conn_watch(struct vsock_conn *c);
void vsock_conn_set_deadline(struct vsock_conn *c, long long ms);
uint32_t vsock_conn_credit(const struct vsock_conn *c);
int vsock_conn_from_guest(struct vsock_conn *c, const struct iovec *iov, int n, uint32_t len);
void vsock_conn_guest_shutdown(struct vsock_conn *c, uint32_t flags);
void vsock_conn_established(struct vsock_conn *c);
int vsock_host_connect(struct virtio_vsock *v, uint32_t port);
int vsock_listen_start(struct virtio_vsock *v);
void vsock_close_all(struct virtio_vsock *v);

#endif
