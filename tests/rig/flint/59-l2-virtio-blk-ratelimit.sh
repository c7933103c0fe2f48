#!/bin/sh
# flint paces a drive with Firecracker's rate_limiter: L2 reads 1 MiB from a disk limited
# to 256 KiB/s (bandwidth bucket 64 KiB refilled every 250 ms, full at start) and measures
# its throughput, which must be within 10 % of the limit. An unlimited disk beside it
# shows the limit, not the nested guest, is what paces the first.
set -eu
dd if=/dev/urandom of=/tmp/limited.img bs=1M count=2 2>/dev/null
dd if=/dev/urandom of=/tmp/unlimited.img bs=1M count=4 2>/dev/null
exec /rig/lib/l2-virtio.sh virtio-ratelimit ratelimit '"drives": [
    {"drive_id": "slow", "path_on_host": "/tmp/limited.img", "is_root_device": false,
     "rate_limiter": {"bandwidth": {"size": 65536, "refill_time": 250}}},
    {"drive_id": "fast", "path_on_host": "/tmp/unlimited.img", "is_root_device": false}]'
