#!/bin/sh
# End-to-end device VM start-up: exec of the VMM -> the L2 guest's first verified edu DMA,
# with QEMU's edu assigned, 256 MiB and 4 GiB of guest RAM, pin mode; flint against QEMU
# -device vfio-pci assigning the same device in the same L1 (the kernel rig: Linux 7.3
# under QEMU TCG, nested KVM), and flint again with its guest RAM on hugetlbfs. Reports;
# never fails because something is slow.
# Usage: iommu-e2e.sh [BUILD]   (the second half of make bench-iommu-startup)
# Env: BENCH_E2E_ROUNDS (3), BENCH_E2E_SIZES (MiB, "256 4096")
set -eu
build=${1:-build}
out=$build/bench/iommu-e2e
mkdir -p "$out"
make -s BUILD="$build" rig-kernel "$build/flint" >/dev/null
kdir=$(cat "$build/rig/kernel.dir")
qemu=$(command -v qemu-system-x86_64) || { echo "iommu e2e: no qemu-system-x86_64" >&2; exit 1; }
rounds=${BENCH_E2E_ROUNDS:-3}
sizes=${BENCH_E2E_SIZES:-256 4096}
gcc -O2 -Wall -Wextra -Werror -std=gnu11 -static -o "$out/iommu-e2e-edu" bench/iommu-e2e-edu.c
gcc -O2 -Wall -Wextra -Werror -std=gnu11 -static -o "$out/iommu-e2e-run" bench/iommu-e2e-run.c
gcc -O2 -static -o "$out/exitport" tests/rig/l2/exitport.c
bash tests/rig/mkinitramfs.sh -o "$out/l2.cpio.gz" --init bench/iommu-e2e-l2-init \
	--add "$out/iommu-e2e-edu:/bin/iommu-e2e-edu" --add "$out/exitport:/bin/exitport" >/dev/null
printf 'ROUNDS=%s\nSIZES="%s"\n' "$rounds" "$sizes" >"$out/iommu-e2e.conf"
# QEMU reads one file besides its libraries here: the microvm firmware (qboot).
bash tests/rig/mkinitramfs.sh -o "$out/l1.cpio.gz" --timeout 3000 \
	--case bench/iommu-e2e-rig.sh:bench \
	--add "$out/iommu-e2e.conf:/rig/bench/iommu-e2e.conf" \
	--add "$out/l2.cpio.gz:/rig/bench/l2.cpio.gz" \
	--add "$kdir/bzImage:/rig/bench/bzImage" \
	--add "$out/iommu-e2e-run:/rig/bench/iommu-e2e-run" \
	--add-bin "$build/flint:/rig/bench/flint" \
	--add-bin "$qemu:/usr/bin/qemu-system-x86_64" \
	--add /usr/share/qemu/bios-microvm.bin:/usr/share/qemu/bios-microvm.bin >/dev/null
echo "iommu e2e: booting the rig (Linux 7.3 under TCG, L1 6 GiB so 4 GiB can be pinned), then $rounds rounds of flint and QEMU, $sizes MiB"
# L1 needs room to pin 4 GiB of guest RAM: 6 GiB, as bench/rig-startup.sh (QEMU takes the last
# -m). With 4 GiB, L2's user pages (the DMA buffers) lie above 4 GiB, beyond edu's default
# 28-bit DMA mask (addresses beyond it are clamped, not refused): widen it to 40 bits.
BUILD=$build bash tests/rig/run.sh --kernel "$kdir/bzImage" --initrd "$out/l1.cpio.gz" \
	--log "$out/serial.log" --timeout 3600 -- -m 6G -global edu.dma_mask=0xffffffffff >/dev/null 2>&1 || true
tr -d '\r' <"$out/serial.log" | sed -n 's/^\[bench\] //p' >"$out/results"
grep '^e2e: ' "$out/results" | grep -v '^e2e: end' | sed 's/^e2e: /  /'
grep -q '^e2e: end' "$out/results" || {
	echo "iommu e2e: the rig run did not finish; see $out/serial.log" >&2
	exit 1
}
# e2e VMM MIB ROUND e2e_ms=M exit_ms=X status=S -> medians of the runs that reached the DMA.
awk -v rounds="$rounds" -v sizes="$sizes" '
function median(vmm, mib,    n, a, i, j, t) {
	n = 0
	for (i = 1; i <= rounds; i++) if ((vmm, mib, i) in v) a[++n] = v[vmm, mib, i]
	for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
	cnt[vmm, mib] = n
	if (n == 0) return -1
	lo[vmm, mib] = a[1]; hi[vmm, mib] = a[n]
	return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
function cell(vmm, mib, m) {
	if (m < 0) return sprintf("%-24s", "FAILED")
	return sprintf("%-24s", sprintf("%.0f (%.0f-%.0f)", m, lo[vmm, mib], hi[vmm, mib]) (cnt[vmm, mib] < rounds ? " n=" cnt[vmm, mib] : ""))
}
function label(mib) { return mib % 1024 ? mib "M" : mib / 1024 "G" }
$1 == "e2e" && $2 != "end" {
	split($5, e, "="); split($7, s, "=")
	if (e[2] + 0 >= 0 && s[2] == 1) v[$2, $3, $4] = e[2] + 0
}
END {
	ns = split(sizes, sz, " ")
	printf "%-30s %-24s %-24s %-11s %-24s %s\n", "exec -> first edu DMA, ms", "flint (pin)", "qemu vfio-pci", "flint/qemu", "flint, hugetlb 2M RAM", "flint2M/qemu"
	line = "iommu e2e:"
	for (k = 1; k <= 2; k++) {
		vmm = k == 1 ? "flint" : "qemu"
		line = line (k == 1 ? " " : "; ") vmm
		for (i = 1; i <= ns; i++) {
			m[vmm, sz[i]] = median(vmm, sz[i])
			line = line (i > 1 ? ", " : " ") label(sz[i]) " " (m[vmm, sz[i]] < 0 ? "n/a" : sprintf("%.0f ms", m[vmm, sz[i]]))
		}
	}
	for (i = 1; i <= ns; i++) {
		f = m["flint", sz[i]]; q = m["qemu", sz[i]]; h = median("flint2m", sz[i])
		printf "%-30s %s %s %-11s %s %s\n", "  " sz[i] " MiB guest RAM", cell("flint", sz[i], f), cell("qemu", sz[i], q),
			(f > 0 && q > 0) ? sprintf("%.2f", f / q) : "-", cell("flint2m", sz[i], h),
			(h > 0 && q > 0) ? sprintf("%.2f", h / q) : "-"
	}
	print line " (pin, edu, in the rig)"
}' "$out/results"
