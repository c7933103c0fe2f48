#!/bin/sh
# Rig case: the malicious guest (tests/guest/hostile.elf) with QEMU's edu assigned in pin
# mode. Besides every port and device window, flint.pci=1 adds random configuration-space
# reads and writes through 0xcf8/0xcfc aimed at the host bridge and edu (BARs moved
# anywhere, memory decoding and bus mastering switched on and off, MSI and MSI-X
# capabilities rewritten); MMIO is only read (a random write to edu's DMA registers can make
# QEMU itself abort). flint must end with the guest's own exit, every log subject within
# its rate limit.
set -eu
bdf=$(/rig/lib/edu-bdf.sh)
name=hostile-pci
cfg=/tmp/$name.json
cat >"$cfg" <<JSON
{
  "boot-source": {"kernel_image_path": "/rig/guest/hostile.elf",
                  "boot_args": "flint.seed=1 flint.rounds=20000 flint.passes=2 flint.pci=1"},
  "drives": [],
  "machine-config": {"vcpu_count": 1, "mem_size_mib": 32},
  "flint": {"vfio-devices": [{"id": "edu", "bdf": "$bdf", "dma_mode": "pin"}]}
}
JSON
rc=0
/bin/flint --config-file "$cfg" --exit-port 0xf4 --timeout 240 --serial-log /tmp/$name.log \
    --no-console 2>/tmp/$name.err || rc=$?
tail -n 5 /tmp/$name.err
# What flint logged, by subject (the text before the first ": " of a message), busiest first.
sed -n 's/^\[ *[0-9]*\.[0-9]*\] flint [a-z]*: \([^:]*\).*/\1/p' /tmp/$name.err | sort | uniq -c |
    sort -rn | head -n 8
if [ "$rc" -ne 1 ]; then
    echo "flint exited $rc, want 1 (the guest's exit 0)"
    exit 1
fi
grep -aq "flint-guest: hostile done" /tmp/$name.log || { echo "the guest did not finish"; exit 1; }
grep -q "edu" /tmp/$name.err || { echo "nothing logged about edu"; exit 1; }
# No subject (the text before the first ": " of a message) over 40 lines in one second.
worst=$(sed -n 's/^\[ *\([0-9]*\)\.[0-9]*\] flint [a-z]*: \([^:]*\).*/\1 \2/p' /tmp/$name.err |
    sort | uniq -c | sort -rn | head -n 1)
echo "busiest log subject in one second: ${worst:-none}"
if [ -n "$worst" ] && [ "$(echo "$worst" | awk '{print $1}')" -gt 40 ]; then
    echo "more than 40 log lines in one second about one thing"
    exit 1
fi
echo "hostile guest with edu: $(wc -l </tmp/$name.err) log lines, flint and the guest to the end"
