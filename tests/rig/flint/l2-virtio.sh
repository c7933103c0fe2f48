#!/bin/sh
# Rig case helper: flint (inside L1) boots L2 with virtio devices described in
# Firecracker's schema; L2's init runs the check named by flint.check= and answers through
# the CI exit port (0 = pass). Usage: l2-virtio.sh NAME CHECK 'JSON SECTIONS'
# JSON SECTIONS: top-level config members, e.g. '"entropy": {}'. Env L2_FLINT_ARGS: more flags.
set -eu
name=$1
check=$2
sections=$3
# A Firecracker config file must have "drives" (its VmmConfig has no default for it).
case $sections in
*'"drives"'*) ;;
*) sections="\"drives\": [], $sections" ;;
esac
cfg=/tmp/$name.json
cat >"$cfg" <<JSON
{
  "boot-source": {
    "kernel_image_path": "/rig/l2/bzImage",
    "initrd_path": "/rig/l2/initramfs.cpio.gz",
    "boot_args": "console=ttyS0 reboot=k panic=-1 pci=off i8042.noaux i8042.nomux i8042.nopnp i8042.dumbkbd rdinit=/init flint.want_cpus=1 flint.want_mem_mib=128 flint.check=$check"
  },
  "machine-config": {"vcpu_count": 1, "mem_size_mib": 128},
  $sections
}
JSON
rc=0
# shellcheck disable=SC2086 # L2_FLINT_ARGS: more of flint's flags, split on spaces
/bin/flint --config-file "$cfg" ${L2_FLINT_ARGS:-} --exit-port 0xf4 --timeout 240 --serial-log /tmp/$name.log \
    --no-console 2>/tmp/$name.err || rc=$?
cat /tmp/$name.err
sed 's/^/  l2| /' /tmp/$name.log | grep -E 'flint-l2|virtio|Kernel panic|BUG' || true
if [ "$rc" -ne 1 ]; then
    echo "flint exited $rc, want 1 (L2's check $check wrote 0 to the exit port)"
    tail -n 30 /tmp/$name.log
    exit 1
fi
