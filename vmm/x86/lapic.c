/* LAPIC LINT0/LINT1 as firmware leaves them: Linux expects the PIC on LINT0, NMI on LINT1. */
#include "vmm/x86/lapic.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>

static void set_delivery_mode(struct kvm_lapic_state *l, unsigned reg, uint32_t mode)
{
	uint32_t v;

	memcpy(&v, l->regs + reg, sizeof(v));
	v = (v & ~APIC_LVT_MODE_MASK) | (mode << APIC_LVT_MODE_SHIFT);
	memcpy(l->regs + reg, &v, sizeof(v));
}

int x86_lapic_set_lints(int vcpu_fd)
{
	struct kvm_lapic_state l;

	if (ioctl(vcpu_fd, KVM_GET_LAPIC, &l) < 0)
		return -errno;
	set_delivery_mode(&l, APIC_LVT0, APIC_MODE_EXTINT);
	set_delivery_mode(&l, APIC_LVT1, APIC_MODE_NMI);
	return ioctl(vcpu_fd, KVM_SET_LAPIC, &l) < 0 ? -errno : 0;
}
