#!/bin/sh
# seccomp per thread: flint started with its default (--seccomp on) runs L2 with a drive
# (two I/O threads) and two vCPUs; while L2 runs, every thread of flint shows Seccomp 2
# (filter mode) and Seccomp_filters 1 in /proc/<pid>/task/*/status: each thread has exactly
# one filter, its own (the loop's, a vCPU's, an I/O worker's), none stacked on another's.
# L2 writes its drive through the filtered I/O threads; Ctrl-Alt-Del (API) ends flint
# with 0 through the filtered loop. Then --seccomp off (one vCPU, to fit the case's time):
# every thread shows Seccomp 0.
set -eu
# shellcheck source=tests/rig/flint/case-lib.sh
. /rig/lib/case-lib.sh
l2_args="$l2_cmdline pci=off flint.check=caps"
errs='/tmp/seccomp-*.err'
# check_threads PID MODE FILTERS MIN: every thread's Seccomp and Seccomp_filters, at least
# MIN threads (the loop, two I/O threads for the drive, the vCPUs); the names seen.
check_threads() {
    n=0
    names=
    for t in /proc/"$1"/task/*; do
        n=$((n + 1))
        st=$t/status
        [ "$(field Seccomp "$st")" = "$2" ] || fail "$st: Seccomp $(field Seccomp "$st"), want $2"
        [ "$(field Seccomp_filters "$st")" = "$3" ] ||
            fail "$st: Seccomp_filters $(field Seccomp_filters "$st"), want $3"
        names="$names $(cat "$t"/comm)"
    done
    [ "$n" -ge "$4" ] || fail "flint has $n threads ($names), want at least $4"
    echo "  $n threads of flint ($names ): Seccomp $2, Seccomp_filters $3"
}
mkimg() { dd if=/dev/zero of="$1" bs=1k count=1024 2>/dev/null; }
# run MODE FILTERS VCPUS [flint args]: a VM, its threads checked, Ctrl-Alt-Del, exit 0.
run() {
    mode=$1 filters=$2 vcpus=$3
    shift 3
    log=/tmp/seccomp-$mode.log
    sock=/tmp/seccomp-$mode.sock
    mkimg /tmp/seccomp-$mode.img
    cat >/tmp/seccomp-$mode.json <<JSON
{
  "boot-source": {"kernel_image_path": "/rig/l2/bzImage", "initrd_path": "/rig/l2/initramfs.cpio.gz",
                  "boot_args": "$l2_args"},
  "drives": [{"drive_id": "data", "path_on_host": "/tmp/seccomp-$mode.img", "is_root_device": false, "is_read_only": false}],
  "machine-config": {"vcpu_count": $vcpus, "mem_size_mib": 128}
}
JSON
    # --timeout 150, under wait_for's 180 s: an L2 that hangs (seen here, under nested TCG)
    # is stopped by flint, which says where each vCPU was in the .err that fail shows.
    /bin/flint --config-file /tmp/seccomp-$mode.json --api-sock "$sock" --no-console \
        --serial-log "$log" --timeout 150 "$@" 2>/tmp/seccomp-$mode.err &
    pid=$!
    wait_for "flint-l2: caps ready" 900 || fail "L2 never got ready"
    check_threads "$pid" "$mode" "$filters" $((3 + vcpus))
    req PUT /actions '{"action_type": "SendCtrlAltDel"}' >/dev/null || fail "SendCtrlAltDel"
    rc=0
    wait "$pid" || rc=$?
    [ "$rc" = 0 ] || fail "flint exited $rc after Ctrl-Alt-Del, want 0 (reboot=k)"
    cat /tmp/seccomp-$mode.err
    [ "$(head -c 17 /tmp/seccomp-$mode.img)" = flint-caps-marker ] ||
        fail "L2's write is not in the image"
}
start=$(date +%s)
run 2 1 2
grep -q "seccomp: on: every thread has its filter (loop, 2 vcpu, I/O)" /tmp/seccomp-2.err ||
    fail "the filters are not logged"
echo "1. default (on): every thread filtered by its own list, L2 wrote its drive, exit 0" \
    "($(($(date +%s) - start)) s)"
run 0 0 1 --seccomp off
grep -q "seccomp: off: no filter" /tmp/seccomp-0.err || fail "--seccomp off is not logged"
echo "2. --seccomp off: no thread filtered, exit 0 ($(($(date +%s) - start)) s)"
