# L2 check for the privilege case (tests/rig/flint/68-l2-caps.sh): writes a marker to vda,
# through flint's I/O threads, which start only after flint dropped its privileges; says it
# is ready, then ticks on the console until Ctrl-Alt-Del reboots it (reboot=k: flint ends
# with 0). No timer is waited on.
printf 'flint-caps-marker' | dd of=/dev/vda bs=512 conv=sync,fsync 2>/dev/null || exit 1
echo "flint-l2: caps ready"
i=0
while :; do
    i=$((i + 1))
    echo "flint-l2: tick $i"
    j=0
    while [ $j -lt 2000 ]; do j=$((j + 1)); done
done
