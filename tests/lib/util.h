/* Helpers shared by the unit tests: temp files and running flint as a child. */
#ifndef FLINT_TEST_UTIL_H
#define FLINT_TEST_UTIL_H

#include <stddef.h>
#include <sys/types.h>

struct child_result {
	int code;      /* exit code, or 128 + signal when killed */
	char out[65536];
	char err[65536];
};

/* The flint binary under test ($FLINT_BIN, default build/flint). */
const char *test_flint_bin(void);
/* A fresh directory under /tmp, removed by test_tmpdir_cleanup(). */
const char *test_tmpdir(void);
void test_tmpdir_cleanup(void);
/* A cmocka group teardown that removes the temp directory. */
int test_group_teardown(void **state);
/*
 * flint's log in a file, for the tests that check what it says: test_log_capture() (in a
 * group set-up) sends it to @name in the temp directory, 0 or -1; test_log_mark() is where
 * the file ends now; test_log_since() is what was logged after a mark (static storage, at
 * most 64 KiB); test_log_group_teardown() closes the log and removes the temp directory.
 */
int test_log_capture(const char *name);
long test_log_mark(void);
const char *test_log_since(long mark);
int test_log_group_teardown(void **state);
/* Writes @len bytes to @dir/@name and returns the path (static storage per call site). */
char *test_write_file(const char *name, const void *data, size_t len);
/*
 * Runs argv with stdin from /dev/null, collects stdout/stderr, kills it after @timeout_s.
 * When @sig_after_ms > 0 sends @sig to it that long after start. Returns 0 or -1.
 */
int test_run(char *const argv[], double timeout_s, int sig, int sig_after_ms,
	     struct child_result *res);
/*
 * The next run sends its signal only once the child's stderr also holds @text (e.g. a
 * line the child logs after it installed its handlers): on a loaded machine a fixed delay
 * can fire before that, and the default action kills it with the same exit status but
 * without what the test looks for. One run only; NULL: the delay alone.
 */
void test_run_signal_when(const char *text);
/* The same with the child's stdout a small pipe that is never read (stdout stays empty). */
int test_run_unread(char *const argv[], double timeout_s, int sig, int sig_after_ms,
		    struct child_result *res);
/* The same with @input fed to the child's stdin through a pipe (NULL: /dev/null). */
int test_run_input(char *const argv[], const char *input, double timeout_s, int sig,
		   int sig_after_ms, struct child_result *res);

/*
 * main() of every test program: runs @tests as one cmocka group named after the program.
 * `--list` prints the test names, one a line; a NAME argument runs that test alone (the rig
 * runs each KVM test as a case of its own). An unknown name is an error (exit 2), never an
 * empty pass.
 */
struct CMUnitTest;
int test_main(int argc, char **argv, const struct CMUnitTest *tests, size_t n,
	      int (*setup)(void **), int (*teardown)(void **));
#define TEST_MAIN(tests, setup, teardown)                                                    \
	test_main(argc, argv, tests, sizeof(tests) / sizeof((tests)[0]), setup, teardown)

#endif
