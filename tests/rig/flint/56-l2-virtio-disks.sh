#!/bin/sh
# flint gives L2 a data disk and a read-only disk (Firecracker's drives[], config order =
# vda, vdb): the guest writes a pattern to vda and powers off; the bytes are in the image.
# vdb is read-only to the guest and its image is unchanged after a write attempt.
set -eu
dd if=/dev/zero of=/tmp/data.img bs=1M count=4 2>/dev/null
dd if=/dev/urandom of=/tmp/ro.img bs=1M count=1 2>/dev/null
ro_before=$(md5sum </tmp/ro.img)
/rig/lib/l2-virtio.sh virtio-disks disks '"drives": [
    {"drive_id": "data", "path_on_host": "/tmp/data.img", "is_root_device": false},
    {"drive_id": "ro", "path_on_host": "/tmp/ro.img", "is_root_device": false, "is_read_only": true}]'
for sector in 0 1000 8191; do
    got=$(dd if=/tmp/data.img bs=512 skip=$sector count=1 2>/dev/null | head -c 24)
    want=$(printf 'flint-data-sector-%05d' $sector)
    [ "$got" = "$want" ] || { echo "sector $sector holds '$got', want '$want'"; exit 1; }
done
[ "$(md5sum </tmp/ro.img)" = "$ro_before" ] || { echo "the read-only image changed"; exit 1; }
echo "data disk holds the guest's pattern; read-only disk unchanged"
