/* struct boot_params ("zero page") for kernels entered at their 64-bit entry. */
#include "boot/bootparam.h"
#include "boot/loader.h"
#include "vmm/x86/layout.h"

#include <errno.h>
#include <string.h>

/* An ELF vmlinux has no setup header: supply the fields Linux reads. */
static void fake_setup_header(struct setup_header *h, size_t cmdline_max)
{
	h->boot_flag = SETUP_BOOT_FLAG;
	h->header = SETUP_HDR_MAGIC;
	h->version = 0x020f;
	h->kernel_alignment = 0x1000000;
	h->cmdline_size = (uint32_t)cmdline_max;
}

static void write_e820(struct boot_params *zp, const struct guest_memory *mem)
{
	struct boot_e820 map[BOOT_E820_MAX];
	unsigned n = boot_e820(mem, map);

	zp->e820_entries = (uint8_t)n;
	for (unsigned i = 0; i < n && i < E820_MAX_ENTRIES_ZEROPAGE; i++)
		zp->e820_table[i] = (struct boot_e820_entry){ .addr = map[i].addr,
			                                      .size = map[i].size,
			                                      .type = map[i].type };
}

int zeropage_write(struct guest_memory *mem, const struct boot_image *img, uint64_t cmdline,
                   uint64_t initrd, uint64_t initrd_size)
{
	struct boot_params *zp = guest_memory_hva(mem, LAYOUT_ZERO_PAGE, sizeof(*zp));

	if (!zp)
		return -EFAULT;
	memset(zp, 0, sizeof(*zp));
	/* A bzImage: hand its own setup header back, as a boot loader does. */
	if (img->setup_header_len)
		memcpy((uint8_t *)zp + BOOT_SETUP_HEADER_START, img->setup_header,
		       img->setup_header_len);
	else
		fake_setup_header(&zp->hdr, img->cmdline_max);
	zp->hdr.type_of_loader = SETUP_LOADER_UNDEFINED;
	zp->hdr.cmd_line_ptr = (uint32_t)cmdline;
	zp->ext_cmd_line_ptr = (uint32_t)(cmdline >> 32);
	zp->hdr.ramdisk_image = (uint32_t)initrd;
	zp->ext_ramdisk_image = (uint32_t)(initrd >> 32);
	zp->hdr.ramdisk_size = (uint32_t)initrd_size;
	zp->ext_ramdisk_size = (uint32_t)(initrd_size >> 32);
	write_e820(zp, mem);
	return 0;
}
