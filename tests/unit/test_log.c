/* The log: a reader that stops reading never blocks flint; what it missed is said. */
#include "tests/lib/util.h"
#include "vmm/base/log.h"

#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

/*
 * A child logs 20000 lines to a stderr that is a full pipe nobody reads, says it is done,
 * waits until the parent has drained the pipe and logs once more. Blocking would hang it
 * until SIGALRM kills it at 20 s.
 */
static void test_unread_stderr_never_blocks(void **state)
{
	static char got[1 << 17];
	int log[2], done[2], go[2], status;
	ssize_t n, total = 0;
	char c = 0;
	pid_t pid;

	(void)state;
	assert_int_equal(pipe(log), 0);
	assert_int_equal(pipe(done), 0);
	assert_int_equal(pipe(go), 0);
	fcntl(log[1], F_SETPIPE_SZ, 4096);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		alarm(20);
		close(log[0]);
		close(done[0]);
		close(go[1]);
		dup2(log[1], STDERR_FILENO);
		for (int i = 0; i < 20000; i++)
			log_info("line %d of a log nobody reads", i);
		/* The shared description was left blocking: a shell's stderr stays as it was. */
		if (fcntl(STDERR_FILENO, F_GETFL) & O_NONBLOCK)
			_exit(3);
		if (write(done[1], "d", 1) != 1 || read(go[0], &c, 1) != 1)
			_exit(4);
		log_warn("after the flood");
		_exit(0);
	}
	close(log[1]);
	close(done[1]);
	close(go[0]);
	assert_int_equal(read(done[0], &c, 1), 1); /* EOF here: the child hung and died */
	fcntl(log[0], F_SETFL, O_NONBLOCK);
	while ((n = read(log[0], got + total, sizeof(got) - 1 - (size_t)total)) > 0)
		total += n;
	fcntl(log[0], F_SETFL, 0);
	assert_int_equal(write(go[1], "g", 1), 1);
	while ((n = read(log[0], got + total, sizeof(got) - 1 - (size_t)total)) > 0)
		total += n;
	got[total] = 0;
	close(log[0]);
	close(done[0]);
	close(go[1]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_non_null(strstr(got, "line 0 of a log nobody reads"));
	assert_non_null(strstr(got, "log lines were dropped: the log was not read fast enough"));
	assert_non_null(strstr(got, "after the flood"));
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unread_stderr_never_blocks),
	};
	return TEST_MAIN(tests, NULL, NULL);
}
