/*
 * seccomp per thread: one allow-list for the loop thread, one for vCPU threads, one for the
 * drives' I/O workers (vmm/sandbox_loop.c, sandbox_vcpu.c, sandbox_io.c, each call said
 * why). sandbox_prepare() compiles them with libseccomp while flint is one thread; each
 * thread then installs its own (sysfilter_enter()) before it runs anything a guest can
 * reach. A refused call ends flint with FLINT_EXIT_BAD_SYSCALL and a line naming the call
 * and the thread; in log mode the kernel logs it (audit, dmesg) and the call goes on.
 *
 * Filters stack and a thread inherits its maker's, so the order is fixed: the I/O workers
 * and the vCPUs are made while the loop thread has none, each installs its own list, and
 * the loop thread installs its list last, before the vCPUs leave their start gate. Every
 * thread so ends with exactly its own list.
 */
#ifndef FLINT_SANDBOX_H
#define FLINT_SANDBOX_H

#include "vmm/base/sysfilter.h"

#include <seccomp.h>

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
 * Compiles the three lists for @mode and installs the SIGSYS handler; nothing for
 * SANDBOX_OFF. Main thread, before any filter is installed. 0, or -errno (logged).
 */
int sandbox_prepare(struct sandbox *s, enum sandbox_mode mode);
/* The filter a thread of @kind installs; NULL when the mode is off (install nothing). */
const struct sysfilter *sandbox_filter(const struct sandbox *s, enum sandbox_kind kind);
/* Releases the programs (after every thread that used them has ended). */
void sandbox_free(struct sandbox *s);

/*
 * The lists, one file each: each adds its allow rules to @ctx (libseccomp). 0 or -errno.
 * sandbox_allow() and sandbox_allow_ioctls() are their helpers: calls allowed with any
 * arguments, and ioctl allowed for these request numbers only.
 */
int sandbox_loop_rules(scmp_filter_ctx ctx);
int sandbox_vcpu_rules(scmp_filter_ctx ctx);
int sandbox_io_rules(scmp_filter_ctx ctx);
int sandbox_allow(scmp_filter_ctx ctx, const int *calls, unsigned n);
int sandbox_allow_ioctls(scmp_filter_ctx ctx, const unsigned long *reqs, unsigned n);

#define SANDBOX_COUNT(a) ((unsigned)(sizeof(a) / sizeof((a)[0])))

#endif
