/* Linux bzImage, boot protocol 2.06+, entered at its 64-bit entry point. */
#include "boot/bootparam.h"
#include "boot/loader.h"
#include "vmm/x86/layout.h"

#include <stdbool.h>
#include <string.h>

/* The setup header of a file at least BOOT_SETUP_HEADER_END long, and what it implies. */
struct bz_header {
	struct setup_header h;
	size_t setup_size; /* the real-mode part: (setup_sects + 1) sectors */
	size_t end;        /* where the header ends in the file (0x202 + the jump offset) */
};

static uint64_t align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

static int check_header(struct boot_ctx *c, const uint8_t *d, size_t len, struct bz_header *bz)
{
	const struct setup_header *h = &bz->h;
	unsigned sects;

	/* Nothing of the header is read before the file is known to hold all of it. */
	if (len < BOOT_SETUP_HEADER_END)
		return boot_fail(c, "bzImage of %zu bytes is too small for a setup header", len);
	memcpy(&bz->h, d + BOOT_SETUP_HEADER_START, sizeof(bz->h));
	sects = h->setup_sects ? h->setup_sects : 4;
	bz->end = SETUP_HEADER_END(h);
	if (h->boot_flag != SETUP_BOOT_FLAG)
		return boot_fail(c, "boot_flag is 0x%04x, expected 0xaa55", h->boot_flag);
	if (h->version < 0x206)
		return boot_fail(c, "boot protocol %u.%02u is older than 2.06", h->version >> 8,
		                 h->version & 0xff);
	if (bz->end > BOOT_SETUP_HEADER_END ||
	    bz->end < SETUP_OFFSET(init_size) + sizeof(h->init_size))
		return boot_fail(c, "setup header length (jump byte 0x%02x at 0x201) is not valid",
		                 h->jump >> 8);
	bz->setup_size = ((size_t)sects + 1) * 512;
	if (bz->setup_size + SETUP_ENTRY64_OFFSET >= len)
		return boot_fail(c,
		                 "setup_sects %u: setup (%zu bytes) leaves no protected-mode "
		                 "kernel in a %zu-byte file",
		                 sects, bz->setup_size, len);
	if (!(h->loadflags & LOADED_HIGH))
		return boot_fail(
		        c, "loadflags: LOADED_HIGH is clear (zImage kernels are not supported)");
	if (!(h->xloadflags & XLF_KERNEL_64))
		return boot_fail(
		        c, "xloadflags: XLF_KERNEL_64 is clear: the kernel has no 64-bit entry");
	return 0;
}

/*
 * Where the decompressor works: from pref_address (its LOAD_PHYSICAL_ADDR) or the load
 * address rounded up to kernel_alignment, whichever is higher, for init_size bytes.
 */
static uint64_t extract_address(const struct setup_header *h, uint64_t align)
{
	uint64_t extract = h->version >= 0x20a ? h->pref_address : LAYOUT_KERNEL;

	/* A relocatable kernel still never goes below LOAD_PHYSICAL_ADDR (= pref_address). */
	if (h->relocatable_kernel && align_up(LAYOUT_KERNEL, align) > extract)
		extract = align_up(LAYOUT_KERNEL, align);
	return extract < LAYOUT_KERNEL ? LAYOUT_KERNEL : extract;
}

int bzimage_load(struct boot_ctx *c, struct guest_memory *mem, struct boot_image *img,
                 struct boot_info *info)
{
	const uint8_t *d = img->data;
	struct bz_header bz = { 0 };
	size_t kernel_size;
	uint64_t align, init_size, extract, low_end = guest_memory_low_end(mem);
	int r = check_header(c, d, img->len, &bz);

	if (r)
		return r;
	kernel_size = img->len - bz.setup_size;
	align = bz.h.kernel_alignment;
	init_size = bz.h.version >= 0x20a ? bz.h.init_size : kernel_size * 4;
	if (init_size < kernel_size)
		init_size = kernel_size;
	if (align == 0 || (align & (align - 1)) || align > (1ULL << 30))
		return boot_fail(c, "kernel_alignment 0x%llx is not a power of two up to 1 GiB",
		                 (unsigned long long)align);
	/* The image goes at 1 MiB; its decompressor then needs [extract, + init_size). */
	extract = extract_address(&bz.h, align);
	if (extract > low_end || init_size > low_end - extract ||
	    kernel_size > low_end - LAYOUT_KERNEL)
		return boot_fail(c,
		                 "needs guest RAM up to 0x%llx (init_size 0x%llx at 0x%llx), "
		                 "guest RAM below 4 GiB ends at 0x%llx",
		                 (unsigned long long)(extract + init_size),
		                 (unsigned long long)init_size, (unsigned long long)extract,
		                 (unsigned long long)low_end);
	r = guest_memory_write(mem, LAYOUT_KERNEL, d + bz.setup_size, kernel_size);
	if (r)
		return boot_fail(c, "cannot copy the kernel to 0x%llx",
		                 (unsigned long long)LAYOUT_KERNEL);
	img->kernel_end = extract + init_size;
	if (img->kernel_end < LAYOUT_KERNEL + kernel_size)
		img->kernel_end = LAYOUT_KERNEL + kernel_size;
	img->cmdline_max = bz.h.cmdline_size;
	img->initrd_max = bz.h.initrd_addr_max;
	/* Handed back as it is in the file, fields newer than <asm/bootparam.h> included. */
	img->setup_header_len = bz.end - BOOT_SETUP_HEADER_START;
	memcpy(img->setup_header, d + BOOT_SETUP_HEADER_START, img->setup_header_len);
	info->mode = BOOT_MODE_64BIT;
	info->format = "bzImage";
	info->entry = LAYOUT_KERNEL + SETUP_ENTRY64_OFFSET;
	return 0;
}
