#!/bin/sh
# As 52, but the way orchestrators do it: they open /dev/iommu and hand flint the fd.
set -eu
bdf=
for d in /sys/bus/pci/devices/*; do
    [ "$(cat "$d/device")" = 0x11e8 ] && bdf=${d##*/}
done
[ -n "$bdf" ] || { echo "no edu device"; exit 1; }
exec 7<>/dev/iommu
/rig/lib/l2-boot.sh 1 128 "$bdf" 7
grep -q "DMA mode pin" /tmp/flint-1.err || { echo "flint did not report pin mode for $bdf"; exit 1; }
grep -q "adopted the inherited iommufd, fd 7" /tmp/flint-1.err || { echo "flint did not use fd 7"; exit 1; }
