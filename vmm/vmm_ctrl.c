/* What the API does to a running VM: pause, resume, Ctrl-Alt-Del, a drive's or an
 * interface's update, and what it reads of it (metrics, the fault resolver's counters). */
#include "vmm/vmm.h"
#include "vmm/vmm_state.h"
#include "devices/virtio/blk.h"
#include "devices/virtio/net.h"
#include "vmm/base/log.h"

#include <errno.h>
#include <stdatomic.h>

/* A VM whose vCPUs run and are not being stopped: the one the API may act on. */
static bool vm_runs(const struct vmm *m)
{
	return m->vm.nvcpus && !atomic_load(&m->vm.stopping);
}

/* The running VM's drive @id, in *b: 0, -ESRCH (no VM runs) or -ENOENT. */
static int running_drive(struct vmm *m, const char *id, struct virtio_blk **b)
{
	if (!vm_runs(m))
		return -ESRCH;
	*b = vmm_virtio_drive(&m->virtio, m->cfg, id);
	return *b ? 0 : -ENOENT;
}

int vmm_pause(struct vmm *m)
{
	int r;

	if (!vm_runs(m))
		return -ESRCH;
	r = vcpus_pause(m->vcpus, m->vm.nvcpus);
	if (r == -ETIMEDOUT)
		log_error("cannot pause the VM: its vCPUs did not stop within 5 s");
	else if (!r)
		log_info("VM paused");
	return r;
}

void vmm_resume(struct vmm *m)
{
	if (!m->vm.nvcpus)
		return;
	vcpus_resume(m->vcpus, m->vm.nvcpus);
	log_info("VM resumed");
}

int vmm_ctrl_alt_del(struct vmm *m)
{
	if (!vm_runs(m))
		return -ESRCH;
	return i8042_ctrl_alt_del(&m->i8042);
}

int vmm_drive_find(struct vmm *m, const char *id, bool *read_only)
{
	struct virtio_blk *b;
	int r = running_drive(m, id, &b);

	if (!r)
		*read_only = b->read_only;
	return r;
}

int vmm_drive_update(struct vmm *m, const char *id, int fd, const struct rate_limiter *limiter)
{
	struct virtio_blk *b;
	int r = running_drive(m, id, &b);

	if (r)
		return r;
	/* Firecracker's order: the file first; a file that fails leaves the limiter alone. */
	if (fd >= 0 && (r = virtio_blk_set_image(b, fd)))
		return r;
	if (limiter)
		virtio_blk_set_limiter(b, limiter);
	return 0;
}

int vmm_net_update(struct vmm *m, const char *id, const struct rate_limiter *rx,
                   const struct rate_limiter *tx)
{
	struct virtio_net *n;

	if (!vm_runs(m))
		return -ESRCH;
	n = vmm_virtio_net(&m->virtio, m->cfg, id);
	if (!n)
		return -ENOENT;
	virtio_net_set_limiters(n, rx, tx);
	return 0;
}

struct metrics *vmm_metrics(struct vmm *m)
{
	return m->metrics;
}

const struct resolver_stats *vmm_iommu_stats(struct vmm *m)
{
	return m->iommu_used && m->iommu.resolver ? resolver_stats(m->iommu.resolver) : NULL;
}
