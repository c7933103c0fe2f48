/* The FPU and the extended state (XCR0) of a vCPU. */
#ifndef FLINT_X86_FPU_H
#define FLINT_X86_FPU_H

#include <linux/kvm.h>

/* x87 and SSE control words as after FNINIT / reset (KVM_SET_FPU). -errno. */
int x86_fpu_reset(int vcpu_fd);
/* XCR0 = every user state component CPUID leaf 0xD of @cpuid offers (KVM_SET_XCRS). -errno. */
int x86_xcr0_set(int vcpu_fd, const struct kvm_cpuid2 *cpuid);

#endif
