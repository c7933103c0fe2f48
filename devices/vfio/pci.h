/* A VFIO device (cdev + iommufd) as the guest sees it: a function on flint's PCI bus. */
#ifndef FLINT_VFIO_PCI_H
#define FLINT_VFIO_PCI_H

#include "devices/pci/pci.h"
#include "iommu/vfio.h"
#include "vmm/base/log.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What the VM does for an assigned device; handed in, so the device knows no VM. */
/* MSI-X vectors a device offers the guest at most; the VM routes this many for every device. */
#define VFIO_PCI_MAX_VECTORS 64

struct vfio_pci_vm {
	void *ctx;
	/* Maps @size bytes of host memory @hva at guest @gpa as guest memory (a KVM slot).
	 * Returns a handle >= 0 or -errno. */
	int (*map)(void *ctx, uint64_t gpa, uint64_t size, void *hva);
	void (*unmap)(void *ctx, int handle);
	/* MSI message (@addr, @data) delivered to the guest whenever @eventfd is signalled.
	 * @route < 0: a new route, else update that one. Returns the route >= 0 or -errno. */
	int (*msi_route)(void *ctx, int route, uint64_t addr, uint32_t data, int eventfd);
	void (*msi_unroute)(void *ctx, int route, int eventfd);
};

/*
 * The device I/O vfio_pci does, as a table: vfio_pci_io_default goes to the real device
 * fd; the unit tests put a recorded config space behind it instead.
 */
struct vfio_pci_io {
	/* Config space through the config region (vfio_config_read/write). */
	int (*config_read)(struct vfio_dev *d, uint32_t off, void *buf, size_t len);
	int (*config_write)(struct vfio_dev *d, uint32_t off, const void *buf, size_t len);
	/* @len bytes at @off inside region @index (a BAR); the caller keeps them inside it. */
	int (*region_read)(struct vfio_dev *d, unsigned index, uint64_t off, void *buf, size_t len);
	int (*region_write)(struct vfio_dev *d, unsigned index, uint64_t off, const void *buf,
	                    size_t len);
	/* VFIO_DEVICE_SET_IRQS, ACTION_TRIGGER on IRQ @index: eventfds @fds for vectors
	 * [@start, @start + @count), or, with @fds NULL, DATA_NONE (count 0: all off). */
	int (*set_irqs)(struct vfio_dev *d, unsigned index, unsigned start, unsigned count,
	                const int *fds);
	int (*reset)(struct vfio_dev *d); /* VFIO_DEVICE_RESET */
	/* Region @index (a BAR) mapped whole, memory munmap() releases; NULL on failure. */
	void *(*mmap)(struct vfio_dev *d, unsigned index);
};
extern const struct vfio_pci_io vfio_pci_io_default;

#define VFIO_PCI_BAR_PIECES 3 /* a BAR around the MSI-X table and PBA pages */

/* A part of an mmapped BAR mapped into the guest (a KVM slot) while it decodes. */
struct vfio_pci_piece {
	uint64_t off, len;
	int slot; /* vm->map handle while placed, else -1 */
};

/* One guest BAR: where the guest put it, and how it reaches the device. */
struct vfio_pci_bar {
	uint64_t size;  /* 0: not implemented, or the upper half of a 64-bit BAR */
	uint64_t addr;  /* what the guest wrote (masked to the size) */
	uint32_t flags; /* the register's type bits: 64-bit, prefetchable */
	bool is64;
	void *hva; /* the region mmapped, or NULL: every access trapped */
	/* The mmapped parts mapped into the guest; the rest (MSI-X pages) stays trapped. */
	unsigned npieces;
	struct vfio_pci_piece piece[VFIO_PCI_BAR_PIECES];
	bool map_failed; /* vm->map failed at failed_addr: trapped there, not retried */
	uint64_t failed_addr;
};

/* One MSI or MSI-X vector: its eventfd (VFIO's trigger) and the route it has in the VM. */
struct vfio_pci_vector {
	int fd;    /* -1: none */
	int route; /* -1: not routed; the eventfd keeps the count until it is */
	uint64_t addr;
	uint32_t data; /* the routed message */
};

struct vfio_pci_irqs {
	unsigned index;            /* VFIO_PCI_MSI_IRQ_INDEX or VFIO_PCI_MSIX_IRQ_INDEX */
	unsigned cap;              /* capability offset in config space; 0: not offered */
	unsigned len;              /* of the capability */
	unsigned max;              /* vectors the function offers */
	unsigned active;           /* vectors VFIO has eventfds for */
	struct vfio_pci_vector *v; /* max of them */
};

struct vfio_pci_msix {
	unsigned table_bar, pba_bar;
	uint64_t table_off, pba_off;
	uint8_t *table; /* max * 16 bytes: address, upper address, data, vector control */
};

struct vfio_pci {
	struct pci_func func; /* first: the bus hands us this */
	struct vfio_dev *dev;
	const struct vfio_pci_io *io;
	struct pci_bus *bus;
	struct vfio_pci_vm vm;
	int slot;
	uint64_t page;
	struct pci_config cfg;         /* the shadow the guest reads; wmask: what it may write */
	uint8_t live[PCI_CONFIG_SIZE]; /* bytes read from the device (PCIe capability) */
	struct vfio_pci_bar bars[PCI_BARS];
	struct vfio_pci_irqs msi, msix;
	struct vfio_pci_msix x;
	bool decoding; /* the guest's memory-space bit: BARs placed */
	struct log_ratelimit rl;
};

/*
 * Reads the device's config space and regions, allocates its memory BARs on @bus, mmaps
 * the BARs VFIO allows to (mapped into the guest while the guest enables memory decoding;
 * the others trapped), resets the device and adds it to @bus in @slot (-1: the next free).
 * I/O BARs and bridges are refused (-ENOTSUP). Returns 0 or -errno, with one log line
 * naming the device. Before vCPUs run.
 */
int vfio_pci_init(struct vfio_pci *p, struct vfio_dev *dev, struct pci_bus *bus, int slot,
                  const struct vfio_pci_vm *vm);
/* The same with the device I/O of @io (tests). */
int vfio_pci_init_io(struct vfio_pci *p, struct vfio_dev *dev, struct pci_bus *bus, int slot,
                     const struct vfio_pci_vm *vm, const struct vfio_pci_io *io);
/*
 * Takes the function off the bus (under its lock: call without it), disables MSI/MSI-X,
 * unmaps the BARs, stops the device's decoding and DMA, resets it and closes the
 * eventfds. Before the device fd closes (iommu_teardown) and after the vCPUs stopped.
 */
void vfio_pci_destroy(struct vfio_pci *p);

#endif
