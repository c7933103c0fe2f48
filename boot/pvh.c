/* Xen PVH boot: struct hvm_start_info (version 1) with a module list and memory map. */
#include "boot/pvh.h"
#include "boot/loader.h"
#include "vmm/x86/layout.h"

#include <errno.h>

/* The three sit one after the other in low memory, below the zero page. */
_Static_assert(LAYOUT_PVH_INFO + sizeof(struct hvm_start_info) <= LAYOUT_PVH_MODLIST &&
                       LAYOUT_PVH_MODLIST + sizeof(struct hvm_modlist_entry) <= LAYOUT_PVH_MEMMAP &&
                       LAYOUT_PVH_MEMMAP + BOOT_E820_MAX * sizeof(struct hvm_memmap_table_entry) <=
                               LAYOUT_ZERO_PAGE,
               "PVH start info, module list and memory map overlap");

int pvh_write(struct guest_memory *mem, uint64_t cmdline, uint64_t initrd, uint64_t initrd_size)
{
	struct boot_e820 map[BOOT_E820_MAX];
	unsigned n = boot_e820(mem, map);
	struct hvm_start_info *si = guest_memory_hva(mem, LAYOUT_PVH_INFO, sizeof(*si));
	struct hvm_modlist_entry *mod = guest_memory_hva(mem, LAYOUT_PVH_MODLIST, sizeof(*mod));
	struct hvm_memmap_table_entry *mm =
	        guest_memory_hva(mem, LAYOUT_PVH_MEMMAP, (uint64_t)n * sizeof(*mm));

	if (!si || !mod || !mm)
		return -EFAULT;
	*si = (struct hvm_start_info){
		.magic = HVM_START_MAGIC_VALUE,
		.version = HVM_START_VERSION_MEMMAP,
		.cmdline_paddr = cmdline,
		.memmap_paddr = LAYOUT_PVH_MEMMAP,
		.memmap_entries = n,
	};
	if (initrd_size) {
		*mod = (struct hvm_modlist_entry){ .paddr = initrd, .size = initrd_size };
		si->nr_modules = 1;
		si->modlist_paddr = LAYOUT_PVH_MODLIST;
	}
	for (unsigned i = 0; i < n; i++)
		mm[i] = (struct hvm_memmap_table_entry){ .addr = map[i].addr,
			                                 .size = map[i].size,
			                                 .type = map[i].type };
	return 0;
}
