#include "vmm/console.h"
#include "vmm/base/clock.h"
#include "vmm/base/file.h"
#include "vmm/base/log.h"
#include "vmm/base/loop.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static void on_post(void *arg);
static void on_writable(int fd, int events, void *arg);

/*
 * Makes @fd a sink whose writes never block (file_nonblocking_writer()). Without /proc
 * (a jail), O_NONBLOCK goes on the shared description and comes off at the end.
 */
static int sink_open(struct console_sink *s, int fd, const char *name)
{
	int w;

	s->fd = -1;
	s->name = name;
	if (fd < 0)
		return 0;
	w = file_nonblocking_writer(fd, &s->sock);
	if (w == -EBADF)
		return 0; /* a closed stdout: no console there */
	s->buf = malloc(CONSOLE_BUF_BYTES);
	if (!s->buf) {
		if (w >= 0 && w != fd)
			close(w);
		return -ENOMEM;
	}
	s->fd = fd;
	if (w >= 0) {
		s->fd = w;
		s->owned = w != fd;
		return 0;
	}
	s->fd_flags = fcntl(fd, F_GETFL);
	if (s->fd_flags < 0 || fcntl(fd, F_SETFL, s->fd_flags | O_NONBLOCK) < 0)
		return -errno;
	s->restore_flags = true;
	return 0;
}

int console_init(struct console *c, struct loop *loop, int out_fd, int log_fd,
                 const char *log_name)
{
	int r;

	memset(c, 0, sizeof(*c));
	pthread_mutex_init(&c->lock, NULL);
	c->loop = loop;
	loop_post_init(&c->post, on_post, c);
	c->sinks[0].fd = c->sinks[1].fd = -1;
	r = sink_open(&c->sinks[0], out_fd, "stdout");
	if (!r)
		r = sink_open(&c->sinks[1], log_fd, log_name);
	if (c->sinks[1].fd == log_fd)
		c->sinks[1].owned = log_fd >= 0; /* the serial log is ours to close */
	else if (log_fd >= 0)
		close(log_fd); /* replaced by a reopened description, or never reached */
	return r;
}

void console_put(struct console *c, uint8_t byte)
{
	bool queued = false;

	pthread_mutex_lock(&c->lock);
	for (int i = 0; i < 2; i++) {
		struct console_sink *s = &c->sinks[i];
		if (s->fd < 0)
			continue;
		if (s->len == CONSOLE_BUF_BYTES) {
			s->dropped++;
			continue;
		}
		s->buf[(s->head + s->len++) % CONSOLE_BUF_BYTES] = byte;
		queued = true;
	}
	pthread_mutex_unlock(&c->lock);
	/* One drain queued at a time, however many bytes arrive before it runs. */
	if (queued)
		loop_post_node(c->loop, &c->post); /* queued even when the wake-up failed */
}

/* Puts the fd back as it was found, and closes it when it is ours. */
static void sink_close(struct console_sink *s)
{
	if (s->fd < 0)
		return;
	if (s->restore_flags)
		fcntl(s->fd, F_SETFL, s->fd_flags);
	if (s->owned)
		close(s->fd);
	s->fd = -1;
}

/*
 * Writes what @s holds until it is empty or the fd is full (then a write watch takes
 * over). Lock held. Returns 0, or the errno that ended the sink (logged by the caller,
 * outside the lock: the log may share a pipe with this very sink).
 */
static int sink_drain(struct console *c, struct console_sink *s)
{
	while (s->fd >= 0 && s->len) {
		size_t run = CONSOLE_BUF_BYTES - s->head;
		ssize_t n;

		if (run > s->len)
			run = s->len;
		n = s->sock ? send(s->fd, s->buf + s->head, run, MSG_DONTWAIT | MSG_NOSIGNAL)
		            : write(s->fd, s->buf + s->head, run);
		if (n > 0) {
			s->head = (s->head + (size_t)n) % CONSOLE_BUF_BYTES;
			s->len -= (size_t)n;
		} else if (n < 0 && errno == EINTR) {
			continue;
		} else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (!s->wait && c->loop)
				s->wait = loop_add_fd(c->loop, s->fd, LOOP_WRITE, on_writable, c);
			return 0;
		} else {
			int e = n < 0 ? errno : EIO;
			s->dropped += s->len; /* the reader is gone: nothing more reaches it */
			s->len = 0;
			sink_close(s);
			return e;
		}
	}
	if (!s->len && s->wait) {
		loop_remove(s->wait);
		s->wait = NULL;
	}
	return 0;
}

/* Drains every sink; then says what went wrong, once per sink and kind. */
static void console_drain(struct console *c)
{
	int err[2] = {0, 0};
	uint64_t dropped[2] = {0, 0};

	pthread_mutex_lock(&c->lock);
	for (int i = 0; i < 2; i++) {
		struct console_sink *s = &c->sinks[i];
		err[i] = sink_drain(c, s);
		if (s->dropped && !s->dropped_said) {
			dropped[i] = s->dropped;
			s->dropped_said = s->dropped;
		}
	}
	pthread_mutex_unlock(&c->lock);
	for (int i = 0; i < 2; i++) {
		const char *name = c->sinks[i].name;
		if (err[i])
			log_warn("console: writing to %s failed (%s): guest output to it stops here",
			         name, strerror(err[i]));
		else if (dropped[i])
			log_warn("console: %s is not keeping up with the guest: output is being "
			         "dropped (%llu bytes so far; the total is logged at exit)",
			         name, (unsigned long long)dropped[i]);
	}
}

static void on_post(void *arg)
{
	console_drain(arg);
}

static void on_writable(int fd, int events, void *arg)
{
	(void)fd;
	(void)events;
	console_drain(arg);
}


/* Fills @p with the sinks that still hold bytes; returns how many. */
static int pending_fds(struct console *c, struct pollfd *p)
{
	int n = 0;

	pthread_mutex_lock(&c->lock);
	for (int i = 0; i < 2; i++)
		if (c->sinks[i].fd >= 0 && c->sinks[i].len)
			p[n++] = (struct pollfd){c->sinks[i].fd, POLLOUT, 0};
	pthread_mutex_unlock(&c->lock);
	return n;
}

void console_flush(struct console *c, int ms)
{
	long long end = (clock_now_ns() / 1000000) + ms;
	struct pollfd p[2];
	int n;

	console_drain(c);
	while ((n = pending_fds(c, p)) > 0 && (clock_now_ns() / 1000000) < end) {
		poll(p, (nfds_t)n, (int)(end - (clock_now_ns() / 1000000)));
		console_drain(c);
	}
	pthread_mutex_lock(&c->lock);
	for (int i = 0; i < 2; i++) {
		c->sinks[i].dropped += c->sinks[i].len; /* a reader too slow even now */
		c->sinks[i].len = 0;
	}
	pthread_mutex_unlock(&c->lock);
	for (int i = 0; i < 2; i++)
		if (c->sinks[i].dropped)
			log_warn("console: %llu bytes of guest output to %s were dropped: it was "
			         "not read fast enough",
			         (unsigned long long)c->sinks[i].dropped, c->sinks[i].name);
}

uint64_t console_dropped(struct console *c, unsigned i)
{
	uint64_t d;

	pthread_mutex_lock(&c->lock);
	d = i < 2 ? c->sinks[i].dropped : 0;
	pthread_mutex_unlock(&c->lock);
	return d;
}

void console_destroy(struct console *c)
{
	for (int i = 0; i < 2; i++) {
		struct console_sink *s = &c->sinks[i];
		loop_remove(s->wait);
		sink_close(s);
		free(s->buf);
	}
	if (c->loop)
		loop_post_cancel(c->loop, &c->post); /* a drain still queued: its node goes now */
	pthread_mutex_destroy(&c->lock);
	memset(c, 0, sizeof(*c));
}
