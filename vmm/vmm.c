#include "vmm/vmm.h"
#include "vmm/exitcode.h"
#include "vmm/log.h"

int vmm_run(const struct vm_config *cfg, const struct run_opts *opts)
{
	(void)cfg;
	(void)opts;
	log_error("booting is not implemented yet");
	return FLINT_EXIT_INTERNAL;
}
