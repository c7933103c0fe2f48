/* What assigned devices need of the VM: BARs as KVM memory slots, MSIs as GSI routes + irqfds. */
#include "vmm/base/log.h"
#include "vmm/vm.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#define IOAPIC_PINS 24
#define PIC_PINS    16

static int set_slot(struct vm *vm, int handle, uint64_t gpa, uint64_t size, void *hva)
{
	struct kvm_userspace_memory_region slot = {
		.slot = (uint32_t)(vm->mem->nregions + (unsigned)handle),
		.guest_phys_addr = gpa,
		.memory_size = size,
		.userspace_addr = (uintptr_t)hva,
	};

	return ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &slot) < 0 ? -errno : 0;
}

int vm_map_device(struct vm *vm, uint64_t gpa, uint64_t size, void *hva)
{
	int handle = -ENOSPC, r;

	pthread_mutex_lock(&vm->dev_lock);
	for (int i = 0; i < VM_DEVICE_SLOTS && handle < 0; i++)
		if (!vm->device_slot_used[i])
			handle = i;
	r = handle < 0 ? handle : set_slot(vm, handle, gpa, size, hva);
	if (!r)
		vm->device_slot_used[handle] = true;
	pthread_mutex_unlock(&vm->dev_lock);
	if (r) {
		log_error("cannot map device memory at guest %#llx (%llu KiB): %s",
		          (unsigned long long)gpa, (unsigned long long)(size >> 10), strerror(-r));
		return r;
	}
	return handle;
}

void vm_unmap_device(struct vm *vm, int handle)
{
	if (handle < 0 || handle >= VM_DEVICE_SLOTS)
		return;
	pthread_mutex_lock(&vm->dev_lock);
	if (vm->device_slot_used[handle] && set_slot(vm, handle, 0, 0, NULL) == 0)
		vm->device_slot_used[handle] = false;
	pthread_mutex_unlock(&vm->dev_lock);
}

/*
 * KVM_SET_GSI_ROUTING replaces the whole table: KVM's defaults (PIC and IOAPIC for the
 * legacy GSIs, which the serial port and virtio devices use) and then every MSI route.
 */
static int commit_routes(struct vm *vm)
{
	unsigned max = PIC_PINS + IOAPIC_PINS + VM_MSI_ROUTES, n = 0;
	struct kvm_irq_routing *t = calloc(1, sizeof(*t) + max * sizeof(t->entries[0]));
	int r;

	if (!t)
		return -ENOMEM;
	for (unsigned gsi = 0; gsi < IOAPIC_PINS; gsi++) {
		if (gsi < PIC_PINS)
			t->entries[n++] = (struct kvm_irq_routing_entry){
				.gsi = gsi,
				.type = KVM_IRQ_ROUTING_IRQCHIP,
				.u.irqchip = { gsi < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE,
				               gsi % 8 },
			};
		t->entries[n++] = (struct kvm_irq_routing_entry){
			.gsi = gsi,
			.type = KVM_IRQ_ROUTING_IRQCHIP,
			.u.irqchip = { KVM_IRQCHIP_IOAPIC, gsi },
		};
	}
	for (unsigned i = 0; i < VM_MSI_ROUTES; i++)
		if (vm->msi[i].used)
			t->entries[n++] = (struct kvm_irq_routing_entry){
				.gsi = VM_MSI_GSI_FIRST + i,
				.type = KVM_IRQ_ROUTING_MSI,
				.u.msi = { .address_lo = (uint32_t)vm->msi[i].addr,
				           .address_hi = (uint32_t)(vm->msi[i].addr >> 32),
				           .data = vm->msi[i].data },
			};
	t->nr = n;
	r = ioctl(vm->vm_fd, KVM_SET_GSI_ROUTING, t) < 0 ? -errno : 0;
	free(t);
	return r;
}

static int irqfd(struct vm *vm, int eventfd, unsigned gsi, bool assign)
{
	struct kvm_irqfd f = { .fd = (uint32_t)eventfd,
		               .gsi = gsi,
		               .flags = assign ? 0 : KVM_IRQFD_FLAG_DEASSIGN };

	return ioctl(vm->vm_fd, KVM_IRQFD, &f) < 0 ? -errno : 0;
}

int vm_msi_route(struct vm *vm, int route, uint64_t addr, uint32_t data, int eventfd)
{
	bool fresh = route < 0;
	int r = 0;

	pthread_mutex_lock(&vm->dev_lock);
	for (int i = 0; i < VM_MSI_ROUTES && route < 0; i++)
		if (!vm->msi[i].used)
			route = i;
	if (route < 0 || route >= VM_MSI_ROUTES) {
		r = -ENOSPC;
		goto out;
	}
	vm->msi[route] = (struct vm_msi_route){ true, addr, data };
	r = commit_routes(vm);
	if (!r && fresh)
		r = irqfd(vm, eventfd, VM_MSI_GSI_FIRST + (unsigned)route, true);
	if (r && fresh) {
		vm->msi[route].used = false;
		commit_routes(vm);
	}
out:
	pthread_mutex_unlock(&vm->dev_lock);
	if (r) {
		log_error("cannot route an MSI (address %#llx, data %#x) to the guest: %s",
		          (unsigned long long)addr, data, strerror(-r));
		return r;
	}
	return route;
}

void vm_msi_unroute(struct vm *vm, int route, int eventfd)
{
	if (route < 0 || route >= VM_MSI_ROUTES)
		return;
	pthread_mutex_lock(&vm->dev_lock);
	if (vm->msi[route].used) {
		irqfd(vm, eventfd, VM_MSI_GSI_FIRST + (unsigned)route, false);
		vm->msi[route].used = false;
		commit_routes(vm);
	}
	pthread_mutex_unlock(&vm->dev_lock);
}
