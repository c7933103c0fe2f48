/* The guest's PCI bus and the assigned devices on it. */
#include "vmm/pci.h"
#include "vmm/base/log.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"
#include "vmm/x86/cpuid.h"
#include "vmm/x86/layout.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(VFIO_PCI_MAX_VECTORS *IOMMU_MAX_DEVICES <= VM_MSI_ROUTES,
               "every vector every device offers can be routed at once");
_Static_assert(PCI_BARS *VFIO_PCI_BAR_PIECES *IOMMU_MAX_DEVICES <= VM_DEVICE_SLOTS,
               "every BAR piece of every device can be a memory slot at once");

static int map(void *ctx, uint64_t gpa, uint64_t size, void *hva)
{
	return vm_map_device(ctx, gpa, size, hva);
}

static void unmap(void *ctx, int handle)
{
	vm_unmap_device(ctx, handle);
}

static int msi_route(void *ctx, int route, uint64_t addr, uint32_t data, int eventfd)
{
	return vm_msi_route(ctx, route, addr, data, eventfd);
}

static void msi_unroute(void *ctx, int route, int eventfd)
{
	vm_msi_unroute(ctx, route, eventfd);
}

/* pci=off on the command line hides the bus: say so, since the guest will not. */
static void check_cmdline(const char *cmdline)
{
	for (const char *p = strstr(cmdline, "pci=off"); p; p = strstr(p + 1, "pci=off"))
		if (p == cmdline || p[-1] == ' ') {
			log_warn("boot_args has pci=off: the guest will not see the assigned "
			         "devices");
			return;
		}
}

/* The 64-bit BAR window: past RAM and 4 GiB, up to what the guest can address. */
static int window64(struct pci_bus *bus, const struct vm *vm)
{
	const struct guest_memory *mem = vm->mem;
	struct kvm_cpuid2 *cpuid = vcpu_supported_cpuid(vm->kvm_fd);
	uint64_t top = GiB(4), end;

	if (!cpuid) {
		int r = -errno;
		log_error("KVM_GET_SUPPORTED_CPUID: %s", strerror(-r));
		return r;
	}
	end = 1ull << x86_cpuid_phys_bits(cpuid);
	free(cpuid);
	for (unsigned i = 0; i < mem->nregions; i++)
		if (mem->regions[i].gpa + mem->regions[i].size > top)
			top = mem->regions[i].gpa + mem->regions[i].size;
	top = (top + LAYOUT_PCI_WINDOW64_ALIGN - 1) & ~(LAYOUT_PCI_WINDOW64_ALIGN - 1);
	if (top < end)
		pci_bus_set_window64(bus, top, end);
	return 0;
}

static int add_ports(struct vmm_pci *p, struct vm *vm)
{
	int r = bus_add(&vm->pio, LAYOUT_PIO_PCI_ADDRESS, 4, &pci_address_ops, &p->bus,
	                "PCI config address");

	if (!r)
		r = bus_add(&vm->pio, LAYOUT_PIO_PCI_DATA, 4, &pci_data_ops, &p->bus,
		            "PCI config data");
	if (!r)
		r = bus_add(&vm->mmio, p->bus.win32.start, p->bus.win32.end - p->bus.win32.start,
		            &pci_window_ops, &p->bus.win32, "PCI BAR window");
	if (!r && p->bus.win64.end)
		r = bus_add(&vm->mmio, p->bus.win64.start, p->bus.win64.end - p->bus.win64.start,
		            &pci_window_ops, &p->bus.win64, "PCI 64-bit BAR window");
	if (r)
		log_error("cannot place the PCI bus: %s", strerror(-r));
	return r;
}

int vmm_pci_create(struct vmm_pci *p, struct iommu *io, struct vm *vm, const char *cmdline)
{
	int r;

	pci_bus_init(&p->bus, LAYOUT_PCI_WINDOW, LAYOUT_PCI_WINDOW_END);
	p->up = true;
	p->n = 0;
	p->vm_ops = (struct vfio_pci_vm){ vm, map, unmap, msi_route, msi_unroute };
	check_cmdline(cmdline);
	r = window64(&p->bus, vm);
	if (!r)
		r = add_ports(p, vm);
	for (unsigned i = 0; i < io->ndevs && !r; i++) {
		r = vfio_pci_init(&p->devs[i], &io->devs[i].vfio, &p->bus,
		                  io->devs[i].cfg->guest_slot, &p->vm_ops);
		if (!r)
			p->n = i + 1;
	}
	return r;
}

void vmm_pci_destroy(struct vmm_pci *p)
{
	if (!p->up)
		return;
	for (unsigned i = 0; i < p->n; i++)
		vfio_pci_destroy(&p->devs[i]);
	pci_bus_destroy(&p->bus);
	p->up = false;
}
