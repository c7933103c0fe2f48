/*
 * A guest virtio driver for unit tests: guest memory, a loop and a virtio-mmio transport
 * around the device model under test, driven through the MMIO registers exactly as a
 * vCPU's accesses would reach them, with rings built in guest memory. Well-behaved by
 * default; the raw accessors let a test behave as a hostile driver.
 */
#ifndef FLINT_TEST_VIRTIO_DRIVER_H
#define FLINT_TEST_VIRTIO_DRIVER_H

#include "devices/virtio/mmio.h"
#include "vmm/base/loop.h"
#include "vmm/base/memory.h"

#include <stdbool.h>
#include <stdint.h>

struct vdrv_queue {
	uint16_t size;
	uint64_t desc, avail, used; /* guest physical */
	uint16_t avail_idx;         /* next avail->idx the driver publishes */
	uint16_t last_used;         /* used entries consumed by the driver */
	uint16_t next_desc;         /* descriptors are handed out round-robin */
};

struct vdrv {
	struct guest_memory mem;
	struct loop *loop;
	struct virtio_transport t;
	struct virtio_dev *dev;
	uint64_t brk; /* bump allocator over guest RAM */
	struct vdrv_queue q[VIRTIO_DEV_MAX_QUEUES];
};

/* One buffer of a chain: @len bytes at guest address @gpa, device-writable or not. */
struct vdrv_buf {
	uint64_t gpa;
	uint32_t len;
	bool writable;
};

/* Guest memory of @mem_size bytes (4K pages), a loop, the transport bound to @dev. */
int vdrv_init(struct vdrv *d, struct virtio_dev *dev, uint64_t mem_size);
/* The same in two steps, for devices that need the loop (d->loop) to be made. */
int vdrv_setup(struct vdrv *d, uint64_t mem_size);
int vdrv_bind(struct vdrv *d, struct virtio_dev *dev);
/* Unbinds the device (a reset) and frees memory and loop; the device model is the caller's. */
void vdrv_destroy(struct vdrv *d);
/* Only the transport: before the caller destroys its device model and then calls vdrv_destroy. */
void vdrv_unbind(struct vdrv *d);

/* 32-bit register access, as a vCPU exit delivers it. */
uint32_t vdrv_read(struct vdrv *d, uint64_t off);
void vdrv_write(struct vdrv *d, uint64_t off, uint32_t v);
/* Accesses of any width at any offset (config space, or hostile register accesses). */
void vdrv_read_n(struct vdrv *d, uint64_t off, void *buf, uint32_t len);
void vdrv_write_n(struct vdrv *d, uint64_t off, const void *buf, uint32_t len);

/*
 * Linux's start-up: reset, ACKNOWLEDGE, DRIVER, accept @want & offered, FEATURES_OK (read
 * back). Returns the features agreed, or 0 when the device refused FEATURES_OK.
 */
uint64_t vdrv_negotiate(struct vdrv *d, uint64_t want);
/* Lays out queue @q with @size entries in guest memory and makes it ready. Returns QueueReady. */
uint32_t vdrv_queue_setup(struct vdrv *d, unsigned q, uint16_t size);
void vdrv_driver_ok(struct vdrv *d);
/* negotiate + every queue at @size + DRIVER_OK; returns the status read back. */
uint32_t vdrv_start(struct vdrv *d, uint64_t want, uint16_t size);

/* @len bytes of guest memory aligned to @align (a power of two), zeroed. Aborts when full. */
uint64_t vdrv_alloc(struct vdrv *d, uint64_t len, uint64_t align);
void *vdrv_hva(struct vdrv *d, uint64_t gpa, uint64_t len);

/* Writes a chain of @n buffers and makes it available (no kick). Returns its head. */
uint16_t vdrv_add(struct vdrv *d, unsigned q, const struct vdrv_buf *bufs, unsigned n);
/* QueueNotify, then loop rounds until nothing more is ready. */
void vdrv_kick(struct vdrv *d, unsigned q);
/* Loop rounds for up to @ms until a used element is there; 1 with it, 0 on timeout. */
int vdrv_wait_used(struct vdrv *d, unsigned q, uint32_t *id, uint32_t *len, unsigned ms);
/* Raw ring access for hostile tests. */
void vdrv_set_avail_idx(struct vdrv *d, unsigned q, uint16_t idx);
uint16_t vdrv_used_idx(struct vdrv *d, unsigned q);

#endif
