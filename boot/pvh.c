/* Xen PVH boot: struct hvm_start_info (version 1) with a module list and memory map. */
#include "boot/boot.h"
#include "boot/bytes.h"
#include "vmm/x86/layout.h"

#include <errno.h>

#define HVM_START_MAGIC 0x336ec578

int pvh_write(struct guest_memory *mem, uint64_t cmdline, uint64_t initrd, uint64_t initrd_size)
{
	struct boot_e820 map[BOOT_E820_MAX];
	unsigned n = boot_e820(mem, map);
	uint8_t *si = guest_memory_hva(mem, LAYOUT_PVH_INFO, 56);
	uint8_t *mod = guest_memory_hva(mem, LAYOUT_PVH_MODLIST, 32);
	uint8_t *mm = guest_memory_hva(mem, LAYOUT_PVH_MEMMAP, (uint64_t)n * 24);

	if (!si || !mod || !mm)
		return -EFAULT;
	memset(si, 0, 56);
	put32(si + 0, HVM_START_MAGIC);
	put32(si + 4, 1); /* version: has memmap */
	put64(si + 24, cmdline);
	if (initrd_size) {
		memset(mod, 0, 32);
		put64(mod + 0, initrd);
		put64(mod + 8, initrd_size);
		put32(si + 12, 1); /* nr_modules */
		put64(si + 16, LAYOUT_PVH_MODLIST);
	}
	for (unsigned i = 0; i < n; i++) {
		put64(mm + i * 24, map[i].addr);
		put64(mm + i * 24 + 8, map[i].size);
		put32(mm + i * 24 + 16, map[i].type);
		put32(mm + i * 24 + 20, 0);
	}
	put64(si + 40, LAYOUT_PVH_MEMMAP);
	put32(si + 48, n);
	return 0;
}
