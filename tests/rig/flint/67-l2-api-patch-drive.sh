#!/bin/sh
# Firecracker's PATCH /drives on a running guest, as Kata and firecracker-containerd use it
# (a placeholder drive whose file is swapped for the real one): flint boots L2 through the
# API (tests/rig/flint/apireq.c) with a 1 MiB placeholder as vdb; once L2 has read it, L1
# PATCHes vdb to a 2 MiB file. L2 (tests/rig/l2/checks/api-patch-drive.sh) must see the new
# capacity (config change interrupt) and the new file's bytes, and its write must land in
# the new file, not the placeholder. Around the swap, the API's answers: refused before
# InstanceStart, a missing file (the placeholder stays), an unknown drive, a field PATCH
# does not take, an interface that does not exist; a rate_limiter alone is taken; GET
# /vm/config shows the new file.
set -eu
# shellcheck source=tests/rig/flint/case-lib.sh
. /rig/lib/case-lib.sh
errs=/tmp/patch.err
sock=/tmp/patch.sock
log=/tmp/patch.log
# refused EXPECT METHOD PATH BODY: a 400 whose answer has EXPECT.
refused() {
    want=$1
    shift
    out=$(req "$@") && fail "$* was taken: $out"
    case $out in *"$want"*) ;; *) fail "$*: '$out', want '$want'" ;; esac
}
# mkimg FILE KiB MARKER: zeros, MARKER at the start.
mkimg() {
    dd if=/dev/zero of="$1" bs=1k count="$2" 2>/dev/null
    printf '%s' "$3" | dd of="$1" conv=notrunc 2>/dev/null
}
mkimg /tmp/patch-root.img 1024 flint-patch-root
mkimg /tmp/patch-old.img 1024 flint-patch-old
mkimg /tmp/patch-new.img 2048 flint-patch-new
printf 'flint-patch-end' | dd of=/tmp/patch-new.img bs=512 seek=4095 conv=notrunc 2>/dev/null
/bin/flint --api-sock "$sock" --no-console --serial-log "$log" --exit-port 0xf4 --timeout 240 \
    2>/tmp/patch.err &
pid=$!
req PUT /boot-source '{"kernel_image_path": "/rig/l2/bzImage", "initrd_path": "/rig/l2/initramfs.cpio.gz", "boot_args": "console=ttyS0 reboot=k panic=-1 pci=off i8042.noaux i8042.nomux i8042.nopnp i8042.dumbkbd rdinit=/init flint.check=api-patch-drive"}' ||
    fail "PUT /boot-source"
req PUT /machine-config '{"vcpu_count": 1, "mem_size_mib": 128}' || fail "PUT /machine-config"
req PUT /drives/first '{"drive_id": "first", "path_on_host": "/tmp/patch-root.img", "is_root_device": false, "is_read_only": true}' ||
    fail "PUT /drives/first"
req PUT /drives/scratch '{"drive_id": "scratch", "path_on_host": "/tmp/patch-old.img", "is_root_device": false, "is_read_only": false}' ||
    fail "PUT /drives/scratch"
refused "not supported before starting the microVM" \
    PATCH /drives/scratch '{"drive_id": "scratch", "path_on_host": "/tmp/patch-new.img"}'
req PUT /actions '{"action_type": "InstanceStart"}' || fail "InstanceStart"
wait_for "flint-l2: patch ready" 900 || fail "L2 never read the placeholder"
refused "/tmp/no-such.img" PATCH /drives/scratch '{"drive_id": "scratch", "path_on_host": "/tmp/no-such.img"}'
refused "Device not found" PATCH /drives/nope '{"drive_id": "nope", "path_on_host": "/tmp/patch-new.img"}'
refused 'unknown field `is_read_only`' PATCH /drives/scratch '{"drive_id": "scratch", "is_read_only": true}'
refused "Device not found" PATCH /network-interfaces/eth0 '{"iface_id": "eth0"}'
req PATCH /drives/scratch '{"drive_id": "scratch", "rate_limiter": {"ops": {"size": 1000, "refill_time": 100}}}' ||
    fail "PATCH rate_limiter"
req PATCH /drives/scratch '{"drive_id": "scratch", "path_on_host": "/tmp/patch-new.img"}' ||
    fail "PATCH path_on_host"
req GET /vm/config | grep -q '"path_on_host":"/tmp/patch-new.img"' ||
    fail "GET /vm/config does not show the new file"
rc=0
wait "$pid" || rc=$?
cat /tmp/patch.err
sed 's/^/  l2| /' "$log" | grep -E 'flint-l2|vdb|Kernel panic|BUG' || true
[ "$rc" = 1 ] || fail "flint exited $rc, want 1 (L2's check wrote 0 to the exit port)"
got=$(dd if=/tmp/patch-new.img bs=512 skip=100 count=1 2>/dev/null | head -c 14)
[ "$got" = flint-patch-l2 ] || fail "L2's write is not in the new file (sector 100: '$got')"
old=$(dd if=/tmp/patch-old.img bs=512 skip=100 count=1 2>/dev/null | tr -d '\000')
[ -z "$old" ] || fail "L2's write reached the placeholder"
[ ! -e "$sock" ] || fail "the API socket is still there"
echo "PATCH /drives: placeholder read, swapped on the running guest, new size and bytes seen, write in the new file"
