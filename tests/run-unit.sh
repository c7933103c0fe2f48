#!/bin/sh
# Runs every unit test binary, plain and sanitized, and totals cmocka's summaries.
# Usage: run-unit.sh BUILD_DIR TEST...
set -u
build=$1
shift
passed=0
failed=0
status=0
for flavour in "" asan/; do
	for t in "$@"; do
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
echo "unit: $passed passed, $failed failed"
exit $status
