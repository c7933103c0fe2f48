/* Every example in configs/ validates, and the host-bootable ones boot. */
#include "tests/unit/util.h"

#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

static void test_every_example_validates(void **state)
{
	static struct child_result res;
	struct dirent *e;
	DIR *d = opendir("configs");
	int n = 0;

	(void)state;
	assert_non_null(d);
	while ((e = readdir(d))) {
		char path[512];
		if (!strstr(e->d_name, ".json") || strcmp(e->d_name, "demo.json") == 0)
			continue; /* demo.json names the rig kernel, built by make demo */
		snprintf(path, sizeof(path), "configs/%s", e->d_name);
		char *argv[] = {(char *)test_flint_bin(), "--dry-run", "--config-file", path, NULL};
		assert_int_equal(test_run(argv, 20, 0, 0, &res), 0);
		if (res.code != 0)
			print_error("%s: exit %d: %s\n", path, res.code, res.err);
		assert_int_equal(res.code, 0);
		n++;
	}
	closedir(d);
	assert_true(n >= 2);
}

static void boot_example(const char *path)
{
	static struct child_result res;
	char *argv[] = {(char *)test_flint_bin(), "--config-file", (char *)path, NULL};

	assert_int_equal(test_run(argv, 30, 0, 0, &res), 0);
	if (res.code != 1)
		print_error("%s: exit %d\n%s\n%s\n", path, res.code, res.out, res.err);
	assert_int_equal(res.code, 1); /* test_exit=0 through the exit port: (0 << 1) | 1 */
	assert_non_null(strstr(res.out, "flint-guest: done"));
}

static void test_examples_boot(void **state)
{
	(void)state;
	boot_example("configs/hello-pvh.json");
	boot_example("configs/firecracker-style.json");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_example_validates),
		cmocka_unit_test(test_examples_boot),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
