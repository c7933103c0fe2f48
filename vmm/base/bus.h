/*
 * Address-range dispatch for port I/O and MMIO exits. Ranges are added before any
 * vCPU runs and never change after, so lookups need no lock; devices lock themselves.
 */
#ifndef FLINT_BUS_H
#define FLINT_BUS_H

#include <stdbool.h>
#include <stdint.h>

struct bus_ops {
	/* @offset is relative to the range base; @len is 1, 2, 4 or 8. */
	void (*read)(void *dev, uint64_t offset, uint8_t *data, uint32_t len);
	void (*write)(void *dev, uint64_t offset, const uint8_t *data, uint32_t len);
};

struct bus_range {
	uint64_t base;
	uint64_t len;
	const struct bus_ops *ops;
	void *dev;
	const char *name;
};

#define BUS_MAX_RANGES 64

struct bus {
	const char *kind; /* "port I/O" or "MMIO", for messages */
	struct bus_range ranges[BUS_MAX_RANGES];
	unsigned n;
};

void bus_init(struct bus *b, const char *kind);
/* -EEXIST when the range overlaps one already there, -ENOSPC when full, -EINVAL on len 0. */
int bus_add(struct bus *b, uint64_t base, uint64_t len, const struct bus_ops *ops, void *dev,
            const char *name);
/* false when no device covers [addr, addr + len): reads then see all-ones. */
bool bus_read(const struct bus *b, uint64_t addr, uint8_t *data, uint32_t len);
bool bus_write(const struct bus *b, uint64_t addr, const uint8_t *data, uint32_t len);

#endif
