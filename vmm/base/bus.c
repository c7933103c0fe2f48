#include "vmm/base/bus.h"

#include <errno.h>
#include <string.h>

void bus_init(struct bus *b, const char *kind)
{
	memset(b, 0, sizeof(*b));
	b->kind = kind;
}

int bus_add(struct bus *b, uint64_t base, uint64_t len, const struct bus_ops *ops, void *dev,
            const char *name)
{
	if (len == 0 || base + len < base)
		return -EINVAL;
	if (b->n == BUS_MAX_RANGES)
		return -ENOSPC;
	for (unsigned i = 0; i < b->n; i++) {
		const struct bus_range *r = &b->ranges[i];
		if (base < r->base + r->len && r->base < base + len)
			return -EEXIST;
	}
	b->ranges[b->n++] = (struct bus_range){ base, len, ops, dev, name };
	return 0;
}

static const struct bus_range *bus_find(const struct bus *b, uint64_t addr, uint32_t len)
{
	for (unsigned i = 0; i < b->n; i++) {
		const struct bus_range *r = &b->ranges[i];
		/* The whole access must fall inside one device. */
		if (addr >= r->base && addr - r->base < r->len && len <= r->len - (addr - r->base))
			return r;
	}
	return NULL;
}

bool bus_read(const struct bus *b, uint64_t addr, uint8_t *data, uint32_t len)
{
	const struct bus_range *r = bus_find(b, addr, len);

	if (!r || !r->ops->read) {
		memset(data, 0xff, len);
		return r != NULL;
	}
	r->ops->read(r->dev, addr - r->base, data, len);
	return true;
}

bool bus_write(const struct bus *b, uint64_t addr, const uint8_t *data, uint32_t len)
{
	const struct bus_range *r = bus_find(b, addr, len);

	if (r && r->ops->write)
		r->ops->write(r->dev, addr - r->base, data, len);
	return r != NULL;
}
