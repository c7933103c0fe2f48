/* The MSRs of a vCPU at boot: syscall entry points cleared, fast strings, write-back MTRRs. */
#include "vmm/x86/msr.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>

static const struct {
	uint32_t index;
	uint64_t value;
} boot_msrs[] = {
	{ MSR_IA32_SYSENTER_CS, 0 },
	{ MSR_IA32_SYSENTER_ESP, 0 },
	{ MSR_IA32_SYSENTER_EIP, 0 },
	{ MSR_STAR, 0 },
	{ MSR_LSTAR, 0 },
	{ MSR_CSTAR, 0 },
	{ MSR_SYSCALL_MASK, 0 },
	{ MSR_KERNEL_GS_BASE, 0 },
	{ MSR_IA32_TSC, 0 },
	{ MSR_IA32_MISC_ENABLE, MSR_IA32_MISC_ENABLE_FAST_STRING },
	/* Guest RAM is ordinary memory: write-back unless a variable MTRR says otherwise. */
	{ MSR_MTRR_DEF_TYPE, MSR_MTRR_DEF_TYPE_ENABLE | MTRR_TYPE_WRBACK },
};
#define BOOT_MSR_COUNT (sizeof(boot_msrs) / sizeof(boot_msrs[0]))

int x86_msrs_set_boot(int vcpu_fd)
{
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e[BOOT_MSR_COUNT];
	} buf;
	int r;

	memset(&buf, 0, sizeof(buf));
	buf.hdr.nmsrs = BOOT_MSR_COUNT;
	for (unsigned i = 0; i < BOOT_MSR_COUNT; i++) {
		buf.e[i].index = boot_msrs[i].index;
		buf.e[i].data = boot_msrs[i].value;
	}
	/* KVM_SET_MSRS returns how many it set: it stops at the first it refuses. */
	r = ioctl(vcpu_fd, KVM_SET_MSRS, &buf);
	if (r < 0)
		return -errno;
	return r == (int)BOOT_MSR_COUNT ? 0 : -EINVAL;
}
