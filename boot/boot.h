/* Loading a kernel and building what it expects to find at entry. */
#ifndef FLINT_BOOT_H
#define FLINT_BOOT_H

#include "vmm/base/memory.h"

#include <linux/kvm.h>
#include <stddef.h>
#include <stdint.h>

enum boot_mode {
	BOOT_MODE_64BIT, /* long mode, paging on, RSI = boot_params (bzImage, ELF vmlinux) */
	BOOT_MODE_PVH,   /* 32-bit protected mode, paging off, EBX = hvm_start_info */
};

struct boot_info {
	enum boot_mode mode;
	const char *format; /* "bzImage", "ELF", "PVH" for messages */
	uint64_t entry;
	uint64_t params;
};

/* Messages name the file and the field: "<file>: <what>" (the file name escaped). */
struct boot_ctx {
	const char *path;
	char *err;
	size_t errlen;
};
int boot_fail(struct boot_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define BOOT_MAX_KERNEL_BYTES (512ULL << 20)
#define BOOT_MAX_INITRD_BYTES (2ULL << 30)

/* What to boot: the images, opened and checked by whoever named them, and the command line. */
struct boot_source {
	int kernel_fd;
	const char *kernel_path; /* for messages */
	int initrd_fd;           /* -1: none */
	const char *initrd_path; /* NULL: none */
	const char *cmdline;
};

/*
 * Loads kernel, initrd (when there is one) and command line from @src into @mem and
 * writes the boot structures (zero page or PVH start info, e820, MP table, GDT, page
 * tables). Returns -errno with one message in @err.
 */
int boot_load(const struct boot_source *src, struct guest_memory *mem, struct boot_info *info,
              char *err, size_t errlen);

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

/* Per-format loaders. *kernel_end is the end of the memory the kernel will use. */
struct boot_image {
	const uint8_t *data;
	size_t len;
	size_t cmdline_max;  /* longest command line the kernel takes, NUL excluded */
	uint64_t initrd_max; /* highest address an initrd may use (inclusive) */
	uint64_t kernel_end;
	uint8_t setup_header[0x290 - 0x1f1]; /* bzImage: header bytes for the zero page */
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
/* Writes an Intel MP table describing @ncpus CPUs, one IOAPIC and ISA IRQs 0-15. */
int mptable_write(struct guest_memory *mem, unsigned ncpus);

/* GDT and identity page tables in guest memory for @mode. */
int boot_write_cpu_tables(struct guest_memory *mem, enum boot_mode mode);
/* Boot CPU registers for @info (the GDT/page tables must be written). */
void boot_cpu_regs(const struct boot_info *info, struct kvm_regs *regs, struct kvm_sregs *sregs);

#endif
