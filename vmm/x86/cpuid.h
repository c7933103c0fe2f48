/* CPUID: what the host's KVM supports, and each vCPU's view of it (APIC id, topology). */
#ifndef FLINT_X86_CPUID_H
#define FLINT_X86_CPUID_H

#include <linux/kvm.h>
#include <stdbool.h>

/* The host's supported CPUID (KVM_GET_SUPPORTED_CPUID). NULL with errno set; caller frees. */
struct kvm_cpuid2 *x86_cpuid_supported(int kvm_fd);

/*
 * The guest physical address width the vCPUs report (leaf 0x80000008, EAX[7:0]); 36, the
 * architectural minimum, when the leaf is missing. Guest addresses at or above
 * 1 << width are neither usable by the guest nor accepted by KVM as memory slots.
 */
unsigned x86_cpuid_phys_bits(const struct kvm_cpuid2 *supported);

/* Where a vCPU sits: its APIC id and the topology every vCPU reports. */
struct x86_topology {
	unsigned id;
	unsigned count; /* vCPUs in the VM */
	bool smt;       /* two threads per core (when count > 1) */
};

/* Sets @supported, patched for @topo, as the CPUID of @vcpu_fd (KVM_SET_CPUID2). -errno. */
int x86_cpuid_set(int vcpu_fd, const struct kvm_cpuid2 *supported, const struct x86_topology *topo);

#endif
