/* The guest physical address map, in one place. */
#ifndef FLINT_LAYOUT_H
#define FLINT_LAYOUT_H

#include <stdint.h>

#define MiB(x) ((uint64_t)(x) << 20)
#define GiB(x) ((uint64_t)(x) << 30)

/* RAM runs from 0 up to the 32-bit MMIO hole, the rest continues above 4 GiB. */
#define LAYOUT_MMIO32_START   0xC0000000ULL /* 3 GiB */
#define LAYOUT_MMIO32_END     0x100000000ULL
#define LAYOUT_HIGH_RAM_START 0x100000000ULL

/* Devices in the MMIO hole. The boot timer sits where Firecracker guests expect it. */
#define LAYOUT_BOOT_TIMER   LAYOUT_MMIO32_START
#define LAYOUT_IOAPIC       0xFEC00000ULL
#define LAYOUT_LAPIC        0xFEE00000ULL
/* KVM needs three pages for the TSS and one for the identity map, below 4 GiB, not RAM. */
#define LAYOUT_KVM_TSS      0xFFFBD000ULL
#define LAYOUT_KVM_IDENTITY 0xFFFBC000ULL

#endif
