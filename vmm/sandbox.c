/* seccomp per thread: the modes, and the programs compiled at build time. See sandbox.h. */
#include "vmm/sandbox.h"
#include "vmm/base/log.h"
#include "vmm/base/exitcode.h"

#include <string.h>

static const char *const kind_names[SANDBOX_KINDS] = {
	[SANDBOX_LOOP] = "loop",
	[SANDBOX_VCPU] = "vcpu",
	[SANDBOX_IO] = "I/O",
};

int sandbox_mode_parse(const char *s, enum sandbox_mode *out)
{
	for (int m = SANDBOX_ON; m <= SANDBOX_OFF; m++)
		if (!strcmp(s, sandbox_mode_name((enum sandbox_mode)m))) {
			*out = (enum sandbox_mode)m;
			return 0;
		}
	return -1;
}

const char *sandbox_mode_name(enum sandbox_mode mode)
{
	return mode == SANDBOX_ON ? "on" : mode == SANDBOX_LOG ? "log" : "off";
}

int sandbox_prepare(struct sandbox *s, enum sandbox_mode mode)
{
	int r;

	memset(s, 0, sizeof(*s));
	s->mode = mode;
	if (mode == SANDBOX_OFF)
		return 0;
	for (int k = 0; k < SANDBOX_KINDS; k++) {
		const struct sandbox_program *p = &sandbox_programs[mode][k];
		/* seccomp(2) only reads the program: the cast keeps it in read-only data. */
		s->filter[k].prog = (struct sock_fprog){ p->len, (struct sock_filter *)p->insns };
		s->filter[k].kind = kind_names[k];
	}
	log_sink_ready();
	r = sysfilter_catch(FLINT_EXIT_BAD_SYSCALL, sandbox_syscall_names, SANDBOX_NAMES_MAX);
	if (r)
		log_error("seccomp: cannot install the SIGSYS handler: %s", strerror(-r));
	return r;
}

const struct sysfilter *sandbox_filter(const struct sandbox *s, enum sandbox_kind kind)
{
	return s->mode == SANDBOX_OFF ? NULL : &s->filter[kind];
}

void sandbox_free(struct sandbox *s)
{
	memset(s->filter, 0, sizeof(s->filter)); /* the programs are static data */
}
