/* blk_io's operations on io_uring (liburing), for bench/blk-io.c only: flint does not link it. */
#include "devices/virtio/blk_io.h"
#include "vmm/base/loop.h"

#include <errno.h>
#include <liburing.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

/*
 * One ring per drive, driven from the loop thread only (a ring is not thread-safe, so
 * unlike blk_io this drains on the loop thread only). The kernel writes the registered
 * eventfd when it posts completions; the loop reaps them. Short transfers are reported
 * as they come (the benchmark never asks past the end of its file).
 */
struct blk_uring {
	struct io_uring ring;
	bool ring_up;
	int fd;
	int efd;
	struct loop_watch *watch;
	blk_io_done_fn done;
	void *arg;
	unsigned outstanding; /* submitted, done() not yet called: at most BLK_IO_QUEUE_MAX */
	unsigned unsubmitted; /* SQEs prepared while reaping, handed to the kernel after */
	bool reaping;
	bool async; /* IOSQE_ASYNC: always io-wq, never inline, like the pool's hand-off */
};

/*
 * @async sets IOSQE_ASYNC on every request: the kernel's io-wq threads run it, instead of
 * the submitting thread trying first (a read the page cache holds then completes inside
 * io_uring_submit, on the loop thread).
 */
int blk_uring_open(struct blk_uring **out, int fd, struct loop *loop, bool async,
                   blk_io_done_fn done, void *arg);
int blk_uring_submit(struct blk_uring *u, struct blk_io_req *req);
void blk_uring_drain(struct blk_uring *u);
void blk_uring_close(struct blk_uring *u);

static int flush_sqes(struct blk_uring *u)
{
	int r = io_uring_submit(&u->ring);

	u->unsubmitted = 0;
	return r < 0 ? r : 0;
}

/* Delivers every completion posted so far; what done() submits goes in one syscall after. */
static void reap(struct blk_uring *u)
{
	struct io_uring_cqe *cqe;

	u->reaping = true;
	while (io_uring_peek_cqe(&u->ring, &cqe) == 0) {
		struct blk_io_req *req = io_uring_cqe_get_data(cqe);

		req->result = cqe->res;
		req->stale = false;
		io_uring_cqe_seen(&u->ring, cqe);
		u->outstanding--;
		u->done(u->arg, req);
	}
	u->reaping = false;
	if (u->unsubmitted)
		flush_sqes(u);
}

static void on_kick(int fd, int events, void *arg)
{
	uint64_t count;

	(void)events;
	if (read(fd, &count, sizeof(count)) < 0 && errno != EAGAIN)
		return;
	reap(arg);
}

static int prep(struct io_uring_sqe *sqe, int fd, const struct blk_io_req *req)
{
	switch (req->op) {
	case BLK_IO_READ:
		io_uring_prep_readv(sqe, fd, req->iov, req->iovcnt, req->offset);
		return 0;
	case BLK_IO_WRITE:
		io_uring_prep_writev(sqe, fd, req->iov, req->iovcnt, req->offset);
		return 0;
	case BLK_IO_FLUSH:
		io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC);
		return 0;
	}
	return -EINVAL;
}

int blk_uring_submit(struct blk_uring *u, struct blk_io_req *req)
{
	struct io_uring_sqe *sqe;

	if (req->op != BLK_IO_READ && req->op != BLK_IO_WRITE && req->op != BLK_IO_FLUSH)
		return -EINVAL;
	if (u->outstanding >= BLK_IO_QUEUE_MAX)
		return -EAGAIN;
	/* The SQ holds BLK_IO_QUEUE_MAX entries, so with the bound above it has room. */
	sqe = io_uring_get_sqe(&u->ring);
	if (!sqe)
		return -EAGAIN;
	prep(sqe, u->fd, req);
	io_uring_sqe_set_data(sqe, req);
	if (u->async)
		io_uring_sqe_set_flags(sqe, IOSQE_ASYNC);
	u->outstanding++;
	u->unsubmitted++;
	return u->reaping ? 0 : flush_sqes(u);
}

void blk_uring_drain(struct blk_uring *u)
{
	struct io_uring_cqe *cqe;

	if (u->unsubmitted)
		flush_sqes(u);
	while (u->outstanding) {
		if (io_uring_wait_cqe(&u->ring, &cqe) < 0)
			return;
		reap(u);
	}
}

int blk_uring_open(struct blk_uring **out, int fd, struct loop *loop, bool async,
                   blk_io_done_fn done, void *arg)
{
	struct blk_uring *u = calloc(1, sizeof(*u));
	int r;

	if (!u)
		return -ENOMEM;
	u->async = async;
	u->fd = fd;
	u->done = done;
	u->arg = arg;
	u->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (u->efd < 0) {
		r = -errno;
		goto fail;
	}
	r = io_uring_queue_init(BLK_IO_QUEUE_MAX, &u->ring, 0);
	if (r < 0)
		goto fail;
	u->ring_up = true;
	r = io_uring_register_eventfd(&u->ring, u->efd);
	if (r < 0)
		goto fail;
	r = -ENOMEM;
	u->watch = loop_add_fd(loop, u->efd, LOOP_READ, on_kick, u);
	if (!u->watch)
		goto fail;
	*out = u;
	return 0;
fail:
	blk_uring_close(u);
	return r;
}

void blk_uring_close(struct blk_uring *u)
{
	if (!u)
		return;
	if (u->ring_up) {
		blk_uring_drain(u);
		io_uring_queue_exit(&u->ring);
	}
	loop_remove(u->watch);
	if (u->efd >= 0)
		close(u->efd);
	free(u);
}
