/*
 * seccomp per thread (vmm/sandbox.h): each in a forked child, so the test process keeps no
 * filter. For each thread kind (loop, vcpu, I/O), in a thread of its own as flint makes
 * them: an allowed call passes, a refused one ends the process with 148 and one log line
 * naming the call and the thread; the loop's socket() takes Unix sockets only, the vCPU's
 * ioctl only its request numbers (KVM_RUN, not TIOCSTI), the I/O worker no ioctl at all; log mode
 * lets a refused call go on; off installs nothing; --seccomp and its Firecracker spellings.
 */
#include "tests/lib/util.h"
#include "vmm/base/log.h"
#include "vmm/base/exitcode.h"
#include "vmm/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>
#include <cmocka.h>

/* What a filtered thread does: calls made raw, so libc adds none of its own. */
enum step { ALLOWED_WRITE, UNIX_SOCKET, INET_SOCKET, OPEN, KVM_RUN_IOCTL, TIOCSTI_IOCTL };

struct job {
	const struct sandbox *sb;
	enum sandbox_kind kind;
	int index;
	enum step steps[4];
	unsigned nsteps;
};

/* Each step's outcome goes to SAID_FD (a pipe the parent reads) as one letter, y or n. */
#define SAID_FD 100
static void say(bool ok)
{
	(void)!syscall(SYS_write, SAID_FD, ok ? "y" : "n", 1);
}

static void *filtered(void *arg)
{
	struct job *j = arg;
	int p[2];

	if (pipe(p) < 0 || sysfilter_enter(sandbox_filter(j->sb, j->kind), j->index))
		_exit(99);
	for (unsigned i = 0; i < j->nsteps; i++) {
		long r = -1;
		switch (j->steps[i]) {
		case ALLOWED_WRITE:
			r = syscall(SYS_write, p[1], "x", 1);
			break;
		case UNIX_SOCKET:
			r = syscall(SYS_socket, AF_UNIX, SOCK_STREAM, 0);
			break;
		case INET_SOCKET:
			r = syscall(SYS_socket, AF_INET, SOCK_DGRAM, 0);
			break;
		case OPEN:
			r = syscall(SYS_openat, AT_FDCWD, "/dev/null", O_RDONLY);
			break;
		case KVM_RUN_IOCTL:
			/* Allowed through the filter, refused by the pipe: ENOTTY, not SIGSYS. */
			r = syscall(SYS_ioctl, p[0], KVM_RUN, 0) < 0 && errno == ENOTTY ? 0 : -1;
			break;
		case TIOCSTI_IOCTL: {
			/* Typing into a terminal's input: nothing flint's threads ever do. */
			char c = 'x';
			r = syscall(SYS_ioctl, p[0], TIOCSTI, &c) < 0 && errno == ENOTTY ? 0 : -1;
			break;
		}
		}
		say(r >= 0);
	}
	return NULL;
}

struct outcome {
	int code;       /* exit code, or 128 + signal */
	char said[8];   /* the steps' letters, in order */
	char log[4096]; /* what flint's log (stderr) got */
};

static void read_all(int fd, char *buf, size_t cap)
{
	size_t n = 0;
	ssize_t r;

	while (n + 1 < cap && (r = read(fd, buf + n, cap - 1 - n)) > 0)
		n += (size_t)r;
	buf[n] = 0;
}

/* Forks; the child prepares @mode and runs @j on a thread of its own; its outcome. */
static void run(enum sandbox_mode mode, struct job *j, struct outcome *o)
{
	int said[2], log[2], status;
	pid_t pid;

	assert_int_equal(pipe(said), 0);
	assert_int_equal(pipe(log), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct sandbox sb;
		pthread_t t;

		dup2(said[1], SAID_FD);
		dup2(log[1], STDERR_FILENO);
		close(said[0]);
		close(log[0]);
		if (sandbox_prepare(&sb, mode))
			_exit(98);
		j->sb = &sb;
		if (pthread_create(&t, NULL, filtered, j) || pthread_join(t, NULL))
			_exit(97);
		_exit(0);
	}
	close(said[1]);
	close(log[1]);
	read_all(said[0], o->said, sizeof(o->said));
	read_all(log[0], o->log, sizeof(o->log));
	close(said[0]);
	close(log[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	o->code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void expect_refused(const struct outcome *o, const char *said, const char *line)
{
	assert_int_equal(o->code, FLINT_EXIT_BAD_SYSCALL);
	assert_string_equal(o->said, said);
	if (!strstr(o->log, line))
		fail_msg("no \"%s\" in the log: \"%s\"", line, o->log);
	assert_non_null(strstr(o->log, "] flint error: seccomp: "));
	assert_non_null(strstr(o->log, "which its seccomp filter does not allow: flint ends "
	                               "(exit 148)\n"));
}

static void test_loop(void **state)
{
	struct job j = { .kind = SANDBOX_LOOP,
		         .index = -1,
		         .steps = { ALLOWED_WRITE, OPEN, UNIX_SOCKET, INET_SOCKET },
		         .nsteps = 4 };
	struct outcome o;

	(void)state;
	run(SANDBOX_ON, &j, &o);
	/* Files and Unix sockets are the loop's (PATCH /drives, vsock); the network is not. */
	expect_refused(&o, "yyy", "seccomp: the loop thread called socket (syscall 41)");
}

static void test_vcpu(void **state)
{
	struct job j = { .kind = SANDBOX_VCPU,
		         .index = 3,
		         .steps = { ALLOWED_WRITE, KVM_RUN_IOCTL, INET_SOCKET },
		         .nsteps = 3 };
	struct outcome o;

	(void)state;
	run(SANDBOX_ON, &j, &o);
	expect_refused(&o, "yy", "seccomp: the vcpu 3 thread called socket (syscall 41)");
#ifndef __SANITIZE_ADDRESS__
	/* Nor files (the sanitizer build lets every thread read /proc for its reports). */
	j.steps[2] = OPEN;
	run(SANDBOX_ON, &j, &o);
	expect_refused(&o, "yy", "seccomp: the vcpu 3 thread called openat (syscall 257)");
#endif
}

/* The argument filter: KVM_RUN passes, a request number not in the vCPU's list does not. */
static void test_vcpu_ioctl(void **state)
{
	struct job j = { .kind = SANDBOX_VCPU,
		         .index = 0,
		         .steps = { KVM_RUN_IOCTL, TIOCSTI_IOCTL },
		         .nsteps = 2 };
	struct outcome o;

	(void)state;
	run(SANDBOX_ON, &j, &o);
	expect_refused(&o, "y", "seccomp: the vcpu 0 thread called ioctl (syscall 16)");
}

static void test_io(void **state)
{
	struct job j = { .kind = SANDBOX_IO,
		         .index = -1,
		         .steps = { ALLOWED_WRITE, KVM_RUN_IOCTL },
		         .nsteps = 2 };
	struct outcome o;

	(void)state;
	run(SANDBOX_ON, &j, &o);
	expect_refused(&o, "y", "seccomp: the I/O thread called ioctl (syscall 16)");
	/* Nor a socket, nor a file. */
	j.steps[1] = INET_SOCKET;
	run(SANDBOX_ON, &j, &o);
	expect_refused(&o, "y", "seccomp: the I/O thread called socket (syscall 41)");
}

/* log: what on refuses goes on (the kernel logs it); the process ends normally. */
static void test_log_mode(void **state)
{
	struct job j = { .kind = SANDBOX_VCPU,
		         .index = 1,
		         .steps = { OPEN, INET_SOCKET, TIOCSTI_IOCTL, ALLOWED_WRITE },
		         .nsteps = 4 };
	struct outcome o;

	(void)state;
	run(SANDBOX_LOG, &j, &o);
	assert_int_equal(o.code, 0);
	assert_string_equal(o.said, "yyyy");
	assert_null(strstr(o.log, "seccomp"));
}

/* off: no filter, and the thread shows none (Seccomp: 0 in its status). */
static void test_off(void **state)
{
	struct sandbox sb;
	struct job j = { .kind = SANDBOX_IO,
		         .index = -1,
		         .steps = { OPEN, INET_SOCKET, TIOCSTI_IOCTL },
		         .nsteps = 3 };
	struct outcome o;

	(void)state;
	assert_int_equal(sandbox_prepare(&sb, SANDBOX_OFF), 0);
	assert_null(sandbox_filter(&sb, SANDBOX_LOOP));
	assert_null(sandbox_filter(&sb, SANDBOX_VCPU));
	assert_null(sandbox_filter(&sb, SANDBOX_IO));
	assert_int_equal(sysfilter_enter(NULL, -1), 0);
	sandbox_free(&sb);
	run(SANDBOX_OFF, &j, &o);
	assert_int_equal(o.code, 0);
	assert_string_equal(o.said, "yyy");
}

static void test_mode_parse(void **state)
{
	enum sandbox_mode m = SANDBOX_LOG;

	(void)state;
	assert_int_equal(sandbox_mode_parse("on", &m), 0);
	assert_int_equal(m, SANDBOX_ON);
	assert_int_equal(sandbox_mode_parse("off", &m), 0);
	assert_int_equal(m, SANDBOX_OFF);
	assert_int_equal(sandbox_mode_parse("log", &m), 0);
	assert_int_equal(m, SANDBOX_LOG);
	assert_int_equal(sandbox_mode_parse("ON", &m), -1);
	assert_int_equal(sandbox_mode_parse("", &m), -1);
	assert_int_equal(sandbox_mode_parse("onx", &m), -1);
	assert_int_equal(m, SANDBOX_LOG);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_loop),       cmocka_unit_test(test_vcpu),
		cmocka_unit_test(test_vcpu_ioctl), cmocka_unit_test(test_io),
		cmocka_unit_test(test_log_mode),   cmocka_unit_test(test_off),
		cmocka_unit_test(test_mode_parse),
	};

	return TEST_MAIN(tests, NULL, NULL);
}
