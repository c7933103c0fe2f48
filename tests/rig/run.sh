#!/usr/bin/env bash
# Boot the rig's L1 machine under QEMU TCG and report the cases' results.
#
# Usage: run.sh [--kernel BZIMAGE] [--initrd CPIO.GZ] [--log FILE]
#               [--timeout SECS] [--append ARGS] [-- EXTRA QEMU ARGS]
#   --kernel   default: the cached kernel from build-kernel.sh
#   --initrd   default: $BUILD/rig/initramfs.cpio.gz (BUILD defaults to build)
#   --log      full serial log, default $BUILD/rig/serial.log
#   --timeout  wall-clock limit for the whole QEMU run, default 900 s
#   --append   extra kernel command-line arguments
# Env: RIG_VERBOSE=1 also streams the whole console while it runs.
#
# Prints the PASS/FAIL lines and the summary; exits non-zero when the summary
# is missing, QEMU timed out or failed, or any case failed.
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
append=
while [ $# -gt 0 ]; do
    case $1 in
        --kernel) kernel=$2; shift 2 ;;
        --initrd) initrd=$2; shift 2 ;;
        --log) log=$2; shift 2 ;;
        --timeout) timeout=$2; shift 2 ;;
        --append) append=$2; shift 2 ;;
        --) shift; break ;;
        -h|--help) usage ;;
        *) echo "run.sh: unknown argument: $1" >&2; usage ;;
    esac
done

rig_need_pkgs qemu-system-x86
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
# -no-reboot + panic=-1: a kernel panic ends QEMU at once instead of hanging.
# shellcheck disable=SC2054 # the commas are QEMU's, not array separators
qemu=(qemu-system-x86_64 -accel tcg -M q35 -cpu max -m 2G -smp 2
      -device intel-iommu,intremap=on -device edu
      -object memory-backend-ram,id=ivshm,size=1G,share=on -device ivshmem-plain,memdev=ivshm
      -nographic -no-reboot
      -kernel "$kernel" -initrd "$initrd"
      -append "console=ttyS0 intel_iommu=on iommu.passthrough=0 panic=-1 $append"
      "$@")

rig_log "booting L1 (log: $log, timeout ${timeout}s)"
start=$SECONDS
rc=0
if [ "${RIG_VERBOSE:-0}" = 1 ]; then
    timeout -k 10 "$timeout" "${qemu[@]}" </dev/null 2>&1 | tee "$log" || rc=$?
else
    timeout -k 10 "$timeout" "${qemu[@]}" </dev/null >"$log" 2>&1 || rc=$?
fi
elapsed=$((SECONDS - start))

# The serial console ends lines with CR LF.
results=$(tr -d '\r' <"$log" | grep -E '^(PASS|FAIL) ' || true)
summary=$(tr -d '\r' <"$log" | grep -E '^[0-9]+ passed, [0-9]+ failed$' | tail -n 1 || true)
[ -n "$results" ] && printf '%s\n' "$results"

problem=
if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
    problem="QEMU timed out after ${timeout}s"
elif [ "$rc" != 0 ]; then
    problem="QEMU exited with status $rc"
elif [ -z "$summary" ]; then
    problem="no summary line in the serial log"
elif ! printf '%s\n' "$summary" | grep -q ' 0 failed$' || printf '%s\n' "$results" | grep -q '^FAIL '; then
    problem="a case failed"
fi
if [ -z "$summary" ] && grep -q 'Kernel panic' "$log"; then
    problem="$problem (kernel panic)"
fi

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
