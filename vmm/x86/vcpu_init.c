/* The x86 set-up of one vCPU: each step named, so a failure says which ioctl refused. */
#include "vmm/x86/vcpu_init.h"
#include "vmm/x86/fpu.h"
#include "vmm/x86/lapic.h"
#include "vmm/x86/msr.h"

static int set_cpuid(int fd, const struct x86_vcpu_init *init)
{
	return x86_cpuid_set(fd, init->cpuid, &init->topo);
}

static int set_msrs(int fd, const struct x86_vcpu_init *init)
{
	(void)init;
	return x86_msrs_set_boot(fd);
}

static int set_lapic(int fd, const struct x86_vcpu_init *init)
{
	(void)init;
	return x86_lapic_set_lints(fd);
}

static int set_xcr0(int fd, const struct x86_vcpu_init *init)
{
	return x86_xcr0_set(fd, init->cpuid);
}

static int set_boot_regs(int fd, const struct x86_vcpu_init *init)
{
	int r;

	if (!init->boot)
		return 0;
	r = x86_fpu_reset(fd);
	return r ? r : x86_boot_regs_set(fd, init->boot);
}

int x86_vcpu_init(int vcpu_fd, const struct x86_vcpu_init *init, const char **step)
{
	static const struct {
		const char *name;
		int (*run)(int fd, const struct x86_vcpu_init *init);
	} steps[] = {
		{ "KVM_SET_CPUID2", set_cpuid },     { "KVM_SET_MSRS", set_msrs },
		{ "KVM_SET_LAPIC", set_lapic },      { "KVM_SET_XCRS", set_xcr0 },
		{ "boot registers", set_boot_regs },
	};

	for (unsigned i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		int r = steps[i].run(vcpu_fd, init);
		if (r) {
			*step = steps[i].name;
			return r;
		}
	}
	return 0;
}
