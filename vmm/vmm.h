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

#endif
