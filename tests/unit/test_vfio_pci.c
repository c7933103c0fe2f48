/*
 * An assigned device's virtual config space, BARs, MSI and MSI-X against recorded config
 * spaces (QEMU's edu, an MSI-X device) behind a fake VFIO backend and a fake VM.
 */
#include "devices/vfio/pci.h"
#include "tests/lib/util.h"
#include "tests/lib/vfio_fake.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/vfio.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#define WINDOW     0xe0000000ull
#define WINDOW_END 0xfec00000ull
#define MIB        (1ull << 20)

/* --- The fake device ---------------------------------------------------------------- */

struct irq_call {
	unsigned index, start, count;
	bool none;
	int fds[8];
};

struct fake_dev {
	struct vfio_dev dev; /* first: the backend gets this */
	uint8_t cfg[PCI_CONFIG_SIZE];
	uint8_t *region[PCI_BARS];
	void *mapped[PCI_BARS];
	unsigned config_writes, resets, region_writes;
	struct irq_call irqs[64];
	unsigned nirqs;
	bool incremental_fails; /* a kernel without dynamic MSI-X */
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
	struct fake_dev *f = fake_of(d);

	if (off > PCI_CONFIG_SIZE || len > PCI_CONFIG_SIZE - off)
		return -EINVAL;
	memcpy(f->cfg + off, buf, len);
	f->config_writes++;
	return 0;
}

static int fake_region_read(struct vfio_dev *d, unsigned i, uint64_t off, void *buf, size_t len)
{
	struct fake_dev *f = fake_of(d);

	/* The device must never be asked for bytes outside the region. */
	assert_true(i < PCI_BARS && f->region[i]);
	assert_true(off + len <= d->regions[i].size);
	memcpy(buf, f->region[i] + off, len);
	return 0;
}

static int fake_region_write(struct vfio_dev *d, unsigned i, uint64_t off, const void *buf,
                             size_t len)
{
	struct fake_dev *f = fake_of(d);

	assert_true(i < PCI_BARS && f->region[i]);
	assert_true(off + len <= d->regions[i].size);
	memcpy(f->region[i] + off, buf, len);
	f->region_writes++;
	return 0;
}

static int fake_set_irqs(struct vfio_dev *d, unsigned index, unsigned start, unsigned count,
                         const int *fds)
{
	struct fake_dev *f = fake_of(d);
	struct irq_call *c;

	if (fds && start && f->incremental_fails)
		return -EINVAL;
	c = &f->irqs[f->nirqs++ % 64]; /* a ring: hostile tests toggle thousands of times */
	*c = (struct irq_call){ index, start, count, !fds, { 0 } };
	for (unsigned k = 0; fds && k < count && k < 8; k++) {
		assert_true(fcntl(fds[k], F_GETFD) >= 0); /* a live eventfd */
		c->fds[k] = fds[k];
	}
	return 0;
}

static int fake_reset(struct vfio_dev *d)
{
	fake_of(d)->resets++;
	return 0;
}

static void *fake_mmap(struct vfio_dev *d, unsigned i)
{
	void *p = mmap(NULL, d->regions[i].size, PROT_READ | PROT_WRITE,
	               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	assert_true(p != MAP_FAILED);
	fake_of(d)->mapped[i] = p;
	return p;
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

/* BAR @i and its bytes (test_vfio_pci's own: read and written through f->region[i]). */
static void add_region(struct fake_dev *f, unsigned i, uint64_t size, bool mmappable)
{
	vfio_fake_region(&f->dev, i, size, mmappable);
	f->region[i] = calloc(1, size);
	assert_non_null(f->region[i]);
}

/* Bytes for the regions the recorded device has; its node. */
static void finish(struct fake_dev *f, const char *node)
{
	for (unsigned i = 0; i < PCI_BARS; i++) {
		if (f->dev.regions[i].size) {
			f->region[i] = calloc(1, f->dev.regions[i].size);
			assert_non_null(f->region[i]);
		}
	}
	snprintf(f->dev.node, sizeof(f->dev.node), "%s", node);
	f->dev.fd = -1;
}

/* QEMU's edu as vfio-pci shows it (tests/lib/vfio_fake.c). */
static void edu(struct fake_dev *f, uint16_t msi_ctl)
{
	vfio_fake_edu(&f->dev, f->cfg, msi_ctl);
	finish(f, "/dev/vfio/devices/vfio7");
}

/* An MSI-X device (tests/lib/vfio_fake.c): BAR0 16 KiB 64-bit mmappable, BAR2 4 KiB not. */
static void nic(struct fake_dev *f)
{
	vfio_fake_nic(&f->dev, f->cfg);
	finish(f, "/dev/vfio/devices/vfio8");
}

/* --- The fake VM ---------------------------------------------------------------------- */

struct fake_vm {
	struct {
		bool used;
		uint64_t gpa, size;
		void *hva;
	} slot[32];
	unsigned maps, unmaps;
	struct {
		bool used;
		uint64_t addr;
		uint32_t data;
		int fd;
	} route[64];
	unsigned routes, updates, unroutes;
	bool map_fails;
};

static int vm_map(void *ctx, uint64_t gpa, uint64_t size, void *hva)
{
	struct fake_vm *vm = ctx;

	if (vm->map_fails)
		return -EEXIST;
	for (int i = 0; i < 32; i++)
		if (!vm->slot[i].used) {
			vm->slot[i].used = true;
			vm->slot[i].gpa = gpa, vm->slot[i].size = size, vm->slot[i].hva = hva;
			vm->maps++;
			return i;
		}
	return -ENOSPC;
}

static void vm_unmap(void *ctx, int h)
{
	struct fake_vm *vm = ctx;

	assert_true(h >= 0 && h < 32 && vm->slot[h].used);
	vm->slot[h].used = false;
	vm->unmaps++;
}

static int vm_route(void *ctx, int route, uint64_t addr, uint32_t data, int fd)
{
	struct fake_vm *vm = ctx;

	if (route >= 0) {
		assert_true(route < 64 && vm->route[route].used);
		vm->route[route].addr = addr, vm->route[route].data = data;
		vm->updates++;
		return route;
	}
	assert_true(fcntl(fd, F_GETFD) >= 0);
	for (int i = 0; i < 64; i++)
		if (!vm->route[i].used) {
			vm->route[i].used = true;
			vm->route[i].addr = addr, vm->route[i].data = data, vm->route[i].fd = fd;
			vm->routes++;
			return i;
		}
	return -ENOSPC;
}

static void vm_unroute(void *ctx, int route, int fd)
{
	struct fake_vm *vm = ctx;

	assert_true(route >= 0 && route < 64 && vm->route[route].used);
	assert_int_equal(vm->route[route].fd, fd);
	vm->route[route].used = false;
	vm->unroutes++;
}

static unsigned live_slots(const struct fake_vm *vm)
{
	unsigned n = 0;

	for (int i = 0; i < 32; i++)
		n += vm->slot[i].used;
	return n;
}

static unsigned live_routes(const struct fake_vm *vm)
{
	unsigned n = 0;

	for (int i = 0; i < 64; i++)
		n += vm->route[i].used;
	return n;
}

/* The live route with MSI data @data, or -1. */
static int route_with(const struct fake_vm *vm, uint32_t data)
{
	for (int i = 0; i < 64; i++)
		if (vm->route[i].used && vm->route[i].data == data)
			return i;
	return -1;
}

/* --- The world: bus, fake device, fake VM, the function ------------------------------- */

struct world {
	struct pci_bus bus;
	struct fake_dev f;
	struct fake_vm vm;
	struct vfio_pci p;
};

/* The 64-bit window the worlds of world_new64() have: 5 GiB up to 1 TiB. */
#define WINDOW64     0x140000000ull
#define WINDOW64_END (1ull << 40)

static struct world *world_make(void (*dev)(struct fake_dev *), bool init, bool win64)
{
	struct world *w = calloc(1, sizeof(*w));

	assert_non_null(w);
	pci_bus_init(&w->bus, WINDOW, WINDOW_END);
	if (win64)
		pci_bus_set_window64(&w->bus, WINDOW64, WINDOW64_END);
	if (dev)
		dev(&w->f);
	if (init) {
		struct vfio_pci_vm vm = { &w->vm, vm_map, vm_unmap, vm_route, vm_unroute };
		assert_int_equal(vfio_pci_init_io(&w->p, &w->f.dev, &w->bus, -1, &vm, &fake_io), 0);
		assert_int_equal(w->p.slot, 1);
	}
	return w;
}

static struct world *world_new(void (*dev)(struct fake_dev *), bool init)
{
	return world_make(dev, init, false);
}

static struct world *world_new64(void (*dev)(struct fake_dev *), bool init)
{
	return world_make(dev, init, true);
}

static void world_free(struct world *w, bool destroy)
{
	if (destroy)
		vfio_pci_destroy(&w->p);
	for (unsigned i = 0; i < PCI_BARS; i++)
		free(w->f.region[i]);
	pci_bus_destroy(&w->bus);
	free(w);
}

static void edu_plain(struct fake_dev *f)
{
	edu(f, 0x0080);
}

static uint32_t rd(struct world *w, uint32_t reg, uint32_t len)
{
	uint32_t a = 0x80000000u | 1u << 11 | (reg & 0xfc), v = 0;

	pci_address_ops.write(&w->bus, 0, (const uint8_t *)&a, 4);
	pci_data_ops.read(&w->bus, reg & 3, (uint8_t *)&v, len);
	return v;
}

static void wr(struct world *w, uint32_t reg, uint32_t len, uint32_t v)
{
	uint32_t a = 0x80000000u | 1u << 11 | (reg & 0xfc);

	pci_address_ops.write(&w->bus, 0, (const uint8_t *)&a, 4);
	pci_data_ops.write(&w->bus, reg & 3, (const uint8_t *)&v, len);
}

/* The window holding @gpa, as the VM's MMIO bus would pick it. */
static struct pci_window *win_of(struct world *w, uint64_t gpa)
{
	return w->bus.win64.end && gpa >= w->bus.win64.start ? &w->bus.win64 : &w->bus.win32;
}

static uint64_t win_rd(struct world *w, uint64_t gpa, uint32_t len)
{
	struct pci_window *win = win_of(w, gpa);
	uint64_t v = 0;

	pci_window_ops.read(win, gpa - win->start, (uint8_t *)&v, len);
	return v;
}

static void win_wr(struct world *w, uint64_t gpa, uint32_t len, uint64_t v)
{
	struct pci_window *win = win_of(w, gpa);

	pci_window_ops.write(win, gpa - win->start, (const uint8_t *)&v, len);
}

static unsigned open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	unsigned n = 0;

	assert_non_null(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

/* The @back-th last VFIO_DEVICE_SET_IRQS the fake saw (1: the last). */
#define LAST(w, back) ((w)->f.irqs[((w)->f.nirqs - (back)) % 64])

static uint16_t fake_command(const struct world *w)
{
	return (uint16_t)(w->f.cfg[4] | w->f.cfg[5] << 8);
}

/* --- Tests ---------------------------------------------------------------------------- */

static void test_identity(void **state)
{
	struct world *w = world_new(edu_plain, true);

	(void)state;
	assert_int_equal(rd(w, 0x00, 4), 0x11e81234);
	assert_int_equal(rd(w, 0x02, 2), 0x11e8);
	assert_int_equal(rd(w, 0x08, 4), 0x00ff0010); /* class 00ff00, revision 0x10 */
	assert_int_equal(rd(w, 0x2c, 4), 0x11001af4);
	assert_int_equal(rd(w, 0x0e, 1), 0);
	assert_int_equal(rd(w, 0x30, 4), 0);           /* no ROM */
	assert_int_equal(rd(w, 0x3d, 1), 0);           /* no INTx pin: MSI only */
	assert_int_equal(rd(w, 0x04, 2), 0x0400);      /* INTx disabled, not decoding */
	assert_int_equal(rd(w, 0x06, 2) & 0x18, 0x10); /* capabilities, no INTx status */
	assert_int_equal(rd(w, 0x10, 4), WINDOW);      /* where flint put BAR0 */
	assert_int_equal(w->f.resets, 1);
	/* The device itself does not decode until the guest says so. */
	assert_int_equal(fake_command(w), 0x0400);
	/* The host's MSI message does not leak into the guest's view. */
	assert_int_equal(rd(w, 0x44, 4), 0);
	world_free(w, true);
}

static void test_bar_sizing(void **state)
{
	struct world *w = world_new(edu_plain, true);

	(void)state;
	wr(w, 0x10, 4, 0xffffffff);
	assert_int_equal(rd(w, 0x10, 4), 0xfff00000); /* 1 MiB, 32-bit, not prefetchable */
	wr(w, 0x10, 4, WINDOW + MIB);
	assert_int_equal(rd(w, 0x10, 4), WINDOW + MIB);
	for (uint32_t bar = 0x14; bar < 0x28; bar += 4) {
		wr(w, bar, 4, 0xffffffff);
		assert_int_equal(rd(w, bar, 4), 0); /* not implemented */
	}
	wr(w, 0x30, 4, 0xfffff800);
	assert_int_equal(rd(w, 0x30, 4), 0); /* no ROM */
	assert_int_equal(w->vm.maps, 0);     /* sizing without decoding maps nothing */
	world_free(w, true);
}

static void test_bar_map_and_move(void **state)
{
	struct world *w = world_new(edu_plain, true);

	(void)state;
	wr(w, 0x04, 2, PCI_COMMAND_MEMORY);
	assert_int_equal(w->vm.maps, 1);
	assert_int_equal(w->vm.slot[0].gpa, WINDOW);
	assert_int_equal(w->vm.slot[0].size, MIB);
	assert_ptr_equal(w->vm.slot[0].hva, w->f.mapped[0]);
	assert_false(w->p.func.traps[0].on); /* all of it mapped: no exits */
	/* The guest moves BAR0: the slot follows. */
	wr(w, 0x10, 4, WINDOW + 4 * MIB);
	assert_int_equal(w->vm.unmaps, 1);
	assert_int_equal(w->vm.maps, 2);
	assert_int_equal(live_slots(&w->vm), 1);
	assert_int_equal(w->vm.slot[0].gpa, WINDOW + 4 * MIB);
	/* Decoding off: nothing mapped; on again: mapped where the BAR now is. */
	wr(w, 0x04, 2, 0);
	assert_int_equal(live_slots(&w->vm), 0);
	wr(w, 0x04, 2, PCI_COMMAND_MEMORY);
	assert_int_equal(live_slots(&w->vm), 1);
	assert_int_equal(w->vm.slot[0].gpa, WINDOW + 4 * MIB);
	world_free(w, true);
}

static void test_map_failure_traps(void **state)
{
	struct world *w = world_new(edu_plain, true);
	uint32_t id = 0x010000ed;

	(void)state;
	memcpy(w->f.region[0], &id, 4);
	w->vm.map_fails = true;
	wr(w, 0x04, 2, PCI_COMMAND_MEMORY);
	assert_true(w->p.func.traps[0].on); /* the slot failed: still reachable, trapped */
	assert_int_equal(win_rd(w, WINDOW, 4), 0x010000ed);
	/* Toggling decoding does not retry a failed address. */
	w->vm.map_fails = false;
	wr(w, 0x04, 2, 0);
	wr(w, 0x04, 2, PCI_COMMAND_MEMORY);
	assert_int_equal(w->vm.maps, 0);
	/* A new address is tried. */
	wr(w, 0x10, 4, WINDOW + 2 * MIB);
	assert_int_equal(w->vm.maps, 1);
	assert_false(w->p.func.traps[0].on);
	world_free(w, true);
}

static void test_command_passthrough(void **state)
{
	struct world *w = world_new(edu_plain, true);

	(void)state;
	wr(w, 0x04, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	assert_int_equal(fake_command(w), 0x0406);
	assert_int_equal(rd(w, 0x04, 2), 0x0406);
	/* I/O space, SERR, INTx enable: not flint's to give. */
	wr(w, 0x04, 2, 0x0107);
	assert_int_equal(rd(w, 0x04, 2), 0x0406);
	assert_int_equal(fake_command(w), 0x0406);
	wr(w, 0x04, 1, PCI_COMMAND_MEMORY); /* bus master off by a byte write */
	assert_int_equal(fake_command(w), 0x0402);
	world_free(w, true);
}

static void test_caps_edu(void **state)
{
	struct world *w = world_new(edu_plain, true);

	(void)state;
	assert_int_equal(rd(w, 0x34, 1), 0x40);
	assert_int_equal(rd(w, 0x40, 2), 0x0005); /* MSI, last */
	assert_int_equal(rd(w, 0x42, 2), 0x0080); /* 64-bit, 1 vector, off */
	world_free(w, true);
}

static void test_caps_filtered(void **state)
{
	struct world *w = world_new(nic, true);
	uint32_t v;

	(void)state;
	assert_int_equal(rd(w, 0x34, 1), 0x50); /* PM unlinked */
	assert_int_equal(rd(w, 0x50, 2), 0x6011);
	assert_int_equal(rd(w, 0x60, 2), 0x0010); /* PCIe, last: vendor-specific unlinked */
	assert_int_equal(rd(w, 0x64, 4), 0x8fc0);
	/* The PCIe capability is read from the device, and read-only. */
	w->f.cfg[0x72] = 0x11; /* link status changed */
	assert_int_equal(rd(w, 0x72, 2), 0x11);
	v = w->f.config_writes;
	wr(w, 0x68, 2, 0xffff);
	assert_int_equal(w->f.config_writes, v);
	assert_int_equal(rd(w, 0x68, 2), 0);
	world_free(w, true);
}

/* Programs edu's MSI: address 0xfee01000 (64-bit layout), @data. */
static void msi_program(struct world *w, uint32_t data)
{
	wr(w, 0x44, 4, 0xfee01000);
	wr(w, 0x48, 4, 0);
	wr(w, 0x4c, 2, data);
}

static void test_msi(void **state)
{
	struct world *w = world_new(edu_plain, true);
	int fd, r;

	(void)state;
	msi_program(w, 0x4021);
	assert_int_equal(w->f.nirqs, 0); /* not enabled yet */
	wr(w, 0x42, 2, 0x0081);
	assert_int_equal(w->f.nirqs, 1);
	assert_int_equal(w->f.irqs[0].index, VFIO_PCI_MSI_IRQ_INDEX);
	assert_int_equal(w->f.irqs[0].count, 1);
	fd = w->f.irqs[0].fds[0];
	r = route_with(&w->vm, 0x4021);
	assert_true(r >= 0);
	assert_int_equal(w->vm.route[r].addr, 0xfee01000);
	assert_int_equal(w->vm.route[r].fd, fd);
	/* A new message while enabled: the same route, updated. */
	wr(w, 0x4c, 2, 0x4031);
	assert_int_equal(w->vm.updates, 1);
	assert_int_equal(w->vm.route[r].data, 0x4031);
	assert_int_equal(w->vm.routes, 1);
	/* Writing the same again changes nothing. */
	wr(w, 0x4c, 2, 0x4031);
	assert_int_equal(w->vm.updates, 1);
	/* Off: unrouted, VFIO's vectors off, the eventfd closed. */
	wr(w, 0x42, 2, 0x0080);
	assert_int_equal(live_routes(&w->vm), 0);
	assert_int_equal(w->f.nirqs, 2);
	assert_true(w->f.irqs[1].none);
	assert_int_equal(w->f.irqs[1].count, 0);
	assert_true(fcntl(fd, F_GETFD) < 0);
	assert_int_equal(w->p.msi.v[0].fd, -1);
	world_free(w, true);
}

static void edu_multi(struct fake_dev *f)
{
	edu(f, 0x0184); /* per-vector masking, 64-bit, 4 vectors offered */
}

static void test_msi_multi_and_masking(void **state)
{
	struct world *w = world_new(edu_multi, true);

	(void)state;
	assert_int_equal(rd(w, 0x42, 2), 0x0184);
	msi_program(w, 0x4020);
	wr(w, 0x42, 2, 0x0184 | 0x70 | 1); /* asks for 128: gets what the device has, 4 */
	assert_int_equal(w->f.irqs[0].count, 4);
	assert_int_equal(live_routes(&w->vm), 4);
	for (uint32_t k = 0; k < 4; k++)
		assert_true(route_with(&w->vm, 0x4020 | k) >= 0);
	/* Mask vector 2 (mask bits at 0x50): unrouted; unmasked: routed again. */
	wr(w, 0x50, 4, 1u << 2);
	assert_int_equal(live_routes(&w->vm), 3);
	assert_true(route_with(&w->vm, 0x4022) < 0);
	assert_int_equal(rd(w, 0x50, 4), 4);
	wr(w, 0x50, 4, 0xffffffff); /* bits beyond the 4 vectors are not there */
	assert_int_equal(rd(w, 0x50, 4), 0xf);
	assert_int_equal(live_routes(&w->vm), 0);
	wr(w, 0x50, 4, 0);
	assert_int_equal(live_routes(&w->vm), 4);
	/* Fewer vectors: VFIO's set made again with 2. */
	wr(w, 0x42, 2, 0x0184 | 0x10 | 1);
	assert_int_equal(LAST(w, 1).count, 2);
	assert_int_equal(live_routes(&w->vm), 2);
	assert_true(route_with(&w->vm, 0x4021) >= 0);
	world_free(w, true);
}

/* MSI-X entry @k of the nic: BAR0 + 0x2000 + 16 k, once BAR0 decodes at WINDOW. */
static uint64_t entry(unsigned k)
{
	return WINDOW + 0x2000 + 16 * k;
}

static void msix_program(struct world *w, unsigned k, uint32_t data)
{
	win_wr(w, entry(k), 4, 0xfee00000);
	win_wr(w, entry(k) + 4, 4, 0);
	win_wr(w, entry(k) + 8, 4, data);
}

/* The nic with a 2048-entry MSI-X table (BAR0 then 64 KiB, the table at 0x2000..0xa000). */
static void big_nic(struct fake_dev *f)
{
	nic(f);
	f->cfg[0x52] = 0xff, f->cfg[0x53] = 0x07;
	vfio_fake_put32(f->cfg + 0x58, 0xc000);
	f->dev.irq_count[VFIO_PCI_MSIX_IRQ_INDEX] = 2048;
	free(f->region[0]);
	add_region(f, 0, 65536, true);
}

/* A device with more MSI-X vectors than the VM routes shows the guest only as many. */
static void test_msix_table_capped(void **state)
{
	struct world *w = world_new(big_nic, true);

	(void)state;
	assert_int_equal(rd(w, 0x52, 2) & 0x7ff, VFIO_PCI_MAX_VECTORS - 1);
	world_free(w, true);
}

static void test_msix(void **state)
{
	struct world *w = world_new(nic, true);

	(void)state;
	wr(w, 0x04, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	assert_int_equal(win_rd(w, entry(0) + 12, 4), 1); /* masked after reset */
	/* Linux: enable with everything masked, program, unmask the function, then entries. */
	wr(w, 0x52, 2, 0xc003);
	assert_int_equal(w->f.nirqs, 1);
	assert_int_equal(w->f.irqs[0].index, VFIO_PCI_MSIX_IRQ_INDEX);
	assert_int_equal(w->f.irqs[0].count, 1);
	msix_program(w, 0, 0x41);
	msix_program(w, 2, 0x43);
	assert_int_equal(win_rd(w, entry(2) + 8, 4), 0x43);
	wr(w, 0x52, 2, 0x8003);
	assert_int_equal(live_routes(&w->vm), 0); /* entries still masked */
	win_wr(w, entry(0) + 12, 4, 0);
	assert_int_equal(live_routes(&w->vm), 1);
	assert_true(route_with(&w->vm, 0x41) >= 0);
	/* Entry 2 unmasked: VFIO grows to 3 vectors, in place. */
	win_wr(w, entry(2) + 12, 4, 0);
	assert_int_equal(w->f.irqs[1].start, 1);
	assert_int_equal(w->f.irqs[1].count, 2);
	assert_int_equal(live_routes(&w->vm), 2);
	assert_int_equal(w->vm.route[route_with(&w->vm, 0x43)].addr, 0xfee00000);
	/* A new message for an unmasked entry: its route is updated. */
	win_wr(w, entry(2) + 8, 4, 0x53);
	assert_true(route_with(&w->vm, 0x53) >= 0);
	assert_int_equal(w->vm.updates, 1);
	/* Entry mask, function mask. */
	win_wr(w, entry(2) + 12, 4, 1);
	assert_int_equal(live_routes(&w->vm), 1);
	wr(w, 0x53, 1, 0xc0);
	assert_int_equal(live_routes(&w->vm), 0);
	wr(w, 0x53, 1, 0x80);
	assert_int_equal(live_routes(&w->vm), 1);
	/* Off: all gone. */
	wr(w, 0x52, 2, 0x0003);
	assert_int_equal(live_routes(&w->vm), 0);
	assert_true(LAST(w, 1).none);
	assert_int_equal(w->p.msix.active, 0);
	world_free(w, true);
}

static void test_msix_grow_afresh(void **state)
{
	struct world *w = world_new(nic, true);

	(void)state;
	w->f.incremental_fails = true; /* Linux < 6.5: the set is made again */
	wr(w, 0x04, 2, PCI_COMMAND_MEMORY);
	wr(w, 0x52, 2, 0x8003);
	msix_program(w, 3, 0x44);
	win_wr(w, entry(3) + 12, 4, 0);
	assert_true(LAST(w, 2).none); /* off, then all 4 */
	assert_int_equal(LAST(w, 1).start, 0);
	assert_int_equal(LAST(w, 1).count, 4);
	assert_true(route_with(&w->vm, 0x44) >= 0);
	world_free(w, true);
}

static void test_msix_bar(void **state)
{
	struct world *w = world_new(nic, true);
	uint32_t reg = 0x12345678;

	(void)state;
	/* BAR0 64-bit at WINDOW, BAR2 after it. */
	assert_int_equal(rd(w, 0x10, 4), WINDOW | 4);
	assert_int_equal(rd(w, 0x14, 4), 0);
	assert_int_equal(rd(w, 0x18, 4), (WINDOW + 0x4000) | 8);
	wr(w, 0x10, 4, 0xffffffff);
	wr(w, 0x14, 4, 0xffffffff);
	assert_int_equal(rd(w, 0x10, 4), 0xffffc004);
	assert_int_equal(rd(w, 0x14, 4), 0xffffffff);
	wr(w, 0x10, 4, WINDOW);
	wr(w, 0x14, 4, 0);
	wr(w, 0x04, 2, PCI_COMMAND_MEMORY);
	/* Only the registers below the MSI-X pages are a slot; BAR0 and BAR2 trap the rest. */
	assert_int_equal(live_slots(&w->vm), 1);
	assert_int_equal(w->vm.slot[0].gpa, WINDOW);
	assert_int_equal(w->vm.slot[0].size, 0x2000);
	assert_true(w->p.func.traps[0].on);
	assert_true(w->p.func.traps[2].on);
	/* A trapped non-mmappable BAR is forwarded; so is the PBA (read only). */
	win_wr(w, WINDOW + 0x4010, 4, reg);
	assert_memory_equal(w->f.region[2] + 0x10, &reg, 4);
	w->f.region[0][0x3000] = 0x5;
	assert_int_equal(win_rd(w, WINDOW + 0x3000, 8), 5);
	win_wr(w, WINDOW + 0x3000, 8, 0);
	assert_int_equal(w->f.region[0][0x3000], 5);
	/* The table is flint's; the device never sees it written. */
	w->f.region_writes = 0;
	win_wr(w, entry(1), 4, 0xfee00000);
	assert_int_equal(w->f.region_writes, 0);
	assert_int_equal(win_rd(w, entry(1), 4), 0xfee00000);
	/* Across the table's end, or past the BAR: nothing. */
	assert_int_equal(win_rd(w, entry(3) + 12, 8), 0xffffffffffffffffull);
	assert_int_equal(win_rd(w, WINDOW + 0x3ffc, 8), 0xffffffffffffffffull);
	/* The 64-bit BAR moves as a whole, above 4 GiB too. */
	wr(w, 0x14, 4, 0x1);
	assert_int_equal(live_slots(&w->vm), 1);
	assert_int_equal(w->vm.slot[w->p.bars[0].piece[0].slot].gpa, 0x100000000ull | WINDOW);
	world_free(w, true);
}

/* With a window above RAM, the 64-bit BAR lives there and works the same; BAR2 stays low. */
static void test_bar64_above_ram(void **state)
{
	struct world *w = world_new64(nic, true);
	uint64_t table = WINDOW64 + 0x2000 + 16;

	(void)state;
	assert_int_equal(rd(w, 0x10, 4), (uint32_t)WINDOW64 | 4);
	assert_int_equal(rd(w, 0x14, 4), WINDOW64 >> 32);
	assert_int_equal(rd(w, 0x18, 4), WINDOW | 8);
	wr(w, 0x04, 2, PCI_COMMAND_MEMORY);
	assert_int_equal(live_slots(&w->vm), 1);
	assert_int_equal(w->vm.slot[0].gpa, WINDOW64);
	/* The MSI-X table, trapped, is reached through the high window. */
	win_wr(w, table, 4, 0xfee00000);
	assert_int_equal(win_rd(w, table, 4), 0xfee00000);
	assert_int_equal(w->f.region_writes, 0);
	world_free(w, true);
}

static void edu_trapped(struct fake_dev *f)
{
	edu(f, 0x0080);
	f->dev.regions[0].flags &= ~(uint32_t)VFIO_REGION_INFO_FLAG_MMAP;
}

static void test_trapped_bar(void **state)
{
	struct world *w = world_new(edu_trapped, true);
	uint32_t id = 0x010000ed, v = 5;

	(void)state;
	memcpy(w->f.region[0], &id, 4);
	assert_false(w->p.func.traps[0].on); /* not decoding yet */
	assert_int_equal(win_rd(w, WINDOW, 4), 0xffffffff);
	wr(w, 0x04, 2, PCI_COMMAND_MEMORY);
	assert_int_equal(w->vm.maps, 0);
	assert_int_equal(win_rd(w, WINDOW, 4), 0x010000ed);
	win_wr(w, WINDOW + 8, 4, v);
	assert_memory_equal(w->f.region[0] + 8, &v, 4);
	assert_int_equal(win_rd(w, WINDOW + MIB - 4, 4), 0);
	/* Straddling the end: the bus drops it; the fake asserts nothing leaves the region. */
	assert_int_equal(win_rd(w, WINDOW + MIB - 2, 4), 0xffffffff);
	win_wr(w, WINDOW + MIB - 1, 2, 0xffff);
	/* Odd offsets and sizes inside are the device's business. */
	win_wr(w, WINDOW + 3, 1, 0xab);
	assert_int_equal(w->f.region[0][3], 0xab);
	/* Straight to the op: beyond the BAR, a bad BAR number, an absurd length. */
	uint8_t d[8] = { 0 };
	w->p.func.ops->bar_read(&w->p.func, 0, MIB, d, 4);
	w->p.func.ops->bar_read(&w->p.func, 0, UINT64_MAX - 2, d, 4);
	w->p.func.ops->bar_write(&w->p.func, 1, 0, d, 4);
	w->p.func.ops->bar_write(&w->p.func, 7, 0, d, 4);
	w->p.func.ops->bar_write(&w->p.func, 0, 0, d, 9);
	world_free(w, true);
}

static void test_hostile_config(void **state)
{
	struct world *w = world_new(edu_plain, true);
	unsigned fds = open_fds();

	(void)state;
	/* Read-only registers stay. */
	wr(w, 0x00, 4, 0);
	wr(w, 0x08, 4, 0xffffffff);
	wr(w, 0x34, 1, 0x80);
	wr(w, 0x3d, 1, 1);
	wr(w, 0x0e, 1, 0x80);
	assert_int_equal(rd(w, 0x00, 4), 0x11e81234);
	assert_int_equal(rd(w, 0x08, 4), 0x00ff0010);
	assert_int_equal(rd(w, 0x34, 1), 0x40);
	assert_int_equal(rd(w, 0x3d, 1), 0);
	assert_int_equal(rd(w, 0x0e, 1), 0);
	/* BAR garbage: the low bits are the type's, the rest aligned to the size. */
	wr(w, 0x10, 4, 0x12345679);
	assert_int_equal(rd(w, 0x10, 4), 0x12300000);
	wr(w, 0x11, 1, 0xff);
	assert_int_equal(rd(w, 0x10, 4), 0x12300000);
	wr(w, 0x13, 1, 0xe0);
	assert_int_equal(rd(w, 0x10, 4), 0xe0300000);
	/* Bytes into the middle of the MSI capability. */
	wr(w, 0x41, 1, 0x80); /* next pointer: read-only */
	assert_int_equal(rd(w, 0x41, 1), 0);
	wr(w, 0x43, 1, 0xff); /* control's upper byte: nothing writable */
	assert_int_equal(rd(w, 0x42, 2), 0x0080);
	wr(w, 0x44, 1, 0xff); /* address bits 1:0 are 0 */
	assert_int_equal(rd(w, 0x44, 4), 0xfc);
	wr(w, 0x4e, 2, 0xffff); /* extended data: not offered */
	assert_int_equal(rd(w, 0x4e, 2), 0);
	/* Enabled with no message programmed: VFIO set up, nothing routed. */
	wr(w, 0x44, 4, 0);
	wr(w, 0x42, 1, 0xf1); /* enable, and an absurd vector count */
	assert_int_equal(w->f.irqs[0].count, 1);
	assert_int_equal(live_routes(&w->vm), 0);
	msi_program(w, 0x4021);
	assert_int_equal(live_routes(&w->vm), 1);
	/* Toggled a thousand times: no fd, route or vector left behind. */
	for (int i = 0; i < 1000; i++) {
		wr(w, 0x42, 1, 0x80);
		wr(w, 0x42, 1, 0x81);
	}
	wr(w, 0x42, 1, 0x80);
	assert_int_equal(live_routes(&w->vm), 0);
	assert_int_equal(open_fds(), fds);
	/* Every offset and width: no crash. */
	for (uint32_t off = 0; off < PCI_CONFIG_SIZE; off++)
		for (uint32_t len = 1; len <= 4; len <<= 1)
			if (off % len == 0) {
				(void)rd(w, off, len);
				if (off >= 0x10)
					wr(w, off, len, 0xffffffff);
			}
	world_free(w, true);
}

static void edu_io_bar(struct fake_dev *f)
{
	edu(f, 0x0080);
	vfio_fake_put32(f->cfg + 0x14, 0xc001);
	add_region(f, 1, 32, false);
}

static void edu_bridge(struct fake_dev *f)
{
	edu(f, 0x0080);
	f->cfg[0x0e] = 0x01;
}

static void edu_huge(struct fake_dev *f)
{
	edu(f, 0x0080);
	f->dev.regions[0].size = 1ull << 31; /* bigger than the window */
}

static void refused(void (*dev)(struct fake_dev *), int err)
{
	struct world *w = world_new(dev, false);
	struct vfio_pci_vm vm = { &w->vm, vm_map, vm_unmap, vm_route, vm_unroute };

	assert_int_equal(vfio_pci_init_io(&w->p, &w->f.dev, &w->bus, -1, &vm, &fake_io), err);
	assert_null(w->bus.slots[1]);
	for (unsigned i = 0; i < PCI_BARS; i++)
		if (w->f.mapped[i])
			assert_int_equal(msync(w->f.mapped[i], 4096, MS_ASYNC), -1); /* unmapped */
	world_free(w, false);
}

static void test_refused(void **state)
{
	(void)state;
	refused(edu_io_bar, -ENOTSUP);
	refused(edu_bridge, -ENOTSUP);
	refused(edu_huge, -ENOSPC);
}

static void test_slot(void **state)
{
	struct world *w = world_new(edu_plain, false);
	struct vfio_pci_vm vm = { &w->vm, vm_map, vm_unmap, vm_route, vm_unroute };

	(void)state;
	assert_int_equal(vfio_pci_init_io(&w->p, &w->f.dev, &w->bus, 5, &vm, &fake_io), 0);
	assert_int_equal(w->p.slot, 5);
	assert_ptr_equal(w->bus.slots[5], &w->p.func);
	world_free(w, true);
}

static void test_destroy_releases(void **state)
{
	unsigned fds = open_fds();
	struct world *w = world_new(nic, true);

	(void)state;
	wr(w, 0x04, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	wr(w, 0x52, 2, 0x8003);
	for (unsigned k = 0; k < 4; k++) {
		msix_program(w, k, 0x40 + k);
		win_wr(w, entry(k) + 12, 4, 0);
	}
	assert_int_equal(live_routes(&w->vm), 4);
	assert_int_equal(open_fds(), fds + 4);
	vfio_pci_destroy(&w->p);
	assert_int_equal(live_routes(&w->vm), 0);
	assert_int_equal(live_slots(&w->vm), 0);
	assert_int_equal(open_fds(), fds);
	assert_true(LAST(w, 1).none);
	assert_int_equal(w->f.resets, 2);
	assert_int_equal(fake_command(w) & 0x6, 0); /* no DMA after flint lets go */
	assert_null(w->bus.slots[1]);
	world_free(w, false);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_identity),
		cmocka_unit_test(test_bar_sizing),
		cmocka_unit_test(test_bar_map_and_move),
		cmocka_unit_test(test_map_failure_traps),
		cmocka_unit_test(test_command_passthrough),
		cmocka_unit_test(test_caps_edu),
		cmocka_unit_test(test_caps_filtered),
		cmocka_unit_test(test_msi),
		cmocka_unit_test(test_msi_multi_and_masking),
		cmocka_unit_test(test_msix),
		cmocka_unit_test(test_msix_table_capped),
		cmocka_unit_test(test_msix_grow_afresh),
		cmocka_unit_test(test_msix_bar),
		cmocka_unit_test(test_bar64_above_ram),
		cmocka_unit_test(test_trapped_bar),
		cmocka_unit_test(test_hostile_config),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_slot),
		cmocka_unit_test(test_destroy_releases),
	};
	log_set_level(LOG_ERROR);
	return TEST_MAIN(tests, NULL, test_group_teardown);
}
