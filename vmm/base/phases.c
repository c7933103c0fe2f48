#include "vmm/base/phases.h"
#include "vmm/base/clock.h"
#include "vmm/base/log.h"

#include <stdio.h>

static const char *const phase_names[PHASE_COUNT] = {
	"main", "config",  "memory",    "load",       "vm",   "devices",
	"vcpu", "sandbox", "first_run", "guest_exit", "exit",
};

void phases_mark(struct phases *p, enum phase ph)
{
	long long none = 0;

	if (p)
		atomic_compare_exchange_strong(&p->at[ph], &none, clock_now_ns());
}

void phases_log(const struct phases *p)
{
	char line[PHASE_COUNT * 32] = "";
	size_t n = 0;

	/* Only a VM's start-up has phases worth a line (not a dry run, not an API that
	 * never started one). */
	if (!p || !atomic_load(&p->at[PHASE_VM]))
		return;
	for (int i = 0; i < PHASE_COUNT && n < sizeof(line); i++)
		n += (size_t)snprintf(line + n, sizeof(line) - n, " %s=%lld", phase_names[i],
		                      atomic_load(&p->at[i]));
	log_debug("phases:%s", line);
}
