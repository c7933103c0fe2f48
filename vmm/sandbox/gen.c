/*
 * sandbox-gen: the threads' allow-lists (loop.c, vcpu.c, io.c) compiled with libseccomp at
 * build time into C that flint carries as data: for each mode that has a filter (on: a
 * refused call traps; log: the kernel logs it) and each kind of thread, the BPF program,
 * and the system calls' names for the SIGSYS line. flint so neither links libseccomp nor
 * compiles a filter when it starts (that was 1-2 ms of every start). A program is the
 * kernel's own format: nothing in it depends on the kernel that builds it (the API level
 * is pinned below, not probed).
 *
 *   sandbox-gen plain|sanitized > sandbox_bpf.c
 *
 * "sanitized" is for the sanitizer build (build/asan/flint), whose runtime makes calls of
 * its own: they are added to every list, in one place (below).
 */
#include "vmm/sandbox.h"
#include "vmm/sandbox/rules.h"

#include <errno.h>
#include <linux/filter.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/*
 * Each kind of thread: its list, and its name in vmm/sandbox.h's enum (the output indexes
 * by those names, so it follows the enum whatever its order); the same for the modes.
 */
static const struct {
	const char *name, *enum_name;
	int (*rules)(scmp_filter_ctx);
} kinds[] = {
	{ "loop", "SANDBOX_LOOP", sandbox_loop_rules },
	{ "vcpu", "SANDBOX_VCPU", sandbox_vcpu_rules },
	{ "io", "SANDBOX_IO", sandbox_io_rules },
};
static const struct {
	const char *name, *enum_name;
	uint32_t refused;
} modes[] = {
	{ "on", "SANDBOX_ON", SCMP_ACT_TRAP },
	{ "log", "SANDBOX_LOG", SCMP_ACT_LOG },
};
#define NKINDS (sizeof(kinds) / sizeof(kinds[0]))
#define NMODES (sizeof(modes) / sizeof(modes[0]))
_Static_assert(NKINDS == SANDBOX_KINDS, "a list for every kind of thread");
_Static_assert(NMODES == SANDBOX_OFF, "a program for every mode that has a filter");

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
static int export(scmp_filter_ctx ctx, struct sock_filter **insns, size_t *len)
{
	int fd = memfd_create("sandbox-gen", MFD_CLOEXEC), r;
	struct stat st;

	*insns = NULL;
	if (fd < 0)
		return -errno;
	r = seccomp_export_bpf(ctx, fd);
	if (!r && fstat(fd, &st) < 0)
		r = -errno;
	if (!r && (st.st_size <= 0 || st.st_size % sizeof(struct sock_filter) ||
	           st.st_size / sizeof(struct sock_filter) > BPF_MAXINSNS))
		r = -E2BIG;
	if (!r && !(*insns = malloc((size_t)st.st_size)))
		r = -ENOMEM;
	if (!r && pread(fd, *insns, (size_t)st.st_size, 0) != st.st_size)
		r = -EIO;
	close(fd);
	if (!r)
		*len = (size_t)st.st_size / sizeof(struct sock_filter);
	return r;
}

static int compile(unsigned kind, uint32_t action, bool sanitized, struct sock_filter **insns,
                   size_t *len)
{
	scmp_filter_ctx ctx = seccomp_init(action);
	int r;

	if (!ctx)
		return -ENOMEM;
	/* A call through another ABI (int 0x80, x32) is refused as any unlisted call is. */
	r = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, action);
	if (!r)
		r = kinds[kind].rules(ctx);
	if (!r && sanitized)
		r = sandbox_allow(ctx, sanitizer_calls, SANDBOX_COUNT(sanitizer_calls));
	if (!r && sanitized)
		r = sandbox_allow_ioctls(ctx, sanitizer_ioctls, SANDBOX_COUNT(sanitizer_ioctls));
	if (!r)
		r = export(ctx, insns, len);
	seccomp_release(ctx);
	return r;
}

static void print_program(unsigned mode, unsigned kind, const struct sock_filter *f, size_t len)
{
	printf("static const struct sock_filter %s_%s[%zu] = {\n", modes[mode].name,
	       kinds[kind].name, len);
	for (size_t i = 0; i < len; i++)
		printf("\t{ 0x%04x, %u, %u, 0x%08x },\n", f[i].code, f[i].jt, f[i].jf, f[i].k);
	printf("};\n\n");
}

static void print_names(void)
{
	printf("const char *const sandbox_syscall_names[SANDBOX_NAMES_MAX] = {\n");
	for (int i = 0; i < SANDBOX_NAMES_MAX; i++) {
		char *name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, i);
		if (name)
			printf("\t[%d] = \"%s\",\n", i, name);
		free(name);
	}
	printf("};\n");
}

int main(int argc, char **argv)
{
	bool sanitized = argc == 2 && !strcmp(argv[1], "sanitized");

	if (argc != 2 || (!sanitized && strcmp(argv[1], "plain"))) {
		fprintf(stderr, "usage: sandbox-gen plain|sanitized\n");
		return 2;
	}
	/* The programs must not depend on what the building kernel supports. */
	if (seccomp_api_set(3)) {
		fprintf(stderr, "sandbox-gen: libseccomp refuses API level 3\n");
		return 1;
	}
	printf("/* Made by vmm/sandbox/gen.c (%s build): do not edit. */\n", argv[1]);
	printf("#include \"vmm/sandbox.h\"\n\n");
	for (unsigned m = 0; m < NMODES; m++)
		for (unsigned k = 0; k < NKINDS; k++) {
			struct sock_filter *f;
			size_t len = 0;
			int r = compile(k, modes[m].refused, sanitized, &f, &len);
			if (r) {
				fprintf(stderr, "sandbox-gen: the %s list (%s): %s\n",
				        kinds[k].name, modes[m].name, strerror(-r));
				return 1;
			}
			print_program(m, k, f, len);
			free(f);
		}
	printf("const struct sandbox_program sandbox_programs[SANDBOX_OFF][SANDBOX_KINDS] = {\n");
	for (unsigned m = 0; m < NMODES; m++) {
		printf("\t[%s] = {\n", modes[m].enum_name);
		for (unsigned k = 0; k < NKINDS; k++)
			printf("\t\t[%s] = { %s_%s, sizeof(%s_%s) / sizeof(%s_%s[0]) },\n",
			       kinds[k].enum_name, modes[m].name, kinds[k].name, modes[m].name,
			       kinds[k].name, modes[m].name, kinds[k].name);
		printf("\t},\n");
	}
	printf("};\n\n");
	print_names();
	return 0;
}
