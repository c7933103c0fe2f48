# L2 check: vda is writable and what is written reaches the disk; vdb is read-only.
[ "$(cat /sys/block/vda/size)" = 8192 ] || { echo "vda: $(cat /sys/block/vda/size) sectors"; exit 1; }
[ "$(cat /sys/block/vda/ro)" = 0 ] || exit 1
[ "$(cat /sys/block/vdb/ro)" = 1 ] || { echo "vdb is not read-only"; exit 1; }
for sector in 0 1000 8191; do
    printf 'flint-data-sector-%05d' $sector |
        dd of=/dev/vda bs=512 seek=$sector conv=sync,fsync 2>/dev/null || exit 1
done
if printf 'x' | dd of=/dev/vdb bs=512 conv=sync,fsync 2>/dev/null; then
    echo "flint-l2: a write to the read-only vdb succeeded"
    exit 1
fi
# Read back through the device, past the page cache.
echo 3 >/proc/sys/vm/drop_caches
got=$(dd if=/dev/vda bs=512 skip=1000 count=1 2>/dev/null | head -c 24)
[ "$got" = "flint-data-sector-01000" ] || { echo "read back '$got'"; exit 1; }
echo "flint-l2: vda written and read back, vdb refused the write"
