/*
 * Least privilege with the raw system calls (capget, capset, prctl, set*id): what flint
 * keeps, and the drop itself. See caps.h.
 */
#include "vmm/caps.h"
#include "vmm/base/log.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/capability.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#define CAP_BIT(c) (UINT64_C(1) << (c))
#define CAPS_MAX   64 /* what a mask holds; Linux has 41 (cap_last_cap 40) */

void caps_plan(const struct caps_need *need, struct caps_plan *plan)
{
	plan->keep = 0;
	plan->clear_bounding = need->have & CAP_BIT(CAP_SETPCAP);
	snprintf(plan->why, sizeof(plan->why), "nothing flint does from now on needs one");
	/* iommufd counts what a map pins unless the mapper has this (iopt_alloc_pages()). */
	if (!need->fault_mode || need->memlock_unlimited)
		return;
	if (!(need->have & CAP_BIT(CAP_IPC_LOCK))) {
		snprintf(plan->why, sizeof(plan->why),
		         "not even cap_ipc_lock, which flint does not have: fault mode's mappings "
		         "count against RLIMIT_MEMLOCK");
		return;
	}
	plan->keep = CAP_BIT(CAP_IPC_LOCK);
	snprintf(plan->why, sizeof(plan->why),
	         "cap_ipc_lock: fault mode maps guest memory into the IOAS while the guest runs, "
	         "and without it iommufd counts that against RLIMIT_MEMLOCK, which is limited");
}

int caps_parse_id(const char *s, uint32_t *out)
{
	unsigned long long v;
	char *end;

	if (!isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (*end || errno || v >= UINT32_MAX)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

/*
 * @path into @buf, NUL-terminated, with one open and one read: /proc's files give all that
 * fits at once. No stdio, no allocation. 0, or -1.
 */
static int read_proc(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = 0;
	return 0;
}

/* num_threads, the 20th field of /proc/self/stat (the 18th after the comm's last ')'). */
static unsigned threads_from_proc(void)
{
	char buf[1024], *p;
	unsigned long n;

	if (read_proc("/proc/self/stat", buf, sizeof(buf)) || !(p = strrchr(buf, ')')))
		return 0;
	p++;
	for (int field = 3; field <= 20; field++) {
		p += strspn(p, " ");
		if (field == 20)
			break;
		p += strcspn(p, " ");
	}
	n = strtoul(p, NULL, 10);
	return n > UINT_MAX ? 0 : (unsigned)n;
}

unsigned caps_threads(void)
{
	/*
	 * unshare(CLONE_THREAD) does nothing, and the kernel refuses it (EINVAL) exactly when
	 * the thread group has another thread: one system call, and no /proc needed.
	 */
	if (unshare(CLONE_THREAD) == 0)
		return 1;
	if (errno == EINVAL) {
		unsigned n = threads_from_proc();

		return n > 1 ? n : 2; /* more than one, whatever /proc can count */
	}
	return threads_from_proc(); /* unshare filtered out (an outer seccomp): /proc says */
}

/* The process's effective, permitted and inheritable sets (capget, both 32-bit halves). */
struct capsets {
	uint64_t eff, prm, inh;
};

static int get_caps(struct capsets *s)
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3];

	if (syscall(SYS_capget, &hdr, d) < 0)
		return -1;
	s->eff = d[0].effective | (uint64_t)d[1].effective << 32;
	s->prm = d[0].permitted | (uint64_t)d[1].permitted << 32;
	s->inh = d[0].inheritable | (uint64_t)d[1].inheritable << 32;
	return 0;
}

/* Effective and permitted @keep, inheritable none. */
static int set_caps(uint64_t keep)
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3] = {
		{ (uint32_t)keep, (uint32_t)keep, 0 },
		{ (uint32_t)(keep >> 32), (uint32_t)(keep >> 32), 0 },
	};

	return (int)syscall(SYS_capset, &hdr, d);
}

/*
 * The bounding or ambient set as the kernel has it, asking only about the capabilities in
 * @which (prctl fails past the last one).
 */
static uint64_t kernel_set(int option, int arg, uint64_t which)
{
	uint64_t m = 0;

	for (unsigned c = 0; c < CAPS_MAX && which >> c; c++) {
		int r;

		if (!(which & CAP_BIT(c)))
			continue;
		r = option == PR_CAPBSET_READ ? prctl(option, c, 0, 0, 0)
		                              : prctl(option, arg, c, 0, 0);
		if (r < 0)
			break;
		if (r)
			m |= CAP_BIT(c);
	}
	return m;
}

static int fail(const char *what)
{
	log_error("cannot drop privileges: %s: %s", what, strerror(errno));
	return -1;
}

/*
 * Becomes @id: no supplementary groups, the gid, then the uid (last: it ends the right to
 * change the others). The kernel clears the capabilities at the uid change unless told to
 * keep them, which flint does only when it keeps one.
 */
static int switch_id(const struct caps_id *id, bool keep)
{
	if (keep && prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
		return fail("PR_SET_KEEPCAPS");
	if (setgroups(0, NULL) < 0)
		return fail("setgroups (dropping the supplementary groups)");
	if (setresgid(id->gid, id->gid, id->gid) < 0) {
		log_error("--gid %u: cannot become that group: %s", id->gid, strerror(errno));
		return -1;
	}
	if (setresuid(id->uid, id->uid, id->uid) < 0) {
		log_error("--uid %u: cannot become that user: %s", id->uid, strerror(errno));
		return -1;
	}
	if (keep && prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
		return fail("PR_SET_KEEPCAPS");
	return 0;
}

/*
 * Every capability out of the bounding set: one PR_CAPBSET_DROP each, from 0 up to the
 * kernel's last (past it, EINVAL), rather than asking /proc/sys/kernel/cap_last_cap. The
 * capabilities the kernel has (the last, plus one) go in @n.
 */
static int clear_bounding(unsigned *n)
{
	for (*n = 0; *n < CAPS_MAX; ++*n)
		if (prctl(PR_CAPBSET_DROP, *n, 0, 0, 0) < 0) {
			if (errno == EINVAL && *n > 0)
				return 0;
			return fail("clearing the bounding set");
		}
	return 0;
}

/*
 * Bounding set, ambient set, user, then the capabilities: each step needs the next's. The
 * capabilities the kernel has go in @ncaps when the bounding set is cleared.
 */
static int apply(const struct caps_plan *plan, const struct caps_id *id, unsigned *ncaps)
{
	/* Dropping from the bounding set takes CAP_SETPCAP, which goes below. */
	if (plan->clear_bounding && clear_bounding(ncaps))
		return -1;
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0)
		return fail("clearing the ambient set");
	if (id->set && switch_id(id, plan->keep != 0))
		return -1;
	if (set_caps(plan->keep))
		return fail("capset");
	return 0;
}

static int set_no_new_privs(void)
{
	return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ? fail("PR_SET_NO_NEW_PRIVS") : 0;
}

/* Every uid (real, effective, saved) @uid, every gid @gid, no supplementary group. */
static bool ids_are(uint32_t uid, uint32_t gid)
{
	uid_t ru, eu, su;
	gid_t rg, eg, sg;

	return getresuid(&ru, &eu, &su) == 0 && getresgid(&rg, &eg, &sg) == 0 && ru == uid &&
	       eu == uid && su == uid && rg == gid && eg == gid && sg == gid &&
	       getgroups(0, NULL) == 0;
}

/*
 * What the kernel says now, not what flint asked for: the drop is checked, not assumed. One
 * capget; PR_CAPBSET_READ for each of the @ncaps capabilities when the bounding set was
 * cleared (cheaper than a first read of /proc/self/status, and /proc may be gone: the
 * jail); PR_CAP_AMBIENT_IS_SET only for those both permitted and inheritable, as the kernel
 * keeps no other ambient (capabilities(7)): none after a drop that worked. Then
 * no_new_privs and the ids.
 */
static int verify(const struct caps_plan *plan, const struct caps_id *id, unsigned ncaps)
{
	struct capsets now;
	uint64_t bnd = 0, amb;

	if (get_caps(&now))
		return fail("reading the capabilities back");
	if (plan->clear_bounding)
		bnd = kernel_set(PR_CAPBSET_READ, 0,
		                 ncaps >= CAPS_MAX ? ~UINT64_C(0) : CAP_BIT(ncaps) - 1);
	amb = kernel_set(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, now.prm & now.inh);
	if (now.eff != plan->keep || now.prm != plan->keep || now.inh ||
	    (plan->clear_bounding && bnd) || amb) {
		if (!plan->clear_bounding) /* not checked, but said */
			bnd = kernel_set(PR_CAPBSET_READ, 0, ~UINT64_C(0));
		log_error("cannot drop privileges: the kernel says effective %016llx, permitted "
		          "%016llx, inheritable %016llx, bounding %016llx, ambient %016llx; "
		          "flint wants %016llx, %016llx and the rest 0 (bounding: if cleared)",
		          (unsigned long long)now.eff, (unsigned long long)now.prm,
		          (unsigned long long)now.inh, (unsigned long long)bnd,
		          (unsigned long long)amb, (unsigned long long)plan->keep,
		          (unsigned long long)plan->keep);
		return -1;
	}
	if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1) {
		log_error("cannot drop privileges: no_new_privs did not stick");
		return -1;
	}
	if (id->set && !ids_are(id->uid, id->gid)) {
		log_error("--uid %u --gid %u: flint is not that user and group afterwards", id->uid,
		          id->gid);
		return -1;
	}
	return 0;
}

/* Nothing to drop; @id can only be who flint is already (becoming another takes caps). */
static int unprivileged(const struct caps_id *id)
{
	if (id->set && (getuid() != id->uid || geteuid() != id->uid || getgid() != id->gid ||
	                getegid() != id->gid)) {
		log_error("--uid %u --gid %u: flint runs as uid %u gid %u without capabilities, "
		          "so it cannot become another user",
		          id->uid, id->gid, (unsigned)geteuid(), (unsigned)getegid());
		return -1;
	}
	if (set_no_new_privs())
		return -1;
	log_info("privileges: flint has no capabilities (started unprivileged): nothing to drop; "
	         "no_new_privs set (the bounding set stays: clearing it takes CAP_SETPCAP)");
	return 0;
}

static void log_dropped(const struct caps_plan *plan, uint64_t had, const struct caps_id *id)
{
	char as[96] = "";

	if (id->set)
		snprintf(as, sizeof(as), "; now uid %u gid %u, no supplementary groups", id->uid,
		         id->gid);
	log_info("privileges: capabilities dropped (permitted was %016llx), %s, no_new_privs "
	         "set%s; kept %s%s",
	         (unsigned long long)had,
	         plan->clear_bounding ? "bounding and ambient sets cleared"
	                              : "ambient set cleared (the bounding set stays: clearing it "
	                                "takes cap_setpcap, which flint was not given)",
	         as, plan->keep ? "" : "none: ", plan->why);
}

int caps_drop(bool fault_mode, const struct caps_id *id)
{
	struct caps_need need = { .fault_mode = fault_mode };
	unsigned threads = caps_threads();
	struct caps_plan plan;
	struct capsets had;
	struct rlimit rl;
	unsigned ncaps = 0;

	if (threads > 1) {
		log_error("cannot drop privileges: flint has %u threads already, and capabilities "
		          "are per thread (a bug: threads start after the drop)",
		          threads);
		return -1;
	}
	if (get_caps(&had))
		return fail("reading the capabilities");
	need.have = had.prm;
	if (!need.have)
		return unprivileged(id);
	need.memlock_unlimited =
	        getrlimit(RLIMIT_MEMLOCK, &rl) == 0 && rl.rlim_cur == RLIM_INFINITY;
	caps_plan(&need, &plan);
	if (apply(&plan, id, &ncaps) || set_no_new_privs() || verify(&plan, id, ncaps))
		return -1;
	log_dropped(&plan, need.have, id);
	return 0;
}
