/* Loading a kernel and building what it expects to find at entry. */
#ifndef FLINT_BOOT_H
#define FLINT_BOOT_H

#include "vmm/base/memory.h"
#include "vmm/x86/regs.h"

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
	struct x86_boot_cpu cpu; /* the boot vCPU at entry: its mode, rip, rsi or rbx = params */
};

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
 * Loads kernel, initrd (when there is one) and command line from @src into @mem, writes
 * the boot structures (zero page or PVH start info, e820, GDT, page tables) and fills in
 * @info, with the boot vCPU's registers. Returns -errno with one message in @err.
 */
int boot_load(const struct boot_source *src, struct guest_memory *mem, struct boot_info *info,
              char *err, size_t errlen);

/* Writes an Intel MP table describing @ncpus CPUs, one IOAPIC and IRQs 0-23 (pin n = IRQ n). */
int mptable_write(struct guest_memory *mem, unsigned ncpus);

#endif
