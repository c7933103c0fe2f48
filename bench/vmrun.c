/*
 * vmrun: run one command once and report how long it took and how much memory it used.
 * A helper for bench/startup.sh; built by that script into $BUILD/bench/vmrun.
 *
 *   vmrun [-k] [-o OUT] [-e ERR] -- COMMAND [ARG...]
 *
 * Prints one line on stdout:
 *   wall_us=W kvm_run_us=K maxrss_kib=R cpu_us=C status=S start_ns=T0 end_ns=T1 minflt=F
 *   csw=X
 *
 *   wall_us     CLOCK_MONOTONIC from just before fork() to wait4() returning (exec -> exit)
 *   kvm_run_us  with -k only (else -1): from just before the child's execve() to the first
 *               ioctl(KVM_RUN) of any of its threads, seen as a seccomp stop at syscall
 *               entry (see below); -1 if the command never called KVM_RUN
 *   maxrss_kib  ru_maxrss of the child from wait4(): its peak resident set, KiB
 *   minflt      ru_minflt: the child's page faults that needed no I/O (first touches)
 *   csw         ru_nvcsw + ru_nivcsw: its context switches (waits and preemptions)
 *   cpu_us      user + system CPU time of the child
 *   status      exit code, or 128+signal if it was killed
 *   start_ns    absolute CLOCK_MONOTONIC of the child just before its execve() (sent through
 *               a close-on-exec pipe), so a program that prints its own CLOCK_MONOTONIC
 *               times can be split into exec + dynamic linking, its phases, and its exit
 *   end_ns      absolute CLOCK_MONOTONIC when wait4() returned
 *
 * The command's stdin is /dev/null; stdout and stderr go to OUT and ERR (default /dev/null).
 *
 * How -k sees the first KVM_RUN without tracing every syscall: before execve() the child
 * becomes a ptrace tracee and installs a seccomp filter that returns SECCOMP_RET_TRACE for
 * ioctl(fd, KVM_RUN, ...) and SECCOMP_RET_ALLOW for everything else. So the only ptrace
 * stops before the first KVM_RUN are the exec event and one or two per thread created;
 * no other syscall is slowed beyond a few BPF instructions. The timestamp is taken when
 * wait4() returns the stop, so it is late by one wake-up of this process (a few us).
 * Every later KVM_RUN also stops (the filter cannot be removed), so the wall time of a
 * -k run is inflated and is not the one to report.
 */
#define _GNU_SOURCE /* pipe2 */
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/kvm.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void die(const char *what)
{
	fprintf(stderr, "vmrun: %s: %s\n", what, strerror(errno));
	exit(125);
}

static int install_filter(void)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_ioctl, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		/* args[1], low 32 bits (little endian): the ioctl request */
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[1])),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, KVM_RUN, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRACE),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {.len = sizeof(f) / sizeof(f[0]), .filter = f};

	if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0)
		return 0;
	/* Without CAP_SYS_ADMIN a filter needs no_new_privs. */
	if (errno == EACCES && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
	    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0)
		return 0;
	return -1;
}

static void redirect(int fd, const char *path, int flags)
{
	int f = open(path, flags, 0644);

	if (f < 0)
		die(path);
	if (dup2(f, fd) < 0)
		die("dup2");
	close(f);
}

static int exit_code(int st)
{
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return 255;
}

int main(int argc, char **argv)
{
	const char *out = "/dev/null", *err = "/dev/null";
	int trace_kvm_run = 0, opt, st, status = 255, ts_pipe[2];
	long long t0, t_exec = 0, t_run = -1, t_end, t_start = -1;
	struct rusage ru;
	pid_t child, w;

	while ((opt = getopt(argc, argv, "+ko:e:")) != -1) {
		switch (opt) {
		case 'k': trace_kvm_run = 1; break;
		case 'o': out = optarg; break;
		case 'e': err = optarg; break;
		default:
			fprintf(stderr, "usage: vmrun [-k] [-o OUT] [-e ERR] -- COMMAND [ARG...]\n");
			return 125;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "vmrun: no command\n");
		return 125;
	}

	if (pipe2(ts_pipe, O_CLOEXEC) < 0)
		die("pipe2");
	t0 = now_ns();
	child = fork();
	if (child < 0)
		die("fork");
	if (child == 0) {
		redirect(0, "/dev/null", O_RDONLY);
		redirect(1, out, O_WRONLY | O_CREAT | O_TRUNC);
		redirect(2, err, O_WRONLY | O_CREAT | O_TRUNC);
		if (trace_kvm_run) {
			if (ptrace(PTRACE_TRACEME, 0, 0, 0) < 0)
				die("PTRACE_TRACEME");
			if (install_filter() < 0)
				die("seccomp filter");
			raise(SIGSTOP); /* the parent sets the ptrace options, then lets us go */
		}
		t_start = now_ns();
		if (write(ts_pipe[1], &t_start, sizeof(t_start)) != sizeof(t_start))
			die("write");
		execvp(argv[optind], argv + optind);
		die(argv[optind]);
	}

	close(ts_pipe[1]);
	if (!trace_kvm_run) {
		if (wait4(child, &st, 0, &ru) < 0)
			die("wait4");
		t_end = now_ns();
		status = exit_code(st);
	} else {
		if (waitpid(child, &st, 0) < 0 || !WIFSTOPPED(st))
			die("child did not stop before exec");
		if (ptrace(PTRACE_SETOPTIONS, child, 0,
			   PTRACE_O_TRACESECCOMP | PTRACE_O_TRACECLONE | PTRACE_O_TRACEFORK |
				   PTRACE_O_TRACEVFORK | PTRACE_O_TRACEEXEC | PTRACE_O_EXITKILL) < 0)
			die("PTRACE_SETOPTIONS");
		t_exec = now_ns();
		if (ptrace(PTRACE_CONT, child, 0, 0) < 0)
			die("PTRACE_CONT");
		for (;;) {
			int sig = 0;

			w = wait4(-1, &st, __WALL, &ru);
			if (w < 0) {
				if (errno == EINTR)
					continue;
				die("wait4");
			}
			if (WIFEXITED(st) || WIFSIGNALED(st)) {
				if (w == child) {
					t_end = now_ns();
					status = exit_code(st);
					break;
				}
				continue; /* a thread or grandchild ended */
			}
			if (!WIFSTOPPED(st))
				continue;
			if ((st >> 8) == (SIGTRAP | (PTRACE_EVENT_SECCOMP << 8))) {
				if (t_run < 0)
					t_run = now_ns();
			} else if ((st >> 16) == 0) {
				/* A signal-delivery stop: pass the signal on, except the SIGSTOP every
				 * newly attached thread starts with. */
				sig = WSTOPSIG(st);
				if (sig == SIGSTOP || sig == SIGTRAP)
					sig = 0;
			}
			/* Event stops (exec, clone, seccomp) resume with no signal. */
			if (ptrace(PTRACE_CONT, w, 0, sig) < 0 && errno != ESRCH)
				die("PTRACE_CONT");
		}
	}

	/* The child wrote before execve(), so the 8 bytes wait in the pipe (or never came). */
	if (read(ts_pipe[0], &t_start, sizeof(t_start)) != sizeof(t_start))
		t_start = -1;
	printf("wall_us=%lld kvm_run_us=%lld maxrss_kib=%ld cpu_us=%lld status=%d start_ns=%lld "
	       "end_ns=%lld minflt=%ld csw=%ld\n",
	       (t_end - t0) / 1000, t_run < 0 ? -1LL : (t_run - t_exec) / 1000, ru.ru_maxrss,
	       (long long)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000LL +
		       ru.ru_utime.tv_usec + ru.ru_stime.tv_usec,
	       status, t_start, t_end, ru.ru_minflt, ru.ru_nvcsw + ru.ru_nivcsw);
	return 0;
}
