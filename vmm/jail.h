/*
 * The jail (--chroot DIR), flint's own take on what Firecracker's jailer does around it:
 * new PID, mount, IPC and UTS namespaces, resource limits, an optional cgroup v2, and
 * DIR as the root once everything the VM needs is open.
 *
 * Two steps, because a PID namespace holds only the children of whoever made it and a
 * root change must wait for the host's files:
 *  - jail_start(), first thing after the command line: prepares the cgroup, forks into a
 *    new PID namespace and returns in the child, which joins the cgroup, unshares the
 *    mount (propagation made private), IPC and UTS namespaces and sets its limits. The
 *    parent stays outside, forwards SIGINT/SIGTERM and ends with the child's exit code.
 *  - jail_enter(), where flint drops its capabilities (vmm.c, just before caps_drop()):
 *    the directories of the sockets that must stay reachable by their path (the API
 *    socket, the vsock uds_path) are bind-mounted into DIR at the same path, DIR becomes
 *    the root (pivot_root, the old one detached) and RLIMIT_MEMLOCK is lowered unless
 *    fault mode needs it.
 * Paths flint opens after the second step (PATCH /drives, PUT /logger) are DIR's.
 *
 * Parsing and the plans (what is bound, which limits, which controllers) are pure, for
 * the unit tests.
 */
#ifndef FLINT_JAIL_H
#define FLINT_JAIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>

#define JAIL_CGROUP_ROOT    "/sys/fs/cgroup"
#define JAIL_CGROUP_SET_MAX 16
#define JAIL_KEY_MAX        64
#define JAIL_VALUE_MAX      256
/* Firecracker's jailer: RLIMIT_NOFILE 2048 unless --resource-limit no-file= says. */
#define JAIL_DEFAULT_NOFILE 2048
#define JAIL_BINDS_MAX      4
#define JAIL_PATH_MAX       4096
#define JAIL_WHY_MAX        256

/* --cgroup-set KEY=VALUE: one interface file of the cgroup and what is written to it. */
struct jail_cgroup_set {
	char key[JAIL_KEY_MAX];
	char value[JAIL_VALUE_MAX];
};

struct jail_opts {
	const char *root;   /* --chroot DIR; NULL: no jail */
	const char *cgroup; /* --cgroup PATH, under JAIL_CGROUP_ROOT; NULL: none */
	struct jail_cgroup_set set[JAIL_CGROUP_SET_MAX];
	size_t nset;
	uint64_t nofile; /* --resource-limit no-file= */
	bool fsize_set;  /* --resource-limit fsize= */
	uint64_t fsize;
	const char *api_sock; /* the API socket flint binds (main sets it): bound into DIR */
};

/* What jail_start() left for jail_enter() and the log. */
struct jail {
	const struct jail_opts *opts;
	char root[JAIL_PATH_MAX]; /* realpath of --chroot */
	bool child;               /* this process is the jailed one */
	bool entered;             /* DIR is the root */
	bool ipc;                 /* in an IPC namespace of its own (see jail.c's no_ipc()) */
	int parent_pid;           /* the waiting parent, as the host sees it */
};

/* One bind mount jail_enter() makes: @dir of the host at the same path inside the root. */
struct jail_bind {
	char dir[JAIL_PATH_MAX];
};

/* One limit jail_start() or jail_enter() sets (soft and hard alike). */
struct jail_limit {
	int resource; /* RLIMIT_* */
	const char *name;
	rlim_t value;
};

void jail_opts_init(struct jail_opts *o);
/*
 * --resource-limit NAME=VALUE (the jailer's: fsize, no-file; VALUE a decimal u64) and
 * --cgroup-set KEY=VALUE (KEY an interface file name such as cpu.max, not cgroup.procs or
 * cgroup.threads: placement is flint's; VALUE one line, what the file takes). 0, or -1
 * with the reason in @why.
 */
int jail_parse_limit(struct jail_opts *o, const char *arg, char *why, size_t whylen);
int jail_parse_cgroup_set(struct jail_opts *o, const char *arg, char *why, size_t whylen);
/*
 * The options together: --cgroup-set needs --cgroup, which is an absolute path strictly
 * under /sys/fs/cgroup without "." or ".." components; every jail option needs --chroot.
 * 0, or -1 with the reason.
 */
int jail_check(const struct jail_opts *o, char *why, size_t whylen);
/* The controller a cgroup file belongs to ("cpu" for cpu.max); "" for cgroup.* files. */
void jail_controller(const char *key, char *out, size_t len);
/*
 * The directories to bind into the root for @paths (sockets; NULL entries skipped): each
 * one's directory, made absolute against @cwd, once. A socket directly in / cannot be
 * bound without the whole host; that is refused. Returns how many (<= JAIL_BINDS_MAX),
 * or -1 with the reason.
 */
int jail_plan_binds(const char *const *paths, size_t n, const char *cwd, struct jail_bind *out,
                    char *why, size_t whylen);
/* The limits set at the start: no-file, core 0, fsize when asked. Returns how many (<= 3). */
size_t jail_plan_start_limits(const struct jail_opts *o, struct jail_limit out[3]);
/*
 * RLIMIT_MEMLOCK once the VM is built: 0 (flint locks nothing itself) unless a device is
 * in fault mode, where iommufd may count mappings against it (caps.h): false, left as is.
 */
bool jail_plan_memlock(bool fault_mode, struct jail_limit *out);

/*
 * Without --chroot, nothing (-1). Otherwise as above; returns -1 in the jailed child, the
 * exit code to leave with in the parent (the child's, 128 + N when a signal N ended it),
 * or 70 (logged) when the jail cannot be made.
 */
int jail_start(const struct jail_opts *o, struct jail *j);
/* One info line of what jail_start() did: called once logging is set up. */
void jail_log_start(const struct jail *j);
/*
 * The root change (nothing when not jailed or done already); @vsock_uds is the vsock's
 * uds_path or NULL. Must run single-threaded (the kernel refuses otherwise). 0, or -1
 * (logged).
 */
int jail_enter(struct jail *j, bool fault_mode, const char *vsock_uds);

#endif
