/* The VM's virtio devices: slots, GSIs, the guest command line, creation and teardown. */
#include "vmm/virtio.h"
#include "devices/virtio/blk.h"
#include "devices/virtio/net.h"
#include "devices/virtio/rng.h"
#include "devices/virtio/vsock.h"
#include "vmm/base/log.h"
#include "vmm/vm.h"

#include <errno.h>
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

static int new_blk(struct vmm_virtio_slot *s, const struct drive_config *d, struct loop *loop)
{
	struct virtio_blk *b = malloc(sizeof(*b));
	int r;

	if (!b)
		return -ENOMEM;
	r = virtio_blk_init(b, &(struct virtio_blk_options){ .id = d->id,
	                                                     .fd = d->fd,
	                                                     .read_only = d->read_only,
	                                                     .flush = d->cache == CACHE_WRITEBACK,
	                                                     .limiter = &d->limiter,
	                                                     .loop = loop });
	if (r) {
		free(b);
		return r;
	}
	s->dev = &b->dev;
	return 0;
}

static int new_vsock(struct vmm_virtio_slot *s, const struct vsock_config *cfg, struct loop *loop)
{
	struct virtio_vsock *v = malloc(sizeof(*v));
	int r;

	if (!v)
		return -ENOMEM;
	r = virtio_vsock_init(v, cfg, loop);
	if (r) {
		free(v);
		return r;
	}
	s->dev = &v->dev;
	return 0;
}

static int new_net(struct vmm_virtio_slot *s, const struct net_config *cfg, struct loop *loop)
{
	struct virtio_net *n = malloc(sizeof(*n));
	int r;

	if (!n)
		return -ENOMEM;
	r = virtio_net_init(n, cfg, loop);
	if (r) {
		free(n);
		return r;
	}
	s->dev = &n->dev;
	return 0;
}

/* The device model for @s, allocated; its name set for logs. */
static int new_model(struct vmm_virtio_slot *s, const struct vm_config *cfg, struct loop *loop)
{
	switch (s->kind) {
	case VIRTIO_KIND_DRIVE:
		return new_blk(s, &cfg->drives[s->index], loop);
	case VIRTIO_KIND_NET:
		return new_net(s, &cfg->nets[s->index], loop);
	case VIRTIO_KIND_VSOCK:
		return new_vsock(s, &cfg->vsock, loop);
	case VIRTIO_KIND_RNG: {
		struct virtio_rng *rng = malloc(sizeof(*rng));
		if (!rng)
			return -ENOMEM;
		virtio_rng_init(rng, &cfg->entropy_limiter, loop);
		s->dev = &rng->dev;
		return 0;
	}
	default:
		return -EOPNOTSUPP; /* refused before: unsupported_devices() in vmm.c */
	}
}

static void free_model(struct vmm_virtio_slot *s)
{
	switch (s->kind) {
	case VIRTIO_KIND_DRIVE:
		virtio_blk_destroy((struct virtio_blk *)s->dev);
		free((struct virtio_blk *)s->dev);
		break;
	case VIRTIO_KIND_NET:
		virtio_net_destroy((struct virtio_net *)s->dev);
		free((struct virtio_net *)s->dev);
		break;
	case VIRTIO_KIND_VSOCK:
		virtio_vsock_destroy((struct virtio_vsock *)s->dev);
		free((struct virtio_vsock *)s->dev);
		break;
	case VIRTIO_KIND_RNG:
		virtio_rng_destroy((struct virtio_rng *)s->dev);
		free((struct virtio_rng *)s->dev);
		break;
	default:
		break;
	}
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

int vmm_virtio_create(struct vmm_virtio *v, const struct vm_config *cfg, struct vm *vm,
                      struct loop *loop)
{
	int r = 0;

	for (unsigned i = 0; i < v->n && !r; i++) {
		struct vmm_virtio_slot *s = &v->slots[i];
		r = new_model(s, cfg, loop);
		if (!r)
			r = wire_slot(s, vm, loop);
		if (r)
			log_error("%s at %#llx (GSI %u): cannot set it up: %s",
			          s->dev ? s->dev->name : "virtio device",
			          (unsigned long long)s->base, s->gsi, strerror(-r));
	}
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
