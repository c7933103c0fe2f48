/*
 * What a running VM counts, as metrics sections (vmm/metrics.h) under Firecracker's names
 * where Firecracker has the same count: vcpu (exits, failures), block and block_<drive_id>,
 * net and net_<iface_id>, vsock, entropy; and flint's own iommu section (the fault
 * resolver). Only what flint measures is written: a device that is not there has no
 * section, and a Firecracker key flint does not count is left out, not written as 0.
 *
 * Threading: loop thread. vCPU counters are atomics, device counters are read under the
 * device's lock, the resolver's belong to the loop.
 */
#ifndef FLINT_VM_METRICS_H
#define FLINT_VM_METRICS_H

#include "iommu/resolver.h"
#include "vmm/metrics.h"
#include "vmm/vcpu.h"
#include "vmm/virtio.h"

#include <jansson.h>

struct vm_metrics_parts {
	const struct vcpu *vcpus;
	unsigned nvcpus;
	struct vmm_virtio *virtio;
	const struct vm_config *cfg;
	const struct resolver_stats *iommu; /* NULL: no device in fault mode */
	const struct mmds *mmds;            /* the store; NULL: no mmds section, unless: */
	bool mmds_unmade; /* NULL is a store not made (yet): the section, its counters 0 */
};

/* Adds the VM's sections to @l. */
void vm_metrics_add(struct metrics_line *l, const struct vm_metrics_parts *p);

/*
 * The resolver's counters since it began, for GET /flint/iommu: the iommu section's keys
 * with totals. NULL when out of memory.
 */
json_t *vm_metrics_iommu_json(const struct resolver_stats *s);

/*
 * The @pct-th percentile (1-100) of a histogram whose bucket i counts values below 2^i (the
 * resolver's latency_us): the upper bound of the bucket it falls in, 2^i; the last bucket
 * has none and says 2^(n-1). 0 for an empty histogram.
 */
uint64_t vm_metrics_percentile(const uint64_t *buckets, unsigned n, unsigned pct);

#endif
