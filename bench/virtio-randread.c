/* L2 helper for bench/virtio.sh: 4 KiB random reads with O_DIRECT, one at a time (queue
 * depth 1), at uniformly random 4 KiB-aligned offsets of a block device, for SECS seconds.
 * Prints "reads N usecs N iops N". Static, like tests/rig/l2/exitport.c: L2 has no libc.
 * Usage: virtio-randread DEVICE SECS */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/fs.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* xorshift64*: enough spread for offsets, no libc state. */
static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next(void)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * 0x2545f4914f6cdd1dull;
}

int main(int argc, char **argv)
{
	uint64_t size, blocks, start, end, t, reads = 0;
	void *buf;
	int fd;

	if (argc != 3) {
		fprintf(stderr, "usage: virtio-randread DEVICE SECS\n");
		return 2;
	}
	fd = open(argv[1], O_RDONLY | O_DIRECT);
	if (fd < 0 || ioctl(fd, BLKGETSIZE64, &size) < 0) {
		perror(argv[1]);
		return 1;
	}
	blocks = size / 4096;
	if (blocks == 0 || posix_memalign(&buf, 4096, 4096)) {
		fprintf(stderr, "virtio-randread: no room\n");
		return 1;
	}
	start = now_us();
	end = start + (uint64_t)atoi(argv[2]) * 1000000;
	do {
		/* Check the clock every 16 reads: a vDSO call is cheap, but not free nested. */
		for (int i = 0; i < 16; i++) {
			if (pread(fd, buf, 4096, (off_t)(next() % blocks) * 4096) != 4096) {
				perror("pread");
				return 1;
			}
		}
		reads += 16;
		t = now_us();
	} while (t < end);
	printf("reads %llu usecs %llu iops %llu\n", (unsigned long long)reads,
	       (unsigned long long)(t - start), (unsigned long long)(reads * 1000000 / (t - start)));
	return 0;
}
