#!/bin/sh
# Asked for dma_mode "fault", edu (no PRI) is refused before the guest runs: exit 70 and
# one line saying why. (auto falls back to pin and says so: case 52.)
set -eu
bdf=$(/rig/lib/edu-bdf.sh)
cfg=/tmp/edu-fault.json
cat >"$cfg" <<JSON
{
  "boot-source": {"kernel_image_path": "/rig/l2/bzImage", "initrd_path": "/rig/l2/initramfs.cpio.gz",
                  "boot_args": "console=ttyS0 reboot=k panic=-1 rdinit=/init"},
  "drives": [],
  "machine-config": {"vcpu_count": 1, "mem_size_mib": 128},
  "flint": {"vfio-devices": [{"id": "edu", "bdf": "$bdf", "dma_mode": "fault"}]}
}
JSON
rc=0
/bin/flint --config-file "$cfg" --exit-port 0xf4 --timeout 60 --no-console 2>/tmp/edu-fault.err || rc=$?
cat /tmp/edu-fault.err
[ "$rc" = 70 ] || { echo "flint exited $rc, want 70"; exit 1; }
grep -q "no PRI capability" /tmp/edu-fault.err || { echo "no line saying edu has no PRI"; exit 1; }
grep -q "booting" /tmp/edu-fault.err && { echo "the guest was started anyway"; exit 1; }
echo "fault mode for edu refused before boot, with the reason"
