/*
 * The host's terminal on the guest's side: flint's stdin fed into the UART's receive FIFO,
 * and a tty put in raw mode while the VM runs (restored on every way out, exit() included).
 *
 * Threads: term_watch() on the loop thread (the UART's hook, called from any thread under no
 * lock when its receive FIFO has room again, posts it there: serial.h); term_raw() on the
 * main thread, term_restore() on the main thread and from atexit() on whichever thread exits.
 */
#ifndef FLINT_TERM_H
#define FLINT_TERM_H

#include "vmm/base/loop.h"

struct serial;

struct term {
	struct loop *loop;
	struct serial *serial;
	struct loop_watch *watch; /* stdin, while the UART takes input */
	struct loop_post post;    /* term_watch() from the hook, without allocating */
};

/* Also sets @serial's on_rx_space hook: stdin is watched again when the FIFO has room. */
void term_init(struct term *t, struct loop *loop, struct serial *serial);
/* Raw input, so that the guest sees keystrokes as typed; Ctrl-C still stops flint. */
void term_raw(void);
void term_restore(void);
/* Starts reading stdin into the UART, if stdin can be polled (a tty, pipe or socket). */
void term_watch(void *term);

#endif
