/* Every example in configs/ validates (tests/kvm/test_examples.c boots them). */
#include "tests/lib/util.h"

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

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_example_validates),
	};
	return TEST_MAIN(tests, NULL, NULL);
}
