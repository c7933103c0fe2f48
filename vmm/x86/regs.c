/* The CPU state a kernel expects at entry: GDT, identity page tables, registers. */
#include "vmm/x86/regs.h"
#include "vmm/base/log.h"
#include "vmm/x86/layout.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/ioctl.h>

/* GDT access byte and flags nibble, as gdt_entry() packs them (flags << 12 | access). */
#define GDT_CODE64  0xa09bULL /* G, L, present, code, execute/read, accessed */
#define GDT_CODE32  0xc09bULL /* G, D/B, present, code, execute/read, accessed */
#define GDT_DATA    0xc093ULL /* G, D/B, present, data, read/write, accessed */
#define GDT_TSS     0x808bULL /* G, present, busy 32-bit TSS */
#define GDT_ENTRIES 5
/* Selectors the Linux boot protocol names: __BOOT_CS 0x10, __BOOT_DS 0x18. */
#define SEL_CODE 0x10
#define SEL_DATA 0x18
#define SEL_TSS  0x20

#define RFLAGS_FIXED 0x2ULL /* bit 1 always reads 1 */
#define CR0_PE       0x1ULL
#define CR0_ET       0x10ULL
#define CR0_PG       0x80000000ULL
#define CR4_PAE      0x20ULL
#define EFER_LME     0x100ULL
#define EFER_LMA     0x400ULL

#define PTE_PRESENT  0x1ULL
#define PTE_WRITABLE 0x2ULL
#define PTE_HUGE     0x80ULL /* a PD entry that maps 2 MiB */
#define PT_ENTRIES   512
#define IDENTITY_GIB 4 /* one PD per GiB */

static uint64_t gdt_entry(uint64_t flags, uint64_t base, uint64_t limit)
{
	return ((base & 0xff000000ULL) << 32) | ((flags & 0xf0ffULL) << 40) |
	       ((limit & 0xf0000ULL) << 32) | ((base & 0xffffffULL) << 16) | (limit & 0xffffULL);
}

void x86_boot_cpu_init(struct x86_boot_cpu *cpu, enum x86_cpu_mode mode, uint64_t rip)
{
	memset(cpu, 0, sizeof(*cpu));
	cpu->mode = mode;
	cpu->regs.rflags = RFLAGS_FIXED;
	cpu->regs.rip = rip;
	/* The 64-bit boot protocol promises no stack, but a kernel may use one at once. */
	if (mode == X86_MODE_LONG)
		cpu->regs.rsp = cpu->regs.rbp = LAYOUT_BOOT_STACK;
}

/* Identity-maps the first 4 GiB with 2 MiB pages: PML4 -> PDPT -> 4 PDs. */
static int write_page_tables(struct guest_memory *mem)
{
	uint64_t *pml4 = guest_memory_hva(mem, LAYOUT_PML4, 4096);
	uint64_t *pdpt = guest_memory_hva(mem, LAYOUT_PDPT, 4096);
	uint64_t *pd = guest_memory_hva(mem, LAYOUT_PD, IDENTITY_GIB * 4096);

	if (!pml4 || !pdpt || !pd)
		return -EFAULT;
	memset(pml4, 0, 4096);
	memset(pdpt, 0, 4096);
	pml4[0] = LAYOUT_PDPT | PTE_PRESENT | PTE_WRITABLE;
	for (uint64_t i = 0; i < IDENTITY_GIB; i++)
		pdpt[i] = (LAYOUT_PD + i * 4096) | PTE_PRESENT | PTE_WRITABLE;
	for (uint64_t i = 0; i < IDENTITY_GIB * PT_ENTRIES; i++)
		pd[i] = (i << 21) | PTE_PRESENT | PTE_WRITABLE | PTE_HUGE;
	return 0;
}

int x86_boot_tables_write(struct guest_memory *mem, enum x86_cpu_mode mode)
{
	uint64_t gdt[GDT_ENTRIES] = {
		0,
		0,
		gdt_entry(mode == X86_MODE_PROTECTED ? GDT_CODE32 : GDT_CODE64, 0, 0xfffff),
		gdt_entry(GDT_DATA, 0, 0xfffff),
		gdt_entry(GDT_TSS, 0, 0xfffff),
	};
	int r = guest_memory_write(mem, LAYOUT_GDT, gdt, sizeof(gdt));

	if (r || mode == X86_MODE_PROTECTED)
		return r; /* paging stays off */
	return write_page_tables(mem);
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

void x86_boot_sregs(enum x86_cpu_mode mode, struct kvm_sregs *sregs)
{
	bool prot = mode == X86_MODE_PROTECTED;
	struct kvm_segment data = segment(GDT_DATA, SEL_DATA);

	sregs->gdt.base = LAYOUT_GDT;
	sregs->gdt.limit = GDT_ENTRIES * 8 - 1;
	sregs->idt.base = 0;
	sregs->idt.limit = 0;
	sregs->cs = segment(prot ? GDT_CODE32 : GDT_CODE64, SEL_CODE);
	sregs->ds = sregs->es = sregs->fs = sregs->gs = sregs->ss = data;
	sregs->tr = segment(GDT_TSS, SEL_TSS);
	sregs->cr0 = CR0_PE | CR0_ET;
	sregs->cr4 = 0;
	sregs->efer = 0;
	if (!prot) {
		sregs->cr0 |= CR0_PG;
		sregs->cr3 = LAYOUT_PML4;
		sregs->cr4 = CR4_PAE;
		sregs->efer = EFER_LME | EFER_LMA;
	}
}

int x86_boot_regs_set(int vcpu_fd, const struct x86_boot_cpu *cpu)
{
	struct kvm_sregs sregs;

	/* Only what the mode defines changes; KVM keeps the rest (APIC base, ...) as reset. */
	if (ioctl(vcpu_fd, KVM_GET_SREGS, &sregs) < 0)
		return -errno;
	x86_boot_sregs(cpu->mode, &sregs);
	if (ioctl(vcpu_fd, KVM_SET_SREGS, &sregs) < 0 ||
	    ioctl(vcpu_fd, KVM_SET_REGS, &cpu->regs) < 0)
		return -errno;
	return 0;
}

void x86_regs_dump(int vcpu_fd, unsigned id)
{
	struct kvm_regs r;
	struct kvm_sregs s;

	if (ioctl(vcpu_fd, KVM_GET_REGS, &r) < 0 || ioctl(vcpu_fd, KVM_GET_SREGS, &s) < 0) {
		log_error("vcpu %u: cannot read registers: %s", id, strerror(errno));
		return;
	}
	log_error("vcpu %u: rip=%#llx rsp=%#llx rflags=%#llx rax=%#llx rbx=%#llx rcx=%#llx "
	          "rdx=%#llx rsi=%#llx rdi=%#llx rbp=%#llx",
	          id, r.rip, r.rsp, r.rflags, r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.rbp);
	log_error("vcpu %u: cs=%#x (base %#llx, l=%u db=%u) cr0=%#llx cr2=%#llx cr3=%#llx "
	          "cr4=%#llx efer=%#llx",
	          id, s.cs.selector, s.cs.base, s.cs.l, s.cs.db, s.cr0, s.cr2, s.cr3, s.cr4,
	          s.efer);
}
