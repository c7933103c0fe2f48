/* seccomp per thread: the lists compiled with libseccomp, the modes. See sandbox.h. */
#include "vmm/sandbox.h"
#include "vmm/base/log.h"
#include "vmm/exitcode.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/ioctl.h>
#include <unistd.h>

/* The sanitizer build (build/asan/flint): ASan, LSan and UBSan make calls of their own. */
#if defined(__SANITIZE_ADDRESS__)
#define SANDBOX_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANDBOX_SANITIZED 1
#endif
#endif

#ifdef SANDBOX_SANITIZED
/*
 * The one place the sanitizer build allows more, in every thread's list, so that the
 * tests that run build/asan/flint under its filter prove the lists flint ships. None of
 * these is in flint's plain build. LSan's leak check at exit stops the world: it clones a
 * tracer (a process sharing the address space, its parent's signals blocked) that checks
 * its parent is alive, lists /proc/<pid>/task (getdents), ptrace-attaches to every thread,
 * reads their registers and waits on them. A report (ASan, UBSan) reads /proc/self/maps
 * and the binary to symbolize (open, fcntl, read, mmap), and may ask for its own name.
 */
static const int sanitizer_calls[] = {
	SCMP_SYS(clone),
	SCMP_SYS(clone3),
	SCMP_SYS(ptrace),
	SCMP_SYS(wait4),
	SCMP_SYS(waitid),
	SCMP_SYS(prctl),
	SCMP_SYS(getppid),
	SCMP_SYS(getdents),
	SCMP_SYS(getdents64),
	SCMP_SYS(openat),
	SCMP_SYS(open),
	SCMP_SYS(fcntl),
	SCMP_SYS(readlink),
	SCMP_SYS(readlinkat),
	SCMP_SYS(sched_yield),
	SCMP_SYS(sigaltstack),
	SCMP_SYS(getpid),
	SCMP_SYS(gettid),
	SCMP_SYS(kill),
	SCMP_SYS(tgkill),
	SCMP_SYS(rt_sigaction),
	SCMP_SYS(mmap),
	SCMP_SYS(munmap),
	SCMP_SYS(mprotect),
	SCMP_SYS(madvise),
	SCMP_SYS(mremap),
	SCMP_SYS(read),
	SCMP_SYS(pread64),
	SCMP_SYS(close),
	SCMP_SYS(fstat),
	SCMP_SYS(newfstatat),
	SCMP_SYS(lseek),
	SCMP_SYS(write),
	SCMP_SYS(getrlimit),
	SCMP_SYS(prlimit64),
	SCMP_SYS(sched_getaffinity),
	SCMP_SYS(exit),
	SCMP_SYS(exit_group),
	SCMP_SYS(uname),
	SCMP_SYS(set_robust_list),
	SCMP_SYS(rt_sigprocmask),
	SCMP_SYS(rt_sigreturn),
	SCMP_SYS(futex),
	SCMP_SYS(nanosleep),
	SCMP_SYS(clock_nanosleep),
};
/* A report asks whether stderr is a terminal (isatty) before it colours its lines. */
static const unsigned long sanitizer_ioctls[] = { TCGETS };
#endif

static int (*const lists[SANDBOX_KINDS])(scmp_filter_ctx) = {
	[SANDBOX_LOOP] = sandbox_loop_rules,
	[SANDBOX_VCPU] = sandbox_vcpu_rules,
	[SANDBOX_IO] = sandbox_io_rules,
};
static const char *const kind_names[SANDBOX_KINDS] = {
	[SANDBOX_LOOP] = "loop",
	[SANDBOX_VCPU] = "vcpu",
	[SANDBOX_IO] = "I/O",
};

/*
 * Names of system calls by number, for the SIGSYS line (a handler cannot look them up).
 * Static: the handler reads it until the process ends, after any struct is gone; filled
 * once, and never freed (it stays reachable, so no leak checker counts it).
 */
#define NAMES_MAX 512
static const char *names[NAMES_MAX];

static void fill_names(void)
{
	if (names[0])
		return;
	for (int i = 0; i < NAMES_MAX; i++)
		names[i] = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, i);
}

int sandbox_mode_parse(const char *s, enum sandbox_mode *out)
{
	for (int m = SANDBOX_ON; m <= SANDBOX_OFF; m++)
		if (!strcmp(s, sandbox_mode_name((enum sandbox_mode)m))) {
			*out = (enum sandbox_mode)m;
			return 0;
		}
	return -1;
}

const char *sandbox_mode_name(enum sandbox_mode mode)
{
	return mode == SANDBOX_ON ? "on" : mode == SANDBOX_LOG ? "log" : "off";
}

int sandbox_allow(scmp_filter_ctx ctx, const int *calls, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		int r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, calls[i], 0);
		if (r)
			return r;
	}
	return 0;
}

int sandbox_allow_ioctls(scmp_filter_ctx ctx, const unsigned long *reqs, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		/* The kernel takes the request as an unsigned int: compare those 32 bits only. */
		int r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
		                         SCMP_A1_32(SCMP_CMP_EQ, (uint32_t)reqs[i]));
		if (r)
			return r;
	}
	return 0;
}

/* The BPF program libseccomp made of @ctx, through a memfd (2.5 exports only to an fd). */
static int export(scmp_filter_ctx ctx, struct sock_fprog *prog)
{
	int fd = memfd_create("flint-seccomp", MFD_CLOEXEC), r;
	struct stat st;
	void *buf = NULL;

	if (fd < 0)
		return -errno;
	r = seccomp_export_bpf(ctx, fd);
	if (!r && fstat(fd, &st) < 0)
		r = -errno;
	if (!r && (st.st_size <= 0 || st.st_size % sizeof(struct sock_filter) ||
	           st.st_size / sizeof(struct sock_filter) > BPF_MAXINSNS))
		r = -E2BIG;
	if (!r && !(buf = malloc((size_t)st.st_size)))
		r = -ENOMEM;
	if (!r && pread(fd, buf, (size_t)st.st_size, 0) != st.st_size)
		r = -EIO;
	close(fd);
	if (r) {
		free(buf);
		return r;
	}
	prog->filter = buf;
	prog->len = (unsigned short)(st.st_size / sizeof(struct sock_filter));
	return 0;
}

static int compile(enum sandbox_kind kind, uint32_t refused, struct sysfilter *out)
{
	scmp_filter_ctx ctx = seccomp_init(refused);
	int r;

	if (!ctx)
		return -ENOMEM;
	/* A call through another ABI (int 0x80, x32) is refused as any unlisted call is. */
	r = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, refused);
	if (!r)
		r = lists[kind](ctx);
#ifdef SANDBOX_SANITIZED
	if (!r)
		r = sandbox_allow(ctx, sanitizer_calls, SANDBOX_COUNT(sanitizer_calls));
	if (!r)
		r = sandbox_allow_ioctls(ctx, sanitizer_ioctls, SANDBOX_COUNT(sanitizer_ioctls));
#endif
	if (!r)
		r = export(ctx, &out->prog);
	seccomp_release(ctx);
	out->kind = kind_names[kind];
	return r;
}

int sandbox_prepare(struct sandbox *s, enum sandbox_mode mode)
{
	uint32_t refused = mode == SANDBOX_LOG ? SCMP_ACT_LOG : SCMP_ACT_TRAP;
	int r = 0;

	memset(s, 0, sizeof(*s));
	s->mode = mode;
	if (mode == SANDBOX_OFF)
		return 0;
	fill_names();
	log_sink_ready();
	for (int k = 0; k < SANDBOX_KINDS && !r; k++) {
		r = compile((enum sandbox_kind)k, refused, &s->filter[k]);
		if (r)
			log_error("seccomp: cannot compile the %s thread's filter: %s",
			          kind_names[k], strerror(-r));
	}
	if (!r && (r = sysfilter_catch(FLINT_EXIT_BAD_SYSCALL, names, NAMES_MAX)))
		log_error("seccomp: cannot install the SIGSYS handler: %s", strerror(-r));
	if (r)
		sandbox_free(s);
	return r;
}

const struct sysfilter *sandbox_filter(const struct sandbox *s, enum sandbox_kind kind)
{
	return s->mode == SANDBOX_OFF ? NULL : &s->filter[kind];
}

void sandbox_free(struct sandbox *s)
{
	for (int k = 0; k < SANDBOX_KINDS; k++) {
		free(s->filter[k].prog.filter);
		s->filter[k].prog.filter = NULL;
		s->filter[k].prog.len = 0;
	}
}
