#!/bin/bash
# Builds the ext4 root disk L2 boots from in the rig's virtio-blk case, with mkfs.ext4 -d
# (e2fsprogs): busybox, the exit-port tool and /init-check, which reports through the exit
# port that / is flint's virtio disk. Usage: mkrootfs.sh OUT.ext4 EXITPORT_BIN
set -euo pipefail
out=$1
exitport=$2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
mkdir -p "$dir"/{bin,sbin,dev,proc,sys,tmp}
cp "$(command -v busybox)" "$dir/bin/busybox"
cp "$exitport" "$dir/bin/exitport"
# The applet links are made here: the disk is mounted read-only in the guest.
for applet in $(busybox --list); do
    [ -e "$dir/bin/$applet" ] || ln -s busybox "$dir/bin/$applet"
done
cat >"$dir/init-check" <<'SH'
#!/bin/busybox sh
# PID 1 on flint's virtio root disk: / must be /dev/vda, ext4, mounted as the config said.
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
root=$(awk '$2 == "/" && $1 != "rootfs" {print $1, $3, substr($4, 1, 2)}' /proc/mounts)
echo "flint-l2: root is '$root'; running from the disk: $(cat /etc/flint-disk)"
if [ "$root" = "/dev/root ext4 ro" ] && [ -e /sys/block/vda ] && [ -f /etc/flint-disk ] &&
   grep -q 'root=/dev/vda ro' /proc/cmdline; then
    echo "flint-l2: PASS rootfs"
    exitport 0
fi
echo "flint-l2: FAIL rootfs"
exitport 3
SH
chmod +x "$dir/init-check"
mkdir -p "$dir/etc"
echo "flint rootfs $(date -u +%F)" >"$dir/etc/flint-disk"
rm -f "$out"
mkfs.ext4 -q -F -L flint-root -d "$dir" "$out" 16M
