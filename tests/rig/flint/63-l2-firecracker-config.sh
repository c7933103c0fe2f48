#!/bin/sh
# One Firecracker config, in Firecracker's schema and with Firecracker's key names only,
# with every device kind flint serves: a read-only root drive, a data drive, a network
# interface, vsock and entropy (each with a rate limiter where Firecracker takes one).
# L2 (tests/rig/l2/checks/all.sh) finds each one working.
set -eu
tap=fltap1
uds=/tmp/flint-all.sock
cleanup() {
    if ip link show "$tap" >/dev/null 2>&1; then
        ip tuntap del dev "$tap" mode tap 2>/dev/null || tunctl -d "$tap" >/dev/null || true
    fi
    rm -f "$uds"
}
trap cleanup EXIT
ip tuntap add dev "$tap" mode tap 2>/dev/null || tunctl -t "$tap" >/dev/null
ip addr add 172.16.1.1/24 dev "$tap"
ip link set "$tap" up
cp /rig/l2/rootfs.ext4 /tmp/all-root.ext4
dd if=/dev/zero of=/tmp/all-data.img bs=1M count=2 2>/dev/null
bucket='{"bandwidth": {"size": 10485760, "refill_time": 100}, "ops": {"size": 1000, "refill_time": 100}}'
/rig/lib/l2-virtio.sh all all "\"drives\": [
    {\"drive_id\": \"rootfs\", \"path_on_host\": \"/tmp/all-root.ext4\", \"is_root_device\": true,
     \"is_read_only\": true, \"cache_type\": \"Unsafe\", \"io_engine\": \"Sync\", \"rate_limiter\": $bucket},
    {\"drive_id\": \"data\", \"path_on_host\": \"/tmp/all-data.img\", \"is_root_device\": false,
     \"cache_type\": \"Writeback\"}],
  \"network-interfaces\": [{\"iface_id\": \"eth0\", \"host_dev_name\": \"$tap\",
    \"guest_mac\": \"06:00:ac:10:01:02\", \"rx_rate_limiter\": $bucket, \"tx_rate_limiter\": $bucket}],
  \"vsock\": {\"guest_cid\": 3, \"uds_path\": \"$uds\"},
  \"entropy\": {\"rate_limiter\": $bucket}"
got=$(dd if=/tmp/all-data.img bs=512 count=1 2>/dev/null | head -c 15)
[ "$got" = "flint-all-works" ] || { echo "the data drive holds '$got'"; exit 1; }
echo "one Firecracker config: root and data drives, eth0, vsock, entropy all served"
