/*
 * Xen's PVH start of day as flint writes it: struct hvm_start_info (version 1), its module
 * list and its memory map, laid out as Xen's public arch-x86/hvm/start_info.h defines them.
 * Every address is a guest-physical address; 0 means absent.
 */
#ifndef FLINT_BOOT_PVH_H
#define FLINT_BOOT_PVH_H

#include <stddef.h>
#include <stdint.h>

#define HVM_START_MAGIC_VALUE    0x336ec578 /* "xEn3" with the 0x80 bit of the "E" set */
#define HVM_START_VERSION_MEMMAP 1          /* version 1 adds memmap_paddr/memmap_entries */

struct hvm_start_info {
	uint32_t magic;
	uint32_t version;
	uint32_t flags;
	uint32_t nr_modules;
	uint64_t modlist_paddr; /* struct hvm_modlist_entry[nr_modules] */
	uint64_t cmdline_paddr; /* NUL-terminated */
	uint64_t rsdp_paddr;    /* ACPI RSDP */
	uint64_t memmap_paddr;  /* struct hvm_memmap_table_entry[memmap_entries] */
	uint32_t memmap_entries;
	uint32_t reserved;
} __attribute__((packed));

struct hvm_modlist_entry {
	uint64_t paddr;
	uint64_t size;
	uint64_t cmdline_paddr;
	uint64_t reserved;
} __attribute__((packed));

/* type: the e820 types (1 RAM, 2 reserved, ...). */
struct hvm_memmap_table_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
	uint32_t reserved;
} __attribute__((packed));

_Static_assert(sizeof(struct hvm_start_info) == 56 &&
                       offsetof(struct hvm_start_info, nr_modules) == 12 &&
                       offsetof(struct hvm_start_info, modlist_paddr) == 16 &&
                       offsetof(struct hvm_start_info, cmdline_paddr) == 24 &&
                       offsetof(struct hvm_start_info, rsdp_paddr) == 32 &&
                       offsetof(struct hvm_start_info, memmap_paddr) == 40 &&
                       offsetof(struct hvm_start_info, memmap_entries) == 48,
               "hvm_start_info as in Xen's start_info.h");
_Static_assert(sizeof(struct hvm_modlist_entry) == 32 &&
                       offsetof(struct hvm_modlist_entry, cmdline_paddr) == 16,
               "hvm_modlist_entry as in Xen's start_info.h");
_Static_assert(sizeof(struct hvm_memmap_table_entry) == 24 &&
                       offsetof(struct hvm_memmap_table_entry, type) == 16,
               "hvm_memmap_table_entry as in Xen's start_info.h");

#endif
