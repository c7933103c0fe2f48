#!/bin/sh
# Firecracker's API driven as its Go SDK drives it (tests/rig/flint/apireq.c stands in for
# curl): readiness on GET /machine-config, logger, machine-config, boot-source, a drive,
# InstanceStart; the instance
# state through GET /; PATCH /vm pauses the guest (its console stops ticking) and resumes
# it (ticks again); 10,000 requests from 8 clients all answered with no fd left behind;
# SendCtrlAltDel makes L2's Linux reboot, which with reboot=k ends flint
# with 0; the socket file is gone afterwards.
set -eu
# shellcheck source=tests/rig/flint/case-lib.sh
. /rig/lib/case-lib.sh
errs='/tmp/api.err /tmp/api-fc.log'
sock=/tmp/api.sock
log=/tmp/api.log
size() { wc -c <"$log"; }
dd if=/dev/zero of=/tmp/api-data.img bs=1k count=1024 2>/dev/null
/bin/flint --api-sock "$sock" --no-console --serial-log "$log" --timeout 300 2>/tmp/api.err &
pid=$!
# The Go SDK's order: wait for the socket with GET /machine-config, the logger first (flint's
# log goes to its file from then on), then machine, boot source, drives; then the start.
n=0
until req GET /machine-config >/dev/null 2>&1; do
    n=$((n + 1))
    [ "$n" -lt 50 ] || fail "the API never answered GET /machine-config"
    sleep 0.1
done
req GET / | grep -q '"state":"Not started"' || fail "GET / before the start"
req PUT /logger '{"log_path": "/tmp/api-fc.log", "level": "Info", "show_level": true, "show_log_origin": false}' ||
    fail "PUT /logger"
req PUT /machine-config '{"vcpu_count": 1, "mem_size_mib": 128}' || fail "PUT /machine-config"
req PUT /boot-source '{"kernel_image_path": "/rig/l2/bzImage", "initrd_path": "/rig/l2/initramfs.cpio.gz", "boot_args": "console=ttyS0 reboot=k panic=-1 pci=off i8042.noaux i8042.nomux i8042.nopnp i8042.dumbkbd rdinit=/init flint.check=api"}' ||
    fail "PUT /boot-source"
req PUT /drives/data '{"drive_id": "data", "path_on_host": "/tmp/api-data.img", "is_root_device": false, "is_read_only": false}' ||
    fail "PUT /drives/data"
req PUT /actions '{"action_type": "InstanceStart"}' || fail "InstanceStart"
req GET / | grep -q '"state":"Running"' || fail "GET / after the start"
req PUT /boot-source '{"kernel_image_path": "/rig/l2/bzImage"}' | grep -q "not supported after starting" ||
    fail "PUT /boot-source after the start was not refused"
wait_for "flint-l2: tick 3" 900 || fail "L2 never ticked"
req PATCH /vm '{"state": "Paused"}' || fail "PATCH /vm Paused"
req GET / | grep -q '"state":"Paused"' || fail "GET / while paused"
sleep 1
before=$(size)
sleep 3
[ "$(size)" = "$before" ] || fail "the console grew while paused ($before -> $(size) bytes)"
req PATCH /vm '{"state": "Resumed"}' || fail "PATCH /vm Resumed"
n=0
while [ "$(size)" = "$before" ]; do
    n=$((n + 1))
    [ "$n" -lt 300 ] || fail "no tick after the resume"
    sleep 0.2
done
# Load while the guest runs: 10,000 requests from 8 clients, every one answered 200, no fd
# left behind.
/rig/bin/apiload "$sock" 8 10000 "$pid" || fail "the API under load"
req PUT /actions '{"action_type": "SendCtrlAltDel"}' || fail "SendCtrlAltDel"
rc=0
wait "$pid" || rc=$?
cat /tmp/api.err /tmp/api-fc.log
[ "$rc" = 0 ] || fail "flint exited $rc after Ctrl-Alt-Del, want 0 (reboot=k)"
[ ! -e "$sock" ] || fail "the API socket is still there"
grep -q "VM paused" /tmp/api-fc.log || fail "PUT /logger's file did not get flint's log"
grep -q "guest requested a reset" /tmp/api-fc.log || fail "no reset logged"
echo "API: configured, started, paused (console still for 3 s), resumed, Ctrl-Alt-Del -> exit 0"
