/* The jail: namespaces, limits, cgroup v2, the root change. See jail.h. */
#include "vmm/jail.h"
#include "vmm/caps.h"
#include "vmm/base/log.h"
#include "vmm/base/exitcode.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

void jail_opts_init(struct jail_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->nofile = JAIL_DEFAULT_NOFILE;
}

static int why_set(char *why, size_t whylen, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static int why_set(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
	return -1;
}

/* A decimal u64, digits only. */
static int parse_u64(const char *s, uint64_t *out)
{
	unsigned long long v;
	char *end;

	if (!isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (*end || errno)
		return -1;
	*out = v;
	return 0;
}

int jail_parse_limit(struct jail_opts *o, const char *arg, char *why, size_t whylen)
{
	const char *eq = strchr(arg, '=');
	uint64_t v;

	if (!eq || parse_u64(eq + 1, &v) < 0)
		return why_set(why, whylen, "takes NAME=VALUE, VALUE a decimal number");
	/* RLIM_INFINITY is all ones: a value that large would mean "no limit". */
	if (v >= (uint64_t)RLIM_INFINITY)
		return why_set(why, whylen, "%llu is too large for a limit", (unsigned long long)v);
	if ((size_t)(eq - arg) == 5 && !strncmp(arg, "fsize", 5)) {
		o->fsize_set = true;
		o->fsize = v;
	} else if ((size_t)(eq - arg) == 7 && !strncmp(arg, "no-file", 7)) {
		o->nofile = v;
	} else {
		return why_set(why, whylen, "the limits are fsize and no-file (the jailer's)");
	}
	return 0;
}

/* An interface file's name: lower-case letters, digits, '_' and '.', with a '.'. */
static bool key_ok(const char *k, size_t len)
{
	if (!len || len >= JAIL_KEY_MAX || k[0] == '.' || !memchr(k, '.', len))
		return false;
	for (size_t i = 0; i < len; i++)
		if (!islower((unsigned char)k[i]) && !isdigit((unsigned char)k[i]) && k[i] != '_' &&
		    k[i] != '.')
			return false;
	return true;
}

int jail_parse_cgroup_set(struct jail_opts *o, const char *arg, char *why, size_t whylen)
{
	const char *eq = strchr(arg, '=');
	struct jail_cgroup_set *s;
	size_t klen, vlen;

	if (!eq)
		return why_set(why, whylen, "takes FILE=VALUE, e.g. memory.max=512M");
	klen = (size_t)(eq - arg);
	vlen = strlen(eq + 1);
	if (!key_ok(arg, klen))
		return why_set(why, whylen,
		               "\"%.*s\" is not a cgroup interface file name (such as cpu.max)",
		               (int)(klen < JAIL_KEY_MAX ? klen : JAIL_KEY_MAX), arg);
	if ((klen == 12 && !strncmp(arg, "cgroup.procs", klen)) ||
	    (klen == 14 && !strncmp(arg, "cgroup.threads", klen)))
		return why_set(why, whylen, "flint places itself in the cgroup; %.*s is not set",
		               (int)klen, arg);
	if (!vlen || vlen >= JAIL_VALUE_MAX || strpbrk(eq + 1, "\n\r"))
		return why_set(why, whylen, "the value must be one line of 1 to %d bytes",
		               JAIL_VALUE_MAX - 1);
	for (size_t i = 0; i < o->nset; i++)
		if (strlen(o->set[i].key) == klen && !strncmp(o->set[i].key, arg, klen))
			return why_set(why, whylen, "%.*s is set twice", (int)klen, arg);
	if (o->nset == JAIL_CGROUP_SET_MAX)
		return why_set(why, whylen, "at most %d files", JAIL_CGROUP_SET_MAX);
	s = &o->set[o->nset++];
	memcpy(s->key, arg, klen);
	s->key[klen] = 0;
	memcpy(s->value, eq + 1, vlen + 1);
	return 0;
}

/* No empty, "." or ".." component: what is named is what is made. */
static bool path_plain(const char *p)
{
	while (*p == '/') {
		const char *c = p + 1, *e = strchrnul(c, '/');
		size_t n = (size_t)(e - c);

		if (!n || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
			return false;
		p = e;
	}
	return !*p;
}

int jail_check(const struct jail_opts *o, char *why, size_t whylen)
{
	size_t rl = strlen(JAIL_CGROUP_ROOT);

	if (!o->root) {
		if (o->cgroup || o->nset || o->fsize_set || o->nofile != JAIL_DEFAULT_NOFILE)
			return why_set(
			        why, whylen,
			        "--cgroup, --cgroup-set and --resource-limit are the jail's: "
			        "they need --chroot");
		return 0;
	}
	if (!*o->root)
		return why_set(why, whylen, "--chroot: an empty path");
	if (o->nset && !o->cgroup)
		return why_set(why, whylen, "--cgroup-set needs --cgroup");
	if (o->cgroup && (strncmp(o->cgroup, JAIL_CGROUP_ROOT "/", rl + 1) ||
	                  strlen(o->cgroup) >= JAIL_PATH_MAX || !path_plain(o->cgroup)))
		return why_set(why, whylen,
		               "--cgroup %s: a cgroup is a directory under " JAIL_CGROUP_ROOT
		               "/, named without \".\", \"..\" or empty components",
		               MSG_ESC(o->cgroup));
	return 0;
}

void jail_controller(const char *key, char *out, size_t len)
{
	size_t n = strcspn(key, ".");

	if ((n == 6 && !strncmp(key, "cgroup", 6)) || n >= len)
		n = 0;
	memcpy(out, key, n);
	out[n] = 0;
}

/* Repeated and trailing slashes out ("/" stays). The new length. */
static size_t squeeze_slashes(char *p)
{
	size_t n = 0;

	for (size_t i = 0; p[i]; i++)
		if (p[i] != '/' || !n || p[n - 1] != '/')
			p[n++] = p[i];
	if (n > 1 && p[n - 1] == '/')
		n--;
	p[n] = 0;
	return n;
}

int jail_plan_binds(const char *const *paths, size_t n, const char *cwd, struct jail_bind *out,
                    char *why, size_t whylen)
{
	size_t nb = 0;

	for (size_t i = 0; i < n; i++) {
		char dir[JAIL_PATH_MAX];
		const char *p = paths[i], *slash;
		int len;

		if (!p || !*p)
			continue;
		slash = strrchr(p, '/');
		if (p[0] == '/')
			len = snprintf(dir, sizeof(dir), "%.*s", (int)(slash - p), p);
		else if (slash)
			len = snprintf(dir, sizeof(dir), "%s/%.*s", cwd, (int)(slash - p), p);
		else
			len = snprintf(dir, sizeof(dir), "%s", cwd);
		if (len < 0 || (size_t)len >= sizeof(dir))
			return why_set(why, whylen, "%s: the path is too long", MSG_ESC(p));
		/* "/a//b/" names the directory "/a/b": the mount point is made so. */
		len = (int)squeeze_slashes(dir);
		if (!len || !strcmp(dir, "/"))
			return why_set(why, whylen,
			               "%s: a socket directly in / would bring the host's whole "
			               "root into the jail; give it a directory of its own",
			               MSG_ESC(p));
		if (dir[0] != '/' || !path_plain(dir))
			return why_set(why, whylen,
			               "%s: its directory is named with \".\" or \"..\"; name it "
			               "plainly",
			               MSG_ESC(p));
		for (size_t k = 0; k < nb && dir[0]; k++)
			if (!strcmp(out[k].dir, dir))
				dir[0] = 0;
		if (!dir[0])
			continue;
		if (nb == JAIL_BINDS_MAX)
			return why_set(why, whylen, "more than %d directories to bind",
			               JAIL_BINDS_MAX);
		memcpy(out[nb++].dir, dir, (size_t)len + 1);
	}
	return (int)nb;
}

size_t jail_plan_start_limits(const struct jail_opts *o, struct jail_limit out[3])
{
	size_t n = 0;

	out[n++] = (struct jail_limit){ RLIMIT_NOFILE, "no-file", (rlim_t)o->nofile };
	/* A core of flint would hold guest memory: never written. */
	out[n++] = (struct jail_limit){ RLIMIT_CORE, "core", 0 };
	if (o->fsize_set)
		out[n++] = (struct jail_limit){ RLIMIT_FSIZE, "fsize", (rlim_t)o->fsize };
	return n;
}

bool jail_plan_memlock(bool fault_mode, struct jail_limit *out)
{
	if (fault_mode)
		return false;
	*out = (struct jail_limit){ RLIMIT_MEMLOCK, "memlock", 0 };
	return true;
}

/* -------- the process side -------- */

static int fail(const char *what, const char *path)
{
	int e = errno;

	log_error("jail: %s%s%s: %s", what, path ? " " : "", path ? MSG_ESC(path) : "",
	          strerror(e));
	return -1;
}

/* @value into @dir/@file, as one write (cgroup files take one value per write). */
static int write_file(const char *dir, const char *file, const char *value)
{
	char path[JAIL_PATH_MAX + JAIL_KEY_MAX + 2];
	size_t len = strlen(value);
	int fd, r = 0;
	ssize_t n;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		if (errno == ENOENT && strcmp(file, "cgroup.procs"))
			log_error("jail: cannot write %s to %s: no such file (is its controller "
			          "enabled for the cgroup, or the name right?)",
			          MSG_ESC(value), MSG_ESC(path));
		else
			log_error("jail: cannot write %s to %s: %s", MSG_ESC(value), MSG_ESC(path),
			          strerror(errno));
		return -1;
	}
	n = write(fd, value, len);
	if (n != (ssize_t)len) {
		log_error("jail: cannot write %s to %s: %s", MSG_ESC(value), MSG_ESC(path),
		          n < 0 ? strerror(errno) : "short write");
		r = -1;
	}
	close(fd);
	return r;
}

/*
 * The cgroup, made as far as it is missing; the controllers its files need enabled in
 * each ancestor's cgroup.subtree_control (the jailer does the same); the files written.
 * By the parent, before the fork: the child only joins it.
 */
static int cgroup_prepare(const struct jail_opts *o)
{
	char path[JAIL_PATH_MAX], ctl[JAIL_KEY_MAX + 1];
	size_t rl = strlen(JAIL_CGROUP_ROOT);
	struct statfs sf;
	char *p;

	if (statfs(JAIL_CGROUP_ROOT, &sf) < 0)
		return fail("cannot read the file system at", JAIL_CGROUP_ROOT);
	if (sf.f_type != CGROUP2_SUPER_MAGIC) {
		log_error("jail: --cgroup %s: " JAIL_CGROUP_ROOT " is not cgroup v2 (flint "
		          "uses only the unified hierarchy)",
		          MSG_ESC(o->cgroup));
		return -1;
	}
	snprintf(path, sizeof(path), "%s", o->cgroup);
	/* Each directory from the root down: made, then its children given the controllers. */
	for (p = path + rl;; p++) {
		bool last = !*p;

		if (*p != '/' && !last)
			continue;
		*p = 0;
		if (p > path + rl && mkdir(path, 0755) < 0 && errno != EEXIST)
			return fail("cannot make the cgroup", path);
		if (last)
			break;
		for (size_t i = 0; i < o->nset; i++) {
			ctl[0] = '+';
			jail_controller(o->set[i].key, ctl + 1, sizeof(ctl) - 1);
			if (ctl[1] && write_file(path, "cgroup.subtree_control", ctl))
				return -1;
		}
		*p = '/';
	}
	for (size_t i = 0; i < o->nset; i++)
		if (write_file(o->cgroup, o->set[i].key, o->set[i].value))
			return -1;
	return 0;
}

static int set_limit(const struct jail_limit *l)
{
	struct rlimit rl = { l->value, l->value };

	if (setrlimit(l->resource, &rl) < 0) {
		log_error("jail: cannot set RLIMIT %s to %llu: %s", l->name,
		          (unsigned long long)l->value, strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * A kernel without IPC namespaces refuses CLONE_NEWIPC (EINVAL). When it has no System V
 * IPC and no POSIX message queues either, which is all an IPC namespace holds, there is
 * nothing to share, and the jail goes on without one (the rig's kernel is such).
 */
static bool no_ipc(void)
{
	return access("/proc/sysvipc", F_OK) < 0 && access("/proc/sys/fs/mqueue", F_OK) < 0 &&
	       errno == ENOENT;
}

/* The child's half of jail_start(). */
static int child_setup(const struct jail_opts *o, bool *ipc)
{
	struct jail_limit lim[3];
	size_t n = jail_plan_start_limits(o, lim);

	/* A parent gone (SIGKILL) must not leave a VM nobody waits for. */
	if (prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0) < 0)
		return fail("PR_SET_PDEATHSIG", NULL);
	if (o->cgroup && write_file(o->cgroup, "cgroup.procs", "0"))
		return -1;
	if (unshare(CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS) < 0) {
		if (errno != EINVAL || !no_ipc())
			return fail("unshare (mount, IPC, UTS namespaces)", NULL);
		if (unshare(CLONE_NEWNS | CLONE_NEWUTS) < 0)
			return fail("unshare (mount, UTS namespaces)", NULL);
		*ipc = false;
	}
	/* Nothing mounted from now on reaches the host, nor the host's mounts us. */
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return fail("making mount propagation private", NULL);
	for (size_t i = 0; i < n; i++)
		if (set_limit(&lim[i]))
			return -1;
	return 0;
}

/* The parent's only job: pass SIGINT/SIGTERM on. The child's pid is the handler's. */
static volatile sig_atomic_t forward_to;

static void forward(int sig)
{
	if (forward_to > 0)
		kill((pid_t)forward_to, sig);
}

/* The parent: waits for @pid, forwarding signals; its exit code. */
static int parent_wait(pid_t pid, const sigset_t *old)
{
	struct sigaction sa = { .sa_handler = forward };
	int st;
	pid_t r;

	forward_to = pid;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigprocmask(SIG_SETMASK, old, NULL);
	while ((r = waitpid(pid, &st, 0)) < 0 && errno == EINTR)
		;
	if (r < 0) {
		log_error("jail: waiting for the jailed flint (pid %d): %s", (int)pid,
		          strerror(errno));
		return FLINT_EXIT_INTERNAL;
	}
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	log_error("jail: the jailed flint (pid %d) was ended by signal %d (%s)", (int)pid,
	          WTERMSIG(st), strsignal(WTERMSIG(st)));
	return 128 + WTERMSIG(st);
}

static int check_binds(const char *sock)
{
	char cwd[JAIL_PATH_MAX], why[JAIL_WHY_MAX + JAIL_PATH_MAX];
	struct jail_bind b[JAIL_BINDS_MAX];

	if (!getcwd(cwd, sizeof(cwd)))
		return fail("getcwd", NULL);
	if (jail_plan_binds(&sock, 1, cwd, b, why, sizeof(why)) < 0) {
		log_error("jail: --api-sock %s", why);
		return -1;
	}
	return 0;
}

int jail_start(const struct jail_opts *o, struct jail *j)
{
	sigset_t block, old;
	struct stat st;
	pid_t pid;

	memset(j, 0, sizeof(*j));
	j->opts = o;
	if (!o->root)
		return -1;
	if (!realpath(o->root, j->root)) {
		fail("--chroot", o->root);
		return FLINT_EXIT_INTERNAL;
	}
	if (stat(j->root, &st) < 0 || !S_ISDIR(st.st_mode) || !strcmp(j->root, "/")) {
		log_error("jail: --chroot %s: %s", MSG_ESC(o->root),
		          !strcmp(j->root, "/") ? "the host's root is no jail" : "not a directory");
		return FLINT_EXIT_INTERNAL;
	}
	/* A socket that cannot be bound in is refused now, not at the start of the VM. */
	if (o->api_sock && check_binds(o->api_sock))
		return FLINT_EXIT_INTERNAL;
	if (o->cgroup && cgroup_prepare(o))
		return FLINT_EXIT_INTERNAL;
	j->parent_pid = (int)getpid();
	/* Until the parent forwards and the child's loop takes them, they wait (jail.h). */
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigprocmask(SIG_BLOCK, &block, &old);
	if (unshare(CLONE_NEWPID) < 0) {
		fail("unshare (PID namespace)", NULL);
		sigprocmask(SIG_SETMASK, &old, NULL);
		return FLINT_EXIT_INTERNAL;
	}
	pid = fork();
	if (pid < 0) {
		fail("fork into the PID namespace", NULL);
		sigprocmask(SIG_SETMASK, &old, NULL);
		return FLINT_EXIT_INTERNAL;
	}
	if (pid > 0)
		return parent_wait(pid, &old);
	j->child = true;
	/* SIGINT/SIGTERM stay blocked: the loop unblocks them once it handles them. */
	j->ipc = true;
	return child_setup(o, &j->ipc) ? FLINT_EXIT_INTERNAL : -1;
}

void jail_log_start(const struct jail *j)
{
	const struct jail_opts *o = j->opts;
	char cg[1024] = "", fsize[48] = "";
	size_t n = 0;

	if (!j->child)
		return;
	if (o->cgroup) {
		n = (size_t)snprintf(cg, sizeof(cg), "; cgroup %s", MSG_ESC(o->cgroup));
		for (size_t i = 0; i < o->nset && n < sizeof(cg); i++)
			n += (size_t)snprintf(cg + n, sizeof(cg) - n, "%s%s=%s", i ? ", " : " (",
			                      o->set[i].key, MSG_ESC(o->set[i].value));
		if (o->nset && n < sizeof(cg))
			snprintf(cg + n, sizeof(cg) - n, ")");
	}
	if (o->fsize_set)
		snprintf(fsize, sizeof(fsize), ", fsize %llu", (unsigned long long)o->fsize);
	log_info("jail: flint is pid 1 of new PID, mount, %s namespaces (pid %d waits for it "
	         "outside)%s; limits: no-file %llu, core 0%s; root %s once the VM is built",
	         j->ipc ? "IPC and UTS"
	                : "UTS (no IPC: this kernel has no System V IPC or "
	                  "POSIX message queues to share)",
	         j->parent_pid, cg, (unsigned long long)o->nofile, fsize, MSG_ESC(j->root));
}

/* @root then @dir into @out; -1 (logged) when it does not fit. */
static int under_root(char *out, size_t len, const char *root, const char *dir)
{
	size_t rl = strlen(root), dl = strlen(dir);

	if (rl + dl >= len) {
		log_error("jail: cannot bind %s into the root: the path is too long", MSG_ESC(dir));
		return -1;
	}
	memcpy(out, root, rl);
	memcpy(out + rl, dir, dl + 1);
	return 0;
}

/* Every component of @dir under the root made, none of them a symlink (it could lead out). */
static int make_mountpoint(const char *root, const char *dir)
{
	char path[2 * JAIL_PATH_MAX];
	size_t rl = strlen(root);
	struct stat st;

	if (under_root(path, sizeof(path), root, dir))
		return -1;
	for (char *p = path + rl + 1;; p++) {
		bool last = !*p;

		if (*p != '/' && !last)
			continue;
		*p = 0;
		if (lstat(path, &st) == 0) {
			if (!S_ISDIR(st.st_mode)) {
				log_error(
				        "jail: cannot bind %s into the root: %s is not a directory",
				        MSG_ESC(dir), MSG_ESC(path));
				return -1;
			}
		} else if (errno != ENOENT || mkdir(path, 0755) < 0) {
			return fail("cannot make the mount point", path);
		}
		if (last)
			return 0;
		*p = '/';
	}
}

/* @dir of the host at the same path under the root: no devices, set-uid or programs. */
static int bind_dir(const char *root, const char *dir)
{
	char target[2 * JAIL_PATH_MAX];

	if (make_mountpoint(root, dir) || under_root(target, sizeof(target), root, dir))
		return -1;
	if (mount(dir, target, NULL, MS_BIND, NULL) < 0)
		return fail("cannot bind-mount into the root:", dir);
	if (mount(NULL, target, NULL, MS_BIND | MS_REMOUNT | MS_NOSUID | MS_NODEV | MS_NOEXEC,
	          NULL) < 0)
		return fail("cannot remount nosuid,nodev,noexec:", target);
	return 0;
}

/* pivot_root wants the new root to be a mount point: the root bound onto itself. */
static int root_mount(const char *root)
{
	if (mount(root, root, NULL, MS_BIND | MS_REC, NULL) < 0)
		return fail("cannot bind-mount the root onto itself:", root);
	return 0;
}

/* The root becomes the jail's, the host's is detached. */
static int pivot(const char *root)
{
	if (chdir(root) < 0)
		return fail("chdir", root);
	/* new and old root the same directory: the old one ends up on top, then goes. */
	if (syscall(SYS_pivot_root, ".", ".") < 0)
		return fail("pivot_root", root);
	if (umount2(".", MNT_DETACH) < 0)
		return fail("detaching the host's root", NULL);
	if (chdir("/") < 0)
		return fail("chdir /", NULL);
	return 0;
}

int jail_enter(struct jail *j, bool fault_mode, const char *vsock_uds)
{
	const char *socks[2] = { j->opts ? j->opts->api_sock : NULL, vsock_uds };
	struct jail_bind binds[JAIL_BINDS_MAX];
	char cwd[JAIL_PATH_MAX], why[JAIL_WHY_MAX + JAIL_PATH_MAX], list[1024] = "none", lock[96];
	struct jail_limit memlock;
	size_t n = 0;
	int nb;

	if (!j->child || j->entered)
		return 0;
	/* caps_drop() checks this too, but by then the jail is made and its root has no /proc. */
	if (caps_threads() > 1) {
		log_error("jail: flint has %u threads already, and a thread made before the drop "
		          "would keep its privileges (a bug: threads start after it)",
		          caps_threads());
		return -1;
	}
	if (!getcwd(cwd, sizeof(cwd)))
		return fail("getcwd", NULL);
	nb = jail_plan_binds(socks, 2, cwd, binds, why, sizeof(why));
	if (nb < 0) {
		log_error("jail: %s", why);
		return -1;
	}
	if (root_mount(j->root))
		return -1;
	for (int i = 0; i < nb; i++) {
		if (bind_dir(j->root, binds[i].dir))
			return -1;
		n += (size_t)snprintf(list + n, n < sizeof(list) ? sizeof(list) - n : 0, "%s%s",
		                      i ? ", " : "", MSG_ESC(binds[i].dir));
	}
	if (pivot(j->root))
		return -1;
	j->entered = true;
	snprintf(lock, sizeof(lock), "memlock left as it is (a device in fault mode)");
	if (jail_plan_memlock(fault_mode, &memlock)) {
		if (set_limit(&memlock))
			return -1;
		snprintf(lock, sizeof(lock), "memlock 0");
	}
	log_info("jail: root is now %s (pivot_root, the host's detached); bound in at the same "
	         "path: %s; %s",
	         MSG_ESC(j->root), list, lock);
	return 0;
}
