/*
 * The device side of a split virtqueue (virtio 1.x, section 2.7), shared by every virtio
 * device. Everything the guest wrote is untrusted: each index is read once, each
 * descriptor copied before it is checked, each buffer translated through
 * guest_memory_hva(), and every loop is bounded by the queue size. A queue the driver
 * breaks stays broken (every call a no-op that returns -EIO, or false) until
 * virtqueue_reset(); the device then sets VIRTIO_STATUS_DEVICE_NEEDS_RESET.
 *
 * Threading: a virtqueue belongs to one thread, the loop's (vmm/base/loop.h); only the
 * guest runs concurrently with it, through the rings in its own memory.
 */
#ifndef FLINT_VIRTQUEUE_H
#define FLINT_VIRTQUEUE_H

#include "devices/virtio/virtio.h"
#include "vmm/base/log.h"
#include "vmm/base/memory.h"

#include <stdbool.h>
#include <stdint.h>

#define VIRTQUEUE_NAME_MAX 64

/* What the transport learnt from the driver for one queue. */
struct virtqueue_config {
	unsigned size;              /* entries: a power of two, at most VIRTQ_MAX_SIZE */
	uint64_t desc, avail, used; /* guest physical addresses of the three areas */
	uint64_t features;          /* negotiated: EVENT_IDX and INDIRECT_DESC matter here */
	uint16_t next_avail;        /* where the device resumes: 0 for a fresh queue, */
	uint16_t next_used;         /* a snapshot's indices when restoring one */
};

/* One guest buffer of a chain, inside guest RAM. */
struct virtqueue_seg {
	void *hva;
	uint32_t len; /* never 0: zero-length descriptors yield no segment */
	bool writable;
};

/*
 * A chain taken by virtqueue_pop(). The caller sets segs and max; pop fills in the rest.
 * Device-readable segments come first: segs[0, nreadable), then writable ones up to nsegs.
 */
struct virtqueue_chain {
	struct virtqueue_seg *segs;
	unsigned max; /* capacity of segs: the device's limit of segments in a chain */
	uint16_t head;
	unsigned nsegs, nreadable;
	uint64_t readable_len, writable_len; /* totals, in bytes */
};

/* The fields are the module's; devices use the functions. */
struct virtqueue {
	const struct guest_memory *mem;
	char name[VIRTQUEUE_NAME_MAX];
	struct log_ratelimit rl; /* survives resets: a guest breaking queues in a loop */
	bool enabled, broken;
	int error; /* what broke it, -errno */
	uint16_t size;
	bool event_idx, indirect;
	const uint8_t *desc; /* host views of the three areas */
	uint8_t *avail, *used;
	uint16_t last_avail;     /* the next available ring entry the device takes */
	uint16_t avail_idx;      /* the driver's avail->idx when last read */
	uint16_t used_idx;       /* the next used ring entry; published as used->idx */
	uint16_t signalled_used; /* used_idx when the driver was last considered for notifying */
	uint32_t inflight;       /* chains popped and not yet pushed */
};

/*
 * A disabled queue over @mem, named in logs by @name ("virtio-blk vda queue 0"; escaped
 * here, cut to fit). @mem must outlive the queue, its layout unchanged.
 */
void virtqueue_init(struct virtqueue *vq, const struct guest_memory *mem, const char *name);

/*
 * Turns the queue on with @cfg (the driver set QUEUE_READY). Checks the size, the
 * alignment of the three areas, and that each lies wholly in one RAM region. Returns 0;
 * on a bad config -EINVAL (size, alignment, indices) or -EFAULT (an area outside RAM),
 * and the queue is broken; -EIO when it already was.
 */
int virtqueue_enable(struct virtqueue *vq, const struct virtqueue_config *cfg);

/* Device reset: disabled, not broken, indices forgotten. Chains popped are dropped. */
void virtqueue_reset(struct virtqueue *vq);

bool virtqueue_enabled(const struct virtqueue *vq);
/* The driver broke the queue: the device must set VIRTIO_STATUS_DEVICE_NEEDS_RESET. */
bool virtqueue_broken(const struct virtqueue *vq);

/*
 * Takes the next available chain into @c. Returns 1 with a chain, 0 when none is
 * available (or the queue is disabled), or -errno when the driver broke the queue:
 *   -EOVERFLOW  avail->idx ran more than the queue size ahead of the device
 *   -ERANGE     a head or next index beyond the queue size (or the indirect table)
 *   -ELOOP      a chain longer than the queue size (a loop in next links)
 *   -EINVAL     flags the spec forbids: INDIRECT with NEXT, nested or not negotiated,
 *               an indirect table of a length not a non-zero multiple of 16, or a
 *               device-readable descriptor after a device-writable one
 *   -E2BIG      an indirect table of more entries than the queue size, or a chain of more
 *               segments than @c->max
 *   -EMSGSIZE   a chain of more than 2^32 bytes
 *   -EFAULT     a buffer or indirect table not wholly inside one RAM region
 * and -EIO on every call after that. Segments stay valid until the guest memory goes.
 */
int virtqueue_pop(struct virtqueue *vq, struct virtqueue_chain *c);

/*
 * Returns chain @head to the driver with @written bytes written to its writable
 * segments (at most its writable_len: the device's to keep), and publishes it (used->idx). -EINVAL
 * for a head the device cannot have popped (head >= size, nothing in flight): a device bug, the
 * queue stays as it is.
 */
int virtqueue_push(struct virtqueue *vq, uint16_t head, uint32_t written);
/*
 * virtqueue_push() in two steps, for chains the driver must see together (a frame over
 * several mergeable RX buffers): fill each (same checks and result), then publish them
 * all at once with one used->idx store.
 */
int virtqueue_fill(struct virtqueue *vq, uint16_t head, uint32_t written);
void virtqueue_publish(struct virtqueue *vq);

/*
 * After pushes: whether the driver wants a used buffer notification for them
 * (used_event with VIRTIO_F_EVENT_IDX, else VIRTQ_AVAIL_F_NO_INTERRUPT). False when
 * nothing was pushed since the last call, and on a broken or disabled queue.
 */
bool virtqueue_should_notify(struct virtqueue *vq);

/*
 * Before the device waits for a kick: with VIRTIO_F_EVENT_IDX asks the driver to notify
 * once it makes the next chain available (avail_event), without it relies on the used
 * ring flags left at 0. Then looks again: returns 1 when chains arrived meanwhile (pop
 * them: the driver may have looked at avail_event before it was written), 0 when the
 * device can wait, -errno as virtqueue_pop().
 */
int virtqueue_set_avail_event(struct virtqueue *vq);

#endif
