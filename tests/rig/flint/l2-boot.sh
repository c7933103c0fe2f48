#!/bin/sh
# Rig case: flint (inside L1) boots the rig kernel as a nested L2 guest with an initrd and
# a command line, for 1 and 2 vCPUs; L2's init checks nproc and MemTotal and answers
# through the CI exit port. Usage: l2-boot.sh VCPUS MEM_MIB [VFIO_DEV [IOMMUFD_FD]]
# With VFIO_DEV (a PCI address or a /dev/vfio/devices path) the VM also gets that device
# assigned (DMA mode auto); with IOMMUFD_FD
# flint adopts that already open iommufd instead of opening /dev/iommu itself.
set -eu
# shellcheck source=tests/rig/flint/case-lib.sh
. /rig/lib/case-lib.sh
vcpus=$1
mem=$2
flint_json=
if [ $# -ge 3 ]; then
    iommu=
    [ $# -ge 4 ] && iommu="\"iommu\": {\"fd\": $4}, "
    key=bdf
    case $3 in /*) key=path ;; esac
    flint_json=", \"flint\": {$iommu\"vfio-devices\": [{\"id\": \"dev0\", \"$key\": \"$3\"}]}"
fi
cfg=/tmp/flint-$vcpus.json
cat >"$cfg" <<JSON
{
  "boot-source": {
    "kernel_image_path": "/rig/l2/bzImage",
    "initrd_path": "/rig/l2/initramfs.cpio.gz",
    "boot_args": "$l2_cmdline pci=off flint.want_cpus=$vcpus flint.want_mem_mib=$mem"
  },
  "drives": [],
  "machine-config": {"vcpu_count": $vcpus, "mem_size_mib": $mem}$flint_json
}
JSON
l2_run "flint-$vcpus" 'flint-l2|Kernel panic|BUG|Linux version' "L2 init wrote 0 to the exit port"
