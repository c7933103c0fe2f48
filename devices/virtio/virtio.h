/*
 * Constants of the virtio 1.x specification that flint's virtio code shares: feature bits,
 * device status bits, and the split virtqueue layout (section 2.7). Everything in guest
 * memory is little-endian.
 */
#ifndef FLINT_VIRTIO_H
#define FLINT_VIRTIO_H

#include <stdint.h>

/* Device-independent feature bits (section 6). */
#define VIRTIO_F_INDIRECT_DESC 28
#define VIRTIO_F_EVENT_IDX     29
#define VIRTIO_F_VERSION_1     32

#define VIRTIO_FEATURE(bit) (1ULL << (bit))

/* Device status bits (section 2.1). */
#define VIRTIO_STATUS_ACKNOWLEDGE        1
#define VIRTIO_STATUS_DRIVER             2
#define VIRTIO_STATUS_DRIVER_OK          4
#define VIRTIO_STATUS_FEATURES_OK        8
#define VIRTIO_STATUS_DEVICE_NEEDS_RESET 64
#define VIRTIO_STATUS_FAILED             128

/* Split virtqueues: the largest queue size, a power of two whose indices fit 16 bits. */
#define VIRTQ_MAX_SIZE 32768

/* Minimum alignment of the three areas of a split virtqueue (section 2.7). */
#define VIRTQ_DESC_ALIGN  16
#define VIRTQ_AVAIL_ALIGN 2
#define VIRTQ_USED_ALIGN  4

/* Descriptor flags. */
#define VIRTQ_DESC_F_NEXT     1
#define VIRTQ_DESC_F_WRITE    2
#define VIRTQ_DESC_F_INDIRECT 4

/* Available ring flags (driver to device), used ring flags (device to driver). */
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1
#define VIRTQ_USED_F_NO_NOTIFY     1

/* One descriptor, as the guest lays it out (little-endian). */
struct virtq_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};
_Static_assert(sizeof(struct virtq_desc) == 16, "virtq_desc is 16 bytes");

/* One used ring element. */
struct virtq_used_elem {
	uint32_t id;
	uint32_t len;
};
_Static_assert(sizeof(struct virtq_used_elem) == 8, "virtq_used_elem is 8 bytes");

/*
 * Sizes of the areas for @size entries; they include used_event and avail_event, which
 * the spec counts whether or not VIRTIO_F_EVENT_IDX is negotiated.
 */
#define VIRTQ_DESC_BYTES(size)  (16ULL * (size))
#define VIRTQ_AVAIL_BYTES(size) (6ULL + 2ULL * (size))
#define VIRTQ_USED_BYTES(size)  (6ULL + 8ULL * (size))

/*
 * True when moving an event index from @old to @new_idx crossed @event: the spec's
 * vring_need_event(), all in 16-bit wrapping arithmetic.
 */
static inline int vring_need_event(uint16_t event, uint16_t new_idx, uint16_t old)
{
	return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old);
}

#endif
