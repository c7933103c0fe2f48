/*
 * The command line Firecracker's users pass (its src/firecracker/src/main.rs): each flag is
 * taken, checked as Firecracker checks it, or refused as "not supported yet"; what flint
 * takes but does not do yet is said, never silent. All through --dry-run: no KVM needed.
 */
#include "tests/lib/flintrun.h"

#include <ctype.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#define META "tests/configs/firecracker/metadata.json" /* 233 bytes written compactly */

static char *config;
static struct child_result res;

static int setup(void **state)
{
	char json[1024];
	char *k = tiny_elf_file("vmlinux", (const uint8_t[]){ 0xeb, 0xfe }, 2);

	(void)state;
	snprintf(json, sizeof(json),
	         "{\"boot-source\":{\"kernel_image_path\":\"%s\"},\"drives\":[]}", k);
	config = test_write_file("vm.json", json, strlen(json));
	free(k);
	return 0;
}

/* flint with @args (NULL-terminated, at most 10); with --dry-run --config-file when @dry. */
static void run(bool dry, const char *const *args)
{
	char *argv[16] = { (char *)test_flint_bin() };
	int n = 1;

	if (dry) {
		argv[n++] = "--dry-run";
		argv[n++] = "--config-file";
		argv[n++] = config;
	}
	for (int i = 0; args[i] && i < 10; i++)
		argv[n++] = (char *)args[i];
	assert_int_equal(test_run(argv, 20, 0, 0, &res), 0);
}

/* The last run ended with @code, and its stderr holds @err (NULL: stderr is empty). */
static void expect(int code, const char *err)
{
	bool ok = res.code == code && (err ? strstr(res.err, err) != NULL : !res.err[0]);

	if (!ok)
		print_error("exit %d, stderr \"%s\"; want %d and \"%s\"\n", res.code, res.err, code,
		            err ? err : "");
	assert_true(ok);
}

#define RUN(dry, ...) run(dry, (const char *const[]){ __VA_ARGS__, NULL })

/* Without --config-file Firecracker waits for its API: flint has none yet, and says so. */
static void test_api_flags(void **state)
{
	char sock[256],
	        *argv[8] = { (char *)test_flint_bin(), "--api-sock", sock, "--id", "vm0", NULL };

	(void)state;
	/* Without --config-file flint serves the API until told to stop; the socket goes. */
	snprintf(sock, sizeof(sock), "%s/fc.sock", test_tmpdir());
	assert_int_equal(test_run(argv, 20, SIGTERM, 500, &res), 0);
	expect(143, "API: serving ");
	assert_int_not_equal(access(sock, F_OK), 0);
	RUN(false, "--no-api");
	expect(64, "--no-api needs --config-file");
	RUN(false, "--dry-run");
	expect(64, "--dry-run needs --config-file");
	RUN(true, "--no-api");
	expect(0, NULL);
	/* --dry-run checks the config and serves nothing. */
	RUN(true, "--api-sock", sock);
	expect(0, NULL);
	RUN(true, "--http-api-max-payload-size", "1024");
	expect(0, NULL);
	RUN(true, "--http-api-max-payload-size", "-1");
	expect(64, "--http-api-max-payload-size: \"-1\" is not a number of bytes");
	RUN(true, "--mmds-size-limit", "10k");
	expect(64, "--mmds-size-limit: \"10k\" is not a number of bytes");
}

/* --id: Firecracker's validate_instance_id(), 1 to 64 letters, digits and '-'. */
static void test_id(void **state)
{
	char long_id[70];

	(void)state;
	RUN(true, "--id", "0a1b2c3d-4e5f-6789-abcd-ef0123456789");
	expect(0, NULL);
	RUN(true, "--id", "12_3aa");
	expect(64, "--id \"12_3aa\": the character at position 2 is not a letter, a digit or '-'");
	RUN(true, "--id", "");
	expect(64, "--id: 0 bytes; an id has 1 to 64");
	memset(long_id, 'a', 65);
	long_id[65] = 0;
	RUN(true, "--id", long_id);
	expect(64, "--id: 65 bytes; an id has 1 to 64");
	long_id[64] = 0;
	RUN(true, "--id", long_id);
	expect(0, NULL);
}

/* --level takes Firecracker's names in any case (and flint's); Off logs nothing. */
static void test_logging_flags(void **state)
{
	static const char *const levels[] = { "Error", "Warning", "warn", "INFO",
		                              "Debug", "Trace",   "Off" };
	char *log = test_write_file("fc.log", "", 0);

	(void)state;
	for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
		RUN(true, "--level", levels[i]);
		expect(0, NULL);
	}
	RUN(true, "--level", "loud");
	expect(64, "--level: \"loud\" is not one of error, warn (warning), info, debug, trace, "
	           "off (any case)");
	/* --no-seccomp says it at info: shown at Info, not at Off. */
	RUN(true, "--no-seccomp", "--level", "Info");
	expect(0, "--no-seccomp: flint installs no seccomp filter (as --seccomp off)");
	RUN(true, "--no-seccomp", "--level", "Off");
	expect(0, NULL);
	/* --log-path is Firecracker's --log-file. */
	RUN(true, "--no-seccomp", "--log-path", log);
	expect(0, NULL);
	RUN(true, "--log-path", "/nonexistent/fc.log");
	expect(64, "--log-path /nonexistent/fc.log: No such file or directory");
	/* flint's lines always show their level; they do not carry their origin yet. */
	RUN(true, "--show-level");
	expect(0, NULL);
	RUN(true, "--show-log-origin");
	expect(64, "--show-log-origin: not supported yet");
	RUN(true, "--module", "vmm::devices");
	expect(64, "--module: not supported yet");
	free(log);
}

/*
 * --seccomp on|log|off; Firecracker's --no-seccomp is off, its --seccomp-filter is checked
 * and said, flint's own filters staying on. Then what flint does not do yet.
 */
static void test_seccomp(void **state)
{
	(void)state;
	RUN(true, "--seccomp-filter", config);
	expect(0, "Firecracker's compiled filter is for Firecracker's threads and calls, not "
	          "applied; flint installs its own filters (--seccomp on)");
	RUN(true, "--seccomp-filter", config, "--seccomp", "log");
	expect(0, "flint installs its own filters (--seccomp log)");
	RUN(true, "--seccomp", "off", "--seccomp-filter", config);
	expect(64, "--seccomp off and --seccomp-filter exclude each other");
	RUN(true, "--seccomp", "on");
	expect(0, NULL);
	RUN(true, "--seccomp", "yes");
	expect(64, "--seccomp: \"yes\" is not on, log or off");
	RUN(true, "--seccomp", "off", "--no-seccomp");
	expect(64, "--no-seccomp and --seccomp exclude each other");
	RUN(true, "--seccomp-filter", "/nonexistent.bpf");
	expect(64, "--seccomp-filter /nonexistent.bpf: No such file or directory");
	RUN(true, "--seccomp-filter", config, "--no-seccomp");
	expect(64, "--no-seccomp and --seccomp-filter exclude each other");
	RUN(true, "--enable-pci");
	expect(64, "--enable-pci: not supported yet");
	RUN(true, "--snapshot-version");
	expect(64, "--snapshot-version: not supported yet");
}

/*
 * --metrics-path: opened when the process starts (before /dev/kvm, so a bad one is a usage
 * error on any host), not by --dry-run; with the config's metrics section it would be a
 * second configuration, which Firecracker refuses.
 */
static void test_metrics_path(void **state)
{
	char json[1024], dry[256];
	char *k = tiny_elf_file("vmlinux", (const uint8_t[]){ 0xeb, 0xfe }, 2), *both;
	struct stat st;

	(void)state;
	snprintf(dry, sizeof(dry), "%s/dry-metrics.json", test_tmpdir());
	RUN(true, "--metrics-path", dry);
	expect(0, NULL);
	assert_int_not_equal(stat(dry, &st), 0); /* a dry run touches no file */
	RUN(false, "--config-file", config, "--metrics-path", test_tmpdir());
	expect(64, "is a directory, not a regular file, a character device or a FIFO");
	RUN(false, "--config-file", config, "--metrics-path", "/nonexistent-dir/m");
	expect(64, "--metrics-path /nonexistent-dir/m: No such file or directory");
	snprintf(json, sizeof(json),
	         "{\"boot-source\":{\"kernel_image_path\":\"%s\"},\"drives\":[],"
	         "\"metrics\":{\"metrics_path\":\"%s\"}}",
	         k, dry);
	both = test_write_file("metrics-vm.json", json, strlen(json));
	RUN(false, "--dry-run", "--config-file", both, "--metrics-path", dry);
	expect(78, "metrics: Reinitialization of metrics not allowed. (--metrics-path configured "
	           "them already)");
	free(both);
	free(k);
}

/* The jailer's flags: numbers (u64 microseconds), checked and kept. */
static void test_jailer_flags(void **state)
{
	(void)state;
	RUN(true, "--start-time-us", "1700000000000000", "--start-time-cpu-us", "1234",
	    "--parent-cpu-time-us", "+5", "--boot-timer");
	expect(0, NULL);
	RUN(true, "--start-time-us", "soon");
	expect(64, "--start-time-us: \"soon\" is not a number of microseconds");
	RUN(true, "--parent-cpu-time-us", "18446744073709551616");
	expect(64, "--parent-cpu-time-us: \"18446744073709551616\" is not a number");
}

/* --uid/--gid: numbers, both or neither (the drop itself: test_caps). */
static void test_uid_gid(void **state)
{
	(void)state;
	RUN(true, "--uid", "1000", "--gid", "1000");
	expect(0, NULL);
	RUN(true, "--gid", "0", "--uid", "4294967294");
	expect(0, NULL);
	RUN(true, "--uid", "1000");
	expect(64, "--uid and --gid go together");
	RUN(true, "--gid", "1000");
	expect(64, "--uid and --gid go together");
	RUN(true, "--uid", "root", "--gid", "0");
	expect(64, "--uid: \"root\" is not a user id (a number 0-4294967294)");
	RUN(true, "--uid", "0", "--gid", "-1");
	expect(64, "--gid: \"-1\" is not a group id (a number 0-4294967294)");
	RUN(true, "--uid", "4294967295", "--gid", "0");
	expect(64, "--uid: \"4294967295\" is not a user id");
}

/*
 * --metadata: JSON, no larger (written compactly) than --mmds-size-limit, which defaults to
 * --http-api-max-payload-size, as in Firecracker's test_cmd_line_start.py.
 */
static void test_metadata(void **state)
{
	(void)state;
	RUN(true, "--metadata", META);
	expect(0, "--metadata " META ": in the MMDS store");
	RUN(true, "--metadata", META, "--mmds-size-limit", "30");
	expect(64, "--metadata " META ": 233 bytes of JSON, more than the MMDS limit of 30");
	RUN(true, "--metadata", META, "--http-api-max-payload-size", "30");
	expect(64, "more than the MMDS limit of 30");
	RUN(true, "--metadata", META, "--http-api-max-payload-size", "30", "--mmds-size-limit",
	    "233");
	expect(0, "in the MMDS store");
	RUN(true, "--metadata", "tests/configs/firecracker/metadata_invalid.json");
	expect(64, "metadata_invalid.json: line 6, column 0: invalid JSON");
	RUN(true, "--metadata", "/nonexistent.json");
	expect(64, "--metadata /nonexistent.json: No such file or directory");
}

/* semver 2.0: MAJOR.MINOR.PATCH, numbers without leading zeros, then -pre and +build. */
static bool semver(const char *s)
{
	for (int part = 0; part < 3; part++) {
		if (!isdigit((unsigned char)*s) || (s[0] == '0' && isdigit((unsigned char)s[1])))
			return false;
		while (isdigit((unsigned char)*s))
			s++;
		if (part < 2 && *s++ != '.')
			return false;
	}
	if (*s != '-' && *s != '+')
		return !*s;
	/* Dot-separated identifiers of [0-9A-Za-z-], one '+' at most (before the build's). */
	for (const char *p = s; *p; p++) {
		bool sep = *p == '.' || *p == '+' || (p == s && *p == '-');
		if (sep && (!p[1] || p[1] == '.' || p[1] == '+'))
			return false;
		if (*p == '+' && strchr(p + 1, '+'))
			return false;
		if (!sep && !isalnum((unsigned char)*p) && *p != '-')
			return false;
	}
	return true;
}

/*
 * --version as Kata reads it (virtcontainers/fc.go parseVersion): the first line's second
 * space-separated word, "v" trimmed, must be semver; and it says it is flint.
 */
static void test_version(void **state)
{
	char line[256], *word;

	(void)state;
	RUN(false, "--version");
	expect(0, NULL);
	assert_true(sscanf(res.out, "%255[^\n]", line) == 1);
	assert_true(strncmp(line, "Firecracker v", 13) == 0);
	word = strchr(line, ' ') + 1;
	assert_non_null(strstr(word, "+flint."));
	assert_true(semver(word + 1));
	assert_non_null(strstr(res.out, "\n\nflint "));
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_api_flags),     cmocka_unit_test(test_id),
		cmocka_unit_test(test_logging_flags), cmocka_unit_test(test_seccomp),
		cmocka_unit_test(test_metrics_path),  cmocka_unit_test(test_jailer_flags),
		cmocka_unit_test(test_metadata),      cmocka_unit_test(test_version),
		cmocka_unit_test(test_uid_gid),
	};
	return TEST_MAIN(tests, setup, test_group_teardown);
}
