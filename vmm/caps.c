/* Least privilege with libcap-ng: what flint keeps, and the drop itself. See caps.h. */
#include "vmm/caps.h"
#include "vmm/base/log.h"

#include <cap-ng.h>
#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
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

unsigned caps_threads(void)
{
	FILE *f = fopen("/proc/self/status", "re");
	char line[256];
	unsigned n = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Threads: %u", &n) == 1)
			break;
	fclose(f);
	return n;
}

/* @which of the state capng_get_caps_process() read, as a mask. */
static uint64_t mask_of(capng_type_t which)
{
	uint64_t m = 0;

	for (unsigned c = 0; c < CAPS_MAX; c++)
		if (capng_have_capability(which, c) > 0)
			m |= CAP_BIT(c);
	return m;
}

/* The bounding or ambient set as the kernel has it (prctl fails past its last). */
static uint64_t kernel_set(int option, int arg)
{
	uint64_t m = 0;

	for (unsigned c = 0; c < CAPS_MAX; c++) {
		int r = option == PR_CAPBSET_READ ? prctl(option, c, 0, 0, 0)
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

/* Bounding set, ambient set, user, then the capabilities: each step needs the next's. */
static int apply(const struct caps_plan *plan, const struct caps_id *id)
{
	capng_clear(CAPNG_SELECT_ALL);
	for (unsigned c = 0; c < CAPS_MAX; c++)
		if (plan->keep & CAP_BIT(c))
			capng_update(CAPNG_ADD, CAPNG_EFFECTIVE | CAPNG_PERMITTED, c);
	/* Dropping from the bounding set takes CAP_SETPCAP, which goes below. */
	if (plan->clear_bounding && capng_apply(CAPNG_SELECT_BOUNDS))
		return fail("clearing the bounding set");
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0)
		return fail("clearing the ambient set");
	if (id->set && switch_id(id, plan->keep != 0))
		return -1;
	if (capng_apply(CAPNG_SELECT_CAPS))
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

/* What the kernel says now, not what libcap-ng was told: the drop is checked, not assumed. */
static int verify(const struct caps_plan *plan, const struct caps_id *id)
{
	uint64_t eff, prm, inh, bnd = kernel_set(PR_CAPBSET_READ, 0),
	                        amb = kernel_set(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET);

	if (capng_get_caps_process())
		return fail("reading the capabilities back");
	eff = mask_of(CAPNG_EFFECTIVE);
	prm = mask_of(CAPNG_PERMITTED);
	inh = mask_of(CAPNG_INHERITABLE);
	if (eff != plan->keep || prm != plan->keep || inh || (plan->clear_bounding && bnd) || amb) {
		log_error("cannot drop privileges: the kernel says effective %016llx, permitted "
		          "%016llx, inheritable %016llx, bounding %016llx, ambient %016llx; "
		          "flint wants %016llx, %016llx and the rest 0 (bounding: if cleared)",
		          (unsigned long long)eff, (unsigned long long)prm, (unsigned long long)inh,
		          (unsigned long long)bnd, (unsigned long long)amb,
		          (unsigned long long)plan->keep, (unsigned long long)plan->keep);
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
	struct rlimit rl;

	if (threads > 1) {
		log_error("cannot drop privileges: flint has %u threads already, and capabilities "
		          "are per thread (a bug: threads start after the drop)",
		          threads);
		return -1;
	}
	if (capng_get_caps_process())
		return fail("reading the capabilities");
	need.have = mask_of(CAPNG_PERMITTED);
	if (!need.have)
		return unprivileged(id);
	need.memlock_unlimited =
	        getrlimit(RLIMIT_MEMLOCK, &rl) == 0 && rl.rlim_cur == RLIM_INFINITY;
	caps_plan(&need, &plan);
	if (apply(&plan, id) || set_no_new_privs() || verify(&plan, id))
		return -1;
	log_dropped(&plan, need.have, id);
	return 0;
}
