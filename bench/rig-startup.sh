#!/bin/sh
# Device VM start-up, 256 MiB vs 4 GiB of guest RAM, pin vs fault mode, inside the rig
# (a real Linux 7.3 with iommufd under QEMU TCG). Reports; never fails on slowness.
# Usage: rig-startup.sh [BUILD]   (make bench-iommu-startup)
set -eu
build=${1:-build}
out=$build/bench/rig-startup
mkdir -p "$out"
make -s rig-kernel all
kdir=$(cat "$build/rig/kernel.dir")
gcc -O2 -g -Wall -Wextra -Werror -std=gnu11 -D_GNU_SOURCE -I. -Itests/rig/cases -static \
	-isystem "$kdir/usr/include" -o "$out/rig-startup" tests/rig/bench/rig-startup.c \
	"$build/libflint.a" -levent_core -ljansson -lpthread
bash tests/rig/mkinitramfs.sh -o "$out/l1.cpio.gz" --timeout 600 \
	--case "$out/rig-startup:bench" >/dev/null
# L1 needs room to pin 4 GiB of guest RAM: give it 6 GiB (QEMU takes the last -m).
BUILD=$build bash tests/rig/run.sh --kernel "$kdir/bzImage" --initrd "$out/l1.cpio.gz" \
	--log "$out/serial.log" --timeout 900 -- -m 6G >/dev/null 2>&1 || true
tr -d '\r' <"$out/serial.log" | sed -n 's/^\[bench\] //p' | grep -v 'flint info'
