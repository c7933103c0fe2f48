# L2 check for the API case (tests/rig/flint/66-l2-api.sh): says it is up, then ticks on the
# console until Ctrl-Alt-Del reboots it (reboot=k: flint ends with 0). The ticks are how L1
# sees that a pause stops the guest and a resume lets it go on; no timer is waited on.
[ "$(cat /sys/block/vda/size)" = 2048 ] || { echo "flint-l2: vda: $(cat /sys/block/vda/size) sectors"; exit 1; }
echo "flint-l2: api ready"
i=0
while :; do
    i=$((i + 1))
    echo "flint-l2: tick $i"
    j=0
    while [ $j -lt 2000 ]; do j=$((j + 1)); done
done
