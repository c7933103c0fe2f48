/*
 * virtio-blk (Firecracker's `drives[]`): a raw image behind one request queue. Reads and
 * writes run on the I/O engine's workers (blk_io.h) and complete on the loop, so a slow
 * disk never stalls the loop or a vCPU. A read-only drive is opened read-only and
 * answers writes with IOERR; a Writeback drive offers FLUSH (fdatasync), an Unsafe one
 * does not, as in Firecracker.
 */
#ifndef FLINT_VIRTIO_BLK_H
#define FLINT_VIRTIO_BLK_H

#include "devices/virtio/blk_io.h"
#include "devices/virtio/device.h"
#include "devices/virtio/rate_limiter.h"
#include "vmm/base/log.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#define VIRTIO_BLK_QUEUE_SIZE 256
#define VIRTIO_BLK_SEG_MAX    126        /* data segments per request, announced to the driver */
#define VIRTIO_BLK_SIZE_MAX   (1u << 20) /* bytes per segment, announced: with SEG_MAX, */
#define VIRTIO_BLK_REQ_MAX    ((uint64_t)VIRTIO_BLK_SEG_MAX * VIRTIO_BLK_SIZE_MAX) /* per request */
#define VIRTIO_BLK_THREADS    2

struct virtio_blk;

/* One request in flight: its chain, where its status byte goes, its I/O. */
struct virtio_blk_req {
	struct blk_io_req io;
	struct virtio_blk *blk;
	struct iovec iov[VIRTIO_BLK_SEG_MAX];
	uint8_t *status;
	uint32_t type; /* VIRTIO_BLK_T_* */
	uint64_t sector;
	unsigned iovcnt;
	uint32_t written; /* what the used ring reports: data read into the chain + status */
	uint64_t want;    /* bytes the request must move to succeed */
	unsigned generation;
	uint16_t head;
	bool busy;
};

struct virtio_blk_options {
	const char *id; /* drive_id: names the device in logs, answers GET_ID */
	int fd;         /* the image, opened (read-only when read_only); the caller closes it */
	bool read_only;
	bool flush; /* cache_type Writeback: offer FLUSH, and fdatasync on it */
	const struct rate_limiter *limiter; /* NULL: unlimited */
	struct loop *loop;
	/*
	 * No I/O threads until virtio_blk_start(): flint opens its drives before it drops its
	 * privileges and starts their threads after, as a thread keeps the capabilities it
	 * was made with.
	 */
	bool defer_io;
};

struct virtio_blk {
	struct virtio_dev dev; /* first: the transport sees this */
	char id[21];           /* VIRTIO_BLK_ID_BYTES, NUL-terminated */
	uint64_t capacity;     /* 512-byte sectors */
	bool read_only, flush;
	struct blk_io *io; /* NULL until the I/O engine starts (before the guest can reset) */
	int image_fd;      /* init's image, and the loop: for virtio_blk_start() */
	struct loop *loop;
	unsigned inflight; /* requests on the I/O engine, done() not run yet: loop thread only */
	int own_fd;        /* a swapped-in image, the device's to close; -1: the caller's */
	int next_fd;       /* swapped in, waiting for the requests on the old image; -1: none */
	uint64_t next_capacity;
	unsigned generation; /* bumped on every reset: completions of an older one are dropped */
	bool stalled;        /* chains wait for a request slot */
	struct ratelimit limit;
	struct ratelimit_timer timer;
	struct virtio_blk_req *held; /* popped, over the rate limit: runs when the timer fires */
	uint64_t throttled;          /* requests the limiter held, a counter */
	struct log_ratelimit rl;
	struct virtqueue_seg segs[VIRTIO_BLK_SEG_MAX + 2];
	struct virtio_blk_req reqs[VIRTIO_BLK_QUEUE_SIZE];
	uint64_t reads, writes, flushes, errors, swaps; /* counters */
};

/*
 * Sizes the image and starts the I/O engine on the loop (with o->defer_io, later:
 * virtio_blk_start()). Returns 0 or -errno (logged).
 */
int virtio_blk_init(struct virtio_blk *b, const struct virtio_blk_options *o);
/*
 * Starts the I/O engine of a drive made with defer_io, before the guest runs, its workers
 * under @filter (NULL: none); 0 or -errno.
 */
int virtio_blk_start(struct virtio_blk *b, const struct sysfilter *filter);
/* After the transport is destroyed: finishes I/O in flight and stops the engine. */
void virtio_blk_destroy(struct virtio_blk *b);

/*
 * The host swapped the drive's file (Firecracker's PATCH /drives: path_on_host): @fd,
 * opened as the first image was (read-only or not), backs the drive from now on; the
 * rest (read-only, flush, id) stays. The requests already taken from the guest finish on
 * the old image first, and until they have the device takes no new one, so no request
 * ever sees both images and the loop never waits for the disk. Then the capacity in the
 * config space changes and the driver hears of it (config change interrupt, new
 * ConfigGeneration), as Linux needs to re-read the size.
 * Loop thread, device bound to its transport. Returns 0, the device then owning @fd
 * (closed by the next swap or destroy; the fd of init stays the caller's), or -errno
 * (logged) when @fd cannot be sized: nothing changed and @fd is still the caller's.
 */
int virtio_blk_set_image(struct virtio_blk *b, int fd);
/*
 * Firecracker's PATCH /drives: rate_limiter: ratelimit_update() of the running limiter; a
 * request held for the old limits tries the new ones at once. Loop thread, device bound.
 */
void virtio_blk_set_limiter(struct virtio_blk *b, const struct rate_limiter *l);

#endif
