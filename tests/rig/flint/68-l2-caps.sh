#!/bin/sh
# Least privilege: flint, started as root, drops every capability once the VM's files and
# devices are open. While L2 runs, every thread of flint (main, the drive's I/O threads,
# the vCPU) shows CapEff, CapPrm, CapInh, CapBnd and CapAmb 0 and NoNewPrivs 1 in
# /proc/<pid>/task/*/status, and the VM still works to its exit code: L2 writes its drive
# through threads started after the drop, and Ctrl-Alt-Del (API) ends flint with 0.
#  1. --config-file with --uid 1000 --gid 1000: the Uid and Gid lines show 1000; flint,
#     now that user, removes its API socket at exit from a directory that user owns.
#  2. API only: flint keeps root's capabilities until InstanceStart and drops them there;
#     a drive PUT before the start may be a file only root's DAC override opens; after it,
#     PATCH /drives opens a file root owns (0600) but not one of another user (0600):
#     flint, without CAP_DAC_OVERRIDE, opens what its own uid may (Firecracker's jailer).
set -eu
# shellcheck source=tests/rig/flint/case-lib.sh
. /rig/lib/case-lib.sh
l2_args="$l2_cmdline pci=off flint.check=caps"
errs='/tmp/caps-*.err'
# check_threads PID ID: every thread of PID has no capability, no_new_privs, uid and gid ID.
check_threads() {
    n=0
    for st in /proc/"$1"/task/*/status; do
        n=$((n + 1))
        for k in CapEff CapPrm CapInh CapBnd CapAmb; do
            v=$(field $k "$st")
            [ "$v" = 0000000000000000 ] || fail "$st: $k $v, want 0"
        done
        [ "$(field NoNewPrivs "$st")" = 1 ] || fail "$st: NoNewPrivs $(field NoNewPrivs "$st")"
        ids=$(awk '$1 == "Uid:" || $1 == "Gid:" { print $1, $2, $3, $4, $5 }' "$st" | tr '\n' ' ')
        [ "$ids" = "Uid: $2 $2 $2 $2 Gid: $2 $2 $2 $2 " ] || fail "$st: $ids, want uid and gid $2"
    done
    # main, two I/O threads for the drive, one vCPU: all of them checked
    [ "$n" -ge 4 ] || fail "flint has $n threads, want at least 4"
    echo "  $n threads of flint: no capabilities, no_new_privs, uid/gid $2"
}
# mkimg FILE OWNER: a 1 MiB image, mode 0600, owned by OWNER.
mkimg() {
    dd if=/dev/zero of="$1" bs=1k count=1024 2>/dev/null
    chown "$2" "$1"
    chmod 600 "$1"
}
# end_vm PID: Ctrl-Alt-Del; flint must end with 0 (reboot=k).
end_vm() {
    req PUT /actions '{"action_type": "SendCtrlAltDel"}' >/dev/null || fail "SendCtrlAltDel"
    rc=0
    wait "$1" || rc=$?
    [ "$rc" = 0 ] || fail "flint exited $rc after Ctrl-Alt-Del, want 0 (reboot=k)"
}
start=$(date +%s)

# 1. --config-file, --uid/--gid.
log=/tmp/caps-1.log
mkdir -p /tmp/caps-run
chown 1000:1000 /tmp/caps-run
chmod 700 /tmp/caps-run
sock=/tmp/caps-run/api.sock
mkimg /tmp/caps-1.img 0:0
cat >/tmp/caps-1.json <<JSON
{
  "boot-source": {"kernel_image_path": "/rig/l2/bzImage", "initrd_path": "/rig/l2/initramfs.cpio.gz",
                  "boot_args": "$l2_args"},
  "drives": [{"drive_id": "data", "path_on_host": "/tmp/caps-1.img", "is_root_device": false, "is_read_only": false}],
  "machine-config": {"vcpu_count": 1, "mem_size_mib": 128}
}
JSON
/bin/flint --config-file /tmp/caps-1.json --api-sock "$sock" --uid 1000 --gid 1000 --no-console \
    --serial-log "$log" --timeout 240 2>/tmp/caps-1.err &
pid=$!
wait_for "flint-l2: caps ready" 900 || fail "L2 never got ready"
check_threads "$pid" 1000
end_vm "$pid"
cat /tmp/caps-1.err
grep -q "privileges: capabilities dropped .*now uid 1000 gid 1000, no supplementary groups; kept none" \
    /tmp/caps-1.err || fail "the drop is not logged"
[ "$(head -c 17 /tmp/caps-1.img)" = flint-caps-marker ] || fail "L2's write is not in the image"
[ ! -e "$sock" ] || fail "flint (uid 1000) did not remove its API socket"
echo "1. --uid/--gid: dropped, uid/gid 1000, L2 wrote its drive, exit 0 ($(($(date +%s) - start)) s)"

# 2. API only: privileged until InstanceStart.
log=/tmp/caps-2.log
sock=/tmp/caps-2.sock
mkimg /tmp/caps-2.img 1000:1000   # root opens it before the start: DAC override
mkimg /tmp/caps-2-root.img 0:0
mkimg /tmp/caps-2-other.img 1000:1000
/bin/flint --api-sock "$sock" --no-console --serial-log "$log" --timeout 240 2>/tmp/caps-2.err &
pid=$!
req GET /machine-config >/dev/null || fail "the API never answered"
[ "$(field CapEff /proc/$pid/status)" != 0000000000000000 ] ||
    fail "flint dropped its capabilities before InstanceStart"
req PUT /machine-config '{"vcpu_count": 1, "mem_size_mib": 128}' >/dev/null || fail "PUT /machine-config"
req PUT /boot-source "{\"kernel_image_path\": \"/rig/l2/bzImage\", \"initrd_path\": \"/rig/l2/initramfs.cpio.gz\", \"boot_args\": \"$l2_args\"}" \
    >/dev/null || fail "PUT /boot-source"
req PUT /drives/data '{"drive_id": "data", "path_on_host": "/tmp/caps-2.img", "is_root_device": false, "is_read_only": false}' \
    >/dev/null || fail "PUT /drives/data (uid 1000's 0600 file, before the start)"
req PUT /actions '{"action_type": "InstanceStart"}' >/dev/null || fail "InstanceStart"
wait_for "flint-l2: caps ready" 900 || fail "L2 never got ready"
check_threads "$pid" 0
out=$(req PATCH /drives/data '{"drive_id": "data", "path_on_host": "/tmp/caps-2-other.img"}') &&
    fail "PATCH /drives to uid 1000's 0600 file was taken: $out"
case $out in *"Permission denied"*) ;; *) fail "PATCH /drives to uid 1000's file: $out" ;; esac
req PATCH /drives/data '{"drive_id": "data", "path_on_host": "/tmp/caps-2-root.img"}' >/dev/null ||
    fail "PATCH /drives to root's 0600 file"
end_vm "$pid"
cat /tmp/caps-2.err
[ "$(head -c 17 /tmp/caps-2.img)" = flint-caps-marker ] || fail "L2's write is not in the image"
echo "2. API: privileged until InstanceStart, then dropped; PATCH /drives opens root's file," \
    "not another user's; exit 0 ($(($(date +%s) - start)) s)"
