/*
 * Rig case: flint's own iommu code (iommu_open, the fault queue, the resolver on the
 * event loop) against the real kernel, with iommufd's mock device raising I/O page
 * faults at guest addresses. After flint answers, MD_CHECK_MAP proves the mock
 * domain maps each IOVA to the right guest memory; a fault outside guest RAM gets
 * INVALID and the kernel accepts that answer.
 */
#include "iommu/iommu.h"
#include "vmm/base/loop.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "iommufd_test.h"
#include "rig.h"

#define RAM   (128ULL << 20)
#define CHUNK (2ULL << 20)

static struct iommu io;
static struct loop *loop;

static int test_cmd(struct iommu_test_cmd *cmd)
{
	cmd->size = sizeof(*cmd);
	return ioctl(io.fd.fd, IOMMU_TEST_CMD, cmd);
}

static void trigger(uint32_t idev, uint32_t grpid, uint64_t addr)
{
	struct iommu_test_cmd c = {
		.op = IOMMU_TEST_OP_TRIGGER_IOPF,
		.trigger_iopf = {.dev_id = idev, .grpid = grpid, .addr = addr,
				 .perm = IOMMU_PGFAULT_PERM_READ | IOMMU_PGFAULT_PERM_WRITE},
	};
	CHECK(test_cmd(&c) == 0, "TRIGGER_IOPF at %#llx: %s", (unsigned long long)addr,
	      strerror(errno));
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

static int check_map(uint32_t hwpt, uint64_t iova, uint64_t len, void *uptr)
{
	struct iommu_test_cmd c = {.op = IOMMU_TEST_OP_MD_CHECK_MAP, .id = hwpt,
				   .check_map = {.iova = iova, .length = len, .uptr = (uintptr_t)uptr}};
	return test_cmd(&c);
}

int main(void)
{
	struct flint_iommu_config icfg = {.path = "/dev/iommu", .fd = -1, .chunk_bytes = CHUNK};
	struct guest_memory mem;
	const struct resolver_stats *st;
	uint32_t hwpt;

	CHECK(guest_memory_init(&mem, RAM, GUEST_BACKING_4K) == 0, "guest memory");
	for (uint64_t a = 0; a < RAM; a += 4096)
		mem.base[a] = (uint8_t)(a >> 12);
	CHECK(iommu_open(&io, &icfg, &mem) == 0, "iommu_open");
	loop = loop_new();
	CHECK(loop, "loop_new");

	struct iommu_test_cmd md = {.op = IOMMU_TEST_OP_MOCK_DOMAIN, .id = io.ioas};
	CHECK(test_cmd(&md) == 0, "MOCK_DOMAIN: %s", strerror(errno));
	uint32_t stdev = md.mock_domain.out_stdev_id, idev = md.mock_domain.out_idev_id;

	CHECK(iommu_enable_faults(&io, CHUNK, loop) == 0, "iommu_enable_faults");
	CHECK(iommu_fault_hwpt(&io, idev, &hwpt) == 0, "iommu_fault_hwpt: %s", strerror(errno));
	struct iommu_test_cmd rep = {.op = IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE, .id = stdev,
				     .mock_domain_replace = {.pt_id = hwpt}};
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
	CHECK(check_map(hwpt, chunk, CHUNK, mem.base + chunk) != 0, "chunk still mapped after unmap");
	rig_info("flint's resolver answered %llu groups (%llu INVALID), mapped %llu chunks on demand",
		 (unsigned long long)st->groups, (unsigned long long)st->invalid,
		 (unsigned long long)st->chunks_mapped);
	/* Exit without teardown: closing the iommufd releases the mock and its domains. */
	return 0;
}
