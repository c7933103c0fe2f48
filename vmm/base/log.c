#include "vmm/base/log.h"
#include "vmm/base/clock.h"
#include "vmm/base/file.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const level_names[] = { "error", "warn", "info", "debug" };

static struct {
	atomic_int level;   /* read by every thread without the lock */
	int fd;             /* -1: stderr */
	long long start_ns; /* the first message's time: 0 until then */
	pthread_mutex_t lock;
	/*
	 * stderr through a description of our own that never blocks (file_nonblocking_writer):
	 * a log nobody reads must not hold the lock, and with it every thread that logs and
	 * the signal handling that waits on the loop. -2: not set up yet.
	 */
	int err_fd;
	bool err_sock;
	unsigned long dropped; /* lines the sink did not take; said with the next one it does */
	atomic_bool capturing; /* log_capture_first_error(): read without the lock */
	char *capture;         /* under the lock */
	size_t capture_len;
} logger = { LOG_INFO, -1, 0, PTHREAD_MUTEX_INITIALIZER, -2, false, 0, false, NULL, 0 };

static const char *escape(char *buf, size_t len, const char *s, const char *also);

void log_capture_first_error(char *buf, size_t len)
{
	pthread_mutex_lock(&logger.lock);
	logger.capture = len ? buf : NULL;
	logger.capture_len = len;
	if (logger.capture)
		buf[0] = 0;
	atomic_store(&logger.capturing, logger.capture != NULL);
	pthread_mutex_unlock(&logger.lock);
}

/* The first error while capturing, escaped as a log line is. Under the lock. */
static void __attribute__((format(printf, 2, 0)))
capture(enum log_level level, const char *fmt, va_list ap)
{
	char msg[2048];

	if (level != LOG_ERROR || !logger.capture || logger.capture[0])
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	escape(logger.capture, logger.capture_len, msg, "");
}

int log_level_parse(const char *name, enum log_level *out)
{
	/* Firecracker's LevelFilter names; its Warn is also spelt "warning". */
	static const struct {
		const char *name;
		enum log_level level;
	} also[] = { { "warning", LOG_WARN }, { "trace", LOG_DEBUG }, { "off", LOG_OFF } };

	for (unsigned i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcasecmp(name, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	for (unsigned i = 0; i < sizeof(also) / sizeof(also[0]); i++) {
		if (strcasecmp(name, also[i].name) == 0) {
			*out = also[i].level;
			return 0;
		}
	}
	return -EINVAL;
}

void log_set_level(enum log_level level)
{
	atomic_store(&logger.level, (int)level);
}

enum log_level log_get_level(void)
{
	return (enum log_level)atomic_load(&logger.level);
}

int log_set_file(const char *path, char *why, size_t whylen)
{
	struct stat st;
	/*
	 * A FIFO is opened read-write, as Firecracker opens its log FIFO: it needs no reader yet
	 * (the Go SDK makes it and names it in PUT /logger before it reads it), and it stays
	 * non-blocking: lines a stalled or absent reader cannot take are dropped.
	 */
	bool fifo = stat(path, &st) == 0 && S_ISFIFO(st.st_mode);
	int fd = file_open(path, fifo ? O_RDWR : O_WRONLY | O_CREAT | O_APPEND,
	                   FILE_REG | FILE_CHR | FILE_FIFO, 0, why, whylen);

	if (fd < 0)
		return fd;
	pthread_mutex_lock(&logger.lock);
	if (logger.fd >= 0)
		close(logger.fd);
	logger.fd = fd;
	pthread_mutex_unlock(&logger.lock);
	return 0;
}

void log_close(void)
{
	pthread_mutex_lock(&logger.lock);
	if (logger.fd >= 0)
		close(logger.fd);
	logger.fd = -1;
	if (logger.err_fd >= 0 && logger.err_fd != STDERR_FILENO)
		close(logger.err_fd);
	logger.err_fd = -2;
	pthread_mutex_unlock(&logger.lock);
}

/* Where lines go now, and whether by send(). Lock held. */
static int sink_fd(bool *sock)
{
	*sock = false;
	if (logger.fd >= 0)
		return logger.fd;
	if (logger.err_fd == -2) {
		logger.err_fd = file_nonblocking_writer(STDERR_FILENO, &logger.err_sock);
		if (logger.err_fd < 0)
			logger.err_fd = STDERR_FILENO; /* no /proc: blocking it is */
	}
	*sock = logger.err_sock;
	return logger.err_fd;
}

/* Writes one whole line without waiting; false when the sink cannot take it now. */
static bool sink_write(const char *line, size_t n)
{
	bool sock;
	int fd = sink_fd(&sock);
	ssize_t w;

	do
		w = sock ? send(fd, line, n, MSG_DONTWAIT | MSG_NOSIGNAL) : write(fd, line, n);
	while (w < 0 && errno == EINTR);
	return w == (ssize_t)n;
}

/* @v as decimal, at least @width wide (padded with @pad); returns the end. Signal-safe. */
static char *put_dec(char *p, long long v, int width, char pad)
{
	char d[24];
	int n = 0;

	do
		d[n++] = (char)('0' + v % 10);
	while ((v /= 10) && n < (int)sizeof(d));
	for (int i = n; i < width; i++)
		*p++ = pad;
	while (n)
		*p++ = d[--n];
	return p;
}

void log_sink_ready(void)
{
	bool sock;

	pthread_mutex_lock(&logger.lock);
	(void)sink_fd(&sock);
	pthread_mutex_unlock(&logger.lock);
}

void log_signal_error(const char *msg)
{
	/* A snapshot of the sink without the lock: the line is the last flint writes. */
	int fd = logger.fd >= 0 ? logger.fd : logger.err_fd >= 0 ? logger.err_fd : STDERR_FILENO;
	long long t = logger.start_ns ? clock_now_ns() - logger.start_ns : 0;
	char line[512], *p = line, *end = line + sizeof(line) - 2;

	if (atomic_load(&logger.level) < LOG_ERROR)
		return;
	*p++ = '[';
	p = put_dec(p, t / 1000000000LL, 6, ' ');
	*p++ = '.';
	p = put_dec(p, (t / 1000) % 1000000, 6, '0');
	for (const char *s = "] flint error: "; *s; s++)
		*p++ = *s;
	/* Printable ASCII only, as every line (msg comes from flint, but a line is a line). */
	for (; *msg && p < end; msg++)
		*p++ = (*msg >= 0x20 && *msg < 0x7f) ? *msg : '?';
	*p++ = '\n';
	if (fd == logger.err_fd && logger.err_sock)
		(void)send(fd, line, (size_t)(p - line), MSG_DONTWAIT | MSG_NOSIGNAL);
	else
		(void)!write(fd, line, (size_t)(p - line));
}

/* One byte as a message shows it: itself, backslash-escaped when in @also, else \xNN. */
static size_t escape_byte(unsigned char ch, const char *also, char out[5])
{
	if (ch && strchr(also, ch)) {
		out[0] = '\\';
		out[1] = (char)ch;
		return 2;
	}
	if (ch >= 0x20 && ch < 0x7f) {
		out[0] = (char)ch;
		return 1;
	}
	snprintf(out, 5, "\\x%02x", ch);
	return 4;
}

static const char *escape(char *buf, size_t len, const char *s, const char *also)
{
	size_t n = 0, k;
	char one[5];

	/* Invariant: n + 4 <= len, room for "..." and the NUL. */
	for (; *s; s++) {
		k = escape_byte((unsigned char)*s, also, one);
		if (n + k + 4 > len) {
			memcpy(buf + n, "...", 4);
			return buf;
		}
		memcpy(buf + n, one, k);
		n += k;
	}
	buf[n] = 0;
	return buf;
}

const char *msg_escape(char *buf, size_t len, const char *s)
{
	return escape(buf, len, s, "\\\"");
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	char msg[2048], line[2048];
	int n;
	va_list ap;

	if (atomic_load(&logger.capturing)) {
		pthread_mutex_lock(&logger.lock);
		va_start(ap, fmt);
		capture(level, fmt, ap);
		va_end(ap);
		pthread_mutex_unlock(&logger.lock);
	}
	if (level < 0 || (int)level > atomic_load(&logger.level))
		return;
	/* Timestamps count from the first message so lines are comparable within a run. */
	pthread_mutex_lock(&logger.lock);
	if (!logger.start_ns)
		logger.start_ns = clock_now_ns();
	long long t = clock_now_ns() - logger.start_ns;
	n = snprintf(line, sizeof(line), "[%6lld.%06lld] flint %s: ", t / 1000000000LL,
	             (t / 1000) % 1000000, level_names[level]);
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/*
	 * Control bytes cannot reach the sink, whatever a caller forgot to escape: one message
	 * is one line, and no escape sequence gets to a terminal.
	 */
	escape(line + n, sizeof(line) - (size_t)n - 1, msg, "");
	n += (int)strlen(line + n);
	line[n++] = '\n';
	/* One write per line keeps lines whole when threads log at once. */
	if (logger.dropped) {
		char note[128];
		int k = snprintf(note, sizeof(note),
		                 "[%6lld.%06lld] flint warn: %lu log lines were dropped: the log "
		                 "was not read fast enough\n",
		                 t / 1000000000LL, (t / 1000) % 1000000, logger.dropped);
		if (sink_write(note, (size_t)k))
			logger.dropped = 0;
	}
	if (logger.dropped || !sink_write(line, (size_t)n))
		logger.dropped++;
	pthread_mutex_unlock(&logger.lock);
}

void msg_vformat(char *buf, size_t len, const char *prefix, const char *fmt, va_list ap)
{
	int n = snprintf(buf, len, "%s: ", MSG_ESC(prefix));

	if (n >= 0 && (size_t)n < len)
		vsnprintf(buf + n, len - (size_t)n, fmt, ap);
}

bool log_ratelimit_ok(struct log_ratelimit *rl)
{
	long long now = clock_now_ns();

	if (rl->burst == 0)
		rl->burst = 10;
	if (now - rl->window_ns >= 1000000000LL) {
		if (rl->suppressed)
			log_warn("%u similar messages suppressed", rl->suppressed);
		rl->window_ns = now;
		rl->count = 0;
		rl->suppressed = 0;
	}
	if (rl->count < rl->burst) {
		rl->count++;
		return true;
	}
	rl->suppressed++;
	return false;
}
