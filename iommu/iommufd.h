/* iommufd objects: the fd, IOAS, mappings, hardware page tables, fault queues. */
#ifndef FLINT_IOMMUFD_H
#define FLINT_IOMMUFD_H

#include "vmm/base/memory.h"

#include <stdbool.h>
#include <stdint.h>

struct iommufd {
	int fd;
	bool owned; /* false when the fd was inherited: we still close it, we did not open it */
};

/* Opens @path, or adopts @inherited_fd when it is >= 0 (orchestrators pass fds). */
int iommufd_open(struct iommufd *i, const char *path, int inherited_fd);
void iommufd_close(struct iommufd *i);

int iommufd_ioas_alloc(struct iommufd *i, uint32_t *ioas);
int iommufd_destroy(struct iommufd *i, uint32_t id);
/* Every RAM region of @mem must lie inside the IOAS's usable IOVA ranges (IOVA = GPA). */
int iommufd_check_ranges(struct iommufd *i, uint32_t ioas, const struct guest_memory *mem);
/* Maps @va at fixed @iova. -EEXIST when something is mapped there already (not logged). */
int iommufd_map(struct iommufd *i, uint32_t ioas, uint64_t iova, void *va, uint64_t len,
                bool writable);
/*
 * Unmaps the mappings inside [iova, iova + len) (-ENOENT when one only overlaps it); the
 * kernel has the IOMMU forget them and unpins their pages before it returns. Not logged:
 * the caller knows what the range was (the resolver, many times a second, rate-limits).
 */
int iommufd_unmap(struct iommufd *i, uint32_t ioas, uint64_t iova, uint64_t len);
/* A fault queue: its object id and the fd page requests arrive on. */
int iommufd_fault_alloc(struct iommufd *i, uint32_t *fault_id, int *fault_fd);
/* A paging hwpt for @dev_id over @ioas; with @fault_id != 0 faults go to that queue. */
int iommufd_hwpt_alloc(struct iommufd *i, uint32_t dev_id, uint32_t ioas, uint32_t fault_id,
                       uint32_t *hwpt);

#endif
