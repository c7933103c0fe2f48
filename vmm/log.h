/* Leveled logging with monotonic timestamps, to stderr or a file. */
#ifndef FLINT_LOG_H
#define FLINT_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

int log_level_parse(const char *name, enum log_level *out);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Sends log lines to @path (appended). Returns -errno; the old sink stays on failure. */
int log_set_file(const char *path);
void log_close(void);
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Formats "<prefix>: <message>" into @buf, for errors that are logged later, once. */
void msg_vformat(char *buf, size_t len, const char *prefix, const char *fmt, va_list ap)
        __attribute__((format(printf, 4, 0)));

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

/*
 * For messages a guest can trigger at will: true at most @burst times per second
 * per call site, so a hostile guest cannot flood the log.
 */
struct log_ratelimit {
	long long window_ns;
	unsigned count;
	unsigned burst;
	unsigned suppressed;
};
bool log_ratelimit_ok(struct log_ratelimit *rl);

#endif
