#!/bin/sh
# make demo: flint boots a real Linux guest (the rig kernel + a busybox initramfs) from
# configs/demo.json. On a host with hardware KVM flint runs it directly, with the guest's
# shell on this terminal; elsewhere (a software KVM boots Linux too slowly) the demo runs
# inside the kernel rig: QEMU TCG -> Linux with nested KVM -> flint -> the guest.
set -eu
build=${1:-build}
make -s rig-kernel "$build/rig/l2/initramfs.cpio.gz" >/dev/null
kdir=$(cat "$build/rig/kernel.dir")
mkdir -p "$build/demo"
cp "$kdir/bzImage" "$build/demo/bzImage"
cp "$build/rig/l2/initramfs.cpio.gz" "$build/demo/initramfs.cpio.gz"

if grep -qwE 'vmx|svm' /proc/cpuinfo && [ -w /dev/kvm ]; then
	echo "demo: hardware KVM found: flint boots configs/demo.json here"
	cfg=configs/demo.json
	if [ -t 0 ]; then
		# An interactive terminal gets the guest's shell.
		cfg=$build/demo/demo.json
		sed 's/flint.demo /flint.demo flint.demo_shell /' configs/demo.json >"$cfg"
	fi
	exec "$build/flint" --config-file "$cfg" --exit-port 0xf4
fi

echo "demo: this host's KVM is not hardware-backed, so the demo runs inside the kernel rig:"
echo "demo: QEMU (TCG) boots Linux 7.3, whose nested KVM runs flint, which boots the guest."
sed -e "s|build/demo/bzImage|/rig/l2/bzImage|" -e "s|build/demo/initramfs.cpio.gz|/rig/l2/initramfs.cpio.gz|" \
	configs/demo.json >"$build/demo/rig-demo.json"
cat >"$build/demo/demo-case.sh" <<'CASE'
#!/bin/sh
/bin/flint --config-file /rig/demo.json --exit-port 0xf4 --timeout 300
echo "flint exited with $? (1 = the guest wrote 0 to the CI exit port)"
CASE
bash tests/rig/mkinitramfs.sh -o "$build/demo/l1.cpio.gz" --case "$build/demo/demo-case.sh:demo" \
	--add-bin "$build/flint:/bin/flint" --add "$build/demo/rig-demo.json:/rig/demo.json" \
	--add "$build/demo/bzImage:/rig/l2/bzImage" \
	--add "$build/demo/initramfs.cpio.gz:/rig/l2/initramfs.cpio.gz" >/dev/null
RIG_VERBOSE=1 BUILD=$build bash tests/rig/run.sh --kernel "$build/demo/bzImage" \
	--initrd "$build/demo/l1.cpio.gz" --log "$build/demo/serial.log" 2>&1 |
	tr -d '\r' | sed -n 's/^\[demo\] //p'
