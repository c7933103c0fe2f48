/*
 * The guest's PCI bus, made only when devices are assigned (flint.vfio-devices): the host
 * bridge, mechanism #1 at 0xCF8/0xCFC, the BAR window, and one VFIO-backed function per
 * assigned device, whose BARs and MSIs the VM serves (vmm/vm_devices.c).
 */
#ifndef FLINT_VMM_PCI_H
#define FLINT_VMM_PCI_H

#include "devices/pci/pci.h"
#include "devices/vfio/pci.h"
#include "iommu/iommu.h"

struct vm;

struct vmm_pci {
	struct pci_bus bus;
	struct vfio_pci devs[IOMMU_MAX_DEVICES];
	unsigned n;
	bool up;
	struct vfio_pci_vm vm_ops;
};

/* After iommu_setup(), before the vCPUs run. Returns 0 or -errno (logged). */
int vmm_pci_create(struct vmm_pci *p, struct iommu *io, struct vm *vm, const char *cmdline);
/* After the vCPUs stopped, before iommu_teardown(). Safe when never created. */
void vmm_pci_destroy(struct vmm_pci *p);

#endif
