#!/bin/sh
# flint boots L2 with QEMU's edu device assigned: VFIO cdev bind through KVM's VFIO
# device, DMA mode auto -> pin (edu has no PRI), guest RAM mapped before the guest runs.
set -eu
bdf=$(/rig/lib/edu-bdf.sh)
/rig/lib/l2-boot.sh 1 128 "$bdf"
grep -q "DMA mode pin" /tmp/flint-1.err || { echo "flint did not report pin mode for $bdf"; exit 1; }
