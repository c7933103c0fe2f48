/* Leveled logging with monotonic timestamps, to stderr or a file. */
#ifndef FLINT_LOG_H
#define FLINT_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

/* LOG_OFF is a level to set (nothing is logged), never one to log at. */
enum log_level { LOG_OFF = -1, LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

/*
 * flint's level names and Firecracker's, in any case: error, warn or warning, info, debug,
 * trace (flint's debug: it has nothing finer), off.
 */
int log_level_parse(const char *name, enum log_level *out);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/*
 * Sends log lines to @path (appended; a regular file, a character device or a FIFO with a
 * reader). Returns -errno with the reason in @why; the old sink stays on failure.
 */
int log_set_file(const char *path, char *why, size_t whylen);
void log_close(void);
/*
 * @msg as one error line, from a signal handler: async-signal-safe (no lock, no stdio, no
 * allocation), so a line being written by another thread may interleave with it. For the
 * SIGSYS handler (sysfilter.c), which ends flint right after.
 */
void log_signal_error(const char *msg);
/*
 * Sets up the sink now rather than at the first line (stderr gets a description of its
 * own, opened through /proc): for seccomp, after which no thread may open a file.
 */
void log_sink_ready(void);
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/*
 * From now on the first error message (its text, escaped, whatever the level shown) is
 * also kept in @buf, emptied here; NULL stops that. For the API, which answers a failed
 * InstanceStart with the reason the log gives. Main thread only.
 */
void log_capture_first_error(char *buf, size_t len);
/*
 * Formats "<prefix>: <message>" into @buf, for errors that are logged later, once. The
 * prefix (a file name, a JSON path) is escaped with msg_escape().
 */
void msg_vformat(char *buf, size_t len, const char *prefix, const char *fmt, va_list ap)
        __attribute__((format(printf, 4, 0)));

/*
 * @s fit for a message: bytes outside printable ASCII as \xNN, backslash and double quote
 * as \\ and \", so that a name from a config or the command line can neither forge a
 * second log line nor send the terminal an escape sequence, and reads unambiguously
 * inside quotes. Cut with "..." to fit @len (at least 4). Returns @buf.
 */
const char *msg_escape(char *buf, size_t len, const char *s);
#define MSG_ESC_MAX 512
/* msg_escape() into a buffer that lives until the end of the enclosing block. */
#define MSG_ESC(s) msg_escape((char[MSG_ESC_MAX]){ 0 }, MSG_ESC_MAX, (s))

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
