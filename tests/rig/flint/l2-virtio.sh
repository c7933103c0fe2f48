#!/bin/sh
# Rig case helper: flint (inside L1) boots L2 with virtio devices described in
# Firecracker's schema; L2's init runs the check named by flint.check= and answers through
# the CI exit port (0 = pass). Usage: l2-virtio.sh NAME CHECK 'JSON SECTIONS'
# JSON SECTIONS: top-level config members, e.g. '"entropy": {}'. Env L2_FLINT_ARGS: more flags.
set -eu
# shellcheck source=tests/rig/flint/case-lib.sh
. /rig/lib/case-lib.sh
l2_config "$1" "pci=off flint.check=$2" "$3"
# shellcheck disable=SC2086 # L2_FLINT_ARGS: more of flint's flags, split on spaces
l2_run "$1" 'flint-l2|virtio|Kernel panic|BUG' "L2's check $2 wrote 0 to the exit port" ${L2_FLINT_ARGS:-}
