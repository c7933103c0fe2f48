/* The in-kernel local APIC of a vCPU. */
#ifndef FLINT_X86_LAPIC_H
#define FLINT_X86_LAPIC_H

/* Register offsets in the APIC page (and in struct kvm_lapic_state's regs). */
#define APIC_LVT0 0x350
#define APIC_LVT1 0x360

/* LVT delivery mode, bits 10:8. */
#define APIC_LVT_MODE_SHIFT 8
#define APIC_LVT_MODE_MASK  (7U << APIC_LVT_MODE_SHIFT)
#define APIC_MODE_NMI       4U
#define APIC_MODE_EXTINT    7U

/* LINT0 delivers ExtINT (the PIC), LINT1 NMI, as firmware leaves them. -errno. */
int x86_lapic_set_lints(int vcpu_fd);

#endif
