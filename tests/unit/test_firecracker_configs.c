/*
 * Firecracker's own configs (tests/configs/firecracker/, whose README says where each comes
 * from): flint accepts each, refuses it for the reason Firecracker refuses it, or refuses
 * it as "not supported yet" for a named feature. The host files a config names (kernel,
 * drives, log) are replaced by test files first; the rest is run as written.
 */
#include "tests/lib/flintrun.h"

#include <dirent.h>
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#define DIR_FC "tests/configs/firecracker"

struct verdict {
	const char *file;
	int code;        /* flint's exit code for flint --dry-run --config-file FILE */
	const char *err; /* in stderr, the one line there; NULL: stderr empty */
	const char *out; /* in stdout (the resolved VM) when accepted */
};

static const struct verdict verdicts[] = {
	/* accepted, as Firecracker's integration tests start them */
	{ "framework_vm_config.json", 0, NULL, "\"mem_size_mib\": 1024" },
	{ "framework_vm_config_network.json", 0, NULL, "\"guest_mac\": \"06:00:c0:a8:00:02\"" },
	{ "framework_vm_config_smt_true.json", 0, NULL, "\"smt\": true" },
	{ "resources_entropy_two_ifaces.json", 0, NULL, "\"host_dev_name\": \"hostname10\"" },
	{ "docs_metrics.json", 0, NULL, "\"metrics_path\": \"metrics.fifo\"" },
	{ "docs_network_setup.json", 0, NULL, "\"iface_id\": \"my_network0\"" },
	{ "docs_logger.json", 0, NULL, "\"vcpu_count\": 1" },
	{ "framework_vm_config_with_mmdsv1.json", 0, NULL,
	  "\"mmds-config\": {\n    \"version\": \"V1\",\n    \"network_interfaces\": [\n      "
	  "\"1\"\n"
	  "    ],\n    \"ipv4_address\": \"169.254.169.254\",\n    \"imds_compat\": false" },
	{ "framework_vm_config_with_mmdsv2.json", 0, NULL,
	  "\"version\": \"V2\",\n    \"network_interfaces\": [\n      \"1\"\n    ],\n    "
	  "\"ipv4_address\": \"169.254.169.250\",\n    \"imds_compat\": true" },
	{ "resources_mmds_v2.json", 0, NULL, "\"ipv4_address\": \"169.254.170.2\"" },
	/* refused, for the reason Firecracker refuses them */
	{ "framework_vm_config_missing_vcpu_count.json", 78,
	  "machine-config.vcpu_count: required key is missing", NULL },
	{ "framework_vm_config_missing_mem_size_mib.json", 78,
	  "machine-config.mem_size_mib: required key is missing", NULL },
	{ "resources_empty.json", 78, "boot-source: required section is missing", NULL },
	{ "resources_mem_size_zero.json", 78, "machine-config.mem_size_mib: 0 is out of range",
	  NULL },
	{ "resources_reused_host_dev_name.json", 78,
	  "network-interfaces[1].host_dev_name: duplicate TAP device \"hostname7\"", NULL },
	{ "docs_entropy.json", 78, "invalid JSON", NULL },
	{ "docs_gdb.json", 78, "machine-config.gdb_socket_path: unknown key", NULL },
	/* valid, asking for what flint does not have yet */
	{ "framework_vm_config_cpu_template_C3.json", 78,
	  "machine-config.cpu_template: \"C3\": CPU templates are not supported yet", NULL },
	{ "resources_all_devices.json", 78, "balloon: not supported yet", NULL },
	{ "resources_cpu_config_path.json", 78, "cpu-config: not supported yet", NULL },
	{ "docs_pmem.json", 78, "pmem: not supported yet", NULL },
	{ "docs_memory_hotplug.json", 78, "memory-hotplug: not supported yet", NULL },
};
#define NVERDICTS (sizeof(verdicts) / sizeof(verdicts[0]))

static char *kernel, *disk, *log_file;

static int setup(void **state)
{
	(void)state;
	kernel = tiny_elf_file("vmlinux.bin", (const uint8_t[]){ 0xeb, 0xfe }, 2);
	disk = test_write_file("rootfs.ext4", "disk", 4);
	log_file = test_write_file("logs.txt", "", 0);
	return 0;
}

/* Sets the string @key of @obj (when there and a string) to @value. */
static void replace(json_t *obj, const char *key, const char *value)
{
	if (json_is_string(json_object_get(obj, key)))
		json_object_set_new(obj, key, json_string(value));
}

/* @file with the host files replaced, into the test directory; as it is when not JSON. */
static char *host_copy(const char *file)
{
	char path[512], name[300];
	json_t *root, *d;
	char *text, *out;
	size_t i;

	snprintf(path, sizeof(path), DIR_FC "/%s", file);
	root = json_load_file(path, 0, NULL);
	if (!root)
		return strdup(path);
	replace(json_object_get(root, "boot-source"), "kernel_image_path", kernel);
	replace(json_object_get(root, "logger"), "log_path", log_file);
	json_array_foreach(json_object_get(root, "drives"), i, d) replace(d, "path_on_host", disk);
	text = json_dumps(root, JSON_INDENT(2));
	json_decref(root);
	snprintf(name, sizeof(name), "fc-%s", file);
	out = test_write_file(name, text, strlen(text));
	free(text);
	return out;
}

static bool check(const struct verdict *v)
{
	static struct child_result res;
	char *config = host_copy(v->file);
	char *argv[] = { (char *)test_flint_bin(), "--dry-run", "--config-file", config, NULL };
	const char *nl;
	bool ok;

	assert_int_equal(test_run(argv, 20, 0, 0, &res), 0);
	nl = strchr(res.err, '\n');
	ok = res.code == v->code &&
	     (v->err ? strstr(res.err, v->err) && nl && !nl[1] : !res.err[0]) &&
	     (v->out ? strstr(res.out, v->out) != NULL : v->code != 0 || res.out[0]);
	if (!ok)
		print_error("%s: exit %d, stderr \"%s\", stdout \"%.300s\"; want %d and \"%s\"\n",
		            v->file, res.code, res.err, res.out, v->code, v->err ? v->err : "");
	free(config);
	return ok;
}

static void test_firecracker_configs(void **state)
{
	size_t failures = 0;

	(void)state;
	for (size_t i = 0; i < NVERDICTS; i++)
		failures += !check(&verdicts[i]);
	assert_int_equal(failures, 0);
}

/* Every config in the directory has its verdict here: none goes unchecked. */
static void test_every_file_has_a_verdict(void **state)
{
	DIR *d = opendir(DIR_FC);
	struct dirent *e;
	size_t n = 0;

	(void)state;
	assert_non_null(d);
	while ((e = readdir(d))) {
		size_t i = 0;
		if (!strstr(e->d_name, ".json") || !strncmp(e->d_name, "metadata", 8))
			continue;
		while (i < NVERDICTS && strcmp(verdicts[i].file, e->d_name))
			i++;
		if (i == NVERDICTS)
			print_error("%s has no verdict\n", e->d_name);
		assert_true(i < NVERDICTS);
		n++;
	}
	closedir(d);
	assert_int_equal(n, NVERDICTS);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_firecracker_configs),
		cmocka_unit_test(test_every_file_has_a_verdict),
		
	};
	return TEST_MAIN(tests, setup, test_group_teardown);
}
