#!/bin/sh
# make soak: the soak (tests/kvm/soak.c), CYCLES start/stop cycles of build/guest/elf64.elf
# in a row, on this host's /dev/kvm when it works (tests/kvm/where.sh), else in the kernel
# rig as its only case, on L1's nested KVM. make check runs 100 cycles as rig case 69.
# Prints the harness's lines; the last is `soak: N passed, N failed`.
#
#   sh tests/kvm/soak.sh BUILD [CYCLES]     (make soak; CYCLES defaults to 1000)
set -eu
build=${1:-build}
cycles=${2:-1000}
where=$(sh tests/kvm/where.sh "$build")
if [ "$where" = host ]; then
	echo "soak: host /dev/kvm"
	exec "$build/tests/soak" "$build/flint" "$build/guest/elf64.elf" "$cycles"
fi
echo "soak: in the rig (${where#rig: }), booting it"
out=$build/rig/soak
mkdir -p "$out"
make -s BUILD="$build" rig-kernel >/dev/null
kdir=$(cat "$build/rig/kernel.dir")
printf '#!/bin/sh\nexec /rig/bin/soak /bin/flint /rig/guest/elf64.elf %s\n' "$cycles" >"$out/case.sh"
bash tests/rig/mkinitramfs.sh -o "$out/l1.cpio.gz" --timeout 7000 --case "$out/case.sh:69-soak" \
	--add-bin "$build/flint:/bin/flint" --add-bin "$build/tests/soak:/rig/bin/soak" \
	--add "$build/guest/elf64.elf:/rig/guest/elf64.elf" >/dev/null
BUILD=$build bash tests/rig/run.sh --kernel "$kdir/bzImage" --initrd "$out/l1.cpio.gz" \
	--log "$out/serial.log" --timeout 7200 >/dev/null 2>&1 || true
tr -d '\r' <"$out/serial.log" | sed -n 's/^\[69-soak\] //p'
tr -d '\r' <"$out/serial.log" | grep -q '^PASS 69-soak' || {
	echo "soak: the rig case did not pass; see $out/serial.log" >&2
	exit 1
}
