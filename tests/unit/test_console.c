/*
 * The console's output side: a reader that stops reading never blocks the guest, what
 * is read arrives in order, and flint's stdout description is never left non-blocking.
 */
#include "tests/lib/util.h"
#include "vmm/console.h"
#include "vmm/base/loop.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

struct fixture {
	struct loop *loop;
	struct console con;
	int rd, wr; /* the pipe standing for stdout */
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	int p[2];

	signal(SIGPIPE, SIG_IGN); /* as flint does: a gone reader is an error, not a death */
	assert_int_equal(pipe(p), 0);
	f->rd = p[0];
	f->wr = p[1];
	f->loop = loop_new();
	assert_non_null(f->loop);
	assert_int_equal(console_init(&f->con, f->loop, f->wr, -1, NULL), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	console_destroy(&f->con);
	loop_free(f->loop);
	if (f->rd >= 0)
		close(f->rd);
	close(f->wr);
	free(f);
	return 0;
}

static void stop(void *arg)
{
	loop_stop(arg, 0);
}

/* Runs the loop for @ms: posted drains and write watches do their work. */
static void spin_loop(struct fixture *f, unsigned ms)
{
	assert_non_null(loop_add_timer(f->loop, ms * 1000ULL, false, stop, f->loop));
	assert_int_equal(loop_run(f->loop), 0);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Bytes come out in order and complete when the reader keeps up. */
static void test_output_in_order(void **state)
{
	struct fixture *f = *state;
	static uint8_t got[20000];
	size_t n = 0;

	for (unsigned i = 0; i < sizeof(got); i++)
		console_put(&f->con, (uint8_t)(i * 7));
	spin_loop(f, 20);
	assert_int_equal(fcntl(f->rd, F_SETFL, O_NONBLOCK), 0);
	for (ssize_t r; (r = read(f->rd, got + n, sizeof(got) - n)) > 0;)
		n += (size_t)r;
	assert_int_equal(n, sizeof(got));
	for (unsigned i = 0; i < sizeof(got); i++)
		assert_int_equal(got[i], (uint8_t)(i * 7));
	assert_int_equal(console_dropped(&f->con, 0), 0);
}

/*
 * Nobody reads: 4 MiB of guest output neither blocks the "vCPU" nor the loop, the excess
 * is dropped and counted, and the flush at the end gives up after its time.
 */
static void test_unread_console_never_blocks(void **state)
{
	struct fixture *f = *state;
	const size_t total = 4 << 20;
	double t0 = now_s();

	for (size_t i = 0; i < total; i++) {
		console_put(&f->con, 'x');
		if (i % (256 << 10) == 0)
			spin_loop(f, 1);
	}
	spin_loop(f, 10);
	assert_true(now_s() - t0 < 10); /* blocking would hang here for good */
	/* What is not in the pipe or the buffer was dropped, and nothing else. */
	assert_true(console_dropped(&f->con, 0) >= total - CONSOLE_BUF_BYTES - (1 << 20));
	t0 = now_s();
	console_flush(&f->con, 200);
	assert_true(now_s() - t0 < 2);
	/* The flush counts what it could not write. */
	assert_true(console_dropped(&f->con, 0) >= total - (1 << 20));
}

/* The write end's own description (shared with a shell) never becomes non-blocking. */
static void test_stdout_description_stays_blocking(void **state)
{
	struct fixture *f = *state;

	assert_false(fcntl(f->wr, F_GETFL) & O_NONBLOCK);
	console_put(&f->con, 'a');
	spin_loop(f, 5);
	assert_false(fcntl(f->wr, F_GETFL) & O_NONBLOCK);
}

/* The reader goes away: the sink ends with a warning, flint goes on. */
static void test_reader_gone(void **state)
{
	struct fixture *f = *state;

	close(f->rd);
	f->rd = -1;
	for (int i = 0; i < 1000; i++)
		console_put(&f->con, 'y');
	spin_loop(f, 5);
	assert_int_equal(console_dropped(&f->con, 0), 1000);
	console_put(&f->con, 'z'); /* the sink is closed: nothing, not even a count */
	assert_int_equal(console_dropped(&f->con, 0), 1000);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_output_in_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unread_console_never_blocks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stdout_description_stays_blocking, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_reader_gone, setup, teardown),
	};
	return TEST_MAIN(tests, NULL, NULL);
}
