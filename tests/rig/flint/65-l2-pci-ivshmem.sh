#!/bin/sh
# A 64-bit BAR too large for the window below 4 GiB: QEMU's ivshmem-plain (1af4:1110, BAR2
# 1 GiB of shared memory, 64-bit) assigned in pin mode. L1 writes a pattern into the BAR,
# L2 (tests/rig/l2/checks/ivshmem.sh) finds the BAR above 4 GiB, finds L1's pattern through
# it at the start, middle and last page, and writes its own; L1 then finds L2's. Both ends
# use /bin/barpat (tests/rig/l2/barpat.c) through sysfs resource2.
set -eu
# shellcheck source=tests/rig/flint/case-lib.sh
. /rig/lib/case-lib.sh
bdf=
for d in /sys/bus/pci/devices/*; do
    if [ "$(cat "$d/vendor")" = 0x1af4 ] && [ "$(cat "$d/device")" = 0x1110 ]; then
        bdf=${d##*/}
    fi
done
[ -n "$bdf" ] || { echo "no ivshmem device in L1"; exit 1; }
/rig/bin/barpat 0x1af4 0x1110 2 fill 1
name=pci-ivshmem
l2_config $name flint.check=ivshmem "\"flint\": {\"vfio-devices\": [{\"id\": \"ivshmem\", \"bdf\": \"$bdf\", \"dma_mode\": \"pin\"}]}"
l2_run $name 'flint-l2|barpat|Kernel panic|BUG|WARNING' "L2's ivshmem check wrote 0 to the exit port" \
    --log-level info
grep -q "BAR2, 64-bit, 1048576 KiB, at guest 0x1" /tmp/$name.err ||
    { echo "flint did not place BAR2 above 4 GiB"; exit 1; }
/rig/bin/barpat 0x1af4 0x1110 2 check 2
echo "ivshmem's 1 GiB BAR above 4 GiB in L2: L1's bytes seen there, L2's bytes seen in L1"
