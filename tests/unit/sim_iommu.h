/* A simulated IOMMU for the resolver: mappings recorded as sorted intervals. */
#ifndef FLINT_SIM_IOMMU_H
#define FLINT_SIM_IOMMU_H

#include "iommu/resolver.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct sim_map {
	uint64_t iova;
	uint64_t len;
	uint8_t *hva;
	bool writable;
};

struct sim_iommu {
	pthread_mutex_t lock;
	struct sim_map *maps;
	size_t n, cap;
	unsigned map_calls;
	/* Injected behaviour: maps touching [fail_lo, fail_hi) fail with fail_errno... */
	uint64_t fail_lo, fail_hi;
	int fail_errno;
	/* ...and maps touching [exist_lo, exist_hi) report -EEXIST (someone else mapped it). */
	uint64_t exist_lo, exist_hi;
};

extern const struct resolver_backend sim_iommu_backend;

void sim_iommu_init(struct sim_iommu *s);
void sim_iommu_destroy(struct sim_iommu *s);
/* Host address the device would reach at @iova, or NULL when unmapped (or read-only for a write). */
uint8_t *sim_iommu_translate(struct sim_iommu *s, uint64_t iova, bool write);

#endif
