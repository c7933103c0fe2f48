#!/bin/sh
# flint gives L2 a virtio-vsock in Firecracker's hybrid mode (vsock: guest_cid 3, uds_path):
# host -> guest: vsock-host connects to uds_path, writes "CONNECT 5000", must read
# "OK <port>", sends 256 KiB that L2 checks and echoes, and checks the echo;
# guest -> host: L2 connects to CID 2 port 6000, flint connects that to "<uds_path>_6000"
# where vsock-host listens and checks 256 KiB, answering L2 with the count and checksum.
# L2's check (tests/rig/l2/checks/vsock.sh) must pass and both host sides must succeed.
set -eu
uds=/tmp/flint-vsock.sock
rm -f "$uds" "${uds}_6000"
pids=
cleanup() {
    for p in $pids; do kill "$p" 2>/dev/null || true; done
    rm -f "$uds" "${uds}_6000"
}
trap cleanup EXIT

/rig/bin/vsock-host listen "${uds}_6000" 262144 29 >/tmp/vsock-listen.out 2>&1 &
lpid=$!
/rig/bin/vsock-host connect "$uds" 5000 262144 17 >/tmp/vsock-connect.out 2>&1 &
cpid=$!
pids="$lpid $cpid"
# The guest must find <uds_path>_6000 listening.
i=0
while [ ! -S "${uds}_6000" ]; do
    i=$((i + 1))
    [ $i -le 50 ] || { echo "vsock-host did not listen on ${uds}_6000"; cat /tmp/vsock-listen.out; exit 1; }
    sleep 0.1
done

rc=0
/rig/lib/l2-virtio.sh vsock vsock "\"vsock\": {\"guest_cid\": 3, \"uds_path\": \"$uds\"}" || rc=$?

# Both host sides are done by the time L2 powered off (or failed): give them 20 s at most.
status() {   # status PID: its exit status in $st (143 if it had to be killed)
    (sleep 20; kill "$1" 2>/dev/null) &
    wd=$!
    st=0
    wait "$1" || st=$?
    kill "$wd" 2>/dev/null || true
}
status "$cpid"; crc=$st
status "$lpid"; lrc=$st
pids=
sed 's/^/  host connect| /' /tmp/vsock-connect.out
sed 's/^/  host listen| /' /tmp/vsock-listen.out
[ "$crc" = 0 ] || { echo "host -> guest (CONNECT 5000) failed: $crc"; rc=1; }
[ "$lrc" = 0 ] || { echo "guest -> host (${uds}_6000) failed: $lrc"; rc=1; }
[ ! -e "$uds" ] || { echo "flint left $uds behind"; rc=1; }
[ "$rc" = 0 ] && echo "vsock: 256 KiB host -> guest and echoed, 256 KiB guest -> host, all checked"
exit "$rc"
