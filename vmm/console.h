/*
 * The guest console on the host side. What the UART sends goes to stdout and/or the
 * --serial-log file through bounded buffers that the loop drains with non-blocking
 * writes: a reader that stops reading can never block a vCPU, nor keep flint from
 * stopping. What does not fit is dropped, counted and said once.
 *
 * Threads: console_put() from any thread (vCPU threads call it under the UART's lock);
 * everything else on the loop thread.
 */
#ifndef FLINT_CONSOLE_H
#define FLINT_CONSOLE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/base/loop.h"

#define CONSOLE_BUF_BYTES (64 * 1024) /* per sink: a few screens of boot log */

struct console_sink {
	int fd;             /* -1: unused or failed */
	int fd_flags;       /* the original file status flags when we set O_NONBLOCK on it */
	bool owned;         /* close fd at the end (reopened, or the serial log) */
	bool restore_flags; /* O_NONBLOCK was set on a shared description: undo at the end */
	bool sock;          /* send(MSG_DONTWAIT) instead of write() */
	const char *name;   /* for messages: "stdout", or the --serial-log path */
	uint8_t *buf;
	size_t head, len;
	uint64_t dropped, dropped_said;
	struct loop_watch *wait; /* while the fd is full: wait until it takes more */
};

struct console {
	pthread_mutex_t lock;
	struct console_sink sinks[2];
	struct loop *loop;
	struct loop_post post; /* the drain: queued once however many console_put()s, no malloc */
};

/*
 * @out_fd (stdout or -1) and @log_fd (the serial log or -1, closed by console_destroy)
 * become the sinks; @log_name names the log in messages. Returns -errno.
 */
int console_init(struct console *c, struct loop *loop, int out_fd, int log_fd,
                 const char *log_name);
/* Queues one byte of guest output for every sink. Never blocks on I/O. Any thread. */
void console_put(struct console *c, uint8_t byte);
/* Writes out what is buffered, waiting at most @ms for slow readers; says what was lost. */
void console_flush(struct console *c, int ms);
void console_destroy(struct console *c);
/* Bytes dropped so far on sink @i (0 stdout, 1 serial log): for tests and metrics. */
uint64_t console_dropped(struct console *c, unsigned i);

#endif
