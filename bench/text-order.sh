#!/bin/sh
# make text-order: profile one start of flint and rewrite vmm/text-order.ld from it.
# The start profiled is bench/startup.sh's (build/guest/pvh.elf, 1 vCPU, 128 MiB, exit at
# port 0xf4), under `valgrind --tool=callgrind --dump-instr=yes`, on this host's /dev/kvm
# when it works, else inside the rig's L1 (its nested KVM). bench/text-order.c turns the
# executed addresses and build/flint.map into the list of input sections to lay out first.
# Usage: text-order.sh [BUILD]    (needs make all guest-payloads; `make text-order` runs it)
set -eu
B=${1:-build}
die() { echo "text-order: $*" >&2; exit 1; }
[ -x "$B/flint" ] && [ -f "$B/flint.map" ] || die "no $B/flint or $B/flint.map (run: make all)"
[ -f "$B/guest/pvh.elf" ] || die "no $B/guest/pvh.elf (run: make guest-payloads)"
command -v valgrind >/dev/null 2>&1 ||
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends valgrind \
		>/dev/null 2>&1 || die "no valgrind (apt-get install valgrind)"
out=$B/bench/text-order
mkdir -p "$out"
cc -O2 -std=c11 -Wall -Wextra -Werror -o "$out/text-order" bench/text-order.c

# The profiled runs. Under valgrind flint runs without its seccomp filters (valgrind makes
# system calls of its own that no filter allows): the code that installs them is added below.
# A start's path depends a little on timing (a timer that fires or not): three runs, one of
# them with the benchmark's --log-level debug (its phases line), taken together.
cat >"$out/profile.sh" <<'EOF'
#!/bin/sh
# profile.sh FLINT PAYLOAD OUT: three starts of FLINT under callgrind, profiles OUT.1..OUT.3.
set -eu
dir=$(mktemp -d)
printf '{"boot-source":{"kernel_image_path":"%s","boot_args":"%s"},%s}\n' "$2" \
	"flint.test_exit=0 flint.test_mem_mib=128" \
	'"machine-config":{"vcpu_count":1,"mem_size_mib":128},"drives":[]' >"$dir/vm.json"
for i in 1 2 3; do
	debug=
	[ "$i" != 3 ] || debug="--log-level debug"
	rc=0
	# shellcheck disable=SC2086 # $debug: no option, or two words
	valgrind -q --tool=callgrind --dump-instr=yes --callgrind-out-file="$3.$i" "$1" \
		--config-file "$dir/vm.json" --no-console --exit-port 0xf4 --no-seccomp $debug \
		2>/dev/null || rc=$?
	# The payload exits with (0 << 1) | 1.
	[ "$rc" = 1 ] || { echo "profile: flint exited $rc, not 1" >&2; rm -rf "$dir"; exit 1; }
done
rm -rf "$dir"
EOF

if [ "$(sh tests/kvm/where.sh "$B")" = host ]; then
	sh "$out/profile.sh" "$(cd "$B" && pwd)/flint" "$B/guest/pvh.elf" "$out/callgrind.out"
else
	echo "text-order: no usable /dev/kvm on this host: profiling inside the kernel rig" >&2
	make -s BUILD="$B" rig-kernel
	kdir=$(cat "$B/rig/kernel.dir")
	cat >"$out/case.sh" <<'EOF'
#!/bin/sh
sh /rig/profile.sh /rig/flint /rig/pvh.elf /tmp/callgrind.out || exit 1
echo BEGIN-PROFILE
tar -C /tmp -cf - callgrind.out.1 callgrind.out.2 callgrind.out.3 | gzip -c | base64
echo END-PROFILE
EOF
	vg=/usr/libexec/valgrind
	bash tests/rig/mkinitramfs.sh -o "$out/l1.cpio.gz" --timeout 600 \
		--case "$out/case.sh:profile" --add "$out/profile.sh:/rig/profile.sh" \
		--add-bin "$B/flint:/rig/flint" --add "$B/guest/pvh.elf:/rig/pvh.elf" \
		--add-bin /usr/bin/valgrind.bin:/usr/bin/valgrind \
		--add "$vg/callgrind-amd64-linux:$vg/callgrind-amd64-linux" \
		--add "$vg/default.supp:$vg/default.supp" >/dev/null
	BUILD=$B bash tests/rig/run.sh --kernel "$kdir/bzImage" --initrd "$out/l1.cpio.gz" \
		--log "$out/serial.log" --timeout 900 >/dev/null 2>&1 ||
		die "the rig run failed; see $out/serial.log"
	tr -d '\r' <"$out/serial.log" | sed -n '/^\[profile\] BEGIN-PROFILE$/,/^\[profile\] END-PROFILE$/p' |
		sed '1d;$d;s/^\[profile\] //' | base64 -d | gzip -dc | tar -C "$out" -xf - ||
		die "no profile in $out/serial.log"
fi

# The code the profile cannot see: with --no-seccomp, what installs the filters in
# vmm/sandbox.c and vmm/base/sysfilter.c does not run (libc's prctl and syscall, which it
# calls, other code does).
"$out/text-order" "$B/flint.map" "$out"/callgrind.out.[123] -- \
	'*libflint.a:sandbox.o(.text.*)' '*libflint.a:sysfilter.o(.text.*)' >"$out/text-order.ld"
mv "$out/text-order.ld" vmm/text-order.ld
echo "text-order: wrote vmm/text-order.ld" >&2
