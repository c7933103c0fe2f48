/* Building and running one VM from a validated config. */
#ifndef FLINT_VMM_H
#define FLINT_VMM_H

#include "vmm/vm_config.h"

struct run_opts {
	double timeout_s;       /* 0: none */
	const char *serial_log; /* also (or only) write the console here */
	bool console_stdout;    /* write the console to stdout */
	long long start_ns;     /* CLOCK_MONOTONIC at process start, for the boot timer */
};

/*
 * For --dry-run: everything a run does before it opens /dev/kvm (guest memory, the images
 * through the real loaders, an inherited iommufd). Returns 0 or flint's exit code.
 */
int vmm_check(const struct vm_config *cfg);
/* Runs the VM to its end. Returns flint's exit code (see exitcode.h). */
int vmm_run(const struct vm_config *cfg, const struct run_opts *opts);

/*
 * vmm_run() in steps, for the API, which serves requests on the loop before the VM exists.
 * Main thread only.
 *
 * vmm_new: the process around a VM: the loop (with SIGINT/SIGTERM), the console. Returns
 * 0, or an exit code with *out NULL.
 * vmm_start: builds and starts the VM of @cfg, which must outlive @m. Returns 0 when the
 * vCPUs run, else an exit code (the reason logged): what had started is stopped, and the
 * process cannot start a VM again (as one that ran cannot).
 * vmm_wait: runs the loop until the VM ends or, before a start, a signal or loop_stop().
 * vmm_free: stops and releases everything (safe with NULL).
 */
struct vmm;
int vmm_new(struct vmm **out, const struct run_opts *opts);
struct loop *vmm_loop(struct vmm *m);
int vmm_start(struct vmm *m, const struct vm_config *cfg);
int vmm_wait(struct vmm *m);
void vmm_free(struct vmm *m);

/*
 * A running VM, from the loop thread (the API). vmm_pause returns once no vCPU runs guest
 * code (-ETIMEDOUT, logged, when they did not stop; -ESRCH: no VM runs); devices finish
 * what they hold, and the guest, stopped, gives them no more. vmm_resume lets the vCPUs
 * run on; interrupts raised meanwhile are delivered then. vmm_ctrl_alt_del presses
 * Ctrl-Alt-Del on the i8042 keyboard (-EBUSY: the last presses are not read yet).
 */
int vmm_pause(struct vmm *m);
void vmm_resume(struct vmm *m);
int vmm_ctrl_alt_del(struct vmm *m);

#endif
