/*
 * A thread's seccomp filter: installed by the thread itself (a filter binds the thread that
 * loads it and the threads it makes later), and the SIGSYS handler that ends flint when a
 * thread makes a system call its filter refuses.
 *
 * The programs are compiled beforehand (vmm/sandbox.c, from the lists in
 * vmm/sandbox_*.c): installing one is a single seccomp(2) call, with no allocation, so a
 * thread can do it first thing, before it touches anything a guest can reach.
 */
#ifndef FLINT_SYSFILTER_H
#define FLINT_SYSFILTER_H

#include <linux/filter.h>

struct sysfilter {
	const char *kind; /* "loop", "vcpu", "I/O": how the SIGSYS line names the thread */
	struct sock_fprog prog;
};

/*
 * Installs @f on the calling thread and names it @kind (with @index when >= 0, as "vcpu
 * 2") for the SIGSYS line. SIGSYS is unblocked first: the kernel turns a blocked SIGSYS
 * into a plain kill that no handler sees. NULL: nothing is installed. Returns 0 or -errno.
 */
int sysfilter_enter(const struct sysfilter *f, int index);

/*
 * Installs the process's SIGSYS handler: a refused call logs one line naming the call and
 * the thread, then flint exits with @exit_code. @names[n] is the name of system call n
 * (NULL where unknown), for @count numbers; it must outlive the process's threads. A
 * handler cannot look names up (libseccomp allocates): the table is made beforehand.
 */
int sysfilter_catch(int exit_code, const char *const *names, unsigned count);

#endif
