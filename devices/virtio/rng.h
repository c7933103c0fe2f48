/* virtio-rng (entropy): the guest's requests filled from the host's getrandom(). */
#ifndef FLINT_VIRTIO_RNG_H
#define FLINT_VIRTIO_RNG_H

#include "devices/virtio/device.h"
#include "devices/virtio/rate_limiter.h"

#include <stdint.h>

#define VIRTIO_RNG_SEGS 16

struct virtio_rng {
	struct virtio_dev dev; /* first: the transport sees this */
	struct virtqueue_seg segs[VIRTIO_RNG_SEGS];
	uint64_t bytes; /* handed to the guest, for counters and tests */
	struct ratelimit limit;
	struct ratelimit_timer timer;
	bool held;                    /* a chain over the rate limit waits for the timer */
	struct virtqueue_chain chain; /* the chain being served (or held) */
	uint64_t throttled;           /* requests the limiter held, a counter */
};

/* One request queue; @limiter (NULL: unlimited) paces it with timers on @loop. */
void virtio_rng_init(struct virtio_rng *r, const struct rate_limiter *limiter, struct loop *loop);
/* After the transport is destroyed, on the loop thread. */
void virtio_rng_destroy(struct virtio_rng *r);

#endif
