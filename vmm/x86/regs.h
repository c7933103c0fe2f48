/*
 * The boot CPU at a kernel's entry: the GDT and identity page tables in guest memory, the
 * segment and control registers of each entry mode, and the register dump of a crash.
 */
#ifndef FLINT_X86_REGS_H
#define FLINT_X86_REGS_H

#include "vmm/base/memory.h"

#include <linux/kvm.h>
#include <stdint.h>

enum x86_cpu_mode {
	X86_MODE_LONG,      /* 64-bit, paging on, the first 4 GiB identity-mapped */
	X86_MODE_PROTECTED, /* 32-bit protected mode, flat segments, paging off */
};

/* What the boot vCPU starts with: its mode and its general registers. */
struct x86_boot_cpu {
	enum x86_cpu_mode mode;
	struct kvm_regs regs;
};

/*
 * Entry at @rip in @mode with interrupts off and every other register 0; long mode also
 * gets a stack (LAYOUT_BOOT_STACK). The boot protocol then puts its pointer where it says.
 */
void x86_boot_cpu_init(struct x86_boot_cpu *cpu, enum x86_cpu_mode mode, uint64_t rip);
/* Writes the GDT (and for long mode the page tables) at their layout.h places. -errno. */
int x86_boot_tables_write(struct guest_memory *mem, enum x86_cpu_mode mode);
/* The segment and control registers of @mode, over what KVM_GET_SREGS returned. */
void x86_boot_sregs(enum x86_cpu_mode mode, struct kvm_sregs *sregs);
/* Loads @cpu into @vcpu_fd (the tables must be written). -errno. */
int x86_boot_regs_set(int vcpu_fd, const struct x86_boot_cpu *cpu);

/* For crashes: logs what vCPU @id was doing (rip, rsp, ..., cs, cr0-cr4, efer). */
void x86_regs_dump(int vcpu_fd, unsigned id);

#endif
