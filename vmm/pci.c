/* The guest's PCI bus and the assigned devices on it. */
#include "vmm/pci.h"
#include "vmm/base/log.h"
#include "vmm/vm.h"
#include "vmm/x86/layout.h"

#include <errno.h>
#include <string.h>

_Static_assert(VFIO_PCI_MAX_VECTORS <= VM_MSI_ROUTES, "every vector a device offers can be routed");

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

static int add_ports(struct vmm_pci *p, struct vm *vm)
{
	int r = bus_add(&vm->pio, LAYOUT_PIO_PCI_ADDRESS, 4, &pci_address_ops, &p->bus,
	                "PCI config address");

	if (!r)
		r = bus_add(&vm->pio, LAYOUT_PIO_PCI_DATA, 4, &pci_data_ops, &p->bus,
		            "PCI config data");
	if (!r)
		r = bus_add(&vm->mmio, LAYOUT_PCI_WINDOW, LAYOUT_PCI_WINDOW_END - LAYOUT_PCI_WINDOW,
		            &pci_window_ops, &p->bus, "PCI BAR window");
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
