#!/usr/bin/env bash
# Self-test of run.sh's console watchdog and retry, with a fake QEMU (no kernel, no KVM):
# a console that goes silent is killed and named (case, seconds, "L1 frozen", exit 1); a
# fresh L1 after a freeze or an L1 kernel panic runs only the cases that had not reported
# and the summary says so; a second freeze, a failed case and a console that is slow but steady are not hidden
# or cut short. Run by make check-unit; prints `run.sh self-test: N passed, N failed`.
#
# Usage: test-run.sh            (BUILD: where the scratch files go, default build)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
dir=${BUILD:-build}/rig-selftest
rm -rf "$dir"
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
: >"$dir/bzImage"
: >"$dir/initrd"

# The fake QEMU: boot N (counted in $dir/boots, each line the -append it got) plays the Nth
# word of FAKE_PLAN, printing like the rig's init on a serial console (CR LF):
#   ok      cases 10-a and 20-b pass (after rig.skip=10-a: only 20-b), summary, exit 0
#   freeze  10-a passes, 20-b starts and prints, then nothing more (its pid in $dir/frozen)
#   quiet   nothing at all from the start
#   slow    10-a prints a line every 2 s for 8 s, passes; summary
#   fail    10-a fails; summary
#   panic   10-a passes (unless skipped), 20-b starts; L1's kernel oopses and panics (no
#           summary), exit 0
#   sumpanic both pass, the summary, then a panic (the run is over: not a dead L1)
#   l2panic 10-a prints an L2's kernel panic, then the console ends with no summary
cat >"$dir/fake-qemu" <<'FAKE'
#!/usr/bin/env bash
set -eu
printf 'SeaBIOS (fake)\r\n'
cmdline=
while [ $# -gt 0 ]; do
    [ "$1" = -append ] && cmdline=$2
    shift
done
printf '%s\n' "$cmdline" >>"$FAKE_DIR/boots"
n=$(wc -l <"$FAKE_DIR/boots")
read -r -a plan <<<"$FAKE_PLAN"
say() { printf '%s\r\n' "$@"; }
say "rig: kernel 7.3.0-fake, 2 cpus"
case $cmdline in *rig.skip=10-a*) skip=1 ;; *) skip=0 ;; esac
case ${plan[$((n - 1))]} in
ok)
    [ "$skip" = 1 ] || say "rig: case 10-a" "PASS 10-a"
    say "rig: case 20-b" "PASS 20-b" "$((2 - skip)) passed, 0 failed" ;;
freeze)
    say "rig: case 10-a" "PASS 10-a" "rig: case 20-b" "[20-b] working"
    echo $$ >"$FAKE_DIR/frozen"
    exec sleep 300 ;;
quiet)
    echo $$ >"$FAKE_DIR/frozen"
    exec sleep 300 >/dev/null ;;
slow)
    say "rig: case 10-a"
    for i in 1 2 3 4; do sleep 2; say "[10-a] tick $i"; done
    say "PASS 10-a" "1 passed, 0 failed" ;;
fail)
    say "rig: case 10-a" "FAIL 10-a (exit 1: broken)" "0 passed, 1 failed" ;;
panic)
    [ "$skip" = 1 ] || say "rig: case 10-a" "PASS 10-a"
    say "rig: case 20-b" "[20-b]   l2| [    1.0] Kernel panic - not syncing: L2's own"
    say "[  278.667152] mm/pgtable-generic.c:36: bad p4d 00000000a2415752(48c5894100000019)"
    say "[  278.692964] Kernel panic - not syncing: Fatal exception" ;;
sumpanic)
    say "rig: case 10-a" "PASS 10-a" "rig: case 20-b" "PASS 20-b" "2 passed, 0 failed"
    say "[  300.000000] Kernel panic - not syncing: Attempted to kill init!" ;;
l2panic)
    say "rig: case 10-a" "[10-a]   l2| [    1.0] Kernel panic - not syncing: L2's own" ;;
esac
FAKE
chmod +x "$dir/fake-qemu"

passed=0
failed=0
out=
rc=0
# run NAME PLAN [run.sh args]: run.sh with the fake; its stdout+stderr in $out, status $rc.
run() {
    local name=$1
    export FAKE_PLAN=$2 FAKE_DIR=$dir/$name
    shift 2
    mkdir -p "$FAKE_DIR"
    rc=0
    out=$(RIG_QEMU=$dir/fake-qemu bash "$here/run.sh" --kernel "$dir/bzImage" --initrd "$dir/initrd" \
        --log "$FAKE_DIR/serial.log" --timeout 90 --silence 3 "$@" 2>&1) || rc=$?
}
# check NAME CONDITION...: one result line; on failure run.sh's output too.
check() {
    local name=$1
    shift
    if "$@"; then
        passed=$((passed + 1))
        echo "ok   $name"
    else
        failed=$((failed + 1))
        echo "FAIL $name ($*)"
        printf '%s\n' "$out" | sed 's/^/    | /'
    fi
}
has() { printf '%s\n' "$out" | grep -qF -- "$1"; }
boots() { [ "$(wc -l <"$dir/$1/boots")" = "$2" ]; }
gone() { ! kill -0 "$(cat "$dir/$1/frozen")" 2>/dev/null; }

start=$SECONDS
run freeze freeze --retries 0
took=$((SECONDS - start))
check "freeze: exit 1" [ "$rc" = 1 ]
check "freeze: says which case and why" has "rig: no console output for 3 s during case 20-b: L1 frozen"
check "freeze: FAILED line" has "rig: FAILED: no console output for 3 s during case 20-b: L1 frozen"
check "freeze: the frozen QEMU is killed" gone freeze
check "freeze: ended soon after the silence (${took}s, limit 90)" [ "$took" -lt 15 ]
check "freeze: the result before the freeze is shown" has "PASS 10-a"

run quiet quiet --retries 0
check "quiet from the start: exit 1, before the first case" \
    has "no console output for 3 s before the first case: L1 frozen"
check "quiet from the start: killed" gone quiet

run retry "freeze ok"
check "retry: exit 0" [ "$rc" = 0 ]
check "retry: two boots" boots retry 2
check "retry: the second skips the case that reported" grep -q ' rig.skip=10-a$' "$dir/retry/boots"
check "retry: the first boot has no rig.skip" sh -c "head -n 1 '$dir/retry/boots' | grep -vq rig.skip"
check "retry: the summary counts both and says it was retried" \
    has "2 passed, 0 failed (retried: L1 froze during case 20-b; a fresh L1 ran the cases after 10-a)"
check "retry: the freeze is reported" has "rig: no console output for 3 s during case 20-b: L1 frozen"
check "retry: one serial log with both boots" \
    sh -c "tr -d '\r' <'$dir/retry/serial.log' | grep -c '^PASS ' | grep -qx 2"

run twice "freeze freeze"
check "frozen twice: exit 1" [ "$rc" = 1 ]
check "frozen twice: two boots, no third" boots twice 2
check "frozen twice: FAILED, frozen" has "rig: FAILED: no console output for 3 s during case 20-b: L1 frozen"

run panic "panic ok"
check "panic: exit 0" [ "$rc" = 0 ]
check "panic: two boots" boots panic 2
check "panic: the second skips the case that reported" grep -q ' rig.skip=10-a$' "$dir/panic/boots"
check "panic: said, with the case" has "rig: L1's kernel panicked during case 20-b"
check "panic: the summary says it was retried" \
    has "2 passed, 0 failed (retried: L1 panicked during case 20-b; a fresh L1 ran the cases after 10-a)"
check "panic: L1 boots with oops=panic" grep -q ' oops=panic' "$dir/panic/boots"

run panic2 "panic panic"
check "panicked twice: exit 1" [ "$rc" = 1 ]
check "panicked twice: two boots, no third" boots panic2 2
check "panicked twice: the retry ran only the case that had not reported" \
    sh -c "tr -d '\r' <'$dir/panic2/serial.log' | grep -c '^PASS 10-a' | grep -qx 1"
check "panicked twice: FAILED, panicked" has "rig: FAILED: L1's kernel panicked during case 20-b"

run panicquiet "panic quiet"
check "a panic, then a retry silent from the start: exit 1" [ "$rc" = 1 ]
check "a panic, then a silent retry: the retry's own place is said" \
    has "rig: FAILED: no console output for 3 s before the first case: L1 frozen"
check "a panic, then a silent retry: not blamed on a panic" sh -c '! printf "%s\n" "$1" | grep -q "frozen (kernel panic)"' - "$out"

run sumpanic "sumpanic ok"
check "a panic after the summary: exit 0" [ "$rc" = 0 ]
check "a panic after the summary: not retried" boots sumpanic 1

run l2panic "l2panic ok"
check "an L2's kernel panic is not L1's: exit 1" [ "$rc" = 1 ]
check "an L2's kernel panic is not L1's: not retried" boots l2panic 1

run fail "fail ok"
check "a failed case: exit 1" [ "$rc" = 1 ]
check "a failed case: not retried" boots fail 1
check "a failed case: said" has "rig: FAILED: a case failed"

run slow slow --silence 4
check "slow but steady (gaps of 2 s over 8 s, watchdog 4 s): exit 0" [ "$rc" = 0 ]
check "slow but steady: one boot" boots slow 1
check "slow but steady: the longest silence is reported" \
    sh -c "printf '%s\\n' \"\$1\" | grep -Eq 'rig: longest console silence: [2-4]s \\(during case 10-a\\)'" - "$out"

run off quiet --retries 0 --silence 0 --timeout 5
check "--silence 0: no watchdog, the wall-clock limit ends it" has "rig: FAILED: QEMU timed out after 5s"

echo "run.sh self-test: $passed passed, $failed failed"
[ "$failed" = 0 ]
