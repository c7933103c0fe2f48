/* The CPU state a kernel expects at entry: GDT, identity page tables, registers. */
#include "boot/boot.h"
#include "boot/bytes.h"
#include "vmm/x86/layout.h"

#include <errno.h>
#include <string.h>

#define GDT_CODE64 0xa09bULL
#define GDT_CODE32 0xc09bULL
#define GDT_DATA   0xc093ULL
#define GDT_TSS    0x808bULL
/* Selectors the Linux boot protocol names: __BOOT_CS 0x10, __BOOT_DS 0x18. */
#define SEL_CODE 0x10
#define SEL_DATA 0x18
#define SEL_TSS  0x20

#define CR0_PE   0x1ULL
#define CR0_ET   0x10ULL
#define CR0_PG   0x80000000ULL
#define CR4_PAE  0x20ULL
#define EFER_LME 0x100ULL
#define EFER_LMA 0x400ULL

static uint64_t gdt_entry(uint64_t flags, uint64_t base, uint64_t limit)
{
	return ((base & 0xff000000ULL) << 32) | ((flags & 0xf0ffULL) << 40) |
	       ((limit & 0xf0000ULL) << 32) | ((base & 0xffffffULL) << 16) | (limit & 0xffffULL);
}

int boot_write_cpu_tables(struct guest_memory *mem, enum boot_mode mode)
{
	uint64_t gdt[5] = { 0, 0,
		            gdt_entry(mode == BOOT_MODE_PVH ? GDT_CODE32 : GDT_CODE64, 0, 0xfffff),
		            gdt_entry(GDT_DATA, 0, 0xfffff), gdt_entry(GDT_TSS, 0, 0xfffff) };
	uint8_t *pml4 = guest_memory_hva(mem, LAYOUT_PML4, 4096);
	uint8_t *pdpt = guest_memory_hva(mem, LAYOUT_PDPT, 4096);
	uint8_t *pd = guest_memory_hva(mem, LAYOUT_PD, 4 * 4096);
	int r = guest_memory_write(mem, LAYOUT_GDT, gdt, sizeof(gdt));

	if (r || !pml4 || !pdpt || !pd)
		return r ? r : -EFAULT;
	if (mode == BOOT_MODE_PVH)
		return 0; /* paging stays off */
	/* Identity-map the first 4 GiB with 2 MiB pages. */
	memset(pml4, 0, 4096);
	memset(pdpt, 0, 4096);
	put64(pml4, LAYOUT_PDPT | 0x3);
	for (uint64_t i = 0; i < 4; i++)
		put64(pdpt + i * 8, (LAYOUT_PD + i * 4096) | 0x3);
	for (uint64_t i = 0; i < 4 * 512; i++)
		put64(pd + i * 8, (i << 21) | 0x83);
	return 0;
}

static struct kvm_segment segment(uint64_t flags, uint16_t selector)
{
	return (struct kvm_segment){
		.base = 0,
		.limit = 0xffffffff,
		.selector = selector,
		.type = flags & 0xf,
		.present = (flags >> 7) & 1,
		.dpl = (flags >> 5) & 3,
		.db = (flags >> 14) & 1,
		.s = (flags >> 4) & 1,
		.l = (flags >> 13) & 1,
		.g = (flags >> 15) & 1,
	};
}

void boot_cpu_regs(const struct boot_info *info, struct kvm_regs *regs, struct kvm_sregs *sregs)
{
	bool pvh = info->mode == BOOT_MODE_PVH;
	struct kvm_segment data = segment(GDT_DATA, SEL_DATA);

	memset(regs, 0, sizeof(*regs));
	regs->rflags = 0x2;
	regs->rip = info->entry;
	if (pvh) {
		regs->rbx = info->params;
	} else {
		regs->rsi = info->params;
		regs->rsp = regs->rbp = LAYOUT_BOOT_STACK;
	}
	sregs->gdt.base = LAYOUT_GDT;
	sregs->gdt.limit = 5 * 8 - 1;
	sregs->idt.base = 0;
	sregs->idt.limit = 0;
	sregs->cs = segment(pvh ? GDT_CODE32 : GDT_CODE64, SEL_CODE);
	sregs->ds = sregs->es = sregs->fs = sregs->gs = sregs->ss = data;
	sregs->tr = segment(GDT_TSS, SEL_TSS);
	sregs->cr0 = CR0_PE | CR0_ET;
	sregs->cr4 = 0;
	sregs->efer = 0;
	if (!pvh) {
		sregs->cr0 |= CR0_PG;
		sregs->cr3 = LAYOUT_PML4;
		sregs->cr4 = CR4_PAE;
		sregs->efer = EFER_LME | EFER_LMA;
	}
}
