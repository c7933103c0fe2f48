/*
 * A drive's I/O worker's allow-list: it reads and writes the drive's file at the offsets
 * the guest asked for, flushes it, and wakes the loop. No ioctl at all.
 */
#include "vmm/sandbox/rules.h"

static const int calls[] = {
	SCMP_SYS(preadv),         /* a read request */
	SCMP_SYS(pwritev),        /* a write request */
	SCMP_SYS(pread64),        /* the same, when a short transfer resumes inside a buffer */
	SCMP_SYS(pwrite64),       /* the same */
	SCMP_SYS(fdatasync),      /* a flush request */
	SCMP_SYS(fsync),          /* the same, where libc makes one of the other */
	SCMP_SYS(futex),          /* the queue's lock and condition variables */
	SCMP_SYS(write),          /* the eventfd that wakes the loop, log lines */
	SCMP_SYS(sendto),         /* a log line when stderr is a socket */
	SCMP_SYS(mmap),           /* malloc (its arena) */
	SCMP_SYS(munmap),         /* free */
	SCMP_SYS(mprotect),       /* malloc's arena grows */
	SCMP_SYS(madvise),        /* free gives pages back, and so does the thread's end */
	SCMP_SYS(clock_gettime),  /* log stamps when the vDSO cannot answer */
	SCMP_SYS(rt_sigprocmask), /* glibc blocks signals as the thread ends */
	SCMP_SYS(rt_sigreturn),   /* back from a handler */
	SCMP_SYS(exit),           /* the worker ends (drive closed) */
	SCMP_SYS(exit_group),     /* flint exits (and the SIGSYS handler's _exit) */
};

int sandbox_io_rules(scmp_filter_ctx ctx)
{
	return sandbox_allow(ctx, calls, SANDBOX_COUNT(calls));
}
