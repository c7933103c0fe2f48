/* PCI bus 0: configuration mechanism #1, the host bridge, the BAR window. */
#include "devices/pci/pci.h"

#include <errno.h>
#include <stddef.h>
#include <inttypes.h>
#include <string.h>

#define HOST_VENDOR 0x8086 /* what Linux's conf1 sanity check looks for, with the class */
#define HOST_DEVICE 0x29c0
#define CLASS_HOST_BRIDGE 0x060000

uint32_t pci_config_read(const struct pci_config *c, uint32_t off, uint32_t len)
{
	uint32_t v = 0;

	for (uint32_t i = 0; i < len && off + i < PCI_CONFIG_SIZE; i++)
		v |= (uint32_t)c->bytes[off + i] << (8 * i);
	return v;
}

void pci_config_write(struct pci_config *c, uint32_t off, uint32_t len, uint32_t value)
{
	for (uint32_t i = 0; i < len && off + i < PCI_CONFIG_SIZE; i++) {
		uint8_t m = c->wmask[off + i], b = (uint8_t)(value >> (8 * i));
		c->bytes[off + i] = (uint8_t)((c->bytes[off + i] & ~m) | (b & m));
	}
}

static void put16(struct pci_config *c, uint32_t off, uint16_t v)
{
	c->bytes[off] = (uint8_t)v;
	c->bytes[off + 1] = (uint8_t)(v >> 8);
}

static uint32_t host_read(struct pci_func *f, uint32_t off, uint32_t len)
{
	struct pci_bus *b = (struct pci_bus *)((uint8_t *)f - offsetof(struct pci_bus, host));

	return pci_config_read(&b->host_config, off, len);
}

static void host_write(struct pci_func *f, uint32_t off, uint32_t len, uint32_t value)
{
	(void)f, (void)off, (void)len, (void)value; /* every register of the bridge is read-only */
}

static const struct pci_func_ops host_ops = { host_read, host_write, NULL, NULL };

void pci_bus_init(struct pci_bus *b, uint64_t start32, uint64_t end32)
{
	memset(b, 0, sizeof(*b));
	pthread_mutex_init(&b->lock, NULL);
	b->win32 = (struct pci_window){ b, start32, end32, start32 };
	b->win64 = (struct pci_window){ .bus = b };
	b->rl = (struct log_ratelimit){ .burst = 10 };
	b->host = (struct pci_func){ .ops = &host_ops, .name = "PCI host bridge" };
	put16(&b->host_config, PCI_VENDOR_ID, HOST_VENDOR);
	put16(&b->host_config, PCI_VENDOR_ID + 2, HOST_DEVICE);
	/* Class code: programming interface, subclass, base class after the revision byte. */
	b->host_config.bytes[PCI_CLASS_REVISION + 1] = (uint8_t)CLASS_HOST_BRIDGE;
	b->host_config.bytes[PCI_CLASS_REVISION + 2] = (uint8_t)(CLASS_HOST_BRIDGE >> 8);
	b->host_config.bytes[PCI_CLASS_REVISION + 3] = (uint8_t)(CLASS_HOST_BRIDGE >> 16);
	b->slots[0] = &b->host;
}

void pci_bus_destroy(struct pci_bus *b)
{
	pthread_mutex_destroy(&b->lock);
}

int pci_bus_add(struct pci_bus *b, struct pci_func *f, int slot)
{
	if (slot < 0)
		for (slot = 1; slot < PCI_SLOTS && b->slots[slot]; slot++)
			;
	if (slot < 1 || slot >= PCI_SLOTS)
		return -ENOSPC;
	if (b->slots[slot])
		return -EEXIST;
	b->slots[slot] = f;
	return slot;
}

void pci_bus_set_window64(struct pci_bus *b, uint64_t start, uint64_t end)
{
	b->win64 = (struct pci_window){ b, start, end, start };
}

static uint64_t window_alloc(struct pci_window *w, uint64_t size)
{
	uint64_t at = (w->next + size - 1) & ~(size - 1);

	if (!w->end || at < w->next || at > w->end || size > w->end - at)
		return 0;
	w->next = at + size;
	return at;
}

uint64_t pci_bus_alloc_bar(struct pci_bus *b, uint64_t size, bool is64)
{
	uint64_t at = 0;

	if (!size || (size & (size - 1)))
		return 0;
	if (is64)
		at = window_alloc(&b->win64, size);
	return at ? at : window_alloc(&b->win32, size);
}

/* The function config address @a selects, or NULL: not enabled, another bus, no such. */
static struct pci_func *selected(const struct pci_bus *b, uint32_t a)
{
	unsigned bus = (a >> 16) & 0xff, slot = (a >> 11) & 0x1f, fn = (a >> 8) & 7;

	if (!(a & 0x80000000u) || bus || fn)
		return NULL;
	return b->slots[slot];
}

static void address_read(void *dev, uint64_t off, uint8_t *data, uint32_t len)
{
	struct pci_bus *b = dev;

	memset(data, 0xff, len);
	if (off || len != 4)
		return; /* 0xCF9 and friends: nothing here */
	pthread_mutex_lock(&b->lock);
	memcpy(data, &b->address, 4);
	pthread_mutex_unlock(&b->lock);
}

static void address_write(void *dev, uint64_t off, const uint8_t *data, uint32_t len)
{
	struct pci_bus *b = dev;

	if (off || len != 4)
		return; /* a byte at 0xCF9 (reset control) is not mechanism #1's */
	pthread_mutex_lock(&b->lock);
	memcpy(&b->address, data, 4);
	b->address &= 0x80fffffcu; /* reserved bits and the two low bits read as 0 */
	pthread_mutex_unlock(&b->lock);
}

static void data_read(void *dev, uint64_t off, uint8_t *data, uint32_t len)
{
	struct pci_bus *b = dev;
	struct pci_func *f;
	uint32_t reg, v = 0xffffffffu;

	pthread_mutex_lock(&b->lock);
	reg = (b->address & 0xfc) + (uint32_t)off;
	f = selected(b, b->address);
	if (f && len <= 4 && reg % len == 0)
		v = f->ops->config_read(f, reg, len);
	pthread_mutex_unlock(&b->lock);
	memcpy(data, &v, len > 4 ? 4 : len);
}

static void data_write(void *dev, uint64_t off, const uint8_t *data, uint32_t len)
{
	struct pci_bus *b = dev;
	struct pci_func *f;
	uint32_t reg, v = 0;

	if (len > 4)
		return;
	memcpy(&v, data, len);
	pthread_mutex_lock(&b->lock);
	reg = (b->address & 0xfc) + (uint32_t)off;
	f = selected(b, b->address);
	if (f && reg % len == 0)
		f->ops->config_write(f, reg, len, v);
	pthread_mutex_unlock(&b->lock);
}

const struct bus_ops pci_address_ops = { address_read, address_write };
const struct bus_ops pci_data_ops = { data_read, data_write };

/* The function and BAR whose trap holds @gpa; *off is the offset inside it. */
static struct pci_func *trap_at(struct pci_bus *b, uint64_t gpa, uint32_t len, unsigned *bar,
                                uint64_t *off)
{
	for (unsigned s = 1; s < PCI_SLOTS; s++) {
		struct pci_func *f = b->slots[s];
		for (unsigned i = 0; f && i < PCI_BARS; i++) {
			const struct pci_bar_trap *t = &f->traps[i];
			if (t->on && gpa >= t->gpa && gpa - t->gpa < t->size &&
			    len <= t->size - (gpa - t->gpa)) {
				*bar = i;
				*off = gpa - t->gpa;
				return f;
			}
		}
	}
	return NULL;
}

static void window_read(void *dev, uint64_t off, uint8_t *data, uint32_t len)
{
	struct pci_window *w = dev;
	struct pci_bus *b = w->bus;
	struct pci_func *f;
	uint64_t at;
	unsigned bar;

	memset(data, 0xff, len);
	pthread_mutex_lock(&b->lock);
	f = trap_at(b, w->start + off, len, &bar, &at);
	if (f && f->ops->bar_read)
		f->ops->bar_read(f, bar, at, data, len);
	else if (log_ratelimit_ok(&b->rl))
		log_warn("PCI: guest read of %u bytes at %#" PRIx64 ": no BAR there", len,
		         w->start + off);
	pthread_mutex_unlock(&b->lock);
}

static void window_write(void *dev, uint64_t off, const uint8_t *data, uint32_t len)
{
	struct pci_window *w = dev;
	struct pci_bus *b = w->bus;
	struct pci_func *f;
	uint64_t at;
	unsigned bar;

	pthread_mutex_lock(&b->lock);
	f = trap_at(b, w->start + off, len, &bar, &at);
	if (f && f->ops->bar_write)
		f->ops->bar_write(f, bar, at, data, len);
	else if (log_ratelimit_ok(&b->rl))
		log_warn("PCI: guest write of %u bytes at %#" PRIx64 ": no BAR there", len,
		         w->start + off);
	pthread_mutex_unlock(&b->lock);
}

const struct bus_ops pci_window_ops = { window_read, window_write };
