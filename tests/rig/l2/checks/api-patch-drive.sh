# L2 check for the PATCH /drives case (tests/rig/flint/67-l2-api-patch-drive.sh): vdb is
# L1's 1 MiB placeholder (first sector "flint-patch-old"); once L2 says it has read it, L1
# swaps its file for a 2 MiB one (first sector "flint-patch-new", last "flint-patch-end").
# Linux hears of it through the config change interrupt and re-reads the capacity; L2 then
# reads the new bytes through the device (O_DIRECT: not the page cache's old copy) and
# writes sector 100, which L1 looks for in the new file.
fail() { echo "flint-l2: $*"; exit 1; }
size() { cat /sys/block/vdb/size; }
sector() { dd if=/dev/vdb bs=512 skip="$1" count=1 iflag=direct 2>/dev/null | head -c 15; }
[ "$(size)" = 2048 ] || fail "vdb: $(size) sectors before the swap, want 2048"
[ "$(sector 0)" = flint-patch-old ] || fail "vdb before the swap reads '$(sector 0)'"
echo "flint-l2: patch ready"
# No sleep: L2's local timer has been seen to stall for minutes under nested KVM in TCG
# (see net.sh), and a sleeping check then never wakes to look. /proc/uptime follows the
# clock source, which runs on without the timer's interrupts.
t0=$(cut -d. -f1 /proc/uptime)
until [ "$(size)" = 4096 ]; do
    [ $(($(cut -d. -f1 /proc/uptime) - t0)) -lt 60 ] ||
        fail "vdb still $(size) sectors 60 s after 'patch ready'"
done
dmesg | grep -i 'vdb.*capacity' | tail -n 1
[ "$(sector 0)" = flint-patch-new ] || fail "vdb after the swap reads '$(sector 0)'"
[ "$(sector 4095)" = flint-patch-end ] || fail "vdb's new last sector reads '$(sector 4095)'"
printf 'flint-patch-l2' | dd of=/dev/vdb bs=512 seek=100 conv=sync,fsync 2>/dev/null ||
    fail "vdb write after the swap"
[ "$(cat /sys/block/vda/ro)" = 1 ] || fail "vda is no longer read-only"
echo "flint-l2: vdb swapped: 4096 sectors, the new file's bytes read, sector 100 written"
