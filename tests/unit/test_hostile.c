/*
 * Hostile inputs (issue 10): special files where flint expects files, sizes without end, and
 * names that would forge log lines or reach the terminal raw. Every case runs the flint
 * binary ($FLINT_BIN, plain or ASan) under a short timeout, so a flint stuck in open() fails
 * as a kill instead of stalling the suite. None needs /dev/kvm: all end before it is opened.
 */
#include "tests/lib/flintrun.h"

#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

/*
 * Every case must end within PROMPT_MS (it takes milliseconds); one still running at
 * QUICK_S, ample for ASan on a busy machine, is killed and fails its case.
 */
#define PROMPT_MS 4000
#define QUICK_S   8.0

#define MC "\"machine-config\":{\"vcpu_count\":1,\"mem_size_mib\":64},\"drives\":[]"
#define MC0 "\"machine-config\":{\"vcpu_count\":1,\"mem_size_mib\":64}" /* with drives of its own */
#define BS "\"boot-source\":{\"kernel_image_path\":\"@K\"}"
#define GOOD "{" BS "," MC "}"

/*
 * One run of flint. @json (when not NULL) becomes the --config-file; in it and in @args and
 * @err, @T is the test directory, @K a regular file as kernel, @F a FIFO with no reader.
 */
struct hcase {
	const char *what;
	const char *json;
	const char *args[6];
	int code;
	const char *err; /* in stderr, which must be this one clean line; NULL: stderr empty */
};

static struct child_result res; /* of the last run */

static char *expand(const char *tmpl)
{
	const char *dir = test_tmpdir();
	size_t cap = strlen(tmpl) + 1;
	char *out, *o;

	for (const char *p = strchr(tmpl, '@'); p; p = strchr(p + 1, '@'))
		cap += strlen(dir) + 16;
	out = o = calloc(1, cap);
	for (const char *p = tmpl; *p; p++) {
		const char *sub = p[0] != '@' ? NULL
		                  : p[1] == 'T' ? ""
		                  : p[1] == 'K' ? "/vmlinux"
		                  : p[1] == 'F' ? "/fifo"
		                                : NULL;
		if (sub) {
			o += sprintf(o, "%s%s", dir, sub);
			p++;
		} else {
			*o++ = *p;
		}
	}
	return out;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Nothing a terminal would act on: printable ASCII, and newlines only where allowed. */
static bool clean(const char *s, bool one_line)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '\n' && (!one_line || p[1] == 0))
			continue;
		if (*p < 0x20 || *p >= 0x7f)
			return false;
	}
	return !one_line || (*s && s[strlen(s) - 1] == '\n');
}

static bool run_case(const struct hcase *h)
{
	char *argv[16] = { (char *)test_flint_bin() }, *mine[16] = { NULL };
	char *err = h->err ? expand(h->err) : NULL, *json = h->json ? expand(h->json) : NULL;
	int n = 1, m = 0;
	long long t0, ms;
	bool ok;

	if (json) {
		argv[n++] = "--config-file";
		argv[n++] = mine[m++] = test_write_file("vm.json", json, strlen(json));
	}
	for (int i = 0; i < 6 && h->args[i]; i++)
		argv[n++] = mine[m++] = expand(h->args[i]);
	t0 = now_ms();
	assert_int_equal(test_run(argv, QUICK_S, 0, 0, &res), 0);
	ms = now_ms() - t0;
	ok = res.code == h->code && ms < PROMPT_MS &&
	     (err ? strstr(res.err, err) && clean(res.err, true) : !res.err[0]);
	if (!ok)
		print_error("%s: exit %d after %lld ms, stderr \"%s\", stdout \"%.200s\"; want %d "
		            "within %d ms and \"%s\"\n",
		            h->what, res.code, ms, res.err, res.out, h->code, PROMPT_MS, err ? err : "");
	for (int i = 0; i < m; i++)
		free(mine[i]);
	free(json);
	free(err);
	return ok;
}

/* Runs every case, saying what each failure was; returns how many failed. */
static size_t run_table(const struct hcase *cases, size_t n)
{
	size_t failures = 0;

	for (size_t i = 0; i < n; i++)
		failures += !run_case(&cases[i]);
	return failures;
}

static int setup(void **state)
{
	static const uint8_t spin[] = { 0xeb, 0xfe }; /* jmp . */
	char *k = tiny_elf_file("vmlinux", (const uint8_t[]){0xeb, 0xfe}, 2), *f = expand("@F");
	int r = mkfifo(f, 0600);

	(void)state;
	free(tiny_elf_file("tiny.elf", spin, sizeof(spin)));
	free(k);
	free(f);
	return r;
}

/* Item 7: a FIFO or a device where flint expects a file is refused at once, never waited on. */
static void test_special_files(void **state)
{
	static const struct hcase cases[] = {
		{ "FIFO as config, --dry-run", NULL, { "--dry-run", "--config-file", "@F" }, 78,
		  "@F: cannot open config file: is a FIFO, not a regular file" },
		{ "FIFO as config, --timeout 1", NULL, { "--timeout", "1", "--config-file", "@F" }, 78,
		  "@F: cannot open config file: is a FIFO, not a regular file" },
		{ "/dev/zero as config", NULL, { "--dry-run", "--config-file", "/dev/zero" }, 78,
		  "/dev/zero: cannot open config file: is a character device, not a regular file" },
		{ "/dev/urandom as config", NULL, { "--dry-run", "--config-file", "/dev/urandom" }, 78,
		  "/dev/urandom: cannot open config file: is a character device, not a regular file" },
		{ "FIFO as kernel, --dry-run", "{\"boot-source\":{\"kernel_image_path\":\"@F\"}," MC "}",
		  { "--dry-run" }, 78,
		  "boot-source.kernel_image_path: @F: is a FIFO, not a regular file" },
		{ "FIFO as kernel, --timeout 1", "{\"boot-source\":{\"kernel_image_path\":\"@F\"}," MC "}",
		  { "--timeout", "1" }, 78,
		  "boot-source.kernel_image_path: @F: is a FIFO, not a regular file" },
		{ "/dev/zero as kernel",
		  "{\"boot-source\":{\"kernel_image_path\":\"/dev/zero\"}," MC "}", { "--dry-run" }, 78,
		  "boot-source.kernel_image_path: /dev/zero: is a character device, not a regular file" },
		{ "/dev/urandom as kernel",
		  "{\"boot-source\":{\"kernel_image_path\":\"/dev/urandom\"}," MC "}", { "--dry-run" },
		  78, "/dev/urandom: is a character device, not a regular file" },
		{ "FIFO as initrd, --dry-run",
		  "{\"boot-source\":{\"kernel_image_path\":\"@K\",\"initrd_path\":\"@F\"}," MC "}",
		  { "--dry-run" }, 78, "boot-source.initrd_path: @F: is a FIFO, not a regular file" },
		/* A kernel that loads, so only the initrd could stop a run. */
		{ "FIFO as initrd, --timeout 1",
		  "{\"boot-source\":{\"kernel_image_path\":\"@T/tiny.elf\",\"initrd_path\":\"@F\"},"
		  MC "}",
		  { "--timeout", "1" }, 78, "boot-source.initrd_path: @F: is a FIFO, not a regular file" },
		{ "FIFO as drive", "{" BS "," MC0 ",\"drives\":[{\"drive_id\":\"d\",\"path_on_host\":\"@F\","
		  "\"is_root_device\":true}]}", { "--dry-run" }, 78,
		  "drives[0].path_on_host: @F: is a FIFO, not a regular file or a block device" },
		{ "/dev/zero as drive", "{" BS "," MC0 ",\"drives\":[{\"drive_id\":\"d\",\"path_on_host\":"
		  "\"/dev/zero\",\"is_root_device\":true,\"is_read_only\":true}]}", { "--dry-run" }, 78,
		  "/dev/zero: is a character device, not a regular file or a block device" },
		/* A log FIFO is opened read-write, as Firecracker does: no reader needed, no wait. */
		{ "FIFO as --log-file, --dry-run", GOOD, { "--dry-run", "--log-file", "@F" }, 0,
		  NULL },
		{ "FIFO as --serial-log", GOOD, { "--timeout", "1", "--serial-log", "@F" }, 64,
		  "--serial-log @F: is a FIFO with no reader" },
		/* --dry-run starts no console, so it never opens the serial log. */
		{ "FIFO as --serial-log, --dry-run", GOOD, { "--dry-run", "--serial-log", "@F" }, 0,
		  NULL },
		{ "directory as --log-file", GOOD, { "--dry-run", "--log-file", "@T" }, 64,
		  "is a directory, not a regular file, a character device or a FIFO" },
		{ "log file created through a dangling symlink", GOOD,
		  { "--dry-run", "--log-file", "@T/dangling.log" }, 64,
		  "--log-file @T/dangling.log: is a symbolic link to nothing" },
		/* What stays allowed: a device for logs, a symlinked kernel (orchestrators do it). */
		{ "/dev/null as --log-file", GOOD, { "--dry-run", "--log-file", "/dev/null" }, 0, NULL },
		{ "symlinked kernel", "{\"boot-source\":{\"kernel_image_path\":\"@T/vmlinux.link\"}," MC "}",
		  { "--dry-run" }, 0, NULL },
	};
	char *link = expand("@T/vmlinux.link"), *dangling = expand("@T/dangling.log");
	char *target = expand("@T/made-through-a-link.log");
	struct stat st;
	size_t failures;
	int made;

	(void)state;
	assert_int_equal(symlink("vmlinux", link), 0);
	assert_int_equal(symlink(target, dangling), 0);
	failures = run_table(cases, sizeof(cases) / sizeof(cases[0]));
	made = stat(target, &st) == 0; /* the log must not appear where the link points */
	free(link);
	free(dangling);
	free(target);
	assert_int_equal(failures, 0);
	assert_false(made);
}

/*
 * A FIFO whose reader is there takes the log (Firecracker's logger is often one). The
 * error comes after the log is open and before KVM: more drives than virtio slots.
 */
static void test_log_fifo_with_reader(void **state)
{
	static char json[4096];
	struct hcase c = { "FIFO with a reader as --log-file", json, { "--log-file", "@F" }, 78,
		           NULL };
	char *f = expand("@F"), buf[4096];
	int rd = open(f, O_RDONLY | O_NONBLOCK);
	int len = snprintf(json, sizeof(json), "{" BS "," MC0 ",\"drives\":[");
	ssize_t n;

	for (int i = 0; i < 20; i++)
		len += snprintf(json + len, sizeof(json) - (size_t)len,
		                "%s{\"drive_id\":\"d%d\",\"path_on_host\":\"@K\","
		                "\"is_root_device\":false}",
		                i ? "," : "", i);
	snprintf(json + len, sizeof(json) - (size_t)len, "]}");
	(void)state;
	assert_true(rd >= 0);
	assert_true(run_case(&c)); /* the error goes to the FIFO, not stderr */
	n = read(rd, buf, sizeof(buf) - 1);
	assert_true(n > 0);
	buf[n] = 0;
	assert_non_null(strstr(buf, "too many virtio devices"));
	close(rd);
	free(f);
}

/* A good config plus @n vfio devices (or drives, when @drives). */
static char *config_with(bool drives, unsigned n)
{
	char *s = malloc(200 + 120 * n), *p = s;

	p += sprintf(p, "{" BS ",%s", drives ? MC0 ",\"drives\":[" : MC ",\"flint\":{\"vfio-devices\":[");
	for (unsigned i = 0; i < n; i++) {
		if (drives)
			p += sprintf(p, "%s{\"drive_id\":\"d%u\",\"path_on_host\":\"@K\","
			             "\"is_root_device\":false}", i ? "," : "", i);
		else
			p += sprintf(p, "%s{\"id\":\"d%u\",\"bdf\":\"0000:00:%02x.0\"}", i ? "," : "",
			             i, i);
	}
	strcpy(p, drives ? "]}" : "]}}");
	return s;
}

static void sparse_file(const char *name, uint64_t size)
{
	char *path = expand(name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)size), 0);
	close(fd);
	free(path);
}

static void padded_config(const char *name, size_t size)
{
	char *path, *text = expand(GOOD);
	size_t len = strlen(text);

	text = realloc(text, size);
	memset(text + len, ' ', size - len);
	path = test_write_file(name, text, size);
	free(path);
	free(text);
}

/* Item 8: sizes and counts over their limits are one-line config errors naming the limit. */
static void test_size_limits(void **state)
{
	char args5000[5200], args4096[4300];
	char *vfio17 = config_with(false, 17), *vfio16 = config_with(false, 16);
	char *drives65 = config_with(true, 65);

	(void)state;
	snprintf(args5000, sizeof(args5000),
	         "{\"boot-source\":{\"kernel_image_path\":\"@K\",\"boot_args\":\"%05000d\"}," MC "}", 0);
	snprintf(args4096, sizeof(args4096),
	         "{\"boot-source\":{\"kernel_image_path\":\"@K\",\"boot_args\":\"%04096d\"}," MC "}", 0);
	padded_config("big.json", 2 << 20);
	padded_config("max.json", 1 << 20);
	sparse_file("@T/huge-kernel", (512ULL << 20) + 1);
	sparse_file("@T/huge-initrd", (2ULL << 30) + 1);
	const struct hcase cases[] = {
		{ "2 MiB config", NULL, { "--dry-run", "--config-file", "@T/big.json" }, 78,
		  "@T/big.json: cannot open config file: is 2097152 bytes, more than the limit of 1 MiB" },
		{ "1 MiB config", NULL, { "--dry-run", "--config-file", "@T/max.json" }, 0, NULL },
		{ "5000-byte boot_args", args5000, { "--dry-run" }, 78,
		  "boot-source.boot_args: 5000 bytes, more than the limit of 4096" },
		/* Within the config's limit, so the loader decides: an ELF kernel takes 2047. */
		{ "4096-byte boot_args", args4096, { "--dry-run" }, 78,
		  "boot-source.boot_args: 4096 bytes, but " },
		{ "17 vfio devices", vfio17, { "--dry-run" }, 78,
		  "flint.vfio-devices: 17 entries, more than the limit of 16" },
		{ "16 vfio devices", vfio16, { "--dry-run" }, 0, NULL },
		{ "65 drives", drives65, { "--dry-run" }, 78,
		  "drives: 65 entries, more than the limit of 64" },
		{ "kernel over 512 MiB",
		  "{\"boot-source\":{\"kernel_image_path\":\"@T/huge-kernel\"}," MC "}", { "--dry-run" },
		  78, "boot-source.kernel_image_path: @T/huge-kernel: is 536870913 bytes, more than the "
		      "limit of 512 MiB" },
		{ "initrd over 2 GiB",
		  "{\"boot-source\":{\"kernel_image_path\":\"@K\",\"initrd_path\":\"@T/huge-initrd\"},"
		  MC "}", { "--dry-run" }, 78,
		  "boot-source.initrd_path: @T/huge-initrd: is 2147483649 bytes, more than the limit "
		  "of 2048 MiB" },
	};

	size_t failures = run_table(cases, sizeof(cases) / sizeof(cases[0]));

	free(vfio17);
	free(vfio16);
	free(drives65);
	assert_int_equal(failures, 0);
}

/* Item 10a: names from a config or the command line are escaped in every message. */
static void test_escaped_messages(void **state)
{
	char args3000[3200];

	(void)state;
	free(test_write_file("k\x1b[1m.img", "garbage, not a kernel", 21));
	free(tiny_elf_file("e\x1b.elf", (const uint8_t *)"\xeb\xfe", 2));
	free(test_write_file("bad\n\x1b[31m.json", "[]", 2));
	/* A command line longer than the ELF loader's 2047, shorter than the config's limit. */
	snprintf(args3000, sizeof(args3000),
	         "{\"boot-source\":{\"kernel_image_path\":\"@T/e\\u001b.elf\","
	         "\"boot_args\":\"%03000d\"}," MC "}", 0);
	const struct hcase cases[] = {
		{ "key with a newline and ESC",
		  "{\"boot-source\":{\"kernel_image_path\":\"@K\",\"x\\nforged\\u001b[31m\":1}," MC "}",
		  { "--dry-run" }, 78, "boot-source.x\\x0aforged\\x1b[31m: unknown key" },
		{ "key with a quote, a backslash and a C1 CSI",
		  "{" BS ",\"drives\":[],\"machine-config\":{\"a\\\"b\\\\c\\u009b\":1}}",
		  { "--dry-run" }, 78,
		  "machine-config.a\\\"b\\\\c\\xc2\\x9b: unknown key" },
		{ "enum value with an OSC sequence",
		  "{" BS ",\"drives\":[],\"machine-config\":{\"vcpu_count\":1,\"mem_size_mib\":64,"
		  "\"huge_pages\":\"\\u001b]0;pwned\\u0007\"}}", { "--dry-run" }, 78,
		  "machine-config.huge_pages: \"\\x1b]0;pwned\\x07\" is not one of" },
		{ "kernel path with a newline",
		  "{\"boot-source\":{\"kernel_image_path\":\"/nonexistent/a\\nb\"}," MC "}",
		  { "--dry-run" }, 78,
		  "boot-source.kernel_image_path: /nonexistent/a\\x0ab: No such file or directory" },
		{ "duplicate TAP device with ESC",
		  "{" BS "," MC ",\"network-interfaces\":[{\"iface_id\":\"a\",\"host_dev_name\":"
		  "\"\\u001b[2J\"},{\"iface_id\":\"b\",\"host_dev_name\":\"\\u001b[2J\"}]}",
		  { "--dry-run" }, 78,
		  "network-interfaces[1].host_dev_name: duplicate TAP device \"\\x1b[2J\" (also "
		  "network-interfaces[0])" },
		{ "bdf with ESC",
		  "{" BS "," MC ",\"flint\":{\"vfio-devices\":[{\"id\":\"a\",\"bdf\":\"\\u001b[31m\"}]}}",
		  { "--dry-run" }, 78, "flint.vfio-devices[0].bdf: \"\\x1b[31m\" is not a PCI address" },
		{ "raw ESC in the JSON text", "{\x1b[31m}", { "--dry-run" }, 78, "invalid JSON" },
		{ "config file name with a newline and ESC", NULL,
		  { "--dry-run", "--config-file", "@T/bad\n\x1b[31m.json" }, 78,
		  "@T/bad\\x0a\\x1b[31m.json: (top level): must be an object" },
		{ "loader message for a kernel named with ESC",
		  "{\"boot-source\":{\"kernel_image_path\":\"@T/k\\u001b[1m.img\"}," MC "}", { NULL }, 78,
		  "@T/k\\x1b[1m.img: not a kernel flint can boot" },
		{ "loader's boot_args message for a kernel named with ESC", args3000, { NULL }, 78,
		  "boot-source.boot_args: 3000 bytes, but @T/e\\x1b.elf takes at most 2047" },
		{ "--log-file with ESC", GOOD, { "--dry-run", "--log-file", "/nonexistent/\x1b[31m.log" },
		  64, "--log-file /nonexistent/\\x1b[31m.log: No such file or directory" },
		{ "logger.log_path with a newline",
		  "{" BS "," MC ",\"logger\":{\"log_path\":\"/nonexistent/l\\nx.log\"}}", { "--dry-run" },
		  78, "logger.log_path: /nonexistent/l\\x0ax.log: No such file or directory" },
		{ "--serial-log with a newline", GOOD, { "--serial-log", "/nonexistent/s\ns.log" }, 64,
		  "--serial-log /nonexistent/s\\x0as.log: No such file or directory" },
		{ "--timeout with ESC", GOOD, { "--timeout", "\x1b[31m" }, 64,
		  "--timeout: \"\\x1b[31m\" is not a positive number" },
		/* An ignored key is said in a warning, escaped as an error is. */
		{ "ignored top-level key with ESC", "{" BS "," MC ",\"x\\u001b[31m\\n\":1}",
		  { "--dry-run" }, 0, "vm.json: x\\x1b[31m\\x0a: unknown key, ignored" },
		{ "--id with ESC", GOOD, { "--dry-run", "--id", "\x1b[31m" }, 64,
		  "--id \"\\x1b[31m\": the character at position 0 is not a letter" },
		{ "--metadata named with a newline", GOOD,
		  { "--dry-run", "--metadata", "/nonexistent/m\nd.json" }, 64,
		  "--metadata /nonexistent/m\\x0ad.json: No such file or directory" },
	};
	static const struct hcase dry_run = {
		"--dry-run output with ESC and C1 in boot_args",
		"{\"boot-source\":{\"kernel_image_path\":\"@K\",\"boot_args\":\"a\\u001b[31m\\u009b\"},"
		MC "}", { "--dry-run" }, 0, NULL
	};

	assert_int_equal(run_table(cases, sizeof(cases) / sizeof(cases[0])), 0);
	/* The resolved JSON on stdout: ASCII, with the controls as JSON escapes. */
	assert_true(run_case(&dry_run));
	if (!strstr(res.out, "a\\u001B[31m\\u009B") || !clean(res.out, false))
		print_error("--dry-run output: %s\n", res.out);
	assert_non_null(strstr(res.out, "a\\u001B[31m\\u009B"));
	assert_true(clean(res.out, false));
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_special_files),
		cmocka_unit_test(test_log_fifo_with_reader),
		cmocka_unit_test(test_size_limits),
		cmocka_unit_test(test_escaped_messages),
	};
	return TEST_MAIN(tests, setup, test_group_teardown);
}
