/*
 * virtio-net's MMDS stack: ARP replies and a small passive TCP for the MMDS address (see
 * net_mmds_stack.h). Every frame comes from the guest and is checked before it is believed.
 */
#include "devices/virtio/net_mmds_stack.h"
#include "vmm/base/clock.h"
#include "vmm/base/log.h"

#include <endian.h>
#include <errno.h>
#include <stdarg.h>
#include <linux/virtio_net.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

const uint8_t net_mmds_mac[6] = { 0x06, 0x01, 0x23, 0x45, 0x67, 0x01 };

#define ETH_HLEN      14
#define ETHERTYPE_IP  0x0800
#define ETHERTYPE_ARP 0x0806
#define ARP_LEN       28
#define IP_HLEN       20
#define TCP_HLEN      20
#define IPPROTO_TCP_  6
/* Our frames: no IP options; the SYN-ACK carries the MSS option (4 bytes). */
#define SEG_HLEN (ETH_HLEN + IP_HLEN + TCP_HLEN)
/* TTL of our packets: a guest that routes them on (to its containers) must not drop them. */
#define TTL 64
/* Firecracker's bounds on the guest's MSS option; without one, TCP's default. */
#define MSS_MIN     100
#define MSS_MAX     (65535 - IP_HLEN - TCP_HLEN)
#define MSS_DEFAULT 536

#define TH_FIN 0x01
#define TH_SYN 0x02
#define TH_RST 0x04
#define TH_PSH 0x08
#define TH_ACK 0x10

enum conn_state { CONN_FREE, CONN_SYN_RCVD, CONN_ESTABLISHED };

struct conn {
	enum conn_state state;
	uint8_t mac[6]; /* the guest's, from its SYN: where our frames go */
	uint32_t raddr;
	uint16_t rport;
	uint16_t mss;              /* the guest's: our segments' payload at most */
	uint32_t iss;              /* our initial sequence number */
	uint32_t snd_una, snd_nxt; /* oldest unacknowledged, next to send */
	uint32_t snd_max;          /* highest sent: snd_nxt goes back to snd_una to resend */
	uint32_t snd_edge;         /* right edge of the guest's window: ack + window */
	uint32_t rcv_nxt;          /* next byte expected from the guest */
	bool synack_pending;       /* send (again) a SYN-ACK */
	bool ack_pending;          /* something to acknowledge, or a window to show */
	bool rst_pending;          /* flint resets it: one RST, then it is gone */
	bool fin_rcvd;             /* the guest's FIN is in rcv_nxt */
	bool closing;              /* no more requests: send FIN once the answer is out */
	bool fin_sent, fin_acked;
	bool fin_ever;        /* our FIN went out once (fin_sent is cleared to resend it) */
	uint8_t dup_acks;     /* the guest's duplicate ACKs in a row */
	uint8_t rto_count;    /* retransmission timeouts in a row */
	long long rto_at_ns;  /* when what is in flight is resent; 0: nothing in flight */
	bool discard;         /* the responder gave up on this connection: bytes dropped */
	uint16_t adv_wnd;     /* the window our last segment showed */
	long long last_rx_ns; /* the guest's last segment on it */
	/* The answer (the responder's), kept until the guest acknowledges all of it, or NULL. */
	uint8_t *snd;
	size_t snd_len;
	uint32_t snd_base; /* the sequence number of snd[0] */
	size_t rcv_len;
	uint8_t rcv[NET_MMDS_RCV_MAX]; /* the guest's bytes not yet consumed by the responder */
};

/* A reset answering a segment that has no connection, or a connection flint evicted. */
struct rst {
	uint8_t mac[6];
	uint32_t raddr;
	uint16_t rport, lport;
	uint32_t seq, ack;
	uint8_t flags;
};

struct net_mmds {
	char who[48];
	uint32_t addr;
	struct net_mmds_responder responder;
	long long idle_ns;
	long long rto_ns;
	uint32_t isn_state;
	uint16_t ip_id;
	struct log_ratelimit rl;
	/* The ARP reply to send: the latest request wins (as in Firecracker). */
	bool arp_pending;
	uint8_t arp_mac[6];
	uint32_t arp_ip;
	struct rst rsts[NET_MMDS_MAX_RSTS]; /* a ring */
	unsigned rst_head, rst_n;
	unsigned next_conn; /* round robin among connections with something to send */
	struct net_mmds_stats st;
	struct conn conns[NET_MMDS_MAX_CONNS];
};

/* ---- Bytes ---- */

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)(v >> 16));
	put16(p + 2, (uint16_t)v);
}

/* Sequence space comparisons (RFC 793): a before b. */
static bool seq_lt(uint32_t a, uint32_t b)
{
	return (int32_t)(a - b) < 0;
}

static bool seq_le(uint32_t a, uint32_t b)
{
	return (int32_t)(a - b) <= 0;
}

/* The Internet checksum's one's-complement sum of @len bytes from an even offset. */
static uint64_t csum_add(uint64_t sum, const uint8_t *p, size_t len)
{
	size_t i;

	for (i = 0; i + 1 < len; i += 2)
		sum += get16(p + i);
	if (len & 1)
		sum += (uint64_t)p[len - 1] << 8;
	return sum;
}

static uint16_t csum_fold(uint64_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

static uint64_t pseudo_sum(uint32_t src, uint32_t dst, size_t tcp_len)
{
	return (src >> 16) + (src & 0xffff) + (dst >> 16) + (dst & 0xffff) + IPPROTO_TCP_ + tcp_len;
}

static void __attribute__((format(printf, 2, 3)))
guest_error(struct net_mmds *m, const char *fmt, ...)
{
	char why[160];
	va_list ap;

	if (!log_ratelimit_ok(&m->rl))
		return;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	log_warn("%s: MMDS: %s", m->who, why);
}

/* ---- Life ---- */

static uint32_t next_isn(struct net_mmds *m)
{
	uint32_t x = m->isn_state; /* xorshift32: unpredictable enough from a random seed */

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return m->isn_state = x;
}

struct net_mmds *net_mmds_new(const struct net_mmds_config *cfg, const char *who)
{
	struct net_mmds *m = calloc(1, sizeof(*m));

	if (!m) {
		log_error("%s: MMDS: out of memory", who);
		return NULL;
	}
	snprintf(m->who, sizeof(m->who), "%s", who);
	m->addr = cfg->ipv4 ? cfg->ipv4 : NET_MMDS_DEFAULT_IPV4;
	m->responder = cfg->responder;
	m->idle_ns = cfg->idle_ns ? (long long)cfg->idle_ns : (long long)NET_MMDS_IDLE_NS;
	m->rto_ns = cfg->rto_ns ? (long long)cfg->rto_ns : (long long)NET_MMDS_RTO_NS;
	m->isn_state = cfg->isn_seed;
	if (!m->isn_state && getrandom(&m->isn_state, sizeof(m->isn_state), 0) < 0)
		m->isn_state = (uint32_t)clock_now_ns();
	if (!m->isn_state)
		m->isn_state = 0x2545f491; /* xorshift must not start at 0 */
	m->rl = (struct log_ratelimit){ .burst = 10 };
	return m;
}

static void conn_free(struct net_mmds *m, struct conn *c)
{
	(void)m;
	free(c->snd);
	c->snd = NULL;
	c->state = CONN_FREE;
}

void net_mmds_reset(struct net_mmds *m)
{
	for (unsigned i = 0; i < NET_MMDS_MAX_CONNS; i++)
		if (m->conns[i].state != CONN_FREE)
			conn_free(m, &m->conns[i]);
	m->arp_pending = false;
	m->rst_n = 0;
}

void net_mmds_free(struct net_mmds *m)
{
	if (!m)
		return;
	net_mmds_reset(m);
	free(m);
}

const struct net_mmds_stats *net_mmds_stats(const struct net_mmds *m)
{
	return &m->st;
}

unsigned net_mmds_conns(const struct net_mmds *m)
{
	unsigned n = 0;

	for (unsigned i = 0; i < NET_MMDS_MAX_CONNS; i++)
		n += m->conns[i].state != CONN_FREE;
	return n;
}

/* ---- Which frames are ours ---- */

bool net_mmds_claims(const struct net_mmds *m, const uint8_t *f, size_t len)
{
	if (len < ETH_HLEN)
		return false;
	switch (get16(f + 12)) {
	case ETHERTYPE_ARP:
		return len >= ETH_HLEN + ARP_LEN && get32(f + ETH_HLEN + 24) == m->addr;
	case ETHERTYPE_IP:
		return len >= ETH_HLEN + IP_HLEN && get32(f + ETH_HLEN + 16) == m->addr;
	default:
		return false;
	}
}

/* ---- Input: ARP ---- */

static void arp_input(struct net_mmds *m, const uint8_t *a, size_t len)
{
	if (len < ARP_LEN) {
		m->st.rx_malformed++;
		return;
	}
	/* Ethernet, IPv4, 6- and 4-byte addresses, a request for our address. */
	if (get16(a) != 1 || get16(a + 2) != ETHERTYPE_IP || a[4] != 6 || a[5] != 4 ||
	    get16(a + 6) != 1 || get32(a + 24) != m->addr) {
		m->st.rx_unusual++;
		return;
	}
	m->st.rx_arp++;
	memcpy(m->arp_mac, a + 8, 6);
	m->arp_ip = get32(a + 14);
	m->arp_pending = true;
}

/* ---- Input: TCP ---- */

/* What an incoming segment says, parsed and checked. */
struct seg {
	const uint8_t *mac; /* the guest's source MAC */
	uint32_t raddr;
	uint16_t rport, lport;
	uint32_t seq, ack;
	uint8_t flags;
	uint16_t win;
	const uint8_t *opts;
	size_t opts_len;
	const uint8_t *data;
	size_t len;
};

static void rst_queue(struct net_mmds *m, const uint8_t *mac, uint32_t raddr, uint16_t rport,
                      uint16_t lport, uint32_t seq, uint32_t ack, uint8_t flags)
{
	struct rst *r;

	if (m->rst_n == NET_MMDS_MAX_RSTS) {
		m->st.rsts_lost++;
		return;
	}
	r = &m->rsts[(m->rst_head + m->rst_n++) % NET_MMDS_MAX_RSTS];
	*r = (struct rst){ .raddr = raddr,
		           .rport = rport,
		           .lport = lport,
		           .seq = seq,
		           .ack = ack,
		           .flags = flags };
	memcpy(r->mac, mac, 6);
}

/* RFC 793's reset for a segment nobody takes: its ACK as our sequence, or ACK its end. */
static void rst_for(struct net_mmds *m, const struct seg *s)
{
	uint32_t end = s->seq + (uint32_t)s->len + !!(s->flags & TH_SYN) + !!(s->flags & TH_FIN);

	if (s->flags & TH_RST)
		return; /* never a reset for a reset */
	if (s->flags & TH_ACK)
		rst_queue(m, s->mac, s->raddr, s->rport, s->lport, s->ack, 0, TH_RST);
	else
		rst_queue(m, s->mac, s->raddr, s->rport, s->lport, 0, end, TH_RST | TH_ACK);
}

/* The MSS option of a SYN: 0 when the options are malformed. */
static unsigned syn_mss(const struct seg *s)
{
	unsigned mss = MSS_DEFAULT;

	for (size_t i = 0; i < s->opts_len;) {
		uint8_t kind = s->opts[i], l;
		if (kind == 0)
			break;
		if (kind == 1) {
			i++;
			continue;
		}
		if (i + 1 >= s->opts_len)
			return 0;
		l = s->opts[i + 1];
		if (l < 2 || i + l > s->opts_len)
			return 0;
		if (kind == 2) {
			if (l != 4)
				return 0;
			mss = get16(s->opts + i + 2);
		}
		i += l;
	}
	return mss;
}

static struct conn *conn_find(struct net_mmds *m, uint32_t raddr, uint16_t rport)
{
	for (unsigned i = 0; i < NET_MMDS_MAX_CONNS; i++) {
		struct conn *c = &m->conns[i];
		if (c->state != CONN_FREE && c->raddr == raddr && c->rport == rport)
			return c;
	}
	return NULL;
}

/*
 * The reset flint sends on a connection it drops: seq snd_nxt is what an ESTABLISHED guest
 * expects next (every frame made before reached it in order), ACK rcv_nxt what a guest in
 * SYN_SENT checks.
 */
static void conn_rst(struct net_mmds *m, struct conn *c)
{
	rst_queue(m, c->mac, c->raddr, c->rport, NET_MMDS_PORT, c->snd_nxt, c->rcv_nxt,
	          TH_RST | TH_ACK);
	m->st.conns_reset++;
}

/* A free slot; at the limit, the connection idle longest if it is idle enough (reset). */
static struct conn *conn_slot(struct net_mmds *m, long long now)
{
	struct conn *idle = NULL;

	for (unsigned i = 0; i < NET_MMDS_MAX_CONNS; i++) {
		struct conn *c = &m->conns[i];
		if (c->state == CONN_FREE)
			return c;
		if (now - c->last_rx_ns >= m->idle_ns &&
		    (!idle || c->last_rx_ns < idle->last_rx_ns))
			idle = c;
	}
	if (idle) {
		conn_rst(m, idle);
		conn_free(m, idle);
		m->st.conns_evicted++;
	}
	return idle;
}

static void conn_open(struct net_mmds *m, const struct seg *s, long long now)
{
	unsigned mss = syn_mss(s);
	struct conn *c;

	if (mss == 0) {
		m->st.rx_malformed++;
		guest_error(m, "a SYN from port %u has malformed TCP options: dropped", s->rport);
		return;
	}
	if (mss < MSS_MIN || mss > MSS_MAX) {
		m->st.conns_refused++;
		rst_for(m, s);
		return;
	}
	c = conn_slot(m, now);
	if (!c) {
		m->st.conns_refused++;
		rst_for(m, s);
		return;
	}
	/* Data on a SYN (TCP Fast Open) is not taken: the guest sends it again. */
	*c = (struct conn){ .state = CONN_SYN_RCVD,
		            .raddr = s->raddr,
		            .rport = s->rport,
		            .mss = (uint16_t)mss,
		            .rcv_nxt = s->seq + 1,
		            .synack_pending = true,
		            .last_rx_ns = now };
	memcpy(c->mac, s->mac, 6);
	c->iss = next_isn(m);
	c->snd_una = c->snd_nxt = c->snd_max = c->iss;
	c->snd_edge = c->iss + 1 + s->win;
	m->st.conns_opened++;
}

/* The answer's bytes not sent yet (or to be sent again). */
static size_t unsent(const struct conn *c)
{
	uint32_t off = c->snd_nxt - c->snd_base;

	return c->snd && off < c->snd_len ? c->snd_len - off : 0;
}

static uint16_t rcv_window(const struct conn *c)
{
	return (uint16_t)(c->discard ? NET_MMDS_RCV_MAX : NET_MMDS_RCV_MAX - c->rcv_len);
}

/*
 * Hands the bytes received to the responder while no answer is being sent: one answer at
 * a time per connection bounds what a pipelining guest can make flint hold.
 */
static void conn_serve(struct net_mmds *m, struct conn *c)
{
	while (!c->snd && !c->discard && !c->rst_pending && c->rcv_len) {
		uint8_t *out = NULL;
		size_t out_len = 0;
		long r = m->responder.serve(m->responder.ctx, c->rcv, c->rcv_len, &out, &out_len);

		if (r == 0) {
			free(out); /* none is due with 0: never leaked */
			if (c->rcv_len == NET_MMDS_RCV_MAX) {
				/* A request larger than the window can never complete. */
				guest_error(m, "a request from port %u is over %u bytes: reset",
				            c->rport, NET_MMDS_RCV_MAX);
				c->rst_pending = true;
			}
			break;
		}
		if (r > 0 && (size_t)r <= c->rcv_len) {
			c->rcv_len -= (size_t)r;
			memmove(c->rcv, c->rcv + r, c->rcv_len);
		} else if (!out || !out_len) {
			/* Refused with nothing to say (a head too long): reset, as Firecracker. */
			free(out);
			m->st.bad_requests++;
			guest_error(m, "a request from port %u was refused: reset", c->rport);
			c->rst_pending = true;
			break;
		} else {
			m->st.bad_requests++;
			c->discard = true;
			c->rcv_len = 0;
		}
		if (out && out_len) {
			c->snd = out;
			c->snd_len = out_len;
			c->snd_base = c->snd_nxt;
		} else {
			free(out);
		}
	}
	/*
	 * Nothing more will be answered once all is sent: then the FIN may follow (an answer
	 * still kept for its ACK with requests behind it waits for that ACK).
	 */
	if ((c->discard || c->fin_rcvd) && !unsent(c) && (!c->snd || !c->rcv_len || c->discard))
		c->closing = true;
	/* The window last shown was too small to send into and it opened: say so. */
	if (c->adv_wnd < c->mss && c->adv_wnd < NET_MMDS_RCV_MAX / 2 && rcv_window(c) > c->adv_wnd)
		c->ack_pending = true;
}

/* Sends again from the oldest byte not acknowledged (the FIN too, if it is not). */
static void conn_rewind(struct conn *c)
{
	c->snd_nxt = c->snd_una;
	if (!c->fin_acked)
		c->fin_sent = false;
	c->dup_acks = 0;
}

/* The guest's ACK and window. false: the segment is done with (dropped or answered). */
static bool conn_ack(struct net_mmds *m, struct conn *c, const struct seg *s)
{
	if (c->state == CONN_SYN_RCVD) {
		/* Only the ACK of our SYN-ACK makes it ESTABLISHED (RFC 793: else RST). */
		if (c->snd_nxt == c->iss || s->ack != c->iss + 1) {
			rst_for(m, s);
			return false;
		}
		c->state = CONN_ESTABLISHED;
		c->snd_una = s->ack;
		c->snd_edge = s->ack + s->win;
		return true;
	}
	if (seq_lt(c->snd_max, s->ack)) {
		/* It acknowledges what was never sent: ACK, and drop it (RFC 793). */
		c->ack_pending = true;
		m->st.rx_out_of_wnd++;
		return false;
	}
	if (s->ack == c->snd_una && c->snd_una != c->snd_max && !s->len && !(s->flags & TH_FIN) &&
	    s->ack + s->win == c->snd_edge) {
		/* RFC 5681's duplicate ACK: the third says a segment was lost, resend from it. */
		if (++c->dup_acks == 3)
			conn_rewind(c);
		return true;
	}
	if (seq_lt(c->snd_una, s->ack)) {
		c->dup_acks = 0;
		c->rto_count = 0; /* progress: the guest is alive */
		c->snd_una = s->ack;
		if (seq_lt(c->snd_nxt, s->ack))
			c->snd_nxt = s->ack; /* resending: what it has is not sent again */
		if (c->fin_ever && s->ack == c->snd_max)
			c->fin_acked = c->fin_sent = true;
		c->rto_at_ns = c->snd_una == c->snd_max ? 0 : clock_now_ns() + m->rto_ns;
		if (c->snd && seq_le(c->snd_base + (uint32_t)c->snd_len, s->ack)) {
			/* All of the answer arrived: it goes, the next request is served. */
			free(c->snd);
			c->snd = NULL;
			conn_serve(m, c);
		}
	}
	if (seq_le(c->snd_una, s->ack))
		c->snd_edge = s->ack + s->win;
	return true;
}

/* The guest's data and FIN, in order only; what does not fit the window is not kept. */
static void conn_data(struct net_mmds *m, struct conn *c, const struct seg *s)
{
	uint32_t old = c->rcv_nxt - s->seq;
	size_t n, take;

	if (!s->len && !(s->flags & TH_FIN)) {
		if (s->seq != c->rcv_nxt)
			c->ack_pending = true; /* a window probe: unacceptable, so ACKed */
		return;
	}
	if ((int32_t)old < 0 || (c->fin_rcvd && s->len)) {
		/* A gap (the link never reorders: a broken guest) or data after its FIN. */
		c->ack_pending = true;
		m->st.rx_out_of_wnd++;
		return;
	}
	if (old > s->len) { /* all of it (and its FIN) taken already: a retransmission */
		c->ack_pending = true;
		return;
	}
	n = s->len - old;
	take = c->discard                          ? n
	       : n < NET_MMDS_RCV_MAX - c->rcv_len ? n
	                                           : NET_MMDS_RCV_MAX - c->rcv_len;
	if (!c->discard) {
		memcpy(c->rcv + c->rcv_len, s->data + old, take);
		c->rcv_len += take;
	}
	if (take < n)
		m->st.rx_out_of_wnd++;
	c->rcv_nxt += (uint32_t)take;
	if ((s->flags & TH_FIN) && take == n && !c->fin_rcvd) {
		c->fin_rcvd = true;
		c->rcv_nxt++;
	}
	c->ack_pending = true;
	conn_serve(m, c);
}

/* Both FINs acknowledged, ours by the guest and the guest's by us: the connection ends. */
static void conn_maybe_done(struct net_mmds *m, struct conn *c)
{
	if (c->state != CONN_FREE && c->fin_rcvd && c->fin_acked && !c->ack_pending) {
		m->st.conns_closed++;
		conn_free(m, c);
	}
}

static void conn_segment(struct net_mmds *m, struct conn *c, const struct seg *s, long long now)
{
	c->last_rx_ns = now;
	if (s->flags & TH_RST) {
		/* In the window only (a blind reset must guess it). */
		if (s->seq - c->rcv_nxt < NET_MMDS_RCV_MAX) {
			m->st.conns_reset++;
			conn_free(m, c);
		} else {
			m->st.rx_out_of_wnd++;
		}
		return;
	}
	if (s->flags & TH_SYN) {
		if (s->seq + 1 == c->rcv_nxt && !(s->flags & TH_ACK)) {
			/* Its SYN again: our SYN-ACK is late, or it wants an ACK. */
			if (c->state == CONN_SYN_RCVD)
				c->synack_pending = true;
			else
				c->ack_pending = true;
			return;
		}
		/* A new connection on the same port: the guest has forgotten the old one. */
		m->st.conns_closed++;
		conn_free(m, c);
		if (!(s->flags & TH_ACK))
			conn_open(m, s, now);
		else
			rst_for(m, s);
		return;
	}
	if (!(s->flags & TH_ACK)) {
		m->st.rx_unusual++; /* RFC 793: without ACK, dropped */
		return;
	}
	if (!conn_ack(m, c, s))
		return;
	conn_data(m, c, s);
	conn_maybe_done(m, c);
}

/*
 * A partial checksum (VIRTIO_NET_HDR_F_NEEDS_CSUM: Linux with VIRTIO_NET_F_CSUM) completed
 * as the device would: the sum from csum_start to the end, at csum_start + csum_offset.
 */
static bool csum_complete(const uint8_t *vh, uint8_t *f, size_t len)
{
	uint16_t start, off;

	if (!(vh[0] & VIRTIO_NET_HDR_F_NEEDS_CSUM))
		return true;
	memcpy(&start, vh + 6, 2);
	memcpy(&off, vh + 8, 2);
	start = le16toh(start);
	off = le16toh(off);
	if (start >= len || (size_t)start + off + 2 > len)
		return false;
	put16(f + start + off, (uint16_t)~csum_fold(csum_add(0, f + start, len - start)));
	return true;
}

static void tcp_input(struct net_mmds *m, const uint8_t *vh, uint8_t *f, size_t flen,
                      const uint8_t *ip, size_t ihl, size_t tot)
{
	const uint8_t *t = ip + ihl;
	size_t tl = tot - ihl, doff;
	struct seg s;
	struct conn *c;
	long long now;

	if (tl < TCP_HLEN || (doff = (size_t)(t[12] >> 4) * 4) < TCP_HLEN || doff > tl) {
		m->st.rx_malformed++;
		return;
	}
	if (!csum_complete(vh, f, flen)) {
		m->st.rx_malformed++;
		return;
	}
	if (csum_fold(csum_add(pseudo_sum(get32(ip + 12), m->addr, tl), t, tl)) != 0xffff) {
		m->st.rx_bad_csum++;
		return;
	}
	m->st.rx_segments++;
	s = (struct seg){ .mac = f + 6,
		          .raddr = get32(ip + 12),
		          .rport = get16(t),
		          .lport = get16(t + 2),
		          .seq = get32(t + 4),
		          .ack = get32(t + 8),
		          .flags = t[13] & 0x3f,
		          .win = get16(t + 14),
		          .opts = t + TCP_HLEN,
		          .opts_len = doff - TCP_HLEN,
		          .data = t + doff,
		          .len = tl - doff };
	if (s.lport != NET_MMDS_PORT) {
		/* Nothing else listens: refused, as a closed port is. */
		rst_for(m, &s);
		return;
	}
	now = clock_now_ns();
	c = conn_find(m, s.raddr, s.rport);
	if (c)
		conn_segment(m, c, &s, now);
	else if ((s.flags & (TH_SYN | TH_ACK | TH_FIN | TH_RST)) == TH_SYN)
		conn_open(m, &s, now); /* ECE and CWR (an ECN setup) are fine: not echoed */
	else
		rst_for(m, &s);
}

static void ip_input(struct net_mmds *m, const uint8_t *vh, uint8_t *f, size_t len)
{
	const uint8_t *ip = f + ETH_HLEN;
	size_t avail = len - ETH_HLEN, ihl, tot;

	if (avail < IP_HLEN || (ip[0] >> 4) != 4 || (ihl = (size_t)(ip[0] & 15) * 4) < IP_HLEN ||
	    (tot = get16(ip + 2)) < ihl || tot > avail) {
		/* Bytes after tot are padding (an Ethernet minimum): ignored. */
		m->st.rx_malformed++;
		return;
	}
	if (get32(ip + 16) != m->addr) {
		/* The guest rewrote it after the device looked: still ours, and dropped. */
		m->st.rx_malformed++;
		return;
	}
	if (csum_fold(csum_add(0, ip, ihl)) != 0xffff) {
		m->st.rx_bad_csum++;
		return;
	}
	if (get16(ip + 6) & 0x3fff) { /* MF, or an offset */
		m->st.rx_fragments++;
		return;
	}
	if (ip[9] != IPPROTO_TCP_) {
		m->st.rx_unusual++;
		return;
	}
	tcp_input(m, vh, f, len, ip, ihl, tot);
}

void net_mmds_input(struct net_mmds *m, const uint8_t *vh, uint8_t *f, size_t len)
{
	m->st.rx_frames++;
	if (len < ETH_HLEN) {
		m->st.rx_malformed++;
		m->st.rx_bad_eth++;
		return;
	}
	switch (get16(f + 12)) {
	case ETHERTYPE_ARP:
		arp_input(m, f + ETH_HLEN, len - ETH_HLEN);
		break;
	case ETHERTYPE_IP:
		ip_input(m, vh, f, len);
		break;
	default:
		m->st.rx_malformed++;
		break;
	}
}

/* ---- Output ---- */

static bool conn_has_output(const struct conn *c)
{
	if (c->state == CONN_FREE)
		return false;
	if (c->rst_pending || c->synack_pending)
		return true;
	if (c->state != CONN_ESTABLISHED)
		return false;
	if (unsent(c) && seq_lt(c->snd_nxt, c->snd_edge))
		return true;
	return (c->closing && !c->fin_sent) || c->ack_pending;
}

bool net_mmds_pending(const struct net_mmds *m)
{
	if (m->arp_pending || m->rst_n)
		return true;
	for (unsigned i = 0; i < NET_MMDS_MAX_CONNS; i++)
		if (conn_has_output(&m->conns[i]))
			return true;
	return false;
}

static void eth_header(uint8_t *f, const uint8_t *dst, uint16_t type)
{
	memcpy(f, dst, 6);
	memcpy(f + 6, net_mmds_mac, 6);
	put16(f + 12, type);
}

static size_t arp_output(struct net_mmds *m, uint8_t *f)
{
	uint8_t *a = f + ETH_HLEN;

	eth_header(f, m->arp_mac, ETHERTYPE_ARP);
	put16(a, 1);
	put16(a + 2, ETHERTYPE_IP);
	a[4] = 6;
	a[5] = 4;
	put16(a + 6, 2); /* reply */
	memcpy(a + 8, net_mmds_mac, 6);
	put32(a + 14, m->addr);
	memcpy(a + 18, m->arp_mac, 6);
	put32(a + 24, m->arp_ip);
	m->arp_pending = false;
	m->st.tx_frames++; /* every frame made, as Firecracker's mmds tx_frames */
	m->st.tx_bytes += ETH_HLEN + ARP_LEN;
	return ETH_HLEN + ARP_LEN;
}

/* A whole TCP/IPv4 frame around @optlen option bytes and @len payload bytes already in place. */
static size_t seg_output(struct net_mmds *m, uint8_t *f, const uint8_t *mac, uint32_t raddr,
                         uint16_t lport, uint16_t rport, uint32_t seq, uint32_t ack, uint8_t flags,
                         uint16_t win, size_t optlen, size_t len)
{
	uint8_t *ip = f + ETH_HLEN, *t = ip + IP_HLEN;
	size_t tl = TCP_HLEN + optlen + len;

	eth_header(f, mac, ETHERTYPE_IP);
	ip[0] = 0x45;
	ip[1] = 0;
	put16(ip + 2, (uint16_t)(IP_HLEN + tl));
	put16(ip + 4, m->ip_id++);
	put16(ip + 6, 0x4000); /* DF */
	ip[8] = TTL;
	ip[9] = IPPROTO_TCP_;
	put16(ip + 10, 0);
	put32(ip + 12, m->addr);
	put32(ip + 16, raddr);
	put16(ip + 10, (uint16_t)~csum_fold(csum_add(0, ip, IP_HLEN)));
	put16(t, lport);
	put16(t + 2, rport);
	put32(t + 4, seq);
	put32(t + 8, ack);
	t[12] = (uint8_t)((TCP_HLEN + optlen) / 4 << 4);
	t[13] = flags;
	put16(t + 14, win);
	put16(t + 16, 0);
	put16(t + 18, 0);
	put16(t + 16, (uint16_t)~csum_fold(csum_add(pseudo_sum(m->addr, raddr, tl), t, tl)));
	m->st.tx_frames++;
	m->st.tx_bytes += ETH_HLEN + IP_HLEN + tl;
	return ETH_HLEN + IP_HLEN + tl;
}

static size_t rst_output(struct net_mmds *m, uint8_t *f)
{
	const struct rst *r = &m->rsts[m->rst_head];

	m->rst_head = (m->rst_head + 1) % NET_MMDS_MAX_RSTS;
	m->rst_n--;
	m->st.rsts_sent++;
	return seg_output(m, f, r->mac, r->raddr, r->lport, r->rport, r->seq, r->ack, r->flags, 0,
	                  0, 0);
}

static size_t conn_output_seg(struct net_mmds *m, struct conn *c, uint8_t *f, uint32_t seq,
                              uint8_t flags, size_t optlen, size_t len)
{
	c->adv_wnd = rcv_window(c);
	c->ack_pending = false;
	return seg_output(m, f, c->mac, c->raddr, NET_MMDS_PORT, c->rport, seq, c->rcv_nxt, flags,
	                  c->adv_wnd, optlen, len);
}

/* After data or FIN went out: the highest sent, and the timer for what is in flight. */
static void conn_sent(struct net_mmds *m, struct conn *c)
{
	if (seq_lt(c->snd_max, c->snd_nxt))
		c->snd_max = c->snd_nxt;
	if (!c->rto_at_ns)
		c->rto_at_ns = clock_now_ns() + m->rto_ns;
}

static size_t conn_output(struct net_mmds *m, struct conn *c, uint8_t *f, size_t cap)
{
	uint8_t *payload = f + SEG_HLEN;
	size_t len;

	if (c->rst_pending) {
		conn_rst(m, c); /* queued behind the others: sent in turn */
		conn_free(m, c);
		return cap >= SEG_HLEN ? rst_output(m, f) : 0;
	}
	if (c->synack_pending) {
		if (cap < SEG_HLEN + 4)
			return 0;
		c->synack_pending = false;
		c->snd_nxt = c->snd_max = c->iss + 1;
		payload[0] = 2; /* MSS: the guest's own, as Firecracker answers */
		payload[1] = 4;
		put16(payload + 2, c->mss);
		return conn_output_seg(m, c, f, c->iss, TH_SYN | TH_ACK, 4, 0);
	}
	if (c->state != CONN_ESTABLISHED || cap < SEG_HLEN)
		return 0;
	if (unsent(c) && seq_lt(c->snd_nxt, c->snd_edge)) {
		uint32_t seq = c->snd_nxt;
		uint8_t flags = TH_ACK;
		len = unsent(c);
		if (len > c->mss)
			len = c->mss;
		if (len > c->snd_edge - c->snd_nxt)
			len = c->snd_edge - c->snd_nxt;
		if (len > cap - SEG_HLEN)
			len = cap - SEG_HLEN;
		if (len) {
			memcpy(payload, c->snd + (c->snd_nxt - c->snd_base), len);
			c->snd_nxt += (uint32_t)len;
			if (!unsent(c)) {
				/* All sent; kept until acknowledged, as a segment may be lost. */
				flags |= TH_PSH;
				conn_serve(m, c);
			}
			if (c->closing && !unsent(c) && !c->fin_sent) {
				flags |= TH_FIN;
				c->fin_sent = c->fin_ever = true;
				c->snd_nxt++;
			}
			conn_sent(m, c);
			return conn_output_seg(m, c, f, seq, flags, 0, len);
		}
	}
	if (c->closing && !c->fin_sent && !unsent(c)) {
		c->fin_sent = c->fin_ever = true;
		c->snd_nxt++;
		conn_sent(m, c);
		return conn_output_seg(m, c, f, c->snd_nxt - 1, TH_FIN | TH_ACK, 0, 0);
	}
	if (c->ack_pending)
		return conn_output_seg(m, c, f, c->snd_nxt, TH_ACK, 0, 0);
	return 0;
}

size_t net_mmds_output(struct net_mmds *m, uint8_t *f, size_t cap)
{
	if (m->arp_pending && cap >= ETH_HLEN + ARP_LEN)
		return arp_output(m, f);
	if (m->rst_n && cap >= SEG_HLEN)
		return rst_output(m, f);
	for (unsigned i = 0; i < NET_MMDS_MAX_CONNS; i++) {
		unsigned k = (m->next_conn + i) % NET_MMDS_MAX_CONNS;
		struct conn *c = &m->conns[k];
		size_t len;
		if (!conn_has_output(c))
			continue;
		len = conn_output(m, c, f, cap);
		if (len) {
			m->next_conn = k + 1;
			conn_maybe_done(m, c); /* that was the ACK of its FIN, ours acknowledged */
			return len;
		}
	}
	return 0;
}

long long net_mmds_deadline(const struct net_mmds *m)
{
	long long next = 0;

	for (unsigned i = 0; i < NET_MMDS_MAX_CONNS; i++) {
		const struct conn *c = &m->conns[i];
		if (c->state == CONN_ESTABLISHED && c->rto_at_ns && (!next || c->rto_at_ns < next))
			next = c->rto_at_ns;
	}
	return next;
}

void net_mmds_timeout(struct net_mmds *m, long long now)
{
	for (unsigned i = 0; i < NET_MMDS_MAX_CONNS; i++) {
		struct conn *c = &m->conns[i];
		if (c->state != CONN_ESTABLISHED || !c->rto_at_ns || now < c->rto_at_ns)
			continue;
		if (c->snd_una == c->snd_max) {
			c->rto_at_ns = 0;
			continue;
		}
		if (++c->rto_count > NET_MMDS_RTO_MAX) {
			/* The guest has stopped acknowledging: give up as Firecracker, with a RST.
			 */
			guest_error(m, "port %u acknowledged nothing in %u retransmissions: reset",
			            c->rport, NET_MMDS_RTO_MAX);
			c->rst_pending = true;
			c->rto_at_ns = 0;
			continue;
		}
		m->st.retransmits++;
		conn_rewind(c);
		c->rto_at_ns = now + m->rto_ns;
	}
}
