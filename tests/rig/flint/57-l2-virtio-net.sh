#!/bin/sh
# flint gives L2 a virtio-net (Firecracker's network-interfaces) on a TAP made here (flint
# never makes one): fltap0, 172.16.0.1/24. L2 (tests/rig/l2/checks/net.sh) checks its MAC,
# pings 172.16.0.1 and moves 1 MiB each way over TCP with busybox nc: the 1 MiB served here
# must arrive with its md5 (checked in L2), and the 1 MiB L2 sends must arrive here with the
# md5 L2 printed (checked here). The TAP is removed at the end.
set -eu
tap=fltap0
pids=
cleanup() {
    for p in $pids; do kill "$p" 2>/dev/null || true; done
    if ip link show "$tap" >/dev/null 2>&1; then
        ip tuntap del dev "$tap" mode tap 2>/dev/null || tunctl -d "$tap" >/dev/null || true
    fi
}
trap cleanup EXIT
# busybox's ip has no tuntap; its tunctl makes a persistent TAP (TUNSETIFF + TUNSETPERSIST).
ip tuntap add dev "$tap" mode tap 2>/dev/null || tunctl -t "$tap" >/dev/null
ip addr add 172.16.0.1/24 dev "$tap"
ip link set "$tap" up

dd if=/dev/urandom of=/tmp/net-down.bin bs=1024 count=1024 2>/dev/null
md5sum </tmp/net-down.bin | cut -c1-32 >/tmp/net-down.md5
rm -f /tmp/net-up.bin /tmp/net-never
mkfifo /tmp/net-never
exec 3<>/tmp/net-never   # never-ending stdin for the receiving nc (see net.sh)
nc -l -p 7000 </tmp/net-down.md5 >/dev/null 2>/tmp/net-7000.err &
p0=$!
nc -l -p 7001 </tmp/net-down.bin >/dev/null 2>/tmp/net-7001.err &
p1=$!
nc -l -p 7002 </tmp/net-never >/tmp/net-up.bin 2>/tmp/net-7002.err &
p2=$!
pids="$p0 $p1 $p2"

rc=0
start=$(cut -d' ' -f1 /proc/uptime)
/rig/lib/l2-virtio.sh net net '"network-interfaces": [
    {"iface_id": "eth0", "host_dev_name": "fltap0", "guest_mac": "06:00:ac:10:00:02"}]' || rc=$?
# The VM normally lives about 10 s; a long one passed through a stall worth seeing whole.
if [ "$(awk -v s="$start" '{print ($1 - s > 60)}' /proc/uptime)" = 1 ]; then
    echo "L2 ran for $(awk -v s="$start" '{printf "%d", $1 - s}' /proc/uptime) s; its whole log:"
    sed 's/^/  l2-full| /' /tmp/net.log
fi

# The transfers ended before L2 powered off (or failed): give the listeners 20 s at most.
status() {   # status PID: its exit status in $st (143 if it had to be killed)
    (sleep 20; kill "$1" 2>/dev/null) &
    wd=$!
    st=0
    wait "$1" || st=$?
    kill "$wd" 2>/dev/null || true
}
for p in $p0 $p1 $p2; do
    status "$p"
    [ "$st" = 0 ] || { echo "nc -l (pid $p) ended with $st: $(cat /tmp/net-700*.err)"; rc=1; }
done
pids=
want=$(sed -n 's/.*flint-l2: net up md5 \([0-9a-f]*\).*/\1/p' /tmp/net.log)
got=$(md5sum </tmp/net-up.bin | cut -c1-32)
size=$(wc -c </tmp/net-up.bin)
echo "from L2: $size bytes md5 $got (L2 sent md5 '$want')"
if [ "$size" != 1048576 ] || [ "$got" != "$want" ]; then
    echo "L2 -> L1 transfer corrupt or short"
    rc=1
fi
[ "$rc" = 0 ] && echo "net: MAC, ping, 1 MiB L1 -> L2 and 1 MiB L2 -> L1 over TCP, md5 checked"
exit "$rc"
