/* The fault resolver against a simulated IOMMU, on a socketpair carrying the kernel's layout. */
#include "iommu/resolver.h"
#include "iommu/uapi_compat.h"
#include "tests/unit/sim_iommu.h"
#include "vmm/layout.h"
#include "vmm/loop.h"

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#define DEV 7
#define CHUNK (64 * 1024ULL)
#define LAST IOMMU_PGFAULT_FLAGS_LAST_PAGE
#define RD IOMMU_PGFAULT_PERM_READ
#define WR (IOMMU_PGFAULT_PERM_READ | IOMMU_PGFAULT_PERM_WRITE)

struct fixture {
	struct guest_memory mem;
	struct sim_iommu sim;
	struct resolver *res;
	int dev_fd; /* the "kernel" side: page requests in, responses out */
	int res_fd;
};

static int setup_with(void **state, unsigned batch, uint64_t mem_size)
{
	struct fixture *f = calloc(1, sizeof(*f));
	int sv[2];

	assert_int_equal(guest_memory_init(&f->mem, mem_size, GUEST_BACKING_4K), 0);
	sim_iommu_init(&f->sim);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	f->res_fd = sv[0];
	f->dev_fd = sv[1];
	struct resolver_params p = {f->res_fd, &f->mem, CHUNK, batch, &sim_iommu_backend, &f->sim};
	f->res = resolver_new(&p);
	assert_non_null(f->res);
	assert_int_equal(resolver_add_device(f->res, DEV), 0);
	*state = f;
	return 0;
}

static int setup(void **state)
{
	return setup_with(state, 4, 16 << 20);
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	resolver_free(f->res);
	close(f->res_fd);
	close(f->dev_fd);
	sim_iommu_destroy(&f->sim);
	guest_memory_destroy(&f->mem);
	free(f);
	return 0;
}

static void send_rec(struct fixture *f, uint32_t dev, uint64_t addr, uint32_t perm, uint32_t len,
		     uint32_t cookie, uint32_t flags)
{
	struct iommu_hwpt_pgfault r = {.flags = flags, .dev_id = dev, .perm = perm, .addr = addr,
				       .length = len, .cookie = cookie};

	assert_int_equal(write(f->dev_fd, &r, sizeof(r)), sizeof(r));
}

/* Responses waiting on the device side. */
static int recv_resp(struct fixture *f, struct iommu_hwpt_page_response *out, int max)
{
	ssize_t n = read(f->dev_fd, out, (size_t)max * sizeof(*out));

	if (n < 0 && errno == EAGAIN)
		return 0;
	assert_true(n >= 0 && n % 8 == 0);
	return (int)(n / 8);
}

static void expect_one(struct fixture *f, uint32_t cookie, uint32_t code)
{
	struct iommu_hwpt_page_response r[4];

	assert_int_equal(recv_resp(f, r, 4), 1);
	assert_int_equal(r[0].cookie, cookie);
	assert_int_equal(r[0].code, code);
}

static void test_single_fault_maps_chunk(void **state)
{
	struct fixture *f = *state;
	uint64_t addr = 0x123456;

	f->mem.base[addr] = 0xab;
	send_rec(f, DEV, addr, WR, 0, 1, LAST);
	assert_int_equal(resolver_process(f->res), 1);
	expect_one(f, 1, IOMMUFD_PAGE_RESP_SUCCESS);
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
	/* A second fault in the same chunk maps nothing new. */
	send_rec(f, DEV, addr + 8, RD, 0, 2, LAST);
	assert_int_equal(resolver_process(f->res), 1);
	expect_one(f, 2, IOMMUFD_PAGE_RESP_SUCCESS);
	assert_int_equal(f->sim.map_calls, 1);
}

/* Batch of 4 records per read; a 6-record group spans two reads and gets one answer. */
static void test_group_across_batches(void **state)
{
	struct fixture *f = *state;
	struct iommu_hwpt_page_response r[8];

	for (uint32_t i = 0; i < 3; i++)
		send_rec(f, DEV, i * CHUNK, WR, 0, 9, 0);
	assert_int_equal(resolver_process(f->res), 0);
	assert_int_equal(recv_resp(f, r, 8), 0); /* no answer before LAST_PAGE */
	for (uint32_t i = 3; i < 6; i++)
		send_rec(f, DEV, i * CHUNK, WR, 0, 9, i == 5 ? LAST : 0);
	assert_int_equal(resolver_process(f->res), 1);
	expect_one(f, 9, IOMMUFD_PAGE_RESP_SUCCESS);
	for (uint32_t i = 0; i < 6; i++)
		assert_non_null(sim_iommu_translate(&f->sim, i * CHUNK, true));
	assert_int_equal(resolver_stats(f->res)->faults, 6);
	assert_int_equal(resolver_stats(f->res)->groups, 1);
}

static void test_several_groups_per_read_and_interleaving(void **state)
{
	struct fixture *f = *state;
	struct iommu_hwpt_page_response r[8];

	/* A and B interleave; C is complete in one record. */
	send_rec(f, DEV, 0x10000, WR, 0, 100, 0);
	send_rec(f, DEV, 0x20000, WR, 0, 200, 0);
	send_rec(f, DEV, 0x30000, WR, 0, 300, LAST);
	send_rec(f, DEV, 0x11000, WR, 0, 100, LAST);
	send_rec(f, DEV, 0x40000, WR, 0, 400, LAST);
	send_rec(f, DEV, 0x21000, WR, 0, 200, LAST);
	assert_int_equal(resolver_process(f->res), 4);
	assert_int_equal(recv_resp(f, r, 8), 4);
	/* Answered in the order their last record arrived. */
	assert_int_equal(r[0].cookie, 300);
	assert_int_equal(r[1].cookie, 100);
	assert_int_equal(r[2].cookie, 400);
	assert_int_equal(r[3].cookie, 200);
	for (int i = 0; i < 4; i++)
		assert_int_equal(r[i].code, IOMMUFD_PAGE_RESP_SUCCESS);
}

static void test_length_hint(void **state)
{
	struct fixture *f = *state;
	uint64_t end = f->mem.size;

	/* 2 bytes straddling a chunk boundary map both chunks. */
	send_rec(f, DEV, 3 * CHUNK - 1, WR, 2, 1, LAST);
	assert_int_equal(resolver_process(f->res), 1);
	expect_one(f, 1, IOMMUFD_PAGE_RESP_SUCCESS);
	assert_true(resolver_is_mapped(f->res, 2 * CHUNK));
	assert_true(resolver_is_mapped(f->res, 3 * CHUNK));
	assert_false(resolver_is_mapped(f->res, 4 * CHUNK));
	/* A hint that runs past the end of RAM is clipped to it, not refused. */
	send_rec(f, DEV, end - 16, WR, 4096 * 1024, 2, LAST);
	assert_int_equal(resolver_process(f->res), 1);
	expect_one(f, 2, IOMMUFD_PAGE_RESP_SUCCESS);
	assert_true(resolver_is_mapped(f->res, end - 1));
	assert_int_equal(resolver_stats(f->res)->bytes_mapped, 3 * CHUNK);
	/* A huge hint (u32 max) is clipped too. */
	send_rec(f, DEV, 0, WR, UINT32_MAX, 3, LAST);
	assert_int_equal(resolver_process(f->res), 1);
	expect_one(f, 3, IOMMUFD_PAGE_RESP_SUCCESS);
	assert_int_equal(resolver_stats(f->res)->bytes_mapped, f->mem.size);
}

static void test_readonly_region(void **state)
{
	struct fixture *f = *state;

	f->mem.regions[0].readonly = true;
	send_rec(f, DEV, 0x5000, WR, 0, 1, LAST);
	assert_int_equal(resolver_process(f->res), 1);
	expect_one(f, 1, IOMMUFD_PAGE_RESP_INVALID);
	assert_null(sim_iommu_translate(&f->sim, 0x5000, false));
	/* A read is fine, and the mapping it makes is not writable. */
	send_rec(f, DEV, 0x5000, RD, 0, 2, LAST);
	assert_int_equal(resolver_process(f->res), 1);
	expect_one(f, 2, IOMMUFD_PAGE_RESP_SUCCESS);
	assert_non_null(sim_iommu_translate(&f->sim, 0x5000, false));
	assert_null(sim_iommu_translate(&f->sim, 0x5000, true));
	f->mem.regions[0].readonly = false;
}

static void test_invalid_requests(void **state)
{
	struct fixture *f = *state;

	send_rec(f, DEV, f->mem.size, WR, 0, 1, LAST); /* one past RAM */
	send_rec(f, DEV, LAYOUT_MMIO32_START + 8, RD, 0, 2, LAST);
	send_rec(f, DEV + 1, 0x1000, RD, 0, 3, LAST); /* not our device */
	send_rec(f, DEV, 0x1000, RD, 0, 4, LAST | IOMMU_PGFAULT_FLAGS_PASID_VALID);
	/* A group with one good and one bad record is refused whole. */
	send_rec(f, DEV, 0x2000, RD, 0, 5, 0);
	send_rec(f, DEV, UINT64_MAX - 3, RD, 8, 5, LAST);
	struct iommu_hwpt_page_response r[8];
	int n = 0;
	while (resolver_process(f->res) > 0) {
	}
	n = recv_resp(f, r, 8);
	assert_int_equal(n, 5);
	for (int i = 0; i < 5; i++) {
		assert_int_equal(r[i].cookie, (uint32_t)i + 1);
		assert_int_equal(r[i].code, IOMMUFD_PAGE_RESP_INVALID);
	}
	assert_int_equal(resolver_stats(f->res)->invalid, 5);
	assert_int_equal(resolver_stats(f->res)->groups, 5);
}

static void test_map_failure_and_eexist(void **state)
{
	struct fixture *f = *state;

	f->sim.fail_lo = 4 * CHUNK;
	f->sim.fail_hi = 5 * CHUNK;
	f->sim.fail_errno = ENOMEM;
	send_rec(f, DEV, 4 * CHUNK + 100, WR, 0, 1, LAST);
	assert_int_equal(resolver_process(f->res), 1);
	expect_one(f, 1, IOMMUFD_PAGE_RESP_INVALID);
	assert_false(resolver_is_mapped(f->res, 4 * CHUNK));
	/* The failure is not sticky: once the IOMMU recovers, a retry succeeds. */
	f->sim.fail_hi = 0;
	send_rec(f, DEV, 4 * CHUNK + 100, WR, 0, 2, LAST);
	assert_int_equal(resolver_process(f->res), 1);
	expect_one(f, 2, IOMMUFD_PAGE_RESP_SUCCESS);
	/* EEXIST: another path mapped it first; the group still succeeds. */
	f->sim.exist_lo = 8 * CHUNK;
	f->sim.exist_hi = 9 * CHUNK;
	send_rec(f, DEV, 8 * CHUNK, WR, 0, 3, LAST);
	assert_int_equal(resolver_process(f->res), 1);
	expect_one(f, 3, IOMMUFD_PAGE_RESP_SUCCESS);
	assert_true(resolver_is_mapped(f->res, 8 * CHUNK));
	assert_int_equal(resolver_stats(f->res)->chunks_mapped, 1);
}

static void test_partial_record_across_reads(void **state)
{
	struct fixture *f = *state;
	struct iommu_hwpt_pgfault rec = {.flags = LAST, .dev_id = DEV, .perm = RD, .addr = 0x9000,
					 .cookie = 42};

	assert_int_equal(write(f->dev_fd, &rec, 17), 17);
	assert_int_equal(resolver_process(f->res), 0);
	assert_int_equal(write(f->dev_fd, (uint8_t *)&rec + 17, sizeof(rec) - 17),
			 (ssize_t)sizeof(rec) - 17);
	assert_int_equal(resolver_process(f->res), 1);
	expect_one(f, 42, IOMMUFD_PAGE_RESP_SUCCESS);
}

static void test_shutdown_answers_open_groups(void **state)
{
	struct fixture *f = *state;

	send_rec(f, DEV, 0x1000, RD, 0, 77, 0); /* no LAST_PAGE yet */
	assert_int_equal(resolver_process(f->res), 0);
	resolver_free(f->res);
	f->res = NULL;
	expect_one(f, 77, IOMMUFD_PAGE_RESP_INVALID);
}

/* Garbage records: every LAST_PAGE cookie gets exactly one answer, nothing crashes. */
static void test_garbage_records(void **state)
{
	struct fixture *f = *state;
	unsigned seed = 99, last = 0;
	static uint32_t answered[1 << 16];

	memset(answered, 0, sizeof(answered));
	for (int round = 0; round < 200; round++) {
		for (int i = 0; i < 4; i++) {
			uint32_t cookie = 1 + (uint32_t)(rand_r(&seed) % 60000);
			uint32_t flags = (uint32_t)rand_r(&seed) % 8 ? LAST : (uint32_t)rand_r(&seed);
			uint64_t addr = rand_r(&seed) % 2 ? (uint64_t)rand_r(&seed) % f->mem.size
							 : ((uint64_t)rand_r(&seed) << 33) ^ (uint64_t)rand_r(&seed);
			/* Only the last record of a cookie's run closes it; keep cookies unique. */
			cookie = (cookie & ~3u) | (uint32_t)i;
			send_rec(f, rand_r(&seed) % 4 ? DEV : (uint32_t)rand_r(&seed), addr,
				 (uint32_t)rand_r(&seed), (uint32_t)rand_r(&seed), cookie + round * 65536u,
				 flags | LAST);
			last++;
		}
		while (resolver_process(f->res) > 0) {
		}
		struct iommu_hwpt_page_response r[8];
		int n;
		while ((n = recv_resp(f, r, 8)) > 0)
			for (int i = 0; i < n; i++)
				answered[r[i].cookie & 0xffff]++;
	}
	unsigned total = 0;
	for (unsigned c = 0; c < (1 << 16); c++)
		total += answered[c];
	assert_int_equal(total, last);
	assert_int_equal(resolver_stats(f->res)->groups, last);
}

/*
 * The storm: a device thread keeps 64 groups in flight, 100k page requests at random
 * addresses (some outside RAM), and checks every answer: exactly one per group, the
 * right code, and for SUCCESS that the IOVA reaches the right guest bytes.
 */
#define STORM_FAULTS 100000
#define STORM_INFLIGHT 64

struct storm {
	struct fixture *f;
	struct loop *loop;
	uint32_t answered[STORM_FAULTS + 1]; /* by cookie */
	uint8_t expect_ok[STORM_FAULTS + 1];
	uint64_t addr[STORM_FAULTS + 1];
	unsigned errors, faults_sent, groups;
};

static void storm_stop(void *arg)
{
	struct storm *s = arg;

	loop_stop(s->loop, 0);
}

static void storm_check(struct storm *s, const struct iommu_hwpt_page_response *r)
{
	if (r->cookie == 0 || r->cookie > s->groups || s->answered[r->cookie]++ ||
	    (r->code == IOMMUFD_PAGE_RESP_SUCCESS) != s->expect_ok[r->cookie]) {
		s->errors++;
		return;
	}
	if (r->code == IOMMUFD_PAGE_RESP_SUCCESS) {
		uint64_t a = s->addr[r->cookie];
		uint8_t *p = sim_iommu_translate(&s->f->sim, a, true);
		/* The device "completes the DMA": it must land on the guest's own byte. */
		if (p != s->f->mem.base + a || *p != (uint8_t)(a * 31))
			s->errors++;
	}
}

static void *storm_device(void *arg)
{
	struct storm *s = arg;
	struct fixture *f = s->f;
	unsigned inflight = 0, done = 0;
	uint32_t cookie = 0;
	unsigned seed = 12345;

	while (done < s->groups || s->faults_sent < STORM_FAULTS) {
		while (inflight < STORM_INFLIGHT && s->faults_sent < STORM_FAULTS) {
			unsigned nrec = 1 + rand_r(&seed) % 3;
			if (nrec > STORM_FAULTS - s->faults_sent)
				nrec = STORM_FAULTS - s->faults_sent;
			struct iommu_hwpt_pgfault recs[3];
			bool ok = true;
			cookie++;
			for (unsigned i = 0; i < nrec; i++) {
				bool outside = rand_r(&seed) % 10 == 0;
				uint64_t a = outside ? f->mem.size + (uint64_t)rand_r(&seed) % (1 << 20)
						     : (uint64_t)rand_r(&seed) % f->mem.size;
				ok &= !outside;
				recs[i] = (struct iommu_hwpt_pgfault){
					.flags = i == nrec - 1 ? LAST : 0, .dev_id = DEV,
					.perm = WR, .addr = a, .cookie = cookie};
				if (i == 0)
					s->addr[cookie] = outside ? 0 : a;
				else if (!outside && s->addr[cookie] == 0)
					s->addr[cookie] = a;
			}
			s->expect_ok[cookie] = ok;
			s->groups = cookie;
			/* One write per group, as the kernel queues whole groups. */
			size_t len = nrec * sizeof(recs[0]), off = 0;
			while (off < len) {
				ssize_t n = write(f->dev_fd, (uint8_t *)recs + off, len - off);
				if (n > 0)
					off += (size_t)n;
			}
			s->faults_sent += nrec;
			inflight++;
		}
		struct iommu_hwpt_page_response r[STORM_INFLIGHT];
		ssize_t n = read(f->dev_fd, r, sizeof(r));
		for (ssize_t i = 0; n > 0 && i < n / 8; i++, done++, inflight--)
			storm_check(s, &r[i]);
		if (n <= 0)
			usleep(50);
	}
	loop_post(s->loop, storm_stop, s);
	return NULL;
}

static void test_storm(void **state)
{
	struct fixture *f = *state;
	struct storm *s = calloc(1, sizeof(*s));
	pthread_t t;

	s->f = f;
	s->loop = loop_new();
	for (uint64_t a = 0; a < f->mem.size; a++)
		f->mem.base[a] = (uint8_t)(a * 31);
	assert_int_equal(resolver_attach(f->res, s->loop), 0);
	assert_int_equal(pthread_create(&t, NULL, storm_device, s), 0);
	assert_int_equal(loop_run(s->loop), 0);
	pthread_join(t, NULL);
	assert_int_equal(s->errors, 0);
	for (uint32_t c = 1; c <= s->groups; c++)
		assert_int_equal(s->answered[c], 1);
	const struct resolver_stats *st = resolver_stats(f->res);
	assert_int_equal(st->faults, STORM_FAULTS);
	assert_int_equal(st->groups, s->groups);
	/* Every chunk was mapped exactly once, however often it faulted. */
	assert_int_equal(st->chunks_mapped, f->sim.n);
	resolver_free(f->res);
	f->res = NULL;
	loop_free(s->loop);
	free(s);
}

static int setup_storm(void **state)
{
	return setup_with(state, 64, 64 << 20);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_single_fault_maps_chunk, setup, teardown),
		cmocka_unit_test_setup_teardown(test_group_across_batches, setup, teardown),
		cmocka_unit_test_setup_teardown(test_several_groups_per_read_and_interleaving, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_length_hint, setup, teardown),
		cmocka_unit_test_setup_teardown(test_readonly_region, setup, teardown),
		cmocka_unit_test_setup_teardown(test_invalid_requests, setup, teardown),
		cmocka_unit_test_setup_teardown(test_map_failure_and_eexist, setup, teardown),
		cmocka_unit_test_setup_teardown(test_partial_record_across_reads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shutdown_answers_open_groups, setup, teardown),
		cmocka_unit_test_setup_teardown(test_garbage_records, setup, teardown),
		cmocka_unit_test_setup_teardown(test_storm, setup_storm, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
