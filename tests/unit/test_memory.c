/* Guest memory: layout, and GPA->HVA translation at every edge. */
#include "tests/lib/util.h"
#include "vmm/x86/layout.h"
#include "vmm/base/memory.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

static void test_small_layout(void **state)
{
	struct guest_memory m;
	uint64_t size = MiB(16);

	(void)state;
	assert_int_equal(guest_memory_init(&m, size, GUEST_BACKING_4K), 0);
	assert_int_equal(m.nregions, 1);
	assert_int_equal(m.regions[0].gpa, 0);
	assert_int_equal(m.regions[0].size, size);
	assert_int_equal(guest_memory_low_end(&m), size);
	/* The memfd really has the size: the iommu layer maps by fd + offset. */
	struct stat st;
	assert_int_equal(fstat(m.fd, &st), 0);
	assert_int_equal(st.st_size, size);
	guest_memory_destroy(&m);
	assert_int_equal(m.fd, -1);
}

static void test_translation_edges(void **state)
{
	struct guest_memory m;
	uint64_t size = MiB(4);
	uint8_t *base;

	(void)state;
	assert_int_equal(guest_memory_init(&m, size, GUEST_BACKING_4K), 0);
	base = guest_memory_hva(&m, 0, 1);
	assert_non_null(base);
	/* Last byte, and the whole of RAM in one range. */
	assert_ptr_equal(guest_memory_hva(&m, size - 1, 1), base + size - 1);
	assert_ptr_equal(guest_memory_hva(&m, 0, size), base);
	/* One past the end, and a range that runs one byte over. */
	assert_null(guest_memory_hva(&m, size, 1));
	assert_null(guest_memory_hva(&m, size - 4, 5));
	assert_null(guest_memory_hva(&m, 0, size + 1));
	/* Wrap-around: gpa + len overflows 64 bits. */
	assert_null(guest_memory_hva(&m, 16, UINT64_MAX));
	assert_null(guest_memory_hva(&m, UINT64_MAX, 2));
	assert_null(guest_memory_hva(&m, UINT64_MAX - 1, 1));
	/* Zero length: valid inside RAM, not at or past the end. */
	assert_ptr_equal(guest_memory_hva(&m, 100, 0), base + 100);
	assert_null(guest_memory_hva(&m, size, 0));
	/* Copies obey the same checks. */
	uint32_t v = 0xdeadbeef, r = 0;
	assert_int_equal(guest_memory_write(&m, size - 4, &v, 4), 0);
	assert_int_equal(guest_memory_read(&m, size - 4, &r, 4), 0);
	assert_int_equal(r, v);
	assert_int_equal(guest_memory_write(&m, size - 3, &v, 4), -14);
	assert_int_equal(guest_memory_read(&m, UINT64_MAX - 2, &r, 4), -14);
	guest_memory_destroy(&m);
}

/* RAM larger than the space below the MMIO hole continues at 4 GiB. */
static void test_split_layout(void **state)
{
	struct guest_memory m;
	uint64_t size = GiB(3) + MiB(8);

	(void)state;
	assert_int_equal(guest_memory_init(&m, size, GUEST_BACKING_4K), 0);
	assert_int_equal(m.nregions, 2);
	assert_int_equal(m.regions[0].size, LAYOUT_MMIO32_START);
	assert_int_equal(m.regions[1].gpa, LAYOUT_HIGH_RAM_START);
	assert_int_equal(m.regions[1].size, MiB(8));
	assert_int_equal(m.regions[1].fd_offset, LAYOUT_MMIO32_START);
	/* The hole is not RAM; a range cannot span the hole. */
	assert_null(guest_memory_hva(&m, LAYOUT_MMIO32_START, 1));
	assert_null(guest_memory_hva(&m, LAYOUT_MMIO32_START - 1, 2));
	assert_null(guest_memory_hva(&m, LAYOUT_HIGH_RAM_START - 1, 1));
	uint8_t *hi = guest_memory_hva(&m, LAYOUT_HIGH_RAM_START, MiB(8));
	assert_ptr_equal(hi, m.base + LAYOUT_MMIO32_START);
	assert_null(guest_memory_hva(&m, LAYOUT_HIGH_RAM_START + MiB(8), 1));
	assert_non_null(guest_memory_region(&m, LAYOUT_HIGH_RAM_START + MiB(8) - 1));
	assert_null(guest_memory_region(&m, LAYOUT_HIGH_RAM_START + MiB(8)));
	/* Both views are one memfd: a write through the high region shows at its offset. */
	hi[0] = 0x5a;
	assert_int_equal(m.base[LAYOUT_MMIO32_START], 0x5a);
	guest_memory_destroy(&m);
}

static void test_bad_sizes(void **state)
{
	struct guest_memory m;

	(void)state;
	assert_int_equal(guest_memory_init(&m, 0, GUEST_BACKING_4K), -22);
	assert_int_equal(guest_memory_init(&m, 4095, GUEST_BACKING_4K), -22);
	assert_int_equal(guest_memory_init(&m, MiB(3), GUEST_BACKING_HUGETLB_2M), -22);
	assert_int_equal(m.fd, -1);
}

/* The VmFlags line of the mapping that starts at @p in /proc/self/smaps (empty if none). */
static void vm_flags(const void *p, char *out, size_t len)
{
	char line[512], start[32];
	FILE *f = fopen("/proc/self/smaps", "r");
	bool found = false;

	out[0] = 0;
	snprintf(start, sizeof(start), "%lx-", (unsigned long)(uintptr_t)p);
	while (f && fgets(line, sizeof(line), f)) {
		if (strncmp(line, start, strlen(start)) == 0)
			found = true;
		else if (found && strncmp(line, "VmFlags:", 8) == 0) {
			snprintf(out, len, "%s", line + 8);
			break;
		}
	}
	if (f)
		fclose(f);
}

/* Whether the guest RAM of @backing is mapped with VmFlags @flag (" hg", " dd"). */
static bool ram_has_flag(enum guest_backing backing, const char *flag)
{
	struct guest_memory m;
	char flags[512];

	assert_int_equal(guest_memory_init(&m, MiB(8), backing), 0);
	vm_flags(m.base, flags, sizeof(flags));
	memset(m.base, 1, MiB(8)); /* usable, whatever the kernel made of the advice */
	guest_memory_destroy(&m);
	return strstr(flags, flag) != NULL;
}

/*
 * THP asks the kernel for huge pages (VmFlags "hg"); whether it gives them depends on
 * /sys/kernel/mm/transparent_hugepage/shmem_enabled, so that is not asserted. 4K does not.
 */
static void test_thp(void **state)
{
	(void)state;
	assert_true(ram_has_flag(GUEST_BACKING_THP, " hg"));
	assert_false(ram_has_flag(GUEST_BACKING_4K, " hg"));
}

/* Guest RAM stays out of core dumps (VmFlags "dd"), whatever backs it. */
static void test_not_in_core_dumps(void **state)
{
	(void)state;
	assert_true(ram_has_flag(GUEST_BACKING_4K, " dd"));
	assert_true(ram_has_flag(GUEST_BACKING_THP, " dd"));
}

static long read_long(const char *path)
{
	FILE *f = fopen(path, "r");
	long v = -1;

	if (f && fscanf(f, "%ld", &v) != 1)
		v = -1;
	if (f)
		fclose(f);
	return v;
}

static int write_long(const char *path, long v)
{
	FILE *f = fopen(path, "w");
	int r = f && fprintf(f, "%ld\n", v) > 0 ? 0 : -1;

	if (f && fclose(f) != 0)
		r = -1;
	return r;
}

#define NR_HUGE   "/proc/sys/vm/nr_hugepages"
#define FREE_HUGE "/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages"

/* hugetlb: too few huge pages is an error at creation, never a SIGBUS later. */
static void test_hugetlb(void **state)
{
	struct guest_memory m;
	long nr = read_long(NR_HUGE), free_pages = read_long(FREE_HUGE);

	(void)state;
	if (nr < 0 || free_pages < 0 || write_long(NR_HUGE, nr + 8) < 0)
		skip(); /* needs root and hugetlbfs: reported as skipped, not passed */
	if (read_long(FREE_HUGE) < free_pages + 8) {
		write_long(NR_HUGE, nr);
		skip(); /* the kernel could not find 16 MiB of contiguous memory */
	}
	free_pages = read_long(FREE_HUGE);
	/* One page more than there is. */
	assert_int_equal(guest_memory_init(&m, MiB(2) * (uint64_t)(free_pages + 1),
					   GUEST_BACKING_HUGETLB_2M), -ENOMEM);
	assert_int_equal(m.fd, -1);
	/* Exactly what there is: all of it reserved up front, usable at once. */
	assert_int_equal(guest_memory_init(&m, MiB(16), GUEST_BACKING_HUGETLB_2M), 0);
	assert_int_equal(read_long(FREE_HUGE), free_pages); /* reserved, not yet faulted */
	memset(m.base, 0x5a, MiB(16));
	assert_int_equal(m.base[MiB(16) - 1], 0x5a);
	guest_memory_destroy(&m);
	write_long(NR_HUGE, nr);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_small_layout), cmocka_unit_test(test_translation_edges),
		cmocka_unit_test(test_split_layout), cmocka_unit_test(test_bad_sizes),
		cmocka_unit_test(test_thp), cmocka_unit_test(test_not_in_core_dumps),
		cmocka_unit_test(test_hugetlb),
	};
	return TEST_MAIN(tests, NULL, NULL);
}
