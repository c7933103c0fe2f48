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

/*
 * Pause and resume (the API's PATCH /vm), from the loop thread: the @n vCPUs leave KVM_RUN
 * and wait until resumed or stopped. vcpus_pause returns once all of them wait (guest code
 * runs no more), or -ETIMEDOUT after 5 s (then they run on). Interrupts raised meanwhile
 * stay pending in KVM's irqchip and reach the guest when it runs again.
 */
int vcpus_pause(struct vcpu *v, unsigned n);
void vcpus_resume(struct vcpu *v, unsigned n);

/* The host's supported CPUID, fetched once and patched per vCPU. Caller frees. */
struct kvm_cpuid2 *vcpu_supported_cpuid(int kvm_fd);
/* Installs the (empty) handler of the signal used to kick vCPUs. */
int vcpu_signals_init(void);

#endif
