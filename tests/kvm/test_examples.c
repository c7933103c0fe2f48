/* The examples in configs/ that boot a tests/guest payload really boot it. */
#include "tests/lib/util.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

/* @exit_port: the --exit-port a config without flint.ci needs, or NULL. */
static void boot_example(const char *path, char *exit_port)
{
	static struct child_result res;
	char *argv[] = {(char *)test_flint_bin(), "--config-file", (char *)path,
			exit_port ? "--exit-port" : NULL, exit_port, NULL};

	assert_int_equal(test_run(argv, 30, 0, 0, &res), 0);
	if (res.code != 1)
		print_error("%s: exit %d\n%s\n%s\n", path, res.code, res.out, res.err);
	assert_int_equal(res.code, 1); /* test_exit=0 through the exit port: (0 << 1) | 1 */
	assert_non_null(strstr(res.out, "flint-guest: done"));
}

static void test_examples_boot(void **state)
{
	(void)state;
	boot_example("configs/hello-pvh.json", NULL);
	boot_example("configs/firecracker-style.json", "0xf4"); /* a Firecracker config, as is */
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_examples_boot),
	};
	return TEST_MAIN(tests, NULL, NULL);
}
