/*
 * The jail (vmm/jail.h): its flags and plans, pure; then the flint binary jailed on this
 * host (root, no KVM needed): the API waiting in new PID, mount, IPC and UTS namespaces
 * with its limits, seen from outside through /proc, SIGTERM to the parent ending it with
 * 143, a child killed with SIGKILL coming through as 137, a config error's 78 coming
 * through the fork, and --dry-run making the whole jail (root changed, the vsock socket's
 * directory bound in), and the cgroup half in a cgroup v2 mounted for the test.
 */
#include "tests/lib/flintrun.h"
#include "tests/lib/util.h"
#include "vmm/jail.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

static struct child_result res;

static void test_parse_limit(void **state)
{
	static const char *const bad[] = { "",
		                           "no-file",
		                           "no-file=",
		                           "no-file=-1",
		                           "no-file=0x10",
		                           "no-file=1 ",
		                           "nofile=10",
		                           "core=0",
		                           "fsize=1e6",
		                           "=5",
		                           "fsize=18446744073709551615" };
	struct jail_opts o;
	char why[JAIL_WHY_MAX];

	(void)state;
	jail_opts_init(&o);
	assert_int_equal(o.nofile, 2048);
	assert_false(o.fsize_set);
	assert_int_equal(jail_parse_limit(&o, "no-file=300", why, sizeof(why)), 0);
	assert_int_equal(o.nofile, 300);
	assert_int_equal(jail_parse_limit(&o, "fsize=1048576", why, sizeof(why)), 0);
	assert_true(o.fsize_set);
	assert_int_equal(o.fsize, 1048576);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		jail_opts_init(&o);
		if (jail_parse_limit(&o, bad[i], why, sizeof(why)) == 0)
			fail_msg("--resource-limit \"%s\" taken", bad[i]);
		assert_int_equal(o.nofile, 2048);
		assert_false(o.fsize_set);
	}
}

static void test_parse_cgroup_set(void **state)
{
	static const char *const bad[] = { "cpu.max",          "=1",        "cpu=1",
		                           ".max=1",           "cpu.max=",  "../x.max=1",
		                           "cpu/x.max=1",      "CPU.max=1", "cgroup.procs=0",
		                           "cgroup.threads=0", "a.b=1\n2" };
	struct jail_opts o;
	char why[JAIL_WHY_MAX];

	(void)state;
	jail_opts_init(&o);
	assert_int_equal(jail_parse_cgroup_set(&o, "cpu.max=50000 100000", why, sizeof(why)), 0);
	assert_int_equal(jail_parse_cgroup_set(&o, "memory.max=256M", why, sizeof(why)), 0);
	assert_int_equal(jail_parse_cgroup_set(&o, "pids.max=a=b", why, sizeof(why)), 0);
	assert_int_equal(o.nset, 3);
	assert_string_equal(o.set[0].key, "cpu.max");
	assert_string_equal(o.set[0].value, "50000 100000");
	assert_string_equal(o.set[2].key, "pids.max");
	assert_string_equal(o.set[2].value, "a=b");
	/* The same file twice would leave which one wins to the order of the flags. */
	assert_int_equal(jail_parse_cgroup_set(&o, "memory.max=1G", why, sizeof(why)), -1);
	assert_non_null(strstr(why, "twice"));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		jail_opts_init(&o);
		if (jail_parse_cgroup_set(&o, bad[i], why, sizeof(why)) == 0)
			fail_msg("--cgroup-set \"%s\" taken", bad[i]);
		assert_int_equal(o.nset, 0);
	}
	jail_opts_init(&o);
	for (int i = 0; i < JAIL_CGROUP_SET_MAX; i++) {
		char arg[32];

		snprintf(arg, sizeof(arg), "f%d.max=1", i);
		assert_int_equal(jail_parse_cgroup_set(&o, arg, why, sizeof(why)), 0);
	}
	assert_int_equal(jail_parse_cgroup_set(&o, "one.more=1", why, sizeof(why)), -1);
}

static void test_check(void **state)
{
	static const char *const bad_cgroups[] = {
		"/sys/fs/cgroup",    "/sys/fs/cgroup/",     "/sys/fs/cgroupx/a",
		"sys/fs/cgroup/a",   "/sys/fs/cgroup/../a", "/sys/fs/cgroup/a/./b",
		"/sys/fs/cgroup//a", "/sys/fs/cgroup/a/",   "/tmp/a",
	};
	struct jail_opts o;
	char why[JAIL_WHY_MAX];

	(void)state;
	jail_opts_init(&o);
	assert_int_equal(jail_check(&o, why, sizeof(why)), 0);
	/* Every jail option needs --chroot. */
	o.cgroup = "/sys/fs/cgroup/vm";
	assert_int_equal(jail_check(&o, why, sizeof(why)), -1);
	jail_opts_init(&o);
	o.nofile = 100;
	assert_int_equal(jail_check(&o, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "need --chroot"));
	jail_opts_init(&o);
	o.root = "/srv/jail";
	assert_int_equal(jail_parse_cgroup_set(&o, "cpu.max=max", why, sizeof(why)), 0);
	assert_int_equal(jail_check(&o, why, sizeof(why)), -1);
	assert_string_equal(why, "--cgroup-set needs --cgroup");
	o.cgroup = "/sys/fs/cgroup/flint/vm-1";
	assert_int_equal(jail_check(&o, why, sizeof(why)), 0);
	for (size_t i = 0; i < sizeof(bad_cgroups) / sizeof(bad_cgroups[0]); i++) {
		o.cgroup = bad_cgroups[i];
		if (jail_check(&o, why, sizeof(why)) == 0)
			fail_msg("--cgroup %s taken", bad_cgroups[i]);
	}
}

static void test_controller(void **state)
{
	char c[16];

	(void)state;
	jail_controller("cpu.max", c, sizeof(c));
	assert_string_equal(c, "cpu");
	jail_controller("memory.swap.max", c, sizeof(c));
	assert_string_equal(c, "memory");
	jail_controller("hugetlb.2MB.max", c, sizeof(c));
	assert_string_equal(c, "hugetlb");
	/* The core's files need no controller enabled. */
	jail_controller("cgroup.max.descendants", c, sizeof(c));
	assert_string_equal(c, "");
	jail_controller("averyveryverylongcontroller.max", c, sizeof(c));
	assert_string_equal(c, "");
}

static void test_plan_binds(void **state)
{
	struct jail_bind b[JAIL_BINDS_MAX];
	char why[JAIL_WHY_MAX + JAIL_PATH_MAX];

	(void)state;
	/* Each socket's directory, once; relative ones against the working directory. */
	assert_int_equal(jail_plan_binds((const char *[]){ "/run/fc/api.sock", "/run/fc/v.sock" },
	                                 2, "/srv", b, why, sizeof(why)),
	                 1);
	assert_string_equal(b[0].dir, "/run/fc");
	assert_int_equal(jail_plan_binds((const char *[]){ "api.sock", "vs/v.sock" }, 2, "/srv", b,
	                                 why, sizeof(why)),
	                 2);
	assert_string_equal(b[0].dir, "/srv");
	assert_string_equal(b[1].dir, "/srv/vs");
	assert_int_equal(jail_plan_binds((const char *[]){ NULL, "/a//b//v.sock", "" }, 3, "/", b,
	                                 why, sizeof(why)),
	                 1);
	assert_string_equal(b[0].dir, "/a/b");
	assert_int_equal(
	        jail_plan_binds((const char *[]){ NULL, NULL }, 2, "/", b, why, sizeof(why)), 0);
	/* A socket in / would bind the host's root in: refused, and said why. */
	assert_int_equal(
	        jail_plan_binds((const char *[]){ "/api.sock" }, 1, "/srv", b, why, sizeof(why)),
	        -1);
	assert_non_null(strstr(why, "/api.sock: a socket directly in / would bring"));
	assert_int_equal(
	        jail_plan_binds((const char *[]){ "api.sock" }, 1, "/", b, why, sizeof(why)), -1);
	assert_int_equal(jail_plan_binds((const char *[]){ "/run/../etc/x.sock" }, 1, "/", b, why,
	                                 sizeof(why)),
	                 -1);
	assert_int_equal(
	        jail_plan_binds((const char *[]){ "../x.sock" }, 1, "/srv", b, why, sizeof(why)),
	        -1);
}

static void test_plan_limits(void **state)
{
	struct jail_limit l[3], m;
	struct jail_opts o;

	(void)state;
	jail_opts_init(&o);
	assert_int_equal(jail_plan_start_limits(&o, l), 2);
	assert_int_equal(l[0].resource, RLIMIT_NOFILE);
	assert_int_equal(l[0].value, 2048);
	assert_int_equal(l[1].resource, RLIMIT_CORE);
	assert_int_equal(l[1].value, 0);
	o.fsize_set = true;
	o.fsize = 4096;
	o.nofile = 64;
	assert_int_equal(jail_plan_start_limits(&o, l), 3);
	assert_int_equal(l[0].value, 64);
	assert_int_equal(l[2].resource, RLIMIT_FSIZE);
	assert_int_equal(l[2].value, 4096);
	/* Fault mode may need locked memory (caps.h): left alone; otherwise none. */
	assert_false(jail_plan_memlock(true, &m));
	assert_true(jail_plan_memlock(false, &m));
	assert_int_equal(m.resource, RLIMIT_MEMLOCK);
	assert_int_equal(m.value, 0);
}

/* -------- the binary -------- */

static char *config;     /* a dry-run config with a vsock in <tmp>/socks */
static char *bad_config; /* a config whose kernel is not there: 78 */
static char root_dir[512], socks_dir[512];

static int setup(void **state)
{
	char json[2048];
	const uint8_t code[] = { 0xeb, 0xfe };
	char *k;

	(void)state;
	snprintf(root_dir, sizeof(root_dir), "%s/root", test_tmpdir());
	snprintf(socks_dir, sizeof(socks_dir), "%s/socks", test_tmpdir());
	if (mkdir(root_dir, 0755) || mkdir(socks_dir, 0755))
		return -1;
	k = tiny_elf_file("vmlinux", code, sizeof(code));
	snprintf(json, sizeof(json),
	         "{\"boot-source\":{\"kernel_image_path\":\"%s\"},\"drives\":[],"
	         "\"vsock\":{\"guest_cid\":3,\"uds_path\":\"%s/v.sock\"}}",
	         k, socks_dir);
	config = test_write_file("vm.json", json, strlen(json));
	snprintf(json, sizeof(json),
	         "{\"boot-source\":{\"kernel_image_path\":\"%s.missing\"},\"drives\":[]}", k);
	bad_config = test_write_file("bad.json", json, strlen(json));
	free(k);
	return 0;
}

static int teardown(void **state)
{
	free(config);
	free(bad_config);
	return test_group_teardown(state);
}

static void expect(int code, const char *err)
{
	bool ok = res.code == code && (!err || strstr(res.err, err));

	if (!ok)
		print_error("exit %d, stderr \"%s\"; want %d and \"%s\"\n", res.code, res.err, code,
		            err ? err : "");
	assert_true(ok);
}

#define RUN(...)                                                                                   \
	assert_int_equal(test_run((char *const[]){ (char *)test_flint_bin(), __VA_ARGS__, NULL },  \
	                          20, 0, 0, &res),                                                 \
	                 0)

static void test_usage(void **state)
{
	(void)state;
	RUN("--dry-run", "--config-file", config, "--cgroup", "/sys/fs/cgroup/x");
	expect(64, "they need --chroot");
	RUN("--dry-run", "--config-file", config, "--resource-limit", "no-file=10");
	expect(64, "they need --chroot");
	RUN("--dry-run", "--config-file", config, "--chroot", root_dir, "--resource-limit",
	    "nofile=10");
	expect(64, "--resource-limit \"nofile=10\": the limits are fsize and no-file");
	RUN("--dry-run", "--config-file", config, "--chroot", root_dir, "--cgroup-set",
	    "cpu.max=max");
	expect(64, "--cgroup-set needs --cgroup");
	RUN("--dry-run", "--config-file", config, "--chroot", root_dir, "--cgroup", "/tmp/cg");
	expect(64, "--cgroup /tmp/cg: a cgroup is a directory under /sys/fs/cgroup/");
	/* A jail that cannot be made is 70, named, before anything runs. */
	RUN("--dry-run", "--config-file", config, "--chroot", "/nonexistent/jail");
	expect(70, "jail: --chroot /nonexistent/jail: No such file or directory");
	RUN("--dry-run", "--config-file", config, "--chroot", config);
	expect(70, "not a directory");
	/* An API socket in / cannot be bound in without the host's root: refused at once. */
	RUN("--api-sock", "/flint-test-never.sock", "--chroot", root_dir);
	expect(70, "jail: --api-sock /flint-test-never.sock: a socket directly in / would bring");
}

/* --dry-run makes the jail whole: the root changes, the vsock's directory is bound in. */
static void test_dry_run(void **state)
{
	char mp[1024];
	struct stat st;

	(void)state;
	RUN("--dry-run", "--config-file", config, "--chroot", root_dir);
	expect(0, "jail: flint is pid 1 of new PID, mount, IPC and UTS namespaces");
	expect(0, "limits: no-file 2048, core 0;");
	if (!strstr(res.err, "jail: root is now ") || !strstr(res.err, socks_dir) ||
	    !strstr(res.err, "memlock 0"))
		fail_msg("the root change is not logged: %s", res.err);
	assert_non_null(strstr(res.out, "\"vsock\""));
	/* The mount point stays in DIR; the mount went with the namespace. */
	snprintf(mp, sizeof(mp), "%s%s", root_dir, socks_dir);
	assert_int_equal(stat(mp, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	/* A config error in the jailed child: its 78 comes through the fork. */
	RUN("--dry-run", "--config-file", bad_config, "--chroot", root_dir);
	expect(78, "kernel_image_path");
}

/* @pid's child, from /proc (the jailed flint), waiting up to 10 s for it. */
static pid_t child_of(pid_t pid)
{
	char path[64];
	long c = 0;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)pid, (int)pid);
	for (int i = 0; i < 1000 && c <= 0; i++) {
		FILE *f = fopen(path, "r");

		if (f) {
			if (fscanf(f, "%ld", &c) != 1)
				c = 0;
			fclose(f);
		}
		if (c <= 0)
			usleep(10000);
	}
	return (pid_t)c;
}

static void ns_differ(pid_t a, pid_t b, const char *ns)
{
	char pa[64], pb[64], la[64] = "", lb[64] = "";

	snprintf(pa, sizeof(pa), "/proc/%d/ns/%s", (int)a, ns);
	snprintf(pb, sizeof(pb), "/proc/%d/ns/%s", (int)b, ns);
	assert_true(readlink(pa, la, sizeof(la) - 1) > 0);
	assert_true(readlink(pb, lb, sizeof(lb) - 1) > 0);
	if (!strcmp(la, lb))
		fail_msg("%s: the jailed flint shares the parent's %s", ns, la);
}

/* The "Max NAME" line of /proc/@pid/limits: soft and hard. */
static void limit_is(pid_t pid, const char *name, const char *want)
{
	char path[64], line[256], got[256] = "";
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/limits", (int)pid);
	f = fopen(path, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		unsigned long long s, h;
		char unit[32];
		size_t n = strlen(name);

		if (!strncmp(line, name, n) &&
		    sscanf(line + 26, "%llu %llu %31s", &s, &h, unit) == 3)
			snprintf(got, sizeof(got), "%llu %llu", s, h);
	}
	fclose(f);
	if (strcmp(got, want))
		fail_msg("%s: \"%s\", want \"%s\"", name, got, want);
}

/* Starts jailed flint serving the API; its pid (the parent) and the jailed child's. */
static pid_t start_api(const char *sock, pid_t *child, int err_fd)
{
	pid_t pid = fork();

	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);

		dup2(null, 0);
		dup2(null, 1);
		dup2(err_fd, 2);
		execl(test_flint_bin(), test_flint_bin(), "--api-sock", sock, "--chroot", root_dir,
		      "--resource-limit", "no-file=300", "--resource-limit", "fsize=1048576",
		      "--no-console", (char *)NULL);
		_exit(127);
	}
	assert_true(pid > 0);
	*child = child_of(pid);
	assert_true(*child > 0);
	/* The socket is there once the API serves. */
	for (int i = 0; i < 1000 && access(sock, F_OK); i++)
		usleep(10000);
	assert_int_equal(access(sock, F_OK), 0);
	return pid;
}

static int wait_code(pid_t pid)
{
	int st;

	for (int i = 0; i < 1000; i++) {
		pid_t r = waitpid(pid, &st, WNOHANG);

		if (r == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		usleep(10000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	fail_msg("flint (pid %d) did not end within 10 s", (int)pid);
	return -1;
}

/* Seen from outside: namespaces, limits; SIGTERM to the parent ends it with 143. */
static void test_api_jailed(void **state)
{
	static const char *const ns[] = { "pid", "mnt", "ipc", "uts" };
	char sock[600], errpath[600], err[8192] = "";
	pid_t pid, child;
	int fd, n;

	(void)state;
	snprintf(sock, sizeof(sock), "%s/api.sock", socks_dir);
	snprintf(errpath, sizeof(errpath), "%s/api.err", test_tmpdir());
	fd = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	pid = start_api(sock, &child, fd);
	close(fd);
	for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]); i++)
		ns_differ(pid, child, ns[i]);
	limit_is(child, "Max open files", "300 300");
	limit_is(child, "Max core file size", "0 0");
	limit_is(child, "Max file size", "1048576 1048576");
	kill(pid, SIGTERM);
	assert_int_equal(wait_code(pid), 143);
	assert_int_not_equal(kill(child, 0), 0);
	/* The API never started a VM: the root never changed, and flint removed its socket. */
	assert_int_not_equal(access(sock, F_OK), 0);
	fd = open(errpath, O_RDONLY);
	n = (int)read(fd, err, sizeof(err) - 1);
	close(fd);
	err[n > 0 ? n : 0] = 0;
	if (!strstr(err, "received SIGTERM") || !strstr(err, "limits: no-file 300, core 0, "
	                                                     "fsize 1048576"))
		fail_msg("stderr: %s", err);
}

/* The jailed flint killed outright: the parent says so and ends with 128 + 9. */
static void test_child_killed(void **state)
{
	char sock[600];
	pid_t pid, child;

	(void)state;
	snprintf(sock, sizeof(sock), "%s/api2.sock", socks_dir);
	pid = start_api(sock, &child, 2);
	kill(child, SIGKILL);
	assert_int_equal(wait_code(pid), 137);
	unlink(sock);
}

/* The first line of @path, without its newline ("" when unreadable). */
static void read_line(const char *path, char *out, size_t len)
{
	FILE *f = fopen(path, "r");

	out[0] = 0;
	if (f && fgets(out, (int)len, f))
		out[strcspn(out, "\n")] = 0;
	if (f)
		fclose(f);
}

/* @pid's cgroup v2 (the "0::" line of /proc/@pid/cgroup), "" when none. */
static void cgroup_of(pid_t pid, char out[300])
{
	char path[64], line[512];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
	out[0] = 0;
	f = fopen(path, "r");
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "0::", 3)) {
			line[strcspn(line, "\n")] = 0;
			snprintf(out, 300, "%.299s", line + 3);
		}
	if (f)
		fclose(f);
}

/*
 * The cgroup half on this host: cgroup v2 mounted at /sys/fs/cgroup in a mount namespace
 * of the test's own (a hybrid host has it elsewhere). The jailed flint is in the cgroup
 * flint made, the file it was told to set holds the value; a controller that does not
 * exist is 70, naming the file. Last: the test keeps that mount namespace.
 */
static void test_cgroup(void **state)
{
	char sock[600], cg[256], path[300], line[512], want[300], in[300], out[300];
	pid_t pid, child;
	int code;

	(void)state;
	if (unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) ||
	    mount("cgroup2", "/sys/fs/cgroup", "cgroup2", 0, NULL))
		fail_msg("cannot mount cgroup v2 for the test: %s", strerror(errno));
	snprintf(cg, sizeof(cg), "/sys/fs/cgroup/flint-test-%d", (int)getpid());
	snprintf(sock, sizeof(sock), "%s/api3.sock", socks_dir);
	snprintf(path, sizeof(path), "%s/vm", cg);
	pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);

		dup2(null, 0);
		dup2(null, 1);
		execl(test_flint_bin(), test_flint_bin(), "--api-sock", sock, "--chroot", root_dir,
		      "--cgroup", path, "--cgroup-set", "cgroup.max.descendants=0", "--no-console",
		      (char *)NULL);
		_exit(127);
	}
	assert_true(pid > 0);
	child = child_of(pid);
	assert_true(child > 0);
	for (int i = 0; i < 1000 && access(sock, F_OK); i++)
		usleep(10000);
	/* Checked after flint is gone: a failed assertion must not leave it running. */
	cgroup_of(child, in);
	cgroup_of(pid, out);
	snprintf(line, sizeof(line), "%s/cgroup.max.descendants", path);
	read_line(line, line, sizeof(line));
	kill(pid, SIGTERM);
	code = wait_code(pid);
	rmdir(path);
	snprintf(want, sizeof(want), "/flint-test-%d/vm", (int)getpid());
	if (strcmp(in, want))
		fail_msg("the jailed flint is in cgroup \"%s\", want \"%s\"", in, want);
	/* The parent stays where it was. */
	assert_string_not_equal(out, want);
	assert_string_equal(line, "0");
	assert_int_equal(code, 143);
	/* A file of a controller that does not exist: the parent cannot enable it. */
	RUN("--api-sock", sock, "--chroot", root_dir, "--cgroup", path, "--cgroup-set",
	    "nosuch.max=1");
	rmdir(path);
	assert_int_equal(rmdir(cg), 0);
	expect(70, "jail: cannot write +nosuch to /sys/fs/cgroup/cgroup.subtree_control");
}

int main(int argc, char **argv)
{
	/*
	 * LeakSanitizer in the sanitized flint reads /proc/<its pid>/task: in a PID namespace
	 * that is another process's (or, past the root change, nothing), and it fails the run.
	 * The jailed runs go without it; the others check for leaks as always.
	 */
	const char *asan = getenv("ASAN_OPTIONS");
	char opts[1024];

	snprintf(opts, sizeof(opts), "%s%sdetect_leaks=0", asan ? asan : "", asan ? ":" : "");
	setenv("ASAN_OPTIONS", opts, 1);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_limit), cmocka_unit_test(test_parse_cgroup_set),
		cmocka_unit_test(test_check),       cmocka_unit_test(test_controller),
		cmocka_unit_test(test_plan_binds),  cmocka_unit_test(test_plan_limits),
		cmocka_unit_test(test_usage),       cmocka_unit_test(test_dry_run),
		cmocka_unit_test(test_api_jailed),  cmocka_unit_test(test_child_killed),
		cmocka_unit_test(test_cgroup),
	};

	return TEST_MAIN(tests, setup, teardown);
}
