/* The guest physical address map, in one place. */
#ifndef FLINT_LAYOUT_H
#define FLINT_LAYOUT_H

#include "vmm/base/memory.h"

#include <stdint.h>

#define MiB(x) ((uint64_t)(x) << 20)
#define GiB(x) ((uint64_t)(x) << 30)

/* RAM runs from 0 up to the 32-bit MMIO hole, the rest continues above 4 GiB. */
#define LAYOUT_MMIO32_START   GUEST_MEMORY_HOLE_START /* 3 GiB */
#define LAYOUT_MMIO32_END     GUEST_MEMORY_HOLE_END
#define LAYOUT_HIGH_RAM_START GUEST_MEMORY_HOLE_END

/* Devices in the MMIO hole. The boot timer sits where Firecracker guests expect it. */
#define LAYOUT_BOOT_TIMER LAYOUT_MMIO32_START
#define LAYOUT_IOAPIC     0xFEC00000ULL
/* virtio-mmio: one 4 KiB slot per device from here, device n on GSI 5 + n (5..23). */
#define LAYOUT_VIRTIO_MMIO  0xD0000000ULL
#define LAYOUT_VIRTIO_GSI   5
#define LAYOUT_VIRTIO_SLOTS 19
/* PCI: BARs of assigned devices, placed by flint (no firmware) up to the IOAPIC. */
#define LAYOUT_PCI_WINDOW     0xE0000000ULL
#define LAYOUT_PCI_WINDOW_END LAYOUT_IOAPIC
/*
 * and 64-bit BARs above RAM: from the first GiB boundary past the end of RAM (and past
 * 4 GiB) up to the guest's physical address width (x86_cpuid_phys_bits()).
 */
#define LAYOUT_PCI_WINDOW64_ALIGN GiB(1)
/* Port I/O: PCI configuration mechanism #1. */
#define LAYOUT_PIO_PCI_ADDRESS 0xcf8
#define LAYOUT_PIO_PCI_DATA    0xcfc
#define LAYOUT_LAPIC      0xFEE00000ULL
/* KVM needs three pages for the TSS and one for the identity map, below 4 GiB, not RAM. */
#define LAYOUT_KVM_TSS      0xFFFBD000ULL
#define LAYOUT_KVM_IDENTITY 0xFFFBC000ULL

/* Port I/O: the legacy devices at their PC ports. */
#define LAYOUT_PIO_I8042      0x60 /* data 0x60 .. status/command 0x64 */
#define LAYOUT_PIO_I8042_SIZE 5
#define LAYOUT_PIO_COM1       0x3f8
#define LAYOUT_PIO_COM1_SIZE  8

/* Low-memory boot structures (all below 1 MiB, outside anything a kernel image loads). */
#define LAYOUT_GDT         0x500ULL
#define LAYOUT_PVH_INFO    0x6000ULL /* hvm_start_info, then modlist and memmap */
#define LAYOUT_PVH_MODLIST 0x6040ULL
#define LAYOUT_PVH_MEMMAP  0x6100ULL
#define LAYOUT_ZERO_PAGE   0x7000ULL
#define LAYOUT_BOOT_STACK  0x8ff0ULL
#define LAYOUT_PML4        0x9000ULL /* then PDPT at 0xa000 and four PDs at 0xb000 */
#define LAYOUT_PDPT        0xa000ULL
#define LAYOUT_PD          0xb000ULL
#define LAYOUT_CMDLINE     0x20000ULL
#define LAYOUT_CMDLINE_MAX 0x10000ULL
#define LAYOUT_EBDA        0x9fc00ULL /* MP table lives here, up to 640 KiB */
#define LAYOUT_LOW_RAM_END 0xa0000ULL
#define LAYOUT_KERNEL      0x100000ULL /* 1 MiB */

#endif
