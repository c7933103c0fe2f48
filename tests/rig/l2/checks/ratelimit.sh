# L2 check: a 1 MiB O_DIRECT read (no readahead: the guest asks for exactly what dd
# reads) of the 256 KiB/s disk (vda) runs at the limit (+-10 %); the first 64 KiB are the
# bucket's start-up budget, so the paced part is 1 MiB - 64 KiB. The same read of the
# unlimited vdb must be at least twice as fast, or the check proves nothing.
elapsed() {
    t0=$(cut -d' ' -f1 /proc/uptime)
    dd if="$1" of=/dev/null bs=64k count="$2" iflag=direct 2>/dev/null || return 1
    t1=$(cut -d' ' -f1 /proc/uptime)
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }'
}
fast=$(elapsed /dev/vdb 64) || exit 1
slow=$(elapsed /dev/vda 16) || exit 1
awk -v fast="$fast" -v slow="$slow" 'BEGIN {
    limit = 262144
    rate = (1048576 - 65536) / slow
    raw = 4194304 / fast
    printf "flint-l2: limited vda %.1f KiB/s against %d KiB/s; unlimited vdb %.1f KiB/s\n",
        rate / 1024, limit / 1024, raw / 1024
    if (raw < 2 * limit) { print "flint-l2: the unlimited disk is too slow to tell"; exit 1 }
    exit !(rate >= 0.9 * limit && rate <= 1.1 * limit)
}'
