/*
 * The fault resolver (iommu/resolver.c) against the simulated IOMMU of the unit tests
 * (tests/unit/sim_iommu.c), whose fault fd behaves as the kernel's: whole groups only,
 * EINVAL (or, an older kernel, 0) when the first group does not fit, cookies reused once
 * answered. The input is a header (chunk, cap, read batch, memory layout, kernel flavour)
 * and a program: page request groups of any size and content (addresses, lengths,
 * permissions, flags, device ids), turns of the resolver, loop rounds, and failures the
 * backend injects (reads, writes, short writes, maps, EEXIST, unmaps) and the kernel's own
 * answers (a detached device). Then the resolver is run to the end and freed.
 *
 * Checked: every group is answered exactly once (by the resolver, or by the queue for a
 * group it answered itself), unless the resolver gave the queue up (a group beyond
 * RESOLVER_GROUP_MAX), when none is answered twice; a SUCCESS answer leaves every address
 * of its group mapped to the right guest bytes; with a cap, never more mapped at any
 * instant than the cap, and the resolver's count of what it holds is the IOMMU's.
 */
#include "iommu/resolver.h"
#include "iommu/uapi_compat.h"
#include "tests/fuzz/common.h"
#include "tests/unit/sim_iommu.h"
#include "vmm/base/loop.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define DEV       7
#define OTHER_DEV 9
#define KIB       (1ULL << 10)
#define MIB       (1ULL << 20)
#define HIGH      (4ULL << 30) /* region 1: above the MMIO hole, as flint lays RAM out */
#define R0_SIZE   (8 * MIB)
#define R1_SIZE   (4 * MIB + 20 * KIB) /* not a whole number of chunks: a short last unit */
#define RESERVED  (HIGH + R1_SIZE)
#define MAX_SEQ   (1u << 16) /* groups raised per input, at most */
#define MAX_RECS  (1u << 17) /* records raised per input, at most */
#define PUMP_MAX  4096       /* turns to finish in: RESOLVER_GROUP_MAX takes 64 */

/* Guest RAM: address space only (PROT_NONE), so that IOVA a is host address base + a. */
static uint8_t *base;
static struct loop *loop;

struct world {
	struct guest_memory mem;
	struct sim_iommu sim;
	struct resolver *res;
	uint64_t cap;
	/* Failures to inject: the next @n calls fail with @err (EINTR, EAGAIN, EIO...). */
	unsigned read_fails, write_fails, short_writes;
	int read_err, write_err;
	bool foreign;     /* EEXIST was injected: someone else's mappings have holes */
	uint8_t *answers; /* per group, from 1: answered yet */
	size_t answers_cap;
	uint64_t raised, records;
	/*
	 * Groups the queue answered itself, as the kernel does for a device detached from it.
	 * The cookie is then free and may be given to a group read later, while the resolver
	 * still holds the first group's answer: written, it answers the new group, maybe
	 * SUCCESS with nothing mapped for it (and the new group's own answer is refused). The
	 * kernel ABI allows no better; flint detaches devices only after resolver_free().
	 * So after one, only "exactly once" is checked, not "SUCCESS means mapped".
	 */
	unsigned preanswered;
	bool gave_up;
	bool huge_ok; /* a group beyond RESOLVER_GROUP_MAX may still be raised */
};

static ssize_t w_read(void *ctx, int fd, void *buf, size_t len)
{
	struct world *w = ctx;

	if (w->read_fails) {
		w->read_fails--;
		return -w->read_err;
	}
	return sim_iommu_backend.read(&w->sim, fd, buf, len);
}

static ssize_t w_write(void *ctx, int fd, const void *buf, size_t len)
{
	struct world *w = ctx;
	const size_t one = sizeof(struct iommu_hwpt_page_response);

	if (w->write_fails) {
		w->write_fails--;
		return -w->write_err;
	}
	if (w->short_writes && len > one) {
		/* The kernel took only the first response of several. */
		w->short_writes--;
		len = one;
	}
	return sim_iommu_backend.write(&w->sim, fd, buf, len);
}

static int w_map(void *ctx, uint64_t gpa, void *hva, uint64_t len, bool writable)
{
	struct world *w = ctx;

	/* The resolver maps guest RAM only, at IOVA = GPA, writable unless read-only. */
	FUZZ_CHECK(hva == base + gpa, "map of %#llx at host %p, not the guest's %p",
	           (unsigned long long)gpa, hva, (void *)(base + gpa));
	const struct guest_region *g = guest_memory_region(&w->mem, gpa);
	FUZZ_CHECK(g && len && len - 1 <= g->size - (gpa - g->gpa),
	           "map of %#llx+%#llx outside guest RAM", (unsigned long long)gpa,
	           (unsigned long long)len);
	FUZZ_CHECK(!(writable && g->readonly), "read-only memory at %#llx mapped writable",
	           (unsigned long long)gpa);
	int r = sim_iommu_backend.map(&w->sim, gpa, hva, len, writable);
	if (w->cap)
		FUZZ_CHECK(w->sim.mapped <= w->cap, "%llu bytes mapped under a cap of %llu",
		           (unsigned long long)w->sim.mapped, (unsigned long long)w->cap);
	return r;
}

static int w_unmap(void *ctx, uint64_t gpa, uint64_t len)
{
	struct world *w = ctx;

	return sim_iommu_backend.unmap(&w->sim, gpa, len);
}

static const struct resolver_backend backend = {
	.map = w_map, .read = w_read, .write = w_write, .unmap = w_unmap
};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	fuzz_setup();
	base = mmap(NULL, RESERVED, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	FUZZ_CHECK(base != MAP_FAILED, "cannot reserve guest address space");
	loop = loop_new();
	FUZZ_CHECK(loop != NULL, "loop_new() failed");
	return 0;
}

/* Takes the answers written so far, counting them per group. */
static void take(struct world *w)
{
	struct sim_resp r[64];
	size_t n;

	while ((n = sim_fault_take(&w->sim, r, 64)) > 0)
		for (size_t i = 0; i < n; i++) {
			FUZZ_CHECK(r[i].seq >= 1 && r[i].seq <= w->raised, "answer for group %llu",
			           (unsigned long long)r[i].seq);
			FUZZ_CHECK(w->answers[r[i].seq] == 0, "group %llu answered twice",
			           (unsigned long long)r[i].seq);
			w->answers[r[i].seq] = 1;
			if (r[i].code == IOMMUFD_PAGE_RESP_SUCCESS && !r[i].by_kernel &&
			    !w->foreign && !w->preanswered)
				FUZZ_CHECK(r[i].holes == 0,
				           "group %llu answered SUCCESS with %u records unmapped",
				           (unsigned long long)r[i].seq, r[i].holes);
		}
}

static int turn(struct world *w)
{
	int n = resolver_process(w->res);

	if (n == -E2BIG)
		w->gave_up = true;
	take(w);
	return n;
}

/* An address: mostly in guest RAM, near its edges, or anywhere. */
static uint64_t address(struct fuzz_in *in, bool two)
{
	uint8_t k = fin_u8(in);
	uint32_t v = fin_u32(in);

	switch (k % 8) {
	case 0:
	case 1:
	case 2:
		return v % R0_SIZE;
	case 3:
		return two ? HIGH + v % R1_SIZE : v % R0_SIZE;
	case 4: /* just below or at the end of a region */
		return (two && (k & 8) ? HIGH + R1_SIZE : R0_SIZE) - (v % 8192);
	case 5:
		return HIGH - 1 - (v % 8192); /* the hole */
	default:
		return (uint64_t)v << 32 | fin_u32(in);
	}
}

/* Raises one group: its size, then per record the fields a device controls. */
static void raise_group(struct world *w, struct fuzz_in *in, bool two)
{
	/*
	 * Mostly small groups; then a read buffer's worth and one more, a turn's worth of
	 * records and one more (RESOLVER_TURN_RECORDS), and (once per input, with header flag
	 * 0x40) one beyond RESOLVER_GROUP_MAX, which makes the resolver give up. That one
	 * costs milliseconds (megabytes copied and grown into), as a group of
	 * RESOLVER_GROUP_MAX exactly would, which is left to the unit tests
	 * (test_group_of_max_records).
	 */
	static const unsigned big[] = { 64, 65, 1025, RESOLVER_GROUP_MAX + 1 };
	uint8_t s = fin_u8(in);
	unsigned n = s < 0xfc ? 1 + s % 16 : big[s - 0xfc];
	unsigned distinct = n < 16 ? n : 16; /* records read off the input; a big group repeats */

	if (n > RESOLVER_GROUP_MAX) {
		if (!w->huge_ok)
			n = 1025;
		w->huge_ok = false;
	}
	struct iommu_hwpt_pgfault t[16], *recs;

	if (w->raised >= MAX_SEQ || w->records + n > MAX_RECS)
		return;
	for (unsigned i = 0; i < distinct; i++) {
		uint8_t b = fin_u8(in);
		t[i] = (struct iommu_hwpt_pgfault){
			.flags = b & 1 ? IOMMU_PGFAULT_FLAGS_PASID_VALID : 0,
			.dev_id = b & 2 ? (b & 4 ? OTHER_DEV : fin_u32(in)) : DEV,
			.pasid = b & 1 ? fin_u8(in) : 0,
			.perm = (b >> 3) & 0xf,
			.addr = address(in, two),
			.length = b & 0x80 ? fin_u32(in) : (b & 0x40 ? 4096 * fin_u8(in) : 0),
		};
	}
	recs = malloc(n * sizeof(*recs));
	FUZZ_CHECK(recs != NULL, "out of memory");
	for (unsigned i = 0; i < n; i++) {
		recs[i] = t[i % distinct];
		recs[i].addr += (uint64_t)(i / distinct) * 4096; /* a big group walks on */
	}
	if (w->raised + 2 > w->answers_cap) {
		size_t cap = w->answers_cap ? 2 * w->answers_cap : 64;
		uint8_t *a = realloc(w->answers, cap);
		FUZZ_CHECK(a != NULL, "out of memory");
		memset(a + w->answers_cap, 0, cap - w->answers_cap);
		w->answers = a;
		w->answers_cap = cap;
	}
	uint64_t seq = sim_fault_raise(&w->sim, recs, n);
	free(recs);
	FUZZ_CHECK(seq == w->raised + 1, "sim_fault_raise() said %llu", (unsigned long long)seq);
	w->raised = seq;
	w->records += n;
}

/*
 * What read(2) and write(2) of the fault fd may fail with. Not EINVAL for a write: the
 * kernel says that only of a response it refuses (an unknown or answered cookie), which
 * the resolver then skips; for a read it means the first group does not fit.
 */
static const int read_errs[] = { EINTR, EAGAIN, EIO, ENOMEM, EINVAL, EFAULT };
static const int write_errs[] = { EINTR, EAGAIN, EIO, ENOMEM, EFAULT, ENODEV };

/*
 * A device's PRI allocation (resolver_add_device()'s max_group): mostly small, the read
 * buffer being sized for it up front, sometimes large or beyond what a device may have.
 */
static uint32_t max_group(struct fuzz_in *in)
{
	static const uint32_t big[] = { 1024, 4096, RESOLVER_GROUP_MAX, RESOLVER_GROUP_MAX + 1,
		                        UINT32_MAX };
	uint8_t g = fin_u8(in);

	return g < 0xfb ? g : big[g - 0xfb];
}

static void program(struct world *w, struct fuzz_in *in, bool two, bool attached)
{
	for (unsigned steps = 0; !fin_empty(in) && steps < 4096; steps++) {
		uint8_t op = fin_u8(in);
		/* The high bits: variants (counts, which error, which device). */
		switch (op & 15) {
		case 0:
		case 1:
		case 2:
		case 12:
		case 13:
			raise_group(w, in, two);
			break;
		case 3:
		case 4:
		case 14:
		case 15:
			turn(w);
			break;
		case 5:
			if (attached)
				loop_run_once(loop, 0);
			take(w);
			break;
		case 6:
			w->read_fails = 1 + (op >> 4) % 4;
			w->read_err = read_errs[fin_u8(in) % 6];
			break;
		case 7:
			w->write_fails = 1 + (op >> 4) % 4;
			w->write_err = write_errs[fin_u8(in) % 6];
			break;
		case 8:
			w->short_writes = 1 + (op >> 4) % 4;
			break;
		case 9: /* the kernel answers a delivered group itself (its device went) */
			if (w->raised) {
				sim_fault_preanswer(&w->sim, 1 + fin_u16(in) % w->raised);
				w->preanswered++;
			}
			break;
		case 10: { /* the IOAS refuses a range, or someone else mapped it */
			uint64_t lo = address(in, two) & ~4095ULL,
			         hi = lo + 4096ULL * (1 + fin_u8(in));
			if (op & 0x10) {
				w->sim.exist_lo = lo, w->sim.exist_hi = hi;
				w->foreign = true;
			} else {
				w->sim.fail_lo = lo, w->sim.fail_hi = hi;
				w->sim.fail_errno = (op & 0x20) ? ENOMEM : EFAULT;
			}
			break;
		}
		default: /* 11 */
			if (op & 0x10) {
				w->sim.unmap_errno = (op & 0x20) ? EIO : 0;
			} else if (resolver_add_device(w->res, (op & 0x20) ? OTHER_DEV : DEV,
			                               max_group(in))) {
				FUZZ_CHECK(false, "resolver_add_device() failed");
			}
			break;
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };
	struct world *w = calloc(1, sizeof(*w));
	uint8_t flags = fin_u8(&in), c = fin_u8(&in), k = fin_u8(&in), batch = fin_u8(&in);
	uint32_t group = max_group(&in);
	bool two = flags & 1, attached = flags & 2;
	uint64_t chunk = 4096ULL << (c % 12); /* 4 KiB to 8 MiB: above 2 MiB, in pieces */

	FUZZ_CHECK(w != NULL, "out of memory");
	w->mem = (struct guest_memory){ .fd = -1, .base = base, .size = R0_SIZE, .nregions = 1 };
	w->mem.regions[0] = (struct guest_region){ 0, R0_SIZE, base, 0, flags & 4 };
	if (two) {
		w->mem.regions[1] =
		        (struct guest_region){ HIGH, R1_SIZE, base + HIGH, R0_SIZE, flags & 8 };
		w->mem.nregions = 2;
		w->mem.size += R1_SIZE;
	}
	/* The config's rule: a cap holds at least one chunk (flint.iommu.max_mapped_mib). */
	if (flags & 0x10)
		w->cap = chunk * (1 + k % 8) + (k & 0x80 ? 4096ULL * (k & 0x70) : 0);
	FUZZ_CHECK(sim_iommu_init(&w->sim) == 0, "sim_iommu_init() failed");
	w->sim.guest_base = base;
	w->sim.old_kernel = flags & 0x20;
	w->huge_ok = flags & 0x40;
	struct resolver_params p = { .fault_fd = w->sim.fd,
		                     .mem = &w->mem,
		                     .chunk = chunk,
		                     .batch = batch,
		                     .backend = &backend,
		                     .backend_ctx = w,
		                     .name = "fuzzed queue",
		                     .max_mapped = w->cap };
	w->res = resolver_new(&p);
	FUZZ_CHECK(w->res != NULL, "resolver_new() failed: chunk %llu, cap %llu",
	           (unsigned long long)chunk, (unsigned long long)w->cap);
	FUZZ_CHECK(resolver_add_device(w->res, DEV, group) == 0, "resolver_add_device() failed");
	if (attached)
		FUZZ_CHECK(resolver_attach(w->res, loop) == 0, "resolver_attach() failed");

	program(w, &in, two, attached);

	/* To the end: no more failures, turns until every group is answered. */
	w->read_fails = w->write_fails = w->short_writes = 0;
	w->sim.fail_lo = w->sim.fail_hi = 0;
	w->sim.unmap_errno = 0;
	for (unsigned i = 0; i < PUMP_MAX && !w->gave_up && sim_fault_open(&w->sim); i++)
		turn(w);
	if (!w->gave_up)
		FUZZ_CHECK(sim_fault_open(&w->sim) == 0,
		           "%u groups still open after %d turns (%llu raised)",
		           sim_fault_open(&w->sim), PUMP_MAX, (unsigned long long)w->raised);
	const struct resolver_stats *st = resolver_stats(w->res);
	FUZZ_CHECK(st->bytes_mapped - st->bytes_unmapped == w->sim.mapped,
	           "the resolver holds %llu bytes, the IOMMU has %llu mapped",
	           (unsigned long long)(st->bytes_mapped - st->bytes_unmapped),
	           (unsigned long long)w->sim.mapped);
	if (w->cap)
		FUZZ_CHECK(w->sim.mapped_max <= w->cap, "%llu bytes mapped at once, cap %llu",
		           (unsigned long long)w->sim.mapped_max, (unsigned long long)w->cap);
	/* Only an answer the queue gave itself makes the resolver's own one refused. */
	FUZZ_CHECK(st->refused <= w->preanswered,
	           "%llu responses refused, %u by the kernel's doing",
	           (unsigned long long)st->refused, w->preanswered);
	resolver_free(w->res);
	take(w);
	for (uint64_t s = 1; s <= w->raised && !w->gave_up; s++)
		FUZZ_CHECK(w->answers[s] == 1, "group %llu of %llu never answered",
		           (unsigned long long)s, (unsigned long long)w->raised);
	sim_iommu_destroy(&w->sim);
	/* What a turn left on the loop (a backoff timer, prefetch) went with the resolver. */
	loop_run_once(loop, 0);
	free(w->answers);
	free(w);
	return 0;
}
