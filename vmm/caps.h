/*
 * Least privilege: once everything that needs privilege is open (/dev/kvm, TAPs,
 * /dev/iommu, VFIO cdevs, images, sockets), flint drops every capability it no longer
 * needs (normally all), clears its bounding and ambient sets, sets no_new_privs and, with
 * --uid/--gid, becomes that user. Files already open stay usable; files opened later (an
 * API PATCH /drives) are opened with the permissions of the user flint is by then, without
 * CAP_DAC_OVERRIDE, as Firecracker under its jailer.
 *
 * The decision (what to keep) and the parsing are pure, for the unit tests; caps_drop()
 * applies them to the process.
 */
#ifndef FLINT_CAPS_H
#define FLINT_CAPS_H

#include <stdbool.h>
#include <stdint.h>

/* --uid/--gid: the user flint becomes after the drop; set false: it stays who it is. */
struct caps_id {
	bool set;
	uint32_t uid, gid;
};

/* What the decision depends on: what the VM does from now on, and what flint has. */
struct caps_need {
	/* A VFIO device in fault mode: guest memory is mapped into the IOAS while it runs. */
	bool fault_mode;
	bool memlock_unlimited; /* RLIMIT_MEMLOCK is RLIM_INFINITY */
	uint64_t have;          /* the permitted set now, bit n for capability n */
};

#define CAPS_WHY_MAX 256

struct caps_plan {
	uint64_t keep;          /* bit n: capability n stays effective and permitted */
	char why[CAPS_WHY_MAX]; /* why each kept one stays, or why nothing is; for the log */
	/*
	 * Clearing the bounding set takes cap_setpcap. A flint given some capabilities but not
	 * that one (an unprivileged user with ambient ones) leaves it: no_new_privs already
	 * keeps execve from granting any, and the drop need not fail for it.
	 */
	bool clear_bounding;
};

/* Decides what flint keeps. Pure. */
void caps_plan(const struct caps_need *need, struct caps_plan *plan);

/*
 * A --uid/--gid value: a decimal number 0 to 4294967294 (-1 means "unchanged" to the
 * kernel's set*id calls, so it is no id). 0, or -1 when @s is not one.
 */
int caps_parse_id(const char *s, uint32_t *out);

/*
 * This process's threads. 1 when it has no other: the kernel says so without /proc (it
 * refuses unshare(CLONE_THREAD) exactly when the thread group has another thread, and
 * otherwise the call changes nothing). Otherwise the count from /proc/self/stat, or 2 (at
 * least) when /proc cannot count them (inside the jail). 0 when it cannot tell (unshare
 * refused by an outer seccomp filter, and no /proc).
 */
unsigned caps_threads(void);

/*
 * Drops what @need says flint no longer needs and becomes @id, then checks the kernel
 * agrees; logs what was kept and why at info level. Must run while flint has a single
 * thread (capabilities, the bounding set and no_new_privs are per thread: a thread made
 * earlier would keep them), which it checks. The caller says @fault_mode; the rest of the
 * need is read here. A flint that has no capability to begin with drops nothing (it says
 * so) but still sets no_new_privs. Returns 0, or -1 (logged): the drop failed, or @id
 * cannot be taken.
 */
int caps_drop(bool fault_mode, const struct caps_id *id);

#endif
