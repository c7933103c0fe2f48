/* virtio-blk (virtio 1.x section 5.2): requests parsed at the boundary, I/O on the workers. */
#include "devices/virtio/blk.h"
#include "vmm/base/log.h"

#include <errno.h>
#include <stdarg.h>
#include <linux/fs.h>
#include <linux/virtio_blk.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#define SECTOR 512ULL

static void __attribute__((format(printf, 2, 3)))
guest_error(struct virtio_blk *b, const char *fmt, ...)
{
	char why[160];
	va_list ap;

	b->errors++;
	if (!log_ratelimit_ok(&b->rl))
		return;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	log_warn("%s: %s", b->dev.name, why);
}

static void blk_config_read(struct virtio_dev *d, uint32_t off, uint8_t *data, uint32_t len)
{
	struct virtio_blk *b = (struct virtio_blk *)d;
	struct virtio_blk_config cfg = { .capacity = b->capacity, .seg_max = VIRTIO_BLK_SEG_MAX };

	memcpy(data, (uint8_t *)&cfg + off, len); /* off + len <= config_len: the transport */
}

static int blk_activate(struct virtio_dev *d)
{
	(void)d;
	return 0;
}

/* Copies up to @len bytes from the chain's readable segments, from the start. */
static uint32_t gather(const struct virtqueue_chain *c, void *dst, uint32_t len)
{
	uint32_t done = 0;

	for (unsigned i = 0; i < c->nreadable && done < len; i++) {
		uint32_t n = c->segs[i].len < len - done ? c->segs[i].len : len - done;
		memcpy((uint8_t *)dst + done, c->segs[i].hva, n);
		done += n;
	}
	return done;
}

/*
 * The data part of a request as iovecs: for a write the readable bytes after the
 * 16-byte header, for a read (or GET_ID) the writable bytes before the status byte.
 * Returns the iovec count, or -E2BIG past VIRTIO_BLK_SEG_MAX.
 */
static int data_iov(const struct virtqueue_chain *c, bool writable, struct iovec *iov,
                    uint64_t *total)
{
	uint64_t skip = writable ? 0 : sizeof(struct virtio_blk_outhdr);
	uint64_t keep = writable ? c->writable_len - 1 : c->readable_len - skip;
	unsigned first = writable ? c->nreadable : 0, last = writable ? c->nsegs : c->nreadable;
	int n = 0;

	*total = keep;
	for (unsigned i = first; i < last && keep; i++) {
		uint8_t *p = c->segs[i].hva;
		uint64_t len = c->segs[i].len;
		if (skip >= len) {
			skip -= len;
			continue;
		}
		p += skip;
		len -= skip;
		skip = 0;
		if (len > keep)
			len = keep;
		if (n == VIRTIO_BLK_SEG_MAX)
			return -E2BIG;
		iov[n++] = (struct iovec){ p, len };
		keep -= len;
	}
	return n;
}

static struct virtio_blk_req *req_get(struct virtio_blk *b)
{
	for (unsigned i = 0; i < VIRTIO_BLK_QUEUE_SIZE; i++)
		if (!b->reqs[i].busy) {
			b->reqs[i].busy = true;
			return &b->reqs[i];
		}
	return NULL;
}

/* Answers the request now: status byte, used ring. */
static void finish(struct virtio_blk *b, struct virtio_blk_req *r, uint8_t status)
{
	*r->status = status;
	if (status != VIRTIO_BLK_S_OK)
		r->written = 1; /* nothing the driver may use but the status */
	virtqueue_push(&b->dev.vqs[0], r->head, r->written);
	r->busy = false;
}

/* The requested range lies inside the disk: sector and length overflow-checked. */
static bool in_disk(const struct virtio_blk *b, uint64_t sector, uint64_t len)
{
	return sector <= b->capacity && len <= (b->capacity - sector) * SECTOR;
}

static uint8_t start_io(struct virtio_blk *b, struct virtio_blk_req *r, uint32_t type,
                        uint64_t sector, const struct virtqueue_chain *c)
{
	bool in = type == VIRTIO_BLK_T_IN;
	int n = type == VIRTIO_BLK_T_FLUSH ? 0 : data_iov(c, in, r->iov, &r->want);

	if (n < 0) {
		guest_error(b, "request of more than %u segments", VIRTIO_BLK_SEG_MAX);
		return VIRTIO_BLK_S_IOERR;
	}
	if (type != VIRTIO_BLK_T_FLUSH && (r->want % SECTOR || !in_disk(b, sector, r->want))) {
		guest_error(b,
		            "%s of %llu bytes at sector %llu: outside the disk's %llu sectors "
		            "or not whole sectors",
		            in ? "read" : "write", (unsigned long long)r->want,
		            (unsigned long long)sector, (unsigned long long)b->capacity);
		return VIRTIO_BLK_S_IOERR;
	}
	if (type == VIRTIO_BLK_T_FLUSH)
		r->want = 0;
	r->io = (struct blk_io_req){ .op = in                         ? BLK_IO_READ
		                           : type == VIRTIO_BLK_T_OUT ? BLK_IO_WRITE
		                                                      : BLK_IO_FLUSH,
		                     .offset = sector * SECTOR,
		                     .iov = r->iov,
		                     .iovcnt = (unsigned)n,
		                     .cookie = r };
	r->written = (uint32_t)(in ? r->want + 1 : 1);
	r->generation = b->generation;
	if (blk_io_submit(b->io, &r->io))
		return VIRTIO_BLK_S_IOERR;
	return 0xff; /* in flight: answered on completion */
}

static uint8_t get_id(struct virtio_blk *b, struct virtio_blk_req *r,
                      const struct virtqueue_chain *c)
{
	struct iovec iov[VIRTIO_BLK_SEG_MAX];
	uint64_t room;
	size_t id_len = strnlen(b->id, VIRTIO_BLK_ID_BYTES), done = 0;
	int n = data_iov(c, true, iov, &room);

	for (int i = 0; i < n && done < id_len; i++) {
		size_t k = iov[i].iov_len < id_len - done ? iov[i].iov_len : id_len - done;
		memcpy(iov[i].iov_base, b->id + done, k);
		done += k;
	}
	r->written = (uint32_t)done + 1;
	return VIRTIO_BLK_S_OK;
}

/* One chain: header, data, status byte, all checked before anything is done. */
static void serve(struct virtio_blk *b, struct virtio_blk_req *r, const struct virtqueue_chain *c)
{
	struct virtio_blk_outhdr h;
	const struct virtqueue_seg *last = &c->segs[c->nsegs - 1];
	uint8_t status;

	r->head = c->head;
	if (gather(c, &h, sizeof(h)) < sizeof(h) || !c->writable_len) {
		guest_error(b, "request without a 16-byte header or a status byte");
		virtqueue_push(&b->dev.vqs[0], c->head, 0);
		r->busy = false;
		return;
	}
	r->status = (uint8_t *)last->hva + last->len - 1;
	r->written = 1;
	switch (h.type) {
	case VIRTIO_BLK_T_IN:
		status = start_io(b, r, h.type, h.sector, c);
		break;
	case VIRTIO_BLK_T_OUT:
		status = b->read_only ? VIRTIO_BLK_S_IOERR : start_io(b, r, h.type, h.sector, c);
		break;
	case VIRTIO_BLK_T_FLUSH:
		status = b->flush ? start_io(b, r, h.type, 0, c) : VIRTIO_BLK_S_UNSUPP;
		break;
	case VIRTIO_BLK_T_GET_ID:
		status = get_id(b, r, c);
		break;
	default:
		status = VIRTIO_BLK_S_UNSUPP;
	}
	if (status != 0xff)
		finish(b, r, status);
}

static void blk_notify(struct virtio_dev *d, unsigned q)
{
	struct virtio_blk *b = (struct virtio_blk *)d;
	struct virtqueue *vq = &d->vqs[q];
	struct virtqueue_chain c = { .segs = b->segs, .max = VIRTIO_BLK_SEG_MAX + 2 };
	struct virtio_blk_req *r;
	int n = 0;

	do {
		/* A slot first, then the chain: a popped chain always has somewhere to go. */
		while ((r = req_get(b)) && (n = virtqueue_pop(vq, &c)) == 1)
			serve(b, r, &c);
		if (!r) {
			b->stalled = true; /* every slot in flight: the next completion resumes */
			break;
		}
		r->busy = false;
		if (n == 0)
			n = virtqueue_set_avail_event(vq);
	} while (n == 1);
	if (n < 0)
		virtio_dev_needs_reset(d, (int)q, n);
	virtio_dev_used(d, q);
}

/* On the loop, for every request the engine finished. */
static void on_done(void *arg, struct blk_io_req *io)
{
	struct virtio_blk_req *r = io->cookie;
	struct virtio_blk *b = arg;
	bool ok = io->result >= 0 && (uint64_t)io->result == r->want;

	if (io->stale) {
		r->busy = false; /* the device was reset: the guest no longer waits for it */
		return;
	}
	virtio_dev_lock(&b->dev);
	if (r->generation != b->generation || !virtio_dev_active(&b->dev)) {
		r->busy = false;
	} else {
		if (!ok)
			guest_error(b, "%s at byte %llu failed: %s",
			            io->op == BLK_IO_READ    ? "read"
			            : io->op == BLK_IO_WRITE ? "write"
			                                     : "flush",
			            (unsigned long long)io->offset,
			            io->result < 0 ? strerror((int)-io->result) : "short transfer");
		b->reads += io->op == BLK_IO_READ;
		b->writes += io->op == BLK_IO_WRITE;
		b->flushes += io->op == BLK_IO_FLUSH;
		finish(b, r, ok ? VIRTIO_BLK_S_OK : VIRTIO_BLK_S_IOERR);
		virtio_dev_used(&b->dev, 0);
		if (b->stalled) {
			b->stalled = false;
			blk_notify(&b->dev, 0);
		}
	}
	virtio_dev_unlock(&b->dev);
}

/* Under the lock, maybe on a vCPU thread: no worker touches guest memory after this. */
static void blk_reset(struct virtio_dev *d)
{
	struct virtio_blk *b = (struct virtio_blk *)d;

	b->generation++;
	b->stalled = false;
	blk_io_drain(b->io);
}

static const struct virtio_dev_ops blk_ops = {
	.config_read = blk_config_read,
	.activate = blk_activate,
	.queue_notify = blk_notify,
	.reset = blk_reset,
};

static int image_size(int fd, uint64_t *bytes)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (S_ISBLK(st.st_mode))
		return ioctl(fd, BLKGETSIZE64, bytes) < 0 ? -errno : 0;
	*bytes = (uint64_t)st.st_size;
	return 0;
}

int virtio_blk_init(struct virtio_blk *b, const struct virtio_blk_options *o)
{
	uint64_t bytes;
	int r;

	memset(b, 0, sizeof(*b));
	b->rl = (struct log_ratelimit){ .burst = 10 };
	snprintf(b->dev.name, sizeof(b->dev.name), "virtio-blk %s", MSG_ESC(o->id));
	snprintf(b->id, sizeof(b->id), "%s", o->id);
	b->read_only = o->read_only;
	b->flush = o->flush;
	r = image_size(o->fd, &bytes);
	if (r) {
		log_error("%s: cannot size the image: %s", b->dev.name, strerror(-r));
		return r;
	}
	if (bytes % SECTOR)
		log_warn("%s: the image is %llu bytes, not whole 512-byte sectors: the last %llu "
		         "bytes are out of the guest's reach",
		         b->dev.name, (unsigned long long)bytes,
		         (unsigned long long)(bytes % SECTOR));
	b->capacity = bytes / SECTOR;
	b->dev.ops = &blk_ops;
	b->dev.device_id = VIRTIO_ID_BLOCK;
	b->dev.features = VIRTIO_FEATURE(VIRTIO_BLK_F_SEG_MAX) |
	                  (o->read_only ? VIRTIO_FEATURE(VIRTIO_BLK_F_RO) : 0) |
	                  (o->flush ? VIRTIO_FEATURE(VIRTIO_BLK_F_FLUSH) : 0);
	b->dev.nqueues = 1;
	b->dev.queue_max = VIRTIO_BLK_QUEUE_SIZE;
	b->dev.config_len = sizeof(struct virtio_blk_config);
	for (unsigned i = 0; i < VIRTIO_BLK_QUEUE_SIZE; i++)
		b->reqs[i].blk = b;
	r = blk_io_open(&b->io, o->fd, o->loop, VIRTIO_BLK_THREADS, on_done, b);
	if (r)
		log_error("%s: cannot start its I/O threads: %s", b->dev.name, strerror(-r));
	return r;
}

void virtio_blk_destroy(struct virtio_blk *b)
{
	blk_io_close(b->io); /* completions not delivered come back stale: nothing to lock */
	b->io = NULL;
}
