/*
 * Least privilege (vmm/caps.h): --uid/--gid values, the decision of what flint keeps, and
 * the drop itself, each in a forked child so the test keeps its own privileges: what the
 * kernel then shows in /proc/self/status (CapEff, CapPrm, CapBnd, CapAmb, NoNewPrivs, Uid,
 * Gid, Groups), as root, as root becoming another user, keeping cap_ipc_lock for fault
 * mode, with a capability but not cap_setpcap, unprivileged, and refused while a second
 * thread exists (caps_threads() saying 1, then 2).
 */
#include "tests/lib/util.h"
#include "vmm/caps.h"

#include <grp.h>
#include <inttypes.h>
#include <linux/capability.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#define NOBODY    65534u
#define IPC_LOCK  (UINT64_C(1) << CAP_IPC_LOCK)
#define FULL_BITS UINT64_MAX /* "the set as it was": not checked */

static void test_parse_id(void **state)
{
	static const char *const bad[] = { "",     "-1",         "+5",
		                           " 1",   "1 ",         "1a",
		                           "0x10", "4294967295", "99999999999999999999" };
	uint32_t v = 7;

	(void)state;
	assert_int_equal(caps_parse_id("0", &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(caps_parse_id("1000", &v), 0);
	assert_int_equal(v, 1000);
	assert_int_equal(caps_parse_id("4294967294", &v), 0);
	assert_int_equal(v, 4294967294u);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v = 7;
		if (caps_parse_id(bad[i], &v) == 0)
			fail_msg("\"%s\" taken as an id", bad[i]);
		assert_int_equal(v, 7);
	}
}

/* Nothing is kept unless fault mode would count its mappings against a limited memlock. */
static void test_plan(void **state)
{
	struct caps_need need = { .have = ~UINT64_C(0) };
	struct caps_plan plan;

	(void)state;
	caps_plan(&need, &plan);
	assert_int_equal(plan.keep, 0);
	assert_true(plan.clear_bounding);
	assert_string_equal(plan.why, "nothing flint does from now on needs one");
	need.fault_mode = true;
	need.memlock_unlimited = true;
	caps_plan(&need, &plan);
	assert_int_equal(plan.keep, 0);
	need.memlock_unlimited = false;
	caps_plan(&need, &plan);
	assert_int_equal(plan.keep, IPC_LOCK);
	assert_non_null(strstr(plan.why, "cap_ipc_lock: fault mode maps guest memory"));
	/* It cannot keep what it has not got: nothing, and the log says what follows. */
	need.have = ~IPC_LOCK;
	caps_plan(&need, &plan);
	assert_int_equal(plan.keep, 0);
	assert_non_null(strstr(plan.why, "RLIMIT_MEMLOCK"));
	/* Without cap_setpcap the bounding set cannot be cleared: left, not a failure. */
	need.have = UINT64_C(1) << CAP_NET_ADMIN;
	caps_plan(&need, &plan);
	assert_false(plan.clear_bounding);
}

/* The value of @key in /proc/self/status into @out; false when it has no such line. */
static bool status_value(const char *key, char *out, size_t len)
{
	FILE *f = fopen("/proc/self/status", "re");
	size_t klen = strlen(key);
	char line[512];
	bool found = false;

	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f)) {
		if (strncmp(line, key, klen) || line[klen] != ':')
			continue;
		snprintf(out, len, "%s", line + klen + 1 + strspn(line + klen + 1, " \t"));
		out[strcspn(out, "\n")] = 0;
		found = true;
	}
	fclose(f);
	return found;
}

static uint64_t status_hex(const char *key)
{
	char v[64] = "";

	return status_value(key, v, sizeof(v)) ? strtoull(v, NULL, 16) : UINT64_MAX - 1;
}

/* What a child must find after caps_drop(). */
struct want {
	uint64_t eff, bnd; /* CapEff (= CapPrm), CapBnd; FULL_BITS: as before */
	const char *ids;   /* the Uid and Gid lines, "" when unchanged */
};

static bool check_hex(const char *key, uint64_t got, uint64_t want)
{
	if (want == FULL_BITS || got == want)
		return true;
	fprintf(stderr, "%s: %016" PRIx64 ", want %016" PRIx64 "\n", key, got, want);
	return false;
}

static bool check_ids(const char *want)
{
	char uid[64], gid[64], groups[64], line[200];

	if (!*want)
		return true;
	if (!status_value("Uid", uid, sizeof(uid)) || !status_value("Gid", gid, sizeof(gid)) ||
	    !status_value("Groups", groups, sizeof(groups)))
		return false;
	snprintf(line, sizeof(line), "%s/%s/%s", uid, gid, groups);
	if (!strcmp(line, want))
		return true;
	fprintf(stderr, "Uid/Gid/Groups \"%s\", want \"%s\"\n", line, want);
	return false;
}

/* In the child: the kernel's view after the drop. 0 when it is @w's. */
static int verify(const struct want *w)
{
	char nnp[16] = "";
	bool ok = check_hex("CapEff", status_hex("CapEff"), w->eff) &
	          check_hex("CapPrm", status_hex("CapPrm"), w->eff) &
	          check_hex("CapInh", status_hex("CapInh"), 0) &
	          check_hex("CapBnd", status_hex("CapBnd"), w->bnd) &
	          check_hex("CapAmb", status_hex("CapAmb"), 0) & check_ids(w->ids);

	status_value("NoNewPrivs", nnp, sizeof(nnp));
	if (strcmp(nnp, "1")) {
		fprintf(stderr, "NoNewPrivs %s, want 1\n", nnp);
		ok = false;
	}
	return ok ? 0 : 1;
}

/* Runs @fn in a child and returns its exit status (or 128 + the signal that ended it). */
static int in_child(int (*fn)(const void *), const void *arg)
{
	int status;
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		alarm(20);
		_exit(fn(arg));
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static bool privileged(void)
{
	return status_hex("CapPrm") != 0 && status_hex("CapPrm") != UINT64_MAX - 1;
}

struct drop_case {
	bool fault_mode;
	struct caps_id id;
	struct want want;
};

static int drop_child(const void *arg)
{
	const struct drop_case *c = arg;
	struct rlimit rl = { 64 << 10, 64 << 10 };

	/* A limited memlock, whatever this machine's is: fault mode then keeps cap_ipc_lock. */
	if (c->fault_mode && setrlimit(RLIMIT_MEMLOCK, &rl) < 0)
		return 2;
	return caps_drop(c->fault_mode, &c->id) ? 3 : verify(&c->want);
}

/* As root: every capability, the bounding and ambient sets gone; with --uid/--gid, that user. */
static void test_drop_root(void **state)
{
	const struct drop_case cases[] = {
		{ .want = { 0, 0, "" } },
		{ .id = { true, NOBODY, NOBODY },
		  .want = { 0, 0, "65534\t65534\t65534\t65534/65534\t65534\t65534\t65534/" } },
		{ .id = { true, 0, 0 }, .want = { 0, 0, "0\t0\t0\t0/0\t0\t0\t0/" } },
	};

	(void)state;
	if (!privileged())
		skip(); /* needs capabilities to drop: reported as skipped, not passed */
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (in_child(drop_child, &cases[i]))
			fail_msg("case %zu: the drop or the kernel's view of it failed", i);
}

/* Fault mode with a limited RLIMIT_MEMLOCK keeps cap_ipc_lock, across a user change too. */
static void test_drop_keeps_ipc_lock(void **state)
{
	const struct drop_case cases[] = {
		{ .fault_mode = true, .want = { IPC_LOCK, 0, "" } },
		{ .fault_mode = true,
		  .id = { true, NOBODY, NOBODY },
		  .want = { IPC_LOCK, 0,
		            "65534\t65534\t65534\t65534/65534\t65534\t65534\t65534/" } },
	};

	(void)state;
	if (!(status_hex("CapPrm") & IPC_LOCK) || status_hex("CapPrm") == UINT64_MAX - 1)
		skip();
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (in_child(drop_child, &cases[i]))
			fail_msg("case %zu: cap_ipc_lock was not kept as it should be", i);
}

/* Become nobody first (no capability left), then drop: nothing to drop, no_new_privs set. */
static int unprivileged_child(const void *arg)
{
	const struct caps_id *id = arg;
	struct want w = { 0, FULL_BITS, "" };

	if (privileged() && (setgroups(0, NULL) || setresgid(NOBODY, NOBODY, NOBODY) ||
	                     setresuid(NOBODY, NOBODY, NOBODY)))
		return 2;
	if (status_hex("CapPrm"))
		return 4;
	if (caps_drop(false, id))
		return 3;
	return verify(&w);
}

static void test_drop_unprivileged(void **state)
{
	struct caps_id none = { 0 }, self = { true, NOBODY, NOBODY },
	               other = { true, NOBODY - 1, NOBODY - 1 };

	(void)state;
	if (!privileged() && getuid() != NOBODY)
		skip(); /* becoming nobody, or being it, is how the test gets there */
	assert_int_equal(in_child(unprivileged_child, &none), 0);
	assert_int_equal(in_child(unprivileged_child, &self), 0);
	/* Without capabilities flint cannot become anyone else: an error, not a silent no. */
	assert_int_equal(in_child(unprivileged_child, &other), 3);
}

/*
 * Given cap_net_admin alone (as an orchestrator hands a TAP user): it goes, the ambient set
 * too, no_new_privs is set; the bounding set stays, as only cap_setpcap could clear it.
 */
static int partial_child(const void *arg)
{
	struct want w = { 0, status_hex("CapBnd"), "" };

	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3] = {
		{ UINT32_C(1) << CAP_NET_ADMIN, UINT32_C(1) << CAP_NET_ADMIN, 0 },
	};

	(void)arg;
	if (syscall(SYS_capset, &hdr, d) || status_hex("CapPrm") != UINT64_C(1) << CAP_NET_ADMIN)
		return 2;
	return caps_drop(false, &(struct caps_id){ 0 }) ? 3 : verify(&w);
}

static void test_drop_without_setpcap(void **state)
{
	(void)state;
	if (!(status_hex("CapPrm") & (UINT64_C(1) << CAP_NET_ADMIN)) ||
	    status_hex("CapPrm") == UINT64_MAX - 1)
		skip();
	assert_int_equal(in_child(partial_child, NULL), 0);
}

static void *idle_thread(void *arg)
{
	int fd = *(int *)arg;
	char c;

	return read(fd, &c, 1) < 0 ? NULL : arg; /* until the pipe closes */
}

/*
 * A second thread would keep its capabilities: caps_threads() counts it, the drop refuses,
 * and changes nothing.
 */
static int threads_child(const void *arg)
{
	struct caps_id none = { 0 };
	uint64_t before = status_hex("CapEff");
	pthread_t t;
	int p[2];

	(void)arg;
	if (caps_threads() != 1)
		return 5;
	if (pipe(p) || pthread_create(&t, NULL, idle_thread, &p[0]))
		return 2;
	if (caps_threads() != 2)
		return 6;
	if (caps_drop(false, &none) == 0)
		return 3;
	if (status_hex("CapEff") != before)
		return 4;
	close(p[1]);
	pthread_join(t, NULL);
	return 0;
}

static void test_drop_refused_with_threads(void **state)
{
	(void)state;
	if (!privileged())
		skip();
	assert_int_equal(in_child(threads_child, NULL), 0);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_id),
		cmocka_unit_test(test_plan),
		cmocka_unit_test(test_drop_root),
		cmocka_unit_test(test_drop_keeps_ipc_lock),
		cmocka_unit_test(test_drop_unprivileged),
		cmocka_unit_test(test_drop_without_setpcap),
		cmocka_unit_test(test_drop_refused_with_threads),
	};

	return TEST_MAIN(tests, NULL, NULL);
}
