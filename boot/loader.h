/* Inside boot/: what the format loaders and the boot structure writers share. */
#ifndef FLINT_BOOT_LOADER_H
#define FLINT_BOOT_LOADER_H

#include "boot/boot.h"

#include <stddef.h>
#include <stdint.h>

/* Messages name the file and the field: "<file>: <what>" (the file name escaped). */
struct boot_ctx {
	const char *path;
	char *err;
	size_t errlen;
};
int boot_fail(struct boot_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The guest memory map as e820 entries (addr, size, type). Returns the count. */
struct boot_e820 {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
};
#define E820_RAM      1
#define E820_RESERVED 2
#define BOOT_E820_MAX 8
unsigned boot_e820(const struct guest_memory *mem, struct boot_e820 *out);

/* The setup header may run from 0x1f1 up to 0x290 in a bzImage (and in the zero page). */
#define BOOT_SETUP_HEADER_START 0x1f1
#define BOOT_SETUP_HEADER_END   0x290

/* Per-format loaders. *kernel_end is the end of the memory the kernel will use. */
struct boot_image {
	const uint8_t *data;
	size_t len;
	size_t cmdline_max;  /* longest command line the kernel takes, NUL excluded */
	uint64_t initrd_max; /* highest address an initrd may use (inclusive) */
	uint64_t kernel_end;
	/* bzImage: its setup header as it is in the file, for the zero page */
	uint8_t setup_header[BOOT_SETUP_HEADER_END - BOOT_SETUP_HEADER_START];
	size_t setup_header_len;
};
int bzimage_load(struct boot_ctx *c, struct guest_memory *mem, struct boot_image *img,
                 struct boot_info *info);
int elf_load(struct boot_ctx *c, struct guest_memory *mem, struct boot_image *img,
             struct boot_info *info);

/* Writes the zero page for a 64-bit entry. */
int zeropage_write(struct guest_memory *mem, const struct boot_image *img, uint64_t cmdline,
                   uint64_t initrd, uint64_t initrd_size);
/* Writes hvm_start_info, its module list and memory map. */
int pvh_write(struct guest_memory *mem, uint64_t cmdline, uint64_t initrd, uint64_t initrd_size);

#endif
