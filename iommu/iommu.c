#include "iommu/iommu.h"
#include "vmm/base/log.h"

#include <errno.h>
#include <linux/pci_regs.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int backend_map(void *ctx, uint64_t gpa, void *hva, uint64_t len, bool writable)
{
	struct iommu *io = ctx;

	return iommufd_map(&io->fd, io->ioas, gpa, hva, len, writable);
}

/* IOAS_UNMAP returns once the IOTLB (and a device's ATS cache) no longer holds the range. */
static int backend_unmap(void *ctx, uint64_t gpa, uint64_t len)
{
	struct iommu *io = ctx;

	return iommufd_unmap(&io->fd, io->ioas, gpa, len);
}

/* The fault fd's own read/write: the kernel checks sizes and cookies (see resolver.h). */
static ssize_t backend_read(void *ctx, int fd, void *buf, size_t len)
{
	ssize_t n = read(fd, buf, len);

	(void)ctx;
	return n < 0 ? -errno : n;
}

static ssize_t backend_write(void *ctx, int fd, const void *buf, size_t len)
{
	ssize_t n = write(fd, buf, len);

	(void)ctx;
	return n < 0 ? -errno : n;
}

static const struct resolver_backend kernel_backend = {
	.map = backend_map, .read = backend_read, .write = backend_write, .unmap = backend_unmap
};

int iommu_open(struct iommu *io, const struct flint_iommu_config *cfg, struct guest_memory *mem)
{
	int r;

	memset(io, 0, sizeof(*io));
	io->fd.fd = io->fault_fd = io->kvm_vfio_fd = -1;
	io->mem = mem;
	io->max_mapped = cfg->max_mapped_bytes;
	r = iommufd_open(&io->fd, cfg->path, cfg->fd);
	return r ? r : iommufd_ioas_alloc(&io->fd, &io->ioas);
}

int iommu_pin_all(struct iommu *io)
{
	if (io->pinned)
		return 0;
	for (unsigned i = 0; i < io->mem->nregions; i++) {
		const struct guest_region *g = &io->mem->regions[i];
		int r = iommufd_map(&io->fd, io->ioas, g->gpa, g->hva, g->size, !g->readonly);
		if (r && r != -EEXIST)
			return r;
	}
	io->pinned = true;
	return 0;
}

int iommu_enable_faults(struct iommu *io, uint64_t chunk, struct loop *loop)
{
	struct resolver_params p;
	char name[48];
	int r;

	if (io->resolver)
		return 0;
	/* The queue outlives a resolver that could not be set up: the next call reuses it. */
	if (io->fault_fd < 0) {
		r = iommufd_fault_alloc(&io->fd, &io->fault_id, &io->fault_fd);
		if (r)
			return r;
	}
	snprintf(name, sizeof(name), "iommufd fault queue %u", io->fault_id);
	p = (struct resolver_params){ .fault_fd = io->fault_fd,
		                      .mem = io->mem,
		                      .chunk = chunk,
		                      .backend = &kernel_backend,
		                      .backend_ctx = io,
		                      .name = name,
		                      .max_mapped = io->max_mapped };
	io->resolver = resolver_new(&p);
	if (!io->resolver)
		return -ENOMEM;
	r = loop ? resolver_attach(io->resolver, loop) : 0;
	if (r) {
		/* Not kept: a later call would take it for a queue that is being served. */
		resolver_free(io->resolver);
		io->resolver = NULL;
	}
	return r;
}

int iommu_fault_hwpt(struct iommu *io, uint32_t dev_id, uint32_t *hwpt)
{
	int r = iommufd_hwpt_alloc(&io->fd, dev_id, io->ioas, io->fault_id, hwpt);

	if (!r)
		r = resolver_add_device(io->resolver, dev_id, 0);
	return r;
}

/*
 * The most page requests one group of @d can hold: its PRI Outstanding Page Request
 * Allocation, which the kernel programs when it enables PRI at attach. 0 when unknown.
 */
static uint32_t pri_max_group(struct vfio_dev *d, uint32_t pri)
{
	uint32_t alloc = 0;

	if (!pri || vfio_config_read(d, pri + PCI_PRI_ALLOC_REQ, &alloc, sizeof(alloc)))
		return 0;
	return alloc;
}

/* Tries fault mode for @d. Returns 0, or -errno with @why saying what refused it. */
static int try_fault_mode(struct iommu *io, struct iommu_device *d, uint64_t chunk, uint32_t pri,
                          struct loop *loop, const char **why)
{
	int r = iommu_enable_faults(io, chunk, loop);

	*why = "IOMMU_FAULT_QUEUE_ALLOC";
	if (!r) {
		*why = "IOMMU_HWPT_ALLOC with a fault queue (needs Linux >= 6.13 and ATS+PRI)";
		r = iommu_fault_hwpt(io, d->vfio.dev_id, &d->hwpt);
	}
	if (!r) {
		*why = "VFIO_DEVICE_ATTACH_IOMMUFD_PT to the fault-capable page table";
		r = vfio_attach(&d->vfio, d->hwpt);
	}
	/* Sizes the resolver's reads for the device's largest group, now that PRI is on. */
	if (!r) {
		*why = "sizing the fault queue's read buffer";
		r = resolver_add_device(io->resolver, d->vfio.dev_id, pri_max_group(&d->vfio, pri));
	}
	return r;
}

/* Chooses and sets up the DMA mode of one bound device. */
static int setup_dma(struct iommu *io, struct iommu_device *d,
                     const struct flint_iommu_config *icfg, struct loop *loop, unsigned idx)
{
	uint32_t pri = vfio_find_ext_cap(&d->vfio, PCI_EXT_CAP_ID_PRI);
	const char *why = NULL;
	int r, fault_err = 0;

	if (d->cfg->mode != DMA_MODE_PIN && (pri || d->cfg->mode == DMA_MODE_FAULT)) {
		r = try_fault_mode(io, d, icfg->chunk_bytes, pri, loop, &why);
		if (!r) {
			d->mode = DMA_MODE_FAULT;
			log_info("%s (%s): DMA mode fault: guest memory is mapped on the device's "
			         "page requests",
			         d->cfg->id, d->vfio.node);
			return 0;
		}
		if (d->cfg->mode == DMA_MODE_FAULT) {
			log_error(
			        "flint.vfio-devices[%u].dma_mode is \"fault\" but %s failed: %s%s",
			        idx, why, strerror(-r),
			        pri ? "" : " (the device has no PRI capability)");
			return r;
		}
		fault_err = r;
	}
	r = iommu_pin_all(io);
	if (r)
		return r;
	r = vfio_attach(&d->vfio, io->ioas);
	if (r) {
		log_error("VFIO_DEVICE_ATTACH_IOMMUFD_PT (%s to IOAS %u): %s", d->vfio.node,
		          io->ioas, strerror(-r));
		return r;
	}
	d->mode = DMA_MODE_PIN;
	if (d->cfg->mode == DMA_MODE_PIN)
		log_info("%s (%s): DMA mode pin, as configured", d->cfg->id, d->vfio.node);
	else if (!pri)
		log_info("%s (%s): DMA mode pin: the device has no PRI capability, so all guest "
		         "RAM is mapped",
		         d->cfg->id, d->vfio.node);
	else
		log_info("%s (%s): DMA mode pin: the kernel refused a fault-capable page table "
		         "(%s: %s), so all guest RAM is mapped",
		         d->cfg->id, d->vfio.node, why, strerror(-fault_err));
	return 0;
}

static int add_device(struct iommu *io, const struct flint_iommu_config *icfg,
                      const struct vfio_config *devs, unsigned idx, int vm_fd, struct loop *loop)
{
	struct iommu_device *d = &io->devs[io->ndevs];
	char node[64], err[256];
	int r;

	d->cfg = &devs[idx];
	d->vfio.fd = -1;
	r = vfio_resolve(d->cfg->spec, node, sizeof(node), err, sizeof(err));
	if (r) {
		log_error("flint.vfio-devices[%u]: %s", idx, err);
		return r;
	}
	r = vfio_open(&d->vfio, node);
	if (r)
		return r;
	io->ndevs++;
	r = vfio_kvm_add(vm_fd, &io->kvm_vfio_fd, &d->vfio);
	if (!r)
		r = vfio_bind(&d->vfio, io->fd.fd);
	if (!r)
		r = vfio_query(&d->vfio);
	if (!r)
		r = setup_dma(io, d, icfg, loop, idx);
	/* Attaching can shrink the usable IOVA space (reserved regions): check after each. */
	if (!r)
		r = iommufd_check_ranges(&io->fd, io->ioas, io->mem);
	return r;
}

int iommu_setup(struct iommu *io, const struct flint_iommu_config *icfg,
                const struct vfio_config *devs, unsigned ndevs, struct guest_memory *mem, int vm_fd,
                struct loop *loop)
{
	int r;

	if (ndevs > IOMMU_MAX_DEVICES) {
		log_error("flint.vfio-devices: at most %d devices", IOMMU_MAX_DEVICES);
		return -E2BIG;
	}
	r = iommu_open(io, icfg, mem);
	for (unsigned i = 0; !r && i < ndevs; i++)
		r = add_device(io, icfg, devs, i, vm_fd, loop);
	return r;
}

void iommu_teardown(struct iommu *io)
{
	if (io->resolver) {
		const struct resolver_stats *s = resolver_stats(io->resolver);
		if (s->faults)
			log_info("iommu: %llu page requests in %llu groups, %llu chunks (%llu MiB) "
			         "mapped on demand, %llu groups answered INVALID, %llu responses "
			         "the kernel refused",
			         (unsigned long long)s->faults, (unsigned long long)s->groups,
			         (unsigned long long)s->chunks_mapped,
			         (unsigned long long)(s->bytes_mapped >> 20),
			         (unsigned long long)s->invalid, (unsigned long long)s->refused);
		if (s->faults && io->max_mapped)
			log_info(
			        "iommu: flint.iommu.max_mapped_mib %llu: %llu chunks (%llu MiB) "
			        "unmapped to stay under it, %llu mapped again on a new fault, %llu "
			        "times a page request waited for answers to be written",
			        (unsigned long long)(io->max_mapped >> 20),
			        (unsigned long long)s->chunks_unmapped,
			        (unsigned long long)(s->bytes_unmapped >> 20),
			        (unsigned long long)s->refaults, (unsigned long long)s->cap_waits);
		resolver_free(io->resolver); /* answers anything still open */
	}
	/* Closing a cdev detaches and unbinds its device. */
	for (unsigned i = 0; i < io->ndevs; i++)
		vfio_close(&io->devs[i].vfio);
	if (io->fault_fd >= 0)
		close(io->fault_fd);
	if (io->kvm_vfio_fd >= 0)
		close(io->kvm_vfio_fd);
	/*
	 * Closing the iommufd destroys the page tables, the IOAS with its mappings and the
	 * fault queue, answering whatever page requests the kernel still holds (INVALID).
	 */
	iommufd_close(&io->fd);
	memset(io, 0, sizeof(*io));
	io->fd.fd = io->fault_fd = io->kvm_vfio_fd = -1;
}
