#!/bin/sh
# The MMDS end to end: flint gives L2 a virtio-net on a TAP made here (fltap1,
# 172.16.1.1/24) with mmds-config V2 on it and --metadata; L2 (tests/rig/l2/checks/mmds.sh)
# reaches the MMDS at 169.254.169.254 as a guest's curl does: 401 without a token, values,
# IMDS text and JSON, a value of many segments, a forged token refused; and pings L1.
set -eu
tap=fltap1
cleanup() {
    if ip link show "$tap" >/dev/null 2>&1; then
        ip tuntap del dev "$tap" mode tap 2>/dev/null || tunctl -d "$tap" >/dev/null || true
    fi
}
trap cleanup EXIT
ip tuntap add dev "$tap" mode tap 2>/dev/null || tunctl -t "$tap" >/dev/null
ip addr add 172.16.1.1/24 dev "$tap"
ip link set "$tap" up
blob=$(head -c 30000 /dev/zero | tr '\0' x)
cat >/tmp/mmds-data.json <<JSON
{"latest": {"meta-data": {"ami-id": "ami-flint-rig", "tags": {"team": "vmm"}},
            "blob": "$blob"}}
JSON
L2_FLINT_ARGS="--metadata /tmp/mmds-data.json" /rig/lib/l2-virtio.sh mmds mmds '"network-interfaces": [
    {"iface_id": "eth0", "host_dev_name": "fltap1", "guest_mac": "06:00:ac:10:01:02"}],
  "mmds-config": {"version": "V2", "network_interfaces": ["eth0"]}'
grep -q 'flint-l2: MMDS V2 answered' /tmp/mmds.log || { echo "no MMDS line from L2"; exit 1; }
echo "MMDS: L2 got its metadata through flint's stack (V2 tokens), other traffic to the TAP"
