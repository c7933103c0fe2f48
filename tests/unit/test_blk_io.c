/* The disk I/O engine: offsets, short reads, errors, bounds, drain and close. */
#include "devices/virtio/blk_io.h"
#include "tests/lib/util.h"
#include "vmm/base/loop.h"
#include "vmm/base/sysfilter.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#define MANY     1000
#define UNSET    INT64_MIN /* a result no completion can have */
#define DEADLINE 20000000  /* us: a loop still waiting after this has lost a completion */

/* What done() saw, per request (cookie = index). */
struct ctx {
	struct loop *loop;
	struct blk_io *io;
	int delivered;
	int stop_at; /* loop_stop once this many were delivered */
	int stale;
	int calls[MANY + 100];
	bool closed; /* done() after blk_io_close returned is a failure */
	void (*hook)(struct ctx *c, struct blk_io_req *req);
};

static void on_done(void *arg, struct blk_io_req *req)
{
	struct ctx *c = arg;
	intptr_t i = (intptr_t)req->cookie;

	assert_false(c->closed);
	assert_in_range(i, 0, MANY + 99);
	c->calls[i]++;
	c->delivered++;
	c->stale += req->stale;
	if (c->hook)
		c->hook(c, req);
	if (c->delivered == c->stop_at)
		loop_stop(c->loop, 0);
}

static void deadline(void *arg)
{
	(void)arg;
	fail_msg("blk-io: completions never arrived");
}

/* Runs the loop until @n completions in all were delivered. */
static void run_until(struct ctx *c, int n)
{
	struct loop_watch *w;

	c->stop_at = n;
	if (c->delivered >= n)
		return;
	w = loop_add_timer(c->loop, DEADLINE, false, deadline, NULL);
	assert_non_null(w);
	assert_int_equal(loop_run(c->loop), 0);
	loop_remove(w);
}

static void stop_loop(void *arg)
{
	loop_stop(arg, 0);
}

/* Lets the loop run a little, to catch a completion that should not come. */
static void settle(struct loop *l)
{
	assert_non_null(loop_add_timer(l, 20000, false, stop_loop, l));
	assert_int_equal(loop_run(l), 0);
}

static uint8_t pattern(uint64_t off)
{
	return (uint8_t)(off * 7 + (off >> 9));
}

/* A temp file of @len pattern bytes, opened with @flags. */
static int pattern_file(const char *name, size_t len, int flags)
{
	uint8_t *buf = malloc(len);
	char *path;
	int fd;

	assert_non_null(buf);
	for (size_t i = 0; i < len; i++)
		buf[i] = pattern(i);
	path = test_write_file(name, buf, len);
	free(buf);
	fd = open(path, flags | O_CLOEXEC);
	free(path);
	assert_true(fd >= 0);
	return fd;
}

static void ctx_open(struct ctx *c, int fd, unsigned nthreads)
{
	memset(c, 0, sizeof(*c));
	c->loop = loop_new();
	assert_non_null(c->loop);
	assert_int_equal(blk_io_open(&c->io, fd, c->loop, nthreads, NULL, on_done, c), 0);
}

static void ctx_close(struct ctx *c)
{
	blk_io_close(c->io);
	c->closed = true;
	loop_free(c->loop);
}

static struct blk_io_req req_of(int op, uint64_t off, struct iovec *iov, unsigned n, intptr_t i)
{
	return (struct blk_io_req){ .op = op,
		                    .offset = off,
		                    .iov = iov,
		                    .iovcnt = n,
		                    .result = UNSET,
		                    .cookie = (void *)i };
}

/* One request, submitted and completed through the loop. */
static int64_t do_req(struct ctx *c, int op, uint64_t off, struct iovec *iov, unsigned n)
{
	struct blk_io_req req = req_of(op, off, iov, n, 0);

	assert_int_equal(blk_io_submit(c->io, &req), 0);
	run_until(c, c->delivered + 1);
	assert_false(req.stale);
	return req.result;
}

static void test_offsets_multi_iovec(void **state)
{
	int fd = pattern_file("rw", 65536, O_RDWR);
	uint8_t a[3], b[5000], d[100], r1[1], r2[4095], r3[10000], back[5103];
	struct iovec w[] = { { a, sizeof(a) }, { NULL, 0 }, { b, sizeof(b) }, { d, sizeof(d) } };
	struct iovec r[] = { { r1, 1 }, { r2, sizeof(r2) }, { r3, sizeof(r3) } };
	struct ctx c;
	uint64_t off;

	(void)state;
	ctx_open(&c, fd, 2);
	memset(a, 0xa1, sizeof(a));
	memset(b, 0xb2, sizeof(b));
	memset(d, 0xd4, sizeof(d));
	assert_int_equal(do_req(&c, BLK_IO_WRITE, 4097, w, 4), 5103);
	assert_int_equal(pread(fd, back, sizeof(back), 4097), sizeof(back));
	assert_memory_equal(back, a, 3);
	assert_memory_equal(back + 3, b, 5000);
	assert_memory_equal(back + 5003, d, 100);
	/* The bytes either side are untouched. */
	assert_int_equal(pread(fd, back, 1, 4096), 1);
	assert_int_equal(back[0], pattern(4096));
	assert_int_equal(pread(fd, back, 1, 4097 + 5103), 1);
	assert_int_equal(back[0], pattern(4097 + 5103));

	assert_int_equal(do_req(&c, BLK_IO_READ, 20000, r, 3), 1 + 4095 + 10000);
	off = 20000;
	assert_int_equal(r1[0], pattern(off++));
	for (size_t i = 0; i < sizeof(r2); i++)
		assert_int_equal(r2[i], pattern(off++));
	for (size_t i = 0; i < sizeof(r3); i++)
		assert_int_equal(r3[i], pattern(off++));
	ctx_close(&c);
	close(fd);
}

static void test_read_past_eof(void **state)
{
	int fd = pattern_file("short", 10000, O_RDWR);
	uint8_t x[500], y[8192];
	struct iovec one[] = { { y, 8192 } };
	struct iovec two[] = { { x, sizeof(x) }, { y, 4000 } };
	struct ctx c;

	(void)state;
	ctx_open(&c, fd, 1);
	assert_int_equal(do_req(&c, BLK_IO_READ, 8192, one, 1), 10000 - 8192);
	assert_int_equal(y[0], pattern(8192));
	assert_int_equal(do_req(&c, BLK_IO_READ, 20000, one, 1), 0);
	/* Short inside the second buffer: the first is whole, the second partly filled. */
	assert_int_equal(do_req(&c, BLK_IO_READ, 9000, two, 2), 1000);
	assert_int_equal(x[499], pattern(9499));
	assert_int_equal(y[499], pattern(9999));
	/* No buffers at all is a read of nothing. */
	assert_int_equal(do_req(&c, BLK_IO_READ, 0, NULL, 0), 0);
	ctx_close(&c);
	close(fd);
}

static void test_flush(void **state)
{
	int fd = pattern_file("flush", 4096, O_RDWR);
	uint8_t buf[4096] = { 1 };
	struct iovec iov = { buf, sizeof(buf) };
	struct ctx c;

	(void)state;
	ctx_open(&c, fd, 1);
	assert_int_equal(do_req(&c, BLK_IO_WRITE, 4096, &iov, 1), 4096);
	assert_int_equal(do_req(&c, BLK_IO_FLUSH, 0, NULL, 0), 0);
	ctx_close(&c);
	close(fd);
}

static void test_write_readonly_ebadf(void **state)
{
	int fd = pattern_file("ro", 4096, O_RDONLY);
	uint8_t buf[512] = { 0 };
	struct iovec iov = { buf, sizeof(buf) };
	struct ctx c;

	(void)state;
	ctx_open(&c, fd, 1);
	assert_int_equal(do_req(&c, BLK_IO_WRITE, 0, &iov, 1), -EBADF);
	/* The engine goes on after an error. */
	assert_int_equal(do_req(&c, BLK_IO_READ, 0, &iov, 1), 512);
	ctx_close(&c);
	close(fd);
}

/* MANY 512-byte reads, each of its own sector, all in flight at once. */
struct many {
	struct blk_io_req req[MANY];
	struct iovec iov[MANY];
	uint8_t buf[MANY][512];
};

static struct many *many_submit(struct ctx *c)
{
	struct many *m = calloc(1, sizeof(*m));

	assert_non_null(m);
	for (intptr_t i = 0; i < MANY; i++) {
		m->iov[i] = (struct iovec){ m->buf[i], 512 };
		m->req[i] = req_of(BLK_IO_READ, (uint64_t)i * 512, &m->iov[i], 1, i);
		assert_int_equal(blk_io_submit(c->io, &m->req[i]), 0);
	}
	return m;
}

static void many_check(const struct ctx *c, const struct many *m)
{
	for (int i = 0; i < MANY; i++) {
		assert_int_equal(c->calls[i], 1);
		assert_int_equal(m->req[i].result, 512);
		assert_int_equal(m->buf[i][0], pattern((uint64_t)i * 512));
		assert_int_equal(m->buf[i][511], pattern((uint64_t)i * 512 + 511));
	}
}

static void test_many_in_flight(void **state)
{
	int fd = pattern_file("many", MANY * 512, O_RDWR);
	struct many *m;
	struct ctx c;

	(void)state;
	ctx_open(&c, fd, 4);
	m = many_submit(&c);
	run_until(&c, MANY);
	settle(c.loop);
	assert_int_equal(c.delivered, MANY);
	assert_int_equal(c.stale, 0);
	many_check(&c, m);
	ctx_close(&c);
	free(m);
	close(fd);
}

static void test_queue_full_and_bad_requests(void **state)
{
	int fd = pattern_file("full", 4096, O_RDWR);
	struct blk_io_req *reqs = calloc(BLK_IO_QUEUE_MAX + 1, sizeof(*reqs));
	struct blk_io_req bad;
	struct blk_io *io;
	struct ctx c;

	(void)state;
	assert_non_null(reqs);
	ctx_open(&c, fd, 2);
	/* The loop does not run, so none is given back: the bound is reached for sure. */
	for (intptr_t i = 0; i <= BLK_IO_QUEUE_MAX; i++)
		reqs[i] = req_of(BLK_IO_FLUSH, 0, NULL, 0, i % MANY);
	for (int i = 0; i < BLK_IO_QUEUE_MAX; i++)
		assert_int_equal(blk_io_submit(c.io, &reqs[i]), 0);
	assert_int_equal(blk_io_submit(c.io, &reqs[BLK_IO_QUEUE_MAX]), -EAGAIN);
	run_until(&c, BLK_IO_QUEUE_MAX);
	/* Room again once done() ran. */
	assert_int_equal(blk_io_submit(c.io, &reqs[BLK_IO_QUEUE_MAX]), 0);
	run_until(&c, BLK_IO_QUEUE_MAX + 1);
	assert_int_equal(reqs[BLK_IO_QUEUE_MAX].result, 0);

	bad = req_of(7, 0, NULL, 0, 0);
	assert_int_equal(blk_io_submit(c.io, &bad), -EINVAL);
	bad = req_of(BLK_IO_READ, 0, NULL, IOV_MAX + 1, 0);
	assert_int_equal(blk_io_submit(c.io, &bad), -EINVAL);
	bad = req_of(BLK_IO_READ, 0, NULL, 1, 0);
	assert_int_equal(blk_io_submit(c.io, &bad), -EINVAL);
	settle(c.loop);
	assert_int_equal(c.delivered, BLK_IO_QUEUE_MAX + 1);

	assert_int_equal(blk_io_open(&io, fd, c.loop, 0, NULL, on_done, NULL), -EINVAL);
	assert_int_equal(blk_io_open(&io, fd, c.loop, BLK_IO_THREADS_MAX + 1, NULL, on_done, NULL),
	                 -EINVAL);
	ctx_close(&c);
	free(reqs);
	close(fd);
}

/* ---- drain ---- */

#define BIG_N   128
#define BIG_LEN (128 * 1024)

/* BIG_N reads of BIG_LEN, enough work that a drain finds workers busy. */
struct big {
	struct blk_io_req req[BIG_N];
	struct iovec iov[BIG_N];
	uint8_t *buf;
};

static struct big *big_submit(struct ctx *c)
{
	struct big *b = calloc(1, sizeof(*b));

	assert_non_null(b);
	b->buf = malloc((size_t)BIG_N * BIG_LEN);
	assert_non_null(b->buf);
	for (intptr_t i = 0; i < BIG_N; i++) {
		b->iov[i] = (struct iovec){ b->buf + i * BIG_LEN, BIG_LEN };
		b->req[i] = req_of(BLK_IO_READ, (uint64_t)(i % 16) * BIG_LEN, &b->iov[i], 1, i);
		assert_int_equal(blk_io_submit(c->io, &b->req[i]), 0);
	}
	return b;
}

static void big_free(struct big *b)
{
	free(b->buf);
	free(b);
}

static bool all_results_in(const struct big *b)
{
	for (int i = 0; i < BIG_N; i++)
		if (b->req[i].result != BIG_LEN)
			return false;
	return true;
}

struct drainer {
	struct ctx *c;
	struct big *b;
	atomic_bool results_in;
	atomic_bool finished;
};

static void stop_if_all(struct ctx *c)
{
	if (c->delivered == BIG_N)
		loop_stop(c->loop, 0);
}

static void drainer_done(void *arg)
{
	struct drainer *d = arg;

	stop_if_all(d->c);
}

/* A vCPU thread resetting the device while the loop delivers completions. */
static void *drain_thread(void *arg)
{
	struct drainer *d = arg;

	blk_io_drain(d->c->io);
	atomic_store(&d->results_in, all_results_in(d->b));
	/* The buffers are the caller's again: a worker writing them now would undo this. */
	memset(d->b->buf, 0xee, (size_t)BIG_N * BIG_LEN);
	atomic_store(&d->finished, true);
	assert_int_equal(loop_post(d->c->loop, drainer_done, d), 0);
	return NULL;
}

static struct drainer *cur_drainer;

/* The loop stops once everything was delivered and the drainer is through, in either order. */
static void hook_stop_if_drained(struct ctx *c, struct blk_io_req *req)
{
	(void)req;
	if (atomic_load(&cur_drainer->finished))
		stop_if_all(c);
}

static void test_drain_other_thread(void **state)
{
	int fd = pattern_file("drain", 16 * BIG_LEN, O_RDWR);
	struct drainer d = { 0 };
	struct ctx c;
	pthread_t t;

	(void)state;
	ctx_open(&c, fd, 2);
	c.hook = hook_stop_if_drained;
	cur_drainer = &d;
	d.c = &c;
	d.b = big_submit(&c);
	assert_int_equal(pthread_create(&t, NULL, drain_thread, &d), 0);
	c.stop_at = INT_MAX;
	assert_non_null(loop_add_timer(c.loop, DEADLINE, false, deadline, NULL));
	assert_int_equal(loop_run(c.loop), 0);
	pthread_join(t, NULL);
	assert_true(atomic_load(&d.results_in));
	for (int i = 0; i < BIG_N; i++)
		assert_int_equal(c.calls[i], 1);
	for (size_t i = 0; i < (size_t)BIG_N * BIG_LEN; i += 4093)
		assert_int_equal(d.b->buf[i], 0xee);
	ctx_close(&c);
	big_free(d.b);
	close(fd);
}

/* Drains from inside done(), on the loop thread: the rest must come stale, once each. */
static struct big *cur_big;
static bool drained_in_done;

static void hook_drain(struct ctx *c, struct blk_io_req *req)
{
	(void)req;
	if (drained_in_done)
		return;
	drained_in_done = true;
	blk_io_drain(c->io);
	assert_true(all_results_in(cur_big));
}

static void test_drain_loop_thread(void **state)
{
	int fd = pattern_file("drainloop", 16 * BIG_LEN, O_RDWR);
	struct ctx c;

	(void)state;
	ctx_open(&c, fd, 3);
	c.hook = hook_drain;
	drained_in_done = false;
	cur_big = big_submit(&c);
	run_until(&c, BIG_N);
	assert_true(drained_in_done);
	/* Everything but the first was finished and not yet delivered when drain returned. */
	assert_int_equal(c.stale, BIG_N - 1);
	for (int i = 0; i < BIG_N; i++)
		assert_int_equal(c.calls[i], 1);
	big_free(cur_big);

	/* On the loop thread while the loop is not running: all come later, stale. */
	c.hook = NULL;
	memset(c.calls, 0, sizeof(c.calls));
	c.delivered = c.stale = 0;
	cur_big = big_submit(&c);
	blk_io_drain(c.io);
	assert_true(all_results_in(cur_big));
	run_until(&c, BIG_N);
	settle(c.loop);
	assert_int_equal(c.delivered, BIG_N);
	assert_int_equal(c.stale, BIG_N);
	ctx_close(&c);
	big_free(cur_big);
	close(fd);
}

/* ---- close ---- */

static void test_close_in_flight(void **state)
{
	int fd = pattern_file("close", 16 * BIG_LEN, O_RDWR);
	struct ctx c;
	struct big *b;

	(void)state;
	ctx_open(&c, fd, 4);
	b = big_submit(&c);
	blk_io_close(c.io);
	/* Every request was given back, inside close, marked stale. */
	assert_int_equal(c.delivered, BIG_N);
	assert_int_equal(c.stale, BIG_N);
	assert_true(all_results_in(b));
	c.closed = true; /* on_done fails from here on */
	big_free(b);
	settle(c.loop);
	loop_free(c.loop);
	close(fd);
}

/* ---- signals ---- */

/* SigBlk of each thread named blk-io; returns how many there are. */
static int worker_masks(unsigned long long *masks, int max)
{
	DIR *dir = opendir("/proc/self/task");
	struct dirent *e;
	int n = 0;

	assert_non_null(dir);
	while ((e = readdir(dir))) {
		char path[300], line[256];
		FILE *f;
		bool ours = false;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/status", e->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		while (fgets(line, sizeof(line), f)) {
			if (!strcmp(line, "Name:\tblk-io\n"))
				ours = true;
			if (ours && n < max && sscanf(line, "SigBlk: %llx", &masks[n]) == 1)
				n++;
		}
		fclose(f);
	}
	closedir(dir);
	return n;
}

static void test_workers_block_signals(void **state)
{
	int fd = pattern_file("sig", 4096, O_RDWR);
	unsigned long long masks[8];
	const int signos[] = { SIGINT, SIGTERM, SIGUSR1, SIGHUP };
	struct ctx c;

	(void)state;
	ctx_open(&c, fd, 3);
	assert_int_equal(worker_masks(masks, 8), 3);
	for (int i = 0; i < 3; i++)
		for (size_t s = 0; s < sizeof(signos) / sizeof(signos[0]); s++)
			assert_true(masks[i] & (1ULL << (signos[s] - 1)));
	ctx_close(&c);
	/* The opener's own mask is as it was. */
	sigset_t now;
	pthread_sigmask(SIG_SETMASK, NULL, &now);
	assert_false(sigismember(&now, SIGINT));
	close(fd);
}

/* A new fd only while nothing is outstanding; the requests after it read the new file. */
static void test_set_fd(void **state)
{
	int a = pattern_file("set-fd-a", 4096, O_RDWR), b = open("/dev/zero", O_RDONLY | O_CLOEXEC);
	uint8_t buf[512];
	struct iovec iov[] = { { buf, sizeof(buf) } };
	struct blk_io_req req = req_of(BLK_IO_READ, 512, iov, 1, 0);
	struct ctx c;

	(void)state;
	assert_true(b >= 0);
	ctx_open(&c, a, 2);
	assert_int_equal(blk_io_set_fd(c.io, -1), -EINVAL);
	assert_int_equal(blk_io_submit(c.io, &req), 0);
	assert_int_equal(blk_io_set_fd(c.io, b), -EBUSY); /* done() has not run */
	run_until(&c, 1);
	assert_int_equal(req.result, sizeof(buf));
	assert_int_equal(buf[0], pattern(512));
	assert_int_equal(blk_io_set_fd(c.io, b), 0);
	assert_int_equal(do_req(&c, BLK_IO_READ, 512, iov, 1), sizeof(buf));
	assert_int_equal(buf[0], 0);
	ctx_close(&c);
	close(a);
	close(b);
}

/*
 * A worker that cannot install its seccomp filter takes no request: flint ends with 70 and
 * says why (seen here with an empty program, which the kernel refuses), in a child so that
 * this process keeps running.
 */
static void test_filter_refused_exits(void **state)
{
	const struct sysfilter bad = { .kind = "I/O", .prog = { 0, NULL } };
	int err[2], status = 0;
	char buf[512] = "";
	ssize_t n;
	pid_t pid;

	(void)state;
	assert_int_equal(pipe(err), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct loop *loop = loop_new();
		struct blk_io *io;
		char *img = test_write_file("refused.img", "x", 1);
		int fd = open(img, O_RDONLY);

		dup2(err[1], STDERR_FILENO);
		if (!loop || fd < 0 || blk_io_open(&io, fd, loop, 1, &bad, on_done, NULL))
			_exit(1);
		sleep(5); /* the worker ends the process long before */
		_exit(0);
	}
	close(err[1]);
	n = read(err[0], buf, sizeof(buf) - 1);
	close(err[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 70);
	assert_true(n > 0);
	assert_non_null(strstr(buf, "blk-io: cannot install the I/O thread's seccomp filter: "));
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_offsets_multi_iovec),
		cmocka_unit_test(test_read_past_eof),
		cmocka_unit_test(test_flush),
		cmocka_unit_test(test_write_readonly_ebadf),
		cmocka_unit_test(test_many_in_flight),
		cmocka_unit_test(test_queue_full_and_bad_requests),
		cmocka_unit_test(test_drain_other_thread),
		cmocka_unit_test(test_drain_loop_thread),
		cmocka_unit_test(test_close_in_flight),
		cmocka_unit_test(test_workers_block_signals),
		cmocka_unit_test(test_set_fd),
		cmocka_unit_test(test_filter_refused_exits),
	};
	return TEST_MAIN(tests, NULL, test_group_teardown);
}
