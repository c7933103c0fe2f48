/* The VM's virtio devices: slots, GSIs, the guest command line, creation and teardown. */
#include "vmm/virtio.h"
#include "devices/virtio/blk.h"
#include "devices/virtio/net.h"
#include "devices/virtio/rng.h"
#include "devices/virtio/vsock.h"
#include "vmm/base/log.h"
#include "vmm/vm.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CMDLINE_ROOT_MAX 160 /* " root=PARTUUID=<a config string> rw" */

static int add_slot(struct vmm_virtio *v, enum vmm_virtio_kind kind, size_t index)
{
	struct vmm_virtio_slot *s;

	if (v->n == LAYOUT_VIRTIO_SLOTS)
		return -E2BIG;
	s = &v->slots[v->n];
	*s = (struct vmm_virtio_slot){ .kind = kind,
		                       .index = index,
		                       .base = LAYOUT_VIRTIO_MMIO + v->n * VIRTIO_MMIO_SLOT_SIZE,
		                       .gsi = LAYOUT_VIRTIO_GSI + v->n,
		                       .irq_fd = -1 };
	v->n++;
	return 0;
}

static int plan_slots(struct vmm_virtio *v, const struct vm_config *cfg)
{
	int r = 0;

	v->n = 0;
	for (size_t i = 0; i < cfg->ndrives && !r; i++)
		if (cfg->drives[i].root)
			r = add_slot(v, VIRTIO_KIND_DRIVE, i);
	for (size_t i = 0; i < cfg->ndrives && !r; i++)
		if (!cfg->drives[i].root)
			r = add_slot(v, VIRTIO_KIND_DRIVE, i);
	for (size_t i = 0; i < cfg->nnets && !r; i++)
		r = add_slot(v, VIRTIO_KIND_NET, i);
	if (!r && cfg->vsock.present)
		r = add_slot(v, VIRTIO_KIND_VSOCK, 0);
	if (!r && cfg->entropy)
		r = add_slot(v, VIRTIO_KIND_RNG, 0);
	return r;
}

static int append(char *cmdline, size_t cap, const char *what)
{
	size_t used = strlen(cmdline);

	if (strlen(what) >= cap - used)
		return -ENOSPC;
	memcpy(cmdline + used, what, strlen(what) + 1);
	return 0;
}

/* Firecracker's: root=/dev/vda, or the partition by its UUID; ro or rw as the drive is. */
static int root_args(const struct vm_config *cfg, char *cmdline, size_t cap)
{
	char args[CMDLINE_ROOT_MAX];

	for (size_t i = 0; i < cfg->ndrives; i++) {
		const struct drive_config *d = &cfg->drives[i];
		if (!d->root)
			continue;
		snprintf(args, sizeof(args), " root=%s%s %s",
		         d->partuuid ? "PARTUUID=" : "/dev/vda", d->partuuid ? d->partuuid : "",
		         d->read_only ? "ro" : "rw");
		return append(cmdline, cap, args);
	}
	return 0;
}

int vmm_virtio_plan(struct vmm_virtio *v, const struct vm_config *cfg, char *cmdline, size_t cap)
{
	int r = plan_slots(v, cfg);

	if (r) {
		log_error(
		        "too many virtio devices: flint has %u slots (drives, network interfaces, "
		        "vsock and entropy together)",
		        LAYOUT_VIRTIO_SLOTS);
		return r;
	}
	r = root_args(cfg, cmdline, cap);
	for (unsigned i = 0; i < v->n && !r; i++)
		r = virtio_mmio_cmdline(cmdline, cap, v->slots[i].base, v->slots[i].gsi);
	if (r)
		log_error("the kernel command line has no room left for the virtio devices");
	return r;
}

/* Each model embeds its struct virtio_dev first: the slot keeps that, and frees it whole. */
_Static_assert(offsetof(struct virtio_blk, dev) == 0, "virtio_dev first");
_Static_assert(offsetof(struct virtio_net, dev) == 0, "virtio_dev first");
_Static_assert(offsetof(struct virtio_vsock, dev) == 0, "virtio_dev first");
_Static_assert(offsetof(struct virtio_rng, dev) == 0, "virtio_dev first");

static const size_t model_size[] = {
	[VIRTIO_KIND_DRIVE] = sizeof(struct virtio_blk),
	[VIRTIO_KIND_NET] = sizeof(struct virtio_net),
	[VIRTIO_KIND_VSOCK] = sizeof(struct virtio_vsock),
	[VIRTIO_KIND_RNG] = sizeof(struct virtio_rng),
};

/*
 * A net device whose interface mmds-config names answers the MMDS address itself, from
 * the process's store (which outlives the device). The stack copies what it is given.
 */
static int init_net(struct virtio_net *n, const struct net_config *c, struct mmds *store,
                    struct loop *loop)
{
	struct net_config with = *c;
	struct net_mmds_config mc = { 0 };
	struct mmds_net mn;
	int r = store ? mmds_net(store, c->id, &mn) : 0;

	if (r < 0)
		return r;
	if (r > 0) {
		mc.ipv4 = (uint32_t)mn.ipv4[0] << 24 | (uint32_t)mn.ipv4[1] << 16 |
		          (uint32_t)mn.ipv4[2] << 8 | mn.ipv4[3];
		mc.responder = mn.responder;
		with.mmds = &mc;
	}
	return virtio_net_init(n, &with, loop);
}

static int init_model(void *m, const struct vmm_virtio_slot *s, const struct vm_config *cfg,
                      struct mmds *store, struct loop *loop)
{
	const struct drive_config *d;

	switch (s->kind) {
	case VIRTIO_KIND_DRIVE:
		d = &cfg->drives[s->index];
		return virtio_blk_init(
		        m, &(struct virtio_blk_options){ .id = d->id,
		                                         .fd = d->fd,
		                                         .read_only = d->read_only,
		                                         .flush = d->cache == CACHE_WRITEBACK,
		                                         .limiter = &d->limiter,
		                                         .loop = loop,
		                                         .defer_io = true });
	case VIRTIO_KIND_NET:
		return init_net(m, &cfg->nets[s->index], store, loop);
	case VIRTIO_KIND_VSOCK:
		return virtio_vsock_init(m, &cfg->vsock, loop);
	case VIRTIO_KIND_RNG:
		virtio_rng_init(m, &cfg->entropy_limiter, loop);
		return 0;
	}
	return -EINVAL;
}

/* The device model for @s, allocated and set up; its name set for logs. */
static int new_model(struct vmm_virtio_slot *s, const struct vm_config *cfg, struct mmds *store,
                     struct loop *loop)
{
	void *m = malloc(model_size[s->kind]);
	int r;

	if (!m)
		return -ENOMEM;
	r = init_model(m, s, cfg, store, loop);
	if (r) {
		free(m);
		return r;
	}
	s->dev = m;
	return 0;
}

static void free_model(struct vmm_virtio_slot *s)
{
	switch (s->kind) {
	case VIRTIO_KIND_DRIVE:
		virtio_blk_destroy((struct virtio_blk *)s->dev);
		break;
	case VIRTIO_KIND_NET:
		virtio_net_destroy((struct virtio_net *)s->dev);
		break;
	case VIRTIO_KIND_VSOCK:
		virtio_vsock_destroy((struct virtio_vsock *)s->dev);
		break;
	case VIRTIO_KIND_RNG:
		virtio_rng_destroy((struct virtio_rng *)s->dev);
		break;
	}
	free(s->dev);
	s->dev = NULL;
}

static int wire_slot(struct vmm_virtio_slot *s, struct vm *vm, struct loop *loop)
{
	int r;

	s->irq_fd = vm_irqfd(vm, s->gsi);
	if (s->irq_fd < 0)
		return s->irq_fd;
	r = virtio_mmio_init(&s->t, s->dev, vm->mem, loop, s->irq_fd);
	if (r)
		return r;
	s->bound = true;
	for (unsigned q = 0; q < s->dev->nqueues && !r; q++)
		r = vm_ioeventfd(vm, s->base + VIRTIO_MMIO_QUEUE_NOTIFY, 4, q,
		                 virtio_mmio_notify_fd(&s->t, q));
	if (!r)
		r = bus_add(&vm->mmio, s->base, VIRTIO_MMIO_SLOT_SIZE, &virtio_mmio_ops, &s->t,
		            s->dev->name);
	return r;
}

int vmm_virtio_create(struct vmm_virtio *v, const struct vm_config *cfg, struct mmds *store,
                      struct vm *vm, struct loop *loop)
{
	int r = 0;

	for (unsigned i = 0; i < v->n && !r; i++) {
		struct vmm_virtio_slot *s = &v->slots[i];
		r = new_model(s, cfg, store, loop);
		if (!r)
			r = wire_slot(s, vm, loop);
		if (r)
			log_error("%s at %#llx (GSI %u): cannot set it up: %s",
			          s->dev ? s->dev->name : "virtio device",
			          (unsigned long long)s->base, s->gsi, strerror(-r));
	}
	return r;
}

int vmm_virtio_start(struct vmm_virtio *v, const struct sysfilter *io_filter)
{
	int r = 0;

	for (unsigned i = 0; i < v->n && !r; i++)
		if (v->slots[i].kind == VIRTIO_KIND_DRIVE)
			r = virtio_blk_start((struct virtio_blk *)v->slots[i].dev, io_filter);
	return r;
}

void vmm_virtio_destroy(struct vmm_virtio *v)
{
	for (unsigned i = 0; i < v->n; i++) {
		struct vmm_virtio_slot *s = &v->slots[i];
		if (s->bound)
			virtio_mmio_destroy(&s->t);
		s->bound = false;
		if (s->dev)
			free_model(s);
		if (s->irq_fd >= 0)
			close(s->irq_fd);
		s->irq_fd = -1;
	}
	v->n = 0;
}

static struct virtio_dev *find(struct vmm_virtio *v, const struct vm_config *cfg,
                               enum vmm_virtio_kind kind, const char *id)
{
	for (unsigned i = 0; i < v->n; i++) {
		const struct vmm_virtio_slot *s = &v->slots[i];
		if (s->kind != kind || !s->dev)
			continue;
		if (!strcmp(kind == VIRTIO_KIND_DRIVE ? cfg->drives[s->index].id
		                                      : cfg->nets[s->index].id,
		            id))
			return s->dev;
	}
	return NULL;
}

struct virtio_blk *vmm_virtio_drive(struct vmm_virtio *v, const struct vm_config *cfg,
                                    const char *id)
{
	return (struct virtio_blk *)find(v, cfg, VIRTIO_KIND_DRIVE, id);
}

struct virtio_net *vmm_virtio_net(struct vmm_virtio *v, const struct vm_config *cfg, const char *id)
{
	return (struct virtio_net *)find(v, cfg, VIRTIO_KIND_NET, id);
}
