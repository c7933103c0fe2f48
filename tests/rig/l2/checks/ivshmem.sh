# L2 check: QEMU's ivshmem-plain (1af4:1110) that flint assigned (tests/rig/flint/
# 65-l2-pci-ivshmem.sh) has its 1 GiB 64-bit BAR2 above 4 GiB, in flint's window above RAM
# (it would not fit below), and the memory behind it is L1's: L2 finds the pattern L1 wrote
# (seed 1) at the start, middle and last page, and writes its own (seed 2) for L1 to check.
dmesg | grep -iE '1af4|BAR 2|pci 0000:00:0' | sed 's/^/flint-l2: dmesg| /'
/bin/barpat 0x1af4 0x1110 2 check 1 0x100000000 && /bin/barpat 0x1af4 0x1110 2 fill 2
