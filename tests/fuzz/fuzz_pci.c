/*
 * PCI config space and BARs as the guest reaches them: flint's bus (devices/pci/pci.c:
 * mechanism #1 at 0xCF8/0xCFC, the host bridge, the BAR windows) with one assigned VFIO
 * function on it (devices/vfio/pci.c) behind a fake VFIO backend and a fake VM, as
 * tests/unit/test_vfio_pci.c has them: QEMU's edu (MSI) or an MSI-X NIC, recorded config
 * spaces, which the input may patch (a device's capability list and BARs are the
 * device's word, checked once at start). Then the input is a sequence of guest accesses
 * dispatched as a vCPU exit is (vmm/base/bus.c over the ranges vmm/pci.c adds): port I/O
 * at 0xCF8-0xCFF (any width, any offset), and MMIO in the 32-bit and 64-bit BAR windows
 * (near the BARs, the MSI-X table and PBA, or anywhere).
 *
 * Checked: the device is never asked for bytes outside a region or its config space, nor
 * for more interrupt vectors than VFIO offers, and every eventfd it is handed is open;
 * the VM is asked for page-aligned memory slots only, and an MSI route only for a message
 * in the x86 MSI window, only with its own eventfd, unrouted only once; after
 * vfio_pci_destroy() no slot, route or descriptor is left.
 */
#include "devices/pci/pci.h"
#include "devices/vfio/pci.h"
#include "tests/fuzz/common.h"
#include "tests/lib/vfio_fake.h"
#include "vmm/base/bus.h"
#include "vmm/x86/layout.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/vfio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define WIN64       0x140000000ULL /* above 4 GiB of RAM, as vmm/pci.c puts it */
#define WIN64_END   (1ULL << 40)
#define RAM_LOW_END 0xC0000000ULL /* guest RAM below the hole: KVM refuses slots over it */
#define BACKING     (64 * 1024)   /* a region's bytes, repeated: reads and writes land here */
#define SLOTS       32
#define ROUTES      128

/* --- the fake device ---------------------------------------------------------------- */

struct fake_dev {
	struct vfio_dev dev; /* first: the backend gets this */
	uint8_t cfg[PCI_CONFIG_SIZE];
	uint8_t backing[BACKING];
	bool incremental_fails; /* a kernel without dynamic MSI-X */
	bool reset_fails;
};

static struct fake_dev *fake_of(struct vfio_dev *d)
{
	return (struct fake_dev *)d;
}

static int fake_config_read(struct vfio_dev *d, uint32_t off, void *buf, size_t len)
{
	if (off > PCI_CONFIG_SIZE || len > PCI_CONFIG_SIZE - off)
		return -EINVAL;
	memcpy(buf, fake_of(d)->cfg + off, len);
	return 0;
}

static int fake_config_write(struct vfio_dev *d, uint32_t off, const void *buf, size_t len)
{
	if (off > PCI_CONFIG_SIZE || len > PCI_CONFIG_SIZE - off)
		return -EINVAL;
	memcpy(fake_of(d)->cfg + off, buf, len);
	return 0;
}

static void check_region(struct vfio_dev *d, unsigned i, uint64_t off, size_t len)
{
	FUZZ_CHECK(i < PCI_BARS && d->regions[i].size, "access to region %u, which is none", i);
	FUZZ_CHECK(len && off <= d->regions[i].size && len <= d->regions[i].size - off,
	           "%zu bytes at %#llx of region %u, %llu bytes long", len, (unsigned long long)off,
	           i, (unsigned long long)d->regions[i].size);
}

static int fake_region_read(struct vfio_dev *d, unsigned i, uint64_t off, void *buf, size_t len)
{
	check_region(d, i, off, len);
	for (size_t k = 0; k < len; k++)
		((uint8_t *)buf)[k] = fake_of(d)->backing[(off + k) % BACKING];
	return 0;
}

static int fake_region_write(struct vfio_dev *d, unsigned i, uint64_t off, const void *buf,
                             size_t len)
{
	check_region(d, i, off, len);
	for (size_t k = 0; k < len; k++)
		fake_of(d)->backing[(off + k) % BACKING] = ((const uint8_t *)buf)[k];
	return 0;
}

static int fake_set_irqs(struct vfio_dev *d, unsigned index, unsigned start, unsigned count,
                         const int *fds)
{
	FUZZ_CHECK(index == VFIO_PCI_MSI_IRQ_INDEX || index == VFIO_PCI_MSIX_IRQ_INDEX,
	           "SET_IRQS on index %u", index);
	FUZZ_CHECK(start + count <= d->irq_count[index], "vectors [%u, %u) of the %u VFIO offers",
	           start, start + count, d->irq_count[index]);
	if (fds && start && fake_of(d)->incremental_fails)
		return -EINVAL;
	for (unsigned k = 0; fds && k < count; k++)
		FUZZ_CHECK(fcntl(fds[k], F_GETFD) >= 0, "vector %u: fd %d is not open", start + k,
		           fds[k]);
	return 0;
}

static int fake_reset(struct vfio_dev *d)
{
	return fake_of(d)->reset_fails ? -ENOTTY : 0;
}

static void *fake_mmap(struct vfio_dev *d, unsigned i)
{
	void *p = mmap(NULL, d->regions[i].size, PROT_READ | PROT_WRITE,
	               MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

static const struct vfio_pci_io fake_io = {
	.config_read = fake_config_read,
	.config_write = fake_config_write,
	.region_read = fake_region_read,
	.region_write = fake_region_write,
	.set_irqs = fake_set_irqs,
	.reset = fake_reset,
	.mmap = fake_mmap,
};

/* --- the fake VM ------------------------------------------------------------------------ */

struct fake_vm {
	struct {
		bool used;
		uint64_t gpa, size;
	} slot[SLOTS];
	struct {
		bool used;
		int fd;
	} route[ROUTES];
	bool map_fails;
};

static int vm_map(void *ctx, uint64_t gpa, uint64_t size, void *hva)
{
	struct fake_vm *vm = ctx;

	FUZZ_CHECK(size && !(gpa % 4096) && !(size % 4096) && !((uintptr_t)hva % 4096),
	           "a memory slot of %#llx bytes at %#llx (host %p) is not page-aligned",
	           (unsigned long long)size, (unsigned long long)gpa, hva);
	if (vm->map_fails)
		return -ENOMEM;
	/* KVM refuses a slot over guest RAM or over another slot, and one that wraps. */
	if (gpa + size < gpa || gpa < RAM_LOW_END ||
	    (gpa < (4ULL << 30) + RAM_LOW_END && gpa + size > (4ULL << 30)))
		return -EEXIST;
	for (int i = 0; i < SLOTS; i++)
		if (vm->slot[i].used && gpa < vm->slot[i].gpa + vm->slot[i].size &&
		    vm->slot[i].gpa < gpa + size)
			return -EEXIST;
	for (int i = 0; i < SLOTS; i++)
		if (!vm->slot[i].used) {
			vm->slot[i].used = true;
			vm->slot[i].gpa = gpa, vm->slot[i].size = size;
			return i;
		}
	return -ENOSPC;
}

static void vm_unmap(void *ctx, int h)
{
	struct fake_vm *vm = ctx;

	FUZZ_CHECK(h >= 0 && h < SLOTS && vm->slot[h].used, "unmap of slot %d, not mapped", h);
	vm->slot[h].used = false;
}

static int vm_route(void *ctx, int route, uint64_t addr, uint32_t data, int fd)
{
	struct fake_vm *vm = ctx;

	(void)data;
	FUZZ_CHECK((addr & 0xfff00000u) == 0xfee00000u && addr >> 32 == 0,
	           "MSI to %#llx routed: not the x86 MSI window", (unsigned long long)addr);
	FUZZ_CHECK(fcntl(fd, F_GETFD) >= 0, "route for fd %d, not open", fd);
	if (route >= 0) {
		FUZZ_CHECK(route < ROUTES && vm->route[route].used && vm->route[route].fd == fd,
		           "update of route %d, not this vector's", route);
		return route;
	}
	for (int i = 0; i < ROUTES; i++)
		if (!vm->route[i].used) {
			vm->route[i].used = true;
			vm->route[i].fd = fd;
			return i;
		}
	return -ENOSPC;
}

static void vm_unroute(void *ctx, int route, int fd)
{
	struct fake_vm *vm = ctx;

	FUZZ_CHECK(route >= 0 && route < ROUTES && vm->route[route].used &&
	                   vm->route[route].fd == fd,
	           "unroute of route %d (fd %d): not routed so", route, fd);
	vm->route[route].used = false;
}

/* --- the world ------------------------------------------------------------------------- */

struct world {
	struct pci_bus bus;
	struct bus pio, mmio;
	struct fake_dev f;
	struct fake_vm vm;
	struct vfio_pci p;
	bool up; /* vfio_pci_init_io() took the device */
};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	fuzz_setup();
	return 0;
}

/* The device as the input has it: a recorded one, maybe patched. */
static void make_device(struct world *w, struct fuzz_in *in, uint8_t kind)
{
	static const uint16_t msi_ctls[] = { 0x0080, 0x0000, 0x0180, 0x008a };

	if (kind & 1)
		vfio_fake_nic(&w->f.dev, w->f.cfg);
	else
		vfio_fake_edu(&w->f.dev, w->f.cfg, msi_ctls[(kind >> 3) & 3]);
	w->f.incremental_fails = kind & 0x20;
	w->f.reset_fails = kind & 0x40;
	if (!(kind & 4))
		return;
	/* Patches: config bytes, then maybe regions (sizes, mmappable) and VFIO's counts. */
	for (unsigned n = fin_u8(in) % 32; n; n--) {
		uint8_t off = fin_u8(in);
		w->f.cfg[off] = fin_u8(in);
	}
	if (fin_u8(in) & 1) {
		for (unsigned i = 0; i < PCI_BARS; i++) {
			uint8_t code = fin_u8(in);
			uint64_t size = code == 0xff  ? 3000
			                : code & 0x3f ? 1ULL << (code & 0x1f)
			                              : 0;
			if (size > (1ULL << 30))
				size = 1ULL << 30;
			vfio_fake_region(&w->f.dev, i, size, code & 0x80);
		}
		w->f.dev.irq_count[VFIO_PCI_MSI_IRQ_INDEX] = fin_u8(in) % 40;
		w->f.dev.irq_count[VFIO_PCI_MSIX_IRQ_INDEX] = fin_u16(in) % 2100;
	}
}

static uint32_t cf8(struct fuzz_in *in, uint8_t op)
{
	if (op & 0x80)
		return fin_u32(in); /* anything: other buses, functions, the enable bit clear */
	uint8_t s = fin_u8(in), reg = fin_u8(in);
	return 0x80000000u | (uint32_t)(s % 4) << 11 | reg;
}

/* A guest address in a window: near a BAR (its MSI-X table and PBA), or anywhere. */
static uint64_t window_addr(struct world *w, struct fuzz_in *in, uint8_t op)
{
	uint8_t sel = fin_u8(in);
	uint32_t off = fin_u16(in);

	if (op & 0x80) {
		uint64_t a = fin_u64(in);
		return sel & 1 ? LAYOUT_PCI_WINDOW + a % (LAYOUT_PCI_WINDOW_END - LAYOUT_PCI_WINDOW)
		               : WIN64 + a % (WIN64_END - WIN64);
	}
	if (!w->up)
		return LAYOUT_PCI_WINDOW + off;
	const struct vfio_pci_bar *b = &w->p.bars[sel % PCI_BARS];
	if ((sel & 8) && w->p.x.table)
		return w->p.bars[w->p.x.table_bar].addr + w->p.x.table_off + off % 64 - 8;
	if ((sel & 16) && w->p.x.table)
		return w->p.bars[w->p.x.pba_bar].addr + w->p.x.pba_off + off % 32 - 8;
	return b->addr + off - (sel & 32 ? 16 : 0);
}

static void program(struct world *w, struct fuzz_in *in)
{
	static const uint32_t lens[] = { 1, 2, 4, 8 };

	for (unsigned steps = 0; !fin_empty(in) && steps < 2048; steps++) {
		uint8_t op = fin_u8(in), buf[8] = { 0 };
		uint32_t len = lens[(op >> 4) & 3], v32;
		uint64_t at, v64;

		/* The rest of @op: the width, read or write, a raw address. */
		switch (op & 7) {
		case 0: /* the config address */
			v32 = cf8(in, op);
			bus_write(&w->pio, PCI_CF8_PORT, (const uint8_t *)&v32, 4);
			break;
		case 1: /* config data: a read */
			bus_read(&w->pio, PCI_CFC_PORT + (op >> 6), buf, len > 4 ? 4 : len);
			break;
		case 2: /* config data: a write */
			v32 = fin_u32(in);
			bus_write(&w->pio, PCI_CFC_PORT + (op >> 6), (const uint8_t *)&v32,
			          len > 4 ? 4 : len);
			break;
		case 3: /* the two in one: address, then data at one of the four ports */
			v32 = cf8(in, op & 0x7f);
			bus_write(&w->pio, PCI_CF8_PORT, (const uint8_t *)&v32, 4);
			at = PCI_CFC_PORT + fin_u8(in) % 4;
			if (op & 0x40) {
				v32 = fin_u32(in);
				bus_write(&w->pio, at, (const uint8_t *)&v32, len > 4 ? 4 : len);
			} else {
				bus_read(&w->pio, at, buf, len > 4 ? 4 : len);
			}
			break;
		case 4: /* any port of the two ranges, any width */
			at = PCI_CF8_PORT + fin_u8(in) % 8;
			v32 = fin_u32(in);
			if (op & 0x40)
				bus_write(&w->pio, at, (const uint8_t *)&v32, len > 4 ? 4 : len);
			else
				bus_read(&w->pio, at, buf, len > 4 ? 4 : len);
			break;
		case 5: /* a BAR window: a read */
			at = window_addr(w, in, op);
			bus_read(&w->mmio, at, buf, len);
			break;
		default: /* 6, 7: a BAR window: a write */
			at = window_addr(w, in, op);
			v64 = fin_u64(in);
			bus_write(&w->mmio, at, (const uint8_t *)&v64, len);
			break;
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };
	struct world *w = calloc(1, sizeof(*w));
	uint8_t kind = fin_u8(&in);
	int fd0 = fuzz_lowest_fd();

	FUZZ_CHECK(w != NULL, "out of memory");
	snprintf(w->f.dev.node, sizeof(w->f.dev.node), "/dev/vfio/devices/vfio7");
	w->f.dev.fd = -1;
	make_device(w, &in, kind);
	pci_bus_init(&w->bus, LAYOUT_PCI_WINDOW, LAYOUT_PCI_WINDOW_END);
	if (kind & 2)
		pci_bus_set_window64(&w->bus, WIN64, WIN64_END);
	bus_init(&w->pio, "port I/O");
	bus_init(&w->mmio, "MMIO");
	FUZZ_CHECK(bus_add(&w->pio, PCI_CF8_PORT, 4, &pci_address_ops, &w->bus, "cf8") == 0 &&
	                   bus_add(&w->pio, PCI_CFC_PORT, 4, &pci_data_ops, &w->bus, "cfc") == 0 &&
	                   bus_add(&w->mmio, LAYOUT_PCI_WINDOW,
	                           LAYOUT_PCI_WINDOW_END - LAYOUT_PCI_WINDOW, &pci_window_ops,
	                           &w->bus.win32, "window") == 0,
	           "bus_add()");
	if (kind & 2)
		FUZZ_CHECK(bus_add(&w->mmio, WIN64, WIN64_END - WIN64, &pci_window_ops,
		                   &w->bus.win64, "window64") == 0,
		           "bus_add()");
	w->vm.map_fails = (kind & 0x80) && (kind & 0x40);
	struct vfio_pci_vm vm = { &w->vm, vm_map, vm_unmap, vm_route, vm_unroute };
	w->up = vfio_pci_init_io(&w->p, &w->f.dev, &w->bus, (kind & 0x80) ? 5 : -1, &vm,
	                         &fake_io) == 0;

	program(w, &in);

	if (w->up)
		vfio_pci_destroy(&w->p);
	for (int i = 0; i < SLOTS; i++)
		FUZZ_CHECK(!w->vm.slot[i].used, "slot %d still mapped after destroy", i);
	for (int i = 0; i < ROUTES; i++)
		FUZZ_CHECK(!w->vm.route[i].used, "route %d still routed after destroy", i);
	FUZZ_CHECK(fuzz_lowest_fd() == fd0, "a file descriptor leaked (%d is taken)", fd0);
	pci_bus_destroy(&w->bus);
	free(w);
	return 0;
}
