#include "iommu/vfio.h"
#include "iommu/uapi_compat.h"
#include "vmm/base/file.h"
#include "vmm/base/log.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

bool vfio_bdf_parse(const char *s, char out[VFIO_BDF_LEN])
{
	static const char shape[] = "xxxx:xx:xx.x";

	/* Exactly this shape: sscanf's %x would also take signs, spaces and "0x". */
	if (strlen(s) != sizeof(shape) - 1)
		return false;
	for (size_t i = 0; shape[i]; i++)
		if (shape[i] == 'x' ? !isxdigit((unsigned char)s[i]) : s[i] != shape[i])
			return false;
	if (strtoul(s + 8, NULL, 16) > 0x1f || s[11] > '7')
		return false;
	for (size_t i = 0; i < VFIO_BDF_LEN; i++)
		out[i] = (char)tolower((unsigned char)s[i]);
	return true;
}

int vfio_resolve(const char *spec, char *node, size_t nodelen, char *err, size_t errlen)
{
	char bdf[VFIO_BDF_LEN], dir[128];
	struct dirent *e;
	DIR *d;

	if (spec[0] == '/') {
		snprintf(node, nodelen, "%s", spec);
		return 0;
	}
	if (!vfio_bdf_parse(spec, bdf)) {
		snprintf(err, errlen,
		         "\"%s\" is neither a /dev/vfio/devices path nor a PCI address", spec);
		return -EINVAL;
	}
	snprintf(dir, sizeof(dir), "/sys/bus/pci/devices/%s/vfio-dev", bdf);
	d = opendir(dir);
	if (!d) {
		int r = -errno;
		snprintf(err, errlen,
		         "%s: %s (is the device bound to vfio-pci, and the kernel built "
		         "with CONFIG_VFIO_DEVICE_CDEV?)",
		         dir, strerror(-r));
		return r;
	}
	node[0] = 0;
	while ((e = readdir(d)))
		if (strncmp(e->d_name, "vfio", 4) == 0 && isdigit((unsigned char)e->d_name[4]))
			snprintf(node, nodelen, "/dev/vfio/devices/%s", e->d_name);
	closedir(d);
	if (!node[0]) {
		snprintf(err, errlen, "%s has no vfioN entry", dir);
		return -ENOENT;
	}
	return 0;
}

int vfio_open(struct vfio_dev *d, const char *node)
{
	char why[160];

	memset(d, 0, sizeof(*d));
	snprintf(d->node, sizeof(d->node), "%s", node);
	d->fd = file_open(node, O_RDWR, FILE_CHR, 0, why, sizeof(why));
	if (d->fd < 0) {
		int e = -d->fd;
		log_error("cannot open %s: %s", MSG_ESC(node), why);
		d->fd = -1;
		return -e;
	}
	return 0;
}

void vfio_close(struct vfio_dev *d)
{
	if (d->fd >= 0)
		close(d->fd); /* closing the cdev unbinds it from iommufd */
	d->fd = -1;
}

static int dev_ioctl(struct vfio_dev *d, unsigned long req, void *arg, const char *name)
{
	if (ioctl(d->fd, req, arg) >= 0)
		return 0;
	int e = errno;
	log_error("%s on %s: %s", name, d->node, strerror(e));
	return -e;
}

int vfio_kvm_add(int vm_fd, int *kvm_vfio_fd, struct vfio_dev *d)
{
	int32_t fd = d->fd;
	struct kvm_device_attr attr = { .group = KVM_DEV_VFIO_FILE,
		                        .attr = KVM_DEV_VFIO_FILE_ADD,
		                        .addr = (uintptr_t)&fd };

	if (*kvm_vfio_fd < 0) {
		struct kvm_create_device cd = { .type = KVM_DEV_TYPE_VFIO };
		if (ioctl(vm_fd, KVM_CREATE_DEVICE, &cd) < 0) {
			int e = errno;
			log_error("KVM_CREATE_DEVICE (VFIO): %s", strerror(e));
			return -e;
		}
		*kvm_vfio_fd = (int)cd.fd;
	}
	if (ioctl(*kvm_vfio_fd, KVM_SET_DEVICE_ATTR, &attr) < 0) {
		int e = errno;
		log_error("KVM_SET_DEVICE_ATTR (KVM_DEV_VFIO_FILE_ADD %s): %s", d->node,
		          strerror(e));
		return -e;
	}
	return 0;
}

int vfio_bind(struct vfio_dev *d, int iommufd)
{
	struct vfio_device_bind_iommufd b = { .argsz = sizeof(b), .iommufd = iommufd };
	int r = dev_ioctl(d, VFIO_DEVICE_BIND_IOMMUFD, &b, "VFIO_DEVICE_BIND_IOMMUFD");

	if (r == -EPERM)
		log_error("%s: the platform cannot isolate the device's MSIs (interrupt remapping "
		          "off?)",
		          d->node);
	d->dev_id = b.out_devid;
	return r;
}

int vfio_attach(struct vfio_dev *d, uint32_t pt_id)
{
	struct vfio_device_attach_iommufd_pt a = { .argsz = sizeof(a), .pt_id = pt_id };

	/* Not logged here: a refused fault-capable attach is a fallback, not an error. */
	return ioctl(d->fd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &a) < 0 ? -errno : 0;
}

int vfio_query(struct vfio_dev *d)
{
	struct vfio_device_info info = { .argsz = sizeof(info) };
	int r = dev_ioctl(d, VFIO_DEVICE_GET_INFO, &info, "VFIO_DEVICE_GET_INFO");

	if (r)
		return r;
	if (!(info.flags & VFIO_DEVICE_FLAGS_PCI)) {
		log_error("%s is not a PCI device", d->node);
		return -ENODEV;
	}
	d->num_regions = info.num_regions;
	d->num_irqs = info.num_irqs;
	for (uint32_t i = 0; i < info.num_regions && i < VFIO_MAX_REGIONS; i++) {
		struct vfio_region_info ri = { .argsz = sizeof(ri), .index = i };
		if (ioctl(d->fd, VFIO_DEVICE_GET_REGION_INFO, &ri) < 0)
			continue; /* e.g. VGA on a non-VGA device */
		d->regions[i] = (struct vfio_region){ ri.flags, ri.size, ri.offset };
		if (ri.size)
			log_debug("%s: region %u: %llu bytes at %#llx, flags %#x", d->node, i,
			          (unsigned long long)ri.size, (unsigned long long)ri.offset,
			          ri.flags);
	}
	for (uint32_t i = 0; i < info.num_irqs && i < 5; i++) {
		struct vfio_irq_info ii = { .argsz = sizeof(ii), .index = i };
		if (ioctl(d->fd, VFIO_DEVICE_GET_IRQ_INFO, &ii) == 0)
			d->irq_count[i] = ii.count;
	}
	if (!d->regions[VFIO_PCI_CONFIG_REGION_INDEX].size) {
		log_error("%s has no PCI config region", d->node);
		return -ENODEV;
	}
	return 0;
}

static int config_io(struct vfio_dev *d, uint32_t off, void *buf, size_t len, bool write)
{
	const struct vfio_region *cfg = &d->regions[VFIO_PCI_CONFIG_REGION_INDEX];
	ssize_t n;

	if (off > cfg->size || len > cfg->size - off)
		return -EINVAL;
	n = write ? pwrite(d->fd, buf, len, (off_t)(cfg->offset + off))
	          : pread(d->fd, buf, len, (off_t)(cfg->offset + off));
	if (n == (ssize_t)len)
		return 0;
	return n < 0 ? -errno : -EIO;
}

int vfio_config_read(struct vfio_dev *d, uint32_t off, void *buf, size_t len)
{
	return config_io(d, off, buf, len, false);
}

int vfio_config_write(struct vfio_dev *d, uint32_t off, const void *buf, size_t len)
{
	return config_io(d, off, (void *)buf, len, true);
}

uint32_t vfio_find_ext_cap(struct vfio_dev *d, uint16_t id)
{
	uint32_t off = 0x100, hdr;

	/* Bounded walk: a broken list must not loop forever. */
	for (int n = 0; n < 64 && off >= 0x100 && off < 0x1000; n++) {
		if (vfio_config_read(d, off, &hdr, 4) || hdr == 0 || hdr == 0xffffffff)
			return 0;
		if ((hdr & 0xffff) == id)
			return off;
		off = (hdr >> 20) & 0xffc;
	}
	return 0;
}
