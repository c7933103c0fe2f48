#!/bin/sh
# As 52, but the way orchestrators do it: they open /dev/iommu and hand flint the fd,
# and name the device by its cdev path rather than its PCI address.
set -eu
bdf=$(/rig/lib/edu-bdf.sh)
node=$(ls /sys/bus/pci/devices/"$bdf"/vfio-dev/)
exec 7<>/dev/iommu
/rig/lib/l2-boot.sh 1 128 "/dev/vfio/devices/$node" 7
grep -q "dev0 (/dev/vfio/devices/$node): DMA mode pin" /tmp/flint-1.err ||
    { echo "flint did not report pin mode for $node"; exit 1; }
grep -q "adopted the inherited iommufd, fd 7" /tmp/flint-1.err || { echo "flint did not use fd 7"; exit 1; }
