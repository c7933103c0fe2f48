/*
 * The threads' allow-lists, one file each (loop.c, vcpu.c, io.c), each call said why.
 * Build time only: gen.c compiles them with libseccomp into BPF programs that flint
 * carries as data (vmm/sandbox.h), so flint neither links libseccomp nor compiles a
 * filter when it starts.
 */
#ifndef FLINT_SANDBOX_RULES_H
#define FLINT_SANDBOX_RULES_H

#include <seccomp.h>

/* Each adds its allow rules to @ctx. 0 or -errno. */
int sandbox_loop_rules(scmp_filter_ctx ctx);
int sandbox_vcpu_rules(scmp_filter_ctx ctx);
int sandbox_io_rules(scmp_filter_ctx ctx);

/* Calls allowed with any arguments; ioctl allowed for these request numbers only. */
int sandbox_allow(scmp_filter_ctx ctx, const int *calls, unsigned n);
int sandbox_allow_ioctls(scmp_filter_ctx ctx, const unsigned long *reqs, unsigned n);

#define SANDBOX_COUNT(a) ((unsigned)(sizeof(a) / sizeof((a)[0])))

#endif
