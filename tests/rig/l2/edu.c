/*
 * L2 helper: drives QEMU's edu device (1234:11e8), which flint assigned to this guest, from
 * user space through sysfs (no driver): finds it, turns on memory decoding and bus mastering
 * through its config space, maps BAR0 through resource0 and checks the identification,
 * liveness and factorial registers, then runs edu DMA both ways between two mlock'ed pages
 * (physical addresses from /proc/self/pagemap) and edu's buffer, comparing the bytes.
 * With "msi": programs the MSI capability by hand with a vector no Linux handler owns, raises
 * an edu interrupt (register 0x60) and looks for the kernel's "No irq handler for 0.<vector>"
 * line: the MSI went edu -> L1's vfio-pci -> flint's irqfd -> this vCPU.
 * With "oob": a DMA from a guest address outside RAM (OOB_GPA), which the IOMMU must refuse
 * (L1's kernel logs the fault; the caller checks), then the round trip again: the device
 * still works and flint is still up.
 * Prints what every step saw; exits 1 on the first mismatch. Usage: edu [msi] [oob]
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/klog.h>
#include <sched.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define EDU_ID       0x00
#define EDU_LIVE     0x04
#define EDU_FACT     0x08
#define EDU_STATUS   0x20
#define EDU_IRQ_STAT 0x24
#define EDU_IRQ_RAISE 0x60
#define EDU_IRQ_ACK  0x64
#define EDU_DMA_SRC  0x80
#define EDU_DMA_DST  0x88
#define EDU_DMA_CNT  0x90
#define EDU_DMA_CMD  0x98
#define EDU_BUF      0x40000
#define EDU_BUF_OFF  0x100 /* where in edu's 4 KiB buffer the transfers go */
#define XFER         3072  /* edu aborts QEMU on a transfer ending at or past 0x41000 */
#define DMA_LIMIT    (1ull << 28) /* edu's DMA mask */
#define MSI_VECTOR   0xd7 /* far above what a few legacy IRQs get, below the system vectors */
#define IRQ_BIT      0x1000 /* what this tool raises in edu's interrupt status */
#define OOB_GPA      0x0f000000ull /* above a 128 MiB guest's RAM, inside edu's DMA mask */

static char dev[300];
static volatile uint32_t *bar;

static void say(const char *fmt, ...)
{
	va_list ap;

	printf("flint-l2: edu: ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

static _Noreturn void fail(const char *fmt, ...)
{
	va_list ap;

	printf("flint-l2: edu: FAIL: ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
	exit(1);
}

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/*
 * Waits without a timer: nested under TCG, L2's timer ticks have been seen to stop for
 * minutes (its clock frozen), and a nanosleep() then never returns. Spins (yielding) until
 * @done says so, for at most POLL_SECS of guest time or POLL_SPINS turns, whichever comes
 * first, so a frozen clock still ends the wait. Returns the turns taken, or -1.
 */
#define POLL_SECS  10.0
#define POLL_SPINS 5000000L
static long poll_until(int (*done)(void *), void *arg)
{
	double t0 = now();

	for (long n = 0; n < POLL_SPINS; n++) {
		if (done(arg))
			return n;
		if ((n & 255) == 255 && now() - t0 > POLL_SECS)
			break;
		sched_yield();
	}
	return done(arg) ? POLL_SPINS : -1;
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

/* 1. The device with vendor 0x1234, device 0x11e8. */
static void find(void)
{
	DIR *d = opendir("/sys/bus/pci/devices");
	struct dirent *e;
	int n = 0;

	if (!d)
		fail("no /sys/bus/pci/devices: %s", strerror(errno));
	while ((e = readdir(d))) {
		unsigned long v, id;
		if (e->d_name[0] == '.')
			continue;
		v = sysfs_ul(e->d_name, "vendor");
		id = sysfs_ul(e->d_name, "device");
		say("PCI %s: %04lx:%04lx class %#08lx", e->d_name, v, id,
		    sysfs_ul(e->d_name, "class"));
		n++;
		if (v == 0x1234 && id == 0x11e8)
			snprintf(dev, sizeof(dev), "%s", e->d_name);
	}
	closedir(d);
	if (!dev[0])
		fail("no 1234:11e8 among the %d PCI functions", n);
	say("found 1234:11e8 at %s", dev);
}

static int config_open(void)
{
	char path[400];
	int fd;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/config", dev);
	fd = open(path, O_RDWR);
	if (fd < 0)
		fail("open %s: %s", path, strerror(errno));
	return fd;
}

static uint32_t cfg_read(int fd, unsigned off, unsigned len)
{
	uint32_t v = 0;

	if (pread(fd, &v, len, off) != (ssize_t)len)
		fail("config read of %u bytes at %#x: %s", len, off, strerror(errno));
	return v;
}

static void cfg_write(int fd, unsigned off, unsigned len, uint32_t v)
{
	if (pwrite(fd, &v, len, off) != (ssize_t)len)
		fail("config write of %u bytes at %#x: %s", len, off, strerror(errno));
}

/* 2. Memory decoding and bus mastering on, through the command register. */
static void enable(int fd)
{
	uint32_t cmd = cfg_read(fd, 4, 2), now;

	say("command register %#06x, status %#06x, BAR0 register %#010x", cmd, cfg_read(fd, 6, 2),
	    cfg_read(fd, 0x10, 4));
	cfg_write(fd, 4, 2, cmd | 0x6);
	now = cfg_read(fd, 4, 2);
	say("command register after writing %#06x: %#06x", cmd | 0x6, now);
	if ((now & 0x6) != 0x6)
		fail("memory decoding/bus mastering did not stick (command %#06x)", now);
}

static size_t bar0_map(void)
{
	char path[400];
	unsigned long long start, end, flags;
	size_t size;
	FILE *f;
	int fd;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/resource", dev);
	f = fopen(path, "r");
	if (!f || fscanf(f, "%llx %llx %llx", &start, &end, &flags) != 3)
		fail("cannot read %s", path);
	fclose(f);
	if (!start || end <= start)
		fail("BAR0 not assigned: %#llx-%#llx", start, end);
	size = (size_t)(end - start + 1);
	say("BAR0 %#llx-%#llx (%zu KiB), flags %#llx", start, end, size >> 10, flags);
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/resource0", dev);
	fd = open(path, O_RDWR | O_SYNC);
	if (fd < 0)
		fail("open %s: %s", path, strerror(errno));
	bar = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (bar == MAP_FAILED)
		fail("mmap %s: %s", path, strerror(errno));
	close(fd);
	return size;
}

static uint32_t rd(unsigned off)
{
	return bar[off / 4];
}

static void wr(unsigned off, uint32_t v)
{
	bar[off / 4] = v;
}

/* Register @arg[0]'s bit(s) @arg[1] clear; the value read last in @arg[2]. */
static int reg_clear(void *arg)
{
	uint32_t *a = arg;

	a[2] = rd(a[0]);
	return !(a[2] & a[1]);
}

/* 3. Identification, liveness, factorial. */
static void registers(void)
{
	uint32_t v, w[3] = { EDU_STATUS, 1, 0 };
	long n;

	v = rd(EDU_ID);
	say("identification %#010x (want 0x010000ed)", v);
	if (v != 0x010000ed)
		fail("identification register reads %#010x", v);
	wr(EDU_LIVE, 0x12345678);
	v = rd(EDU_LIVE);
	say("liveness: wrote 0x12345678, read %#010x (want 0xedcba987)", v);
	if (v != 0xedcba987)
		fail("liveness register reads %#010x", v);
	wr(EDU_FACT, 5);
	n = poll_until(reg_clear, w);
	v = rd(EDU_FACT);
	say("factorial: wrote 5, status %#x after %ld polls, read %u (want 120)", w[2], n, v);
	if (n < 0)
		fail("factorial still computing (status %#x)", w[2]);
	if (v != 120)
		fail("factorial of 5 reads %u", v);
}

/* A locked page and its guest-physical address (pagemap: PFN in bits 0-54, bit 63 present). */
static uint8_t *dma_page(uint64_t *pa)
{
	long pg = sysconf(_SC_PAGESIZE);
	uint8_t *p = mmap(NULL, (size_t)pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
	                  -1, 0);
	uint64_t e = 0;
	int fd;

	if (p == MAP_FAILED)
		fail("mmap a page: %s", strerror(errno));
	if (mlock(p, (size_t)pg))
		fail("mlock: %s", strerror(errno));
	memset(p, 0, (size_t)pg);
	fd = open("/proc/self/pagemap", O_RDONLY);
	if (fd < 0)
		fail("open /proc/self/pagemap: %s", strerror(errno));
	if (pread(fd, &e, 8, (off_t)((uintptr_t)p / (uintptr_t)pg * 8)) != 8)
		fail("read /proc/self/pagemap: %s", strerror(errno));
	close(fd);
	if (!(e >> 63 & 1) || !(e & ((1ull << 55) - 1)))
		fail("pagemap entry %#" PRIx64 " for %p: not present or no PFN (not root?)", e,
		     (void *)p);
	*pa = (e & ((1ull << 55) - 1)) * (uint64_t)pg;
	if (*pa + (uint64_t)pg > DMA_LIMIT)
		fail("page at %#" PRIx64 " is beyond edu's 28-bit DMA mask", *pa);
	return p;
}

static void dma(uint64_t src, uint64_t dst, uint32_t dir, const char *what)
{
	uint32_t w[3] = { EDU_DMA_CMD, 1, 0 };
	double t0;
	long n;

	wr(EDU_DMA_SRC, (uint32_t)src);
	wr(EDU_DMA_DST, (uint32_t)dst);
	wr(EDU_DMA_CNT, XFER);
	t0 = now();
	wr(EDU_DMA_CMD, 1 | dir);
	n = poll_until(reg_clear, w);
	say("DMA %s: %#" PRIx64 " -> %#" PRIx64 ", %u bytes, command %#x after %ld polls, "
	    "%.3f s",
	    what, src, dst, XFER, w[2], n, now() - t0);
	if (n < 0)
		fail("DMA %s did not finish (command %#x)", what, w[2]);
}

/* 4. RAM -> edu's buffer -> other RAM, compared. */
static void dma_both_ways(void)
{
	uint64_t pa_src, pa_dst;
	uint8_t *src = dma_page(&pa_src), *dst = dma_page(&pa_dst);
	unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid(), bad = 0, first = 0;

	for (unsigned i = 0; i < XFER; i++)
		src[i] = (uint8_t)((i * 131u + seed) ^ (i >> 8));
	memset(dst, 0x5a, XFER);
	say("source page at guest %#" PRIx64 ", destination at %#" PRIx64 ", pattern seed %#x",
	    pa_src, pa_dst, seed);
	dma(pa_src, EDU_BUF + EDU_BUF_OFF, 0, "RAM -> edu");
	dma(EDU_BUF + EDU_BUF_OFF, pa_dst, 2, "edu -> RAM");
	for (unsigned i = 0; i < XFER; i++)
		if (src[i] != dst[i] && !bad++)
			first = i;
	say("compared %u bytes: %u differ", XFER, bad);
	if (bad)
		fail("byte %u: wrote %#04x, DMA brought back %#04x (destination %s)", first,
		     src[first], dst[first],
		     dst[first] == 0x5a ? "untouched: nothing landed" : "overwritten");
}

/* The kernel log's count of "No irq handler for 0.<vector>" lines. */
static int unhandled(void)
{
	static char buf[1 << 20];
	char pat[64];
	int n = klogctl(3 /* SYSLOG_ACTION_READ_ALL */, buf, sizeof(buf) - 1), c = 0;

	if (n < 0)
		fail("klogctl: %s", strerror(errno));
	buf[n] = 0;
	snprintf(pat, sizeof(pat), "No irq handler for 0.%u\n", MSI_VECTOR);
	for (char *p = strstr(buf, pat); p; p = strstr(p + 1, pat))
		c++;
	return c;
}

static int logged(void *before)
{
	return unhandled() != *(int *)before;
}

static unsigned find_cap(int fd, unsigned id)
{
	unsigned at;

	if (!(cfg_read(fd, 6, 2) & 0x10))
		return 0;
	at = cfg_read(fd, 0x34, 1) & 0xfc;
	for (int hops = 0; at >= 0x40 && hops < 48; hops++) {
		if (cfg_read(fd, at, 1) == id)
			return at;
		at = cfg_read(fd, at + 1, 1) & 0xfc;
	}
	return 0;
}

/*
 * 5. An MSI by hand: the capability programmed for CPU 0 (fixed, edge) with a vector no
 * handler owns, edu's interrupt raised; Linux acknowledges it and logs the vector.
 */
static void msi(int fd)
{
	unsigned cap = find_cap(fd, 0x05), data;
	uint32_t ctl, st = 0;
	int before = unhandled(), after = before;
	long n;

	if (!cap)
		fail("no MSI capability in the config space");
	ctl = cfg_read(fd, cap + 2, 2);
	data = cap + (ctl & 0x80 ? 12 : 8);
	say("MSI capability at %#x, control %#06x (%s-bit)", cap, ctl, ctl & 0x80 ? "64" : "32");
	cfg_write(fd, cap + 4, 4, 0xfee00000);
	if (ctl & 0x80)
		cfg_write(fd, cap + 8, 4, 0);
	cfg_write(fd, data, 2, MSI_VECTOR);
	cfg_write(fd, cap + 2, 2, (ctl & ~0x70u) | 1);
	ctl = cfg_read(fd, cap + 2, 2);
	say("MSI programmed: address %#010x data %#06x, control now %#06x", cfg_read(fd, cap + 4, 4),
	    cfg_read(fd, data, 2), ctl);
	if (!(ctl & 1))
		fail("MSI enable bit did not stick");
	wr(EDU_IRQ_RAISE, IRQ_BIT);
	st = rd(EDU_IRQ_STAT);
	n = poll_until(logged, &before);
	after = unhandled();
	say("raised edu interrupt %#x (status %#x): kernel log lines \"No irq handler for 0.%u\" "
	    "%d -> %d after %ld polls",
	    IRQ_BIT, st, MSI_VECTOR, before, after, n);
	wr(EDU_IRQ_ACK, IRQ_BIT);
	cfg_write(fd, cap + 2, 2, ctl & ~1u);
	if (!(st & IRQ_BIT))
		fail("edu's interrupt status %#x lacks the raised bit", st);
	if (after != before + 1)
		fail("vector %#x arrived %d times, want once", MSI_VECTOR, after - before);
	say("MSI delivered: vector %#x on CPU 0", MSI_VECTOR);
}

/* 6. A DMA from outside the guest's RAM: nothing is mapped there, the IOMMU refuses it. */
static void dma_outside_ram(void)
{
	say("DMA from outside RAM: %#llx -> edu (the IOMMU must fault it)",
	    (unsigned long long)OOB_GPA);
	dma(OOB_GPA, EDU_BUF + EDU_BUF_OFF, 0, "outside RAM -> edu");
	dma_both_ways();
	say("the device works after the refused DMA");
}

static bool has_arg(int argc, char **argv, const char *what)
{
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], what))
			return true;
	return false;
}

int main(int argc, char **argv)
{
	double t0 = now();
	int fd;

	find();
	fd = config_open();
	enable(fd);
	bar0_map();
	registers();
	dma_both_ways();
	if (has_arg(argc, argv, "msi"))
		msi(fd);
	else
		say("MSI not checked (no \"msi\" argument)");
	if (has_arg(argc, argv, "oob"))
		dma_outside_ram();
	close(fd);
	say("all steps passed (%.2f s of guest time)", now() - t0);
	return 0;
}
