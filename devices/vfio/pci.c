/* An assigned VFIO device on flint's PCI bus: virtual config space, BARs, MSI and MSI-X. */
#include "devices/vfio/pci.h"
#include "iommu/uapi_compat.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#define CAP_ID_MSI  0x05
#define CAP_ID_EXP  0x10
#define CAP_ID_MSIX 0x11
#define CAP_FIRST   0x40 /* capabilities live after the standard header */
#define CAP_HOPS    48   /* (256 - 64) / 4: more means a loop in the list */

#define COMMAND_DECODE       (PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER)
#define COMMAND_INTX_DISABLE 0x400
#define STATUS_INTX          0x08
#define STATUS_RW1C          0xf900 /* the error bits a write of 1 clears */
#define ROM_BAR              0x30

#define MSI_CTL_ENABLE  0x0001
#define MSI_CTL_MME     0x0070 /* multiple message enable: log2 of the vectors */
#define MSI_CTL_64      0x0080
#define MSI_CTL_MASKING 0x0100
#define MSI_CTL_EXT     0x0600 /* extended message data: flint offers none */
#define MSI_MAX_VECTORS 32

#define MSIX_CTL_ENABLE  0x8000
#define MSIX_CTL_MASKALL 0x4000
#define MSIX_ENTRY       16
#define MSIX_ENTRY_CTRL  12

/* Where x86 MSIs go: anything else the guest has not (yet) programmed, and is not routed. */
#define MSI_WINDOW      0xfee00000u
#define MSI_WINDOW_MASK 0xfff00000u

#define warn_rl(p, ...)                                                                            \
	do {                                                                                       \
		if (log_ratelimit_ok(&(p)->rl))                                                    \
			log_warn(__VA_ARGS__);                                                     \
	} while (0)

/* --- The real device --------------------------------------------------------------- */

static int region_io(struct vfio_dev *d, unsigned index, uint64_t off, void *buf, size_t len,
                     bool write)
{
	const struct vfio_region *r;
	ssize_t n;

	if (index >= VFIO_MAX_REGIONS)
		return -EINVAL;
	r = &d->regions[index];
	if (off > r->size || len > r->size - off)
		return -EINVAL;
	n = write ? pwrite(d->fd, buf, len, (off_t)(r->offset + off))
	          : pread(d->fd, buf, len, (off_t)(r->offset + off));
	if (n == (ssize_t)len)
		return 0;
	return n < 0 ? -errno : -EIO;
}

static int real_region_read(struct vfio_dev *d, unsigned index, uint64_t off, void *buf, size_t len)
{
	return region_io(d, index, off, buf, len, false);
}

static int real_region_write(struct vfio_dev *d, unsigned index, uint64_t off, const void *buf,
                             size_t len)
{
	return region_io(d, index, off, (void *)buf, len, true);
}

static int real_set_irqs(struct vfio_dev *d, unsigned index, unsigned start, unsigned count,
                         const int *fds)
{
	size_t data = fds ? count * sizeof(int32_t) : 0;
	struct vfio_irq_set *s = calloc(1, sizeof(*s) + data);
	int r;

	if (!s)
		return -ENOMEM;
	*s = (struct vfio_irq_set){
		.argsz = (uint32_t)(sizeof(*s) + data),
		.flags = VFIO_IRQ_SET_ACTION_TRIGGER |
		         (fds ? VFIO_IRQ_SET_DATA_EVENTFD : VFIO_IRQ_SET_DATA_NONE),
		.index = index,
		.start = start,
		.count = count,
	};
	if (fds)
		memcpy(s->data, fds, data);
	r = ioctl(d->fd, VFIO_DEVICE_SET_IRQS, s) < 0 ? -errno : 0;
	free(s);
	return r;
}

static int real_reset(struct vfio_dev *d)
{
	return ioctl(d->fd, VFIO_DEVICE_RESET) < 0 ? -errno : 0;
}

static void *real_mmap(struct vfio_dev *d, unsigned index)
{
	const struct vfio_region *r = &d->regions[index];
	void *p = mmap(NULL, r->size, PROT_READ | PROT_WRITE, MAP_SHARED, d->fd, (off_t)r->offset);

	return p == MAP_FAILED ? NULL : p;
}

const struct vfio_pci_io vfio_pci_io_default = {
	.config_read = vfio_config_read,
	.config_write = vfio_config_write,
	.region_read = real_region_read,
	.region_write = real_region_write,
	.set_irqs = real_set_irqs,
	.reset = real_reset,
	.mmap = real_mmap,
};

/* --- Little helpers -------------------------------------------------------------------- */

static uint16_t get16(const uint8_t *b)
{
	return (uint16_t)(b[0] | (uint16_t)b[1] << 8);
}

static uint32_t get32(const uint8_t *b)
{
	return (uint32_t)get16(b) | (uint32_t)get16(b + 2) << 16;
}

static void put16(uint8_t *b, uint16_t v)
{
	b[0] = (uint8_t)v;
	b[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *b, uint32_t v)
{
	put16(b, (uint16_t)v);
	put16(b + 2, (uint16_t)(v >> 16));
}

static bool overlaps(uint32_t off, uint32_t len, uint32_t reg, uint32_t rlen)
{
	return off < reg + rlen && reg < off + len;
}

/*
 * @old (the @rlen bytes at @reg) with the bytes of @val (the @len bytes at @off) that fall
 * inside it. Used both ways: a write into a register, a register into a read.
 */
static uint32_t merge(uint32_t old, uint32_t reg, uint32_t rlen, uint32_t off, uint32_t len,
                      uint32_t val)
{
	for (uint32_t i = 0; i < len; i++) {
		uint32_t at = off + i, sh;
		if (at < reg || at >= reg + rlen)
			continue;
		sh = 8 * (at - reg);
		old = (old & ~(0xffu << sh)) | ((val >> (8 * i)) & 0xffu) << sh;
	}
	return old;
}

static struct vfio_pci *of(struct pci_func *f)
{
	return (struct vfio_pci *)f; /* func is the first member */
}

static const char *node(const struct vfio_pci *p)
{
	return p->dev->node;
}

/* --- BARs ------------------------------------------------------------------------------ */

/* The register value of BAR @i as the guest reads it. */
static uint32_t bar_reg(const struct vfio_pci *p, unsigned i)
{
	const struct vfio_pci_bar *b = &p->bars[i];

	if (b->size)
		return (uint32_t)b->addr | b->flags;
	if (i > 0 && p->bars[i - 1].is64)
		return (uint32_t)(p->bars[i - 1].addr >> 32);
	return 0;
}

static void bar_regs_to_shadow(struct vfio_pci *p)
{
	for (unsigned i = 0; i < PCI_BARS; i++)
		put32(p->cfg.bytes + PCI_BAR0 + 4 * i, bar_reg(p, i));
}

static void unplace(struct vfio_pci *p, unsigned i)
{
	struct vfio_pci_bar *b = &p->bars[i];

	for (unsigned k = 0; k < b->npieces; k++)
		if (b->piece[k].slot >= 0) {
			p->vm.unmap(p->vm.ctx, b->piece[k].slot);
			b->piece[k].slot = -1;
		}
	p->func.traps[i].on = false;
}

/* Maps the mmapped pieces at the BAR's address; false (nothing mapped) when it cannot. */
static bool map_pieces(struct vfio_pci *p, struct vfio_pci_bar *b)
{
	if (!b->npieces || b->addr % p->page || b->addr + b->size < b->addr)
		return false;
	if (b->map_failed && b->failed_addr == b->addr)
		return false; /* a guest toggling decoding must not retry (and log) forever */
	for (unsigned k = 0; k < b->npieces; k++) {
		int s = p->vm.map(p->vm.ctx, b->addr + b->piece[k].off, b->piece[k].len,
		                  (uint8_t *)b->hva + b->piece[k].off);
		if (s < 0) {
			for (unsigned j = 0; j < k; j++) {
				p->vm.unmap(p->vm.ctx, b->piece[j].slot);
				b->piece[j].slot = -1;
			}
			b->map_failed = true;
			b->failed_addr = b->addr;
			return false;
		}
		b->piece[k].slot = s;
	}
	return true;
}

/*
 * Decoding at the BAR's address: the mmapped pieces as KVM slots (no exits), and a trap
 * over the whole BAR for what they do not cover (slots take precedence over the trap).
 */
static void place(struct vfio_pci *p, unsigned i)
{
	struct vfio_pci_bar *b = &p->bars[i];
	uint64_t covered = 0;

	if (!b->size)
		return;
	if (map_pieces(p, b))
		for (unsigned k = 0; k < b->npieces; k++)
			covered += b->piece[k].len;
	p->func.traps[i] = (struct pci_bar_trap){ covered < b->size, b->addr, b->size };
}

static void set_decoding(struct vfio_pci *p, bool on)
{
	if (on == p->decoding)
		return;
	p->decoding = on;
	for (unsigned i = 0; i < PCI_BARS; i++)
		on ? place(p, i) : unplace(p, i);
}

static void bar_move(struct vfio_pci *p, unsigned i, uint64_t addr)
{
	if (addr == p->bars[i].addr)
		return;
	if (p->decoding)
		unplace(p, i);
	p->bars[i].addr = addr;
	if (p->decoding)
		place(p, i);
}

/*
 * A write into BAR register @i: the address bits the size allows change (all-ones reads
 * back the size mask: sizing), the type bits stay, and a moved BAR moves its mappings.
 */
static void bar_written(struct vfio_pci *p, unsigned i, uint32_t off, uint32_t len, uint32_t val)
{
	unsigned lo = i;
	bool upper = false;
	struct vfio_pci_bar *b;
	uint64_t addr;
	uint32_t v;

	if (!p->bars[i].size) {
		if (i == 0 || !p->bars[i - 1].is64)
			return; /* not implemented: reads 0 whatever is written */
		lo = i - 1;
		upper = true;
	}
	b = &p->bars[lo];
	v = merge(bar_reg(p, i), PCI_BAR0 + 4 * i, 4, off, len, val);
	if (upper)
		addr = (uint64_t)v << 32 | (uint32_t)b->addr;
	else
		addr = (b->addr & ~0xffffffffull) | (v & ~0xfu);
	addr &= ~(b->size - 1);
	if (!b->is64)
		addr &= 0xffffffffu;
	bar_move(p, lo, addr);
	bar_regs_to_shadow(p);
}

static void add_piece(struct vfio_pci_bar *b, uint64_t off, uint64_t len)
{
	b->piece[b->npieces++] = (struct vfio_pci_piece){ off, len, -1 };
}

/*
 * The pieces of mmapped BAR @i the guest reaches directly: all but the pages holding the
 * MSI-X table and PBA, which stay trapped (emulated) under the BAR's trap.
 */
static void bar_pieces(struct vfio_pci *p, unsigned i)
{
	struct vfio_pci_bar *b = &p->bars[i];
	uint64_t start[2], end[2], at = 0, pg = p->page;
	unsigned nh = 0;

	if (!b->hva)
		return;
	if (p->msix.cap && p->x.table_bar == i) {
		start[nh] = p->x.table_off;
		end[nh++] = p->x.table_off + (uint64_t)p->msix.max * MSIX_ENTRY;
	}
	if (p->msix.cap && p->x.pba_bar == i) {
		start[nh] = p->x.pba_off;
		end[nh++] = p->x.pba_off + (p->msix.max + 63) / 64 * 8;
	}
	if (nh == 2 && start[1] < start[0]) {
		uint64_t s = start[0], e = end[0];
		start[0] = start[1], end[0] = end[1];
		start[1] = s, end[1] = e;
	}
	for (unsigned h = 0; h < nh; h++) {
		uint64_t s = start[h] & ~(pg - 1), e = (end[h] + pg - 1) & ~(pg - 1);
		if (s > at)
			add_piece(b, at, s - at);
		if (e > at)
			at = e;
	}
	if (at < b->size)
		add_piece(b, at, b->size - at);
}

static int bar_setup(struct vfio_pci *p, unsigned i)
{
	struct vfio_pci_bar *b = &p->bars[i];
	const struct vfio_region *r = &p->dev->regions[i];
	uint32_t reg = get32(p->cfg.bytes + PCI_BAR0 + 4 * i);
	bool is64 = (reg & 6) == 4;
	uint64_t at;

	if (reg & 1) {
		log_error("%s: BAR%u is an I/O BAR; flint gives guests memory BARs only", node(p),
		          i);
		return -ENOTSUP;
	}
	if ((is64 && i == PCI_BARS - 1) || (r->size & (r->size - 1)) ||
	    (!is64 && r->size > 1ull << 31)) {
		log_error("%s: BAR%u is malformed (%#x, %llu bytes)", node(p), i, reg,
		          (unsigned long long)r->size);
		return -EINVAL;
	}
	/* At least a page, so the BAR can be a KVM slot of its own. */
	at = pci_bus_alloc_bar(p->bus, r->size < p->page ? p->page : r->size, is64);
	if (!at) {
		log_error("%s: BAR%u (%s, %llu KiB) does not fit the free space of the PCI "
		          "windows [%#llx, %#llx) and [%#llx, %#llx)",
		          node(p), i, is64 ? "64-bit" : "32-bit",
		          (unsigned long long)(r->size >> 10),
		          (unsigned long long)p->bus->win32.start,
		          (unsigned long long)p->bus->win32.end,
		          (unsigned long long)p->bus->win64.start,
		          (unsigned long long)p->bus->win64.end);
		return -ENOSPC;
	}
	*b = (struct vfio_pci_bar){ .size = r->size, .addr = at, .flags = reg & 0xe, .is64 = is64 };
	if ((r->flags & VFIO_REGION_INFO_FLAG_MMAP) && r->size % p->page == 0)
		b->hva = p->io->mmap(p->dev, i);
	log_info("%s: BAR%u, %s, %llu %s, at guest %#llx: %s", node(p), i,
	         is64 ? "64-bit" : "32-bit",
	         (unsigned long long)(r->size >= 1024 ? r->size >> 10 : r->size),
	         r->size >= 1024 ? "KiB" : "bytes", (unsigned long long)at,
	         b->hva ? "mapped into the guest" : "trapped, every access forwarded");
	return 0;
}

static int bars_setup(struct vfio_pci *p)
{
	for (unsigned i = 0; i < PCI_BARS; i++) {
		int r = 0;
		if (p->dev->regions[i].size)
			r = bar_setup(p, i);
		if (r)
			return r;
		if (p->bars[i].is64)
			i++; /* the upper half: region i + 1 is empty */
	}
	return 0;
}

/* --- MSI and MSI-X ------------------------------------------------------------------------ */

struct msg {
	bool on;
	uint64_t addr;
	uint32_t data;
};

static void unroute(struct vfio_pci *p, struct vfio_pci_vector *v)
{
	if (v->route < 0)
		return;
	p->vm.msi_unroute(p->vm.ctx, v->route, v->fd);
	v->route = -1;
}

/* Brings vector @k's route in line with @m (while masked, its eventfd keeps the count). */
static void vector_sync(struct vfio_pci *p, struct vfio_pci_irqs *s, unsigned k, struct msg m)
{
	struct vfio_pci_vector *v = &s->v[k];
	int r;

	if (!m.on || k >= s->active) {
		unroute(p, v);
		return;
	}
	if (v->route >= 0 && v->addr == m.addr && v->data == m.data)
		return;
	r = p->vm.msi_route(p->vm.ctx, v->route, m.addr, m.data, v->fd);
	if (r < 0) {
		warn_rl(p, "%s: vector %u not routed: %s", node(p), k, strerror(-r));
		return;
	}
	*v = (struct vfio_pci_vector){ v->fd, r, m.addr, m.data };
}

static void vectors_release(struct vfio_pci *p, struct vfio_pci_irqs *s, unsigned from, unsigned to)
{
	for (unsigned k = from; k < to; k++) {
		unroute(p, &s->v[k]);
		if (s->v[k].fd >= 0)
			close(s->v[k].fd);
		s->v[k].fd = -1;
	}
}

static int vectors_open(struct vfio_pci_irqs *s, unsigned n, int *fds)
{
	for (unsigned k = 0; k < n; k++) {
		if (s->v[k].fd < 0)
			s->v[k].fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (s->v[k].fd < 0)
			return -errno;
		fds[k] = s->v[k].fd;
	}
	return 0;
}

/* MSI-X grows in place where the kernel can (Linux >= 6.5); else VFIO's set is made afresh. */
static int irqs_set(struct vfio_pci *p, struct vfio_pci_irqs *s, unsigned n, const int *fds)
{
	const struct vfio_pci_io *io = p->io;

	if (s->index == VFIO_PCI_MSIX_IRQ_INDEX && s->active && n > s->active &&
	    io->set_irqs(p->dev, s->index, s->active, n - s->active, fds + s->active) == 0)
		return 0;
	if (s->active)
		io->set_irqs(p->dev, s->index, 0, 0, NULL);
	return io->set_irqs(p->dev, s->index, 0, n, fds);
}

/* Gives VFIO eventfds for vectors [0, @n) of @s; none when @n is 0. */
static int irqs_resize(struct vfio_pci *p, struct vfio_pci_irqs *s, unsigned n)
{
	int *fds, r;

	if (n == s->active)
		return 0;
	if (n < s->active)
		vectors_release(p, s, n, s->active);
	if (!n) {
		p->io->set_irqs(p->dev, s->index, 0, 0, NULL);
		s->active = 0;
		return 0;
	}
	fds = calloc(n, sizeof(*fds));
	r = fds ? vectors_open(s, n, fds) : -ENOMEM;
	if (!r)
		r = irqs_set(p, s, n, fds);
	free(fds);
	if (r) {
		warn_rl(p, "%s: cannot enable %u %s vectors: %s", node(p), n,
		        s->index == VFIO_PCI_MSI_IRQ_INDEX ? "MSI" : "MSI-X", strerror(-r));
		if (s->active) /* irqs_set() may not have been reached: VFIO off either way */
			p->io->set_irqs(p->dev, s->index, 0, 0, NULL);
		vectors_release(p, s, 0, s->active > n ? s->active : n);
		s->active = 0;
		return r;
	}
	s->active = n;
	return 0;
}

/*
 * An interrupt message: an address in the x86 MSI window, whose upper 32 bits are 0. With
 * them set it is a memory write on real hardware, not an interrupt; and KVM, which flint
 * does not give the x2APIC format, ignores address_hi and would deliver it all the same.
 */
static bool msg_valid(uint64_t addr)
{
	return addr >> 32 == 0 && ((uint32_t)addr & MSI_WINDOW_MASK) == MSI_WINDOW;
}

static uint16_t msi_ctl(const struct vfio_pci *p)
{
	return get16(p->cfg.bytes + p->msi.cap + 2);
}

/* Vectors the guest enabled: 2^MME, at most what the function offers; 0 when off. */
static unsigned msi_count(const struct vfio_pci *p)
{
	uint16_t ctl = msi_ctl(p);
	unsigned mme = (ctl & MSI_CTL_MME) >> 4, n;

	if (!(ctl & MSI_CTL_ENABLE))
		return 0;
	n = 1u << (mme > 5 ? 5 : mme);
	return n < p->msi.max ? n : p->msi.max;
}

static struct msg msi_msg(const struct vfio_pci *p, unsigned k)
{
	const uint8_t *c = p->cfg.bytes + p->msi.cap;
	uint16_t ctl = msi_ctl(p);
	bool is64 = ctl & MSI_CTL_64;
	uint64_t addr = get32(c + 4) | (is64 ? (uint64_t)get32(c + 8) << 32 : 0);
	uint32_t nvec = msi_count(p), data = get16(c + (is64 ? 12 : 8));
	bool masked = (ctl & MSI_CTL_MASKING) && (get32(c + (is64 ? 16 : 12)) >> k & 1);

	/* With several vectors the function puts the vector number in the low data bits. */
	data = (data & ~(nvec - 1)) | k;
	return (struct msg){ !masked && msg_valid(addr), addr, data };
}

static void msi_sync(struct vfio_pci *p)
{
	irqs_resize(p, &p->msi, msi_count(p));
	for (unsigned k = 0; k < p->msi.active; k++)
		vector_sync(p, &p->msi, k, msi_msg(p, k));
}

static uint16_t msix_ctl(const struct vfio_pci *p)
{
	return get16(p->cfg.bytes + p->msix.cap + 2);
}

static bool msix_entry_masked(const struct vfio_pci *p, unsigned k)
{
	return get32(p->x.table + k * MSIX_ENTRY + MSIX_ENTRY_CTRL) & 1;
}

static struct msg msix_msg(const struct vfio_pci *p, unsigned k)
{
	const uint8_t *e = p->x.table + k * MSIX_ENTRY;
	uint16_t ctl = msix_ctl(p);
	uint64_t addr = get32(e) | (uint64_t)get32(e + 4) << 32;
	bool on = (ctl & MSIX_CTL_ENABLE) && !(ctl & MSIX_CTL_MASKALL) && !msix_entry_masked(p, k);

	return (struct msg){ on && msg_valid(addr), addr, get32(e + 8) };
}

/* Vectors VFIO needs: up to the last entry the guest unmasked; MSI-X never shrinks while on. */
static unsigned msix_needed(const struct vfio_pci *p)
{
	unsigned n = p->msix.active > 1 ? p->msix.active : 1;

	if (!(msix_ctl(p) & MSIX_CTL_ENABLE))
		return 0;
	for (unsigned k = n; k < p->msix.max; k++)
		if (!msix_entry_masked(p, k))
			n = k + 1;
	return n;
}

static void msix_sync(struct vfio_pci *p)
{
	irqs_resize(p, &p->msix, msix_needed(p));
	for (unsigned k = 0; k < p->msix.active; k++)
		vector_sync(p, &p->msix, k, msix_msg(p, k));
}

static void msix_entry_written(struct vfio_pci *p, unsigned k)
{
	if (k < p->msix.active)
		vector_sync(p, &p->msix, k, msix_msg(p, k));
	else if ((msix_ctl(p) & MSIX_CTL_ENABLE) && !msix_entry_masked(p, k))
		msix_sync(p);
}

static void table_write(struct vfio_pci *p, uint64_t off, const uint8_t *data, uint32_t len)
{
	for (uint32_t i = 0; i < len; i++) {
		uint64_t at = off + i;
		unsigned field = (unsigned)(at % MSIX_ENTRY);
		uint8_t v = data[i];
		/* Vector control: only the mask bit is writable. */
		if (field >= MSIX_ENTRY_CTRL)
			v = field == MSIX_ENTRY_CTRL ? (v & 1) : 0;
		p->x.table[at] = v;
	}
	for (uint64_t k = off / MSIX_ENTRY; k <= (off + len - 1) / MSIX_ENTRY; k++)
		msix_entry_written(p, (unsigned)k);
}

static struct vfio_pci_vector *vectors_new(unsigned n)
{
	struct vfio_pci_vector *v = calloc(n, sizeof(*v));

	for (unsigned k = 0; v && k < n; k++)
		v[k].fd = v[k].route = -1;
	return v;
}

/* --- Capabilities ------------------------------------------------------------------------ */

/* MSI, emulated: 0 keeps it in the list. */
static int msi_setup(struct vfio_pci *p, unsigned at)
{
	uint8_t *c = p->cfg.bytes, *w = p->cfg.wmask;
	uint16_t ctl = get16(c + at + 2);
	bool is64 = ctl & MSI_CTL_64, masking = ctl & MSI_CTL_MASKING;
	unsigned len = (is64 ? 14 : 10) + (masking ? 10 : 0), mmc = (ctl >> 1) & 7, data;

	if (p->msi.cap || at + len > PCI_CONFIG_SIZE)
		return 1;
	p->msi.max = 1u << (mmc > 5 ? 5 : mmc);
	if (p->dev->irq_count[VFIO_PCI_MSI_IRQ_INDEX] < p->msi.max)
		p->msi.max = p->dev->irq_count[VFIO_PCI_MSI_IRQ_INDEX];
	if (!p->msi.max)
		return 1; /* VFIO offers no MSI: hidden */
	p->msi.v = vectors_new(MSI_MAX_VECTORS);
	if (!p->msi.v)
		return -ENOMEM;
	p->msi.cap = at;
	p->msi.len = len;
	/* Off, no message: the guest programs it; the device's own MSI is VFIO's business. */
	put16(c + at + 2, ctl & ~(MSI_CTL_ENABLE | MSI_CTL_MME | MSI_CTL_EXT));
	memset(c + at + 4, 0, len - 4);
	put16(w + at + 2, MSI_CTL_ENABLE | MSI_CTL_MME);
	put32(w + at + 4, 0xfffffffc);
	if (is64)
		put32(w + at + 8, 0xffffffff);
	data = at + (is64 ? 12 : 8);
	put16(w + data, 0xffff);
	if (masking)
		put32(w + data + 4, p->msi.max == 32 ? 0xffffffff : (1u << p->msi.max) - 1);
	return 0;
}

static bool msix_fits(const struct vfio_pci *p, unsigned bar, uint64_t off, uint64_t len)
{
	return bar < PCI_BARS && p->bars[bar].size && off <= p->bars[bar].size &&
	       len <= p->bars[bar].size - off;
}

/* MSI-X, emulated over a trapped table and PBA: 0 keeps it, 1 hides it, -errno fails. */
static int msix_setup(struct vfio_pci *p, unsigned at)
{
	uint8_t *c = p->cfg.bytes;
	uint16_t ctl;
	unsigned n;
	uint32_t t, pba;

	if (p->msix.cap || at + 12 > PCI_CONFIG_SIZE)
		return 1;
	ctl = get16(c + at + 2);
	n = (ctl & 0x7ffu) + 1;
	t = get32(c + at + 4);
	pba = get32(c + at + 8);
	if (p->dev->irq_count[VFIO_PCI_MSIX_IRQ_INDEX] < n)
		n = p->dev->irq_count[VFIO_PCI_MSIX_IRQ_INDEX]; /* VFIO's word on what works */
	if (!n)
		return 1;
	/*
	 * No more vectors than the VM can route: a guest unmasking entry 2047 would otherwise
	 * make flint open as many eventfds and host vectors. The guest sees the smaller table.
	 */
	if (n > VFIO_PCI_MAX_VECTORS)
		n = VFIO_PCI_MAX_VECTORS;
	put16(c + at + 2, (uint16_t)((ctl & ~0x7ffu) | (n - 1)));
	p->x = (struct vfio_pci_msix){ t & 7, pba & 7, t & ~7u, pba & ~7u, NULL };
	if (!msix_fits(p, p->x.table_bar, p->x.table_off, (uint64_t)n * MSIX_ENTRY) ||
	    !msix_fits(p, p->x.pba_bar, p->x.pba_off, (n + 63) / 64 * 8)) {
		log_warn("%s: MSI-X table or PBA outside its BAR: MSI-X hidden from the guest",
		         node(p));
		return 1;
	}
	p->msix.v = vectors_new(n);
	p->x.table = calloc(n, MSIX_ENTRY);
	if (!p->msix.v || !p->x.table)
		return -ENOMEM;
	for (unsigned k = 0; k < n; k++)
		p->x.table[k * MSIX_ENTRY + MSIX_ENTRY_CTRL] = 1; /* masked, as after reset */
	p->msix.cap = at;
	p->msix.len = 12;
	p->msix.max = n;
	put16(c + at + 2,
	      (uint16_t)((ctl & ~(MSIX_CTL_ENABLE | MSIX_CTL_MASKALL | 0x7ffu)) | (n - 1)));
	put16(p->cfg.wmask + at + 2, MSIX_CTL_ENABLE | MSIX_CTL_MASKALL);
	return 0;
}

/* The PCIe capability, read-only and read from the device (link status changes). */
static int exp_setup(struct vfio_pci *p, unsigned at)
{
	unsigned len = (p->cfg.bytes[at + 2] & 0xf) >= 2 ? 0x3c : 0x24;

	if (len > PCI_CONFIG_SIZE - at)
		len = PCI_CONFIG_SIZE - at;
	memset(p->live + at + 2, 1, len - 2); /* not the ID and next pointer */
	return 0;
}

static int cap_setup(struct vfio_pci *p, unsigned at)
{
	switch (p->cfg.bytes[at]) {
	case CAP_ID_MSI:
		return msi_setup(p, at);
	case CAP_ID_MSIX:
		return msix_setup(p, at);
	case CAP_ID_EXP:
		return exp_setup(p, at);
	default:
		return 1; /* power management, vendor-specific, ...: flint offers none */
	}
}

/* Walks the device's list and links only what flint supports; the rest is unlinked. */
static int caps_setup(struct vfio_pci *p)
{
	uint8_t *c = p->cfg.bytes;
	unsigned keep[CAP_HOPS], n = 0;
	unsigned at =
	        (get16(c + PCI_STATUS) & PCI_STATUS_CAP_LIST) ? c[PCI_CAPABILITY_LIST] & 0xfc : 0;

	for (unsigned hops = 0; at >= CAP_FIRST && hops < CAP_HOPS; hops++) {
		unsigned next = c[at + 1] & 0xfc;
		int r = cap_setup(p, at);
		if (r < 0) {
			log_error("%s: capability at %#x: %s", node(p), at, strerror(-r));
			return r;
		}
		if (r == 0)
			keep[n++] = at;
		at = next;
	}
	for (unsigned k = 0; k < n; k++)
		c[keep[k] + 1] = (uint8_t)(k + 1 < n ? keep[k + 1] : 0);
	c[PCI_CAPABILITY_LIST] = (uint8_t)(n ? keep[0] : 0);
	put16(c + PCI_STATUS, n ? PCI_STATUS_CAP_LIST : 0);
	return 0;
}

/* --- Config space -------------------------------------------------------------------------- */

/* The header as flint presents it: one function, no ROM, no INTx, BARs where flint put them. */
static void header_setup(struct vfio_pci *p)
{
	uint8_t *c = p->cfg.bytes, *w = p->cfg.wmask;

	put16(c + PCI_COMMAND, COMMAND_INTX_DISABLE);
	put16(w + PCI_COMMAND, COMMAND_DECODE);
	w[0x0c] = w[0x0d] = 0xff; /* cache line size, latency timer: scratch */
	c[PCI_HEADER_TYPE] &= 0x7f;
	c[PCI_HEADER_TYPE + 1] = 0; /* BIST */
	put32(c + ROM_BAR, 0);
	c[PCI_INTERRUPT_LINE] = 0;
	w[PCI_INTERRUPT_LINE] = 0xff;
	c[PCI_INTERRUPT_PIN] = 0;
	bar_regs_to_shadow(p);
}

/* The device's command register: flint's decode bits, INTx always off. */
static void device_command(struct vfio_pci *p, uint16_t cmd)
{
	uint16_t d;

	if (p->io->config_read(p->dev, PCI_COMMAND, &d, 2)) {
		warn_rl(p, "%s: cannot read the command register", node(p));
		return;
	}
	d = (uint16_t)((d & ~(COMMAND_DECODE | PCI_COMMAND_IO)) | (cmd & COMMAND_DECODE) |
	               COMMAND_INTX_DISABLE);
	if (p->io->config_write(p->dev, PCI_COMMAND, &d, 2))
		warn_rl(p, "%s: cannot write the command register", node(p));
}

static uint16_t status_read(struct vfio_pci *p)
{
	uint16_t d = 0;

	if (p->io->config_read(p->dev, PCI_STATUS, &d, 2))
		warn_rl(p, "%s: cannot read the status register", node(p));
	d &= (uint16_t) ~(PCI_STATUS_CAP_LIST | STATUS_INTX);
	return d | (get16(p->cfg.bytes + PCI_STATUS) & PCI_STATUS_CAP_LIST);
}

static uint32_t config_read(struct pci_func *f, uint32_t off, uint32_t len)
{
	struct vfio_pci *p = of(f);
	uint32_t v = pci_config_read(&p->cfg, off, len), d = 0;
	bool live = false;

	if (overlaps(off, len, PCI_STATUS, 2))
		v = merge(v, off, len, PCI_STATUS, 2, status_read(p));
	for (uint32_t i = 0; i < len; i++)
		live |= p->live[off + i];
	if (live && p->io->config_read(p->dev, off, &d, len) == 0)
		for (uint32_t i = 0; i < len; i++)
			if (p->live[off + i])
				v = merge(v, off, len, off + i, 1, d >> (8 * i));
	return v;
}

static void status_written(struct vfio_pci *p, uint16_t v)
{
	v &= STATUS_RW1C;
	if (v && p->io->config_write(p->dev, PCI_STATUS, &v, 2))
		warn_rl(p, "%s: cannot write the status register", node(p));
}

static void config_write(struct pci_func *f, uint32_t off, uint32_t len, uint32_t val)
{
	struct vfio_pci *p = of(f);
	uint16_t old = get16(p->cfg.bytes + PCI_COMMAND), cmd;

	pci_config_write(&p->cfg, off, len, val); /* the bits the guest may write */
	cmd = get16(p->cfg.bytes + PCI_COMMAND);
	if ((cmd ^ old) & COMMAND_DECODE) {
		device_command(p, cmd);
		set_decoding(p, cmd & PCI_COMMAND_MEMORY);
	}
	if (overlaps(off, len, PCI_STATUS, 2))
		status_written(p, (uint16_t)merge(0, PCI_STATUS, 2, off, len, val));
	for (unsigned i = 0; i < PCI_BARS; i++)
		if (overlaps(off, len, PCI_BAR0 + 4 * i, 4))
			bar_written(p, i, off, len, val);
	if (p->msi.cap && overlaps(off, len, p->msi.cap, p->msi.len))
		msi_sync(p);
	if (p->msix.cap && overlaps(off, len, p->msix.cap + 2, 2))
		msix_sync(p);
}

/* --- Trapped BARs ------------------------------------------------------------------------- */

static bool in_bar(const struct vfio_pci *p, unsigned bar, uint64_t off, uint32_t len)
{
	return bar < PCI_BARS && p->bars[bar].size && len && len <= 8 && off <= p->bars[bar].size &&
	       len <= p->bars[bar].size - off;
}

/* 1 inside [start, start + size) of BAR @rbar, 0 outside, -1 straddling its edge. */
static int within(unsigned bar, uint64_t off, uint32_t len, unsigned rbar, uint64_t start,
                  uint64_t size)
{
	if (bar != rbar || off + len <= start || off >= start + size)
		return 0;
	return off >= start && off + len <= start + size ? 1 : -1;
}

static int table_hit(const struct vfio_pci *p, unsigned bar, uint64_t off, uint32_t len)
{
	if (!p->msix.cap)
		return 0;
	return within(bar, off, len, p->x.table_bar, p->x.table_off,
	              (uint64_t)p->msix.max * MSIX_ENTRY);
}

static int pba_hit(const struct vfio_pci *p, unsigned bar, uint64_t off, uint32_t len)
{
	if (!p->msix.cap)
		return 0;
	return within(bar, off, len, p->x.pba_bar, p->x.pba_off, (p->msix.max + 63) / 64 * 8);
}

static void bar_read(struct pci_func *f, unsigned bar, uint64_t off, uint8_t *data, uint32_t len)
{
	struct vfio_pci *p = of(f);
	int t;

	memset(data, 0xff, len);
	if (!in_bar(p, bar, off, len))
		return;
	t = table_hit(p, bar, off, len);
	if (t > 0)
		memcpy(data, p->x.table + (off - p->x.table_off), len);
	else if (t < 0)
		warn_rl(p, "%s: guest read across the MSI-X table's edge ignored", node(p));
	else if (p->io->region_read(p->dev, bar, off, data, len))
		memset(data, 0xff, len); /* the PBA too: the device's pending bits */
}

static void bar_write(struct pci_func *f, unsigned bar, uint64_t off, const uint8_t *data,
                      uint32_t len)
{
	struct vfio_pci *p = of(f);
	int t;

	if (!in_bar(p, bar, off, len))
		return;
	t = table_hit(p, bar, off, len);
	if (t > 0)
		table_write(p, off - p->x.table_off, data, len);
	else if (t < 0 || pba_hit(p, bar, off, len))
		warn_rl(p, "%s: guest write to the MSI-X table's edge or PBA ignored", node(p));
	else if (p->io->region_write(p->dev, bar, off, data, len))
		warn_rl(p, "%s: BAR%u write at %#llx failed", node(p), bar,
		        (unsigned long long)off);
}

static const struct pci_func_ops vfio_pci_ops = { config_read, config_write, bar_read, bar_write };

/* --- Life cycle -------------------------------------------------------------------------- */

static void release(struct vfio_pci *p)
{
	irqs_resize(p, &p->msix, 0);
	irqs_resize(p, &p->msi, 0);
	for (unsigned i = 0; i < PCI_BARS; i++) {
		unplace(p, i);
		if (p->bars[i].hva)
			munmap(p->bars[i].hva, p->bars[i].size);
		p->bars[i].hva = NULL;
	}
	free(p->msi.v);
	free(p->msix.v);
	free(p->x.table);
	p->msi.v = p->msix.v = NULL;
	p->x.table = NULL;
}

static int config_setup(struct vfio_pci *p)
{
	uint8_t *c = p->cfg.bytes;
	int r = p->io->config_read(p->dev, 0, c, PCI_CONFIG_SIZE);

	if (r) {
		log_error("%s: cannot read its config space: %s", node(p), strerror(-r));
		return r;
	}
	if (get16(c + PCI_VENDOR_ID) == 0xffff) {
		log_error("%s: the device does not answer config reads", node(p));
		return -ENODEV;
	}
	if (c[PCI_HEADER_TYPE] & 0x7f) {
		log_error("%s: header type %#x (a bridge?): flint assigns endpoints only", node(p),
		          c[PCI_HEADER_TYPE]);
		return -ENOTSUP;
	}
	r = bars_setup(p);
	if (!r)
		r = caps_setup(p);
	if (r)
		return r;
	for (unsigned i = 0; i < PCI_BARS; i++)
		bar_pieces(p, i);
	header_setup(p);
	return 0;
}

static void reset(struct vfio_pci *p)
{
	int r = p->io->reset(p->dev);

	if (r)
		log_info("%s: no device reset (%s): it keeps the state it is in", node(p),
		         strerror(-r));
}

int vfio_pci_init_io(struct vfio_pci *p, struct vfio_dev *dev, struct pci_bus *bus, int slot,
                     const struct vfio_pci_vm *vm, const struct vfio_pci_io *io)
{
	int r;

	*p = (struct vfio_pci){ .dev = dev, .io = io, .bus = bus, .vm = *vm, .slot = -1 };
	p->func.ops = &vfio_pci_ops;
	snprintf(p->func.name, sizeof(p->func.name), "%.40s", dev->node);
	p->page = (uint64_t)sysconf(_SC_PAGESIZE);
	p->rl = (struct log_ratelimit){ .burst = 10 };
	p->msi.index = VFIO_PCI_MSI_IRQ_INDEX;
	p->msix.index = VFIO_PCI_MSIX_IRQ_INDEX;
	reset(p);
	r = config_setup(p);
	if (!r) {
		device_command(p, 0); /* no decoding, no DMA until the guest's driver asks */
		r = pci_bus_add(bus, &p->func, slot);
		if (r < 0)
			log_error("%s: no room on the PCI bus (slot %d): %s", node(p), slot,
			          strerror(-r));
	}
	if (r < 0) {
		release(p);
		return r;
	}
	p->slot = r;
	log_info("%s: guest PCI 00:%02x.0", node(p), r);
	return 0;
}

int vfio_pci_init(struct vfio_pci *p, struct vfio_dev *dev, struct pci_bus *bus, int slot,
                  const struct vfio_pci_vm *vm)
{
	return vfio_pci_init_io(p, dev, bus, slot, vm, &vfio_pci_io_default);
}

void vfio_pci_destroy(struct vfio_pci *p)
{
	if (p->slot > 0) {
		pthread_mutex_lock(&p->bus->lock);
		if (p->bus->slots[p->slot] == &p->func)
			p->bus->slots[p->slot] = NULL;
		pthread_mutex_unlock(&p->bus->lock);
	}
	p->slot = -1;
	release(p);
	device_command(p, 0); /* stop its DMA before the IOAS goes, reset or not */
	reset(p);
}
