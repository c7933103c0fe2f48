#include "vmm/base/loop.h"
#include "vmm/base/log.h"

#include <errno.h>
#include <event2/event.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct loop_watch {
	struct loop *loop;
	struct event *ev;
	loop_fd_fn fd_fn;
	loop_fn fn;
	void *arg;
	struct loop_watch *prev, *next; /* every watch, so loop_free releases them */
};

struct loop {
	struct event_base *base;
	struct loop_watch *watches;
	/* Cross-thread posts: a mutex-protected FIFO plus an eventfd to wake the loop. */
	pthread_mutex_t post_lock;
	struct loop_post *post_head, **post_tail;
	struct loop_post *draining; /* taken by drain_posts(), run one by one; the lock's too */
	int post_fd;
	struct loop_watch *post_watch;
	struct event *sig[2];
	void (*on_signal)(void *arg, int signo);
	void *signal_arg;
	bool stopping;
	int code;
};

static void watch_unlink(struct loop_watch *w)
{
	if (w->prev)
		w->prev->next = w->next;
	else
		w->loop->watches = w->next;
	if (w->next)
		w->next->prev = w->prev;
}

static void on_fd(evutil_socket_t fd, short what, void *arg)
{
	struct loop_watch *w = arg;
	int events = ((what & EV_READ) ? LOOP_READ : 0) | ((what & EV_WRITE) ? LOOP_WRITE : 0);

	w->fd_fn((int)fd, events, w->arg);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct loop_watch *w = arg;
	loop_fn fn = w->fn;
	void *fn_arg = w->arg;

	(void)fd;
	(void)what;
	/* A one-shot timer is done once it fires; free it before the callback may stop the loop. */
	if (!(event_get_events(w->ev) & EV_PERSIST))
		loop_remove(w);
	fn(fn_arg);
}

static struct loop_watch *watch_new(struct loop *l, int fd, short flags, event_callback_fn cb)
{
	struct loop_watch *w = calloc(1, sizeof(*w));

	if (!w)
		return NULL;
	w->loop = l;
	w->ev = event_new(l->base, fd, flags, cb, w);
	if (!w->ev) {
		free(w);
		return NULL;
	}
	w->next = l->watches;
	if (w->next)
		w->next->prev = w;
	l->watches = w;
	return w;
}

struct loop_watch *loop_add_fd(struct loop *l, int fd, int events, loop_fd_fn fn, void *arg)
{
	short flags = EV_PERSIST | ((events & LOOP_READ) ? EV_READ : 0) |
	              ((events & LOOP_WRITE) ? EV_WRITE : 0);
	struct loop_watch *w = watch_new(l, fd, flags, on_fd);

	if (!w)
		return NULL;
	w->fd_fn = fn;
	w->arg = arg;
	if (event_add(w->ev, NULL) < 0) {
		loop_remove(w);
		return NULL;
	}
	return w;
}

struct loop_watch *loop_add_timer(struct loop *l, uint64_t usec, bool repeat, loop_fn fn, void *arg)
{
	struct timeval tv = { (time_t)(usec / 1000000), (suseconds_t)(usec % 1000000) };
	struct loop_watch *w = watch_new(l, -1, repeat ? EV_PERSIST : 0, on_timer);

	if (!w)
		return NULL;
	w->fn = fn;
	w->arg = arg;
	if (event_add(w->ev, &tv) < 0) {
		loop_remove(w);
		return NULL;
	}
	return w;
}

void loop_remove(struct loop_watch *w)
{
	if (!w)
		return;
	watch_unlink(w);
	event_free(w->ev);
	free(w);
}

/*
 * The next post of this drain, out of every list (so a cancel cannot find it), copied out
 * to @run under the lock: from then on another thread may queue an owner's node again.
 * Returns the node, or NULL.
 */
static struct loop_post *next_draining(struct loop *l, struct loop_post *run)
{
	struct loop_post *p;

	pthread_mutex_lock(&l->post_lock);
	p = l->draining;
	if (p) {
		l->draining = p->next;
		*run = (struct loop_post){ .fn = p->fn, .arg = p->arg, .heap = p->heap };
		/* Before fn: what is posted from now on is another run, none is left behind. */
		atomic_store(&p->queued, false);
	}
	pthread_mutex_unlock(&l->post_lock);
	return p;
}

/*
 * What was queued when the eventfd woke the loop, in order: what is posted meanwhile
 * (a fn posting its own node again, too) waits for the next wake-up, so a drain ends.
 */
static void drain_posts(int fd, int events, void *arg)
{
	struct loop *l = arg;
	struct loop_post *p, run;
	uint64_t count;

	(void)events;
	if (read(fd, &count, sizeof(count)) < 0 && errno != EAGAIN)
		log_warn("loop: reading the post eventfd failed: %d", errno);
	pthread_mutex_lock(&l->post_lock);
	l->draining = l->post_head;
	l->post_head = NULL;
	l->post_tail = &l->post_head;
	pthread_mutex_unlock(&l->post_lock);
	while ((p = next_draining(l, &run))) {
		run.fn(run.arg);
		if (run.heap)
			free(p); /* the loop's: nobody else can have queued it again */
	}
}

static int enqueue(struct loop *l, struct loop_post *p)
{
	uint64_t one = 1;

	p->next = NULL;
	pthread_mutex_lock(&l->post_lock);
	*l->post_tail = p;
	l->post_tail = &p->next;
	pthread_mutex_unlock(&l->post_lock);
	/* The eventfd counter saturates long after any real backlog; EAGAIN still wakes. */
	if (write(l->post_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		return -errno;
	return 0;
}

int loop_post(struct loop *l, loop_fn fn, void *arg)
{
	struct loop_post *p = malloc(sizeof(*p));

	if (!p)
		return -ENOMEM;
	loop_post_init(p, fn, arg);
	p->heap = true;
	return enqueue(l, p);
}

void loop_post_init(struct loop_post *p, loop_fn fn, void *arg)
{
	*p = (struct loop_post){ .fn = fn, .arg = arg };
	atomic_init(&p->queued, false);
}

int loop_post_node(struct loop *l, struct loop_post *p)
{
	if (atomic_exchange(&p->queued, true))
		return 0; /* queued already: that run serves this post too */
	return enqueue(l, p);
}

/* Unlinks @p from the list at @pp; returns whether it was there. Lock held. */
static bool unlink_post(struct loop_post **pp, struct loop_post *p)
{
	for (; *pp; pp = &(*pp)->next) {
		if (*pp == p) {
			*pp = p->next;
			return true;
		}
	}
	return false;
}

void loop_post_cancel(struct loop *l, struct loop_post *p)
{
	pthread_mutex_lock(&l->post_lock);
	if (unlink_post(&l->draining, p)) {
		atomic_store(&p->queued, false);
	} else if (unlink_post(&l->post_head, p)) {
		atomic_store(&p->queued, false);
		/* The tail again: the last node's next, or the head of an empty queue. */
		l->post_tail = &l->post_head;
		while (*l->post_tail)
			l->post_tail = &(*l->post_tail)->next;
	}
	pthread_mutex_unlock(&l->post_lock);
}

/* libevent's own warnings go through flint's log, not straight to stderr. */
static void on_libevent_log(int severity, const char *msg)
{
	if (severity >= EVENT_LOG_ERR)
		log_error("libevent: %s", msg);
	else if (severity == EVENT_LOG_WARN)
		log_warn("libevent: %s", msg);
	else
		log_debug("libevent: %s", msg);
}

/*
 * libevent's base without what flint does not use: its EVENT_* environment variables
 * (IGNORE_ENV: each lookup also cost four get*id() calls), and its locks (NOLOCK: only the
 * loop thread touches the base, loop.h; other threads go through loop_post()'s own mutex
 * and eventfd).
 */
static struct event_base *new_base(void)
{
	struct event_config *c = event_config_new();
	struct event_base *b = NULL;

	if (c && !event_config_set_flag(c, EVENT_BASE_FLAG_IGNORE_ENV | EVENT_BASE_FLAG_NOLOCK))
		b = event_base_new_with_config(c);
	if (c)
		event_config_free(c); /* libevent's does not take NULL */
	return b;
}

struct loop *loop_new(void)
{
	struct loop *l = calloc(1, sizeof(*l));

	if (!l)
		return NULL;
	pthread_mutex_init(&l->post_lock, NULL);
	l->post_tail = &l->post_head;
	l->post_fd = -1;
	event_set_log_callback(on_libevent_log);
	l->base = new_base();
	if (!l->base)
		goto fail;
	l->post_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (l->post_fd < 0)
		goto fail;
	l->post_watch = loop_add_fd(l, l->post_fd, LOOP_READ, drain_posts, l);
	if (!l->post_watch)
		goto fail;
	return l;
fail:
	loop_free(l);
	return NULL;
}

static void on_signal(evutil_socket_t signo, short what, void *arg)
{
	struct loop *l = arg;

	(void)what;
	log_info("received %s, shutting down", signo == SIGINT ? "SIGINT" : "SIGTERM");
	if (l->on_signal)
		l->on_signal(l->signal_arg, (int)signo);
	else
		loop_stop(l, 128 + (int)signo); /* the shell's convention for "ended by a signal" */
}

int loop_handle_signals(struct loop *l, void (*fn)(void *arg, int signo), void *arg)
{
	const int signos[2] = { SIGINT, SIGTERM };
	sigset_t set;

	l->on_signal = fn;
	l->signal_arg = arg;
	for (int i = 0; i < 2; i++) {
		if (l->sig[i])
			continue;
		l->sig[i] = evsignal_new(l->base, signos[i], on_signal, l);
		if (!l->sig[i] || event_add(l->sig[i], NULL) < 0)
			return -ENOMEM;
	}
	/*
	 * Whoever blocked them until now (a jailed flint: pid 1 of its namespace would drop
	 * them while it had no handler) gets those that came meanwhile delivered here.
	 */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	return 0;
}

int loop_run(struct loop *l)
{
	/* A loop can run again after it stopped (tests and tools drive it in rounds). */
	l->stopping = false;
	while (!l->stopping) {
		if (event_base_loop(l->base, EVLOOP_ONCE) < 0)
			return -EIO;
	}
	return l->code;
}

static void wake_up(void *arg)
{
	(void)arg;
}

int loop_run_once(struct loop *l, uint64_t usec)
{
	struct loop_watch *deadline = NULL;
	int r;

	/* Repeating, so it is still ours to remove when something else woke the loop first. */
	if (usec && !(deadline = loop_add_timer(l, usec, true, wake_up, NULL)))
		return -ENOMEM;
	r = event_base_loop(l->base, EVLOOP_ONCE | (usec ? 0 : EVLOOP_NONBLOCK));
	loop_remove(deadline);
	return r < 0 ? -EIO : 0;
}

void loop_stop(struct loop *l, int code)
{
	if (l->stopping)
		return;
	l->stopping = true;
	l->code = code;
	event_base_loopbreak(l->base);
}

bool loop_stopping(const struct loop *l)
{
	return l->stopping;
}

void loop_free(struct loop *l)
{
	struct loop_post *p, *next;

	if (!l)
		return;
	while (l->watches)
		loop_remove(l->watches);
	for (int i = 0; i < 2; i++)
		if (l->sig[i])
			event_free(l->sig[i]);
	for (p = l->post_head; p; p = next) {
		next = p->next;
		if (p->heap)
			free(p);
		else
			atomic_store(&p->queued, false); /* the owner's, to post anew */
	}
	if (l->post_fd >= 0)
		close(l->post_fd);
	if (l->base)
		event_base_free(l->base);
	pthread_mutex_destroy(&l->post_lock);
	free(l);
}

struct event_base *loop_event_base(struct loop *l)
{
	return l->base;
}
