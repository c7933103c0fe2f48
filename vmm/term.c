/* flint's stdin into the guest's UART, and the tty's mode while it does (term.h). */
#include "vmm/term.h"
#include "devices/legacy/serial.h"
#include "vmm/base/loop.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

/* The terminal is restored on every way out, including exit() from anywhere. */
static struct termios saved_tty;
static bool tty_raw;

void term_restore(void)
{
	if (tty_raw)
		tcsetattr(STDIN_FILENO, TCSANOW, &saved_tty);
	tty_raw = false;
}

/* ISIG stays, so that Ctrl-C still stops flint. */
void term_raw(void)
{
	struct termios t;

	if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &saved_tty) < 0)
		return;
	t = saved_tty;
	t.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
	t.c_iflag &= ~(tcflag_t)(ICRNL | IXON);
	if (tcsetattr(STDIN_FILENO, TCSANOW, &t) == 0) {
		tty_raw = true;
		atexit(term_restore);
	}
}

/* Only something pollable can feed the console: a tty, a pipe or a socket. */
static bool stdin_pollable(void)
{
	struct stat st;

	return fstat(STDIN_FILENO, &st) == 0 &&
	       (S_ISCHR(st.st_mode) ? isatty(STDIN_FILENO)
	                            : S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode));
}

static void on_stdin(int fd, int events, void *arg)
{
	struct term *t = arg;
	uint8_t buf[SERIAL_RX_CAP];
	size_t space = serial_rx_space(t->serial);
	ssize_t n = 0;

	(void)events;
	if (space)
		n = read(fd, buf, space);
	if (n > 0) {
		serial_input(t->serial, buf, (size_t)n);
		return;
	}
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	/* EOF, error, or the guest is not reading: stop watching until it drains. */
	loop_remove(t->watch);
	t->watch = NULL;
}

void term_watch(void *term)
{
	struct term *t = term;

	if (!t->watch && !loop_stopping(t->loop) && stdin_pollable())
		t->watch = loop_add_fd(t->loop, STDIN_FILENO, LOOP_READ, on_stdin, t);
}

static void on_room(void *term)
{
	term_watch(term);
}

/* The UART's on_rx_space hook (any thread, serial.h): watch stdin again, from the loop. */
static void has_room(void *term)
{
	struct term *t = term;

	loop_post_node(t->loop, &t->post); /* queued even when the wake-up failed */
}

void term_init(struct term *t, struct loop *loop, struct serial *serial)
{
	*t = (struct term){ .loop = loop, .serial = serial };
	loop_post_init(&t->post, on_room, t);
	serial->on_rx_space = has_room;
	serial->rx_arg = t;
}
