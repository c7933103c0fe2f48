#!/bin/sh
# Runs the libFuzzer targets built in OUT (tests/fuzz/fuzz.mk).
# Usage: run.sh fuzz  OUT SECONDS TARGET...   each target SECONDS, one after the other; what
#                                             it finds goes to OUT/corpus/<t>, crashes to
#                                             OUT/crashes/<t>/; one line of stats per target
#        run.sh check OUT SECONDS TARGET...   make check's part: each target SECONDS (two at
#                                             a time, FUZZ_JOBS), from a fresh corpus; then
#                                             every seed and regression input replayed once;
#                                             "fuzz: N passed, N failed", non-zero on a failure
# A target reads tests/fuzz/corpus/<t>/ and tests/fuzz/regressions/<t>/ (never writes them)
# and its dictionary (tests/fuzz/json.dict for the JSON targets, http.dict for mmds). Its whole output is in OUT/logs/<t>.log.
set -u
mode=$1
out=$(cd "$2" && pwd)
secs=$3
shift 3
src=$(cd "$(dirname "$0")" && pwd)
jobs=${FUZZ_JOBS:-2}
status=0

dict() {
	case $1 in
	config | api) echo "-dict=$src/json.dict" ;;
	mmds) echo "-dict=$src/http.dict" ;;
	esac
}

# The seed directories of target $1 that exist (read only: after the work directory).
seeds() {
	for d in "$src/corpus/$1" "$src/regressions/$1"; do
		[ -d "$d" ] && echo "$d"
	done
}

# Fuzzes target $1 for $secs seconds into work directory $2; the log in OUT/logs/$1.log.
fuzz_one() {
	t=$1 work=$2
	mkdir -p "$work" "$out/crashes/$t" "$out/logs"
	# Absolute paths: a target may change directory around the code it runs.
	# shellcheck disable=SC2046
	"$out/fuzz_$t" -max_total_time="$secs" -timeout=10 -print_final_stats=1 \
		-entropic_scale_per_exec_time=1 \
		-artifact_prefix="$out/crashes/$t/" $(dict "$t") "$work" $(seeds "$t") \
		>"$out/logs/$t.log" 2>&1
}

# One line of stats from target $1's log; exit code $2.
report() {
	t=$1 rc=$2 log=$out/logs/$1.log
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
	cov=$(sed -n 's/^#[0-9]*.*cov: \([0-9]*\) ft: \([0-9]*\) corp: \([0-9]*\).*/\1 \2 \3/p' \
		"$log" | tail -n 1)
	set -- $cov
	crashes=$(grep -c 'Test unit written to' "$log")
	[ "$rc" -ne 0 ] && [ "$crashes" -eq 0 ] && crashes=1
	printf 'fuzz %-10s %6s s  %10s execs  %7s execs/s  cov %5s  ft %6s  corpus %5s  crashes %s\n' \
		"$t" "$secs" "${execs:-?}" "${rate:-?}" "${1:-?}" "${2:-?}" "${3:-?}" "$crashes"
	if [ "$crashes" -ne 0 ]; then
		grep -m 1 -A 12 '==ERROR\|fuzz check failed\|^==[0-9]*== ERROR' "$log" | sed 's/^/    /'
		ls -t "$out/crashes/$t" 2>/dev/null | head -n 1 |
			sed "s|^|    input: $out/crashes/$t/|"
		return 1
	fi
	return 0
}

case $mode in
fuzz)
	for t in "$@"; do
		fuzz_one "$t" "$out/corpus/$t"
		report "$t" $? || status=1
	done
	[ $status -eq 0 ] || echo "fuzz: crashes found: reproduce with $out/fuzz_<target> <input>;" \
		"keep each input in tests/fuzz/regressions/<target>/ once fixed"
	exit $status
	;;
check) ;;
*)
	echo "usage: $0 fuzz|check OUT SECONDS TARGET..." >&2
	exit 64
	;;
esac

passed=0
failed=0
# The timed runs, $jobs at a time, each from an empty corpus of its own.
targets="$*"
while [ $# -gt 0 ]; do
	pids=""
	batch=""
	for _ in $(seq "$jobs"); do
		[ $# -gt 0 ] || break
		rm -rf "$out/check/$1"
		fuzz_one "$1" "$out/check/$1" &
		pids="$pids $!"
		batch="$batch $1"
		shift
	done
	i=0
	for t in $batch; do
		i=$((i + 1))
		pid=$(echo "$pids" | cut -d ' ' -f $((i + 1)))
		wait "$pid"
		if report "$t" $?; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
	done
done
# Every seed and regression input, once: all of a target's in one process, and one by one
# only when that fails, to name the inputs that crash.
for t in $targets; do
	files=$(find $(seeds "$t") -type f 2>/dev/null | sort)
	n=$(echo "$files" | grep -c .)
	[ "$n" -gt 0 ] || continue
	# shellcheck disable=SC2086
	if "$out/fuzz_$t" -runs=1 $files >"$out/logs/$t.replay.log" 2>&1; then
		passed=$((passed + n))
		echo "fuzz $t: $n seed and regression inputs replayed"
		continue
	fi
	for f in $files; do
		if "$out/fuzz_$t" -runs=1 "$f" >"$out/logs/$t.replay.log" 2>&1; then
			passed=$((passed + 1))
		else
			failed=$((failed + 1))
			echo "fuzz $t: $f crashes:"
			grep -m 1 -A 12 'ERROR\|fuzz check failed' "$out/logs/$t.replay.log" | sed 's/^/    /'
		fi
	done
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
