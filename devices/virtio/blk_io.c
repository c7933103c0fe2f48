/* The disk I/O engine: a worker pool for preadv/pwritev/fdatasync, completions on the loop. */
#include "devices/virtio/blk_io.h"
#include "vmm/base/log.h"
#include "vmm/base/loop.h"
#include "vmm/base/sysfilter.h"
#include "vmm/base/exitcode.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

/*
 * A FIFO of requests. Both rings of a blk_io hold at most the outstanding requests, which
 * submit bounds by BLK_IO_QUEUE_MAX, so neither can overflow.
 */
struct ring {
	struct blk_io_req *slot[BLK_IO_QUEUE_MAX];
	unsigned head, count;
};

struct blk_io {
	int fd; /* under lock: blk_io_set_fd() changes it while nothing is outstanding */
	blk_io_done_fn done;
	void *arg;
	pthread_mutex_t lock; /* everything below */
	pthread_cond_t work;  /* a request was queued, or the workers should stop */
	pthread_cond_t idle;  /* no request queued and no worker busy: drain waits for it */
	struct ring queued;   /* submitted, no worker has taken them yet */
	struct ring finished; /* result set, done() not called yet */
	unsigned busy;        /* requests a worker is running right now */
	unsigned outstanding; /* submitted and not yet taken off finished */
	unsigned drainers;    /* threads in blk_io_drain: only then is idle signalled */
	bool stopping;        /* blk_io_close: workers leave once queued is empty */
	int efd;              /* written when finished turns non-empty: wakes the loop */
	struct loop_watch *watch;
	unsigned nthreads;
	pthread_t threads[BLK_IO_THREADS_MAX];
	const struct sysfilter *filter; /* each worker's, installed first thing */
};

static void ring_push(struct ring *r, struct blk_io_req *req)
{
	r->slot[(r->head + r->count++) % BLK_IO_QUEUE_MAX] = req;
}

static struct blk_io_req *ring_pop(struct ring *r)
{
	struct blk_io_req *req;

	if (!r->count)
		return NULL;
	req = r->slot[r->head];
	r->head = (r->head + 1) % BLK_IO_QUEUE_MAX;
	r->count--;
	return req;
}

/* ---- on a worker ---- */

/* One preadv/pwritev, or a pread/pwrite of the rest of the buffer a short transfer cut. */
static ssize_t rw_once(int fd, bool out, const struct iovec *iov, unsigned cnt, size_t skip,
                       uint64_t off)
{
	if (skip) {
		char *p = (char *)iov->iov_base + skip;
		size_t len = iov->iov_len - skip;

		return out ? pwrite(fd, p, len, (off_t)off) : pread(fd, p, len, (off_t)off);
	}
	return out ? pwritev(fd, iov, (int)cnt, (off_t)off) : preadv(fd, iov, (int)cnt, (off_t)off);
}

/*
 * The whole of @iov, however the kernel splits it (signals, a file that ends). Walks the
 * caller's array without writing to it: the caller may share it with other requests.
 */
static int64_t transfer(int fd, bool out, const struct iovec *iov, unsigned cnt, uint64_t off)
{
	int64_t total = 0;
	size_t skip = 0; /* bytes of iov[0] already transferred */

	while (cnt) {
		ssize_t n = rw_once(fd, out, iov, cnt, skip, off + (uint64_t)total);
		size_t left;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break; /* end of file: what was read so far is the answer */
		total += n;
		/* Step past what was transferred; empty buffers on the way go with it. */
		for (left = (size_t)n + skip; cnt && left >= iov->iov_len; cnt--, iov++)
			left -= iov->iov_len;
		skip = left;
	}
	return total;
}

static int64_t run(int fd, const struct blk_io_req *req)
{
	if (req->op != BLK_IO_FLUSH)
		return transfer(fd, req->op == BLK_IO_WRITE, req->iov, req->iovcnt, req->offset);
	while (fdatasync(fd) < 0)
		if (errno != EINTR)
			return -errno;
	return 0;
}

static void kick_loop(struct blk_io *io)
{
	uint64_t one = 1;

	/* EAGAIN: the counter is saturated, so the loop is woken already. */
	if (write(io->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_warn("blk-io: waking the loop failed: %d", errno);
}

/* Returns whether the loop must be woken: only the first of a batch of completions does. */
static bool finish_locked(struct blk_io *io, struct blk_io_req *req, int64_t result)
{
	bool kick = !io->finished.count;

	req->result = result;
	req->stale = false;
	ring_push(&io->finished, req);
	io->busy--;
	if (io->drainers && !io->busy && !io->queued.count)
		pthread_cond_broadcast(&io->idle);
	return kick;
}

/* With the lock held: the next request to run, or NULL when the pool stops. */
static struct blk_io_req *next_locked(struct blk_io *io)
{
	struct blk_io_req *req;

	while (!io->queued.count && !io->stopping)
		pthread_cond_wait(&io->work, &io->lock);
	req = ring_pop(&io->queued);
	if (req)
		io->busy++;
	return req;
}

static void *worker(void *arg)
{
	struct blk_io *io = arg;
	struct blk_io_req *req;
	int r = sysfilter_enter(io->filter, -1);

	if (r) {
		/* No request may run unfiltered, and a worker has no VM to stop in order. */
		log_error("blk-io: cannot install the I/O thread's seccomp filter: %s",
		          strerror(-r));
		_exit(FLINT_EXIT_INTERNAL);
	}
	/* One lock round per request: finishing one and taking the next go together. */
	pthread_mutex_lock(&io->lock);
	while ((req = next_locked(io))) {
		int fd = io->fd; /* the one the request was submitted for */
		int64_t result;

		pthread_mutex_unlock(&io->lock);
		result = run(fd, req);
		pthread_mutex_lock(&io->lock);
		if (finish_locked(io, req, result)) {
			/* Unlocked: a spurious wake-up (the loop took it already) is harmless. */
			pthread_mutex_unlock(&io->lock);
			kick_loop(io);
			pthread_mutex_lock(&io->lock);
		}
	}
	pthread_mutex_unlock(&io->lock);
	return NULL;
}

/* ---- on the loop ---- */

static struct blk_io_req *take_finished(struct blk_io *io)
{
	struct blk_io_req *req;

	pthread_mutex_lock(&io->lock);
	req = ring_pop(&io->finished);
	if (req)
		io->outstanding--; /* before done(), so done() can submit the next one */
	pthread_mutex_unlock(&io->lock);
	return req;
}

static void on_kick(int fd, int events, void *arg)
{
	struct blk_io *io = arg;
	struct blk_io_req *req;
	uint64_t count;

	(void)events;
	if (read(fd, &count, sizeof(count)) < 0 && errno != EAGAIN)
		log_warn("blk-io: reading the completion eventfd failed: %d", errno);
	/*
	 * One pop at a time, so a drain marks exactly what done() has not been given. Bounded,
	 * as done() may submit again and fast workers could keep the list full forever: the
	 * rest waits for the next turn, after the loop's other watches.
	 */
	for (unsigned n = 0; n < BLK_IO_QUEUE_MAX; n++) {
		req = take_finished(io);
		if (!req)
			return;
		io->done(io->arg, req);
	}
	kick_loop(io);
}

/* ---- any thread ---- */

static bool valid(const struct blk_io_req *req)
{
	if (req->op == BLK_IO_FLUSH)
		return true;
	if (req->op != BLK_IO_READ && req->op != BLK_IO_WRITE)
		return false;
	return req->iovcnt <= IOV_MAX && (req->iov || !req->iovcnt);
}

int blk_io_submit(struct blk_io *io, struct blk_io_req *req)
{
	int r = 0;

	if (!valid(req))
		return -EINVAL;
	pthread_mutex_lock(&io->lock);
	if (io->stopping)
		r = -ESHUTDOWN;
	else if (io->outstanding >= BLK_IO_QUEUE_MAX)
		r = -EAGAIN;
	if (!r) {
		io->outstanding++;
		ring_push(&io->queued, req);
		pthread_cond_signal(&io->work);
	}
	pthread_mutex_unlock(&io->lock);
	return r;
}

int blk_io_set_fd(struct blk_io *io, int fd)
{
	int r = 0;

	if (fd < 0)
		return -EINVAL;
	pthread_mutex_lock(&io->lock);
	if (io->outstanding || io->busy)
		r = -EBUSY;
	else
		io->fd = fd;
	pthread_mutex_unlock(&io->lock);
	return r;
}

static void mark_stale_locked(struct blk_io *io)
{
	for (unsigned i = 0; i < io->finished.count; i++)
		io->finished.slot[(io->finished.head + i) % BLK_IO_QUEUE_MAX]->stale = true;
}

void blk_io_drain(struct blk_io *io)
{
	pthread_mutex_lock(&io->lock);
	io->drainers++;
	while (io->busy || io->queued.count)
		pthread_cond_wait(&io->idle, &io->lock);
	io->drainers--;
	mark_stale_locked(io);
	pthread_mutex_unlock(&io->lock);
}

void blk_io_cancel(struct blk_io *io)
{
	struct blk_io_req *req;
	bool kick;

	pthread_mutex_lock(&io->lock);
	kick = io->queued.count && !io->finished.count;
	/* Not started: never run. They go back through done() like the rest, marked stale. */
	while ((req = ring_pop(&io->queued))) {
		req->result = -ECANCELED;
		ring_push(&io->finished, req);
	}
	io->drainers++;
	while (io->busy)
		pthread_cond_wait(&io->idle, &io->lock);
	io->drainers--;
	mark_stale_locked(io);
	pthread_mutex_unlock(&io->lock);
	if (kick)
		kick_loop(io);
}

/* ---- set-up and teardown ---- */

static int start_workers(struct blk_io *io, unsigned n)
{
	sigset_t all, old;
	int r = 0;

	/* A thread starts with its creator's mask: blocked from its first instruction on. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	while (io->nthreads < n) {
		r = -pthread_create(&io->threads[io->nthreads], NULL, worker, io);
		if (r)
			break;
		pthread_setname_np(io->threads[io->nthreads], "blk-io");
		io->nthreads++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return r;
}

int blk_io_open(struct blk_io **out, int fd, struct loop *loop, unsigned nthreads,
                const struct sysfilter *filter, blk_io_done_fn done, void *arg)
{
	struct blk_io *io;
	int r;

	if (fd < 0 || !loop || !done || !nthreads || nthreads > BLK_IO_THREADS_MAX)
		return -EINVAL;
	io = calloc(1, sizeof(*io));
	if (!io)
		return -ENOMEM;
	io->fd = fd;
	io->done = done;
	io->arg = arg;
	io->filter = filter;
	pthread_mutex_init(&io->lock, NULL);
	pthread_cond_init(&io->work, NULL);
	pthread_cond_init(&io->idle, NULL);
	io->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (io->efd < 0) {
		r = -errno;
		goto fail;
	}
	r = -ENOMEM;
	io->watch = loop_add_fd(loop, io->efd, LOOP_READ, on_kick, io);
	if (!io->watch)
		goto fail;
	r = start_workers(io, nthreads);
	if (r)
		goto fail;
	*out = io;
	return 0;
fail:
	blk_io_close(io);
	return r;
}

void blk_io_close(struct blk_io *io)
{
	struct blk_io_req *req;

	if (!io)
		return;
	pthread_mutex_lock(&io->lock);
	io->stopping = true;
	pthread_cond_broadcast(&io->work);
	pthread_mutex_unlock(&io->lock);
	/* Workers leave only once nothing is queued, so every request has finished after this. */
	for (unsigned i = 0; i < io->nthreads; i++)
		pthread_join(io->threads[i], NULL);
	pthread_mutex_lock(&io->lock);
	mark_stale_locked(io);
	pthread_mutex_unlock(&io->lock);
	/* Unbounded: submit refuses now, so done() cannot add more. */
	while ((req = take_finished(io)))
		io->done(io->arg, req);
	loop_remove(io->watch);
	if (io->efd >= 0)
		close(io->efd);
	pthread_cond_destroy(&io->idle);
	pthread_cond_destroy(&io->work);
	pthread_mutex_destroy(&io->lock);
	free(io);
}
