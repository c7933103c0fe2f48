#!/bin/sh
# Fault-loop benchmark: flint's fault resolver on its event loop against a minimal
# poll/read/ioctl/write server (the floor), both answering the same device thread over an
# AF_UNIX socketpair that carries iommufd page-request records. See bench/README.md.
#
#   sh bench/fault.sh [BUILD_DIR]        (make bench-fault)
#
# Builds bench/fault.c against flint's objects in BUILD_DIR/obj (from `make all`) into
# BUILD_DIR/bench/fault and runs it. A benchmark, not a test: it exits 0 whatever the
# numbers, and non-zero only if it cannot build or a run cannot be done at all.
#
# Environment: BENCH_FAULT_REPS (default 5), BENCH_FAULT_SECS (1, measured seconds per
# run), BENCH_FAULT_WARM (0.2, warm-up seconds per run), BENCH_FAULT_INFLIGHT (64),
# BENCH_FAULT_CPUS (0: the loop thread and the device thread both on CPU 0; "0,1": loop on
# CPU 0, device on CPU 1; "any": not pinned, placed by the scheduler).
set -eu

B=${1:-build}
REPS=${BENCH_FAULT_REPS:-5}
SECS=${BENCH_FAULT_SECS:-1}
WARM=${BENCH_FAULT_WARM:-0.2}
INFLIGHT=${BENCH_FAULT_INFLIGHT:-64}
CPUS=${BENCH_FAULT_CPUS:-0}

die() {
	echo "fault: $*" >&2
	exit 1
}

ROOT=$(cd "$(dirname "$0")/.." && pwd)
[ -d "$B" ] || die "no build dir $B (run: make all)"
B=$(cd "$B" && pwd)
OBJS="$B/libflint.a"
[ -f "$OBJS" ] || die "no $OBJS (run: make all)"
command -v cc >/dev/null 2>&1 || die "no cc (install build-essential)"
command -v pkg-config >/dev/null 2>&1 || die "no pkg-config"
LIBS=$(pkg-config --libs libevent_core) || die "no libevent_core (install libevent-dev)"

mkdir -p "$B/bench"
# Always rebuilt (well under a second): the objects change under it as flint changes.
# shellcheck disable=SC2086
(cd "$ROOT" && cc -std=c11 -D_GNU_SOURCE -O2 -g -Wall -Wextra -Wshadow -I. \
	-o "$B/bench/fault" bench/fault.c $OBJS $LIBS -lpthread) || die "cannot build $B/bench/fault"

echo "flint fault-loop benchmark — $(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -r)," \
	"$(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "flint $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo '?')"
set -- -r "$REPS" -t "$SECS" -w "$WARM" -q "$INFLIGHT"
[ "$CPUS" = any ] || set -- "$@" -p "$CPUS"
exec "$B/bench/fault" "$@"
