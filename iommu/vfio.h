/* A PCI device assigned through its VFIO cdev (/dev/vfio/devices/vfioN) and iommufd. */
#ifndef FLINT_VFIO_H
#define FLINT_VFIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct vfio_region {
	uint32_t flags;
	uint64_t size;
	uint64_t offset; /* of the region inside the device fd */
};

#define VFIO_MAX_REGIONS 9 /* BAR0-5, ROM, config, VGA */

struct vfio_dev {
	char node[64]; /* /dev/vfio/devices/vfioN */
	int fd;
	uint32_t dev_id; /* iommufd device id after bind */
	uint32_t num_regions, num_irqs;
	struct vfio_region regions[VFIO_MAX_REGIONS];
	uint32_t irq_count[5]; /* INTx, MSI, MSI-X, ERR, REQ */
};

/*
 * Resolves @spec (a cdev path, or a PCI address like 0000:00:03.0 through sysfs) to the
 * cdev node. Returns -errno with a message in @err.
 */
#define VFIO_BDF_LEN 13 /* "0000:00:03.0" and its NUL */
/*
 * A PCI address written exactly as "0000:00:03.0" (device <= 0x1f, function <= 7), into
 * @out in lower case: one device, one spelling. False for anything else.
 */
bool vfio_bdf_parse(const char *s, char out[VFIO_BDF_LEN]);
int vfio_resolve(const char *spec, char *node, size_t nodelen, char *err, size_t errlen);
int vfio_open(struct vfio_dev *d, const char *node);
void vfio_close(struct vfio_dev *d);
/* Tells KVM about the device (before bind, so KVM can honour its no-snoop/coherency). */
int vfio_kvm_add(int vm_fd, int *kvm_vfio_fd, struct vfio_dev *d);
int vfio_bind(struct vfio_dev *d, int iommufd);
/* Attaches to an IOAS or hwpt; returns -errno without logging (callers know the context). */
int vfio_attach(struct vfio_dev *d, uint32_t pt_id);
/* Device info, regions and IRQs. */
int vfio_query(struct vfio_dev *d);
/* PCI config space through the config region. */
int vfio_config_read(struct vfio_dev *d, uint32_t off, void *buf, size_t len);
int vfio_config_write(struct vfio_dev *d, uint32_t off, const void *buf, size_t len);
/* Offset of PCIe extended capability @id, or 0. */
uint32_t vfio_find_ext_cap(struct vfio_dev *d, uint16_t id);

#endif
