/* struct boot_params ("zero page") for kernels entered at their 64-bit entry. */
#include "boot/boot.h"
#include "boot/bytes.h"
#include "vmm/x86/layout.h"

#include <errno.h>

#define BP_EXT_RAMDISK_IMAGE 0x0c0
#define BP_EXT_RAMDISK_SIZE  0x0c4
#define BP_EXT_CMD_LINE_PTR  0x0c8
#define BP_E820_ENTRIES      0x1e8
#define BP_HDR               0x1f1
#define BP_BOOT_FLAG         0x1fe
#define BP_HEADER            0x202
#define BP_VERSION           0x206
#define BP_TYPE_OF_LOADER    0x210
#define BP_RAMDISK_IMAGE     0x218
#define BP_RAMDISK_SIZE      0x21c
#define BP_CMD_LINE_PTR      0x228
#define BP_KERNEL_ALIGN      0x230
#define BP_CMDLINE_SIZE      0x238
#define BP_E820_TABLE        0x2d0
#define BP_E820_MAX          128

int zeropage_write(struct guest_memory *mem, const struct boot_image *img, uint64_t cmdline,
                   uint64_t initrd, uint64_t initrd_size)
{
	uint8_t *zp = guest_memory_hva(mem, LAYOUT_ZERO_PAGE, 4096);
	struct boot_e820 map[BOOT_E820_MAX];
	unsigned n = boot_e820(mem, map);

	if (!zp)
		return -EFAULT;
	memset(zp, 0, 4096);
	if (img->setup_header_len) {
		/* A bzImage: hand its own setup header back, as a boot loader does. */
		memcpy(zp + BP_HDR, img->setup_header, img->setup_header_len);
	} else {
		/* An ELF vmlinux has no header; supply the fields Linux reads. */
		put16(zp + BP_BOOT_FLAG, 0xaa55);
		memcpy(zp + BP_HEADER, "HdrS", 4);
		put16(zp + BP_VERSION, 0x020f);
		put32(zp + BP_KERNEL_ALIGN, 0x1000000);
		put32(zp + BP_CMDLINE_SIZE, (uint32_t)img->cmdline_max);
	}
	zp[BP_TYPE_OF_LOADER] = 0xff; /* undefined loader */
	put32(zp + BP_CMD_LINE_PTR, (uint32_t)cmdline);
	put32(zp + BP_EXT_CMD_LINE_PTR, (uint32_t)(cmdline >> 32));
	put32(zp + BP_RAMDISK_IMAGE, (uint32_t)initrd);
	put32(zp + BP_EXT_RAMDISK_IMAGE, (uint32_t)(initrd >> 32));
	put32(zp + BP_RAMDISK_SIZE, (uint32_t)initrd_size);
	put32(zp + BP_EXT_RAMDISK_SIZE, (uint32_t)(initrd_size >> 32));
	zp[BP_E820_ENTRIES] = (uint8_t)n;
	for (unsigned i = 0; i < n && i < BP_E820_MAX; i++) {
		uint8_t *e = zp + BP_E820_TABLE + i * 20;
		put64(e, map[i].addr);
		put64(e + 8, map[i].size);
		put32(e + 16, map[i].type);
	}
	return 0;
}
