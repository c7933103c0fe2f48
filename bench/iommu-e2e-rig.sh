#!/bin/sh
# shellcheck disable=SC2012 # ls of sysfs and /dev names
# The rig case of bench/iommu-e2e.sh, run by L1's init inside the rig: flint and QEMU each
# assign QEMU's edu (bound to vfio-pci by the rig's init) to an L2 guest (same kernel, same
# initramfs bench/iommu-e2e-l2-init, same command line) with 256 MiB and 4 GiB of RAM, and
# bench/iommu-e2e-run times exec -> L2's "IOMMU-E2E DMA OK" console line; a third VMM run,
# flint2m, is flint with its guest RAM on hugetlbfs ("huge_pages": "2M"). $ROUNDS rounds,
# flint, qemu, flint2m in odd rounds, the other way round in even ones. Prints
#   e2e VMM MIB ROUND e2e_ms=M exit_ms=X status=S
# per run, and notes (`e2e: ...`) on what each VMM could do.
# Settings come from /rig/bench/iommu-e2e.conf (ROUNDS SIZES).
set -u
# shellcheck disable=SC1091 # written by bench/iommu-e2e.sh into the L1 image
. /rig/bench/iommu-e2e.conf
B=/rig/bench
RUN=$B/iommu-e2e-run
MARK="IOMMU-E2E DMA OK"
LIMIT=400
ARGS='console=ttyS0 reboot=k panic=-1 i8042.noaux i8042.nomux i8042.nopnp i8042.dumbkbd rdinit=/init quiet'

bdf=
for d in /sys/bus/pci/devices/*; do
    [ "$(cat "$d/vendor")" = 0x1234 ] && [ "$(cat "$d/device")" = 0x11e8 ] && bdf=${d##*/}
done
[ -n "$bdf" ] || { echo "e2e: no edu device in L1"; exit 1; }
group=$(basename "$(readlink "/sys/bus/pci/devices/$bdf/iommu_group")")
echo "e2e: L1 $(uname -r), $(grep -c ^processor /proc/cpuinfo) cpus, $(awk '/MemTotal/ {print int($2 / 1024) " MiB"}' /proc/meminfo); edu $bdf (driver $(basename "$(readlink "/sys/bus/pci/devices/$bdf/driver")"), IOMMU group $group, $(ls "/sys/kernel/iommu_groups/$group/devices" | wc -l) device(s))"
echo "e2e: /dev/vfio: $(ls /dev/vfio | tr '\n' ' ')/dev/vfio/devices: $(ls /dev/vfio/devices 2>/dev/null | tr '\n' ' ')"

cfg() { # cfg MIB MODE FILE [HUGE]
    huge=
    [ -n "${4:-}" ] && huge=', "huge_pages": "'$4'"'
    cat >"$3" <<JSON
{
  "boot-source": {"kernel_image_path": "$B/bzImage", "initrd_path": "$B/l2.cpio.gz",
                  "boot_args": "$ARGS"},
  "machine-config": {"vcpu_count": 1, "mem_size_mib": $1$huge},
  "drives": [],
  "flint": {"vfio-devices": [{"id": "edu", "bdf": "$bdf", "dma_mode": "$2"}]}
}
JSON
}

# fault mode: edu has no PRI, so flint refuses it (no silent fallback); show its words.
cfg 256 fault /tmp/e2e-fault.json
rc=0
timeout 60 $B/flint --config-file /tmp/e2e-fault.json --exit-port 0xf4 --timeout 60 --no-console \
    >/dev/null 2>/tmp/e2e-fault.err </dev/null || rc=$?
echo "e2e: flint fault mode for edu: exit $rc: $(grep -v '^ *$' /tmp/e2e-fault.err | tail -n 1 | sed 's/^\[[ 0-9.]*\] //')"

# QEMU's backends: iommufd (-object iommufd, vfio-pci iommufd=) arrived in QEMU 8.2.
QV=$(qemu-system-x86_64 --version | head -n 1)
if qemu-system-x86_64 -object help 2>/dev/null | grep -qx ' *iommufd'; then
    QDEV="vfio-pci,host=$bdf,iommufd=iommufd0"
    QOBJ="-object iommufd,id=iommufd0"
    echo "e2e: qemu: $QV: iommufd backend (-object iommufd)"
else
    QDEV="vfio-pci,host=$bdf"
    QOBJ=
    echo "e2e: qemu: $QV has no iommufd backend (no -object iommufd, no vfio-pci iommufd=; that came in QEMU 8.2): legacy VFIO container backend, /dev/vfio/vfio + /dev/vfio/$group (type1 IOMMU, pins all guest RAM up front like flint's pin mode)"
fi
echo "e2e: qemu machine: -M microvm,pcie=on (GPEX PCIe host found through ACPI, qboot firmware), -cpu host,-xsave"

for cfgmib in $SIZES; do
    cfg "$cfgmib" pin "/tmp/e2e-$cfgmib.json"
    cfg "$cfgmib" pin "/tmp/e2e-$cfgmib-2m.json" 2M
done
echo "e2e: L1 transparent huge pages: anonymous $(cat /sys/kernel/mm/transparent_hugepage/enabled), shmem $(cat /sys/kernel/mm/transparent_hugepage/shmem_enabled)"

run_flint() { # MIB LOG
    $RUN "$2" $LIMIT "$MARK" -- $B/flint --config-file "/tmp/e2e-$1.json" --exit-port 0xf4 \
        --timeout $LIMIT
}
# flint with guest RAM on hugetlbfs (huge_pages "2M"): L1's pool is filled for the run only.
run_flint2m() { # MIB LOG
    echo $(($1 / 2 + 8)) >/proc/sys/vm/nr_hugepages
    $RUN "$2" $LIMIT "$MARK" -- $B/flint --config-file "/tmp/e2e-$1-2m.json" --exit-port 0xf4 \
        --timeout $LIMIT
    echo 0 >/proc/sys/vm/nr_hugepages
}
# shellcheck disable=SC2086 # $QOBJ: none or two words
run_qemu() { # MIB LOG
    $RUN "$2" $LIMIT "$MARK" -- qemu-system-x86_64 -M microvm,pcie=on,x-option-roms=off,rtc=off \
        -enable-kvm -cpu host,-xsave -m "$1" -smp 1 -nodefaults -no-user-config -nographic \
        -serial stdio -no-reboot -kernel $B/bzImage -initrd $B/l2.cpio.gz -append "$ARGS" \
        -device isa-debug-exit,iobase=0xf4,iosize=4 $QOBJ -device "$QDEV"
}

one() { # VMM MIB ROUND
    log=/tmp/e2e-$1-$2-$3.log
    res=$("run_$1" "$2" "$log")
    echo "e2e $1 $2 $3 $res"
    if ! grep -q "$MARK" "$log" || [ "${res##*status=}" != 1 ]; then
        echo "e2e: $1 $2 MiB round $3 failed ($res); its stderr and console's end:"
        { tail -n 8 "$log.err"; tr -d '\r' <"$log" | tail -n 25; } | sed 's/^/e2e:   /'
    elif [ "$3" = 1 ]; then
        echo "e2e: $1 $2 MiB: L2 says: $(tr -d '\r' <"$log" | grep "$MARK")"
    fi
}

r=1
while [ $r -le "$ROUNDS" ]; do
    for mib in $SIZES; do
        if [ $((r % 2)) = 1 ]; then one flint "$mib" $r; one qemu "$mib" $r; one flint2m "$mib" $r
        else one flint2m "$mib" $r; one qemu "$mib" $r; one flint "$mib" $r; fi
    done
    r=$((r + 1))
done
echo "e2e: end"
