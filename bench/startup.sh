#!/bin/sh
# Startup benchmark: flint against QEMU microvm booting the same PVH payload
# (build/guest/pvh.elf), which prints a few lines, writes the boot timer and exits
# through port 0xf4. See bench/README.md.
#
#   sh bench/startup.sh [BUILD_DIR]        (make bench-startup)
#
# Measures
#   1. exec -> payload exit: wall time of the whole VMM process (fork to wait4),
#      median of BENCH_RUNS runs each, flint and QEMU interleaved
#   2. exec -> first KVM_RUN: with vmrun -k (a seccomp filter that makes only
#      ioctl(KVM_RUN) stop under ptrace), and separately with strace (inflated)
#   3. peak RSS (ru_maxrss) of each VMM with 128 MiB of guest RAM
# A benchmark, not a test: it exits 0 whatever the numbers, and non-zero only if
# a VMM cannot run the payload at all.
#
# Environment: BENCH_RUNS (default 30), BENCH_KVM_RUNS (10), BENCH_STRACE_RUNS (5),
# BENCH_WARMUP (2, discarded), QEMU (default qemu-system-x86_64).
set -eu

B=${1:-build}
RUNS=${BENCH_RUNS:-30}
KRUNS=${BENCH_KVM_RUNS:-10}
SRUNS=${BENCH_STRACE_RUNS:-5}
WARM=${BENCH_WARMUP:-2}
QEMU=${QEMU:-qemu-system-x86_64}
MEM=128
APPEND="flint.test_exit=0 flint.test_mem_mib=$MEM"
EXPECT=1 # both VMMs exit with (0 << 1) | 1 when the payload reports 0

die() {
	echo "startup: $*" >&2
	exit 1
}

# Root of the repository (for bench/vmrun.c); the build dir is taken as given.
ROOT=$(cd "$(dirname "$0")/.." && pwd)
[ -d "$B" ] || die "no build dir $B (run: make all guest-payloads)"
B=$(cd "$B" && pwd)
FLINT=$B/flint
PAYLOAD=$B/guest/pvh.elf
[ -x "$FLINT" ] || die "no $FLINT (run: make all)"
[ -f "$PAYLOAD" ] || die "no $PAYLOAD (run: make guest-payloads)"
# No usable KVM here (tests/kvm/where.sh): run this same script inside the kernel rig.
if [ -f "$ROOT/tests/kvm/where.sh" ] && [ "$(sh "$ROOT/tests/kvm/where.sh" "$B")" != host ]; then
	echo "startup: no usable /dev/kvm on this host: measuring inside the kernel rig" >&2
	cd "$ROOT" && exec sh bench/startup-rig.sh "$B"
fi
if ! { [ -r /dev/kvm ] && [ -w /dev/kvm ]; }; then die "/dev/kvm is not usable"; fi

# Debian packages this script needs, installed quietly if missing.
need_pkgs() {
	missing=""
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
			missing="$missing $p"
	done
	[ -z "$missing" ] && return 0
	SUDO=""
	[ "$(id -u)" -eq 0 ] || SUDO="sudo"
	echo "startup: installing$missing" >&2
	# shellcheck disable=SC2086
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
		$missing >/dev/null 2>&1 ||
		{ DEBIAN_FRONTEND=noninteractive $SUDO apt-get update -qq >/dev/null 2>&1 &&
			DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq \
				--no-install-recommends $missing >/dev/null 2>&1; } ||
		echo "startup: could not install$missing" >&2
}
command -v "$QEMU" >/dev/null 2>&1 || need_pkgs qemu-system-x86
command -v "$QEMU" >/dev/null 2>&1 || die "no $QEMU"
command -v strace >/dev/null 2>&1 || need_pkgs strace

# The helper: fork/exec, wait4 rusage, optional first-KVM_RUN stop.
VMRUN=$B/bench/vmrun
# shellcheck disable=SC3013 # -nt: dash and bash both have it
if [ ! -x "$VMRUN" ] || [ "$ROOT/bench/vmrun.c" -nt "$VMRUN" ]; then
	command -v cc >/dev/null 2>&1 || die "no cc (install build-essential)"
	mkdir -p "$B/bench"
	cc -O2 -Wall -Wextra -std=gnu11 -o "$VMRUN" "$ROOT/bench/vmrun.c" || die "cannot build $VMRUN"
fi

T=$(mktemp -d "${TMPDIR:-/tmp}/flint-bench.XXXXXX")
trap 'rm -rf "$T"' EXIT INT TERM
cat >"$T/vm.json" <<EOF
{"boot-source":{"kernel_image_path":"$PAYLOAD","boot_args":"$APPEND"},
 "machine-config":{"vcpu_count":1,"mem_size_mib":$MEM},"drives":[]}
EOF

# run_flint|run_qemu [vmrun options]: one run, one vmrun result line on stdout.
run_flint() {
	"$VMRUN" "$@" -- "$FLINT" --config-file "$T/vm.json" --no-console --exit-port 0xf4
}
run_qemu() {
	"$VMRUN" "$@" -- "$QEMU" -M microvm,x-option-roms=off,rtc=off,pit=off,pic=off \
		-accel kvm -cpu host,-arch-capabilities -m $MEM -nodefaults -no-user-config \
		-nographic -serial stdio -device isa-debug-exit,iobase=0xf4 \
		-kernel "$PAYLOAD" -append "$APPEND"
}
field() { # field NAME < vmrun line
	sed -n "s/.* *\<$1=\(-\{0,1\}[0-9]*\).*/\1/p"
}

# Can each VMM run the payload at all? This is the only way the script fails.
for vmm in flint qemu; do
	line=$(run_$vmm -o "$T/check.out" -e "$T/check.err")
	st=$(echo "$line" | field status)
	if [ "$st" != "$EXPECT" ]; then
		echo "startup: $vmm did not run the payload (exit $st, expected $EXPECT):" >&2
		tail -n 20 "$T/check.out" "$T/check.err" >&2
		exit 1
	fi
done

echo "flint startup benchmark — $(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -r), $(nproc) CPUs"
echo "flint ${FLINT_DESCRIBE:-$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo '?')}, $("$QEMU" --version | head -n 1)"
echo "payload $PAYLOAD, $MEM MiB guest RAM, 1 vCPU"

# 1 + 3: interleaved runs, flint then QEMU, warm-up runs discarded.
: >"$T/flint.runs"
: >"$T/qemu.runs"
: >"$T/flint.boot"
i=0
while [ $i -lt $((WARM + RUNS)) ]; do
	fl=$(run_flint -e "$T/flint.err") || :
	qe=$(run_qemu) || :
	if [ $i -ge "$WARM" ]; then
		echo "$fl" >>"$T/flint.runs"
		echo "$qe" >>"$T/qemu.runs"
		sed -n 's/.*guest boot time: \([0-9]*\) us.*/\1/p' "$T/flint.err" >>"$T/flint.boot"
	fi
	i=$((i + 1))
done

# 2: exec -> first KVM_RUN through vmrun -k (separate runs: -k slows every later KVM_RUN).
: >"$T/flint.krun"
: >"$T/qemu.krun"
i=0
while [ $i -lt "$KRUNS" ]; do
	run_flint -k >>"$T/flint.krun" || :
	run_qemu -k >>"$T/qemu.krun" || :
	i=$((i + 1))
done

# 2, cross-check: strace timestamps of execve and of the first KVM_RUN (strace stops the
# process at every syscall, so this is inflated and reported apart).
: >"$T/flint.strace"
: >"$T/qemu.strace"
strace_run() { # strace_run OUT vmm: appends the ms from execve to the first KVM_RUN
	out=$1
	shift
	strace -f -ttt -e trace=execve,ioctl -o "$T/st.txt" "$@" </dev/null >/dev/null 2>&1 || :
	awk '/execve\(/ && !e { e = $2 } /KVM_RUN/ { if (e) printf "%d\n", ($2 - e) * 1e6; exit }' \
		"$T/st.txt" >>"$out"
}
if command -v strace >/dev/null 2>&1; then
	i=0
	while [ $i -lt "$SRUNS" ]; do
		strace_run "$T/flint.strace" "$FLINT" --config-file "$T/vm.json" --no-console --exit-port 0xf4
		strace_run "$T/qemu.strace" "$QEMU" -M microvm,x-option-roms=off,rtc=off,pit=off,pic=off \
			-accel kvm -cpu host,-arch-capabilities -m $MEM -nodefaults -no-user-config \
			-nographic -serial stdio -device isa-debug-exit,iobase=0xf4 \
			-kernel "$PAYLOAD" -append "$APPEND"
		i=$((i + 1))
	done
fi

# stats FILE [FIELD]: "n median min max" of the values (µs or KiB) of successful runs;
# FIELD picks a vmrun field, none means the file holds bare numbers.
stats() {
	if [ $# -gt 1 ]; then
		awk -v f="$2" -v want="$EXPECT" '{
			ok = 0; v = -1
			for (k = 1; k <= NF; k++) {
				split($k, kv, "=")
				if (kv[1] == "status" && kv[2] == want) ok = 1
				if (kv[1] == f) v = kv[2]
			}
			if (ok && v >= 0) print v
		}' "$1"
	else
		cat "$1"
	fi | sort -n | awk '{ v[NR] = $1 } END {
		if (NR == 0) { print "0 -1 -1 -1"; exit }
		m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
		printf "%d %.0f %d %d\n", NR, m, v[1], v[NR]
	}'
}
fails() { # number of runs in FILE that did not exit as expected
	grep -vc "status=$EXPECT\$" "$1" || :
}
ms() { awk -v x="$1" 'BEGIN { printf "%.1f", x / 1000 }'; }
mib() { awk -v x="$1" 'BEGIN { printf "%.2f", x / 1024 }'; }
row() { # row LABEL "n median min max" SCALE(ms|mib)
	# shellcheck disable=SC2086 # split "n median min max"
	set -- "$1" $2 "$3"
	if [ "$2" -eq 0 ]; then
		printf '  %-34s %s\n' "$1" "no successful run"
		return
	fi
	printf '  %-34s median %8s  min %8s  max %8s  (n=%s)\n' "$1" \
		"$($6 "$3")" "$($6 "$4")" "$($6 "$5")" "$2"
}

median() { stats "$@" | cut -d' ' -f2; }
FW=$(median "$T/flint.runs" wall_us)
[ "$FW" -ge 0 ] || die "flint: no run succeeded"
QW=$(median "$T/qemu.runs" wall_us)
[ "$QW" -ge 0 ] || die "qemu: no run succeeded"

echo
echo "1. exec -> payload exit, wall time of the VMM process (fork to wait4), ms; interleaved, $WARM warm-up runs dropped"
row "flint" "$(stats "$T/flint.runs" wall_us)" ms
row "qemu" "$(stats "$T/qemu.runs" wall_us)" ms
row "flint CPU time (user+sys)" "$(stats "$T/flint.runs" cpu_us)" ms
row "qemu CPU time (user+sys)" "$(stats "$T/qemu.runs" cpu_us)" ms
row "flint main() -> boot-timer write" "$(stats "$T/flint.boot")" ms
echo "  (the last is flint's own 'guest boot time' log line: from main(), so without exec and dynamic linking)"
nf=$(fails "$T/flint.runs")
nq=$(fails "$T/qemu.runs")
[ "$nf$nq" = 00 ] || echo "  failed runs left out: flint $nf, qemu $nq"

echo
echo "2. exec -> first KVM_RUN, ms"
row "flint (vmrun -k, seccomp stop)" "$(stats "$T/flint.krun" kvm_run_us)" ms
row "qemu (vmrun -k, seccomp stop)" "$(stats "$T/qemu.krun" kvm_run_us)" ms
echo "  (vmrun -k: separate runs; a seccomp filter stops only ioctl(KVM_RUN) under ptrace, timed from execve)"
if [ -s "$T/flint.strace" ]; then
	row "flint (strace, inflated)" "$(stats "$T/flint.strace")" ms
	row "qemu (strace, inflated)" "$(stats "$T/qemu.strace")" ms
	echo "  (strace -f -ttt -e trace=execve,ioctl: separate runs; strace stops every syscall, so these are inflated)"
else
	echo "  strace: not available, skipped"
fi

FR=$(median "$T/flint.runs" maxrss_kib)
echo
echo "3. peak RSS (wait4 ru_maxrss) with $MEM MiB guest RAM, MiB; the payload touches only a few pages"
row "flint" "$(stats "$T/flint.runs" maxrss_kib)" mib
row "qemu" "$(stats "$T/qemu.runs" maxrss_kib)" mib
echo "  flint's guest RAM is a MAP_NORESERVE memfd mapping, so untouched RAM is not resident:"
echo "  flint's VMM overhead is taken as its whole peak RSS (an upper bound by the few touched pages)"

# 4. What a running flint really costs: sampled from /proc while a guest spins. Guest RAM
# is shmem (the memfd); libraries are file pages shared by every flint on the host.
printf '%b' '\177\105\114\106\002\001\001\000\000\000\000\000\000\000\000\000\002\000\076\000\001\000\000\000\000\000\020\000\000\000\000\000\100\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\100\000\070\000\001\000\000\000\000\000\000\000\001\000\000\000\005\000\000\000\170\000\000\000\000\000\000\000\000\000\020\000\000\000\000\000\000\000\020\000\000\000\000\000\002\000\000\000\000\000\000\000\002\000\000\000\000\000\000\000\000\020\000\000\000\000\000\000\353\376' >"$T/spin.elf"
cat >"$T/spin.json" <<EOF
{"boot-source":{"kernel_image_path":"$T/spin.elf"},"machine-config":{"vcpu_count":1,"mem_size_mib":$MEM},"drives":[]}
EOF
"$FLINT" --config-file "$T/spin.json" --no-console --timeout 2 2>/dev/null &
spin_pid=$!
sleep 1
if [ -r "/proc/$spin_pid/smaps_rollup" ]; then
	echo
	echo "4. a running flint (guest spinning), KiB: from /proc/PID/status and smaps_rollup"
	awk '/^(RssAnon|RssFile|RssShmem):/ {printf "  %-15s %8s\n", $1, $2}' "/proc/$spin_pid/status"
	awk '/^(Pss|Pss_Shmem|Private_Clean|Private_Dirty|Shared_Clean):/ {printf "  %-15s %8s\n", $1, $2}' \
		"/proc/$spin_pid/smaps_rollup"
	echo "  (Shared_Clean is mostly libc/libevent/jansson pages shared with every other process;"
	echo "   Pss minus Pss_Shmem is flint's proportional cost without guest RAM)"
fi
wait "$spin_pid" 2>/dev/null || :

RATIO=$(awk -v f="$FW" -v q="$QW" 'BEGIN { printf "%.2f", f / q }')
RSS=$(mib "$FR")
met() { awk -v x="$1" -v lim="$2" 'BEGIN { print (x <= lim) ? "met" : "NOT met" }'; }
echo
echo "goals: ratio <= 0.2: $(met "$RATIO" 0.2) ($RATIO); rss overhead <= 1.5 MiB: $(met "$RSS" 1.5) ($RSS MiB)"
echo "startup: flint $(ms "$FW") ms, qemu $(ms "$QW") ms, ratio $RATIO; rss overhead $RSS MiB"
