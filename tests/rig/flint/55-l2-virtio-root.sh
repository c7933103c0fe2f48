#!/bin/sh
# flint boots L2 from a read-only ext4 root disk (Firecracker's is_root_device +
# is_read_only, no initrd): Linux mounts /dev/vda as / and runs /init-check from it.
set -eu
cfg=/tmp/virtio-root.json
cat >"$cfg" <<JSON
{
  "boot-source": {
    "kernel_image_path": "/rig/l2/bzImage",
    "boot_args": "console=ttyS0 reboot=k panic=-1 pci=off i8042.noaux i8042.nomux i8042.nopnp i8042.dumbkbd init=/init-check"
  },
  "drives": [{"drive_id": "rootfs", "path_on_host": "/rig/l2/rootfs.ext4",
              "is_root_device": true, "is_read_only": true}],
  "machine-config": {"vcpu_count": 1, "mem_size_mib": 128}
}
JSON
before=$(md5sum </rig/l2/rootfs.ext4)
rc=0
/bin/flint --config-file "$cfg" --exit-port 0xf4 --timeout 240 --serial-log /tmp/virtio-root.log \
    --no-console 2>/tmp/virtio-root.err || rc=$?
cat /tmp/virtio-root.err
sed 's/^/  l2| /' /tmp/virtio-root.log | grep -E 'flint-l2|vda|EXT4|Kernel panic|BUG' || true
if [ "$rc" -ne 1 ]; then
    echo "flint exited $rc, want 1 (the disk's /init-check wrote 0 to the exit port)"
    tail -n 30 /tmp/virtio-root.log
    exit 1
fi
[ "$(md5sum </rig/l2/rootfs.ext4)" = "$before" ] || { echo "the read-only root image changed"; exit 1; }
