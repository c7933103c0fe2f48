/*
 * The fault resolver against a simulated IOMMU whose fault queue behaves as the kernel's
 * iommufd fault fd (whole groups per read, cookies, response checks: see sim_iommu.h).
 */
#include "tests/lib/util.h"
#include "iommu/resolver.h"
#include "iommu/uapi_compat.h"
#include "tests/unit/sim_iommu.h"
#include "vmm/x86/layout.h"
#include "vmm/base/loop.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#define DEV   7
#define CHUNK (64 * 1024ULL)
#define LAST  IOMMU_PGFAULT_FLAGS_LAST_PAGE
#define RD    IOMMU_PGFAULT_PERM_READ
#define WR    (IOMMU_PGFAULT_PERM_READ | IOMMU_PGFAULT_PERM_WRITE)
#define REC   sizeof(struct iommu_hwpt_pgfault)
#define MIB   (1ULL << 20)

struct fixture {
	struct guest_memory mem;
	struct sim_iommu sim;
	struct loop *loop;
	struct resolver *res;
	uint64_t chunk;
	uint64_t want; /* answered_want(): groups answered in all */
	/* What the backend the resolver sees injects into the simulation; all off by default. */
	int read_err;            /* reads fail with it */
	int write_err;           /* the next write_fails writes fail with it */
	unsigned write_fails;
	bool write_one;          /* the next write passes on its first response only */
	unsigned write_sleep_us; /* each write takes this long */
	bool raise_on_zero;      /* a read that finds nothing raises a group just after */
	unsigned reads, writes;  /* calls the resolver made */
	size_t max_read;         /* the largest read it asked for, in bytes */
};

static struct iommu_hwpt_pgfault rec(uint32_t dev, uint64_t addr, uint32_t perm, uint32_t len,
				     uint32_t flags)
{
	return (struct iommu_hwpt_pgfault){
		.flags = flags, .dev_id = dev, .perm = perm, .addr = addr, .length = len};
}

/* Raises a one-record group; returns its sequence number. */
static uint64_t raise1(struct fixture *f, uint32_t dev, uint64_t addr, uint32_t perm, uint32_t len,
		       uint32_t flags)
{
	struct iommu_hwpt_pgfault r = rec(dev, addr, perm, len, flags);
	uint64_t seq = sim_fault_raise(&f->sim, &r, 1);

	assert_true(seq > 0);
	return seq;
}

/* The backend the resolver is given: the simulation, with the faults the test injects. */
static int wrap_map(void *ctx, uint64_t gpa, void *hva, uint64_t len, bool writable)
{
	struct fixture *f = ctx;

	return sim_iommu_backend.map(&f->sim, gpa, hva, len, writable);
}

static ssize_t wrap_read(void *ctx, int fd, void *buf, size_t len)
{
	struct fixture *f = ctx;
	ssize_t n;

	f->reads++;
	if (len > f->max_read)
		f->max_read = len;
	if (f->read_err)
		return -f->read_err;
	n = sim_iommu_backend.read(&f->sim, fd, buf, len);
	if (n == 0 && f->raise_on_zero) {
		/* The device's group arrives after the read found nothing, before any poll. */
		f->raise_on_zero = false;
		raise1(f, DEV, 0x7000, RD, 0, 0);
	}
	return n;
}

static ssize_t wrap_write(void *ctx, int fd, const void *buf, size_t len)
{
	struct fixture *f = ctx;

	f->writes++;
	if (f->write_sleep_us)
		usleep(f->write_sleep_us);
	if (f->write_one) {
		f->write_one = false;
		len = sizeof(struct iommu_hwpt_page_response);
	} else if (f->write_fails) {
		f->write_fails--;
		return -f->write_err;
	}
	return sim_iommu_backend.write(&f->sim, fd, buf, len);
}

static const struct resolver_backend wrap_backend = {
	.map = wrap_map, .read = wrap_read, .write = wrap_write};

static struct resolver *new_resolver(struct fixture *f, bool attach)
{
	struct resolver_params p = {.fault_fd = f->sim.fd,
				    .mem = &f->mem,
				    .chunk = f->chunk,
				    .backend = &wrap_backend,
				    .backend_ctx = f,
				    .name = "test queue"};
	struct resolver *r = resolver_new(&p);

	assert_non_null(r);
	assert_int_equal(resolver_add_device(r, DEV, 0), 0);
	if (attach)
		assert_int_equal(resolver_attach(r, f->loop), 0);
	return r;
}

static int setup_full(void **state, uint64_t chunk, uint64_t mem_size)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_int_equal(guest_memory_init(&f->mem, mem_size, GUEST_BACKING_4K), 0);
	assert_int_equal(sim_iommu_init(&f->sim), 0);
	f->loop = loop_new();
	assert_non_null(f->loop);
	f->chunk = chunk;
	f->res = new_resolver(f, true);
	*state = f;
	return 0;
}

static int setup(void **state)
{
	return setup_full(state, CHUNK, 16 * MIB);
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	resolver_free(f->res);
	loop_free(f->loop);
	sim_iommu_destroy(&f->sim);
	guest_memory_destroy(&f->mem);
	free(f);
	return 0;
}

/*
 * Calls resolver_process() until nothing is open in the queue, at most 1024 times (a
 * group of RESOLVER_GROUP_MAX records takes 64 turns): a resolver that cannot make
 * progress fails the test instead of hanging it. Returns the groups answered, or the
 * first error.
 */
static int pump(struct fixture *f)
{
	int total = 0;

	for (int i = 0; i < 1024 && sim_fault_open(&f->sim); i++) {
		int n = resolver_process(f->res);
		if (n < 0)
			return n;
		total += n;
	}
	return total;
}

static void expect_one(struct fixture *f, uint64_t seq, uint32_t code)
{
	struct sim_resp r[4];

	assert_int_equal(sim_fault_take(&f->sim, r, 4), 1);
	assert_int_equal(r[0].seq, seq);
	assert_int_equal(r[0].code, code);
}

static void on_stop(void *arg)
{
	loop_stop(arg, 0);
}

struct until {
	struct fixture *f;
	bool (*done)(struct fixture *f);
	bool expired;
};

static void until_check(void *arg)
{
	struct until *u = arg;

	if (u->done(u->f))
		loop_stop(u->f->loop, 0);
}

static void until_expire(void *arg)
{
	struct until *u = arg;

	u->expired = true; /* the one-shot watch is gone now */
	loop_stop(u->f->loop, 0);
}

/* Runs the loop until @done or @ms milliseconds have passed. Returns @done's last word. */
static bool run_until(struct fixture *f, bool (*done)(struct fixture *f), unsigned ms)
{
	struct until u = {f, done, false};
	struct loop_watch *check = loop_add_timer(f->loop, 1000, true, until_check, &u);
	struct loop_watch *limit = loop_add_timer(f->loop, ms * 1000ULL, false, until_expire, &u);

	assert_non_null(check);
	assert_non_null(limit);
	assert_int_equal(loop_run(f->loop), 0);
	loop_remove(check);
	if (!u.expired)
		loop_remove(limit);
	return done(f);
}

static bool prefetch_done(struct fixture *f)
{
	return !resolver_prefetching(f->res);
}

static bool answered_want(struct fixture *f)
{
	return f->sim.answered >= f->want;
}

/* Takes the next @n answers: groups @first, @first + 1, ..., each once, with @code. */
static void expect_in_order(struct fixture *f, uint64_t first, unsigned n, uint32_t code)
{
	struct sim_resp *r = calloc(n + 1, sizeof(*r));

	assert_int_equal(sim_fault_take(&f->sim, r, n + 1), n);
	for (unsigned i = 0; i < n; i++) {
		assert_int_equal(r[i].seq, first + i);
		assert_int_equal(r[i].code, code);
	}
	free(r);
}

static uint64_t latency_total(const struct resolver_stats *s)
{
	uint64_t n = 0;

	for (unsigned b = 0; b < RESOLVER_LAT_BUCKETS; b++)
		n += s->latency_us[b];
	return n;
}

/* The simulation itself keeps the kernel's rules, or the tests below prove nothing. */
static void test_sim_kernel_semantics(void **state)
{
	struct fixture *f = *state;
	struct sim_iommu *s = &f->sim;
	const struct resolver_backend *b = &sim_iommu_backend;
	struct iommu_hwpt_pgfault recs[3] = {rec(DEV, 0x1000, RD, 0, LAST), rec(DEV, 0x2000, RD, 0, LAST),
					     rec(DEV, 0x3000, RD, 0, 0)};
	struct iommu_hwpt_pgfault buf[4];
	struct iommu_hwpt_page_response resp[3];
	struct pollfd p = {s->fd, POLLIN, 0};

	assert_int_equal(b->read(s, s->fd, buf, 39), -ESPIPE);
	assert_int_equal(b->read(s, s->fd, buf, sizeof(buf)), 0); /* nothing pending */
	assert_int_equal(poll(&p, 1, 0), 0);
	uint64_t g1 = sim_fault_raise(s, recs, 3), g2 = sim_fault_raise(s, recs, 2);
	assert_int_equal(poll(&p, 1, 0), 1);
	/* A 3-record group does not fit 2 records: EINVAL on 7.3, 0 and still readable before. */
	assert_int_equal(b->read(s, s->fd, buf, 2 * REC), -EINVAL);
	assert_int_equal(b->read(s, s->fd, buf, 0), -EINVAL);
	s->old_kernel = true;
	assert_int_equal(b->read(s, s->fd, buf, 2 * REC), 0);
	assert_int_equal(poll(&p, 1, 0), 1);
	/* Whole groups only: 4 records of room take the 3-record group, not the 2-record one. */
	assert_int_equal(b->read(s, s->fd, buf, 4 * REC), 3 * REC);
	assert_int_equal(buf[0].cookie, 1);
	assert_int_equal(buf[2].cookie, 1);
	assert_int_equal(buf[0].flags & LAST, 0); /* LAST_PAGE on the last record only */
	assert_int_equal(buf[1].flags & LAST, 0);
	assert_int_equal(buf[2].flags & LAST, LAST);
	assert_int_equal(poll(&p, 1, 0), 1);
	assert_int_equal(b->read(s, s->fd, buf, 4 * REC), 2 * REC);
	assert_int_equal(buf[0].cookie, 2);
	assert_int_equal(buf[1].cookie, 2);
	assert_int_equal(poll(&p, 1, 0), 0); /* delivered, unanswered: no longer readable */
	/* Responses: multiples of 8, in order; a bad code or cookie stops there. */
	resp[0] = (struct iommu_hwpt_page_response){1, IOMMUFD_PAGE_RESP_SUCCESS};
	resp[1] = (struct iommu_hwpt_page_response){1, IOMMUFD_PAGE_RESP_SUCCESS}; /* again */
	assert_int_equal(b->write(s, s->fd, resp, 7), -ESPIPE);
	assert_int_equal(b->write(s, s->fd, resp, 16), 8); /* short: the repeat is refused */
	assert_int_equal(b->write(s, s->fd, resp, 8), -EINVAL);
	resp[0] = (struct iommu_hwpt_page_response){2, 2};
	assert_int_equal(b->write(s, s->fd, resp, 8), -EINVAL); /* code not 0/1 */
	resp[0] = (struct iommu_hwpt_page_response){9, IOMMUFD_PAGE_RESP_SUCCESS};
	assert_int_equal(b->write(s, s->fd, resp, 8), -EINVAL); /* never delivered */
	/* The lowest free cookie is reused: 1 is free again, 2 is still out. */
	sim_fault_raise(s, recs, 1);
	assert_int_equal(b->read(s, s->fd, buf, 4 * REC), REC);
	assert_int_equal(buf[0].cookie, 1);
	resp[0] = (struct iommu_hwpt_page_response){2, IOMMUFD_PAGE_RESP_INVALID};
	resp[1] = (struct iommu_hwpt_page_response){1, IOMMUFD_PAGE_RESP_SUCCESS};
	assert_int_equal(b->write(s, s->fd, resp, 16), 16);
	struct sim_resp out[4];
	assert_int_equal(sim_fault_take(s, out, 4), 3);
	assert_int_equal(out[0].seq, g1);
	assert_int_equal(out[1].seq, g2);
	assert_int_equal(out[1].code, IOMMUFD_PAGE_RESP_INVALID);
	assert_int_equal(out[2].seq, g2 + 1);
	assert_int_equal(sim_fault_open(s), 0);
	assert_int_equal(s->refused, 4);
}

static void test_single_fault_maps_chunk(void **state)
{
	struct fixture *f = *state;
	uint64_t addr = 0x123456;

	f->mem.base[addr] = 0xab;
	uint64_t g = raise1(f, DEV, addr, WR, 0, 0);
	assert_int_equal(resolver_process(f->res), 1);
	expect_one(f, g, IOMMUFD_PAGE_RESP_SUCCESS);
	/* The aligned chunk around addr, and only it, now maps to the right guest bytes. */
	uint8_t *p = sim_iommu_translate(&f->sim, addr, true);
	assert_ptr_equal(p, f->mem.base + addr);
	assert_int_equal(*p, 0xab);
	assert_non_null(sim_iommu_translate(&f->sim, addr & ~(CHUNK - 1), true));
	assert_null(sim_iommu_translate(&f->sim, (addr & ~(CHUNK - 1)) + CHUNK, false));
	assert_null(sim_iommu_translate(&f->sim, (addr & ~(CHUNK - 1)) - 1, false));
	const struct resolver_stats *s = resolver_stats(f->res);
	assert_int_equal(s->faults, 1);
	assert_int_equal(s->groups, 1);
	assert_int_equal(s->chunks_mapped, 1);
	assert_int_equal(s->bytes_mapped, CHUNK);
	assert_int_equal(s->invalid, 0);
	assert_false(resolver_prefetching(f->res)); /* a chunk <= 2 MiB is mapped whole */
	/* A second fault in the same chunk maps nothing new. */
	g = raise1(f, DEV, addr + 8, RD, 0, 0);
	assert_int_equal(resolver_process(f->res), 1);
	expect_one(f, g, IOMMUFD_PAGE_RESP_SUCCESS);
	assert_int_equal(f->sim.map_calls, 1);
}

/* Several whole groups in one read, each answered once, in delivery order. */
static void test_several_groups_per_read(void **state)
{
	struct fixture *f = *state;
	struct iommu_hwpt_pgfault a[2] = {rec(DEV, 0x10000, WR, 0, 0), rec(DEV, 0x11000, WR, 0, 0)};
	struct iommu_hwpt_pgfault b[3] = {rec(DEV, 0x20000, WR, 0, 0), rec(DEV, 0x50000, WR, 0, 0),
					  rec(DEV, 0x90000, RD, 0, 0)};
	uint64_t ga = sim_fault_raise(&f->sim, a, 2), gc = raise1(f, DEV, 0x30000, WR, 0, 0);
	uint64_t gb = sim_fault_raise(&f->sim, b, 3), gd = raise1(f, DEV, 0x40000, WR, 0, 0);
	struct sim_resp r[8];

	assert_int_equal(resolver_process(f->res), 4);
	assert_int_equal(f->sim.reads, 1); /* all four in one read */
	assert_int_equal(sim_fault_take(&f->sim, r, 8), 4);
	assert_int_equal(r[0].seq, ga);
	assert_int_equal(r[1].seq, gc);
	assert_int_equal(r[2].seq, gb);
	assert_int_equal(r[3].seq, gd);
	for (int i = 0; i < 4; i++)
		assert_int_equal(r[i].code, IOMMUFD_PAGE_RESP_SUCCESS);
	/* Every record of a group was resolved before its one answer. */
	for (int i = 0; i < 3; i++)
		assert_non_null(sim_iommu_translate(&f->sim, b[i].addr, false));
	assert_int_equal(resolver_stats(f->res)->faults, 7);
	assert_int_equal(resolver_stats(f->res)->groups, 4);
	assert_int_equal(f->sim.refused, 0);
}

static void test_length_hint(void **state)
{
	struct fixture *f = *state;
	uint64_t end = f->mem.size;
	struct sim_resp r[2];

	/* 2 bytes straddling a chunk boundary map both chunks before the answer. */
	uint64_t g = raise1(f, DEV, 3 * CHUNK - 1, WR, 2, 0);
	assert_int_equal(resolver_process(f->res), 1);
	expect_one(f, g, IOMMUFD_PAGE_RESP_SUCCESS);
	assert_true(resolver_is_mapped(f->res, 2 * CHUNK));
	assert_true(resolver_is_mapped(f->res, 3 * CHUNK));
	assert_false(resolver_is_mapped(f->res, 4 * CHUNK));
	/* A hint that runs past the end of RAM is clipped to it, not refused. */
	g = raise1(f, DEV, end - 16, WR, 4096 * 1024, 0);
	assert_int_equal(resolver_process(f->res), 1);
	expect_one(f, g, IOMMUFD_PAGE_RESP_SUCCESS);
	assert_true(resolver_is_mapped(f->res, end - 1));
	assert_int_equal(resolver_stats(f->res)->bytes_mapped, 3 * CHUNK);
	assert_false(resolver_prefetching(f->res));
	/* A huge hint (u32 max) is clipped too: answered after one chunk, the rest prefetched. */
	g = raise1(f, DEV, 0, WR, UINT32_MAX, 0);
	assert_int_equal(resolver_process(f->res), 1);
	assert_int_equal(sim_fault_take(&f->sim, r, 2), 1);
	assert_int_equal(r[0].seq, g);
	assert_int_equal(r[0].code, IOMMUFD_PAGE_RESP_SUCCESS);
	assert_int_equal(r[0].map_calls, 4);
	assert_true(resolver_prefetching(f->res));
	assert_true(run_until(f, prefetch_done, 10000));
	assert_int_equal(resolver_stats(f->res)->bytes_mapped, f->mem.size);
	assert_int_equal(resolver_stats(f->res)->prefetched, f->mem.size - 4 * CHUNK);
}

static void test_readonly_region(void **state)
{
	struct fixture *f = *state;

	f->mem.regions[0].readonly = true;
	uint64_t g = raise1(f, DEV, 0x5000, WR, 0, 0);
	assert_int_equal(resolver_process(f->res), 1);
	expect_one(f, g, IOMMUFD_PAGE_RESP_INVALID);
	assert_null(sim_iommu_translate(&f->sim, 0x5000, false));
	/* A read is fine, and the mapping it makes is not writable. */
	g = raise1(f, DEV, 0x5000, RD, 0, 0);
	assert_int_equal(resolver_process(f->res), 1);
	expect_one(f, g, IOMMUFD_PAGE_RESP_SUCCESS);
	assert_non_null(sim_iommu_translate(&f->sim, 0x5000, false));
	assert_null(sim_iommu_translate(&f->sim, 0x5000, true));
	f->mem.regions[0].readonly = false;
}

static void test_invalid_requests(void **state)
{
	struct fixture *f = *state;
	uint64_t g[5];

	g[0] = raise1(f, DEV, f->mem.size, WR, 0, 0); /* one past RAM */
	g[1] = raise1(f, DEV, LAYOUT_MMIO32_START + 8, RD, 0, 0);
	g[2] = raise1(f, DEV + 1, 0x1000, RD, 0, 0); /* not our device */
	g[3] = raise1(f, DEV, 0x1000, RD, 0, IOMMU_PGFAULT_FLAGS_PASID_VALID);
	/* A group with one good and one bad record is refused whole. */
	struct iommu_hwpt_pgfault mixed[2] = {rec(DEV, 0x2000, RD, 0, 0),
					      rec(DEV, UINT64_MAX - 3, RD, 8, 0)};
	g[4] = sim_fault_raise(&f->sim, mixed, 2);
	assert_int_equal(pump(f), 5);
	struct sim_resp r[8];
	assert_int_equal(sim_fault_take(&f->sim, r, 8), 5);
	for (int i = 0; i < 5; i++) {
		assert_int_equal(r[i].seq, g[i]);
		assert_int_equal(r[i].code, IOMMUFD_PAGE_RESP_INVALID);
	}
	assert_int_equal(resolver_stats(f->res)->invalid, 5);
	assert_int_equal(resolver_stats(f->res)->groups, 5);
	assert_int_equal(f->sim.refused, 0);
}

static void test_map_failure_and_eexist(void **state)
{
	struct fixture *f = *state;

	f->sim.fail_lo = 4 * CHUNK;
	f->sim.fail_hi = 5 * CHUNK;
	f->sim.fail_errno = ENOMEM;
	uint64_t g = raise1(f, DEV, 4 * CHUNK + 100, WR, 0, 0);
	assert_int_equal(resolver_process(f->res), 1);
	expect_one(f, g, IOMMUFD_PAGE_RESP_INVALID);
	assert_false(resolver_is_mapped(f->res, 4 * CHUNK));
	/* The failure is not sticky: once the IOMMU recovers, a retry succeeds. */
	f->sim.fail_hi = 0;
	g = raise1(f, DEV, 4 * CHUNK + 100, WR, 0, 0);
	assert_int_equal(resolver_process(f->res), 1);
	expect_one(f, g, IOMMUFD_PAGE_RESP_SUCCESS);
	/* EEXIST: another path mapped it first; the group still succeeds. */
	f->sim.exist_lo = 8 * CHUNK;
	f->sim.exist_hi = 9 * CHUNK;
	g = raise1(f, DEV, 8 * CHUNK, WR, 0, 0);
	assert_int_equal(resolver_process(f->res), 1);
	expect_one(f, g, IOMMUFD_PAGE_RESP_SUCCESS);
	assert_true(resolver_is_mapped(f->res, 8 * CHUNK));
	assert_int_equal(resolver_stats(f->res)->chunks_mapped, 1);
}

/* Groups the kernel still holds at shutdown are read and answered INVALID, once each. */
static void test_shutdown_answers_pending_groups(void **state)
{
	struct fixture *f = *state;
	struct iommu_hwpt_pgfault big[100];
	uint64_t g[3];
	struct sim_resp r[4];

	for (unsigned i = 0; i < 100; i++)
		big[i] = rec(DEV, i * 4096, RD, 0, 0);
	g[0] = raise1(f, DEV, 0x1000, RD, 0, 0);
	g[1] = sim_fault_raise(&f->sim, big, 100); /* larger than the buffer so far */
	g[2] = raise1(f, DEV, 0x3000, RD, 0, 0);
	resolver_free(f->res);
	f->res = NULL;
	assert_int_equal(sim_fault_take(&f->sim, r, 4), 3);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(r[i].seq, g[i]);
		assert_int_equal(r[i].code, IOMMUFD_PAGE_RESP_INVALID);
	}
	assert_int_equal(sim_fault_open(&f->sim), 0);
	assert_int_equal(f->sim.map_calls, 0); /* nothing is mapped on the way out */
}

/* Garbage in every field the device controls: every group gets exactly one answer. */
static void test_garbage_records(void **state)
{
	struct fixture *f = *state;
	unsigned seed = 99;
	uint64_t raised = 0, faults = 0;
	static uint8_t answered[4096];
	struct iommu_hwpt_pgfault recs[8];
	struct sim_resp r[64];

	memset(answered, 0, sizeof(answered));
	for (int round = 0; round < 200; round++) {
		for (int i = 0; i < 4; i++) {
			unsigned n = 1 + (unsigned)rand_r(&seed) % 8;
			for (unsigned k = 0; k < n; k++) {
				uint64_t addr = rand_r(&seed) % 2
						    ? (uint64_t)rand_r(&seed) % f->mem.size
						    : ((uint64_t)rand_r(&seed) << 33) ^ (uint64_t)rand_r(&seed);
				recs[k] = (struct iommu_hwpt_pgfault){
					.flags = (uint32_t)rand_r(&seed),
					.dev_id = rand_r(&seed) % 4 ? DEV : (uint32_t)rand_r(&seed),
					.pasid = (uint32_t)rand_r(&seed),
					.grpid = (uint32_t)rand_r(&seed),
					.perm = (uint32_t)rand_r(&seed),
					.addr = addr,
					.length = (uint32_t)rand_r(&seed),
					.cookie = (uint32_t)rand_r(&seed)};
			}
			assert_int_equal(sim_fault_raise(&f->sim, recs, n), ++raised);
			faults += n;
		}
		assert_true(pump(f) >= 0);
		size_t got;
		while ((got = sim_fault_take(&f->sim, r, 64)) > 0)
			for (size_t i = 0; i < got; i++)
				answered[r[i].seq]++;
	}
	for (uint64_t s = 1; s <= raised; s++)
		assert_int_equal(answered[s], 1);
	assert_int_equal(resolver_stats(f->res)->groups, raised);
	assert_int_equal(resolver_stats(f->res)->faults, faults);
	assert_int_equal(resolver_stats(f->res)->refused, 0);
	assert_int_equal(f->sim.refused, 0);
}

/*
 * Whole groups of 1, 64, 65, 4096 and 5000 records: each answered exactly once with the
 * right code (one good group, then one with a bad last record, per size).
 */
static const unsigned group_sizes[] = {1, 64, 65, 4096, 5000};

static uint64_t raise_n(struct fixture *f, unsigned n, bool bad_last)
{
	struct iommu_hwpt_pgfault *recs = calloc(n, REC);
	uint64_t seq;

	for (unsigned i = 0; i < n; i++)
		recs[i] = rec(DEV, ((uint64_t)i * 12345 * 4096) % f->mem.size, WR, 0, 0);
	if (bad_last)
		recs[n - 1].addr = f->mem.size + 4096;
	seq = sim_fault_raise(&f->sim, recs, n);
	free(recs);
	assert_true(seq > 0);
	return seq;
}

static void whole_groups(struct fixture *f, bool old_kernel)
{
	uint64_t faults = 0;

	f->sim.old_kernel = old_kernel;
	for (unsigned i = 0; i < sizeof(group_sizes) / sizeof(group_sizes[0]); i++) {
		unsigned n = group_sizes[i];
		uint64_t good = raise_n(f, n, false), bad = raise_n(f, n, true);
		struct sim_resp r[4];
		int answered = pump(f);
		if (answered != 2)
			print_message("groups of %u records: %d answered (%u reads of the fault fd)\n",
				      n, answered, f->sim.reads);
		assert_int_equal(answered, 2);
		assert_int_equal(sim_fault_take(&f->sim, r, 4), 2);
		assert_int_equal(r[0].seq, good);
		assert_int_equal(r[0].code, IOMMUFD_PAGE_RESP_SUCCESS);
		assert_int_equal(r[1].seq, bad);
		assert_int_equal(r[1].code, IOMMUFD_PAGE_RESP_INVALID);
		faults += 2 * n;
	}
	assert_int_equal(resolver_stats(f->res)->faults, faults);
	assert_int_equal(resolver_stats(f->res)->refused, 0);
	assert_int_equal(f->sim.refused, 0);
	assert_int_equal(sim_fault_open(&f->sim), 0);
}

static void test_whole_groups_einval(void **state)
{
	whole_groups(*state, false);
}

static void test_whole_groups_old_kernel(void **state)
{
	whole_groups(*state, true);
}

static bool one_answered(struct fixture *f)
{
	return f->sim.answered >= 1;
}

/*
 * On the loop, on a kernel that returns 0 for a group too big for the buffer while the fd
 * stays readable: the resolver must grow and answer it, not take 0 for "nothing pending"
 * and spin on the readable fd.
 */
static void test_old_kernel_big_group_on_loop(void **state)
{
	struct fixture *f = *state;
	struct sim_resp r[2];

	f->sim.old_kernel = true;
	uint64_t g = raise_n(f, RESOLVER_GROUP_DEFAULT + 1, false);
	bool answered = run_until(f, one_answered, 2000);
	if (!answered || f->sim.reads > 8)
		print_message("answered: %s, after %u reads of the fault fd\n", answered ? "yes" : "no",
			      f->sim.reads);
	assert_true(answered);
	assert_true(f->sim.reads <= 8); /* no spinning */
	assert_int_equal(sim_fault_take(&f->sim, r, 2), 1);
	assert_int_equal(r[0].seq, g);
	assert_int_equal(r[0].code, IOMMUFD_PAGE_RESP_SUCCESS);
}

/* A device's PRI allocation sizes the buffer up front: its biggest group reads first time. */
static void test_device_group_size_sizes_buffer(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(resolver_add_device(f->res, DEV, 4096), 0);
	uint64_t g = raise_n(f, 4096, false);
	assert_int_equal(pump(f), 1); /* over several turns: 4096 records are more than one */
	expect_one(f, g, IOMMUFD_PAGE_RESP_SUCCESS);
	assert_int_equal(f->sim.nofit_reads, 0);
	/* A claim beyond the cap is clipped to it, and still sizes the buffer up front. */
	assert_int_equal(resolver_add_device(f->res, DEV, UINT32_MAX), 0);
	g = raise_n(f, 5000, false);
	assert_int_equal(pump(f), 1);
	expect_one(f, g, IOMMUFD_PAGE_RESP_SUCCESS);
	assert_int_equal(f->sim.nofit_reads, 0);
}

/*
 * A group beyond RESOLVER_GROUP_MAX records is a misbehaving device: the resolver gives
 * the queue up (one error), stops watching the fd and never spins on it.
 */
static void beyond_cap(struct fixture *f, bool old_kernel)
{
	f->sim.old_kernel = old_kernel;
	raise_n(f, RESOLVER_GROUP_MAX + 1, false);
	raise1(f, DEV, 0x1000, RD, 0, 0);
	assert_false(run_until(f, one_answered, 300));
	unsigned reads = f->sim.reads;
	assert_true(reads <= 40);
	assert_int_equal(resolver_process(f->res), -E2BIG);
	assert_int_equal(f->sim.reads, reads); /* not even tried again */
	assert_false(run_until(f, one_answered, 50));
	assert_int_equal(f->sim.reads, reads);
	assert_int_equal(f->sim.answered, 0);
}

static void test_group_beyond_cap_einval(void **state)
{
	beyond_cap(*state, false);
}

static void test_group_beyond_cap_old_kernel(void **state)
{
	beyond_cap(*state, true);
}

/* The simulated IOAS_MAP refuses what the kernel's does, or a resolver bug would pass. */
static void test_sim_map_like_ioas_map(void **state)
{
	struct fixture *f = *state;
	struct sim_iommu *s = &f->sim;
	const struct resolver_backend *b = &sim_iommu_backend;
	uint8_t *hva = f->mem.base;
	uint64_t top = UINT64_MAX & ~4095ULL;

	assert_int_equal(b->map(s, 0x1000, hva, 0, true), -EINVAL);	    /* nothing */
	assert_int_equal(b->map(s, 0x1800, hva, 4096, true), -EINVAL);	    /* IOVA unaligned */
	assert_int_equal(b->map(s, 0x1000, hva, 4095, true), -EINVAL);	    /* length */
	assert_int_equal(b->map(s, 0x1000, hva + 8, 4096, true), -EINVAL); /* host address */
	assert_int_equal(b->map(s, top, hva, 8192, true), -EOVERFLOW);	    /* IOVA wraps */
	assert_int_equal(b->map(s, 0x1000, (void *)(uintptr_t)top, 8192, true), -EOVERFLOW);
	assert_int_equal(s->n, 0);
	assert_int_equal(s->map_bytes, 0);
	assert_int_equal(b->map(s, 0x1000, hva, 8192, true), 0);
	assert_int_equal(b->map(s, 0x2000, hva + 0x1000, 4096, true), -EEXIST);
	assert_ptr_equal(sim_iommu_translate(s, 0x2fff, true), hva + 0x1fff);
}

/*
 * Answers do not wait for the whole read: 256 groups in one read, each mapping its own
 * 64 KiB chunk. Each answer is written once the mapping since the last ones reaches 2 MiB:
 * after at most 32 map calls beyond those of the groups up to its own.
 */
static void test_answers_do_not_wait_for_the_read(void **state)
{
	struct fixture *f = *state;
	unsigned n = (unsigned)(f->mem.size / CHUNK), per_flush = RESOLVER_UNIT_MAX / CHUNK;
	struct sim_resp *r = calloc(n + 1, sizeof(*r));

	assert_int_equal(resolver_add_device(f->res, DEV, n), 0);
	for (unsigned i = 0; i < n; i++)
		raise1(f, DEV, i * CHUNK + 0x100, WR, 0, 0);
	assert_int_equal(pump(f), n);
	assert_int_equal(f->sim.nofit_reads, 0); /* the first read could take them all */
	assert_int_equal(sim_fault_take(&f->sim, r, n + 1), n);
	for (unsigned i = 0; i < n; i++) {
		if (r[i].map_calls > i + per_flush)
			print_message("group %u answered after %u map calls\n", i + 1, r[i].map_calls);
		assert_int_equal(r[i].seq, i + 1);
		assert_int_equal(r[i].code, IOMMUFD_PAGE_RESP_SUCCESS);
		assert_true(r[i].map_calls <= i + per_flush);
	}
	assert_int_equal(f->sim.map_calls, n);
	free(r);
}

/*
 * One turn resolves at most RESOLVER_TURN_RECORDS records, however big the read: the
 * rest stays in the buffer, and the loop comes back for it though the fd is no longer
 * readable (every group was delivered by the one read).
 */
static void test_turn_bounded_by_records(void **state)
{
	struct fixture *f = *state;
	unsigned n = 2 * RESOLVER_TURN_RECORDS;
	struct pollfd p = {f->sim.fd, POLLIN, 0};

	assert_int_equal(resolver_add_device(f->res, DEV, n), 0);
	for (unsigned i = 0; i < n; i++)
		raise1(f, DEV, 0x1000 + i * 8ULL, RD, 0, 0);
	assert_int_equal(resolver_process(f->res), RESOLVER_TURN_RECORDS);
	assert_int_equal(f->sim.reads, 1);
	assert_int_equal(poll(&p, 1, 0), 0);
	f->want = n;
	assert_true(run_until(f, answered_want, 2000));
	assert_int_equal(f->sim.reads, 1); /* the rest came from the buffer, not a new read */
	expect_in_order(f, 1, n, IOMMUFD_PAGE_RESP_SUCCESS);
	const struct resolver_stats *s = resolver_stats(f->res);
	assert_int_equal(s->faults, n);
	assert_int_equal(s->groups, n);
	assert_int_equal(latency_total(s), n);
	assert_int_equal(sim_fault_open(&f->sim), 0);
}

/* ...and maps at most RESOLVER_TURN_BYTES: 512 new 64 KiB chunks take two turns. */
static void test_turn_bounded_by_bytes(void **state)
{
	struct fixture *f = *state;
	unsigned per_turn = RESOLVER_TURN_BYTES / CHUNK, n = 2 * per_turn;

	assert_int_equal(resolver_add_device(f->res, DEV, n), 0);
	for (unsigned i = 0; i < n; i++)
		raise1(f, DEV, i * CHUNK, WR, 0, 0);
	assert_int_equal(resolver_process(f->res), per_turn);
	assert_int_equal(resolver_stats(f->res)->bytes_mapped, RESOLVER_TURN_BYTES);
	assert_int_equal(resolver_process(f->res), per_turn);
	assert_int_equal(f->sim.reads, 1);
	expect_in_order(f, 1, n, IOMMUFD_PAGE_RESP_SUCCESS);
}

/* A group's latency runs until its answer is written, not until it is queued. */
static void test_latency_until_written(void **state)
{
	struct fixture *f = *state;
	const struct resolver_stats *s = resolver_stats(f->res);

	f->write_sleep_us = 3000;
	raise1(f, DEV, 0x1000, RD, 0, 0);
	assert_int_equal(resolver_process(f->res), 1);
	assert_int_equal(latency_total(s), 1);
	for (unsigned b = 0; b < 12; b++) /* bucket b: < 2^b us; the write took >= 3000 */
		assert_int_equal(s->latency_us[b], 0);
}

/*
 * A read error that persists does not spin the loop thread on the readable fd: the fd
 * rests 10 ms, 20, 40... between tries. Once the error is gone the group is served.
 */
static void test_read_error_backs_off(void **state)
{
	struct fixture *f = *state;
	uint64_t g = raise1(f, DEV, 0x1000, RD, 0, 0);

	f->read_err = EIO;
	assert_false(run_until(f, one_answered, 100));
	if (f->reads > 10) /* 4 or 5; 10 leaves room for a slow machine (spinning: ~50000) */
		print_message("%u reads in 100 ms\n", f->reads);
	assert_true(f->reads >= 2 && f->reads <= 10);
	f->read_err = 0;
	assert_true(run_until(f, one_answered, 1000));
	expect_one(f, g, IOMMUFD_PAGE_RESP_SUCCESS);
}

/*
 * A write error keeps the answers not written yet, in order, and writes them on the next
 * try; on the loop, where the fd is no longer readable, the backoff timer does.
 */
static void test_write_error_keeps_answers(void **state)
{
	struct fixture *f = *state;

	for (unsigned i = 0; i < 3; i++)
		raise1(f, DEV, 0x1000 * (i + 1), RD, 0, 0);
	f->write_err = EIO;
	f->write_one = true; /* the first answer is taken, then the write fails */
	f->write_fails = 1;
	assert_int_equal(resolver_process(f->res), 1);
	assert_int_equal(resolver_process(f->res), 2);
	expect_in_order(f, 1, 3, IOMMUFD_PAGE_RESP_SUCCESS);
	raise1(f, DEV, 0x4000, RD, 0, 0);
	raise1(f, DEV, 0x5000, RD, 0, 0);
	f->write_fails = 2;
	f->want = 5;
	assert_true(run_until(f, answered_want, 2000));
	expect_in_order(f, 4, 2, IOMMUFD_PAGE_RESP_SUCCESS);
	assert_true(f->writes <= 8);
	assert_int_equal(resolver_stats(f->res)->groups, 5);
	assert_int_equal(resolver_stats(f->res)->refused, 0);
	assert_int_equal(f->sim.refused, 0);
	assert_int_equal(sim_fault_open(&f->sim), 0);
}

/*
 * A group that arrives between a read that found nothing and the poll that follows it
 * makes the fd readable after a 0: that is not a group too big for the buffer (which an
 * older kernel also says with 0). The resolver reads again and serves it, no growing.
 */
static void test_group_arrives_after_empty_read(void **state)
{
	struct fixture *f = *state;

	for (int old_kernel = 0; old_kernel < 2; old_kernel++) {
		f->sim.old_kernel = old_kernel;
		f->raise_on_zero = true;
		assert_int_equal(resolver_process(f->res), 1);
		assert_false(f->raise_on_zero); /* it did arrive after an empty read */
		expect_in_order(f, (uint64_t)old_kernel + 1, 1, IOMMUFD_PAGE_RESP_SUCCESS);
		assert_int_equal(f->max_read, RESOLVER_GROUP_DEFAULT * REC);
		assert_int_equal(f->sim.nofit_reads, 0);
	}
}

/* A group of exactly RESOLVER_GROUP_MAX records is served (one more gives up: above). */
static void test_group_of_max_records(void **state)
{
	struct fixture *f = *state;

	for (int old_kernel = 0; old_kernel < 2; old_kernel++) {
		f->sim.old_kernel = old_kernel;
		uint64_t g = raise_n(f, RESOLVER_GROUP_MAX, false);
		assert_int_equal(pump(f), 1);
		expect_one(f, g, IOMMUFD_PAGE_RESP_SUCCESS);
		assert_int_equal(f->max_read, RESOLVER_GROUP_MAX * REC);
	}
	assert_int_equal(resolver_stats(f->res)->faults, 2 * RESOLVER_GROUP_MAX);
}

/*
 * The kernel refuses a response whose group it answered itself (its device was
 * detached): that one is counted and skipped, and the others are still answered.
 */
static void test_refused_response_skipped(void **state)
{
	struct fixture *f = *state;
	uint64_t g[4];
	struct sim_resp r[8];

	for (unsigned i = 0; i < 4; i++)
		g[i] = raise1(f, DEV, 0x1000 * (i + 1), RD, 0, 0);
	sim_fault_preanswer(&f->sim, g[1]);
	assert_int_equal(resolver_process(f->res), 4);
	assert_int_equal(sim_fault_take(&f->sim, r, 8), 4);
	assert_int_equal(r[0].seq, g[1]);
	assert_true(r[0].by_kernel);
	for (unsigned i = 1; i < 4; i++) {
		assert_int_equal(r[i].seq, g[i == 1 ? 0 : i]);
		assert_int_equal(r[i].code, IOMMUFD_PAGE_RESP_SUCCESS);
		assert_false(r[i].by_kernel);
	}
	assert_int_equal(resolver_stats(f->res)->refused, 1);
	assert_int_equal(resolver_stats(f->res)->groups, 4);
	assert_int_equal(f->sim.refused, 2); /* the short count, then EINVAL on its own */
	assert_int_equal(sim_fault_open(&f->sim), 0);
}

/*
 * A large chunk: the group is answered after mapping one 2 MiB piece, and the rest of the
 * chunk is mapped afterwards on the loop, while new faults are still answered promptly.
 */
#define BIG_CHUNK (32 * MIB)

static int setup_big_chunk(void **state)
{
	return setup_full(state, BIG_CHUNK, 2 * BIG_CHUNK);
}

static bool two_answered(struct fixture *f)
{
	return f->sim.answered >= 2;
}

static void test_large_chunk_bounded_work(void **state)
{
	struct fixture *f = *state;
	uint64_t addr = 20 * MIB + 0x1234, unit = RESOLVER_UNIT_MAX;
	struct sim_resp r[2];

	uint64_t g = raise1(f, DEV, addr, WR, 0, 0);
	assert_int_equal(resolver_process(f->res), 1);
	assert_int_equal(sim_fault_take(&f->sim, r, 2), 1);
	assert_int_equal(r[0].seq, g);
	assert_int_equal(r[0].code, IOMMUFD_PAGE_RESP_SUCCESS);
	assert_int_equal(r[0].map_calls, 1);
	assert_int_equal(r[0].map_bytes, unit);
	assert_ptr_equal(sim_iommu_translate(&f->sim, addr, true), f->mem.base + addr);
	assert_null(sim_iommu_translate(&f->sim, (addr & ~(unit - 1)) - 1, false));
	assert_true(resolver_prefetching(f->res));
	/* A fault in the other chunk, raised while the first is being prefetched. */
	uint64_t addr2 = BIG_CHUNK + 5 * MIB;
	g = raise1(f, DEV, addr2, RD, 0, 0);
	assert_true(run_until(f, two_answered, 10000));
	assert_int_equal(sim_fault_take(&f->sim, r, 2), 1);
	assert_int_equal(r[0].seq, g);
	assert_true(r[0].map_calls <= 4); /* not after the 15 prefetch maps of the first chunk */
	/* Both whole chunks get mapped when the loop runs, and nothing beyond them. */
	assert_true(run_until(f, prefetch_done, 20000));
	for (uint64_t a = 0; a < 2 * BIG_CHUNK; a += unit)
		assert_ptr_equal(sim_iommu_translate(&f->sim, a, false), f->mem.base + a);
	const struct resolver_stats *s = resolver_stats(f->res);
	assert_int_equal(s->bytes_mapped, 2 * BIG_CHUNK);
	assert_int_equal(s->prefetched, 2 * BIG_CHUNK - 2 * unit);
	assert_int_equal(s->chunks_mapped, 2 * BIG_CHUNK / unit);
	assert_int_equal(f->sim.map_calls, 2 * BIG_CHUNK / unit);
}

/* Prefetch queued before the resolver had a loop runs once it is attached. */
static void test_prefetch_queued_before_attach(void **state)
{
	struct fixture *f = *state;

	resolver_free(f->res);
	f->res = new_resolver(f, false);
	raise1(f, DEV, 20 * MIB, WR, 0, 0);
	assert_int_equal(resolver_process(f->res), 1);
	assert_true(resolver_prefetching(f->res));
	assert_int_equal(resolver_attach(f->res, f->loop), 0);
	assert_true(run_until(f, prefetch_done, 5000));
	assert_int_equal(resolver_stats(f->res)->bytes_mapped, BIG_CHUNK);
}

/* A request whose range merges with a queued one gets the queue running too. */
static void test_prefetch_merge_arms(void **state)
{
	struct fixture *f = *state;

	resolver_free(f->res);
	f->res = new_resolver(f, false);
	raise1(f, DEV, 20 * MIB, WR, 0, 0);
	assert_int_equal(resolver_process(f->res), 1);
	assert_int_equal(resolver_attach(f->res, f->loop), 0);
	raise1(f, DEV, 4 * MIB, WR, 0, 0); /* same chunk: merged into the queued range */
	assert_int_equal(resolver_process(f->res), 1);
	assert_true(run_until(f, prefetch_done, 5000));
	assert_int_equal(resolver_stats(f->res)->bytes_mapped, BIG_CHUNK);
}

/*
 * The storm: a device thread keeps 64 groups in flight, 100k page requests at random
 * addresses (some outside RAM), and checks every answer: exactly one per group, the
 * right code, and for SUCCESS that the IOVA reaches the right guest bytes.
 */
#define STORM_FAULTS   100000
#define STORM_INFLIGHT 64

struct storm {
	struct fixture *f;
	uint32_t answered[STORM_FAULTS + 1]; /* by sequence number */
	uint8_t expect_ok[STORM_FAULTS + 1];
	uint8_t nrec[STORM_FAULTS + 1];
	uint64_t addr[STORM_FAULTS + 1][3]; /* each record's */
	unsigned errors, faults_sent, groups;
	atomic_bool give_up;   /* the loop's deadline passed: the device stops waiting */
	atomic_bool loop_done; /* loop_run() returned */
	bool device_expired;   /* the device stopped waiting on its own deadline */
};

/*
 * A wedged resolver fails the test; it does not hang it. The loop stops at
 * STORM_DEADLINE_S; the device gives up on its own STORM_DEVICE_GRACE_S later (should
 * the loop's deadline never reach it), and a loop thread that has still not come back
 * STORM_WEDGED_S after that is stuck inside a callback: the device aborts the test.
 */
#define STORM_DEADLINE_S     120
#define STORM_DEVICE_GRACE_S 10
#define STORM_WEDGED_S       30

static long long mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void storm_deadline(void *arg)
{
	struct storm *s = arg;

	atomic_store(&s->give_up, true);
	loop_stop(s->f->loop, 124);
}

static void storm_check(struct storm *s, const struct sim_resp *r)
{
	if (r->seq == 0 || r->seq > s->groups || s->answered[r->seq]++ ||
	    (r->code == IOMMUFD_PAGE_RESP_SUCCESS) != s->expect_ok[r->seq]) {
		s->errors++;
		return;
	}
	if (r->code != IOMMUFD_PAGE_RESP_SUCCESS)
		return;
	/* The device "completes the DMA" of every record: each lands on the guest's own byte. */
	for (unsigned k = 0; k < s->nrec[r->seq]; k++) {
		uint64_t a = s->addr[r->seq][k];
		uint8_t *p = sim_iommu_translate(&s->f->sim, a, true);
		if (p != s->f->mem.base + a || *p != (uint8_t)(a * 31))
			s->errors++;
	}
}

/* Raises one group of 1-3 records, some outside RAM. */
static void storm_raise(struct storm *s, unsigned *seed)
{
	struct fixture *f = s->f;
	struct iommu_hwpt_pgfault recs[3];
	unsigned nrec = 1 + rand_r(seed) % 3;
	uint64_t addr[3];
	bool ok = true;

	if (nrec > STORM_FAULTS - s->faults_sent)
		nrec = STORM_FAULTS - s->faults_sent;
	for (unsigned i = 0; i < nrec; i++) {
		bool outside = rand_r(seed) % 10 == 0;
		uint64_t a = outside ? f->mem.size + (uint64_t)rand_r(seed) % (1 << 20)
				     : (uint64_t)rand_r(seed) % f->mem.size;
		ok &= !outside;
		recs[i] = rec(DEV, a, WR, 0, 0);
		addr[i] = a;
	}
	uint64_t seq = sim_fault_raise(&f->sim, recs, nrec);
	if (seq != s->groups + 1) {
		s->errors++;
		return;
	}
	s->expect_ok[seq] = ok;
	s->nrec[seq] = (uint8_t)nrec;
	memcpy(s->addr[seq], addr, nrec * sizeof(addr[0]));
	s->groups = (unsigned)seq;
	s->faults_sent += nrec;
}

/* Waits for loop_run() to return: a loop thread that never does is wedged. */
static void storm_watchdog(struct storm *s)
{
	long long end = mono_ns() + STORM_WEDGED_S * 1000000000LL;

	while (!atomic_load(&s->loop_done)) {
		if (mono_ns() > end) {
			fprintf(stderr, "storm: the loop thread has not returned in %d s: wedged\n",
				STORM_WEDGED_S);
			abort();
		}
		usleep(1000);
	}
}

static void *storm_device(void *arg)
{
	struct storm *s = arg;
	unsigned inflight = 0, done = 0, seed = 12345;
	struct sim_resp r[STORM_INFLIGHT];
	long long end = mono_ns() + (STORM_DEADLINE_S + STORM_DEVICE_GRACE_S) * 1000000000LL;

	while (!s->errors && !atomic_load(&s->give_up) &&
	       (done < s->groups || s->faults_sent < STORM_FAULTS)) {
		if (mono_ns() > end) {
			s->device_expired = true;
			break;
		}
		while (inflight < STORM_INFLIGHT && s->faults_sent < STORM_FAULTS) {
			storm_raise(s, &seed);
			inflight++;
		}
		size_t n = sim_fault_take(&s->f->sim, r, STORM_INFLIGHT);
		for (size_t i = 0; i < n; i++, done++, inflight--)
			storm_check(s, &r[i]);
		if (!n)
			usleep(50);
	}
	loop_post(s->f->loop, on_stop, s->f->loop);
	storm_watchdog(s);
	return NULL;
}

static void storm(struct fixture *f, bool old_kernel)
{
	struct storm *s = calloc(1, sizeof(*s));
	pthread_t t;

	f->sim.old_kernel = old_kernel;
	s->f = f;
	for (uint64_t a = 0; a < f->mem.size; a++)
		f->mem.base[a] = (uint8_t)(a * 31);
	assert_non_null(loop_add_timer(f->loop, STORM_DEADLINE_S * 1000000ULL, false,
				       storm_deadline, s));
	assert_int_equal(pthread_create(&t, NULL, storm_device, s), 0);
	int code = loop_run(f->loop);
	atomic_store(&s->loop_done, true);
	atomic_store(&s->give_up, true);
	pthread_join(t, NULL);
	assert_int_equal(code, 0); /* 124: not every group was answered in time */
	assert_false(s->device_expired);
	assert_int_equal(s->errors, 0);
	for (uint32_t c = 1; c <= s->groups; c++)
		assert_int_equal(s->answered[c], 1);
	const struct resolver_stats *st = resolver_stats(f->res);
	assert_int_equal(st->faults, STORM_FAULTS);
	assert_int_equal(st->groups, s->groups);
	assert_int_equal(st->refused, 0);
	assert_int_equal(f->sim.refused, 0);
	/* Every chunk was mapped exactly once, however often it faulted. */
	assert_int_equal(st->chunks_mapped, f->sim.n);
	free(s);
}

static void test_storm(void **state)
{
	storm(*state, false);
}

/* Reads that find nothing race with the device: a 0 must not be taken for "too big". */
static void test_storm_old_kernel(void **state)
{
	storm(*state, true);
}

static int setup_storm(void **state)
{
	return setup_full(state, CHUNK, 64 * MIB);
}

#define TEST(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		TEST(test_sim_kernel_semantics),
		TEST(test_single_fault_maps_chunk),
		TEST(test_several_groups_per_read),
		TEST(test_length_hint),
		TEST(test_readonly_region),
		TEST(test_invalid_requests),
		TEST(test_map_failure_and_eexist),
		TEST(test_shutdown_answers_pending_groups),
		TEST(test_garbage_records),
		TEST(test_whole_groups_einval),
		TEST(test_whole_groups_old_kernel),
		TEST(test_old_kernel_big_group_on_loop),
		TEST(test_device_group_size_sizes_buffer),
		TEST(test_group_beyond_cap_einval),
		TEST(test_group_beyond_cap_old_kernel),
		TEST(test_sim_map_like_ioas_map),
		TEST(test_answers_do_not_wait_for_the_read),
		TEST(test_turn_bounded_by_records),
		cmocka_unit_test_setup_teardown(test_turn_bounded_by_bytes, setup_storm, teardown),
		TEST(test_latency_until_written),
		TEST(test_read_error_backs_off),
		TEST(test_write_error_keeps_answers),
		TEST(test_group_arrives_after_empty_read),
		TEST(test_group_of_max_records),
		TEST(test_refused_response_skipped),
		cmocka_unit_test_setup_teardown(test_large_chunk_bounded_work, setup_big_chunk,
						teardown),
		cmocka_unit_test_setup_teardown(test_prefetch_queued_before_attach, setup_big_chunk,
						teardown),
		cmocka_unit_test_setup_teardown(test_prefetch_merge_arms, setup_big_chunk, teardown),
		cmocka_unit_test_setup_teardown(test_storm, setup_storm, teardown),
		cmocka_unit_test_setup_teardown(test_storm_old_kernel, setup_storm, teardown),
	};
	return TEST_MAIN(tests, NULL, NULL);
}
