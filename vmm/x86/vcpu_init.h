/* Everything x86 a new vCPU needs before its first KVM_RUN, in the order KVM wants it. */
#ifndef FLINT_X86_VCPU_INIT_H
#define FLINT_X86_VCPU_INIT_H

#include "vmm/x86/cpuid.h"
#include "vmm/x86/regs.h"

#include <linux/kvm.h>

struct x86_vcpu_init {
	const struct kvm_cpuid2 *cpuid; /* the host's supported CPUID, patched per vCPU */
	struct x86_topology topo;
	const struct x86_boot_cpu *boot; /* the boot vCPU's entry state; NULL for the others */
};

/*
 * CPUID, MSRs, LAPIC LINT0/LINT1, XCR0 and, for the boot vCPU, FPU and entry registers.
 * Application processors wait for INIT/SIPI in the in-kernel LAPIC. Returns -errno with
 * @step naming what failed ("KVM_SET_CPUID2", ..., "boot registers").
 */
int x86_vcpu_init(int vcpu_fd, const struct x86_vcpu_init *init, const char **step);

#endif
