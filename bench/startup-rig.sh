#!/bin/sh
# make bench-startup on a host without a usable /dev/kvm: the same benchmark (startup.sh),
# flint, the floor (bench/floor.c) and QEMU -M microvm all on the nested KVM of the rig's L1
# (QEMU TCG -> Linux 7.3), in one run. Absolute numbers are the rig's, not a real host's;
# the ratios are what compares.
# Usage: startup-rig.sh [BUILD]    (called by startup.sh)
set -eu
build=${1:-build}
out=$build/bench/startup-rig
mkdir -p "$out"
make -s BUILD="$build" rig-kernel
kdir=$(cat "$build/rig/kernel.dir")
qemu=$(command -v qemu-system-x86_64) || { echo "startup: no qemu-system-x86_64" >&2; exit 1; }
cc -O2 -Wall -Wextra -std=gnu11 -o "$out/vmrun" bench/vmrun.c
# Linked as on the host, as flint is (the Makefile's rule).
make -s BUILD="$build" "$build/bench/floor"
cp "$build/bench/floor" "$out/floor"
# The run counts: the host's BENCH_* if set, else 40 interleaved rounds (42 with the
# warm-up), more than on a host: in the rig the kernel's teardown of a VM alone varies from
# 15 to 47 ms between runs of the same program, and the medians of 20 rounds moved the ratio
# by up to 0.15 between runs. Fewer strace rounds (3), which stop at every system call. The
# whole rig run stays well under 10 minutes on this 2-CPU machine even when other work slows
# it 2x (30 rounds and 5 strace rounds took 3.2 minutes on a quiet machine, 7.4 under load).
cat >"$out/case.sh" <<CASE
#!/bin/sh
BENCH_RUNS=${BENCH_RUNS:-40} BENCH_KVM_RUNS=${BENCH_KVM_RUNS:-10} \\
	BENCH_STRACE_RUNS=${BENCH_STRACE_RUNS:-3} BENCH_WARMUP=${BENCH_WARMUP:-2} \\
	sh /rig/bench/startup.sh /rig/bench/build
CASE
# QEMU reads one file besides its libraries here: the microvm firmware.
bash tests/rig/mkinitramfs.sh -o "$out/l1.cpio.gz" --timeout 1500 --case "$out/case.sh:bench" \
	--add bench/startup.sh:/rig/bench/startup.sh \
	--add-bin "$build/flint:/rig/bench/build/flint" \
	--add "$build/guest/pvh.elf:/rig/bench/build/guest/pvh.elf" \
	--add-bin "$out/vmrun:/rig/bench/build/bench/vmrun" \
	--add-bin "$out/floor:/rig/bench/build/bench/floor" \
	--add-bin "$qemu:/usr/bin/qemu-system-x86_64" \
	--add /usr/share/qemu/bios-microvm.bin:/usr/share/qemu/bios-microvm.bin \
	--add-bin "$(command -v strace):/usr/bin/strace" >/dev/null
# On a loaded machine the L1 kernel under TCG can panic early in boot ("timer doesn't work
# through Interrupt-remapped IO-APIC"): then, and only then, boot it once more.
for try in 1 2; do
	BUILD=$build bash tests/rig/run.sh --kernel "$kdir/bzImage" --initrd "$out/l1.cpio.gz" \
		--log "$out/serial.log" --timeout 1800 >/dev/null 2>&1 || true
	res=$(tr -d '\r' <"$out/serial.log" | sed -n 's/^\[bench\] //p')
	if [ -n "$res" ] || [ "$try" = 2 ] || ! grep -q 'Kernel panic' "$out/serial.log"; then
		break
	fi
	echo "startup: the rig's kernel panicked while booting; booting it again" >&2
done
[ -n "$res" ] || { echo "startup: the rig run printed nothing; see $out/serial.log" >&2; exit 1; }
printf '%s\n' "$res" | sed '$ s/$/ (in the rig)/'
printf '%s\n' "$res" | tail -n 1 | grep -q '^startup: ' || exit 1
