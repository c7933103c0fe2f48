#!/usr/bin/env bash
# Boot the rig's L1 machine under QEMU TCG and report the cases' results.
#
# Usage: run.sh [--kernel BZIMAGE] [--initrd CPIO.GZ] [--log FILE]
#               [--timeout SECS] [--silence SECS] [--retries N] [--append ARGS]
#               [-- EXTRA QEMU ARGS]
#   --kernel   default: the cached kernel from build-kernel.sh
#   --initrd   default: $BUILD/rig/initramfs.cpio.gz (BUILD defaults to build)
#   --log      full serial log, default $BUILD/rig/serial.log
#   --timeout  wall-clock limit for the whole run (retries included), default 900 s
#   --silence  the console watchdog: no new console output for this long means L1 itself
#              froze (the rig's init prints a heartbeat every 60 s while a case runs);
#              QEMU is killed at once. Default 300 s; 0 turns the watchdog off
#   --retries  after a frozen L1, or one whose kernel panicked (an oops panics it: oops=panic),
#              boot a fresh one up to N times for the cases that had not reported yet
#              (default 1); said in the summary line. Only a dead L1 counts: a failed case,
#              a timeout or a QEMU failure is never retried
#   --append   extra kernel command-line arguments
# Env: RIG_VERBOSE=1 also streams the whole console while it runs.
#      RIG_QEMU: the emulator to run (default qemu-system-x86_64; the self-test's fake)
#
# Prints the PASS/FAIL lines and the summary; exits non-zero when the summary
# is missing, QEMU timed out, froze or failed, or any case failed.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }

build=${BUILD:-build}
kernel=
initrd=$build/rig/initramfs.cpio.gz
log=$build/rig/serial.log
timeout=900
silence=300
retries=1
append=
while [ $# -gt 0 ]; do
    case $1 in
        --kernel) kernel=$2; shift 2 ;;
        --initrd) initrd=$2; shift 2 ;;
        --log) log=$2; shift 2 ;;
        --timeout) timeout=$2; shift 2 ;;
        --silence) silence=$2; shift 2 ;;
        --retries) retries=$2; shift 2 ;;
        --append) append=$2; shift 2 ;;
        --) shift; break ;;
        -h|--help) usage ;;
        *) echo "run.sh: unknown argument: $1" >&2; usage ;;
    esac
done
for n in "$timeout" "$silence" "$retries"; do
    case $n in ''|*[!0-9]*) rig_die "--timeout, --silence and --retries want whole numbers, got '$n'" ;; esac
done

emu=${RIG_QEMU:-qemu-system-x86_64}
[ -n "${RIG_QEMU:-}" ] || rig_need_pkgs qemu-system-x86
[ -n "$kernel" ] || kernel=$("$here/build-kernel.sh" | tail -n 1)
[ -f "$kernel" ] || rig_die "no kernel at $kernel"
[ -f "$initrd" ] || rig_die "no initramfs at $initrd (build it with mkinitramfs.sh)"
mkdir -p "$(dirname "$log")"

# q35 + intel-iommu with interrupt remapping: iommufd refuses to bind a
# device unless MSIs are isolated (intremap=off -> BIND fails with EPERM).
# -cpu max under TCG exposes SVM+NPT, so L1's /dev/kvm works (nested).
# edu is QEMU's teaching PCI device with a DMA engine (vfio-edu-dma case);
# ivshmem-plain gives L1 a device with a 1 GiB 64-bit BAR (shared memory, allocated as
# it is touched), for a large BAR assigned to L2.
# -no-reboot + panic=-1: a kernel panic ends QEMU at once instead of hanging. oops=panic:
# after an oops L1's memory is not to be trusted (one under TCG's nested SVM was seen
# corrupting L1's page tables mid-run, a case later), so it ends the L1 too, and the cases
# that had not reported run again in a fresh one.
# shellcheck disable=SC2054 # the commas are QEMU's, not array separators
qemu=("$emu" -accel tcg -M q35 -cpu max -m 2G -smp 2
      -device intel-iommu,intremap=on -device edu
      -object memory-backend-ram,id=ivshm,size=1G,share=on -device ivshmem-plain,memdev=ivshm
      -nographic -no-reboot
      -kernel "$kernel" -initrd "$initrd"
      "$@")
cmdline="console=ttyS0 intel_iommu=on iommu.passthrough=0 panic=-1 oops=panic $append"

# The serial console ends lines with CR LF.
results_of() { tr -d '\r' <"$1" | grep -E '^(PASS|FAIL) ' || true; }
summary_of() { tr -d '\r' <"$1" | grep -E '^[0-9]+ passed, [0-9]+ failed$' | tail -n 1 || true; }

# Where a console (on stdin) stands: "during case NAME", "after case NAME" (between two
# cases) or "before the first case"; the rig's init prints `rig: case NAME` as each starts.
case_at() {
    tr -d '\r' | awk '
        /^rig: case [^ ]+$/ { cur = $3; done = 0 }
        ($1 == "PASS" || $1 == "FAIL") && $2 == cur { done = 1 }
        END {
            if (cur == "") print "before the first case"
            else if (done) print "after case " cur
            else print "during case " cur
        }'
}

qpid=
tpid=
# stop_qemu: SIGTERM, and SIGKILL if QEMU is still there 10 s later.
stop_qemu() {
    local i
    kill -TERM "$qpid" 2>/dev/null || return 0
    for i in 1 2 3 4 5 6 7 8 9 10; do
        sleep 1
        kill -0 "$qpid" 2>/dev/null || return 0
    done
    rig_log "QEMU ignored SIGTERM for ${i}s: SIGKILL"
    kill -KILL "$qpid" 2>/dev/null || true
}
# QEMU runs in the background (so that the console can be watched); it must not outlive
# this script, however that ends.
trap '[ -z "$qpid" ] || kill -KILL "$qpid" 2>/dev/null; [ -z "$tpid" ] || kill "$tpid" 2>/dev/null; true' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# boot LOG LIMIT EXTRA_CMDLINE: one L1, its console in LOG, for at most LIMIT seconds, and
# killed once the console has been silent for $silence seconds. Sets why (timeout, frozen,
# panicked: L1's kernel panicked before the summary; or empty), qrc (QEMU's exit status)
# and, over all boots, quiet and quiet_at: the longest silence seen and where it fell.
quiet=0
quiet_at=
boot() {
    local out=$1 limit=$2 size=0 now seen started
    why=
    qrc=0
    "${qemu[@]}" -append "$cmdline$3" </dev/null >"$out" 2>&1 &
    qpid=$!
    if [ "${RIG_VERBOSE:-0}" = 1 ]; then
        tail -n +1 -f --pid="$qpid" "$out" &
        tpid=$!
    fi
    started=$SECONDS
    seen=$SECONDS
    while kill -0 "$qpid" 2>/dev/null; do
        sleep 1
        now=$(stat -c %s "$out" 2>/dev/null || echo 0)
        if [ "$now" != "$size" ]; then
            if [ $((SECONDS - seen)) -gt "$quiet" ]; then
                quiet=$((SECONDS - seen))
                quiet_at=$(head -c "$size" "$out" | case_at)
            fi
            size=$now
            seen=$SECONDS
        elif [ "$silence" -gt 0 ] && [ $((SECONDS - seen)) -ge "$silence" ]; then
            why=frozen
            stop_qemu
            break
        fi
        if [ $((SECONDS - started)) -ge "$limit" ]; then
            why=timeout
            stop_qemu
            break
        fi
    done
    wait "$qpid" || qrc=$?
    qpid=
    # grep on the file (CR LF lines): a pipe into grep -q could end in SIGPIPE, not a match.
    if [ -z "$why" ] && [ "$qrc" = 0 ] && [ -z "$(summary_of "$out")" ] &&
        grep -q '^\[ *[0-9.]*\] Kernel panic - not syncing' "$out"; then
        why=panicked
    fi
    if [ -n "$tpid" ]; then
        wait "$tpid" || true
        tpid=
    fi
}

rig_log "booting L1 (log: $log, timeout ${timeout}s, console watchdog ${silence}s)"
start=$SECONDS
attempt=1
retried=
boot "$log" "$timeout" ""
last=$log # the last L1's console alone: where it stood, whether it panicked
where=
while [ "$why" = frozen ] || [ "$why" = panicked ]; do
    where=$(case_at <"$last")
    if [ "$why" = frozen ]; then
        dead="L1 froze $where"
        rig_log "no console output for ${silence} s $where: L1 frozen"
    else
        dead="L1 panicked $where"
        rig_log "L1's kernel panicked $where"
    fi
    left=$((timeout - (SECONDS - start)))
    if [ "$attempt" -gt "$retries" ] || [ "$left" -lt 60 ]; then
        break
    fi
    attempt=$((attempt + 1))
    # A fresh L1 for every case that had not reported: the rig's init skips the cases up
    # to and including rig.skip (the last with a PASS or FAIL line).
    skip=$(results_of "$log" | tail -n 1 | awk '{print $2}')
    which="from the first"
    [ -z "$skip" ] || which="after $skip"
    note="$dead; a fresh L1 ran the cases $which"
    retried="$retried${retried:+; }$note"
    rig_log "retry $((attempt - 1)) of $retries: a fresh L1 for the cases $which (${left}s left)"
    boot "$log.retry" "$left" "${skip:+ rig.skip=$skip}"
    { printf 'rig: ==== %s ====\n' "$note"; cat "$log.retry"; } >>"$log"
    last=$log.retry
done
elapsed=$((SECONDS - start))

results=$(results_of "$log")
summary=$(summary_of "$log")
# After a retry the last summary counts the last L1's cases only: count them all.
if [ -n "$retried" ] && [ -n "$summary" ]; then
    summary=$(printf '%s\n' "$results" |
        awk '$1 == "PASS" {p++} $1 == "FAIL" {f++} END {printf "%d passed, %d failed\n", p, f}')
fi
[ -n "$results" ] && printf '%s\n' "$results"

problem=
if [ "$why" = timeout ]; then
    problem="QEMU timed out after ${timeout}s"
elif [ "$why" = frozen ]; then
    problem="no console output for ${silence} s $where: L1 frozen"
elif [ "$why" = panicked ]; then
    problem="L1's kernel panicked $where"
elif [ "$qrc" != 0 ]; then
    problem="QEMU exited with status $qrc"
elif [ -z "$summary" ]; then
    problem="no summary line in the serial log"
elif ! printf '%s\n' "$summary" | grep -q ' 0 failed$' || printf '%s\n' "$results" | grep -q '^FAIL '; then
    problem="a case failed"
fi
if [ -z "$summary" ] && [ "$why" != panicked ] && grep -q 'Kernel panic' "$last"; then
    problem="$problem (kernel panic)"
fi
rm -f "$log.retry"
rig_log "longest console silence: ${quiet}s${quiet_at:+ ($quiet_at)}"
[ -z "$retried" ] || summary="$summary (retried: $retried)"

if [ -n "$problem" ]; then
    # Enough of the console to see what went wrong without opening the log.
    echo "---- last 40 lines of $log ----" >&2
    tr -d '\r' <"$log" | tail -n 40 >&2
    echo "----" >&2
    rig_log "FAILED: $problem (after ${elapsed}s)"
    [ -n "$summary" ] && echo "$summary"
    exit 1
fi
rig_log "L1 run took ${elapsed}s"
echo "$summary"
