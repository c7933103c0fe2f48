/* vCPU threads: create and set up a vCPU (its x86 state: vmm/x86/), run KVM_RUN, dispatch exits. */
#ifndef FLINT_VCPU_H
#define FLINT_VCPU_H

#include "vmm/base/log.h"

#include <linux/kvm.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct vm;
struct x86_boot_cpu;

/*
 * Exits counted for the metrics (Firecracker's vcpu section). Only the vCPU's own thread
 * writes them, so an increment is a relaxed load and store, no locked instruction; the loop
 * reads them whenever it writes a metrics line.
 */
struct vcpu_counters {
	_Atomic uint64_t exit_io_in, exit_io_out, exit_mmio_read, exit_mmio_write;
	_Atomic uint64_t failures; /* exits that crashed the VM, a failed KVM_RUN */
};

struct sysfilter;

struct vcpu {
	struct vm *vm;
	unsigned id;
	int fd;
	struct kvm_run *run;
	pthread_t thread;
	bool started;
	const struct sysfilter *filter; /* installed by the thread first (NULL: none) */
	/* Only this vCPU's thread logs through it: each vCPU limits its own messages. */
	struct log_ratelimit unhandled_rl;
	struct vcpu_counters counters;
};

/*
 * Creates vCPU @id and configures it (CPUID from @cpuid, the host's supported one); vCPU 0,
 * the boot CPU, also gets @boot's entry registers.
 */
int vcpu_create(struct vcpu *v, struct vm *vm, unsigned id, const struct kvm_cpuid2 *cpuid,
                const struct x86_boot_cpu *boot);
/*
 * Starts the vCPU's thread, which installs @filter (NULL: none) before anything else and
 * parks first when the VM is pausing (vmm.c starts the vCPUs so, as a gate).
 */
int vcpu_start(struct vcpu *v, const struct sysfilter *filter);
/* Makes the vCPU leave KVM_RUN soon (immediate_exit + a signal); any thread. */
void vcpu_kick(struct vcpu *v);
void vcpu_join(struct vcpu *v);
void vcpu_destroy(struct vcpu *v);

/*
 * Pause and resume (the API's PATCH /vm), from the loop thread: the @n vCPUs leave KVM_RUN
 * and wait until resumed or stopped. vcpus_pause returns once all of them wait (guest code
 * runs no more), -ESRCH when the VM stops meanwhile, or -ETIMEDOUT after 5 s (then they
 * run on). Interrupts raised meanwhile
 * stay pending in KVM's irqchip and reach the guest when it runs again.
 */
int vcpus_pause(struct vcpu *v, unsigned n);
void vcpus_resume(struct vcpu *v, unsigned n);

/* The host's supported CPUID, fetched once and patched per vCPU. Caller frees. */
struct kvm_cpuid2 *vcpu_supported_cpuid(int kvm_fd);
/* Installs the (empty) handler of the signal used to kick vCPUs. */
int vcpu_signals_init(void);

#endif
