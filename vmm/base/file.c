/* Open-and-check for the files flint is told to use: see file.h. */
#include "vmm/base/file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const struct {
	unsigned kind; /* 0: flint never takes it */
	mode_t type;
	const char *name;
} kinds[] = {
	{ FILE_REG, S_IFREG, "a regular file" },
	{ FILE_BLK, S_IFBLK, "a block device" },
	{ FILE_CHR, S_IFCHR, "a character device" },
	{ FILE_FIFO, S_IFIFO, "a FIFO" },
	{ 0, S_IFDIR, "a directory" },
	{ 0, S_IFSOCK, "a socket" },
};
#define NKINDS (sizeof(kinds) / sizeof(kinds[0]))

static unsigned kind_of(mode_t mode)
{
	for (size_t i = 0; i < NKINDS; i++)
		if ((mode & S_IFMT) == kinds[i].type)
			return kinds[i].kind;
	return 0;
}

/* "is a FIFO, not a regular file or block device" */
static int wrong_kind(mode_t mode, unsigned want, char *why, size_t len)
{
	const char *what = "of an unknown type", *sep = "";
	size_t n;

	for (size_t i = 0; i < NKINDS; i++)
		if ((mode & S_IFMT) == kinds[i].type)
			what = kinds[i].name;
	snprintf(why, len, "is %s, not ", what);
	for (size_t i = 0; i < NKINDS; i++) {
		if (!(want & kinds[i].kind))
			continue;
		want &= ~kinds[i].kind;
		n = strlen(why);
		snprintf(why + n, len - n, "%s%s", sep, kinds[i].name);
		sep = want & (want - 1) ? ", " : " or ";
	}
	return -EINVAL;
}

static int too_big(uint64_t size, uint64_t max, char *why, size_t len)
{
	bool mib = max % (1 << 20) == 0;

	snprintf(why, len, "is %llu bytes, more than the limit of %llu %s",
	         (unsigned long long)size, (unsigned long long)(mib ? max >> 20 : max),
	         mib ? "MiB" : "bytes");
	return -EFBIG;
}

static int open_error(const char *path, int err, char *why, size_t len)
{
	struct stat st;

	if (err == -ENXIO && stat(path, &st) == 0 && S_ISFIFO(st.st_mode))
		snprintf(why, len, "is a FIFO with no reader (flint does not wait for one)");
	else if (err == -ELOOP && stat(path, &st) < 0 && errno == ENOENT)
		snprintf(why, len,
		         "is a symbolic link to nothing (flint does not create files "
		         "through links)");
	else
		snprintf(why, len, "%s", strerror(-err));
	return err;
}

/*
 * open() that makes a missing file, but never through a symlink: a planted one could point
 * anywhere. An existing file is opened through links (/dev/stdout is one).
 */
static int open_or_create(const char *path, int flags)
{
	struct stat st;
	int fd = open(path, flags & ~O_CREAT);

	if (fd >= 0 || errno != ENOENT || !(flags & O_CREAT))
		return fd;
	/* O_EXCL fails on any name that exists, a dangling symlink included. */
	fd = open(path, flags | O_EXCL, 0644);
	if (fd >= 0 || errno != EEXIST)
		return fd;
	if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode)) {
		errno = ELOOP;
		return -1;
	}
	return open(path, flags & ~O_CREAT); /* someone else made it in between */
}

/* The check that counts: on the open file itself. Then blocking again, except a FIFO. */
static int check_fd(int fd, unsigned want, uint64_t max_bytes, char *why, size_t len)
{
	struct stat st;
	int fl;

	if (fstat(fd, &st) < 0)
		return open_error("", -errno, why, len);
	if (!(kind_of(st.st_mode) & want))
		return wrong_kind(st.st_mode, want, why, len);
	if (S_ISREG(st.st_mode) && max_bytes && (uint64_t)st.st_size > max_bytes)
		return too_big((uint64_t)st.st_size, max_bytes, why, len);
	if (S_ISFIFO(st.st_mode))
		return 0;
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0)
		return open_error("", -errno, why, len);
	return 0;
}

int file_open(const char *path, int flags, unsigned want, uint64_t max_bytes, char *why,
              size_t whylen)
{
	struct stat st;
	int fd, r;

	/*
	 * A first look by name, so that a device of a kind we refuse is never opened: opening
	 * some has effects (/dev/watchdog arms a watchdog, a tape drive rewinds).
	 */
	if (stat(path, &st) == 0 && !(kind_of(st.st_mode) & want))
		return wrong_kind(st.st_mode, want, why, whylen);
	/* O_NONBLOCK: opening a FIFO must not wait for its other end. */
	fd = open_or_create(path, flags | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return open_error(path, -errno, why, whylen);
	r = check_fd(fd, want, max_bytes, why, whylen);
	if (r) {
		close(fd);
		return r;
	}
	return fd;
}

int file_read_all(int fd, size_t max, uint8_t **buf, size_t *len)
{
	struct stat st;
	size_t cap, got = 0;
	uint8_t *b, *nb;
	ssize_t n;
	int r;

	if (fstat(fd, &st) < 0)
		return -errno;
	/* st_size is a hint (0 for /proc files): the end of the file is what counts. */
	cap = st.st_size > 0 ? (size_t)st.st_size : 4096;
	cap = (cap < max ? cap : max) + 1; /* one more, to see the end without growing */
	b = malloc(cap + 1);
	while (b) {
		if (got == cap) {
			if (got > max) {
				free(b);
				return -EFBIG;
			}
			cap = cap > max / 2 ? max + 1 : cap * 2;
			nb = realloc(b, cap + 1);
			if (!nb)
				break;
			b = nb;
		}
		n = pread(fd, b + got, cap - got, (off_t)got);
		if (n == 0) {
			b[got] = 0;
			*buf = b;
			*len = got;
			return 0;
		}
		if (n < 0 && errno != EINTR) {
			r = -errno;
			free(b);
			return r;
		}
		got += n > 0 ? (size_t)n : 0;
	}
	free(b);
	return -ENOMEM;
}

int file_nonblocking_writer(int fd, bool *sock)
{
	struct stat st;
	char path[64];
	int own;

	*sock = false;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode))
		return fd;
	if (S_ISSOCK(st.st_mode)) {
		*sock = true;
		return fd;
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	own = open(path, O_WRONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	return own >= 0 ? own : -errno;
}
