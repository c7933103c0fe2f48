/*
 * Rig case: flint's own iommu code (iommu_open, the fault queue, the resolver on the
 * event loop) against the real kernel, with iommufd's mock device raising I/O page
 * faults at guest addresses. After flint answers, MD_CHECK_MAP proves the mock
 * domain maps each IOVA to the right guest memory; a fault outside guest RAM gets
 * INVALID and the kernel accepts that answer. Then the cap (flint.iommu.max_mapped_mib):
 * a second iommufd whose resolver keeps at most CAP_CHUNKS chunks mapped, faulted over 4x
 * as many; after every answer the kernel's own page table says which chunks are mapped.
 * Last, a storm of page requests, most of them outside guest RAM (see storm()).
 */
#include "iommu/iommu.h"
#include "vmm/base/loop.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "iommufd_test.h"
#include "rig.h"

#define RAM   (128ULL << 20)
#define CHUNK (2ULL << 20)
/*
 * The capped queue maps 256 KiB chunks, so that answers are not written after every
 * fault (they are once 2 MiB is mapped): a burst then has answers in flight.
 */
#define CAP_CHUNK  (256ULL << 10)
#define CAP_CHUNKS 4

static struct iommu io, cio; /* cio: the capped one */
static struct loop *loop;

static int test_cmd_on(struct iommu *i, struct iommu_test_cmd *cmd)
{
	cmd->size = sizeof(*cmd);
	return ioctl(i->fd.fd, IOMMU_TEST_CMD, cmd);
}

static int test_cmd(struct iommu_test_cmd *cmd)
{
	return test_cmd_on(&io, cmd);
}

static void trigger_on(struct iommu *i, uint32_t idev, uint32_t grpid, uint64_t addr)
{
	struct iommu_test_cmd c = {
		.op = IOMMU_TEST_OP_TRIGGER_IOPF,
		.trigger_iopf = { .dev_id = idev,
		                  .grpid = grpid,
		                  .addr = addr,
		                  .perm = IOMMU_PGFAULT_PERM_READ | IOMMU_PGFAULT_PERM_WRITE },
	};
	CHECK(test_cmd_on(i, &c) == 0, "TRIGGER_IOPF at %#llx: %s", (unsigned long long)addr,
	      strerror(errno));
}

static void trigger(uint32_t idev, uint32_t grpid, uint64_t addr)
{
	trigger_on(&io, idev, grpid, addr);
}

static void stop(void *arg)
{
	(void)arg;
	loop_stop(loop, 0);
}

/* Lets the loop serve the fault fd for a moment (delivery is synchronous in the ioctl). */
static void spin_loop(void)
{
	CHECK(loop_add_timer(loop, 100000, false, stop, NULL), "timer");
	CHECK(loop_run(loop) == 0, "loop_run");
}

static int check_map_on(struct iommu *i, uint32_t hwpt, uint64_t iova, uint64_t len, void *uptr)
{
	struct iommu_test_cmd c = {
		.op = IOMMU_TEST_OP_MD_CHECK_MAP,
		.id = hwpt,
		.check_map = { .iova = iova, .length = len, .uptr = (uintptr_t)uptr }
	};
	return test_cmd_on(i, &c);
}

static int check_map(uint32_t hwpt, uint64_t iova, uint64_t len, void *uptr)
{
	return check_map_on(&io, hwpt, iova, len, uptr);
}

/* The capped queue's chunks: 4 * CAP_CHUNKS of them from the mock's aperture on. */
#define CAP_SPAN (4 * CAP_CHUNKS)

static uint64_t cap_chunk(unsigned k)
{
	return MOCK_APERTURE_START + (uint64_t)k * CAP_CHUNK;
}

/* A mock device on @i's IOAS, on a fault-capable page table of flint's: its hwpt. */
static uint32_t mock_fault_device(struct iommu *i, uint32_t *idev)
{
	struct iommu_test_cmd md = { .op = IOMMU_TEST_OP_MOCK_DOMAIN, .id = i->ioas };
	uint32_t hwpt;

	CHECK(test_cmd_on(i, &md) == 0, "MOCK_DOMAIN: %s", strerror(errno));
	*idev = md.mock_domain.out_idev_id;
	CHECK(iommu_enable_faults(i, CAP_CHUNK, loop) == 0, "iommu_enable_faults");
	CHECK(iommu_fault_hwpt(i, *idev, &hwpt) == 0, "iommu_fault_hwpt: %s", strerror(errno));
	struct iommu_test_cmd rep = { .op = IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE,
		                      .id = md.mock_domain.out_stdev_id,
		                      .mock_domain_replace = { .pt_id = hwpt } };
	CHECK(test_cmd_on(i, &rep) == 0, "MOCK_DOMAIN_REPLACE: %s", strerror(errno));
	return hwpt;
}

/*
 * Asks the kernel which of the capped queue's chunks its page table maps, each checked
 * whole against the guest memory at the same offset: a chunk is either that or absent.
 * Returns the bit set of mapped chunks, failing when there are more than CAP_CHUNKS.
 */
static uint32_t cap_mapped(uint32_t hwpt, const struct guest_memory *mem)
{
	uint32_t set = 0;
	unsigned n = 0;

	for (unsigned k = 0; k < CAP_SPAN; k++) {
		uint64_t c = cap_chunk(k);
		if (check_map_on(&cio, hwpt, c, CAP_CHUNK, mem->base + c) == 0) {
			set |= 1u << k;
			n++;
		} else {
			/* Not partly mapped either: its first page is gone too. */
			CHECK(check_map_on(&cio, hwpt, c, 4096, mem->base + c) != 0,
			      "chunk %u partly mapped", k);
		}
	}
	CHECK(n <= CAP_CHUNKS, "%u chunks mapped under a cap of %u", n, CAP_CHUNKS);
	return set;
}

/* One fault in chunk @k, answered SUCCESS and accepted; then the kernel must map @want. */
static void cap_fault(uint32_t idev, uint32_t hwpt, const struct guest_memory *mem, unsigned k,
                      uint32_t want)
{
	const struct resolver_stats *st = resolver_stats(cio.resolver);
	uint64_t groups = st->groups;

	trigger_on(&cio, idev, 100 + k, cap_chunk(k) + 0x40 * k);
	spin_loop();
	CHECK(st->groups == groups + 1 && st->invalid == 0 && st->refused == 0,
	      "chunk %u: groups %llu (before %llu) invalid %llu refused %llu", k,
	      (unsigned long long)st->groups, (unsigned long long)groups,
	      (unsigned long long)st->invalid, (unsigned long long)st->refused);
	uint32_t got = cap_mapped(hwpt, mem);
	CHECK(got == want, "after chunk %u: mapped %#x, want %#x (least recently faulted out)", k,
	      got, want);
}

/* The CAP_CHUNKS most recent of @order[0..n): what LRU keeps. */
static uint32_t lru_set(const unsigned *order, unsigned n)
{
	uint32_t set = 0;
	unsigned kept = 0;

	for (unsigned i = n; i-- > 0 && kept < CAP_CHUNKS;)
		if (!(set & (1u << order[i]))) {
			set |= 1u << order[i];
			kept++;
		}
	return set;
}

static void capped(struct guest_memory *mem)
{
	struct flint_iommu_config icfg = { .path = "/dev/iommu",
		                           .fd = -1,
		                           .chunk_bytes = CAP_CHUNK,
		                           .max_mapped_bytes = CAP_CHUNKS * CAP_CHUNK };
	unsigned order[3 * CAP_SPAN], n = 0;
	uint32_t idev, hwpt;

	CHECK(iommu_open(&cio, &icfg, mem) == 0, "iommu_open (capped)");
	hwpt = mock_fault_device(&cio, &idev);
	const struct resolver_stats *st = resolver_stats(cio.resolver);

	/* Every chunk once, in order: each fault past the cap takes the oldest one out. */
	for (unsigned k = 0; k < CAP_SPAN; k++) {
		order[n++] = k;
		cap_fault(idev, hwpt, mem, k, lru_set(order, n));
	}
	/* A fault in a mapped chunk makes it the most recent: the next one out is another. */
	unsigned hit = CAP_SPAN - CAP_CHUNKS;
	order[n++] = hit;
	cap_fault(idev, hwpt, mem, hit, lru_set(order, n));
	CHECK(st->chunks_mapped == CAP_SPAN, "the hit mapped again");
	order[n++] = 0;
	cap_fault(idev, hwpt, mem, 0, lru_set(order, n));
	CHECK(lru_set(order, n) & (1u << hit), "the hit chunk went out");
	/* Every chunk again, backwards: re-faults, each mapping the same guest bytes (above). */
	for (unsigned k = CAP_SPAN; k-- > 0;) {
		order[n++] = k;
		cap_fault(idev, hwpt, mem, k, lru_set(order, n));
	}
	CHECK(st->refaults >= CAP_SPAN - CAP_CHUNKS, "re-faults %llu",
	      (unsigned long long)st->refaults);
	/* More faults at once than the cap holds: the last wait for the first answers. */
	uint64_t groups = st->groups;
	for (unsigned k = CAP_CHUNKS; k < 3 * CAP_CHUNKS; k++) {
		order[n++] = k;
		trigger_on(&cio, idev, 200 + k, cap_chunk(k));
	}
	spin_loop();
	CHECK(st->groups == groups + 2 * CAP_CHUNKS && st->invalid == 0 && st->refused == 0,
	      "burst: groups %llu invalid %llu refused %llu", (unsigned long long)st->groups,
	      (unsigned long long)st->invalid, (unsigned long long)st->refused);
	CHECK(st->cap_waits >= 1, "no record waited for answers in flight");
	CHECK(cap_mapped(hwpt, mem) == lru_set(order, n), "after the burst");
	CHECK(st->bytes_mapped - st->bytes_unmapped == CAP_CHUNKS * CAP_CHUNK, "held %llu",
	      (unsigned long long)(st->bytes_mapped - st->bytes_unmapped));
	rig_info("capped at %u chunks: %llu faults answered SUCCESS, %llu chunks unmapped, %llu "
	         "re-faults, %llu waits for answers in flight",
	         CAP_CHUNKS, (unsigned long long)st->groups,
	         (unsigned long long)st->chunks_unmapped, (unsigned long long)st->refaults,
	         (unsigned long long)st->cap_waits);
}

/* This process's open fds and VmRSS (KiB): flint's resolver runs in it. */
static long self_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	long n = 0;

	CHECK(d, "/proc/self/fd: %s", strerror(errno));
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n - 1; /* the DIR's own */
}

static long self_rss_kib(void)
{
	char line[256];
	long v = -1;
	FILE *f = fopen("/proc/self/status", "r");

	CHECK(f, "/proc/self/status: %s", strerror(errno));
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, "VmRSS:", 6) == 0)
			v = strtol(line + 6, NULL, 10);
	fclose(f);
	return v;
}

#define STORM_BURSTS 32
#define STORM_BURST  256

/*
 * Request @i of a burst: one in four inside guest RAM (its last byte among them), the rest
 * outside it: past RAM inside the mock's aperture, or near the top of the address space.
 * The mock raises one-request groups (LAST_PAGE), so groups mix in and out of RAM only
 * within a burst, which the resolver reads in one go.
 */
static uint64_t storm_addr(unsigned burst, unsigned i, bool *inside)
{
	*inside = i % 4 == 0;
	if (*inside)
		return i % 64 == 0
		               ? RAM - 1
		               : MOCK_APERTURE_START + (uint64_t)(i + burst) % 56 * CHUNK + i * 64;
	if (i % 4 == 1)
		return RAM + ((uint64_t)(burst * STORM_BURST + i) << 12) % (1ULL << 30);
	if (i % 4 == 2)
		return RAM;
	return ~0ULL - 0xfff - ((uint64_t)i << 12);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * STORM_BURSTS bursts of STORM_BURST page requests, each burst raised before the loop runs:
 * every group is answered, INVALID exactly for those outside RAM, none refused by the
 * kernel; afterwards a request in RAM still maps; fds and RSS stay as they were after the
 * first burst.
 */
static void storm(uint32_t idev, uint32_t hwpt, const struct guest_memory *mem)
{
	const struct resolver_stats *st = resolver_stats(io.resolver);
	long fds = 0, rss = 0;
	double t0 = now_s();

	for (unsigned b = 0; b < STORM_BURSTS; b++) {
		uint64_t groups = st->groups, invalid = st->invalid, outside = 0;
		double until = now_s() + 10;
		bool in;

		for (unsigned i = 0; i < STORM_BURST; i++) {
			uint64_t a = storm_addr(b, i, &in);
			outside += !in;
			trigger(idev, 256 + i, a);
		}
		do
			spin_loop();
		while (st->groups < groups + STORM_BURST && now_s() < until);
		CHECK(st->groups == groups + STORM_BURST && st->invalid == invalid + outside &&
		              st->refused == 0,
		      "burst %u: %llu groups answered of %u, %llu INVALID of %llu outside RAM, "
		      "%llu refused",
		      b, (unsigned long long)(st->groups - groups), STORM_BURST,
		      (unsigned long long)(st->invalid - invalid), (unsigned long long)outside,
		      (unsigned long long)st->refused);
		if (b == 0) {
			fds = self_fds();
			rss = self_rss_kib();
		}
	}
	long fds_end = self_fds(), rss_end = self_rss_kib();
	rig_info("storm: %u groups (%u outside RAM) in %.1f s, all answered; fds %ld -> %ld, "
	         "VmRSS %ld -> %ld KiB after the first burst and the last",
	         STORM_BURSTS * STORM_BURST, STORM_BURSTS * STORM_BURST * 3 / 4, now_s() - t0, fds,
	         fds_end, rss, rss_end);
	CHECK(fds_end == fds, "fds %ld after the first burst, %ld after the last", fds, fds_end);
	CHECK(rss_end - rss <= 256, "VmRSS grew %ld KiB over the storm", rss_end - rss);
	/* The queue still serves a request in RAM, and maps the right guest memory for it. */
	uint64_t groups = st->groups, invalid = st->invalid, c = MOCK_APERTURE_START + 40 * CHUNK;
	trigger(idev, 70, c + 0x40);
	spin_loop();
	CHECK(st->groups == groups + 1 && st->invalid == invalid, "after the storm");
	CHECK(check_map(hwpt, c, CHUNK, mem->base + c) == 0, "after the storm: not mapped");
}

int main(void)
{
	struct flint_iommu_config icfg = { .path = "/dev/iommu", .fd = -1, .chunk_bytes = CHUNK };
	struct guest_memory mem;
	const struct resolver_stats *st;
	uint32_t hwpt;

	CHECK(guest_memory_init(&mem, RAM, GUEST_BACKING_4K) == 0, "guest memory");
	for (uint64_t a = 0; a < RAM; a += 4096)
		mem.base[a] = (uint8_t)(a >> 12);
	CHECK(iommu_open(&io, &icfg, &mem) == 0, "iommu_open");
	loop = loop_new();
	CHECK(loop, "loop_new");

	struct iommu_test_cmd md = { .op = IOMMU_TEST_OP_MOCK_DOMAIN, .id = io.ioas };
	CHECK(test_cmd(&md) == 0, "MOCK_DOMAIN: %s", strerror(errno));
	uint32_t stdev = md.mock_domain.out_stdev_id, idev = md.mock_domain.out_idev_id;

	CHECK(iommu_enable_faults(&io, CHUNK, loop) == 0, "iommu_enable_faults");
	CHECK(iommu_fault_hwpt(&io, idev, &hwpt) == 0, "iommu_fault_hwpt: %s", strerror(errno));
	struct iommu_test_cmd rep = { .op = IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE,
		                      .id = stdev,
		                      .mock_domain_replace = { .pt_id = hwpt } };
	CHECK(test_cmd(&rep) == 0, "MOCK_DOMAIN_REPLACE: %s", strerror(errno));
	st = resolver_stats(io.resolver);

	/* Nothing is mapped before the device asks. */
	uint64_t gpa = MOCK_APERTURE_START + 3 * CHUNK + 0x1234;
	CHECK(check_map(hwpt, gpa & ~(CHUNK - 1), CHUNK, mem.base + (gpa & ~(CHUNK - 1))) != 0,
	      "chunk mapped before any fault");

	/* One fault: flint maps the 2 MiB chunk around it, then answers SUCCESS. */
	trigger(idev, 1, gpa);
	spin_loop();
	CHECK(st->groups == 1 && st->invalid == 0 && st->refused == 0,
	      "groups %llu invalid %llu refused %llu", (unsigned long long)st->groups,
	      (unsigned long long)st->invalid, (unsigned long long)st->refused);
	uint64_t chunk = gpa & ~(CHUNK - 1);
	CHECK(check_map(hwpt, chunk, CHUNK, mem.base + chunk) == 0,
	      "MD_CHECK_MAP of the faulted chunk: %s", strerror(errno));
	/* ... and to the right bytes: checked against different memory it fails. */
	CHECK(check_map(hwpt, chunk, CHUNK, mem.base + chunk + CHUNK) != 0,
	      "MD_CHECK_MAP matched the wrong guest memory");

	/* 16 faults in distinct chunks: read in one batch, answered in one write. */
	for (uint32_t i = 0; i < 16; i++)
		trigger(idev, 10 + i, MOCK_APERTURE_START + (8 + i) * CHUNK + i * 64);
	spin_loop();
	CHECK(st->groups == 17 && st->invalid == 0 && st->chunks_mapped == 17,
	      "groups %llu invalid %llu chunks %llu", (unsigned long long)st->groups,
	      (unsigned long long)st->invalid, (unsigned long long)st->chunks_mapped);
	for (uint32_t i = 0; i < 16; i++) {
		uint64_t c = MOCK_APERTURE_START + (8 + i) * CHUNK;
		CHECK(check_map(hwpt, c, CHUNK, mem.base + c) == 0, "chunk %u not mapped", i);
	}

	/* A second fault in a mapped chunk needs no new mapping. */
	trigger(idev, 40, gpa + 0x1000);
	spin_loop();
	CHECK(st->groups == 18 && st->chunks_mapped == 17, "re-fault mapped again");

	/* Outside guest RAM (but inside the mock's aperture): INVALID, accepted. */
	trigger(idev, 50, RAM + 0x5000);
	spin_loop();
	CHECK(st->groups == 19 && st->invalid == 1 && st->refused == 0,
	      "outside RAM: groups %llu invalid %llu refused %llu", (unsigned long long)st->groups,
	      (unsigned long long)st->invalid, (unsigned long long)st->refused);

	/* The queue is still healthy after the refusal. */
	trigger(idev, 60, MOCK_APERTURE_START + 30 * CHUNK);
	spin_loop();
	CHECK(st->groups == 20 && st->invalid == 1 && st->refused == 0, "after INVALID");
	/* iommufd_unmap takes the chunk back out; the mock domain no longer maps it. */
	CHECK(iommufd_unmap(&io.fd, io.ioas, chunk, CHUNK) == 0, "iommufd_unmap");
	CHECK(check_map(hwpt, chunk, CHUNK, mem.base + chunk) != 0,
	      "chunk still mapped after unmap");
	rig_info("flint's resolver answered %llu groups (%llu INVALID), mapped %llu chunks on "
	         "demand",
	         (unsigned long long)st->groups, (unsigned long long)st->invalid,
	         (unsigned long long)st->chunks_mapped);
	capped(&mem);
	storm(idev, hwpt, &mem);
	/* Exit without teardown: closing the iommufd releases the mock and its domains. */
	return 0;
}
