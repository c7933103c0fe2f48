# L2 check for the one-config case: every device of a Firecracker config is there and works.
fail() { echo "flint-l2: $*"; exit 1; }
[ "$(cat /sys/block/vda/ro)" = 1 ] || fail "vda (the root drive) is not read-only"
grep -q 'root=/dev/vda ro' /proc/cmdline || fail "no root=/dev/vda ro on the command line"
mkdir -p /mnt && mount -t ext4 -o ro /dev/vda /mnt && [ -f /mnt/etc/flint-disk ] ||
    fail "cannot read the root drive's ext4"
umount /mnt
printf 'flint-all-works' | dd of=/dev/vdb bs=512 conv=sync,fsync 2>/dev/null || fail "vdb write"
[ "$(cat /sys/class/net/eth0/address)" = 06:00:ac:10:01:02 ] || fail "eth0's MAC"
ip addr add 172.16.1.2/24 dev eth0 && ip link set eth0 up
ping -c 1 -W 5 172.16.1.1 >/dev/null || fail "no ping through eth0"
[ "$(/bin/vsock cid)" = 3 ] || fail "vsock CID"
case $(cat /sys/class/misc/hw_random/rng_current) in virtio_rng*) ;; *) fail "hwrng" ;; esac
[ "$(dd if=/dev/hwrng bs=32 count=1 2>/dev/null | wc -c)" = 32 ] || fail "hwrng read"
echo "flint-l2: root drive, data drive, eth0, vsock and entropy all work"
