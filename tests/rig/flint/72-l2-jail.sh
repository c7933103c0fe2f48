#!/bin/sh
# The jail (--chroot): flint forks into new PID, mount and UTS namespaces (this kernel has
# no System V IPC or POSIX message queues, so no IPC namespace: the log says so) and,
# once L2's files are open, makes DIR its root. Checked from outside while L2 runs:
# /proc/<child>/root is DIR (its inode), the namespace links differ from the parent's, the child is
# pid 1 of its namespace, /proc/<child>/limits has no-file 512, core 0, memlock 0; L2
# writes its drive (I/O threads started inside the jail).
#  1. --config-file with --api-sock in a directory of its own (bound into DIR): the API
#     answers through the outside path; PATCH /drives resolves its path inside DIR (a file
#     only DIR has is taken, a host file outside DIR is not there); Ctrl-Alt-Del ends the
#     VM and the parent exits 0; the API socket is removed.
#  2. API only, InstanceStart, then SIGTERM to the parent: forwarded, the VM ends, 143.
#  3. --cgroup on this kernel (no cgroups at all): 70 and the reason, before any VM.
set -eu
# shellcheck source=tests/rig/flint/case-lib.sh
. /rig/lib/case-lib.sh
l2_args="$l2_cmdline pci=off flint.check=caps"
errs='/tmp/jail-*.err'
root=/tmp/jail/root
# The jailed child of the parent $1 (by PPid: this kernel has no /proc/<pid>/task/*/children).
child_of() {
    n=0
    until c=$(grep -l "^PPid:[[:space:]]*$1\$" /proc/[0-9]*/status 2>/dev/null | cut -d/ -f3) &&
        [ -n "$c" ]; do
        n=$((n + 1))
        [ "$n" -lt 100 ] || return 1
        sleep 0.1
    done
    echo $c
}
limit() { awk -v k="$1" 'index($0, k) == 1 { print $(NF - 2), $(NF - 1) }' /proc/"$2"/limits; }
# check_jail PARENT CHILD: root, namespaces, pid 1, limits.
check_jail() {
    # Its root is in a mount namespace of its own: readlink says "/"; the inode tells.
    r=$(stat -L -c %d:%i /proc/"$2"/root)
    [ "$r" = "$(stat -c %d:%i "$root")" ] || fail "/proc/$2/root is $r, not $root's inode"
    [ -e /proc/"$2"/root/data2.img ] || fail "/proc/$2/root has no data2.img"
    for ns in pid mnt uts; do
        a=$(readlink /proc/"$1"/ns/$ns)
        b=$(readlink /proc/"$2"/ns/$ns)
        [ "$a" != "$b" ] || fail "$ns: the child shares the parent's $a"
    done
    nspid=$(awk '$1 == "NSpid:" { print $2, $3 }' /proc/"$2"/status)
    [ "$nspid" = "$2 1" ] || fail "NSpid: $nspid, want \"$2 1\""
    [ "$(limit 'Max open files' "$2")" = "512 512" ] || fail "no-file: $(limit 'Max open files' "$2")"
    [ "$(limit 'Max core file size' "$2")" = "0 0" ] || fail "core: $(limit 'Max core file size' "$2")"
    [ "$(limit 'Max locked memory' "$2")" = "0 0" ] || fail "memlock: $(limit 'Max locked memory' "$2")"
    echo "  child $2 of $1: root $root (inode $r), own pid/mnt/uts namespaces, pid 1 inside, limits no-file 512, core 0, memlock 0"
}
mkimg() { dd if=/dev/zero of="$1" bs=1k count=1024 2>/dev/null; }
start=$(date +%s)
mkdir -p "$root" /tmp/jail-run

# 1. --config-file and the API.
log=/tmp/jail-1.log
sock=/tmp/jail-run/api.sock
mkimg /tmp/jail-1.img
mkimg "$root/data2.img"
mkimg /tmp/jail-host.img
cat >/tmp/jail-1.json <<JSON
{
  "boot-source": {"kernel_image_path": "/rig/l2/bzImage", "initrd_path": "/rig/l2/initramfs.cpio.gz",
                  "boot_args": "$l2_args"},
  "drives": [{"drive_id": "data", "path_on_host": "/tmp/jail-1.img", "is_root_device": false, "is_read_only": false}],
  "machine-config": {"vcpu_count": 1, "mem_size_mib": 128}
}
JSON
/bin/flint --config-file /tmp/jail-1.json --api-sock "$sock" --chroot "$root" \
    --resource-limit no-file=512 --no-console --serial-log "$log" --timeout 240 2>/tmp/jail-1.err &
pid=$!
child=$(child_of "$pid") || fail "flint never forked"
wait_for "flint-l2: caps ready" 900 || fail "L2 never got ready"
check_jail "$pid" "$child"
out=$(req PATCH /drives/data '{"drive_id": "data", "path_on_host": "/tmp/jail-host.img"}') &&
    fail "PATCH /drives to a host file outside the jail was taken: $out"
case $out in *"No such file"*) ;; *) fail "PATCH /drives to a host file: $out" ;; esac
req PATCH /drives/data '{"drive_id": "data", "path_on_host": "/data2.img"}' >/dev/null ||
    fail "PATCH /drives to the jail's /data2.img"
req PUT /actions '{"action_type": "SendCtrlAltDel"}' >/dev/null || fail "SendCtrlAltDel"
rc=0
wait "$pid" || rc=$?
[ "$rc" = 0 ] || fail "flint exited $rc after Ctrl-Alt-Del, want 0 (reboot=k)"
cat /tmp/jail-1.err
grep -q "jail: flint is pid 1 of new PID, mount, UTS (no IPC: this kernel has no System V IPC" \
    /tmp/jail-1.err || fail "the jail's start is not logged"
grep -q "jail: root is now $root (pivot_root, the host's detached); bound in at the same path: /tmp/jail-run; memlock 0" \
    /tmp/jail-1.err || fail "the root change is not logged"
[ "$(head -c 17 /tmp/jail-1.img)" = flint-caps-marker ] || fail "L2's write is not in the image"
[ ! -e "$sock" ] || fail "flint did not remove its API socket"
echo "1. --config-file: jailed, L2 wrote its drive, PATCH /drives inside the jail, exit 0 ($(($(date +%s) - start)) s)"

# 2. API only; SIGTERM to the parent.
log=/tmp/jail-2.log
mkimg /tmp/jail-2.img
/bin/flint --api-sock "$sock" --chroot "$root" --resource-limit no-file=512 --no-console \
    --serial-log "$log" --timeout 240 2>/tmp/jail-2.err &
pid=$!
req PUT /machine-config '{"vcpu_count": 1, "mem_size_mib": 128}' >/dev/null || fail "PUT /machine-config"
req PUT /boot-source "{\"kernel_image_path\": \"/rig/l2/bzImage\", \"initrd_path\": \"/rig/l2/initramfs.cpio.gz\", \"boot_args\": \"$l2_args\"}" \
    >/dev/null || fail "PUT /boot-source"
req PUT /drives/data '{"drive_id": "data", "path_on_host": "/tmp/jail-2.img", "is_root_device": false, "is_read_only": false}' \
    >/dev/null || fail "PUT /drives/data"
req PUT /actions '{"action_type": "InstanceStart"}' >/dev/null || fail "InstanceStart"
wait_for "flint-l2: caps ready" 900 || fail "L2 never got ready"
check_jail "$pid" "$(child_of "$pid")"
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
[ "$rc" = 143 ] || fail "flint exited $rc after SIGTERM to the parent, want 143"
grep -q "received SIGTERM" /tmp/jail-2.err || fail "the child never got the SIGTERM"
[ "$(head -c 17 /tmp/jail-2.img)" = flint-caps-marker ] || fail "L2's write is not in the image"
echo "2. API: jailed at InstanceStart, SIGTERM to the parent: 143 ($(($(date +%s) - start)) s)"

# 3. No cgroups in this kernel.
rc=0
/bin/flint --config-file /tmp/jail-1.json --chroot "$root" --cgroup /sys/fs/cgroup/flint/vm \
    --no-console 2>/tmp/jail-3.err || rc=$?
[ "$rc" = 70 ] || fail "--cgroup without cgroups: exit $rc, want 70"
grep -q "jail: cannot read the file system at /sys/fs/cgroup" /tmp/jail-3.err ||
    fail "--cgroup without cgroups: $(cat /tmp/jail-3.err)"
echo "3. --cgroup on a kernel without cgroups: 70, $(cat /tmp/jail-3.err | sed 's/^.*flint error: //')"
