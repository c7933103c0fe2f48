/* Linux bzImage, boot protocol 2.06+, entered at its 64-bit entry point. */
#include "boot/boot.h"
#include "boot/bytes.h"
#include "vmm/x86/layout.h"

#include <stdbool.h>

/* Setup header offsets (Documentation/arch/x86/boot.rst). */
#define HDR_START        0x1f1
#define HDR_SETUP_SECTS  0x1f1
#define HDR_BOOT_FLAG    0x1fe
#define HDR_JUMP         0x200
#define HDR_VERSION      0x206
#define HDR_LOADFLAGS    0x211
#define HDR_INITRD_MAX   0x22c
#define HDR_KERNEL_ALIGN 0x230
#define HDR_RELOCATABLE  0x234
#define HDR_XLOADFLAGS   0x236
#define HDR_CMDLINE_SIZE 0x238
#define HDR_PREF_ADDRESS 0x258
#define HDR_INIT_SIZE    0x260
#define HDR_MAX_END      0x290

#define LOADED_HIGH     0x01
#define XLF_KERNEL_64   0x01
#define ENTRY_64_OFFSET 0x200

static uint64_t align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

static int check_header(struct boot_ctx *c, const uint8_t *d, size_t len, size_t *setup_size)
{
	uint16_t version;
	unsigned sects;
	size_t hdr_end;

	/* Nothing of the header is read before the file is known to hold all of it. */
	if (len < HDR_MAX_END)
		return boot_fail(c, "bzImage of %zu bytes is too small for a setup header", len);
	version = get16(d + HDR_VERSION);
	sects = d[HDR_SETUP_SECTS] ? d[HDR_SETUP_SECTS] : 4;
	hdr_end = 0x202 + (size_t)d[HDR_JUMP + 1];
	if (get16(d + HDR_BOOT_FLAG) != 0xaa55)
		return boot_fail(c, "boot_flag is 0x%04x, expected 0xaa55",
		                 get16(d + HDR_BOOT_FLAG));
	if (version < 0x206)
		return boot_fail(c, "boot protocol %u.%02u is older than 2.06", version >> 8,
		                 version & 0xff);
	if (hdr_end > HDR_MAX_END || hdr_end < HDR_INIT_SIZE + 4)
		return boot_fail(c, "setup header length (jump byte 0x%02x at 0x201) is not valid",
		                 d[HDR_JUMP + 1]);
	*setup_size = ((size_t)sects + 1) * 512;
	if (*setup_size + ENTRY_64_OFFSET >= len)
		return boot_fail(c,
		                 "setup_sects %u: setup (%zu bytes) leaves no protected-mode "
		                 "kernel in a %zu-byte file",
		                 sects, *setup_size, len);
	if (!(d[HDR_LOADFLAGS] & LOADED_HIGH))
		return boot_fail(
		        c, "loadflags: LOADED_HIGH is clear (zImage kernels are not supported)");
	if (!(get16(d + HDR_XLOADFLAGS) & XLF_KERNEL_64))
		return boot_fail(
		        c, "xloadflags: XLF_KERNEL_64 is clear: the kernel has no 64-bit entry");
	return 0;
}

int bzimage_load(struct boot_ctx *c, struct guest_memory *mem, struct boot_image *img,
                 struct boot_info *info)
{
	const uint8_t *d = img->data;
	size_t setup_size = 0, kernel_size;
	uint64_t align, init_size, extract, low_end = guest_memory_low_end(mem);
	bool relocatable;
	int r = check_header(c, d, img->len, &setup_size);

	if (r)
		return r;
	kernel_size = img->len - setup_size;
	align = get32(d + HDR_KERNEL_ALIGN);
	relocatable = d[HDR_RELOCATABLE] != 0;
	init_size = get16(d + HDR_VERSION) >= 0x20a ? get32(d + HDR_INIT_SIZE) : kernel_size * 4;
	if (init_size < kernel_size)
		init_size = kernel_size;
	if (align == 0 || (align & (align - 1)) || align > (1ULL << 30))
		return boot_fail(c, "kernel_alignment 0x%llx is not a power of two up to 1 GiB",
		                 (unsigned long long)align);
	/*
	 * The image goes at 1 MiB; its decompressor then works from pref_address (its
	 * LOAD_PHYSICAL_ADDR) or the load address rounded up to kernel_alignment, whichever
	 * is higher, for init_size bytes.
	 */
	extract = get16(d + HDR_VERSION) >= 0x20a ? get64(d + HDR_PREF_ADDRESS) : LAYOUT_KERNEL;
	/* A relocatable kernel still never goes below LOAD_PHYSICAL_ADDR (= pref_address). */
	if (relocatable && align_up(LAYOUT_KERNEL, align) > extract)
		extract = align_up(LAYOUT_KERNEL, align);
	if (extract < LAYOUT_KERNEL)
		extract = LAYOUT_KERNEL;
	if (extract > low_end || init_size > low_end - extract ||
	    kernel_size > low_end - LAYOUT_KERNEL)
		return boot_fail(c,
		                 "needs guest RAM up to 0x%llx (init_size 0x%llx at 0x%llx), "
		                 "guest RAM below 4 GiB ends at 0x%llx",
		                 (unsigned long long)(extract + init_size),
		                 (unsigned long long)init_size, (unsigned long long)extract,
		                 (unsigned long long)low_end);
	r = guest_memory_write(mem, LAYOUT_KERNEL, d + setup_size, kernel_size);
	if (r)
		return boot_fail(c, "cannot copy the kernel to 0x%llx",
		                 (unsigned long long)LAYOUT_KERNEL);
	img->kernel_end = extract + init_size;
	if (img->kernel_end < LAYOUT_KERNEL + kernel_size)
		img->kernel_end = LAYOUT_KERNEL + kernel_size;
	img->cmdline_max = get32(d + HDR_CMDLINE_SIZE);
	img->initrd_max = get32(d + HDR_INITRD_MAX);
	img->setup_header_len = 0x202 + (size_t)d[HDR_JUMP + 1] - HDR_START;
	memcpy(img->setup_header, d + HDR_START, img->setup_header_len);
	info->mode = BOOT_MODE_64BIT;
	info->format = "bzImage";
	info->entry = LAYOUT_KERNEL + ENTRY_64_OFFSET;
	return 0;
}
