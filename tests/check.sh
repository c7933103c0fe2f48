#!/usr/bin/env bash
# make check: every stage in order, each timed, stopping at the first that fails.
#   deps    Debian packages (tests/deps.sh)
#   build   flint, its ASan build, the test programs and guest payloads
#   unit    the unit tests, plus the KVM tests when this host's /dev/kvm works
#   kernel  the rig kernel (built once, then cached)
#   rig     the rig: the kernel-facing cases, flint in L1, and the KVM tests when this
#           host has no usable /dev/kvm
# Ends with where the KVM tests ran and the time each stage took.
# Usage: check.sh BUILD_DIR   (MAKE: the make to call, from the Makefile)
set -uo pipefail
build=${1:-build}
make=${MAKE:-make}
times=()
status=0

# The rig's result lines for the KVM tests, counted (the serial console ends lines with CR).
kvm_cases() {
	local log=$build/rig/serial.log
	[ -f "$log" ] || { echo "not run"; return; }
	tr -d '\r' <"$log" | awk '/^PASS 7[01]-kvm-/ {p++} /^FAIL 7[01]-kvm-/ {f++}
		END {printf "%d passed, %d failed\n", p, f}'
}

summary() {
	local where
	where=$(sh tests/kvm/where.sh "$build" 2>/dev/null || echo "?")
	echo "----"
	case $where in
	host) echo "kvm tests: host /dev/kvm" ;;
	"?") echo "kvm tests: not run (the build did not get that far)" ;;
	*) echo "kvm tests: in the rig (no usable /dev/kvm on this host)"
	   echo "  (probe: ${where#rig: }; rig cases 70-kvm-*/71-kvm-asan-*: $(kvm_cases))" ;;
	esac
	local t line=""
	for t in "${times[@]}"; do line+="$t, "; done
	echo "time: ${line}total ${SECONDS}s"
}

stage() {
	local name=$1 start=$SECONDS rc=0
	shift
	"$@" || rc=$?
	times+=("$name $((SECONDS - start))s")
	if [ "$rc" -ne 0 ]; then
		status=$rc
		summary
		echo "make check: stage '$name' failed"
		exit "$status"
	fi
}

SECONDS=0
rm -f "$build/rig/serial.log" # counted in the summary: never a stale one
stage deps "$make" --no-print-directory deps
stage build "$make" --no-print-directory check-build
stage unit "$make" --no-print-directory check-unit
stage kernel "$make" --no-print-directory rig-kernel
stage rig "$make" --no-print-directory check-rig
summary
