# L2 check: flint's virtio-net over L1's TAP fltap0 (172.16.0.1/24 in L1).
# eth0 has the configured MAC; we take 172.16.0.2/24 and ping L1; then TCP with busybox nc:
# 7000: L1 sends the md5 of the 1 MiB it serves on 7001; 7001: we receive that 1 MiB and
# compare; 7002: we send 1 MiB of our own, whose md5 we print for L1 to compare with what
# it received. Every nc's stdin is a FIFO that never ends: a busybox nc that sees EOF on
# stdin shuts down its sending side, and a sender quits at the first EOF it reads.
# Steps are stamped with seconds since the check began ([N s]).
t0=$(cut -d' ' -f1 /proc/uptime)
at() { echo "flint-l2: [$(awk -v t0="$t0" '{printf "%.1f", $1 - t0}' /proc/uptime) s] $*"; }
want_mac=06:00:ac:10:00:02
host=172.16.0.1
mac=$(cat /sys/class/net/eth0/address 2>/dev/null)
echo "flint-l2: eth0 $mac (want $want_mac), driver $(basename "$(readlink /sys/class/net/eth0/device/driver)")"
[ "$mac" = "$want_mac" ] || exit 1
ip link set lo up
ip addr add 172.16.0.2/24 dev eth0 || exit 1
ip link set eth0 up || exit 1
at "link up"
# -A: the next ping goes when the answer comes, not on a 1 s timer. In the rig the guest's
# local timer has been seen to stall for minutes (LOC stuck at 2 in /proc/interrupts, the
# ping taking ~195 s); that is not the network's doing, so the check does not wait on it.
ping -c 3 -A -W 20 $host || { echo "flint-l2: no ping answer from $host"; exit 1; }
at "ping answered"
mkfifo /tmp/never
exec 3<>/tmp/never
fetch() {   # fetch PORT FILE: what L1 serves on PORT
    timeout 120 nc $host "$1" </tmp/never >"$2" ||
        { echo "flint-l2: nc from $host:$1 failed"; return 1; }
}
fetch 7000 /tmp/want.md5 || exit 1
want=$(cut -c1-32 /tmp/want.md5)
fetch 7001 /tmp/down.bin || exit 1
got=$(md5sum </tmp/down.bin | cut -c1-32)
size=$(wc -c </tmp/down.bin)
at "net down $size bytes md5 $got (want $want)"
[ "$size" = 1048576 ] && [ "$got" = "$want" ] || exit 1
dd if=/dev/urandom of=/tmp/up.bin bs=1024 count=1024 2>/dev/null
echo "flint-l2: net up md5 $(md5sum </tmp/up.bin | cut -c1-32)"
timeout 120 nc $host 7002 </tmp/up.bin >/dev/null || { echo "flint-l2: nc to $host:7002 failed"; exit 1; }
at "net up sent"
echo "flint-l2: local timer interrupts so far: $(awk '$1 == "LOC:" {print $2}' /proc/interrupts)"
