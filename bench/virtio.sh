#!/bin/sh
# virtio-blk and virtio-net throughput, flint against QEMU -M microvm, both on the nested
# KVM of the rig's L1 (Linux 7.3 under QEMU TCG), booting the same L2 kernel, initramfs,
# disk image and TAP. Reports; never fails because something is slow.
# Usage: virtio.sh [BUILD]   (make bench-virtio)
# Env: BENCH_VIRTIO_ROUNDS (3), BENCH_VIRTIO_SECS (2, per disk workload),
#      BENCH_VIRTIO_TXMIB / BENCH_VIRTIO_RXMIB (TCP MiB each way, 32), BENCH_VIRTIO_DISKMIB (256),
#      BENCH_VIRTIO_CPUS (L1 CPUs to pin both VMMs to with taskset, e.g. 1; default: not pinned)
set -eu
build=${1:-build}
out=$build/bench/virtio
mkdir -p "$out"
make -s BUILD="$build" rig-kernel "$build/flint" >/dev/null
kdir=$(cat "$build/rig/kernel.dir")
qemu=$(command -v qemu-system-x86_64) || { echo "virtio: no qemu-system-x86_64" >&2; exit 1; }
gcc -O2 -Wall -Wextra -Werror -std=gnu11 -static -o "$out/virtio-randread" bench/virtio-randread.c
gcc -O2 -static -o "$out/exitport" tests/rig/l2/exitport.c
# L2's initramfs: busybox, the benchmark's init, the random-read tool, the exit-port tool.
bash tests/rig/mkinitramfs.sh -o "$out/l2.cpio.gz" --init bench/virtio-l2-init \
	--add "$out/virtio-randread:/bin/virtio-randread" --add "$out/exitport:/bin/exitport" >/dev/null
rounds=${BENCH_VIRTIO_ROUNDS:-3}
secs=${BENCH_VIRTIO_SECS:-2}
cat >"$out/virtio.conf" <<CONF
ROUNDS=$rounds
SECS=$secs
TXMIB=${BENCH_VIRTIO_TXMIB:-32}
RXMIB=${BENCH_VIRTIO_RXMIB:-32}
DISKMIB=${BENCH_VIRTIO_DISKMIB:-256}
CPUS=${BENCH_VIRTIO_CPUS:-}
CONF
# QEMU reads one file besides its libraries here: the microvm firmware (qboot).
bash tests/rig/mkinitramfs.sh -o "$out/l1.cpio.gz" --timeout 3000 \
	--case bench/virtio-rig.sh:bench \
	--add "$out/virtio.conf:/rig/bench/virtio.conf" \
	--add "$out/l2.cpio.gz:/rig/bench/l2.cpio.gz" \
	--add "$kdir/bzImage:/rig/bench/bzImage" \
	--add-bin "$build/flint:/rig/bench/flint" \
	--add-bin "$qemu:/usr/bin/qemu-system-x86_64" \
	--add /usr/share/qemu/bios-microvm.bin:/usr/share/qemu/bios-microvm.bin >/dev/null
echo "virtio: booting the rig (Linux 7.3 under TCG), then $rounds rounds of flint and QEMU microvm in it"
BUILD=$build bash tests/rig/run.sh --kernel "$kdir/bzImage" --initrd "$out/l1.cpio.gz" \
	--log "$out/serial.log" --timeout 3600 >/dev/null 2>&1 || true
tr -d '\r' <"$out/serial.log" | sed -n 's/^\[bench\] //p' >"$out/results"
grep -q '^vbench: end' "$out/results" || {
	echo "virtio: the rig run did not finish; see $out/serial.log" >&2
	tail -n 20 "$out/results" >&2
	exit 1
}
grep '^vbench: ' "$out/results" | grep -v '^vbench: end' | sed 's/^vbench: /  /'
# vbench VMM ROUND KEY VALUE -> the table and the summary line.
awk -v rounds="$rounds" '
function median(vmm, key,    n, a, i, j, t) {
	n = 0
	for (i = 1; i <= rounds; i++) if ((vmm, key, i) in v) a[++n] = v[vmm, key, i]
	for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
	cnt[vmm, key] = n
	if (n == 0) return -1
	lo[vmm, key] = a[1]; hi[vmm, key] = a[n]
	return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
function cell(vmm, key, m) {
	if (m < 0) return sprintf("%-26s", "FAILED")
	return sprintf("%-26s", sprintf("%.1f (%.1f-%.1f)", m, lo[vmm, key], hi[vmm, key]) (cnt[vmm, key] < rounds ? " n=" cnt[vmm, key] : ""))
}
$1 == "vbench" && $4 != "exit" {
	if ($5 == "FAIL") { f = ""; for (i = 6; i <= NF; i++) f = f " " $i; failed[++nf] = $2 " round " $3 " " $4 ":" f }
	else v[$2, $4, $3] = $5
}
END {
	nk = split("blk_read_mbs blk_write_mbs blk_4k_iops net_tx_mbs net_rx_mbs l1_tx_mbs", keys, " ")
	name["l1_tx_mbs"] = "  L2->L1 timed by L1"
	name["blk_read_mbs"] = "blk seq read, MB/s"; name["blk_write_mbs"] = "blk seq write, MB/s"
	name["blk_4k_iops"] = "blk 4k rand read, IOPS"; name["net_tx_mbs"] = "net TCP L2->L1, MB/s"
	name["net_rx_mbs"] = "net TCP L1->L2, MB/s"
	printf "%-24s %-26s %-26s %s\n", "median (min-max)", "flint", "qemu", "flint/qemu"
	for (k = 1; k <= nk; k++) {
		key = keys[k]; fm = median("flint", key); qm = median("qemu", key)
		r[key] = (fm > 0 && qm > 0) ? fm / qm : -1
		printf "%-24s %s %s %s\n", name[key], cell("flint", key, fm), cell("qemu", key, qm),
			r[key] < 0 ? "-" : sprintf("%.2f", r[key])
	}
	for (i = 1; i <= nf; i++) print "  FAILED: " failed[i]
	# net tcp: the geometric mean of the two directions ratios.
	net = (r["net_tx_mbs"] > 0 && r["net_rx_mbs"] > 0) ? sqrt(r["net_tx_mbs"] * r["net_rx_mbs"]) : -1
	printf "virtio: blk read %s, blk write %s, blk 4k iops %s, net tcp %s qemu (in the rig: nested KVM under TCG)\n",
		x(r["blk_read_mbs"]), x(r["blk_write_mbs"]), x(r["blk_4k_iops"]), x(net)
}
function x(ratio) { return ratio < 0 ? "n/a" : sprintf("%.2fx", ratio) }
' "$out/results"
