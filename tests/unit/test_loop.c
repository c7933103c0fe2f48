/* The event loop: fd, timer, cross-thread post, signals. */
#include "tests/lib/util.h"
#include "vmm/base/loop.h"

#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <cmocka.h>

struct counter {
	struct loop *loop;
	int hits;
	int stop_at;
	struct loop_watch *watch;
};

static void on_read(int fd, int events, void *arg)
{
	struct counter *c = arg;
	uint64_t v;

	assert_true(events & LOOP_READ);
	assert_int_equal(read(fd, &v, sizeof(v)), sizeof(v));
	c->hits += (int)v;
	if (c->hits >= c->stop_at)
		loop_stop(c->loop, 7);
}

static void test_fd_watch(void **state)
{
	struct counter c = {.loop = loop_new(), .stop_at = 3};
	int efd = eventfd(0, EFD_NONBLOCK);
	uint64_t three = 3;

	(void)state;
	assert_non_null(c.loop);
	assert_non_null(loop_add_fd(c.loop, efd, LOOP_READ, on_read, &c));
	assert_int_equal(write(efd, &three, 8), 8);
	assert_int_equal(loop_run(c.loop), 7);
	assert_int_equal(c.hits, 3);
	loop_free(c.loop);
	close(efd);
}

static void on_tick(void *arg)
{
	struct counter *c = arg;

	if (++c->hits == c->stop_at)
		loop_stop(c->loop, 0);
}

static void test_timers(void **state)
{
	struct counter once = {.stop_at = 100}, rep = {.stop_at = 5};
	struct loop *l = loop_new();

	(void)state;
	once.loop = rep.loop = l;
	/* A one-shot fires once even though the loop keeps running for the repeating one. */
	assert_non_null(loop_add_timer(l, 1000, false, on_tick, &once));
	assert_non_null(loop_add_timer(l, 2000, true, on_tick, &rep));
	assert_int_equal(loop_run(l), 0);
	assert_int_equal(once.hits, 1);
	assert_int_equal(rep.hits, 5);
	loop_free(l); /* frees the still-armed repeating timer */
}

static void on_remove_self(int fd, int events, void *arg)
{
	struct counter *c = arg;
	uint64_t v;

	(void)events;
	assert_int_equal(read(fd, &v, 8), 8);
	c->hits++;
	loop_remove(c->watch);
	loop_stop(c->loop, 1);
}

static void test_remove_inside_callback(void **state)
{
	struct counter c = {.loop = loop_new()};
	int efd = eventfd(0, EFD_NONBLOCK);
	uint64_t one = 1;

	(void)state;
	c.watch = loop_add_fd(c.loop, efd, LOOP_READ, on_remove_self, &c);
	assert_int_equal(write(efd, &one, 8), 8);
	assert_int_equal(loop_run(c.loop), 1);
	assert_int_equal(c.hits, 1);
	loop_free(c.loop);
	close(efd);
}

struct poster {
	struct loop *loop;
	int n;
	int seen;
	pthread_t self;
	pthread_t loop_thread;
	int wrong_thread;
};

static void on_post(void *arg)
{
	struct poster *p = arg;

	if (!pthread_equal(pthread_self(), p->loop_thread))
		p->wrong_thread++;
	if (++p->seen == p->n)
		loop_stop(p->loop, 0);
}

static void *post_thread(void *arg)
{
	struct poster *p = arg;

	for (int i = 0; i < p->n; i++)
		assert_int_equal(loop_post(p->loop, on_post, p), 0);
	return NULL;
}

static void test_cross_thread_post(void **state)
{
	struct poster p = {.loop = loop_new(), .n = 10000, .loop_thread = pthread_self()};

	(void)state;
	assert_int_equal(pthread_create(&p.self, NULL, post_thread, &p), 0);
	assert_int_equal(loop_run(p.loop), 0);
	pthread_join(p.self, NULL);
	assert_int_equal(p.seen, p.n);
	assert_int_equal(p.wrong_thread, 0);
	loop_free(p.loop);
}

struct owned {
	struct loop *loop;
	struct loop_post node;
	int runs;
};

/* Posts its own node again from inside its run: allowed once fn has begun. */
static void on_owned(void *arg)
{
	struct owned *o = arg;

	if (++o->runs < 3)
		assert_int_equal(loop_post_node(o->loop, &o->node), 0);
}

/*
 * A node the poster owns runs like a loop_post(), can be posted again from its own run,
 * and is never freed by the loop: not after its run, not by loop_free() while still queued
 * (under ASan a free() of this stack node would abort the test).
 */
static void test_owned_post(void **state)
{
	struct owned o = { .loop = loop_new() };

	(void)state;
	assert_non_null(o.loop);
	loop_post_init(&o.node, on_owned, &o);
	assert_int_equal(loop_post_node(o.loop, &o.node), 0);
	for (int i = 0; i < 10 && o.runs < 3; i++)
		assert_int_equal(loop_run_once(o.loop, 100000), 0);
	assert_int_equal(o.runs, 3);
	assert_int_equal(loop_run_once(o.loop, 0), 0);
	assert_int_equal(o.runs, 3); /* the third run did not post again */
	assert_int_equal(loop_post_node(o.loop, &o.node), 0);
	assert_int_equal(loop_post(o.loop, on_owned, &o), 0); /* a heap node beside it */
	loop_free(o.loop);
	assert_int_equal(o.runs, 3); /* freed, not run */
	o.loop = loop_new(); /* the node left queued on the freed loop posts on another */
	assert_non_null(o.loop);
	assert_int_equal(loop_post_node(o.loop, &o.node), 0);
	assert_int_equal(loop_run_once(o.loop, 100000), 0);
	assert_int_equal(o.runs, 4);
	loop_free(o.loop);
}

static void count_run(void *arg)
{
	(*(int *)arg)++;
}

/* A cancelled node does not run, the others do, and the queue's tail stays right. */
static void test_post_cancel(void **state)
{
	struct loop *l = loop_new();
	int a = 0, b = 0, c = 0, d = 0;
	struct loop_post na, nb, nc;

	(void)state;
	assert_non_null(l);
	loop_post_init(&na, count_run, &a);
	loop_post_init(&nb, count_run, &b);
	loop_post_init(&nc, count_run, &c);
	assert_int_equal(loop_post_node(l, &na), 0);
	assert_int_equal(loop_post_node(l, &nb), 0);
	loop_post_cancel(l, &nb); /* the tail */
	assert_int_equal(loop_post_node(l, &nc), 0);
	assert_int_equal(loop_post(l, count_run, &d), 0);
	loop_post_cancel(l, &na); /* the head */
	loop_post_cancel(l, &na); /* not queued: nothing */
	assert_int_equal(loop_run_once(l, 100000), 0);
	assert_int_equal(a, 0);
	assert_int_equal(b, 0);
	assert_int_equal(c, 1);
	assert_int_equal(d, 1);
	assert_int_equal(loop_post_node(l, &nb), 0); /* cancelled: queued anew; an empty tail */
	assert_int_equal(loop_run_once(l, 100000), 0);
	assert_int_equal(b, 1);
	loop_free(l);
}

struct canceller {
	struct loop *loop;
	struct loop_post *victim;
};

static void cancel_other(void *arg)
{
	struct canceller *c = arg;

	loop_post_cancel(c->loop, c->victim);
}

/* A run cancels a node queued behind it in the same wake-up: that one does not run. */
static void test_post_cancel_while_draining(void **state)
{
	struct loop *l = loop_new();
	int b = 0, c = 0;
	struct loop_post na, nb, nc;
	struct canceller k = { .loop = l, .victim = &nb };

	(void)state;
	assert_non_null(l);
	loop_post_init(&na, cancel_other, &k);
	loop_post_init(&nb, count_run, &b);
	loop_post_init(&nc, count_run, &c);
	assert_int_equal(loop_post_node(l, &na), 0);
	assert_int_equal(loop_post_node(l, &nb), 0);
	assert_int_equal(loop_post_node(l, &nc), 0);
	assert_int_equal(loop_run_once(l, 100000), 0);
	assert_int_equal(b, 0);
	assert_int_equal(c, 1);
	assert_int_equal(loop_post_node(l, &nb), 0); /* cancelled from the drain: queued anew */
	assert_int_equal(loop_run_once(l, 100000), 0);
	assert_int_equal(b, 1);
	loop_free(l);
}

struct seq_poster {
	struct loop *loop;
	struct loop_post node;
	atomic_int seq;
	atomic_bool done;
	int seen, runs;
};

enum { SEQ_POSTS = 20000 };

static void on_seq(void *arg)
{
	struct seq_poster *p = arg;

	p->seen = atomic_load(&p->seq);
	p->runs++;
}

static void *seq_thread(void *arg)
{
	struct seq_poster *p = arg;

	for (int i = 1; i <= SEQ_POSTS; i++) {
		atomic_store(&p->seq, i);
		assert_int_equal(loop_post_node(p->loop, &p->node), 0);
	}
	atomic_store(&p->done, true);
	return NULL;
}

/*
 * Another thread posts one node on every event while the loop drains it: the posts
 * coalesce, and none is lost: a run follows the last one (the console's bytes, the
 * UART's room).
 */
static void test_post_coalesced_threads(void **state)
{
	struct seq_poster p = { .loop = loop_new() };
	pthread_t t;

	(void)state;
	assert_non_null(p.loop);
	loop_post_init(&p.node, on_seq, &p);
	assert_int_equal(pthread_create(&t, NULL, seq_thread, &p), 0);
	while (!atomic_load(&p.done))
		assert_int_equal(loop_run_once(p.loop, 1000), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	for (int i = 0; i < 3 && p.seen < SEQ_POSTS; i++)
		assert_int_equal(loop_run_once(p.loop, 100000), 0);
	assert_int_equal(p.seen, SEQ_POSTS);
	assert_true(p.runs <= SEQ_POSTS);
	loop_free(p.loop);
}

/* loop_post_init() makes a node the owner's and unqueued, whatever its memory held. */
static void test_post_node_garbage(void **state)
{
	struct loop *l = loop_new();
	struct loop_post *n = malloc(sizeof(*n));
	int a = 0;

	(void)state;
	assert_non_null(l);
	assert_non_null(n);
	memset(n, 0x01, sizeof(*n)); /* heap and queued read true */
	loop_post_init(n, count_run, &a);
	assert_int_equal(loop_post_node(l, n), 0); /* queued: not taken for queued already */
	assert_int_equal(loop_run_once(l, 100000), 0);
	assert_int_equal(a, 1);
	assert_int_equal(loop_post_node(l, n), 0);
	loop_free(l);
	assert_int_equal(a, 1);
	free(n); /* a double free under ASan had loop_free() taken it for the loop's */
}

/*
 * Posting a node that is queued already does not queue it twice (a list through one node
 * twice would loop): it runs once for all of them, and can be queued again once it runs.
 */
static void count_twice(void *arg)
{
	if (++*(int *)arg > 2)
		fail_msg("ran %d times: a node queued twice loops the queue", *(int *)arg);
}

static void test_post_coalesced(void **state)
{
	struct loop *l = loop_new();
	struct loop_post n;
	int a = 0;

	(void)state;
	assert_non_null(l);
	loop_post_init(&n, count_twice, &a);
	for (int i = 0; i < 3; i++)
		assert_int_equal(loop_post_node(l, &n), 0);
	assert_int_equal(loop_run_once(l, 100000), 0);
	assert_int_equal(a, 1);
	assert_int_equal(loop_run_once(l, 0), 0);
	assert_int_equal(a, 1); /* nothing left queued */
	assert_int_equal(loop_post_node(l, &n), 0);
	assert_int_equal(loop_run_once(l, 100000), 0);
	assert_int_equal(a, 2);
	loop_free(l);
}

static int signal_hook_calls, signal_hook_signo;

/* The owner decides what a signal does: here, stop with a code of its own. */
static void on_signal(void *arg, int signo)
{
	signal_hook_calls++;
	signal_hook_signo = signo;
	loop_stop(arg, 7);
}

static void raise_term(void *arg)
{
	(void)arg;
	raise(SIGTERM);
}

static void test_signal_stops_loop(void **state)
{
	struct loop *l = loop_new();

	(void)state;
	assert_int_equal(loop_handle_signals(l, on_signal, l), 0);
	assert_non_null(loop_add_timer(l, 1000, false, raise_term, NULL));
	assert_int_equal(loop_run(l), 7);
	assert_int_equal(signal_hook_calls, 1);
	assert_int_equal(signal_hook_signo, SIGTERM);
	loop_free(l);
	/* Without a hook a signal ends the loop with 128 + signo, as a shell reports it. */
	l = loop_new();
	assert_int_equal(loop_handle_signals(l, NULL, NULL), 0);
	assert_non_null(loop_add_timer(l, 1000, false, raise_term, NULL));
	assert_int_equal(loop_run(l), 143);
	loop_free(l);
}

static void stop_with(void *arg)
{
	struct counter *c = arg;

	loop_stop(c->loop, ++c->hits);
}

/* A stopped loop runs again; each run ends with its own code. */
static void test_rerun(void **state)
{
	struct counter c = {.loop = loop_new()};

	(void)state;
	for (int round = 1; round <= 3; round++) {
		assert_non_null(loop_add_timer(c.loop, 1000, false, stop_with, &c));
		assert_int_equal(loop_run(c.loop), round);
	}
	loop_free(c.loop);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fd_watch),
		cmocka_unit_test(test_timers),
		cmocka_unit_test(test_remove_inside_callback),
		cmocka_unit_test(test_cross_thread_post),
		cmocka_unit_test(test_owned_post),
		cmocka_unit_test(test_post_cancel),
		cmocka_unit_test(test_post_cancel_while_draining),
		cmocka_unit_test(test_post_node_garbage),
		cmocka_unit_test(test_post_coalesced),
		cmocka_unit_test(test_post_coalesced_threads),
		cmocka_unit_test(test_signal_stops_loop),
		cmocka_unit_test(test_rerun),
	};
	return TEST_MAIN(tests, NULL, NULL);
}
