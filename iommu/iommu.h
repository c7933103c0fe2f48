/*
 * A VM's DMA translation: one iommufd and one IOAS (IOVA = guest physical address) shared
 * by every assigned device. Devices in `pin` mode get all guest RAM mapped before the
 * guest runs; devices in `fault` mode get a fault-capable page table and the resolver.
 */
#ifndef FLINT_IOMMU_H
#define FLINT_IOMMU_H

#include "iommu/iommufd.h"
#include "iommu/resolver.h"
#include "iommu/vfio.h"
struct loop;

#define IOMMU_MAX_DEVICES 16 /* flint.vfio-devices takes no more */

/* What the config asks for (flint.iommu, flint.vfio-devices[]). */
enum dma_mode {
	DMA_MODE_AUTO,  /* fault when the device has PRI and the kernel takes a fault queue */
	DMA_MODE_PIN,   /* map all guest RAM up front */
	DMA_MODE_FAULT, /* map on the device's page requests; an error when impossible */
};

struct vfio_config {
	char *id;
	char *spec; /* a /dev/vfio/devices path or a PCI address */
	enum dma_mode mode;
	int guest_slot; /* the guest's PCI slot, 1..31; -1: the next free one */
};

struct flint_iommu_config {
	char *path;                /* default /dev/iommu */
	int fd;                    /* an inherited iommufd, or -1 */
	uint64_t chunk_bytes;      /* mapped per page request, default 2 MiB */
	uint64_t max_mapped_bytes; /* the most fault mode keeps mapped; 0 = no cap */
};


struct iommu_device {
	const struct vfio_config *cfg;
	struct vfio_dev vfio;
	enum dma_mode mode; /* resolved: pin or fault */
	uint32_t hwpt;      /* fault mode: its page table */
};

struct iommu {
	struct iommufd fd;
	uint32_t ioas;
	struct guest_memory *mem;
	uint64_t max_mapped; /* the resolver's cap (flint_iommu_config.max_mapped_bytes) */
	bool pinned;         /* all guest RAM is mapped */
	uint32_t fault_id;
	int fault_fd;
	struct resolver *resolver;
	int kvm_vfio_fd;
	struct iommu_device devs[IOMMU_MAX_DEVICES];
	unsigned ndevs;
};

/* Opens, binds and attaches the @ndevs devices of @devs. Errors are logged. */
int iommu_setup(struct iommu *io, const struct flint_iommu_config *icfg,
                const struct vfio_config *devs, unsigned ndevs, struct guest_memory *mem,
                int vm_fd, struct loop *loop);
/* Answers outstanding page requests, detaches devices and releases everything. */
void iommu_teardown(struct iommu *io);

/* Lower-level steps, also used by the rig's tests. */
int iommu_open(struct iommu *io, const struct flint_iommu_config *cfg, struct guest_memory *mem);
int iommu_pin_all(struct iommu *io);
/* Creates the fault queue and resolver (once) and serves it from @loop. */
int iommu_enable_faults(struct iommu *io, uint64_t chunk, struct loop *loop);
/* A fault-capable page table for @dev_id over the IOAS; the device is then served. */
int iommu_fault_hwpt(struct iommu *io, uint32_t dev_id, uint32_t *hwpt);

#endif
