/*
 * L2 side of bench/iommu-e2e.sh: the shortest path from init to a verified edu DMA, the same
 * for every VMM and every guest RAM size. Finds QEMU's edu (1234:11e8) in sysfs, turns on
 * memory decoding and bus mastering through its config space, maps BAR0 through resource0,
 * checks the identification register, then DMA both ways, as tests/rig/l2/edu.c does: a
 * pattern in an mlock'ed page (physical address from /proc/self/pagemap) -> edu's buffer ->
 * a second page, compared. edu's buffer cannot be read through BAR0, so the first DMA is
 * verified by the second: that round trip is "the first successful edu DMA".
 * With 4 GiB of guest RAM user pages come from above 4 GiB, beyond edu's default 28-bit DMA
 * mask: the rig's edu gets dma_mask=0xffffffffff (bench/iommu-e2e.sh) and this program
 * writes the DMA addresses with 64-bit stores.
 * On success prints "IOMMU-E2E DMA OK ..." -- the line L1 times -- and exits 0.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define EDU_ID      0x00
#define EDU_DMA_SRC 0x80
#define EDU_DMA_DST 0x88
#define EDU_DMA_CNT 0x90
#define EDU_DMA_CMD 0x98
#define EDU_BUF     0x40000
#define BUF_OFF     0x100 /* where in edu's 4 KiB buffer the transfers go */
#define XFER        1024
#define DMA_LIMIT   (1ull << 40) /* the rig's edu dma_mask */

static volatile uint32_t *bar;

#define fail(...)                                                                                  \
	do {                                                                                       \
		printf("iommu-e2e: FAIL: " __VA_ARGS__);                                           \
		putchar('\n');                                                                     \
		fflush(stdout);                                                                    \
		exit(1);                                                                           \
	} while (0)

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static unsigned long sysfs_ul(const char *d, const char *name)
{
	char path[400], buf[64] = "";
	FILE *f;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/%s", d, name);
	f = fopen(path, "r");
	if (!f)
		return ~0ul;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = 0;
	fclose(f);
	return strtoul(buf, NULL, 0);
}

/* edu's DMA command register cleared, or -1 after a bounded spin (no timers: see edu.c). */
static long dma(uint64_t src, uint64_t dst, uint32_t dir)
{
	double t0;

	*(volatile uint64_t *)(bar + EDU_DMA_SRC / 4) = src;
	*(volatile uint64_t *)(bar + EDU_DMA_DST / 4) = dst;
	bar[EDU_DMA_CNT / 4] = XFER;
	t0 = now();
	bar[EDU_DMA_CMD / 4] = 1 | dir;
	for (long n = 0; n < 5000000; n++) {
		if (!(bar[EDU_DMA_CMD / 4] & 1))
			return n;
		if ((n & 255) == 255 && now() - t0 > 10.0)
			break;
		sched_yield();
	}
	return -1;
}

/* A locked page and its guest-physical address (pagemap: PFN in bits 0-54, bit 63 present). */
static uint8_t *dma_page(uint64_t *pa)
{
	long pg = sysconf(_SC_PAGESIZE);
	uint8_t *p =
	        mmap(NULL, (size_t)pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint64_t e = 0;
	int fd;

	if (p == MAP_FAILED || mlock(p, (size_t)pg))
		fail("an mlock'ed page: %s", strerror(errno));
	memset(p, 0, (size_t)pg);
	fd = open("/proc/self/pagemap", O_RDONLY);
	if (fd < 0 || pread(fd, &e, 8, (off_t)((uintptr_t)p / (uintptr_t)pg * 8)) != 8)
		fail("/proc/self/pagemap: %s", strerror(errno));
	close(fd);
	if (!(e >> 63 & 1) || !(e & ((1ull << 55) - 1)))
		fail("pagemap entry %#" PRIx64 ": not present or no PFN", e);
	*pa = (e & ((1ull << 55) - 1)) * (uint64_t)pg;
	if (*pa + (uint64_t)pg > DMA_LIMIT)
		fail("page at %#" PRIx64 " is beyond edu's DMA mask", *pa);
	return p;
}

int main(void)
{
	char dev[300] = "", path[400];
	unsigned long long start, end, flags;
	uint64_t pa_src, pa_dst;
	uint8_t *src, *dst;
	uint16_t cmd;
	DIR *d;
	struct dirent *e;
	FILE *f;
	int fd;

	d = opendir("/sys/bus/pci/devices");
	if (!d)
		fail("no /sys/bus/pci/devices: %s", strerror(errno));
	while ((e = readdir(d)))
		if (e->d_name[0] != '.' && sysfs_ul(e->d_name, "vendor") == 0x1234 &&
		    sysfs_ul(e->d_name, "device") == 0x11e8)
			snprintf(dev, sizeof(dev), "%s", e->d_name);
	closedir(d);
	if (!dev[0])
		fail("no 1234:11e8 in /sys/bus/pci/devices");

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/config", dev);
	fd = open(path, O_RDWR);
	if (fd < 0 || pread(fd, &cmd, 2, 4) != 2)
		fail("config space of %s: %s", dev, strerror(errno));
	cmd |= 0x6;
	if (pwrite(fd, &cmd, 2, 4) != 2 || pread(fd, &cmd, 2, 4) != 2 || (cmd & 6) != 6)
		fail("memory decoding/bus mastering on %s (command %#06x)", dev, cmd);
	close(fd);

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/resource", dev);
	f = fopen(path, "r");
	if (!f || fscanf(f, "%llx %llx %llx", &start, &end, &flags) != 3 || !start || end <= start)
		fail("BAR0 of %s not assigned", dev);
	fclose(f);
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/resource0", dev);
	fd = open(path, O_RDWR | O_SYNC);
	if (fd < 0)
		fail("open %s: %s", path, strerror(errno));
	bar = mmap(NULL, (size_t)(end - start + 1), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (bar == MAP_FAILED)
		fail("mmap %s: %s", path, strerror(errno));
	close(fd);
	if (bar[EDU_ID / 4] != 0x010000ed)
		fail("identification register reads %#010x", bar[EDU_ID / 4]);

	src = dma_page(&pa_src);
	dst = dma_page(&pa_dst);
	unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid() ^ (unsigned)(now() * 1e6);
	for (unsigned i = 0; i < XFER; i++)
		src[i] = (uint8_t)((i * 131u + seed) ^ (i >> 8));
	memset(dst, 0x5a, XFER);
	if (dma(pa_src, EDU_BUF + BUF_OFF, 0) < 0)
		fail("DMA RAM %#" PRIx64 " -> edu did not finish", pa_src);
	if (dma(EDU_BUF + BUF_OFF, pa_dst, 2) < 0)
		fail("DMA edu -> RAM %#" PRIx64 " did not finish", pa_dst);
	for (unsigned i = 0; i < XFER; i++)
		if (src[i] != dst[i])
			fail("byte %u: wrote %#04x, DMA via edu brought back %#04x (RAM %#" PRIx64
			     " -> edu -> RAM %#" PRIx64 ")",
			     i, src[i], dst[i], pa_src, pa_dst);
	/* Guest uptime for the record; L1 times the arrival of this line. */
	f = fopen("/proc/uptime", "r");
	double up = 0;
	if (f) {
		if (fscanf(f, "%lf", &up) != 1)
			up = 0;
		fclose(f);
	}
	printf("IOMMU-E2E DMA OK %s: %u bytes RAM %#" PRIx64 " -> edu -> RAM %#" PRIx64
	       ", guest uptime %.2f s\n",
	       dev, XFER, pa_src, pa_dst, up);
	fflush(stdout);
	return 0;
}
