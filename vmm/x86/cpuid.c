/* CPUID for each vCPU: the host's supported leaves with its APIC id and topology. */
#include "vmm/x86/cpuid.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

/* Enough for every leaf and subleaf current KVMs report (E2BIG beyond). */
#define CPUID_MAX_ENTRIES 256

#define CPUID_1_ECX_HYPERVISOR (1U << 31)
#define CPUID_1_EDX_HTT        (1U << 28)
/* Leaf 0xb/0x1f ECX[15:8]: the level type. */
#define CPUID_LEVEL_SMT  (1U << 8)
#define CPUID_LEVEL_CORE (2U << 8)

struct kvm_cpuid2 *x86_cpuid_supported(int kvm_fd)
{
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + CPUID_MAX_ENTRIES * sizeof(c->entries[0]));
	int err;

	if (!c)
		return NULL;
	c->nent = CPUID_MAX_ENTRIES;
	if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, c) < 0) {
		err = errno;
		free(c);
		errno = err; /* the caller reports KVM's reason, not free()'s */
		return NULL;
	}
	return c;
}

static unsigned bits_for(unsigned n)
{
	unsigned b = 0;

	while ((1U << b) < n)
		b++;
	return b;
}

/* Leaves 0xb and 0x1f: subleaf 0 is the SMT level, 1 the core level, the rest invalid. */
static void patch_extended_topology(struct kvm_cpuid_entry2 *e, const struct x86_topology *t,
                                    unsigned threads)
{
	e->edx = t->id;
	if (e->index == 0) {
		e->eax = bits_for(threads);
		e->ebx = threads;
		e->ecx = 0 | CPUID_LEVEL_SMT;
	} else if (e->index == 1) {
		e->eax = bits_for(t->count);
		e->ebx = t->count;
		e->ecx = 1 | CPUID_LEVEL_CORE;
	} else {
		e->eax = e->ebx = 0;
		e->ecx = e->index;
	}
}

/* Per-vCPU CPUID: APIC ids and a topology that matches the vCPU count and smt. */
static void patch_cpuid(struct kvm_cpuid2 *c, const struct x86_topology *t)
{
	unsigned threads = t->smt && t->count > 1 ? 2 : 1;

	for (unsigned i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];
		switch (e->function) {
		case 1: /* EBX: initial APIC id [31:24], logical processors [23:16] */
			e->ebx = (e->ebx & 0x0000ffff) | (t->id << 24) | (t->count << 16);
			e->ecx |= CPUID_1_ECX_HYPERVISOR;
			if (t->count > 1)
				e->edx |= CPUID_1_EDX_HTT;
			break;
		case 4: /* EAX: cores per package - 1 [31:26], threads sharing the cache - 1 [25:14]
		         */
			e->eax = (e->eax & 0x3ff) | (((t->count / threads) - 1) << 26) |
			         ((threads - 1) << 14);
			break;
		case 0xb:
		case 0x1f:
			patch_extended_topology(e, t, threads);
			break;
		default:
			break;
		}
	}
}

int x86_cpuid_set(int vcpu_fd, const struct kvm_cpuid2 *supported, const struct x86_topology *topo)
{
	size_t size = sizeof(*supported) + supported->nent * sizeof(supported->entries[0]);
	struct kvm_cpuid2 *mine = malloc(size);
	int r;

	if (!mine)
		return -ENOMEM;
	memcpy(mine, supported, size);
	patch_cpuid(mine, topo);
	r = ioctl(vcpu_fd, KVM_SET_CPUID2, mine) < 0 ? -errno : 0;
	free(mine);
	return r;
}

unsigned x86_cpuid_phys_bits(const struct kvm_cpuid2 *supported)
{
	for (unsigned i = 0; i < supported->nent; i++) {
		const struct kvm_cpuid_entry2 *e = &supported->entries[i];
		if (e->function == 0x80000008 && (e->eax & 0xff) >= 36 && (e->eax & 0xff) <= 52)
			return e->eax & 0xff;
	}
	return 36;
}
