#!/bin/sh
# Cold-fault benchmark: flint's resolver against a naive read/IOMMU_IOAS_MAP/write floor,
# both answering iommufd's mock device (IOMMU_TEST_OP_TRIGGER_IOPF) on a real Linux 7.3
# inside the kernel rig (QEMU TCG), each fault in a chunk not mapped yet. See
# bench/README.md. Reports; never fails because something is slow.
#
#   sh bench/fault-cold.sh [BUILD]        (make bench-fault-cold)
#
# Builds bench/fault-cold.c statically against BUILD/libflint.a and the rig kernel's uapi
# headers, with link-time wrappers around the responder's syscalls (they time them, for
# flint and the floor alike), puts it in an L1 initramfs as the rig's only case, boots the
# rig and prints what the case printed; the last line is
#   cold fault: <r>x floor, <n> faults/s, p50 <us> us, p99 <us> us (2 MiB chunks, <k> in flight)
#
# Environment: BENCH_COLD_ROUNDS (5), BENCH_COLD_CHUNKS (KiB:faults per cell,
# "4:1024,64:512,2048:256"), BENCH_COLD_MANY (16, the "many in flight"), BENCH_COLD_MEM
# (both | touched | fresh), BENCH_COLD_CPUS (1: responder and device thread both on L1's
# CPU 1; "0,1": responder on 0, device on 1; any), BENCH_COLD_NOPOP (0; 1 adds flint
# with its MADV_POPULATE skipped) and BENCH_COLD_FILE (0; 1 adds the IOMMU_IOAS_MAP_FILE
# floor): information only.
set -eu
build=${1:-build}
out=$build/bench/fault-cold
mkdir -p "$out"
make -s BUILD="$build" rig-kernel "$build/libflint.a" >/dev/null
kdir=$(cat "$build/rig/kernel.dir")

set -- -r "${BENCH_COLD_ROUNDS:-5}" -c "${BENCH_COLD_CHUNKS:-4:1024,64:512,2048:256}" \
	-k "${BENCH_COLD_MANY:-16}" -m "${BENCH_COLD_MEM:-both}" -p "${BENCH_COLD_CPUS:-1}"
[ "${BENCH_COLD_NOPOP:-0}" = 0 ] || set -- "$@" -P
[ "${BENCH_COLD_FILE:-0}" = 0 ] || set -- "$@" -f

# Every syscall the responders make on the fault fd and the iommufd goes through a wrapper
# that timestamps it: flint's objects are linked unchanged, only their calls are redirected.
wrap=-Wl,--wrap=read,--wrap=write,--wrap=ioctl,--wrap=madvise,--wrap=epoll_wait,--wrap=poll
gcc -O2 -g -Wall -Wextra -Werror -Wshadow -std=c11 -D_GNU_SOURCE -I. -Itests/rig/cases \
	-static -isystem "$kdir/usr/include" -o "$out/fault-cold" bench/fault-cold.c \
	"$build/libflint.a" -levent_extra -levent_core -ljansson -lpthread "$wrap" 2>"$out/ld.log" || {
	cat "$out/ld.log" >&2
	exit 1
}
printf '#!/bin/sh\nexec /rig/bench/fault-cold %s\n' "$*" >"$out/case.sh"
bash tests/rig/mkinitramfs.sh -o "$out/l1.cpio.gz" --timeout 3000 \
	--case "$out/case.sh:bench" --add "$out/fault-cold:/rig/bench/fault-cold" >/dev/null

echo "cold fault: flint $(git describe --always --dirty 2>/dev/null || echo '?')" \
	"(iommu/resolver.c $(git hash-object iommu/resolver.c | cut -c1-12)); booting the rig" \
	"(Linux 7.3 under TCG), fault-cold $*"
BUILD=$build bash tests/rig/run.sh --kernel "$kdir/bzImage" --initrd "$out/l1.cpio.gz" \
	--log "$out/serial.log" --timeout 3600 >/dev/null 2>&1 || true
tr -d '\r' <"$out/serial.log" | sed -n 's/^\[bench\] //p' >"$out/results"
cat "$out/results"
tail -n 1 "$out/results" | grep -q '^cold fault: .*x floor' || {
	echo "cold fault: the rig run did not finish; see $out/serial.log" >&2
	tr -d '\r' <"$out/serial.log" | grep -E '^(FAIL|PASS) |passed,' >&2 || true
	exit 1
}
