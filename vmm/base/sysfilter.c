/* Installing a thread's seccomp program, and the SIGSYS handler. See sysfilter.h. */
#include "vmm/base/sysfilter.h"
#include "vmm/base/log.h"

#include <errno.h>
#include <pthread.h>
#include <linux/audit.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

/*
 * What the handler reads. A signal handler has no argument to carry context in, so these
 * are static: written once by sysfilter_catch() on the main thread before any filter is
 * installed, only read afterwards.
 */
/* si_code of a seccomp SIGSYS (the kernel's siginfo.h; glibc's headers do not name it). */
#ifndef SYS_SECCOMP
#define SYS_SECCOMP 1
#endif

static int exit_code;
static const char *const *names;
static unsigned names_count;

/* The thread's name for the SIGSYS line: set by the thread itself when it installs. */
static _Thread_local const char *thread_kind;
static _Thread_local int thread_index = -1;

int sysfilter_enter(const struct sysfilter *f, int index)
{
	sigset_t sys;

	if (!f)
		return 0;
	sigemptyset(&sys);
	sigaddset(&sys, SIGSYS);
	if (pthread_sigmask(SIG_UNBLOCK, &sys, NULL))
		return -EINVAL;
	thread_kind = f->kind;
	thread_index = index;
	/* no_new_privs is set already (caps_drop()); setting it again costs nothing. */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -errno;
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &f->prog) < 0)
		return -errno;
	return 0;
}

/* Async-signal-safe pieces of a line: no stdio, no locks, no allocation. */
static size_t put_str(char *buf, size_t at, size_t cap, const char *s)
{
	while (*s && at + 1 < cap)
		buf[at++] = *s++;
	return at;
}

static size_t put_num(char *buf, size_t at, size_t cap, unsigned long long v, const char *fmt)
{
	char digits[24];
	size_t n = 0;
	unsigned base = fmt[0] == 'x' ? 16 : 10;

	do
		digits[n++] = "0123456789abcdef"[v % base];
	while ((v /= base) && n < sizeof(digits));
	if (base == 16)
		at = put_str(buf, at, cap, "0x");
	while (n && at + 1 < cap)
		buf[at++] = digits[--n];
	return at;
}

static void on_sigsys(int sig, siginfo_t *si, void *uctx)
{
	char line[256];
	size_t n = 0;
	int nr = si->si_syscall;

	(void)sig;
	(void)uctx;
	n = put_str(line, n, sizeof(line), "seccomp: the ");
	n = put_str(line, n, sizeof(line), thread_kind ? thread_kind : "unfiltered");
	if (thread_index >= 0) {
		n = put_str(line, n, sizeof(line), " ");
		n = put_num(line, n, sizeof(line), (unsigned)thread_index, "d");
	}
	if (si->si_code != SYS_SECCOMP) {
		/* Someone sent SIGSYS by hand: it still means the end, as it would by default. */
		n = put_str(line, n, sizeof(line),
		            " thread got a SIGSYS not from seccomp (sender ");
		n = put_num(line, n, sizeof(line), (unsigned)si->si_pid, "d");
		n = put_str(line, n, sizeof(line), ")");
	} else {
		n = put_str(line, n, sizeof(line), " thread called ");
		if (si->si_arch == AUDIT_ARCH_X86_64 && nr >= 0 && (unsigned)nr < names_count &&
		    names[nr])
			n = put_str(line, n, sizeof(line), names[nr]);
		else
			n = put_str(line, n, sizeof(line), "an unknown call");
		n = put_str(line, n, sizeof(line), " (syscall ");
		n = put_num(line, n, sizeof(line), (unsigned)nr, "d");
		if (si->si_arch != AUDIT_ARCH_X86_64) {
			n = put_str(line, n, sizeof(line), " of audit arch ");
			n = put_num(line, n, sizeof(line), si->si_arch, "x");
		}
		n = put_str(line, n, sizeof(line), "), which its seccomp filter does not allow");
	}
	n = put_str(line, n, sizeof(line), ": flint ends (exit ");
	n = put_num(line, n, sizeof(line), (unsigned)exit_code, "d");
	n = put_str(line, n, sizeof(line), ")");
	line[n] = 0;
	log_signal_error(line);
	/* _exit: no atexit handler may run on a thread caught doing what it should not. */
	_exit(exit_code);
}

int sysfilter_catch(int code, const char *const *table, unsigned count)
{
	struct sigaction sa;

	exit_code = code;
	names = table;
	names_count = count;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_sigsys;
	sa.sa_flags = SA_SIGINFO;
	sigfillset(&sa.sa_mask); /* nothing else runs on this thread while it writes the line */
	return sigaction(SIGSYS, &sa, NULL) < 0 ? -errno : 0;
}
