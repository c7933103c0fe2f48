/*
 * What a virtio device model (blk, net, vsock, rng) gives its transport, and what the
 * transport gives back. The transport (devices/virtio/mmio.h) owns the registers, the
 * feature negotiation, the status state machine, the virtqueues' set-up and the
 * interrupt; the device owns what its queues carry.
 *
 * Threading: every callback below is called with the device's lock held (the
 * transport's), either on a vCPU thread (a register access: config_*, activate, reset) or
 * on the loop (queue_notify). So activate and reset must not touch loop watches: they
 * may only change state and loop_post() work. Work a device starts on the loop by itself
 * (an I/O completion, a timer, a host fd) takes the lock with virtio_dev_lock() first and
 * checks the device is still active: the driver may have reset it meanwhile.
 */
#ifndef FLINT_VIRTIO_DEVICE_H
#define FLINT_VIRTIO_DEVICE_H

#include "devices/virtio/virtqueue.h"

#include <stdbool.h>
#include <stdint.h>

/* Device IDs (virtio 1.x, section 5). */
#define VIRTIO_ID_NET   1
#define VIRTIO_ID_BLOCK 2
#define VIRTIO_ID_RNG   4
#define VIRTIO_ID_VSOCK 19

#define VIRTIO_DEV_MAX_QUEUES 8
/* Chains a device serves per queue_notify before it yields the loop (virtio_dev_kick_later). */
#define VIRTIO_DEV_BUDGET 256

struct virtio_dev;
struct virtio_transport;

struct virtio_dev_ops {
	/*
	 * The device-specific config space (section 4.2.2: offset 0x100 on MMIO). @off and
	 * @len are already checked against config_len. A NULL config_write ignores writes.
	 */
	void (*config_read)(struct virtio_dev *d, uint32_t off, uint8_t *data, uint32_t len);
	void (*config_write)(struct virtio_dev *d, uint32_t off, const uint8_t *data, uint32_t len);
	/*
	 * The driver set DRIVER_OK; every queue the driver made ready is enabled and
	 * d->acked holds the negotiated features. -errno refuses (the transport then sets
	 * DEVICE_NEEDS_RESET).
	 */
	int (*activate)(struct virtio_dev *d);
	/* Queue @q was notified (on the loop). Pop, serve, push, then virtio_dev_used(). */
	void (*queue_notify)(struct virtio_dev *d, unsigned q);
	/*
	 * The driver reset the device (status 0). When this returns, the device must not
	 * touch guest memory again until the next activate: wait for I/O in flight, drop
	 * what was not answered. The transport resets the virtqueues after it.
	 */
	void (*reset)(struct virtio_dev *d);
};

struct virtio_dev {
	const struct virtio_dev_ops *ops;
	char name[48];      /* "virtio-blk rootfs": every log line names the device */
	uint32_t device_id; /* VIRTIO_ID_* */
	uint64_t features;  /* offered; the transport adds VERSION_1, INDIRECT_DESC, EVENT_IDX */
	uint64_t acked;     /* negotiated: set by the transport at FEATURES_OK */
	unsigned nqueues;   /* at most VIRTIO_DEV_MAX_QUEUES */
	uint16_t queue_max; /* largest queue size the device takes (a power of two) */
	struct virtqueue vqs[VIRTIO_DEV_MAX_QUEUES]; /* initialised by the transport */
	uint32_t config_len;
	struct virtio_transport *transport; /* set by the transport */
};

/*
 * For devices (with the lock held). After pushing used buffers on queue @q: raises the
 * used-buffer interrupt when the driver wants one.
 */
void virtio_dev_used(struct virtio_dev *d, unsigned q);
/*
 * A device that stops serving queue @q before it is empty (its budget per callback is
 * spent, so the loop's other work gets its turn) asks to be called again: queue_notify
 * runs on a later loop turn, as after the guest's own notification.
 */
void virtio_dev_kick_later(struct virtio_dev *d, unsigned q);
/*
 * The device's config changed: bumps ConfigGeneration and, once the driver set DRIVER_OK,
 * raises the config interrupt (InterruptStatus bit 1 and the irqfd).
 */
void virtio_dev_config_changed(struct virtio_dev *d);
/*
 * Queue @q (or the device, q < 0) is unusable by the driver's doing: sets
 * DEVICE_NEEDS_RESET, logs once, raises the config interrupt. The device stops serving
 * until the driver resets it.
 */
void virtio_dev_needs_reset(struct virtio_dev *d, int q, int err);
/* True between a successful activate and the next reset or needs_reset. */
bool virtio_dev_active(const struct virtio_dev *d);

/* Loop-side work that did not come through queue_notify takes the device's lock. */
void virtio_dev_lock(struct virtio_dev *d);
void virtio_dev_unlock(struct virtio_dev *d);

#endif
