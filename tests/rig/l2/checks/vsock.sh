# L2 check: flint's virtio-vsock (Firecracker's hybrid vsock), both ways, byte for byte.
# Host -> guest: we listen on port 5000; L1's vsock-host comes in through flint's Unix socket
# (CONNECT 5000) and sends 256 KiB of a pattern (seed 17): each byte is checked here and
# echoed; vsock-host checks the echo. Guest -> host: we connect to CID 2 port 6000 (flint
# connects that to <uds_path>_6000, where vsock-host listens) and send 256 KiB (seed 29);
# the host answers with the count and checksum it got, which must be ours.
cid=$(/bin/vsock cid) || exit 1
echo "flint-l2: vsock CID $cid"
[ "$cid" = 3 ] || { echo "flint-l2: CID $cid, want 3"; exit 1; }
/bin/vsock listen 5000 262144 17 &
lpid=$!
ok=1
/bin/vsock send 2 6000 262144 29 || ok=0
wait "$lpid" || ok=0
[ "$ok" = 1 ]
