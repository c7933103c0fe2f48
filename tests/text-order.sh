#!/bin/sh
# Checks flint's start-up code layout (vmm/text-order.ld) against the link that used it
# (BUILD/flint.map): the hot output section is there, it comes first, and every line of the
# list matched a section. A line matching nothing is a function renamed or gone since the
# profile: its code now lies among the cold code and makes more of the binary resident at
# start (bench/README.md, "Text order"); mend the line or run `make text-order`.
# Usage: text-order.sh BUILD
set -u
map=$1/flint.map
ld=vmm/text-order.ld
passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok: $*"; }
bad() { failed=$((failed + 1)); echo "FAILED: $*"; }

if [ -f "$map" ] && grep -q '^\.text\.flint_hot$' "$map"; then
	ok ".text.flint_hot is in $map"
else
	bad "no .text.flint_hot in $map: flint was not linked with $ld"
fi
first=$(readelf -SW "$1/flint" 2>/dev/null | awk '$2 ~ /^\.text/ { print $2; exit }')
if [ "$first" = .text.flint_hot ]; then
	ok "in $1/flint, .text.flint_hot comes before .text"
else
	bad "the first code section of $1/flint is '${first:-none}', not .text.flint_hot"
fi

# ld's map repeats each line of the list (" *file(section)") and puts the input sections it
# matched under it (" .text..."); a line followed by the next one, or by the end of the
# output section, matched nothing.
total=$(grep -c '^ *\*[^ /]' "$ld")
stale=$(awk '
	/^\.text\.flint_hot$/ { on = 1; next }
	!on { next }
	/^[^ ]/ { exit }
	/^ \*fill\*/ { next }
	/^ \*/ { if (want != "") print want; want = $0; next }
	/^ \./ { want = "" }
	END { if (want != "") print want }' "$map" 2>/dev/null)
n=$(printf '%s' "$stale" | grep -c .)
if [ "$total" -gt 0 ] && [ "$n" = 0 ] && [ "$passed" = 2 ]; then
	ok "each of the $total lines of $ld matched a section"
else
	bad "$ld: $n of $total lines match no section of this link (mend them, or run make text-order):"
	printf '%s\n' "$stale" | sed 's/^ */  /'
fi
echo "text order: $passed passed, $failed failed"
[ "$failed" = 0 ]
