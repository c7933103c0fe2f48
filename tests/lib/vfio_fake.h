/*
 * A fake VFIO device's set-up, shared by tests/unit/test_vfio_pci.c and
 * tests/fuzz/fuzz_pci.c: recorded config spaces (QEMU's edu, an MSI-X NIC) and the
 * regions and interrupts vfio-pci reports for them. Each test keeps its own backend (the
 * struct vfio_pci_io callbacks) and its own bytes behind the regions.
 */
#ifndef FLINT_TEST_VFIO_FAKE_H
#define FLINT_TEST_VFIO_FAKE_H

#include "devices/vfio/pci.h"

#include <stdbool.h>
#include <stdint.h>

/* Little endian, as config space. */
void vfio_fake_put32(uint8_t *b, uint32_t v);
/* BAR @i as VFIO_DEVICE_GET_REGION_INFO reports it: @size bytes, read/write, maybe mmap. */
void vfio_fake_region(struct vfio_dev *dev, unsigned i, uint64_t size, bool mmappable);
/* QEMU's edu: 1234:11e8, BAR0 1 MiB mmappable, MSI (64-bit) at 0x40 with @msi_ctl. */
void vfio_fake_edu(struct vfio_dev *dev, uint8_t cfg[PCI_CONFIG_SIZE], uint16_t msi_ctl);
/*
 * An MSI-X device: PM at 0x40, MSI-X at 0x50 (4 entries, table at BAR0 + 0x2000, PBA at
 * BAR0 + 0x3000), PCIe at 0x60, vendor-specific at 0x98; BAR0 16 KiB 64-bit mmappable,
 * BAR2 4 KiB not mmappable.
 */
void vfio_fake_nic(struct vfio_dev *dev, uint8_t cfg[PCI_CONFIG_SIZE]);

#endif
