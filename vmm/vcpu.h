/* vCPU threads: create and set up a vCPU (its x86 state: vmm/x86/), run KVM_RUN, dispatch exits. */
#ifndef FLINT_VCPU_H
#define FLINT_VCPU_H

#include "vmm/base/log.h"

#include <linux/kvm.h>
#include <pthread.h>
#include <stdbool.h>

struct vm;
struct x86_boot_cpu;

struct vcpu {
	struct vm *vm;
	unsigned id;
	int fd;
	struct kvm_run *run;
	pthread_t thread;
	bool started;
	/* Only this vCPU's thread logs through it: each vCPU limits its own messages. */
	struct log_ratelimit unhandled_rl;
};

/*
 * Creates vCPU @id and configures it (CPUID from @cpuid, the host's supported one); vCPU 0,
 * the boot CPU, also gets @boot's entry registers.
 */
int vcpu_create(struct vcpu *v, struct vm *vm, unsigned id, const struct kvm_cpuid2 *cpuid,
                const struct x86_boot_cpu *boot);
int vcpu_start(struct vcpu *v);
/* Makes the vCPU leave KVM_RUN soon (immediate_exit + a signal); any thread. */
void vcpu_kick(struct vcpu *v);
void vcpu_join(struct vcpu *v);
void vcpu_destroy(struct vcpu *v);

/* The host's supported CPUID, fetched once and patched per vCPU. Caller frees. */
struct kvm_cpuid2 *vcpu_supported_cpuid(int kvm_fd);
/* Installs the (empty) handler of the signal used to kick vCPUs. */
int vcpu_signals_init(void);

#endif
