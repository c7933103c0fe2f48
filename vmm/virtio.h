/*
 * The VM's virtio devices: which slot and GSI each config entry gets, what the guest's
 * command line says of them, and their life from creation to teardown. Slot order is
 * Firecracker's: the root drive first (so it is /dev/vda), the other drives in config
 * order, then network interfaces, vsock, entropy.
 */
#ifndef FLINT_VMM_VIRTIO_H
#define FLINT_VMM_VIRTIO_H

#include "devices/virtio/mmio.h"
#include "vmm/vm_config.h"
#include "vmm/x86/layout.h"

#include <stddef.h>

struct vm;
struct loop;
struct virtio_blk;
struct virtio_net;
struct sysfilter;

enum vmm_virtio_kind { VIRTIO_KIND_DRIVE, VIRTIO_KIND_NET, VIRTIO_KIND_VSOCK, VIRTIO_KIND_RNG };

struct vmm_virtio_slot {
	enum vmm_virtio_kind kind;
	size_t index; /* into cfg->drives or cfg->nets */
	uint64_t base;
	unsigned gsi;
	struct virtio_dev *dev; /* the model, allocated by kind */
	struct virtio_transport t;
	bool bound; /* t is initialised */
	int irq_fd;
};

struct vmm_virtio {
	struct vmm_virtio_slot slots[LAYOUT_VIRTIO_SLOTS];
	unsigned n;
};

/*
 * Lays out the slots for @cfg and appends to @cmdline (size @cap) what the guest needs
 * to find them: virtio_mmio.device= per slot, root= for a root drive. Returns 0, -E2BIG
 * for more devices than slots, -ENOSPC when the command line is full; logged.
 */
int vmm_virtio_plan(struct vmm_virtio *v, const struct vm_config *cfg, char *cmdline, size_t cap);
/* Creates every planned device, its transport, irqfd and ioeventfds, on @vm's MMIO bus. */
/* @store: the MMDS the net devices mmds-config names answer from (NULL: none). */
int vmm_virtio_create(struct vmm_virtio *v, const struct vm_config *cfg, struct mmds *store,
                      struct vm *vm, struct loop *loop);
/*
 * The threads of the devices that have some (the drives' I/O), after flint dropped its
 * privileges and before the guest runs; each thread installs @io_filter (NULL: none)
 * first. 0 or -errno (logged).
 */
int vmm_virtio_start(struct vmm_virtio *v, const struct sysfilter *io_filter);
/* After the vCPUs stopped, before the loop is freed. Safe on a partly created set. */
void vmm_virtio_destroy(struct vmm_virtio *v);

/* The created drive or interface whose config id (drive_id, iface_id) is @id; NULL: none. */
struct virtio_blk *vmm_virtio_drive(struct vmm_virtio *v, const struct vm_config *cfg,
                                    const char *id);
struct virtio_net *vmm_virtio_net(struct vmm_virtio *v, const struct vm_config *cfg,
                                  const char *id);

#endif
