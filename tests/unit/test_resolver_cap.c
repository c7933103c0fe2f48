/*
 * The resolver's cap on mapped memory (resolver_params.max_mapped) against the simulated
 * IOMMU, whose unmap behaves as IOAS_UNMAP and which records, at every answer, whether
 * the group's addresses still translated to the right guest bytes (sim_resp.holes), and
 * the most it ever had mapped at once (sim.mapped_max): the cap must hold at every
 * instant, not only between calls.
 */
#include "tests/lib/util.h"
#include "iommu/resolver.h"
#include "iommu/uapi_compat.h"
#include "tests/unit/sim_iommu.h"
#include "vmm/base/loop.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#define DEV   7
#define CHUNK (64 * 1024ULL)
#define RD    IOMMU_PGFAULT_PERM_READ
#define WR    (IOMMU_PGFAULT_PERM_READ | IOMMU_PGFAULT_PERM_WRITE)
#define MIB   (1ULL << 20)
#define OK    IOMMUFD_PAGE_RESP_SUCCESS
#define BAD   IOMMUFD_PAGE_RESP_INVALID

struct fixture {
	struct guest_memory mem;
	struct sim_iommu sim;
	struct loop *loop;
	struct resolver *res;
	uint64_t chunk, cap;
	uint64_t foreign;     /* bytes the test mapped itself: not the resolver's */
	unsigned write_fails; /* the next writes of answers fail with EIO */
};

/* The simulation, with write failures the test injects. */
static int wrap_map(void *ctx, uint64_t gpa, void *hva, uint64_t len, bool writable)
{
	struct fixture *f = ctx;

	return sim_iommu_backend.map(&f->sim, gpa, hva, len, writable);
}

static ssize_t wrap_read(void *ctx, int fd, void *buf, size_t len)
{
	struct fixture *f = ctx;

	return sim_iommu_backend.read(&f->sim, fd, buf, len);
}

static ssize_t wrap_write(void *ctx, int fd, const void *buf, size_t len)
{
	struct fixture *f = ctx;

	if (f->write_fails) {
		f->write_fails--;
		return -EIO;
	}
	return sim_iommu_backend.write(&f->sim, fd, buf, len);
}

static int wrap_unmap(void *ctx, uint64_t gpa, uint64_t len)
{
	struct fixture *f = ctx;

	return sim_iommu_backend.unmap(&f->sim, gpa, len);
}

static const struct resolver_backend wrap_backend = {
	.map = wrap_map, .read = wrap_read, .write = wrap_write, .unmap = wrap_unmap};

/* Never more than the cap mapped, at any instant, whatever the test did. */
static void check_peak(struct fixture *f)
{
	assert_true(f->sim.mapped_max <= f->cap + f->foreign);
}

/* A fresh IOMMU (mapping IOVA a to the guest's byte a), nothing mapped. */
static void sim_fresh(struct fixture *f)
{
	assert_int_equal(sim_iommu_init(&f->sim), 0);
	f->sim.guest_base = f->mem.base;
	f->foreign = 0;
}

/* A resolver with @chunk and a cap of @cap bytes, on no loop yet, on a fresh IOMMU. */
static void start(struct fixture *f, uint64_t chunk, uint64_t cap)
{
	struct resolver_params p = {.fault_fd = f->sim.fd,
				    .mem = &f->mem,
				    .chunk = chunk,
				    .backend = &wrap_backend,
				    .backend_ctx = f,
				    .name = "capped queue",
				    .max_mapped = cap};

	if (f->res) {
		resolver_free(f->res);
		check_peak(f);
		sim_iommu_destroy(&f->sim);
		sim_fresh(f);
		p.fault_fd = f->sim.fd;
	}
	f->chunk = chunk;
	f->cap = cap;
	f->res = resolver_new(&p);
	assert_non_null(f->res);
	assert_int_equal(resolver_add_device(f->res, DEV, 0), 0);
}

static int setup_size(void **state, uint64_t mem_size)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_int_equal(guest_memory_init(&f->mem, mem_size, GUEST_BACKING_4K), 0);
	sim_fresh(f);
	f->loop = loop_new();
	assert_non_null(f->loop);
	for (uint64_t a = 0; a < mem_size; a += 4096)
		f->mem.base[a] = (uint8_t)(a >> 12);
	*state = f;
	return 0;
}

static int setup(void **state)
{
	return setup_size(state, 16 * MIB);
}

static int setup_64m(void **state)
{
	return setup_size(state, 64 * MIB);
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	resolver_free(f->res);
	loop_free(f->loop);
	check_peak(f);
	sim_iommu_destroy(&f->sim);
	guest_memory_destroy(&f->mem);
	free(f);
	return 0;
}

static struct iommu_hwpt_pgfault rec(uint64_t addr, uint32_t perm)
{
	return (struct iommu_hwpt_pgfault){.dev_id = DEV, .perm = perm, .addr = addr};
}

/* Raises a group of one record per address of @addrs; returns its sequence number. */
static uint64_t raise_group(struct fixture *f, const uint64_t *addrs, unsigned n)
{
	struct iommu_hwpt_pgfault recs[16];

	assert_true(n <= 16);
	for (unsigned i = 0; i < n; i++)
		recs[i] = rec(addrs[i], WR);
	uint64_t seq = sim_fault_raise(&f->sim, recs, n);
	assert_true(seq > 0);
	return seq;
}

static uint64_t raise1(struct fixture *f, uint64_t addr)
{
	return raise_group(f, &addr, 1);
}

/* What the cap counts, by the resolver and by the IOMMU: they agree, and it holds. */
static uint64_t held(struct fixture *f)
{
	const struct resolver_stats *s = resolver_stats(f->res);

	assert_int_equal(s->bytes_mapped - s->bytes_unmapped, f->sim.mapped - f->foreign);
	assert_true(f->sim.mapped - f->foreign <= f->cap);
	return f->sim.mapped - f->foreign;
}

/* Takes the one answer expected: group @seq, @code, and for SUCCESS no hole in it. */
static struct sim_resp expect_one(struct fixture *f, uint64_t seq, uint32_t code)
{
	struct sim_resp r[2];

	assert_int_equal(sim_fault_take(&f->sim, r, 2), 1);
	assert_int_equal(r[0].seq, seq);
	assert_int_equal(r[0].code, code);
	if (code == OK)
		assert_int_equal(r[0].holes, 0);
	return r[0];
}

/* One fault at @addr, served and answered @code. */
static void fault(struct fixture *f, uint64_t addr, uint32_t code)
{
	uint64_t g = raise1(f, addr);

	assert_int_equal(resolver_process(f->res), 1);
	expect_one(f, g, code);
	held(f);
}

static bool mapped(struct fixture *f, uint64_t chunk_no)
{
	uint64_t a = chunk_no * f->chunk;
	uint8_t *p = sim_iommu_translate(&f->sim, a, false);

	/* The resolver's own view agrees with the IOMMU's, and a mapping is the guest's. */
	assert_int_equal(p != NULL, resolver_is_mapped(f->res, a));
	if (p)
		assert_ptr_equal(p, f->mem.base + a);
	return p != NULL;
}

/* The simulated IOAS_UNMAP refuses what the kernel's does (iopt_unmap_iova()). */
static void test_sim_unmap_like_ioas_unmap(void **state)
{
	struct fixture *f = *state;
	struct sim_iommu *s = &f->sim;
	const struct resolver_backend *b = &sim_iommu_backend;
	uint8_t *hva = f->mem.base;

	f->cap = UINT64_MAX;
	assert_int_equal(b->map(s, 0x1000, hva, 0x2000, true), 0);
	assert_int_equal(b->map(s, 0x4000, hva, 0x1000, true), 0);
	assert_int_equal(b->map(s, 0x8000, hva, 0x2000, true), 0);
	assert_int_equal(s->mapped, 0x5000);
	assert_int_equal(b->unmap(s, 0x1000, 0), -EINVAL);
	assert_int_equal(b->unmap(s, UINT64_MAX & ~4095ULL, 0x2000), -EOVERFLOW);
	assert_int_equal(b->unmap(s, 0x6000, 0x1000), -ENOENT); /* nothing there */
	assert_int_equal(b->unmap(s, 0x2000, 0x1000), -ENOENT); /* cuts a mapping */
	assert_int_equal(s->mapped, 0x5000);
	/* Whole mappings in order, until one that the range only cuts: the first is gone. */
	assert_int_equal(b->unmap(s, 0x0, 0x9000), -ENOENT);
	assert_null(sim_iommu_translate(s, 0x1000, false));
	assert_null(sim_iommu_translate(s, 0x4000, false));
	assert_non_null(sim_iommu_translate(s, 0x8000, false));
	assert_int_equal(s->mapped, 0x2000);
	assert_int_equal(b->unmap(s, 0x8000, 0x2000), 0);
	assert_null(sim_iommu_translate(s, 0x9fff, false));
	assert_int_equal(s->mapped, 0);
	assert_int_equal(s->mapped_max, 0x5000);
	assert_int_equal(s->unmap_bytes, 0x5000);
	/* Unmapped means gone: the range can be mapped again, to other memory. */
	assert_int_equal(b->map(s, 0x8000, hva + 0x3000, 0x1000, true), 0);
	assert_ptr_equal(sim_iommu_translate(s, 0x8000, false), hva + 0x3000);
}

/* The least recently faulted chunk goes first. */
static void test_lru_order(void **state)
{
	struct fixture *f = *state;

	start(f, CHUNK, 3 * CHUNK);
	for (uint64_t c = 0; c < 3; c++)
		fault(f, c * CHUNK + 0x100, OK);
	assert_int_equal(f->sim.unmap_calls, 0);
	fault(f, 3 * CHUNK, OK);
	assert_false(mapped(f, 0));
	assert_true(mapped(f, 1) && mapped(f, 2) && mapped(f, 3));
	fault(f, 4 * CHUNK, OK);
	assert_false(mapped(f, 1));
	assert_true(mapped(f, 2) && mapped(f, 3) && mapped(f, 4));
	assert_int_equal(held(f), 3 * CHUNK);
	assert_int_equal(resolver_stats(f->res)->chunks_unmapped, 2);
}

/* A fault in a mapped chunk maps nothing and makes it the most recent again. */
static void test_refresh_on_hit(void **state)
{
	struct fixture *f = *state;

	start(f, CHUNK, 3 * CHUNK);
	for (uint64_t c = 0; c < 3; c++)
		fault(f, c * CHUNK, OK);
	unsigned maps = f->sim.map_calls;
	fault(f, 0 * CHUNK + 0x2000, OK); /* chunk 0 again */
	assert_int_equal(f->sim.map_calls, maps);
	fault(f, 3 * CHUNK, OK);
	assert_true(mapped(f, 0)); /* refreshed: chunk 1 went instead */
	assert_false(mapped(f, 1));
	fault(f, 4 * CHUNK, OK);
	assert_false(mapped(f, 2));
	assert_true(mapped(f, 0) && mapped(f, 3) && mapped(f, 4));
	/* Two records of one group in one chunk: used once, mapped once. */
	uint64_t two[2] = {5 * CHUNK, 5 * CHUNK + 0x3000};
	uint64_t g = raise_group(f, two, 2);
	assert_int_equal(resolver_process(f->res), 1);
	expect_one(f, g, OK);
	assert_false(mapped(f, 0));
	assert_int_equal(held(f), 3 * CHUNK);
}

/* Up to the cap nothing is unmapped; at it, exactly what makes room. */
static void test_cap_exactly_reached(void **state)
{
	struct fixture *f = *state;

	start(f, CHUNK, 4 * CHUNK);
	for (uint64_t c = 0; c < 4; c++)
		fault(f, c * CHUNK, OK);
	assert_int_equal(held(f), f->cap);
	assert_int_equal(f->sim.unmap_calls, 0);
	fault(f, 10 * CHUNK, OK);
	assert_int_equal(f->sim.unmap_calls, 1);
	assert_int_equal(held(f), f->cap);
	/* A cap that is not a whole number of chunks holds what fits: three and a half, three. */
	start(f, CHUNK, 7 * CHUNK / 2);
	for (uint64_t c = 20; c < 23; c++)
		fault(f, c * CHUNK, OK);
	assert_int_equal(f->sim.unmap_calls, 0);
	fault(f, 30 * CHUNK, OK);
	assert_int_equal(f->sim.unmap_calls, 1);
	assert_false(mapped(f, 20));
	assert_int_equal(held(f), 3 * CHUNK);
}

/* A chunk the cap took comes back on the next fault, mapping the same guest bytes. */
static void test_refault_same_bytes(void **state)
{
	struct fixture *f = *state;
	uint64_t a = 2 * CHUNK + 0x1234;

	start(f, CHUNK, 2 * CHUNK);
	f->mem.base[a] = 0x5a;
	fault(f, a, OK);
	fault(f, 5 * CHUNK, OK);
	fault(f, 6 * CHUNK, OK);
	assert_null(sim_iommu_translate(&f->sim, a, false)); /* really gone from the IOMMU */
	assert_int_equal(resolver_stats(f->res)->refaults, 0);
	fault(f, a, OK);
	uint8_t *p = sim_iommu_translate(&f->sim, a, true);
	assert_ptr_equal(p, f->mem.base + a);
	assert_int_equal(*p, 0x5a);
	*p = 0xa5; /* the device writes: the guest sees it */
	assert_int_equal(f->mem.base[a], 0xa5);
	const struct resolver_stats *s = resolver_stats(f->res);
	assert_int_equal(s->refaults, 1);
	assert_int_equal(s->chunks_unmapped, 2);
	assert_int_equal(s->chunks_mapped, 4);
}

/*
 * Three groups in one read, a cap of two chunks: the third waits until the first two
 * answers are written, and only then is a chunk of theirs unmapped.
 */
static void test_inflight_protection(void **state)
{
	struct fixture *f = *state;
	struct sim_resp r[4];

	start(f, CHUNK, 2 * CHUNK);
	raise1(f, 1 * CHUNK);
	raise1(f, 2 * CHUNK);
	raise1(f, 3 * CHUNK);
	assert_int_equal(resolver_process(f->res), 3);
	assert_int_equal(sim_fault_take(&f->sim, r, 4), 3);
	for (unsigned i = 0; i < 3; i++) {
		assert_int_equal(r[i].seq, i + 1);
		assert_int_equal(r[i].code, OK);
		assert_int_equal(r[i].holes, 0);
	}
	assert_int_equal(r[0].unmap_calls, 0); /* answered before anything was unmapped */
	assert_int_equal(r[1].unmap_calls, 0);
	assert_int_equal(r[2].unmap_calls, 1);
	assert_int_equal(f->sim.writes, 2);
	assert_int_equal(resolver_stats(f->res)->cap_waits, 1);
	assert_false(mapped(f, 1));
	held(f);

	/* The answers cannot be written: the waiting record keeps waiting, nothing is unmapped. */
	raise1(f, 4 * CHUNK);
	raise1(f, 5 * CHUNK);
	raise1(f, 6 * CHUNK);
	f->write_fails = 2; /* the turn's write, and the one resolver_process() tries after it */
	assert_int_equal(resolver_process(f->res), -EIO);
	assert_int_equal(f->sim.unmap_calls, 3); /* and chunks 2 and 3, whose answers are written */
	assert_true(mapped(f, 4) && mapped(f, 5));
	assert_false(mapped(f, 6));
	assert_int_equal(f->sim.answered, 3);
	assert_int_equal(sim_fault_open(&f->sim), 3);
	/* Once they are written, it is served. */
	assert_int_equal(resolver_process(f->res), 3);
	assert_int_equal(sim_fault_take(&f->sim, r, 4), 3);
	for (unsigned i = 0; i < 3; i++) {
		assert_int_equal(r[i].seq, i + 4);
		assert_int_equal(r[i].code, OK);
		assert_int_equal(r[i].holes, 0);
	}
	assert_true(mapped(f, 6));
	assert_int_equal(held(f), 2 * CHUNK);
}

/*
 * A group that alone needs more than the cap can never be served within it, and waiting
 * would never end: it is answered INVALID, and the queue goes on.
 */
static void test_group_larger_than_cap(void **state)
{
	struct fixture *f = *state;
	uint64_t three[3] = {1 * CHUNK, 2 * CHUNK, 3 * CHUNK};
	uint64_t two_chunks[3] = {4 * CHUNK, 5 * CHUNK, 4 * CHUNK + 0x8000};
	struct sim_resp r[4];

	start(f, CHUNK, 2 * CHUNK);
	uint64_t g = raise_group(f, three, 3);
	assert_int_equal(resolver_process(f->res), 1);
	expect_one(f, g, BAD);
	assert_int_equal(resolver_stats(f->res)->invalid, 1);
	held(f);
	/* Three records in two chunks fit: served, the big group's chunks making room. */
	g = raise_group(f, two_chunks, 3);
	assert_int_equal(resolver_process(f->res), 1);
	expect_one(f, g, OK);
	assert_true(mapped(f, 4) && mapped(f, 5));
	/* Behind an answer not written yet: it waits for that, then is refused all the same. */
	uint64_t g1 = raise1(f, 9 * CHUNK);
	g = raise_group(f, three, 3);
	uint64_t g3 = raise1(f, 10 * CHUNK);
	assert_int_equal(resolver_process(f->res), 3);
	assert_int_equal(sim_fault_take(&f->sim, r, 4), 3);
	assert_int_equal(r[0].seq, g1);
	assert_int_equal(r[0].code, OK);
	assert_int_equal(r[0].holes, 0);
	assert_int_equal(r[1].seq, g);
	assert_int_equal(r[1].code, BAD);
	assert_int_equal(r[2].seq, g3);
	assert_int_equal(r[2].code, OK);
	assert_int_equal(r[2].holes, 0);
	assert_int_equal(resolver_stats(f->res)->invalid, 2);
	assert_int_equal(sim_fault_open(&f->sim), 0);
	held(f);
}

/*
 * The unit holding the start of a length hint is no part of the answer: it is mapped only
 * into free room, never held for the answer, and a later record of the same group may
 * take it back. Held like an address, it made a group that fits the cap look larger.
 */
static void test_hint_not_held(void **state)
{
	struct fixture *f = *state;
	struct iommu_hwpt_pgfault two[2] = {rec(0xF000, WR), rec(5 * CHUNK, WR)};
	unsigned unmaps;

	two[0].length = 0x2000; /* runs into chunk 1 */
	start(f, CHUNK, 2 * CHUNK);
	/* The hint's chunk is mapped into free room, then gives it up to record 2. */
	uint64_t g = sim_fault_raise(&f->sim, two, 2);
	assert_int_equal(resolver_process(f->res), 1);
	expect_one(f, g, OK);
	assert_true(mapped(f, 0) && mapped(f, 5));
	assert_false(mapped(f, 1));
	assert_int_equal(f->sim.map_calls, 3);
	assert_int_equal(resolver_stats(f->res)->chunks_unmapped, 1);
	assert_int_equal(resolver_stats(f->res)->refaults, 0);
	assert_int_equal(resolver_stats(f->res)->invalid, 0);
	assert_int_equal(held(f), 2 * CHUNK);

	/* A hint's chunk mapped already, by a fault before: not held either. */
	start(f, CHUNK, 2 * CHUNK);
	fault(f, 1 * CHUNK, OK);
	g = sim_fault_raise(&f->sim, two, 2);
	assert_int_equal(resolver_process(f->res), 1);
	expect_one(f, g, OK);
	assert_true(mapped(f, 0) && mapped(f, 5));
	assert_false(mapped(f, 1));
	assert_int_equal(held(f), 2 * CHUNK);

	/* The cap is full: the hint's chunk is left, and nothing is unmapped for it. */
	start(f, CHUNK, 2 * CHUNK);
	fault(f, 2 * CHUNK, OK);
	fault(f, 3 * CHUNK, OK);
	unmaps = f->sim.unmap_calls;
	struct iommu_hwpt_pgfault r3 = rec(4 * CHUNK - 0x1000, WR);
	r3.length = 0x2000; /* runs into chunk 4 */
	g = sim_fault_raise(&f->sim, &r3, 1);
	assert_int_equal(resolver_process(f->res), 1);
	expect_one(f, g, OK);
	assert_int_equal(f->sim.unmap_calls, unmaps);
	assert_true(mapped(f, 2) && mapped(f, 3));
	assert_false(mapped(f, 4));
	assert_int_equal(held(f), 2 * CHUNK);
}

/* An unmap that fails refuses the request that needed the room, and leaves the cap whole. */
static void test_unmap_failure(void **state)
{
	struct fixture *f = *state;

	start(f, CHUNK, 2 * CHUNK);
	fault(f, 1 * CHUNK, OK);
	fault(f, 2 * CHUNK, OK);
	f->sim.unmap_errno = EBUSY;
	fault(f, 3 * CHUNK, BAD);
	assert_true(mapped(f, 1) && mapped(f, 2));
	assert_false(mapped(f, 3));
	f->sim.unmap_errno = 0;
	/* The one that failed went last in line: the other one goes first. */
	fault(f, 3 * CHUNK, OK);
	assert_true(mapped(f, 1));
	assert_false(mapped(f, 2));
	assert_int_equal(resolver_stats(f->res)->chunks_unmapped, 1);
}

/* Memory someone else mapped (EEXIST) is not the resolver's: not counted, never unmapped. */
static void test_foreign_mapping_not_counted(void **state)
{
	struct fixture *f = *state;

	start(f, CHUNK, 2 * CHUNK);
	/* Chunks 8-11 mapped by someone else in one mapping, as pin mode maps a region. */
	f->foreign = 4 * CHUNK;
	assert_int_equal(sim_iommu_backend.map(&f->sim, 8 * CHUNK, f->mem.base + 8 * CHUNK,
					       f->foreign, true),
			 0);
	fault(f, 9 * CHUNK, OK);
	assert_true(resolver_is_mapped(f->res, 9 * CHUNK));
	fault(f, 1 * CHUNK, OK);
	fault(f, 2 * CHUNK, OK);
	fault(f, 3 * CHUNK, OK);
	assert_int_equal(f->sim.unmap_calls, 1); /* chunk 1, not the foreign one */
	assert_true(resolver_is_mapped(f->res, 9 * CHUNK));
	assert_non_null(sim_iommu_translate(&f->sim, 9 * CHUNK, false));
	assert_int_equal(held(f), 2 * CHUNK);
	assert_int_equal(resolver_stats(f->res)->chunks_mapped, 3);
}

static bool prefetch_done(struct fixture *f)
{
	return !resolver_prefetching(f->res);
}

static void on_check(void *arg)
{
	struct fixture *f = arg;

	if (prefetch_done(f))
		loop_stop(f->loop, 0);
}

static void on_expire(void *arg)
{
	struct fixture *f = arg;

	loop_stop(f->loop, 1);
}

/* Runs the loop until the prefetch queue is empty, at most 5 s. */
static void run_prefetch(struct fixture *f)
{
	struct loop_watch *check = loop_add_timer(f->loop, 1000, true, on_check, f);
	struct loop_watch *limit = loop_add_timer(f->loop, 5000000, false, on_expire, f);

	assert_non_null(check);
	assert_non_null(limit);
	int code = loop_run(f->loop);
	loop_remove(check);
	if (code == 0)
		loop_remove(limit);
	assert_int_equal(code, 0);
	assert_true(prefetch_done(f));
}

#define BIG (8 * MIB) /* 4 units of 2 MiB */

static bool chunk_whole(struct fixture *f, uint64_t c, bool want)
{
	for (uint64_t a = c * BIG; a < (c + 1) * BIG; a += RESOLVER_UNIT_MAX)
		if ((sim_iommu_translate(&f->sim, a, false) != NULL) != want)
			return false;
	return true;
}

/*
 * Prefetch counts, and only fills the room the cap has free: it maps the rest of a chunk
 * while that fits, and once the cap is full it unmaps nothing and leaves the rest to
 * faults, whether the units it would take are in flight or not.
 */
static void test_cap_with_prefetch(void **state)
{
	struct fixture *f = *state;

	start(f, BIG, 2 * BIG);
	assert_int_equal(resolver_attach(f->res, f->loop), 0);
	for (uint64_t c = 0; c < 2; c++) {
		fault(f, c * BIG + 3 * MIB, OK);
		run_prefetch(f);
		assert_true(chunk_whole(f, c, true));
		held(f);
	}
	assert_int_equal(f->sim.unmap_calls, 0);
	/* Full: the third chunk's fault unmaps the least recent unit, its prefetch nothing. */
	fault(f, 2 * BIG + 3 * MIB, OK);
	run_prefetch(f);
	assert_int_equal(f->sim.unmap_calls, 1);
	assert_null(sim_iommu_translate(&f->sim, 3 * MIB, false)); /* chunk 0's faulted unit */
	assert_non_null(sim_iommu_translate(&f->sim, 2 * BIG + 3 * MIB, false));
	assert_null(sim_iommu_translate(&f->sim, 2 * BIG, false));
	assert_null(sim_iommu_translate(&f->sim, 2 * BIG + 5 * MIB, false));
	assert_true(chunk_whole(f, 1, true));
	assert_int_equal(held(f), 2 * BIG);
	const struct resolver_stats *s = resolver_stats(f->res);
	assert_int_equal(s->prefetched, 2 * (BIG - RESOLVER_UNIT_MAX));
	assert_int_equal(s->chunks_unmapped, 1);

	/* One group holds the whole cap, its answer not written: prefetch has no room. */
	start(f, BIG, BIG);
	assert_int_equal(resolver_attach(f->res, f->loop), 0);
	uint64_t four[4] = {3 * BIG, 4 * BIG, 5 * BIG, 6 * BIG};
	uint64_t g = raise_group(f, four, 4);
	f->write_fails = 1000; /* also the backoff's retries while the loop runs */
	assert_int_equal(resolver_process(f->res), -EIO);
	assert_int_equal(f->sim.map_calls, 4);
	run_prefetch(f); /* the queued rest of the four chunks is dropped */
	assert_int_equal(f->sim.map_calls, 4);
	assert_int_equal(f->sim.unmap_calls, 0);
	f->write_fails = 0;
	assert_int_equal(resolver_process(f->res), 1);
	expect_one(f, g, OK);
	assert_int_equal(held(f), BIG);
	/* Written, they are no longer in flight: a fault takes one, prefetch still none. */
	fault(f, 3 * BIG + 3 * MIB, OK);
	run_prefetch(f);
	assert_int_equal(f->sim.map_calls, 5);
	assert_int_equal(f->sim.unmap_calls, 1);
	assert_int_equal(held(f), BIG);
}

/*
 * Faults in two chunks in one read, a cap of one chunk: the two faulted units are mapped
 * and answered; the chunks' prefetch fills the free room and stops there. It never
 * unmaps a unit a device faulted on for a guess (a device never faults on what is mapped,
 * so the LRU order is the order of mapping, and the guesses would count as newer).
 */
static void test_prefetch_keeps_faulted(void **state)
{
	struct fixture *f = *state;
	struct sim_resp r[3];

	start(f, BIG, BIG);
	assert_int_equal(resolver_attach(f->res, f->loop), 0);
	uint64_t a = raise1(f, 0x1000);
	uint64_t c = raise1(f, BIG + 0x1000);
	assert_int_equal(resolver_process(f->res), 2);
	assert_int_equal(sim_fault_take(&f->sim, r, 3), 2);
	assert_int_equal(r[0].seq, a);
	assert_int_equal(r[1].seq, c);
	assert_true(r[0].code == OK && r[1].code == OK && !r[0].holes && !r[1].holes);
	run_prefetch(f);
	/* Both faulted units survive their chunks' prefetch. */
	assert_non_null(sim_iommu_translate(&f->sim, 0x1000, false));
	assert_non_null(sim_iommu_translate(&f->sim, BIG + 0x1000, false));
	/* A1 and A2 filled the room; A3 and C1-C3 were left to faults. */
	assert_non_null(sim_iommu_translate(&f->sim, 1 * RESOLVER_UNIT_MAX, false));
	assert_non_null(sim_iommu_translate(&f->sim, 2 * RESOLVER_UNIT_MAX, false));
	assert_null(sim_iommu_translate(&f->sim, 3 * RESOLVER_UNIT_MAX, false));
	for (uint64_t u = 1; u < 4; u++)
		assert_null(sim_iommu_translate(&f->sim, BIG + u * RESOLVER_UNIT_MAX, false));
	assert_int_equal(f->sim.unmap_calls, 0);
	assert_int_equal(resolver_stats(f->res)->prefetched, 2 * RESOLVER_UNIT_MAX);
	assert_int_equal(held(f), BIG);
	/* A fault there is served as ever: the least recent unit, A0, makes room. */
	fault(f, BIG + 3 * RESOLVER_UNIT_MAX, OK);
	assert_int_equal(f->sim.unmap_calls, 1);
	assert_null(sim_iommu_translate(&f->sim, 0x1000, false));
	assert_non_null(sim_iommu_translate(&f->sim, BIG + 0x1000, false));
	run_prefetch(f);
	assert_int_equal(f->sim.unmap_calls, 1);
	assert_int_equal(held(f), BIG);
}

/* The counters, together. */
static void test_counters(void **state)
{
	struct fixture *f = *state;

	start(f, CHUNK, 2 * CHUNK);
	for (unsigned round = 0; round < 3; round++)
		for (uint64_t c = 0; c < 4; c++)
			fault(f, c * CHUNK, OK);
	const struct resolver_stats *s = resolver_stats(f->res);
	assert_int_equal(s->chunks_mapped, 12);
	assert_int_equal(s->chunks_unmapped, 10);
	assert_int_equal(s->bytes_unmapped, 10 * CHUNK);
	assert_int_equal(s->refaults, 8); /* every fault after the first round */
	assert_int_equal(s->cap_waits, 0);
	assert_int_equal(s->groups, 12);
	raise1(f, 8 * CHUNK);
	raise1(f, 9 * CHUNK);
	raise1(f, 10 * CHUNK);
	assert_int_equal(resolver_process(f->res), 3);
	assert_int_equal(s->cap_waits, 1);
	assert_int_equal(held(f), 2 * CHUNK);
}

/*
 * Random groups of 1-3 records, a few outside RAM, a few of more chunks than the cap,
 * some with a length hint into the next chunk, write errors now and then, over 256
 * chunks with a cap of 8: every group answered once, with the right code (a hint's chunk
 * counts for nothing), and for SUCCESS with every record mapped to its guest byte then.
 */
#define MIX_GROUPS 20000

static void test_random_mix(void **state)
{
	struct fixture *f = *state;
	static uint8_t answered[MIX_GROUPS + 1], want_ok[MIX_GROUPS + 1];
	uint64_t nchunks = f->mem.size / CHUNK, raised = 0;
	unsigned seed = 4242;
	struct sim_resp r[64];

	start(f, CHUNK, 8 * CHUNK);
	memset(answered, 0, sizeof(answered));
	for (unsigned turns = 0; raised < MIX_GROUPS || sim_fault_open(&f->sim); turns++) {
		assert_true(turns < 4 * MIX_GROUPS); /* a wedged resolver fails, never hangs */
		for (unsigned k = rand_r(&seed) % 8; k && raised < MIX_GROUPS; k--) {
			bool big = rand_r(&seed) % 50 == 0;
			unsigned n = big ? 9 + rand_r(&seed) % 4 : 1 + rand_r(&seed) % 3;
			struct iommu_hwpt_pgfault recs[16];
			uint64_t seen[16];
			unsigned distinct = 0;
			bool ok = true;
			for (unsigned i = 0; i < n; i++) {
				bool outside = rand_r(&seed) % 20 == 0;
				uint64_t c = big ? (uint64_t)i * 7 : rand_r(&seed) % nchunks;
				recs[i] = rec(outside ? f->mem.size + 0x1000
						      : c * CHUNK + rand_r(&seed) % CHUNK,
					      WR);
				if (rand_r(&seed) % 4 == 0)
					recs[i].length = 1 + rand_r(&seed) % (2 * CHUNK);
				ok &= !outside;
				unsigned j = 0;
				while (j < distinct && seen[j] != c)
					j++;
				if (j == distinct && !outside)
					seen[distinct++] = c;
			}
			raised = sim_fault_raise(&f->sim, recs, n);
			assert_true(raised > 0);
			want_ok[raised] = ok && distinct * CHUNK <= f->cap;
		}
		if (rand_r(&seed) % 10 == 0)
			f->write_fails = 1 + rand_r(&seed) % 2;
		resolver_process(f->res);
		held(f);
		size_t n;
		while ((n = sim_fault_take(&f->sim, r, 64)) > 0)
			for (size_t i = 0; i < n; i++) {
				assert_true(r[i].seq >= 1 && r[i].seq <= MIX_GROUPS);
				assert_int_equal(answered[r[i].seq]++, 0);
				assert_int_equal(r[i].code, want_ok[r[i].seq] ? OK : BAD);
				if (r[i].code == OK)
					assert_int_equal(r[i].holes, 0);
			}
	}
	for (uint64_t g = 1; g <= MIX_GROUPS; g++)
		assert_int_equal(answered[g], 1);
	const struct resolver_stats *s = resolver_stats(f->res);
	assert_true(s->refaults > 1000);
	assert_true(s->cap_waits > 0);
	assert_int_equal(s->groups, MIX_GROUPS);
	assert_int_equal(s->refused, 0);
	assert_int_equal(f->sim.refused, 0);
	held(f);
}

#define TEST(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		TEST(test_sim_unmap_like_ioas_unmap),
		TEST(test_lru_order),
		TEST(test_refresh_on_hit),
		TEST(test_cap_exactly_reached),
		TEST(test_refault_same_bytes),
		TEST(test_inflight_protection),
		TEST(test_group_larger_than_cap),
		TEST(test_hint_not_held),
		TEST(test_unmap_failure),
		TEST(test_foreign_mapping_not_counted),
		cmocka_unit_test_setup_teardown(test_cap_with_prefetch, setup_64m, teardown),
		cmocka_unit_test_setup_teardown(test_prefetch_keeps_faulted, setup_64m, teardown),
		TEST(test_counters),
		TEST(test_random_mix),
	};
	return TEST_MAIN(tests, NULL, NULL);
}
