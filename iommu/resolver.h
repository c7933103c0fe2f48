/*
 * The on-demand DMA resolver. A PRI-capable device's page requests arrive as
 * struct iommu_hwpt_pgfault records on an iommufd fault fd; the resolver maps the guest
 * memory around each faulting address into the IOAS and only then answers the group.
 * It runs on the event loop. Every group it reads is answered exactly once.
 *
 * The mapping backend is a seam: the kernel's IOAS in flint, a simulated IOMMU in tests.
 */
#ifndef FLINT_RESOLVER_H
#define FLINT_RESOLVER_H

#include "vmm/memory.h"

#include <stdbool.h>
#include <stdint.h>

struct loop;

struct resolver_backend {
	/*
	 * Maps guest [gpa, gpa + len) (host address @hva) at IOVA = gpa. Returns 0,
	 * -EEXIST when (part of) it is already mapped, or another -errno.
	 */
	int (*map)(void *ctx, uint64_t gpa, void *hva, uint64_t len, bool writable);
};

#define RESOLVER_LAT_BUCKETS 24 /* bucket i: latency < 2^i microseconds */

struct resolver_stats {
	uint64_t faults; /* records read */
	uint64_t groups; /* groups answered */
	uint64_t chunks_mapped;
	uint64_t bytes_mapped;
	uint64_t invalid; /* groups answered INVALID */
	uint64_t refused; /* responses the kernel did not accept (should stay 0) */
	uint64_t latency_us[RESOLVER_LAT_BUCKETS]; /* read -> response, per group */
};

struct resolver_params {
	int fault_fd;
	const struct guest_memory *mem;
	uint64_t chunk; /* bytes mapped per fault, a power of two >= 4 KiB; 0 = 2 MiB */
	unsigned batch; /* records per read; 0 = 64 */
	const struct resolver_backend *backend;
	void *backend_ctx;
};

struct resolver;

struct resolver *resolver_new(const struct resolver_params *p);
/* Frees it; groups still incomplete (no LAST_PAGE yet) are answered INVALID first. */
void resolver_free(struct resolver *r);
/* Faults from @dev_id are served; from any other device they are refused. */
int resolver_add_device(struct resolver *r, uint32_t dev_id);
/* Serves the fault fd from @loop. */
int resolver_attach(struct resolver *r, struct loop *loop);
/* Reads and answers what is pending now. Returns groups answered, or -errno. */
int resolver_process(struct resolver *r);
const struct resolver_stats *resolver_stats(const struct resolver *r);
/* True when the chunk holding @gpa is mapped. */
bool resolver_is_mapped(const struct resolver *r, uint64_t gpa);

#endif
