#include "tests/lib/util.h"
#include "vmm/base/log.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdbool.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

static char tmpdir[256];

const char *test_flint_bin(void)
{
	const char *b = getenv("FLINT_BIN");
	return b ? b : "build/flint";
}

const char *test_tmpdir(void)
{
	if (!tmpdir[0]) {
		snprintf(tmpdir, sizeof(tmpdir), "/tmp/flint-test-XXXXXX");
		if (!mkdtemp(tmpdir))
			abort();
	}
	return tmpdir;
}

void test_tmpdir_cleanup(void)
{
	char cmd[300];

	if (!tmpdir[0])
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", tmpdir);
	tmpdir[0] = 0;
}

int test_group_teardown(void **state)
{
	(void)state;
	test_tmpdir_cleanup();
	return 0;
}

static char log_path[512];

int test_log_capture(const char *name)
{
	char why[256];

	snprintf(log_path, sizeof(log_path), "%s/%s", test_tmpdir(), name);
	return log_set_file(log_path, why, sizeof(why)) < 0 ? -1 : 0;
}

long test_log_mark(void)
{
	struct stat st;

	if (stat(log_path, &st) < 0) {
		fprintf(stderr, "test_log_mark: %s: %s\n", log_path, strerror(errno));
		abort();
	}
	return (long)st.st_size;
}

const char *test_log_since(long mark)
{
	static char buf[1 << 16];
	FILE *f = fopen(log_path, "r");
	size_t n;

	if (!f) {
		fprintf(stderr, "test_log_since: %s: %s\n", log_path, strerror(errno));
		abort();
	}
	fseek(f, mark, SEEK_SET);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = 0;
	fclose(f);
	return buf;
}

int test_log_group_teardown(void **state)
{
	log_close();
	return test_group_teardown(state);
}

char *test_write_file(const char *name, const void *data, size_t len)
{
	char *path = malloc(512);
	FILE *f;

	snprintf(path, 512, "%s/%s", test_tmpdir(), name);
	f = fopen(path, "w");
	if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0)
		abort();
	return path;
}

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void drain(int *fd, char *buf, size_t cap, size_t *len)
{
	ssize_t n = read(*fd, buf + *len, cap - 1 - *len);

	if (n > 0) {
		*len += (size_t)n;
	} else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
		close(*fd);
		*fd = -1;
	}
	buf[*len] = 0;
	if (*len >= cap - 1) { /* full: discard further output */
		char sink[4096];
		while (*fd >= 0 && read(*fd, sink, sizeof(sink)) > 0) {
		}
	}
}

int test_run(char *const argv[], double timeout_s, int sig, int sig_after_ms,
	     struct child_result *res)
{
	return test_run_input(argv, NULL, timeout_s, sig, sig_after_ms, res);
}

static int run_child(char *const argv[], const char *input, bool unread, double timeout_s,
		     int sig, int sig_after_ms, struct child_result *res);

static const char *signal_when;

void test_run_signal_when(const char *text)
{
	signal_when = text;
}

int test_run_input(char *const argv[], const char *input, double timeout_s, int sig,
		   int sig_after_ms, struct child_result *res)
{
	return run_child(argv, input, false, timeout_s, sig, sig_after_ms, res);
}

int test_run_unread(char *const argv[], double timeout_s, int sig, int sig_after_ms,
		    struct child_result *res)
{
	return run_child(argv, NULL, true, timeout_s, sig, sig_after_ms, res);
}

/*
 * A stdout nobody reads: a pipe of the smallest size whose read end stays open but
 * unread, so the child's writes fill it at once and then block (or fail, if non-blocking).
 */
static int unread_pipe(int *rd, int *wr)
{
	int p[2];

	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	fcntl(p[1], F_SETPIPE_SZ, 4096);
	*rd = p[0];
	*wr = p[1];
	return 0;
}

static int run_child(char *const argv[], const char *input, bool unread, double timeout_s,
		     int sig, int sig_after_ms, struct child_result *res)
{
	int out[2], err[2], in[2] = {-1, -1}, stuck = -1, status;
	size_t olen = 0, elen = 0;
	long long start = now_ms();
	int sent = 0;
	const char *when = signal_when;
	pid_t pid;

	signal_when = NULL;
	memset(res, 0, sizeof(*res));
	if ((unread ? unread_pipe(&stuck, &out[1]) : pipe2(out, O_CLOEXEC)) < 0 ||
	    pipe2(err, O_CLOEXEC) < 0 || (input && pipe2(in, O_CLOEXEC) < 0))
		return -1;
	if (unread)
		out[0] = -1; /* nothing is read from it: only stderr is collected */
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		int null = open("/dev/null", O_RDONLY);
		dup2(input ? in[0] : null, 0);
		dup2(out[1], 1);
		dup2(err[1], 2);
		execv(argv[0], argv);
		_exit(127);
	}
	close(out[1]);
	close(err[1]);
	if (input) {
		/* Small inputs fit the pipe; the write end stays open so stdin never hits EOF. */
		close(in[0]);
		if (write(in[1], input, strlen(input)) < 0)
			return -1;
	}
	while (out[0] >= 0 || err[0] >= 0) {
		struct pollfd p[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
		long long el = now_ms() - start;
		if (sig && !sent && el >= sig_after_ms && (!when || strstr(res->err, when))) {
			kill(pid, sig);
			sent = 1;
		}
		if (el > timeout_s * 1000) {
			kill(pid, SIGKILL);
			break;
		}
		if (poll(p, 2, 20) < 0 && errno != EINTR)
			break;
		if (out[0] >= 0 && (p[0].revents & (POLLIN | POLLHUP)))
			drain(&out[0], res->out, sizeof(res->out), &olen);
		if (err[0] >= 0 && (p[1].revents & (POLLIN | POLLHUP)))
			drain(&err[0], res->err, sizeof(res->err), &elen);
	}
	if (out[0] >= 0)
		close(out[0]);
	if (err[0] >= 0)
		close(err[0]);
	if (input)
		close(in[1]);
	if (stuck >= 0)
		close(stuck);
	if (waitpid(pid, &status, 0) < 0)
		return -1;
	res->code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	return 0;
}

int test_main(int argc, char **argv, const struct CMUnitTest *tests, size_t n,
	      int (*setup)(void **), int (*teardown)(void **))
{
	const char *group = basename(argv[0]);

	if (argc == 2 && strcmp(argv[1], "--list") == 0) {
		for (size_t i = 0; i < n; i++)
			printf("%s\n", tests[i].name);
		return 0;
	}
	if (argc == 1)
		return _cmocka_run_group_tests(group, tests, n, setup, teardown);
	for (size_t i = 0; argc == 2 && i < n; i++)
		if (strcmp(tests[i].name, argv[1]) == 0)
			return _cmocka_run_group_tests(group, &tests[i], 1, setup, teardown);
	fprintf(stderr, "usage: %s [--list | TEST]%s%s\n", group, argc == 2 ? "; no test named " : "",
		argc == 2 ? argv[1] : "");
	return 2;
}
