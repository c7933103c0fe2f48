#!/bin/sh
# Stages the KVM tests for the kernel rig when this host cannot run them (where.sh):
# each test of each tests/kvm program, plain and sanitized, becomes a rig case of its own,
# `70-kvm-<program>.<test>` and `71-kvm-asan-<program>.<test>`, run in L1 on its nested KVM
# from a copy of the tree's layout under /rig/kvm (build/flint, build/guest, configs/...).
# Prints mkinitramfs.sh options, one a line (none when the KVM tests run on the host).
# Usage: rig-stage.sh BUILD_DIR CASE_DIR kvm/PROGRAM...
set -eu
build=$1
cases=$2
shift 2
where=$(sh "$(dirname "$0")/where.sh" "$build")
[ "${where%%:*}" = rig ] || exit 0
rm -rf "$cases"
mkdir -p "$cases"
echo "--add-bin $build/flint:/rig/kvm/build/flint"
echo "--add-bin $build/asan/flint:/rig/kvm/build/asan/flint"
echo "--add $build/guest:/rig/kvm/build/guest"
echo "--add configs:/rig/kvm/configs"
for flavour in "" asan/; do
	prefix=70-kvm-
	[ -n "$flavour" ] && prefix=71-kvm-asan-
	for suite in "$@"; do
		bin=$build/${flavour}tests/$suite
		prog=${suite##*/}
		echo "--add-bin $bin:/rig/kvm/build/${flavour}tests/$suite"
		"$bin" --list >"$cases/.list" || { echo "rig-stage.sh: $bin --list failed" >&2; exit 1; }
		while read -r t; do
			f=$cases/$prefix$prog.$t
			printf '#!/bin/sh\ncd /rig/kvm && FLINT_BIN=build/%sflint FLINT_BUILD=build exec build/%stests/%s %s\n' \
				"$flavour" "$flavour" "$suite" "$t" >"$f"
			chmod 755 "$f"
			echo "--case $f:$prefix$prog.$t"
		done <"$cases/.list"
	done
done
rm -f "$cases/.list"
