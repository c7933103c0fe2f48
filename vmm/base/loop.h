/*
 * The one event loop. A libevent event_base owned by the main thread; everything that is
 * not guest execution registers here. Other threads reach it only through loop_post() and
 * loop_post_node() (and take an owned node back with loop_post_cancel()).
 */
#ifndef FLINT_LOOP_H
#define FLINT_LOOP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct loop;
struct event_base;
struct loop_watch;

enum { LOOP_READ = 1, LOOP_WRITE = 2 };

typedef void (*loop_fd_fn)(int fd, int events, void *arg);
typedef void (*loop_fn)(void *arg);

struct loop *loop_new(void);
/* Frees the loop and every watch still registered on it. */
void loop_free(struct loop *l);

/* Calls @fn whenever @fd is ready for @events (LOOP_READ|LOOP_WRITE), until removed. */
struct loop_watch *loop_add_fd(struct loop *l, int fd, int events, loop_fd_fn fn, void *arg);
/* Calls @fn after @usec microseconds, once or every @usec when @repeat. */
struct loop_watch *loop_add_timer(struct loop *l, uint64_t usec, bool repeat, loop_fn fn,
                                  void *arg);
/* Removes and frees a watch. NULL is allowed. Safe from inside the watch's own callback. */
void loop_remove(struct loop_watch *w);

/*
 * Runs @fn(@arg) on the loop thread soon. Callable from any thread: how a vCPU thread
 * hands work to the loop (loop_post_node(): without allocating). Returns -errno when the
 * loop cannot take it.
 */
int loop_post(struct loop *l, loop_fn fn, void *arg);

/*
 * A post whose memory its owner keeps, for loop_post_node(): a post that cannot fail for
 * want of memory, and a thread that posts without allocating (a vCPU thread's first
 * malloc() would make it a heap arena of its own). Every field is the loop's: the owner
 * sets them once with loop_post_init().
 */
struct loop_post {
	loop_fn fn;
	void *arg;
	struct loop_post *next;
	bool heap;          /* made by loop_post() */
	atomic_bool queued; /* from loop_post_node() until the drain takes it, a cancel, or
	                       loop_free() */
};

/* Makes @p a node that runs @fn(@arg), not queued. Never while it is queued or runs. */
void loop_post_init(struct loop_post *p, loop_fn fn, void *arg);
/*
 * Queues @p like loop_post(), unless it is queued already: then it still runs once, so
 * a thread that posts on every event (a byte, a free slot) hands the loop one run for
 * all those before it. Once its fn has begun, @p can be queued again (from fn, too). @p
 * must outlive the loop's run of it, loop_free() or loop_post_cancel(). Returns -errno
 * when the loop's eventfd could not be written: @p is queued all the same, but runs only
 * when something else wakes the loop (posts of it meanwhile return 0 and wake nothing).
 */
int loop_post_node(struct loop *l, struct loop_post *p);
/*
 * Takes @p out of the queue if its run has not begun: then it does not run. Any thread; but
 * from another than the loop's, a run that has begun may still be going on on return.
 */
void loop_post_cancel(struct loop *l, struct loop_post *p);

/*
 * SIGINT/SIGTERM are handled on the loop: @on_signal(@arg, signo) decides what they do,
 * or, when it is NULL, they end loop_run() with 128 + signo.
 */
int loop_handle_signals(struct loop *l, void (*on_signal)(void *arg, int signo), void *arg);

/* Runs until loop_stop(). Returns the code passed to loop_stop(), or -errno. Re-runnable. */
int loop_run(struct loop *l);
/*
 * One round, for tests and tools that drive the loop step by step: waits up to @usec
 * (0: not at all) for something to be ready and runs the callbacks of what is. Returns 0,
 * or -errno when the loop failed.
 */
int loop_run_once(struct loop *l, uint64_t usec);
/* Ends loop_run() with @code. The first stop wins; later ones are ignored. Loop thread only. */
void loop_stop(struct loop *l, int code);
/* The libevent base under the loop, for libevent's own services on it (the API's evhttp). */
struct event_base *loop_event_base(struct loop *l);
bool loop_stopping(const struct loop *l);

#endif
