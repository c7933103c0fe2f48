/*
 * seccomp per thread: one allow-list for the loop thread, one for vCPU threads, one for the
 * drives' I/O workers (vmm/sandbox/loop.c, vcpu.c, io.c, each call said why), compiled at
 * build time (vmm/sandbox/gen.c) into the BPF programs below. sandbox_prepare() picks the
 * mode's programs while flint is one thread; each thread then installs its own
 * (sysfilter_enter()) before it runs anything a guest can reach. A refused call ends flint with
 * FLINT_EXIT_BAD_SYSCALL and a line naming the call and the thread; in log mode the kernel logs it
 * (audit, dmesg) and the call goes on.
 *
 * Filters stack and a thread inherits its maker's, so the order is fixed: the I/O workers
 * and the vCPUs are made while the loop thread has none, each installs its own list, and
 * the loop thread installs its list last, before the vCPUs leave their start gate. Every
 * thread so ends with exactly its own list.
 */
#ifndef FLINT_SANDBOX_H
#define FLINT_SANDBOX_H

#include "vmm/base/sysfilter.h"

enum sandbox_mode {
	SANDBOX_ON,  /* a refused call ends flint (the default) */
	SANDBOX_LOG, /* a refused call is logged by the kernel and goes on */
	SANDBOX_OFF, /* no filter */
};

enum sandbox_kind { SANDBOX_LOOP, SANDBOX_VCPU, SANDBOX_IO, SANDBOX_KINDS };

struct sandbox {
	enum sandbox_mode mode;
	struct sysfilter filter[SANDBOX_KINDS];
};

/* "on", "log" or "off". 0, or -1 for anything else. */
int sandbox_mode_parse(const char *s, enum sandbox_mode *out);
const char *sandbox_mode_name(enum sandbox_mode mode);

/*
 * Takes the three programs of @mode and installs the SIGSYS handler; nothing for
 * SANDBOX_OFF. Main thread, before any filter is installed. 0, or -errno (logged).
 */
int sandbox_prepare(struct sandbox *s, enum sandbox_mode mode);
/* The filter a thread of @kind installs; NULL when the mode is off (install nothing). */
const struct sysfilter *sandbox_filter(const struct sandbox *s, enum sandbox_kind kind);
/* Forgets the programs (static data; after every thread that used them has ended). */
void sandbox_free(struct sandbox *s);

/*
 * Made at build time ($(BUILD)/gen/sandbox_bpf.c, from vmm/sandbox/gen.c): each mode's
 * program for each kind of thread, [SANDBOX_ON] trapping a refused call and [SANDBOX_LOG]
 * logging it, and the system calls' names by number for the SIGSYS line.
 */
struct sandbox_program {
	const struct sock_filter *insns;
	unsigned short len;
};
extern const struct sandbox_program sandbox_programs[SANDBOX_OFF][SANDBOX_KINDS];
#define SANDBOX_NAMES_MAX 512
extern const char *const sandbox_syscall_names[SANDBOX_NAMES_MAX];

#endif
