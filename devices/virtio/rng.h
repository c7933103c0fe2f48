/* virtio-rng (entropy): the guest's requests filled from the host's getrandom(). */
#ifndef FLINT_VIRTIO_RNG_H
#define FLINT_VIRTIO_RNG_H

#include "devices/virtio/device.h"

#include <stdint.h>

#define VIRTIO_RNG_SEGS 16

struct virtio_rng {
	struct virtio_dev dev; /* first: the transport sees this */
	struct virtqueue_seg segs[VIRTIO_RNG_SEGS];
	uint64_t bytes; /* handed to the guest, for counters and tests */
};

/* One request queue; the name says which device it is in logs. */
void virtio_rng_init(struct virtio_rng *r);

#endif
