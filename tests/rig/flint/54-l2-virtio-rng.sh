#!/bin/sh
# flint gives L2 a virtio-rng (Firecracker's "entropy"): the guest's hwrng is virtio_rng
# and reads return bytes.
exec /rig/lib/l2-virtio.sh rng rng '"entropy": {}'
