/* FPU control words at reset, and XCR0 matched to what CPUID offers. */
#include "vmm/x86/fpu.h"

#include <errno.h>
#include <stdint.h>
#include <sys/ioctl.h>

#define FPU_FCW_RESET   0x37f  /* all exceptions masked, 64-bit precision, round to nearest */
#define FPU_MXCSR_RESET 0x1f80 /* all SSE exceptions masked */

#define XCR0_X87 (1ULL << 0)
/* User state components (x87 .. AVX-512, PKRU); supervisor ones never go in XCR0. */
#define XCR0_USER_MASK 0x2ffULL

int x86_fpu_reset(int vcpu_fd)
{
	struct kvm_fpu fpu = { .fcw = FPU_FCW_RESET, .mxcsr = FPU_MXCSR_RESET };

	return ioctl(vcpu_fd, KVM_SET_FPU, &fpu) < 0 ? -errno : 0;
}

/*
 * KVM refreshes the XSAVE area size it reports (0xD.0 EBX) when XCR0 is set, so a kernel
 * that enables those components reads a size that matches; without this, some KVMs leave
 * the x87+SSE size in place and Linux sizes its FPU buffers wrongly.
 */
int x86_xcr0_set(int vcpu_fd, const struct kvm_cpuid2 *cpuid)
{
	struct kvm_xcrs xcrs = { .nr_xcrs = 1 };
	uint64_t mask = 0;

	for (unsigned i = 0; i < cpuid->nent; i++) {
		const struct kvm_cpuid_entry2 *e = &cpuid->entries[i];
		if (e->function == 0xd && e->index == 0)
			mask = e->eax | ((uint64_t)e->edx << 32);
	}
	/* x87 must always be set. */
	xcrs.xcrs[0].xcr = 0;
	xcrs.xcrs[0].value = (mask & XCR0_USER_MASK) | XCR0_X87;
	return ioctl(vcpu_fd, KVM_SET_XCRS, &xcrs) < 0 ? -errno : 0;
}
