#include "tests/fuzz/common.h"
#include "vmm/base/log.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

uint8_t fin_u8(struct fuzz_in *in)
{
	uint8_t v = 0;

	fin_bytes(in, &v, 1);
	return v;
}

uint16_t fin_u16(struct fuzz_in *in)
{
	uint16_t v = 0;

	fin_bytes(in, &v, 2);
	return v;
}

uint32_t fin_u32(struct fuzz_in *in)
{
	uint32_t v = 0;

	fin_bytes(in, &v, 4);
	return v;
}

uint64_t fin_u64(struct fuzz_in *in)
{
	uint64_t v = 0;

	fin_bytes(in, &v, 8);
	return v;
}

size_t fin_bytes(struct fuzz_in *in, void *dst, size_t len)
{
	size_t k = len < in->n ? len : in->n;

	memcpy(dst, in->p, k);
	memset((uint8_t *)dst + k, 0, len - k);
	in->p += k;
	in->n -= k;
	return k;
}

void fuzz_fail(const char *file, int line, const char *cond, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s:%d: fuzz check failed: %s: ", file, line, cond);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

static char dir[64];
static int anchor = -1; /* the scratch directory, open */
static int home = -1;   /* the working directory libFuzzer was started in */

static void remove_dir(void)
{
	char cmd[96];

	if (!dir[0])
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "fuzz: cannot remove %s\n", dir);
}

const char *fuzz_dir(void)
{
	return dir;
}

void fuzz_setup(void)
{
	char why[160];
	const char *l = getenv("FLINT_FUZZ_LOG");

	if (dir[0])
		return;
	snprintf(dir, sizeof(dir), "/tmp/flint-fuzz.XXXXXX");
	if (!mkdtemp(dir)) {
		perror("fuzz: scratch directory");
		abort();
	}
	atexit(remove_dir);
	anchor = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	home = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (anchor < 0 || home < 0) {
		perror("fuzz: scratch directory");
		abort();
	}
	log_set_level(LOG_DEBUG);
	if (l && *l && strcmp(l, "0"))
		log_msg(LOG_DEBUG, "fuzz: flint's log on stderr"); /* its sink opened now, once */
	else if (log_set_file("/dev/null", why, sizeof(why))) {
		fprintf(stderr, "fuzz: /dev/null: %s\n", why);
		abort();
	}
}

void fuzz_make_files(void)
{
	static const char *const names[] = {
		"vmlinux.bin",
		"vmlinux",
		"rootfs.ext4",
		"bionic.rootfs.ext4",
		"scratch",
		"some_file",
		"initrd.img",
		"k",
		"i",
		"d",
		"r",
		"build/guest/elf64.elf",
		"build/guest/pvh.elf",
		"build/guest/bzimage.bin",
		"build/guest/test-initrd.img",
		"build/demo/bzImage",
		"build/demo/initramfs.cpio.gz",
		NULL,
	};
	static const uint8_t page[4096];

	if (mkdirat(anchor, "build", 0755) || mkdirat(anchor, "build/guest", 0755) ||
	    mkdirat(anchor, "build/demo", 0755))
		fuzz_fail(__FILE__, __LINE__, "mkdir", "in %s", dir);
	for (unsigned i = 0; names[i]; i++) {
		int fd = openat(anchor, names[i], O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (fd < 0 || write(fd, page, sizeof(page)) != sizeof(page) || close(fd))
			fuzz_fail(__FILE__, __LINE__, "open", "%s in %s", names[i], dir);
	}
}

int fuzz_lowest_fd(void)
{
	int fd = fcntl(anchor, F_DUPFD_CLOEXEC, 0);

	if (fd < 0)
		fuzz_fail(__FILE__, __LINE__, "fcntl", "F_DUPFD");
	close(fd);
	return fd;
}

void fuzz_enter_dir(void)
{
	if (fchdir(anchor))
		fuzz_fail(__FILE__, __LINE__, "fchdir", "%s", dir);
}

void fuzz_leave_dir(void)
{
	if (fchdir(home))
		fuzz_fail(__FILE__, __LINE__, "fchdir", "back");
}
