#include "iommu/iommufd.h"
#include "iommu/uapi_compat.h"
#include "vmm/base/file.h"
#include "vmm/base/log.h"

#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int iommufd_open(struct iommufd *i, const char *path, int inherited_fd)
{
	char why[160];

	i->owned = inherited_fd < 0;
	/* A character device or nothing: a FIFO or file named here must not hang or feed us. */
	i->fd = inherited_fd >= 0 ? inherited_fd
	                          : file_open(path, O_RDWR, FILE_CHR, 0, why, sizeof(why));
	if (i->fd < 0) {
		int e = -i->fd;
		log_error("cannot open %s: %s%s", MSG_ESC(path), why,
		          e == ENOENT ? " (the kernel needs CONFIG_IOMMUFD)" : "");
		i->fd = -1;
		return -e;
	}
	/* An inherited fd must really be an iommufd: an IOAS allocation proves it cheaply. */
	if (!i->owned) {
		uint32_t ioas;
		if (iommufd_ioas_alloc(i, &ioas) < 0) {
			log_error("inherited fd %d is not a usable iommufd", inherited_fd);
			i->fd = -1; /* not ours to close: the caller's fd stays as it was */
			return -EBADF;
		}
		iommufd_destroy(i, ioas);
		log_info("iommu: adopted the inherited iommufd, fd %d", inherited_fd);
	}
	return 0;
}

void iommufd_close(struct iommufd *i)
{
	if (i->fd >= 0)
		close(i->fd);
	i->fd = -1;
}

/* Runs one iommufd ioctl; logs "NAME (what): error" on failure. */
static int iommufd_ioctl(struct iommufd *i, unsigned long req, void *arg, const char *name,
                         const char *what)
{
	if (ioctl(i->fd, req, arg) == 0)
		return 0;
	int e = errno;
	log_error("%s (%s): %s", name, what, strerror(e));
	return -e;
}

int iommufd_ioas_alloc(struct iommufd *i, uint32_t *ioas)
{
	struct iommu_ioas_alloc a = { .size = sizeof(a) };
	int r = iommufd_ioctl(i, IOMMU_IOAS_ALLOC, &a, "IOMMU_IOAS_ALLOC", "new IOAS");

	*ioas = a.out_ioas_id;
	return r;
}

int iommufd_destroy(struct iommufd *i, uint32_t id)
{
	struct iommu_destroy d = { .size = sizeof(d), .id = id };
	char what[32];

	snprintf(what, sizeof(what), "object %u", id);
	return iommufd_ioctl(i, IOMMU_DESTROY, &d, "IOMMU_DESTROY", what);
}

int iommufd_check_ranges(struct iommufd *i, uint32_t ioas, const struct guest_memory *mem)
{
	struct iommu_iova_range ranges[32];
	struct iommu_ioas_iova_ranges q = { .size = sizeof(q),
		                            .ioas_id = ioas,
		                            .num_iovas = 32,
		                            .allowed_iovas = (uintptr_t)ranges };
	char what[32];

	snprintf(what, sizeof(what), "IOAS %u", ioas);
	int r = iommufd_ioctl(i, IOMMU_IOAS_IOVA_RANGES, &q, "IOMMU_IOAS_IOVA_RANGES", what);
	if (r)
		return r;
	for (unsigned g = 0; g < mem->nregions; g++) {
		const struct guest_region *reg = &mem->regions[g];
		bool ok = false;
		for (unsigned k = 0; k < q.num_iovas && k < 32; k++)
			ok |= reg->gpa >= ranges[k].start &&
			      reg->gpa + reg->size - 1 <= ranges[k].last;
		if (!ok) {
			log_error("IOAS %u cannot map guest RAM [%#llx, %#llx): the IOMMU reserves "
			          "part of it (IOMMU_IOAS_IOVA_RANGES)",
			          ioas, (unsigned long long)reg->gpa,
			          (unsigned long long)(reg->gpa + reg->size));
			return -ERANGE;
		}
	}
	return 0;
}

int iommufd_map(struct iommufd *i, uint32_t ioas, uint64_t iova, void *va, uint64_t len,
                bool writable)
{
	struct iommu_ioas_map m = {
		.size = sizeof(m),
		.flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE |
		         (writable ? IOMMU_IOAS_MAP_WRITEABLE : 0),
		.ioas_id = ioas,
		.user_va = (uintptr_t)va,
		.length = len,
		.iova = iova,
	};

	if (ioctl(i->fd, IOMMU_IOAS_MAP, &m) == 0)
		return 0;
	int e = errno;
	if (e != EEXIST)
		log_error("IOMMU_IOAS_MAP (IOAS %u, iova %#llx, %llu KiB): %s", ioas,
		          (unsigned long long)iova, (unsigned long long)(len >> 10), strerror(e));
	return -e;
}

int iommufd_unmap(struct iommufd *i, uint32_t ioas, uint64_t iova, uint64_t len)
{
	struct iommu_ioas_unmap u = {
		.size = sizeof(u), .ioas_id = ioas, .iova = iova, .length = len
	};

	return ioctl(i->fd, IOMMU_IOAS_UNMAP, &u) ? -errno : 0;
}

int iommufd_fault_alloc(struct iommufd *i, uint32_t *fault_id, int *fault_fd)
{
	struct iommu_fault_alloc f = { .size = sizeof(f) };

	if (ioctl(i->fd, IOMMU_FAULT_QUEUE_ALLOC, &f) < 0)
		return -errno; /* callers decide whether a missing fault queue is an error */
	*fault_id = f.out_fault_id;
	*fault_fd = (int)f.out_fault_fd;
	return 0;
}

int iommufd_hwpt_alloc(struct iommufd *i, uint32_t dev_id, uint32_t ioas, uint32_t fault_id,
                       uint32_t *hwpt)
{
	struct iommu_hwpt_alloc h = {
		.size = sizeof(h),
		.flags = fault_id ? IOMMU_HWPT_FAULT_ID_VALID : 0,
		.dev_id = dev_id,
		.pt_id = ioas,
		.fault_id = fault_id,
	};

	if (ioctl(i->fd, IOMMU_HWPT_ALLOC, &h) < 0)
		return -errno;
	*hwpt = h.out_hwpt_id;
	return 0;
}
