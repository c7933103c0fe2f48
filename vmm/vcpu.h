/* vCPU threads: set up CPUID, MSRs, LAPIC and FPU, then run KVM_RUN and dispatch exits. */
#ifndef FLINT_VCPU_H
#define FLINT_VCPU_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdbool.h>

struct vm;
struct boot_info;

struct vcpu {
	struct vm *vm;
	unsigned id;
	int fd;
	struct kvm_run *run;
	pthread_t thread;
	bool started;
};

/* Creates vCPU @id and configures it; the boot CPU also gets @boot's entry registers. */
int vcpu_create(struct vcpu *v, struct vm *vm, unsigned id, const struct kvm_cpuid2 *cpuid,
                const struct boot_info *boot);
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
