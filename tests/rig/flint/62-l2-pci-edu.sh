#!/bin/sh
# flint boots L2 with QEMU's edu device assigned in pin mode and a command line without
# pci=off: L2's Linux finds flint's PCI bus through configuration mechanism #1 (no ACPI, no
# firmware) and its check (tests/rig/l2/checks/edu.sh -> /bin/edu) finds 1234:11e8 in sysfs,
# enables memory decoding and bus mastering through its config space, maps BAR0 through
# resource0, checks the identification, liveness and factorial registers, runs edu DMA both
# ways between mlock'ed pages (addresses from /proc/self/pagemap) and edu's buffer, and
# delivers an MSI by hand; then a DMA from 0xf000000, outside L2's RAM: L1's IOMMU logs the
# fault, flint stays up, and the round trip works again. flint runs with --log-level debug;
# its log is shown.
set -eu
# shellcheck source=tests/rig/flint/case-lib.sh
. /rig/lib/case-lib.sh
bdf=$(/rig/lib/edu-bdf.sh)
name=pci-edu
l2_config $name flint.check=edu "\"flint\": {\"vfio-devices\": [{\"id\": \"edu\", \"bdf\": \"$bdf\", \"dma_mode\": \"pin\"}]}"
l2_run $name 'flint-l2|Kernel panic|BUG|WARNING' "L2's edu check wrote 0 to the exit port" --log-level debug
grep -q "DMA mode pin" /tmp/$name.err || { echo "flint did not report pin mode for $bdf"; exit 1; }
grep -q "flint-l2: edu: DMA edu -> RAM" /tmp/$name.log || { echo "L2 ran no edu DMA"; exit 1; }
dmesg | grep -i dmar | tail -n 5
dmesg | grep -q "fault addr 0xf000000" ||
    { echo "L1's IOMMU logged no fault for L2's DMA from outside its RAM (0xf000000)"; exit 1; }
grep -q "flint-l2: edu: the device works after the refused DMA" /tmp/$name.log ||
    { echo "L2 did not finish the DMA after the refused one"; exit 1; }
echo "edu on L2's PCI bus: registers, factorial, DMA both ways, an MSI, and a DMA from" \
    "outside RAM refused by the IOMMU with flint and the device still up"
