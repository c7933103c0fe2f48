#!/bin/sh
# Runs test programs, plain and sanitized, and totals cmocka's summaries.
# Usage: run-unit.sh BUILD_DIR SUITE...      SUITE: unit/test_x or kvm/test_y
# kvm/ programs need KVM: they run here when tests/kvm/where.sh says `host`; otherwise they
# are named as left to the rig (make check-rig runs them) and not counted here.
set -u
build=$1
shift
here=$(dirname "$0")
where=$(sh "$here/kvm/where.sh" "$build") || exit 1
suites=""
left=""
for s in "$@"; do
	case $s in
	kvm/*)
		if [ "$where" != host ]; then
			n=$("$build/tests/$s" --list | wc -l)
			left="$left${left:+, }$s ($n test$([ "$n" = 1 ] || echo s))"
			continue
		fi ;;
	esac
	suites="$suites $s"
done

passed=0
failed=0
status=0
for flavour in "" asan/; do
	for t in $suites; do
		bin="$build/${flavour}tests/$t"
		echo "== ${flavour:-plain/}$t"
		out=$(FLINT_BIN="$build/${flavour}flint" FLINT_BUILD="$build" "$bin" 2>&1)
		rc=$?
		printf '%s\n' "$out"
		p=$(printf '%s\n' "$out" | sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' | tail -n 1)
		f=$(printf '%s\n' "$out" | sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' | tail -n 1)
		passed=$((passed + ${p:-0}))
		failed=$((failed + ${f:-0}))
		if [ "$rc" -ne 0 ]; then
			status=1
			# A crash before cmocka's summary still counts as a failure.
			[ -n "$f" ] || failed=$((failed + 1))
		fi
	done
done
if [ "$where" = host ]; then
	echo "kvm tests: host /dev/kvm"
else
	echo "kvm tests: left to the rig, not counted here: $left, each plain and ASan (${where#rig: })"
fi
echo "unit: $passed passed, $failed failed"
exit $status
