/* A fake VFIO device's set-up: see vfio_fake.h. */
#include "tests/lib/vfio_fake.h"

#include <linux/vfio.h>
#include <string.h>

void vfio_fake_put32(uint8_t *b, uint32_t v)
{
	memcpy(b, &v, 4); /* x86: little endian, as config space */
}

void vfio_fake_region(struct vfio_dev *dev, unsigned i, uint64_t size, bool mmappable)
{
	uint32_t flags = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE;

	if (mmappable)
		flags |= VFIO_REGION_INFO_FLAG_MMAP;
	dev->regions[i] = (struct vfio_region){ flags, size, (uint64_t)i << 40 };
}

void vfio_fake_edu(struct vfio_dev *dev, uint8_t cfg[PCI_CONFIG_SIZE], uint16_t msi_ctl)
{
	vfio_fake_put32(cfg + 0x00, 0x11e81234); /* vendor, device */
	vfio_fake_put32(cfg + 0x04, 0x00100006); /* command (as the host left it), status */
	vfio_fake_put32(cfg + 0x08, 0x00ff0010); /* class 00ff00, revision 0x10 */
	vfio_fake_put32(cfg + 0x10, 0xfea00000); /* BAR0 at the host's address */
	vfio_fake_put32(cfg + 0x2c, 0x11001af4); /* subsystem 1af4:1100 */
	cfg[0x34] = 0x40;                        /* capabilities */
	cfg[0x3c] = 0x0b;                        /* INTx line and pin */
	cfg[0x3d] = 0x01;
	cfg[0x40] = 0x05; /* MSI, the end of the list */
	cfg[0x42] = (uint8_t)msi_ctl;
	cfg[0x43] = (uint8_t)(msi_ctl >> 8);
	vfio_fake_put32(cfg + 0x44, 0xfee01004); /* what the host left: must not show */
	dev->num_regions = 9;
	dev->num_irqs = 5;
	dev->irq_count[VFIO_PCI_INTX_IRQ_INDEX] = 1;
	dev->irq_count[VFIO_PCI_MSI_IRQ_INDEX] = 1u << ((msi_ctl >> 1) & 7);
	dev->regions[VFIO_PCI_CONFIG_REGION_INDEX].size = PCI_CONFIG_SIZE;
	vfio_fake_region(dev, 0, 1u << 20, true);
}

void vfio_fake_nic(struct vfio_dev *dev, uint8_t cfg[PCI_CONFIG_SIZE])
{
	vfio_fake_put32(cfg + 0x00, 0x00101b36);
	vfio_fake_put32(cfg + 0x04, 0x00100000);
	vfio_fake_put32(cfg + 0x08, 0x01080202);
	vfio_fake_put32(cfg + 0x10, 0x4); /* 64-bit */
	vfio_fake_put32(cfg + 0x18, 0x8); /* prefetchable */
	cfg[0x34] = 0x40;
	cfg[0x3d] = 0x01;
	cfg[0x40] = 0x01, cfg[0x41] = 0x50; /* PM */
	cfg[0x50] = 0x11, cfg[0x51] = 0x60, cfg[0x52] = 0x03;
	vfio_fake_put32(cfg + 0x54, 0x2000);
	vfio_fake_put32(cfg + 0x58, 0x3000);
	cfg[0x60] = 0x10, cfg[0x61] = 0x98, cfg[0x62] = 0x02;
	vfio_fake_put32(cfg + 0x64, 0x8fc0); /* device capabilities */
	vfio_fake_put32(cfg + 0x70, 0x11);   /* link capabilities */
	cfg[0x98] = 0x09, cfg[0x99] = 0x00, cfg[0x9a] = 0x08;
	dev->num_regions = 9;
	dev->num_irqs = 5;
	dev->irq_count[VFIO_PCI_MSIX_IRQ_INDEX] = 4;
	dev->regions[VFIO_PCI_CONFIG_REGION_INDEX].size = PCI_CONFIG_SIZE;
	vfio_fake_region(dev, 0, 16384, true);
	vfio_fake_region(dev, 2, 4096, false);
}
