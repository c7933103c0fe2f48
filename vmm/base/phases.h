/*
 * Where start-up time goes: CLOCK_MONOTONIC at the end of each phase, marked by the thread
 * that ends it (the vCPU's for first_run), logged once at debug level as
 * "phases: main=NS config=NS ...", the line bench/startup.sh reads.
 */
#ifndef FLINT_PHASES_H
#define FLINT_PHASES_H

#include <stdatomic.h>

enum phase {
	PHASE_MAIN,       /* main() entered: exec and dynamic linking are before it */
	PHASE_CONFIG,     /* command line and config read */
	PHASE_MEMORY,     /* guest memory made */
	PHASE_LOAD,       /* kernel, initrd and boot structures written */
	PHASE_VM,         /* the VM, its irqchip, PIT and memory slots */
	PHASE_DEVICES,    /* every device registered */
	PHASE_VCPU,       /* vCPUs set up, their threads started */
	PHASE_SANDBOX,    /* privileges dropped, every thread's filter in */
	PHASE_FIRST_RUN,  /* the first KVM_RUN returned */
	PHASE_GUEST_EXIT, /* the VM was told to stop */
	PHASE_EXIT,       /* everything released, main() returns */
	PHASE_COUNT
};

struct phases {
	_Atomic long long at[PHASE_COUNT]; /* 0: not reached */
};

/* The first mark of a phase counts; @p may be NULL. */
void phases_mark(struct phases *p, enum phase ph);
/* One debug line with every phase reached (0 for the others), once a VM was made. */
void phases_log(const struct phases *p);

#endif
