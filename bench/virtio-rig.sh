#!/bin/sh
# The rig case of bench/virtio.sh, run by L1's init inside the rig: flint and QEMU microvm
# boot the same L2 (kernel, initramfs bench/virtio-l2-init) with the same disk image and
# the same TAP, one after the other, $ROUNDS rounds (flint first in odd rounds, QEMU first
# in even ones). Prints `vbench VMM ROUND KEY VALUE` for each result L2 printed, and
# `vbench VMM ROUND exit N` for how the VMM ended (1 = L2 reached the exit port).
# Settings come from /rig/bench/virtio.conf (ROUNDS SECS TXMIB RXMIB DISKMIB CPUS).
set -u
# shellcheck disable=SC1091 # written by bench/virtio.sh into the L1 image
. /rig/bench/virtio.conf
# CPUS (a taskset list of L1 CPUs) pins every thread of both VMMs there; empty: not pinned.
PIN=
[ -n "$CPUS" ] && PIN="taskset -c $CPUS"
L2=/rig/bench
IMG=/tmp/vbench.img
TAP=vbtap0
MAC=52:54:00:12:34:56
ARGS="console=ttyS0 reboot=k panic=-1 pci=off i8042.noaux i8042.nomux i8042.nopnp i8042.dumbkbd rdinit=/init quiet bench.secs=$SECS bench.txmib=$TXMIB bench.rxmib=$RXMIB"
# Each VM gets this long; a wedged one is killed and its results are missing.
LIMIT=$((SECS * 3 + 300))

tunctl -t $TAP >/dev/null || { echo "vbench: tunctl failed"; exit 1; }
ip addr add 10.0.0.1/24 dev $TAP
ip link set $TAP up
# Filled, so that every block is a real tmpfs page for both VMMs.
dd if=/dev/zero of=$IMG bs=1M count="$DISKMIB" 2>/dev/null

cat >/tmp/vbench.json <<JSON
{
  "boot-source": {"kernel_image_path": "$L2/bzImage", "initrd_path": "$L2/l2.cpio.gz",
                  "boot_args": "$ARGS"},
  "machine-config": {"vcpu_count": 1, "mem_size_mib": 256},
  "drives": [{"drive_id": "d0", "path_on_host": "$IMG", "is_root_device": false,
              "cache_type": "Unsafe"}],
  "network-interfaces": [{"iface_id": "eth0", "host_dev_name": "$TAP", "guest_mac": "$MAC"}]
}
JSON

# L1's ends of the TCP workloads, each in a process group of its own (setsid does not fork
# here: a background job of this shell is no group leader), so both go after every VM.
peers() {
    rm -f /tmp/l1tx0 /tmp/l1tx1
    # shellcheck disable=SC2016 # for the sh that nc runs
    setsid sh -c "nc -l -p 5001 -e sh -c 'dd of=/dev/null bs=1 count=1 2>/dev/null; cut -d\" \" -f1 /proc/uptime >/tmp/l1tx0;
        dd of=/dev/null bs=64k 2>/dev/null; cut -d\" \" -f1 /proc/uptime >/tmp/l1tx1'
        nc 10.0.0.2 5003 </dev/null >/dev/null 2>&1" &
    P1=$!
    setsid nc -l -p 5002 -e dd if=/dev/zero bs=64k count=$((RXMIB * 16)) 2>/dev/null &
    P2=$!
}
unpeers() {
    kill -KILL -$P1 -$P2 2>/dev/null
    wait $P1 $P2 2>/dev/null
}

run_flint() {
    $PIN /rig/bench/flint --config-file /tmp/vbench.json --exit-port 0xf4 --timeout $LIMIT \
        --no-console --serial-log "$1" 2>"$1.err" </dev/null
}
# -cpu host,-xsave: with plain -cpu host the L2 kernel finds CPUID 0xD.0 EBX (XSAVE size for
# the enabled XCR0) too small on this nested KVM, warns in fpu__init_system_xstate and oopses
# in rest_init. flint sets XCR0 before the first run so KVM refreshes that size
# (vmm/x86/fpu.c); QEMU does not, so its guest goes without XSAVE/AVX.
run_qemu() {
    # shellcheck disable=SC2086 # $PIN is a command prefix, split on purpose
    timeout -s KILL $LIMIT $PIN qemu-system-x86_64 -M microvm,x-option-roms=off,rtc=off -enable-kvm \
        -cpu host,-xsave -m 256 -smp 1 -nodefaults -no-user-config -nographic -serial stdio -no-reboot \
        -kernel $L2/bzImage -initrd $L2/l2.cpio.gz -append "$ARGS" \
        -device isa-debug-exit,iobase=0xf4,iosize=4 \
        -drive id=d0,file=$IMG,format=raw,if=none,cache=writeback -device virtio-blk-device,drive=d0 \
        -netdev tap,id=n0,ifname=$TAP,script=no,downscript=no \
        -device virtio-net-device,netdev=n0,mac=$MAC >"$1" 2>"$1.err" </dev/null
}

one() {
    log=/tmp/vbench-$1-$2.log
    peers
    rc=0
    "run_$1" "$log" || rc=$?
    unpeers
    tr -d '\r' <"$log" | sed -n "s/^vbench \([a-z0-9_]* .*\)/vbench $1 $2 \1/p"
    [ "$2" = 1 ] && tr -d '\r' <"$log" | sed -n "s/^vbench-l2: /vbench: $1: L2 /p"
    # A cross-check of L2's clock: the L2->L1 stream timed by L1, first byte to EOF.
    if [ -s /tmp/l1tx0 ] && [ -s /tmp/l1tx1 ]; then
        awk -v a="$(cat /tmp/l1tx0)" -v b="$(cat /tmp/l1tx1)" -v n=$((TXMIB * 1048576 - 1)) -v v="$1 $2" \
            'BEGIN { if (b > a) printf "vbench %s l1_tx_mbs %.1f\n", v, n / 1e6 / (b - a) }'
    fi
    echo "vbench $1 $2 exit $rc"
    if [ "$rc" != 1 ]; then
        echo "vbench: $1 round $2 ended with $rc, want 1; its stderr and console's end:"
        # The first oops from its start, else the console's end.
        { tail -n 5 "$log.err"; tr -d '\r' <"$log" | awk '/BUG:|Oops|WARNING:|Kernel panic/ && !n { n = NR }
            n && NR < n + 40 { print } { t[NR % 15] = $0 } END { if (!n) for (i = NR - 14; i <= NR; i++) if (i > 0) print t[i % 15] }'; } |
            sed 's/^/vbench:   /'
    fi
}

echo "vbench: L1 $(uname -r), $(grep -c ^processor /proc/cpuinfo) cpus; $ROUNDS rounds, ${SECS}s per disk workload, TCP $TXMIB MiB out, $RXMIB MiB in; VMMs ${PIN:-not pinned}"
r=1
while [ $r -le "$ROUNDS" ]; do
    if [ $((r % 2)) = 1 ]; then one flint $r; one qemu $r; else one qemu $r; one flint $r; fi
    r=$((r + 1))
done
echo "vbench: end"
