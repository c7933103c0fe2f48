/*
 * PCI bus 0 as a guest reaches it: mechanism #1 at 0xCF8/0xCFC (the host bridge, empty
 * slots, functions other than 0, misaligned accesses), the write mask of emulated config
 * space, BAR allocation, and the window that routes trapped BAR accesses.
 */
#include "devices/pci/pci.h"
#include "tests/lib/util.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#define ADDR(slot, fn, reg) (0x80000000u | (slot) << 11 | (fn) << 8 | (reg))

static void set_address(struct pci_bus *b, uint32_t a)
{
	pci_address_ops.write(b, 0, (const uint8_t *)&a, 4);
}

static uint32_t cfg_read(struct pci_bus *b, uint32_t a, uint32_t len)
{
	uint32_t v = 0;

	set_address(b, a & ~3u);
	pci_data_ops.read(b, a & 3, (uint8_t *)&v, len);
	return v;
}

static void test_host_bridge(void **state)
{
	struct pci_bus b;

	(void)state;
	pci_bus_init(&b, 0xe0000000, 0xfec00000);
	assert_int_equal(cfg_read(&b, ADDR(0, 0, 0), 4), 0x29c08086);
	assert_int_equal(cfg_read(&b, ADDR(0, 0, 0x0a), 2), 0x0600); /* class: host bridge */
	assert_int_equal(cfg_read(&b, ADDR(0, 0, 2), 2), 0x29c0);
	/* Read-only: a write changes nothing. */
	set_address(&b, ADDR(0, 0, 0));
	pci_data_ops.write(&b, 0, (const uint8_t *)"\0\0\0\0", 4);
	assert_int_equal(cfg_read(&b, ADDR(0, 0, 0), 4), 0x29c08086);
	pci_bus_destroy(&b);
}

static void test_nothing_there(void **state)
{
	struct pci_bus b;
	uint32_t v;

	(void)state;
	pci_bus_init(&b, 0xe0000000, 0xfec00000);
	assert_int_equal(cfg_read(&b, ADDR(5, 0, 0), 4), 0xffffffff);           /* empty slot */
	assert_int_equal(cfg_read(&b, ADDR(0, 3, 0), 4), 0xffffffff);           /* function 3 */
	assert_int_equal(cfg_read(&b, ADDR(0, 0, 0) | 1 << 16, 4), 0xffffffff); /* bus 1 */
	assert_int_equal(cfg_read(&b, ADDR(0, 0, 0) & ~0x80000000u, 4), 0xffffffff);
	assert_int_equal(cfg_read(&b, ADDR(0, 0, 1), 2), 0xffff); /* misaligned */
	/* The address register reads back what mechanism #1 keeps. */
	set_address(&b, 0xffffffff);
	pci_address_ops.read(&b, 0, (uint8_t *)&v, 4);
	assert_int_equal(v, 0x80fffffc);
	/* A byte at 0xCF9 (reset control) leaves the address alone. */
	pci_address_ops.write(&b, 1, (const uint8_t *)"\x06", 1);
	pci_address_ops.read(&b, 0, (uint8_t *)&v, 4);
	assert_int_equal(v, 0x80fffffc);
	pci_bus_destroy(&b);
}

static void test_config_write_mask(void **state)
{
	struct pci_config c = { 0 };

	(void)state;
	c.bytes[4] = 0x12;
	c.wmask[4] = 0x06; /* memory and bus master writable */
	pci_config_write(&c, 4, 2, 0xffff);
	assert_int_equal(pci_config_read(&c, 4, 2), 0x16);
	pci_config_write(&c, 4, 1, 0);
	assert_int_equal(pci_config_read(&c, 4, 1), 0x10);
	/* Past the end: nothing read or written beyond the 256 bytes. */
	pci_config_write(&c, 254, 4, 0xffffffff);
	assert_int_equal(pci_config_read(&c, 254, 4), 0);
}

static void test_bar_allocation(void **state)
{
	struct pci_bus b;

	(void)state;
	pci_bus_init(&b, 0xe0000000, 0xe0400000); /* 4 MiB */
	assert_int_equal(pci_bus_alloc_bar(&b, 0x1000, false), 0xe0000000);
	/* No window above RAM yet: a 64-bit BAR goes below 4 GiB. */
	assert_int_equal(pci_bus_alloc_bar(&b, 0x100000, true), 0xe0100000); /* aligned */
	assert_int_equal(pci_bus_alloc_bar(&b, 0x200000, false), 0xe0200000);
	assert_int_equal(pci_bus_alloc_bar(&b, 0x1000, false), 0); /* full */
	assert_int_equal(pci_bus_alloc_bar(&b, 3000, false), 0);   /* not a power of two */
	pci_bus_destroy(&b);
}

static void test_bar_window64(void **state)
{
	struct pci_bus b;

	(void)state;
	pci_bus_init(&b, 0xe0000000, 0xe0400000);
	pci_bus_set_window64(&b, 0x140000000ull, 0x1000000000ull); /* 5 GiB .. 64 GiB */
	/* 64-bit BARs above RAM, naturally aligned; 32-bit ones below 4 GiB. */
	assert_int_equal(pci_bus_alloc_bar(&b, 0x1000, true), 0x140000000ull);
	assert_int_equal(pci_bus_alloc_bar(&b, 1ull << 32, true), 0x200000000ull);
	assert_int_equal(pci_bus_alloc_bar(&b, 0x1000, false), 0xe0000000);
	/* Too large for the high window: a 64-bit BAR that fits below still gets a place. */
	assert_int_equal(pci_bus_alloc_bar(&b, 1ull << 36, true), 0);
	assert_int_equal(pci_bus_alloc_bar(&b, 1ull << 35, true), 0x800000000ull);
	/* The high window is full now: a small 64-bit BAR falls back below 4 GiB. */
	assert_int_equal(pci_bus_alloc_bar(&b, 1ull << 34, true), 0);
	assert_int_equal(pci_bus_alloc_bar(&b, 0x100000, true), 0xe0100000);
	pci_bus_destroy(&b);
}

struct fake {
	struct pci_func f;
	uint8_t bar[0x100];
	unsigned reads, writes;
};

static uint32_t fake_cfg_read(struct pci_func *f, uint32_t off, uint32_t len)
{
	(void)f, (void)len;
	return off == 0 ? 0x11e81234 : 0;
}

static void fake_cfg_write(struct pci_func *f, uint32_t off, uint32_t len, uint32_t v)
{
	(void)f, (void)off, (void)len, (void)v;
}

static void fake_bar_read(struct pci_func *f, unsigned bar, uint64_t off, uint8_t *d, uint32_t len)
{
	struct fake *x = (struct fake *)f;

	assert_int_equal(bar, 2);
	assert_true(off + len <= sizeof(x->bar));
	memcpy(d, x->bar + off, len);
	x->reads++;
}

static void fake_bar_write(struct pci_func *f, unsigned bar, uint64_t off, const uint8_t *d,
                           uint32_t len)
{
	struct fake *x = (struct fake *)f;

	assert_int_equal(bar, 2);
	assert_true(off + len <= sizeof(x->bar));
	memcpy(x->bar + off, d, len);
	x->writes++;
}

static const struct pci_func_ops fake_ops = { fake_cfg_read, fake_cfg_write, fake_bar_read,
	                                      fake_bar_write };

static void test_slots_and_window(void **state)
{
	struct pci_bus b;
	struct fake x = { .f = { .ops = &fake_ops, .name = "fake" } };
	uint32_t v = 0xdeadbeef;

	(void)state;
	pci_bus_init(&b, 0xe0000000, 0xfec00000);
	assert_int_equal(pci_bus_add(&b, &x.f, -1), 1);
	assert_int_equal(pci_bus_add(&b, &x.f, 1), -EEXIST);
	assert_int_equal(pci_bus_add(&b, &x.f, 0), -ENOSPC); /* the host bridge's */
	assert_int_equal(cfg_read(&b, ADDR(1, 0, 0), 4), 0x11e81234);
	x.f.traps[2] = (struct pci_bar_trap){ true, 0xe0001000, 0x100 };
	pci_window_ops.write(&b.win32, 0x1010, (const uint8_t *)&v, 4);
	assert_int_equal(x.writes, 1);
	assert_memory_equal(x.bar + 0x10, &v, 4);
	v = 0;
	pci_window_ops.read(&b.win32, 0x1010, (uint8_t *)&v, 4);
	assert_int_equal(v, 0xdeadbeef);
	/* Straddling the end of the BAR, or outside every BAR: all-ones, the device untouched. */
	pci_window_ops.read(&b.win32, 0x10fe, (uint8_t *)&v, 4);
	assert_int_equal(v, 0xffffffff);
	pci_window_ops.write(&b.win32, 0x2000, (const uint8_t *)&v, 4);
	assert_int_equal(x.writes, 1);
	assert_int_equal(x.reads, 1);
	pci_bus_destroy(&b);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_host_bridge),       cmocka_unit_test(test_nothing_there),
		cmocka_unit_test(test_config_write_mask), cmocka_unit_test(test_bar_allocation),
		cmocka_unit_test(test_bar_window64),      cmocka_unit_test(test_slots_and_window),
	};
	log_set_level(LOG_ERROR);
	return TEST_MAIN(tests, NULL, test_group_teardown);
}
