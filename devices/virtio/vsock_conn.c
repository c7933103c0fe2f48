/* virtio-vsock's host side: the connection table, the Unix sockets and the CONNECT line. */
#include "devices/virtio/vsock.h"
#include "vmm/base/clock.h"
#include "vmm/base/log.h"
#include "vmm/base/loop.h"

#include <errno.h>
#include <linux/virtio_vsock.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define REQUEST_TIMEOUT_MS  2000  /* Firecracker's: a guest that never answers a REQUEST */
#define SHUTDOWN_TIMEOUT_MS 2000  /* a closing connection whose host peer stopped reading */
#define LINE_TIMEOUT_MS     10000 /* a host that connects and never says where to */
#define TIMER_US            250000
/* Tell the guest about freed room once what it last heard leaves it less than a packet. */
#define CREDIT_UPDATE_THRESHOLD VSOCK_MAX_PKT

static void conn_on_event(int fd, int events, void *arg);

static unsigned bucket(uint32_t local_port, uint32_t peer_port)
{
	return ((local_port * 2654435761u) ^ (peer_port * 40503u)) % VSOCK_HASH;
}

struct vsock_conn *vsock_conn_new(struct virtio_vsock *v, int fd, enum vsock_conn_state st)
{
	struct vsock_conn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->v = v;
	c->fd = fd;
	c->state = st;
	c->next = v->conns;
	if (c->next)
		c->next->prev = c;
	v->conns = c;
	v->nconns++;
	return c;
}

void vsock_conn_hash(struct vsock_conn *c, uint32_t local_port, uint32_t peer_port)
{
	struct vsock_conn **b = &c->v->buckets[bucket(local_port, peer_port)];

	c->local_port = local_port;
	c->peer_port = peer_port;
	c->hnext = *b;
	*b = c;
	c->hashed = true;
}

struct vsock_conn *vsock_conn_find(struct virtio_vsock *v, uint32_t local_port, uint32_t peer_port)
{
	struct vsock_conn *c = v->buckets[bucket(local_port, peer_port)];

	while (c && (c->local_port != local_port || c->peer_port != peer_port))
		c = c->hnext;
	return c;
}

static void unhash(struct vsock_conn *c)
{
	struct vsock_conn **p = &c->v->buckets[bucket(c->local_port, c->peer_port)];

	while (*p != c)
		p = &(*p)->hnext;
	*p = c->hnext;
	c->hashed = false;
}

/* The host socket and everything held for it. */
static void close_host(struct vsock_conn *c)
{
	loop_remove(c->watch);
	c->watch = NULL;
	c->events = 0;
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->v->buffered -= c->buf_len;
	free(c->buf);
	c->buf = NULL;
	c->buf_head = c->buf_len = 0;
}

void vsock_conn_free(struct vsock_conn *c)
{
	struct virtio_vsock *v = c->v;

	close_host(c);
	vsock_conn_unschedule(c);
	if (c->hashed)
		unhash(c);
	if (c->prev)
		c->prev->next = c->next;
	else
		v->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	v->nconns--;
	free(c);
}

void vsock_conn_schedule(struct vsock_conn *c, unsigned pending)
{
	struct virtio_vsock *v = c->v;

	c->pending |= pending;
	if (c->in_rx)
		return;
	c->in_rx = true;
	c->rx_next = NULL;
	c->rx_prev = v->rx_tail;
	if (v->rx_tail)
		v->rx_tail->rx_next = c;
	else
		v->rx_head = c;
	v->rx_tail = c;
}

void vsock_conn_unschedule(struct vsock_conn *c)
{
	struct virtio_vsock *v = c->v;

	if (!c->in_rx)
		return;
	if (c->rx_prev)
		c->rx_prev->rx_next = c->rx_next;
	else
		v->rx_head = c->rx_next;
	if (c->rx_next)
		c->rx_next->rx_prev = c->rx_prev;
	else
		v->rx_tail = c->rx_prev;
	c->in_rx = false;
	c->rx_prev = c->rx_next = NULL;
}

void vsock_conn_kill(struct vsock_conn *c)
{
	if (c->state == VC_KILLED)
		return;
	/* The guest never heard of it: there is nothing to tell it. */
	if (c->state == VC_LINE || (c->state == VC_LOCAL_INIT && (c->pending & VC_P_REQUEST))) {
		vsock_conn_free(c);
		return;
	}
	close_host(c);
	c->state = VC_KILLED;
	c->deadline_ns = 0;
	c->pending = 0;
	vsock_conn_schedule(c, VC_P_RST);
}

uint32_t vsock_conn_credit(const struct vsock_conn *c)
{
	uint32_t in_flight = c->rx_cnt - c->peer_fwd_cnt;

	/* A guest fwd_cnt ahead of what it was sent gives no credit, not a wrapped 4 GiB. */
	return in_flight > c->peer_buf_alloc ? 0 : c->peer_buf_alloc - in_flight;
}

static int wanted_events(const struct vsock_conn *c)
{
	int ev = 0;

	if (c->state == VC_LINE)
		return LOOP_READ;
	if (c->state != VC_ESTABLISHED)
		return 0;
	if (c->buf_len)
		ev |= LOOP_WRITE;
	/*
	 * Not while a read is owed: that waits for an RX buffer, and the level-triggered
	 * watch would spin the loop meanwhile. Not without credit either.
	 */
	if (!c->host_eof && !c->peer_shut_rcv && !(c->pending & VC_P_RW) && vsock_conn_credit(c))
		ev |= LOOP_READ;
	return ev;
}

void vsock_conn_watch(struct vsock_conn *c)
{
	int ev = wanted_events(c);

	if (ev == c->events)
		return;
	loop_remove(c->watch);
	c->watch = NULL;
	c->events = 0;
	if (!ev)
		return;
	c->watch = loop_add_fd(c->v->loop, c->fd, ev, conn_on_event, c);
	if (!c->watch) {
		log_error("%s: cannot watch a host connection: out of memory", c->v->dev.name);
		vsock_conn_kill(c);
		return;
	}
	c->events = ev;
}

static void on_timer(void *arg);

static void timer_arm(struct virtio_vsock *v)
{
	if (!v->timer)
		v->timer = loop_add_timer(v->loop, TIMER_US, true, on_timer, v);
	if (!v->timer)
		log_error("%s: cannot arm its timer: connections will not time out", v->dev.name);
}

void vsock_conn_set_deadline(struct vsock_conn *c, long long ms)
{
	c->deadline_ns = ms ? clock_now_ns() + ms * 1000000LL : 0;
	if (ms)
		timer_arm(c->v);
}

static void timed_out(const struct vsock_conn *c)
{
	const char *why = c->state == VC_LINE         ? "no CONNECT line from the host"
	                  : c->state == VC_LOCAL_INIT ? "the guest did not answer its REQUEST"
	                                              : "the host peer stopped reading";

	if (log_ratelimit_ok(&c->v->rl))
		log_info("%s: connection %u:%u closed: %s", c->v->dev.name, c->local_port,
		         c->peer_port, why);
}

/* Kills the connections past their deadline; stops once none has one. */
static void on_timer(void *arg)
{
	struct virtio_vsock *v = arg;
	long long now = clock_now_ns();
	struct vsock_conn *c, *next;
	bool more = false;

	if (!vsock_enter(v))
		return;
	if (v->listen_paused) {
		v->listen_paused = false;
		if (vsock_listen_start(v))
			log_error("%s: cannot watch its Unix socket again", v->dev.name);
	}
	for (c = v->conns; c; c = next) {
		next = c->next;
		if (!c->deadline_ns)
			continue;
		if (c->deadline_ns > now) {
			more = true;
			continue;
		}
		timed_out(c);
		vsock_conn_kill(c);
	}
	if (!more) {
		loop_remove(v->timer);
		v->timer = NULL;
	}
	vsock_rx_pump(v);
	virtio_dev_unlock(&v->dev);
}

/* Queues a credit update when what the guest last heard leaves it little room. */
static void credit_check(struct vsock_conn *c)
{
	if (VSOCK_BUF_ALLOC - (c->fwd_cnt - c->last_fwd_cnt_sent) < CREDIT_UPDATE_THRESHOLD)
		vsock_conn_schedule(c, VC_P_CREDIT_UPDATE);
}

static void ring_copy_in(struct vsock_conn *c, const uint8_t *p, uint32_t len)
{
	uint32_t tail = (c->buf_head + c->buf_len) % VSOCK_BUF_ALLOC;
	uint32_t first = len < VSOCK_BUF_ALLOC - tail ? len : VSOCK_BUF_ALLOC - tail;

	memcpy(c->buf + tail, p, first);
	memcpy(c->buf, p + first, len - first);
	c->buf_len += len;
	c->v->buffered += len;
}

/* Keeps the @len bytes of @iov after the first @skip for later. */
static int ring_put(struct vsock_conn *c, const struct iovec *iov, int n, uint32_t skip,
                    uint32_t len)
{
	if (len > VSOCK_BUF_ALLOC - c->buf_len)
		return -ENOBUFS;
	if (!c->buf && !(c->buf = malloc(VSOCK_BUF_ALLOC)))
		return -ENOMEM;
	for (int i = 0; i < n && len; i++) {
		const uint8_t *p = iov[i].iov_base;
		size_t l = iov[i].iov_len;
		if (skip >= l) {
			skip -= (uint32_t)l;
			continue;
		}
		p += skip;
		l -= skip;
		skip = 0;
		if (l > len)
			l = len;
		ring_copy_in(c, p, (uint32_t)l);
		len -= (uint32_t)l;
	}
	return 0;
}

/* Writes what the ring holds to the host socket, as much as it takes. */
static int ring_flush(struct vsock_conn *c)
{
	uint32_t first = VSOCK_BUF_ALLOC - c->buf_head;
	struct iovec iov[2];
	struct msghdr m = { .msg_iov = iov, .msg_iovlen = 1 };
	ssize_t w;

	if (first > c->buf_len)
		first = c->buf_len;
	iov[0] = (struct iovec){ c->buf + c->buf_head, first };
	iov[1] = (struct iovec){ c->buf, c->buf_len - first };
	if (c->buf_len > first)
		m.msg_iovlen = 2;
	w = sendmsg(c->fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (w < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -errno;
	c->buf_head = (c->buf_head + (uint32_t)w) % VSOCK_BUF_ALLOC;
	c->buf_len -= (uint32_t)w;
	c->v->buffered -= (uint64_t)w;
	c->fwd_cnt += (uint32_t)w;
	if (!c->buf_len) {
		free(c->buf);
		c->buf = NULL;
		c->buf_head = 0;
	}
	return 0;
}

int vsock_conn_from_guest(struct vsock_conn *c, const struct iovec *iov, int n, uint32_t len)
{
	struct msghdr m = { .msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)n };
	uint32_t done = 0;
	int r = 0;

	/* Beyond the room flint advertised: the guest broke flow control. */
	if (c->tx_cnt - c->last_fwd_cnt_sent + (uint64_t)len > VSOCK_BUF_ALLOC)
		return -EDQUOT;
	if (!c->buf_len) {
		ssize_t w = sendmsg(c->fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			return -errno;
		done = w > 0 ? (uint32_t)w : 0;
		c->fwd_cnt += done;
	}
	if (done < len)
		r = ring_put(c, iov, n, done, len - done);
	c->tx_cnt += len;
	credit_check(c);
	return r;
}

/* Once everything the guest sent reached the host: pass its shutdown on. May kill @c. */
static void drained(struct vsock_conn *c)
{
	if (c->buf_len)
		return;
	if (c->peer_shut_rcv && c->peer_shut_send) {
		vsock_conn_kill(c); /* the spec's end: the RST that confirms a full shutdown */
		return;
	}
	if (c->peer_shut_send && !c->host_wr_shut) {
		shutdown(c->fd, SHUT_WR); /* the host peer reads its EOF */
		c->host_wr_shut = true;
	}
}

void vsock_conn_guest_shutdown(struct vsock_conn *c, uint32_t flags)
{
	c->peer_shut_rcv |= (flags & VIRTIO_VSOCK_SHUTDOWN_RCV) != 0;
	c->peer_shut_send |= (flags & VIRTIO_VSOCK_SHUTDOWN_SEND) != 0;
	if (c->peer_shut_rcv)
		c->pending &= ~(unsigned)VC_P_RW;
	if (c->peer_shut_rcv && c->peer_shut_send && c->buf_len && !c->deadline_ns)
		vsock_conn_set_deadline(c, SHUTDOWN_TIMEOUT_MS);
	drained(c);
}

void vsock_conn_established(struct vsock_conn *c)
{
	char ok[24];
	int n = snprintf(ok, sizeof(ok), "OK %u\n", c->local_port);

	c->state = VC_ESTABLISHED;
	c->deadline_ns = 0;
	/* A dozen bytes to a fresh socket: anything short of all of them is a broken peer. */
	if (send(c->fd, ok, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL) != n) {
		if (log_ratelimit_ok(&c->v->rl))
			log_info("%s: cannot acknowledge host connection %u: %s", c->v->dev.name,
			         c->local_port, strerror(errno));
		vsock_conn_kill(c);
		return;
	}
	vsock_conn_watch(c);
}

int vsock_host_connect(struct virtio_vsock *v, uint32_t port)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int n = snprintf(a.sun_path, sizeof(a.sun_path), "%s_%u", v->uds_path, port);
	int fd, r;

	if (n < 0 || (size_t)n >= sizeof(a.sun_path))
		return -ENAMETOOLONG;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* Non-blocking: a listener with a full backlog is refused (EAGAIN), never waited on. */
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

static bool local_port_used(const struct virtio_vsock *v, uint32_t port)
{
	for (const struct vsock_conn *c = v->conns; c; c = c->next)
		if (c->hashed && c->local_port == port)
			return true;
	return false;
}

/* Firecracker's: round robin over [1 << 30, 1 << 31), skipping ports in use. */
static uint32_t alloc_local_port(struct virtio_vsock *v)
{
	do
		v->last_local_port =
		        ((v->last_local_port + 1) & ~(1u << 31)) | VSOCK_LOCAL_PORT_BASE;
	while (local_port_used(v, v->last_local_port));
	return v->last_local_port;
}

/*
 * "CONNECT <port>\n", as Firecracker reads it: words split at white space, the first
 * "connect" in any case, the second a decimal u32; anything after is ignored.
 */
static int parse_connect(const char *line, size_t len, uint32_t *port)
{
	static const char ws[] = " \t\r\n\v\f";
	char buf[VSOCK_LINE_MAX + 1], *save, *word, *end;
	unsigned long long p;

	if (memchr(line, '\0', len))
		return -EINVAL;
	memcpy(buf, line, len);
	buf[len] = '\0';
	word = strtok_r(buf, ws, &save);
	if (!word || strcasecmp(word, "connect"))
		return -EINVAL;
	word = strtok_r(NULL, ws, &save);
	if (!word)
		return -EINVAL;
	if (*word == '+')
		word++;
	if (*word < '0' || *word > '9')
		return -EINVAL;
	errno = 0;
	p = strtoull(word, &end, 10);
	if (errno || *end || p > UINT32_MAX)
		return -EINVAL;
	*port = (uint32_t)p;
	return 0;
}

static void connect_line(struct vsock_conn *c)
{
	struct virtio_vsock *v = c->v;
	uint32_t port;

	if (parse_connect(c->line, c->line_len, &port)) {
		if (log_ratelimit_ok(&v->rl))
			log_info("%s: host connection closed: not a CONNECT <port> line",
			         v->dev.name);
		vsock_conn_free(c);
		return;
	}
	vsock_conn_hash(c, alloc_local_port(v), port);
	c->state = VC_LOCAL_INIT;
	/* From now: the guest gets this long to take the REQUEST and answer it. */
	vsock_conn_set_deadline(c, REQUEST_TIMEOUT_MS);
	vsock_conn_watch(c); /* nothing until the guest answers */
	vsock_conn_schedule(c, VC_P_REQUEST);
}

/*
 * Reads the host's line up to its newline and not a byte further: what follows belongs
 * to the stream. Bytes without a newline are taken (the watch would spin on them
 * otherwise), at most VSOCK_LINE_MAX of them. May free @c.
 */
static void read_line(struct vsock_conn *c)
{
	char peek[VSOCK_LINE_MAX];
	size_t room = sizeof(c->line) - c->line_len, take;
	ssize_t n = recv(c->fd, peek, room, MSG_PEEK | MSG_DONTWAIT);
	char *nl;

	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (n <= 0) {
		vsock_conn_free(c); /* closed (or broken) before saying where to */
		return;
	}
	nl = memchr(peek, '\n', (size_t)n);
	take = nl ? (size_t)(nl - peek) + 1 : (size_t)n;
	if (recv(c->fd, c->line + c->line_len, take, MSG_DONTWAIT) != (ssize_t)take) {
		vsock_conn_free(c);
		return;
	}
	c->line_len += (unsigned)take;
	if (nl)
		connect_line(c);
	else if (c->line_len == sizeof(c->line)) {
		if (log_ratelimit_ok(&c->v->rl))
			log_info("%s: host connection closed: no newline in its first %zu bytes",
			         c->v->dev.name, sizeof(c->line));
		vsock_conn_free(c);
	}
}

/* The host socket of a live connection is writable and/or readable. */
static void conn_io(struct vsock_conn *c, int events)
{
	if ((events & LOOP_WRITE) && c->buf_len) {
		uint32_t before = c->buf_len;
		int r = ring_flush(c);
		if (r) {
			if (log_ratelimit_ok(&c->v->rl))
				log_info("%s: connection %u:%u: host peer: %s", c->v->dev.name,
				         c->local_port, c->peer_port, strerror(-r));
			vsock_conn_kill(c);
			return;
		}
		if (c->buf_len < before && c->deadline_ns)
			vsock_conn_set_deadline(c, SHUTDOWN_TIMEOUT_MS); /* it reads: more time */
		credit_check(c);
		drained(c);
		if (c->state == VC_KILLED)
			return;
	}
	if (events & LOOP_READ)
		vsock_conn_schedule(c, VC_P_RW);
	vsock_conn_watch(c);
}

static void conn_on_event(int fd, int events, void *arg)
{
	struct vsock_conn *c = arg;
	struct virtio_vsock *v = c->v;

	(void)fd;
	if (!vsock_enter(v))
		return;
	if (c->state == VC_LINE)
		read_line(c);
	else
		conn_io(c, events);
	vsock_rx_pump(v);
	virtio_dev_unlock(&v->dev);
}

static void accepted(struct virtio_vsock *v, int s)
{
	struct vsock_conn *c;

	if (v->nconns >= VSOCK_MAX_CONNS) {
		/* Taken and closed: left in the backlog, it would wake the loop forever. */
		if (log_ratelimit_ok(&v->rl))
			log_warn("%s: %u connections already: host connection refused", v->dev.name,
			         VSOCK_MAX_CONNS);
		close(s);
		return;
	}
	c = vsock_conn_new(v, s, VC_LINE);
	if (!c) {
		close(s);
		return;
	}
	vsock_conn_set_deadline(c, LINE_TIMEOUT_MS);
	vsock_conn_watch(c);
}

static void on_accept(int fd, int events, void *arg)
{
	struct virtio_vsock *v = arg;
	int s;

	(void)events;
	if (!vsock_enter(v))
		return;
	s = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (s >= 0) {
		accepted(v, s);
	} else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
	           errno != ECONNABORTED) {
		/* Out of fds or memory: the pending connection would wake the loop forever. */
		log_warn("%s: cannot accept on %s: %s; retrying shortly", v->dev.name,
		         MSG_ESC(v->uds_path), strerror(errno));
		loop_remove(v->listen_watch);
		v->listen_watch = NULL;
		v->listen_paused = true;
		timer_arm(v);
	}
	virtio_dev_unlock(&v->dev);
}

int vsock_listen_start(struct virtio_vsock *v)
{
	if (v->listen_watch || v->listen_paused)
		return 0;
	v->listen_watch = loop_add_fd(v->loop, v->listen_fd, LOOP_READ, on_accept, v);
	return v->listen_watch ? 0 : -ENOMEM;
}

void vsock_close_all(struct virtio_vsock *v)
{
	while (v->conns)
		vsock_conn_free(v->conns);
	loop_remove(v->listen_watch);
	v->listen_watch = NULL;
	v->listen_paused = false;
	loop_remove(v->timer);
	v->timer = NULL;
	v->rst_head = v->rst_len = 0;
	v->rx_held = false; /* the transport's reset drops the chain, unanswered */
	v->last_local_port = VSOCK_LOCAL_PORT_BASE - 1;
}
