#include "vmm/log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static const char *const level_names[] = { "error", "warn", "info", "debug" };

static struct {
	enum log_level level;
	int fd; /* -1: stderr */
	struct timespec start;
	pthread_mutex_t lock;
} logger = { LOG_INFO, -1, { 0, 0 }, PTHREAD_MUTEX_INITIALIZER };

int log_level_parse(const char *name, enum log_level *out)
{
	for (unsigned i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcasecmp(name, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -EINVAL;
}

void log_set_level(enum log_level level)
{
	logger.level = level;
}

enum log_level log_get_level(void)
{
	return logger.level;
}

int log_set_file(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
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
	pthread_mutex_unlock(&logger.lock);
}

static long long now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	char line[2048];
	int n;
	va_list ap;

	if (level > logger.level)
		return;
	/* Timestamps count from the first message so lines are comparable within a run. */
	pthread_mutex_lock(&logger.lock);
	if (logger.start.tv_sec == 0 && logger.start.tv_nsec == 0)
		clock_gettime(CLOCK_MONOTONIC, &logger.start);
	long long t =
	        now_ns() - ((long long)logger.start.tv_sec * 1000000000LL + logger.start.tv_nsec);
	n = snprintf(line, sizeof(line), "[%6lld.%06lld] flint %s: ", t / 1000000000LL,
	             (t / 1000) % 1000000, level_names[level]);
	va_start(ap, fmt);
	n += vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	/* One write per line keeps lines whole when threads log at once. */
	if (write(logger.fd >= 0 ? logger.fd : STDERR_FILENO, line, (size_t)n) < 0) {
		/* Nowhere left to report a failing log sink. */
	}
	pthread_mutex_unlock(&logger.lock);
}

void msg_vformat(char *buf, size_t len, const char *prefix, const char *fmt, va_list ap)
{
	int n = snprintf(buf, len, "%s: ", prefix);

	if (n >= 0 && (size_t)n < len)
		vsnprintf(buf + n, len - (size_t)n, fmt, ap);
}

bool log_ratelimit_ok(struct log_ratelimit *rl)
{
	long long now = now_ns();

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
