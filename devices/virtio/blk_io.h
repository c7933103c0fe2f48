/*
 * The disk I/O engine under virtio-blk: a small pool of worker threads runs preadv/pwritev/
 * fdatasync on the image, so a slow disk never blocks the event loop. Finished requests go
 * onto a completion list and one eventfd wakes the loop, which calls done() for each.
 *
 * Threading: blk_io_open and blk_io_close run on the loop thread (close may also run on
 * any thread once the loop no longer runs); done() is always called on the loop thread;
 * blk_io_submit and blk_io_drain may be called from any thread. Workers block every
 * signal, so SIGINT/SIGTERM/SIGUSR1 only ever reach the threads that expect them.
 *
 * Drain never calls done() and never waits for the loop, so it cannot deadlock whatever
 * thread calls it and whatever lock it holds (a vCPU thread resetting a device holds the
 * transport's lock, which done() takes): it waits for the workers only. What it promises
 * is the one thing a reset needs: when it returns, no worker touches any request's iovec
 * memory again, and every request submitted before it has its result. The completions it
 * covered that the loop has not taken yet are still delivered, exactly once, on the loop,
 * with req->stale set: the device was reset meanwhile, so done() should only release them,
 * never answer the guest with them. The request structs themselves must therefore live
 * until their done() ran (or until blk_io_close returned). The one request the loop may
 * have just taken when drain runs (its done() starting) is not marked, as done() may free
 * it at any moment: a device that can be reset and re-activated while completions are on
 * their way also checks a generation of its own in done(), under its lock.
 */
#ifndef FLINT_BLK_IO_H
#define FLINT_BLK_IO_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

struct loop;
struct sysfilter;
struct blk_io; /* one per drive */

enum { BLK_IO_READ, BLK_IO_WRITE, BLK_IO_FLUSH };

/* Requests submitted and not yet given back through done(): more is -EAGAIN. */
#define BLK_IO_QUEUE_MAX 1024
/* At most this many worker threads per drive. */
#define BLK_IO_THREADS_MAX 64

/* Caller-owned from blk_io_submit until its done() ran. */
struct blk_io_req {
	int op;            /* BLK_IO_READ, BLK_IO_WRITE, BLK_IO_FLUSH */
	uint64_t offset;   /* bytes; ignored by FLUSH */
	struct iovec *iov; /* host buffers (guest memory already translated) */
	unsigned iovcnt;   /* at most IOV_MAX (1024); 0 for FLUSH */
	int64_t result;    /* set on completion: bytes done (short at end of file), or -errno */
	bool stale;        /* set on completion: a blk_io_drain covered it before done() ran */
	void *cookie;      /* the caller's */
};

typedef void (*blk_io_done_fn)(void *arg, struct blk_io_req *req);

/*
 * Starts @nthreads (1..BLK_IO_THREADS_MAX) workers on @fd, the image the caller opened
 * (and closes after blk_io_close), and watches their completions on @loop: @done(@arg,
 * req) runs on the loop thread once for every request submitted. Each worker installs
 * @filter (NULL: none) before it takes a request. Returns 0 or -errno.
 */
int blk_io_open(struct blk_io **out, int fd, struct loop *loop, unsigned nthreads,
                const struct sysfilter *filter, blk_io_done_fn done, void *arg);

/*
 * Queues @req for a worker; never blocks. Returns 0, -EINVAL for a bad op or iovcnt, or
 * -EAGAIN when BLK_IO_QUEUE_MAX requests are already out (done() not yet run for them).
 * done() may submit again (outstanding counts drop before done() is called).
 */
int blk_io_submit(struct blk_io *io, struct blk_io_req *req);

/*
 * Waits until every worker is idle and no request is queued: see the top of this file.
 * Requests submitted while it waits are waited for as well. Any thread, any time, also
 * from inside done().
 */
void blk_io_drain(struct blk_io *io);

/*
 * blk_io_drain() for a device reset: requests no worker has started are not run at all
 * (result -ECANCELED); it waits only for the ones running. Same promises otherwise, so a
 * guest cannot make a reset wait for a queue full of huge requests.
 */
void blk_io_cancel(struct blk_io *io);

/*
 * Runs the requests submitted from now on against @fd instead (a drive whose backing file
 * the host swapped; the caller closes the old fd, and later @fd). Only while nothing is
 * outstanding (every done() has run), so no worker can be inside a request on the old fd:
 * -EBUSY otherwise, and nothing changes. Any thread.
 */
int blk_io_set_fd(struct blk_io *io, int fd);

/*
 * Finishes every request (queued ones still run: a write the guest sent should land),
 * stops and joins the workers, calls done() with stale set for every completion not yet
 * delivered, and frees @io. done() is never called after it returns. Not from inside
 * done(); NULL is allowed.
 */
void blk_io_close(struct blk_io *io);

#endif
