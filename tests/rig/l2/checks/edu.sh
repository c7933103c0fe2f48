# L2 check: the edu device flint assigned (tests/rig/flint/62-l2-pci-edu.sh) is on L2's PCI
# bus and works from user space (/bin/edu, tests/rig/l2/edu.c): config space, BAR0 registers,
# DMA both ways through flint's IOAS, an MSI through flint's irqfd, and a DMA from outside
# RAM that the IOMMU refuses (the case checks L1's log for the fault). The kernel's PCI lines
# are printed first, so a failure shows what Linux made of the bus.
dmesg | grep -iE 'pci|edu' | sed 's/^/flint-l2: dmesg| /'
echo "flint-l2: uptime $(cut -d' ' -f1 /proc/uptime) s"
/bin/edu msi oob
