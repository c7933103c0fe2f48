#!/bin/sh
# Startup benchmark: flint against the floor (bench/floor.c: only the KVM work this VM
# needs) and QEMU microvm, all booting the same PVH payload (build/guest/pvh.elf), which
# prints a few lines, writes the boot timer and exits through port 0xf4. See bench/README.md.
#
#   sh bench/startup.sh [BUILD_DIR]        (make bench-startup)
#
# Measures, from BENCH_RUNS runs each, flint, floor and QEMU interleaved:
#   1. exec -> payload exit: wall time of the whole process (fork to wait4), CPU time and
#      peak RSS (ru_maxrss), with flint/floor and flint/qemu
#   2. the same runs split by phase, flint and the floor side by side: both print a
#      `phases:` line of CLOCK_MONOTONIC times (flint with --log-level debug), vmrun
#      gives the time just before execve and when wait4 returned
#   3. exec -> first KVM_RUN: with vmrun -k (a seccomp filter that makes only
#      ioctl(KVM_RUN) stop under ptrace), and separately with strace (inflated)
# A benchmark, not a test: it exits 0 whatever the numbers, and non-zero only if
# a VMM cannot run the payload at all.
#
# Environment: BENCH_RUNS (default 30), BENCH_KVM_RUNS (10), BENCH_STRACE_RUNS (5, 0 skips),
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
EXPECT=1 # all three exit with (0 << 1) | 1 when the payload reports 0

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

# The helpers: vmrun (fork/exec, wait4 rusage, optional first-KVM_RUN stop) and the floor.
VMRUN=$B/bench/vmrun
FLOOR=$B/bench/floor
# shellcheck disable=SC3013 # -nt: dash and bash both have it
if [ ! -x "$VMRUN" ] || [ "$ROOT/bench/vmrun.c" -nt "$VMRUN" ]; then
	command -v cc >/dev/null 2>&1 || die "no cc (install build-essential)"
	mkdir -p "$B/bench"
	cc -O2 -Wall -Wextra -std=gnu11 -o "$VMRUN" "$ROOT/bench/vmrun.c" || die "cannot build $VMRUN"
fi
# The floor is linked as flint is, a static PIE with packed relocations: it must not pay a
# loader or relocations flint does not. The Makefile makes it, every time; in the rig (no
# compiler) startup-rig.sh has.
if [ -f "$ROOT/bench/floor.c" ] && command -v cc >/dev/null 2>&1; then
	make -s -C "$ROOT" BUILD="$B" "$FLOOR" || die "cannot build $FLOOR"
fi
[ -x "$FLOOR" ] || die "no $FLOOR and no cc to build it (install build-essential)"

T=$(mktemp -d "${TMPDIR:-/tmp}/flint-bench.XXXXXX")
trap 'rm -rf "$T"' EXIT INT TERM
cat >"$T/vm.json" <<EOF
{"boot-source":{"kernel_image_path":"$PAYLOAD","boot_args":"$APPEND"},
 "machine-config":{"vcpu_count":1,"mem_size_mib":$MEM},"drives":[]}
EOF

# run_flint|run_floor|run_qemu [vmrun options]: one run, one vmrun result line on stdout.
# flint runs with --log-level debug for its phases line (no other debug line comes here).
run_flint() {
	"$VMRUN" "$@" -- "$FLINT" --config-file "$T/vm.json" --no-console --exit-port 0xf4 \
		--log-level debug
}
run_floor() {
	"$VMRUN" "$@" -- "$FLOOR" "$PAYLOAD" $MEM "$APPEND"
}
qemu_cmd() { # qemu_cmd PREFIX...: runs PREFIX... followed by the QEMU command line
	"$@" "$QEMU" -M microvm,x-option-roms=off,rtc=off,pit=off,pic=off \
		-accel kvm -cpu host,-arch-capabilities -m $MEM -nodefaults -no-user-config \
		-nographic -serial stdio -device isa-debug-exit,iobase=0xf4 \
		-kernel "$PAYLOAD" -append "$APPEND"
}
run_qemu() {
	qemu_cmd "$VMRUN" "$@" --
}
field() { # field NAME < vmrun line
	sed -n "s/.* *\<$1=\(-\{0,1\}[0-9]*\).*/\1/p"
}
phases() { # phases ERRFILE: the key=value pairs of the last `phases:` line, or nothing
	sed -n 's/.*phases: //p' "$1" | tail -n 1
}

# Can each one run the payload at all? This is the only way the script fails.
for vmm in flint floor qemu; do
	line=$(run_$vmm -o "$T/check.out" -e "$T/check.err")
	st=$(echo "$line" | field status)
	if [ "$st" != "$EXPECT" ]; then
		echo "startup: $vmm did not run the payload (exit $st, expected $EXPECT):" >&2
		tail -n 20 "$T/check.out" "$T/check.err" >&2
		exit 1
	fi
done

echo "flint startup benchmark — $(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -r), $(nproc) CPUs"
# The build flint says it is (the binary measured may not be this checkout's HEAD).
desc=$("$FLINT" --version 2>/dev/null | sed -n 's/^flint \([^,]*\),.*/\1/p')
echo "flint ${desc:-?}, $("$QEMU" --version | head -n 1)"
echo "payload $PAYLOAD, $MEM MiB guest RAM, 1 vCPU"

# 1 + 2: interleaved runs, flint, floor, QEMU, warm-up runs discarded. Each line: the vmrun
# fields, then the program's phases (none from QEMU, none from a flint without the line).
for v in flint floor qemu; do : >"$T/$v.runs"; done
: >"$T/flint.boot"
i=0
while [ $i -lt $((WARM + RUNS)) ]; do
	fl=$(run_flint -e "$T/flint.err") || :
	fo=$(run_floor -e "$T/floor.err") || :
	qe=$(run_qemu) || :
	if [ $i -ge "$WARM" ]; then
		echo "$fl $(phases "$T/flint.err")" >>"$T/flint.runs"
		echo "$fo $(phases "$T/floor.err")" >>"$T/floor.runs"
		echo "$qe" >>"$T/qemu.runs"
		sed -n 's/.*guest boot time: \([0-9]*\) us.*/\1/p' "$T/flint.err" >>"$T/flint.boot"
	fi
	i=$((i + 1))
done

# 3: exec -> first KVM_RUN through vmrun -k (separate runs: -k slows every later KVM_RUN).
for v in flint floor qemu; do : >"$T/$v.krun"; done
i=0
while [ $i -lt "$KRUNS" ]; do
	run_flint -k >>"$T/flint.krun" || :
	run_floor -k >>"$T/floor.krun" || :
	run_qemu -k >>"$T/qemu.krun" || :
	i=$((i + 1))
done

# 3, cross-check: strace timestamps of execve and of the first KVM_RUN (strace stops the
# process at every syscall, so this is inflated and reported apart).
for v in flint floor qemu; do : >"$T/$v.strace"; done
strace_run() { # strace_run OUT CMD...: appends the µs from execve to the first KVM_RUN
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
		strace_run "$T/floor.strace" "$FLOOR" "$PAYLOAD" $MEM "$APPEND"
		qemu_cmd strace_run "$T/qemu.strace"
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
	grep -vc "status=$EXPECT\( \|\$\)" "$1" || :
}
ms() { awk -v x="$1" 'BEGIN { printf "%.1f", x / 1000 }'; }
mib() { awk -v x="$1" 'BEGIN { printf "%.2f", x / 1024 }'; }
num() { printf '%s' "$1"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else printf "-" }'; }
row() { # row LABEL "n median min max" SCALE(ms|mib|num)
	# shellcheck disable=SC2086 # split "n median min max"
	set -- "$1" $2 "$3"
	if [ "$2" -eq 0 ]; then
		printf '  %-36s %s\n' "$1" "no successful run"
		return
	fi
	printf '  %-36s median %8s  min %8s  max %8s  (n=%s)\n' "$1" \
		"$($6 "$3")" "$($6 "$4")" "$($6 "$5")" "$2"
}

# phase_split FILE: "NAME MEDIAN_MS" lines (2 decimals), then "runs N", over the successful
# runs that carry a phases line; each phase is its end time minus the previous phase's.
phase_split() {
	awk -v want="$EXPECT" '
	BEGIN {
		n = split("main config memory load vm devices vcpu sandbox first_run guest_exit exit", p, " ")
		m = split("exec config memory load vm devices vcpu sandbox first_run guest_exit exit teardown total", q, " ")
	}
	{
		split("", f)
		for (k = 1; k <= NF; k++) {
			eq = index($k, "=")
			if (eq) f[substr($k, 1, eq - 1)] = substr($k, eq + 1)
		}
		if (f["status"] != want || !(("start_ns") in f) || f["start_ns"] < 0) next
		for (j = 1; j <= n; j++) if (!(p[j] in f)) next
		runs++
		val["exec", runs] = f["main"] - f["start_ns"]
		for (j = 2; j <= n; j++) val[p[j], runs] = f[p[j]] - f[p[j - 1]]
		val["teardown", runs] = f["end_ns"] - f["exit"]
		val["total", runs] = f["end_ns"] - f["start_ns"]
	}
	END {
		if (!runs) exit
		for (j = 1; j <= m; j++) {
			for (r = 1; r <= runs; r++) a[r] = val[q[j], r]
			for (r = 2; r <= runs; r++) { # insertion sort: a few dozen values
				x = a[r]
				for (s = r - 1; s >= 1 && a[s] > x; s--) a[s + 1] = a[s]
				a[s + 1] = x
			}
			med = (runs % 2) ? a[(runs + 1) / 2] : (a[runs / 2] + a[runs / 2 + 1]) / 2
			printf "%s %.2f\n", q[j], med / 1e6
		}
		printf "runs %d\n", runs
	}' "$1"
}

median() { stats "$@" | cut -d' ' -f2; }
FW=$(median "$T/flint.runs" wall_us)
[ "$FW" -ge 0 ] || die "flint: no run succeeded"
OW=$(median "$T/floor.runs" wall_us)
[ "$OW" -ge 0 ] || die "floor: no run succeeded"
QW=$(median "$T/qemu.runs" wall_us)
[ "$QW" -ge 0 ] || die "qemu: no run succeeded"
FC=$(median "$T/flint.runs" cpu_us)
OC=$(median "$T/floor.runs" cpu_us)
QC=$(median "$T/qemu.runs" cpu_us)
FR=$(median "$T/flint.runs" maxrss_kib)
OR=$(median "$T/floor.runs" maxrss_kib)
QR=$(median "$T/qemu.runs" maxrss_kib)

echo
echo "1. exec -> payload exit: wall time (fork to wait4), CPU time (user+sys), peak RSS"
echo "   (wait4 ru_maxrss); runs interleaved flint, floor, qemu; $WARM warm-up runs dropped"
row "flint wall, ms" "$(stats "$T/flint.runs" wall_us)" ms
row "floor wall, ms" "$(stats "$T/floor.runs" wall_us)" ms
row "qemu wall, ms" "$(stats "$T/qemu.runs" wall_us)" ms
row "flint CPU, ms" "$(stats "$T/flint.runs" cpu_us)" ms
row "floor CPU, ms" "$(stats "$T/floor.runs" cpu_us)" ms
row "qemu CPU, ms" "$(stats "$T/qemu.runs" cpu_us)" ms
row "flint peak RSS, MiB" "$(stats "$T/flint.runs" maxrss_kib)" mib
row "floor peak RSS, MiB" "$(stats "$T/floor.runs" maxrss_kib)" mib
row "qemu peak RSS, MiB" "$(stats "$T/qemu.runs" maxrss_kib)" mib
row "flint page faults (minor)" "$(stats "$T/flint.runs" minflt)" num
row "floor page faults (minor)" "$(stats "$T/floor.runs" minflt)" num
row "flint context switches" "$(stats "$T/flint.runs" csw)" num
row "floor context switches" "$(stats "$T/floor.runs" csw)" num
row "flint main() -> boot-timer write, ms" "$(stats "$T/flint.boot")" ms
echo "  (the last is flint's 'guest boot time' log line: from main(), so without exec and linking)"
printf '  %-12s %12s %12s\n' "of medians" "flint/floor" "flint/qemu"
printf '  %-12s %12s %12s\n' "wall" "$(ratio "$FW" "$OW")" "$(ratio "$FW" "$QW")"
printf '  %-12s %12s %12s\n' "CPU" "$(ratio "$FC" "$OC")" "$(ratio "$FC" "$QC")"
printf '  %-12s %12s %12s\n' "peak RSS" "$(ratio "$FR" "$OR")" "$(ratio "$FR" "$QR")"
nf=$(fails "$T/flint.runs")
no=$(fails "$T/floor.runs")
nq=$(fails "$T/qemu.runs")
[ "$nf$no$nq" = 000 ] || echo "  failed runs left out: flint $nf, floor $no, qemu $nq"

echo
echo "2. where the time goes: median ms of each phase, from the runs of 1"
phase_split "$T/flint.runs" >"$T/flint.split"
phase_split "$T/floor.runs" >"$T/floor.split"
get() { # get FILE NAME: the median of phase NAME, or -
	v=$(sed -n "s/^$2 //p" "$1")
	echo "${v:--}"
}
srow() { # srow LABEL NAME
	printf '  %-44s %8s %8s\n' "$1" "$(get "$T/flint.split" "$2")" "$(get "$T/floor.split" "$2")"
}
printf '  %-44s %8s %8s\n' "" flint floor
srow "exec + dynamic linking (execve -> main)" exec
srow "config (command line, config file)" config
srow "memory (guest RAM: memfd, mmap)" memory
srow "load (image, cmdline, boot structures)" load
srow "vm (VM, irqchip, PIT, memslots)" vm
srow "devices" devices
srow "vcpu (create, set up; flint: its thread)" vcpu
srow "sandbox (capabilities, seccomp)" sandbox
srow "first KVM_RUN returned" first_run
srow "guest runs to the exit port" guest_exit
srow "exit (exit port -> leaving main)" exit
srow "after exit (kernel teardown, to wait4)" teardown
srow "total (execve -> wait4)" total
echo "  (runs with a phases line: flint $(get "$T/flint.split" runs), floor $(get "$T/floor.split" runs);" \
	"'-': none; each row is a"
echo "   median on its own, so the rows need not add up to the total; the floor has no config,"
echo "   devices or sandbox phase)"

echo
echo "3. exec -> first KVM_RUN, ms"
row "flint (vmrun -k, seccomp stop)" "$(stats "$T/flint.krun" kvm_run_us)" ms
row "floor (vmrun -k, seccomp stop)" "$(stats "$T/floor.krun" kvm_run_us)" ms
row "qemu (vmrun -k, seccomp stop)" "$(stats "$T/qemu.krun" kvm_run_us)" ms
echo "  (vmrun -k: separate runs; a seccomp filter stops only ioctl(KVM_RUN) under ptrace, timed from execve)"
if [ -s "$T/flint.strace" ]; then
	row "flint (strace, inflated)" "$(stats "$T/flint.strace")" ms
	row "floor (strace, inflated)" "$(stats "$T/floor.strace")" ms
	row "qemu (strace, inflated)" "$(stats "$T/qemu.strace")" ms
	echo "  (strace -f -ttt -e trace=execve,ioctl: separate runs; strace stops every syscall, so these are inflated)"
else
	echo "  strace: skipped (BENCH_STRACE_RUNS=0, or no strace)"
fi

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

RW=$(ratio "$FW" "$OW")
RQ=$(ratio "$FW" "$QW")
FM=$(mib "$FR")
OM=$(mib "$OR")
met() { awk -v x="$1" -v lim="$2" 'BEGIN { print (x <= lim) ? "met" : "NOT met" }'; }
echo
echo "goals: flint/floor wall <= 1.3: $(met "$RW" 1.3) ($RW);" \
	"flint rss <= floor + 0.5 MiB: $(met "$(awk -v f="$FM" -v o="$OM" 'BEGIN { print f - o }')" 0.5)" \
	"($FM vs $OM MiB)"
echo "startup: flint $(ms "$FW") ms, floor $(ms "$OW") ms, qemu $(ms "$QW") ms;" \
	"flint/floor $RW, flint/qemu $RQ; rss flint $FM floor $OM MiB"
