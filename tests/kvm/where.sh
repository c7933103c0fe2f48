#!/bin/sh
# Where the KVM tests (tests/kvm) run: prints `host` when this host's /dev/kvm works,
# else `rig: <why>` (they then run inside the kernel rig's L1, on its nested KVM).
# FLINT_KVM_TESTS=rig sends them to the rig even on a host with KVM.
# Usage: where.sh BUILD_DIR   (needs BUILD_DIR/tests/kvm-probe)
set -eu
probe=$1/tests/kvm-probe
if [ "${FLINT_KVM_TESTS:-}" = rig ]; then
	echo "rig: FLINT_KVM_TESTS=rig"
	exit 0
fi
[ -x "$probe" ] || { echo "where.sh: no $probe (make $probe)" >&2; exit 2; }
if why=$("$probe" 2>&1); then
	echo host
else
	echo "rig: ${why:-kvm-probe failed}"
fi
