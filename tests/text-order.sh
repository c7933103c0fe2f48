#!/bin/sh
# Checks flint's start-up code layout (vmm/text-order.ld) against the link that used it
# (BUILD/flint.map): the hot output section is there, it comes first, and each line of the
# list that names one section (no wildcard but the leading one) matched a section with code
# in it. A line matching nothing is a function renamed or gone since the profile: its code
# now lies among the cold code and makes more of the binary resident at start
# (bench/README.md, "Text order"); mend the line or run `make text-order`.
# Usage: text-order.sh BUILD [CFLAGS]
# The list is made for the default CFLAGS (-O2 -g): with others (-O0 names no
# .text.startup.main, and GCC's .part/.constprop copies differ) the third check is not run,
# and says so, uncounted.
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
first=$(readelf -SW "$1/flint" 2>/dev/null | sed -n 's/.*\] \(\.text[^ ]*\) .*/\1/p' | head -n 1)
if [ "$first" = .text.flint_hot ]; then
	ok "in $1/flint, .text.flint_hot comes before .text"
else
	bad "the first code section of $1/flint is '${first:-none}', not .text.flint_hot"
fi

if [ "${2:--O2 -g}" != "-O2 -g" ]; then
	echo "not checked (CFLAGS '$2', not the -O2 -g the list was made for): whether each line of $ld matched"
else
	# ld's map repeats each line of the list (" *file(section)") and puts the input sections
	# it matched under it (" .text... ADDR SIZE file", the name alone on its line when long);
	# a line with no section of non-zero size under it before the next line, or before the
	# end of the output section, matched nothing.
	exact='^ \*[^*]*$'
	total=$(grep -c '^ *\*[^ /*][^*]*$' "$ld")
	stale=$(awk -v exact="$exact" '
		function done_want() { if (want != "" && !found) print want; want = ""; found = 0 }
		/^\.text\.flint_hot$/ { on = 1; next }
		!on { next }
		/^[^ ]/ { exit }
		/^ \*fill\*/ { next }
		/^ \*/ { done_want(); if ($0 ~ exact) want = $0; next }
		/^ \./ { if (NF >= 3) { if ($3 != "0x0") found = 1 } else long = 1; next }
		long && /^  *0x/ { if ($2 != "0x0") found = 1; long = 0; next }
		{ long = 0 }
		END { done_want() }' "$map" 2>/dev/null)
	n=$(printf '%s' "$stale" | grep -c .)
	if [ "$total" -gt 0 ] && [ "$n" = 0 ] && [ "$passed" = 2 ]; then
		ok "each of the $total lines of $ld naming one section matched code"
	else
		bad "$ld: $n of $total lines match no code of this link (mend them, or run make text-order):"
		printf '%s\n' "$stale" | sed 's/^ */  /'
	fi
fi
echo "text order: $passed passed, $failed failed"
[ "$failed" = 0 ]
