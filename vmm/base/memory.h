/*
 * Guest RAM: one memfd (so the IOMMU layer can map it by fd and offset), mapped shared,
 * split into the regions of the guest physical layout. Every guest address flint touches
 * goes through guest_memory_hva(), which checks bounds and overflow.
 */
#ifndef FLINT_MEMORY_H
#define FLINT_MEMORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GUEST_MEMORY_MAX_REGIONS 2
/*
 * RAM stops at the hole the platform keeps for MMIO and goes on above it (on x86 the 32-bit
 * MMIO window, 3-4 GiB: vmm/x86/layout.h places its devices there).
 */
#define GUEST_MEMORY_HOLE_START 0xC0000000ULL
#define GUEST_MEMORY_HOLE_END   0x100000000ULL

enum guest_backing { GUEST_BACKING_4K, GUEST_BACKING_THP, GUEST_BACKING_HUGETLB_2M };

struct guest_region {
	uint64_t gpa;
	uint64_t size;
	uint8_t *hva;
	uint64_t fd_offset; /* offset of this region in the memfd */
	bool readonly;      /* the guest may not write it: never map it writable for DMA */
};

struct guest_memory {
	int fd;
	uint8_t *base;
	uint64_t size;
	enum guest_backing backing;
	struct guest_region regions[GUEST_MEMORY_MAX_REGIONS];
	unsigned nregions;
};

/*
 * Creates @size bytes of guest RAM (a multiple of 4 KiB; of 2 MiB for hugetlb) laid out
 * per layout.h. Returns -errno; on failure @m holds nothing to free.
 */
int guest_memory_init(struct guest_memory *m, uint64_t size, enum guest_backing backing);
void guest_memory_destroy(struct guest_memory *m);

/*
 * Host address of [gpa, gpa + len) when that range lies entirely inside one RAM region,
 * else NULL. len 0 asks only whether gpa itself is RAM.
 */
void *guest_memory_hva(const struct guest_memory *m, uint64_t gpa, uint64_t len);
/* The region that holds gpa, or NULL. */
const struct guest_region *guest_memory_region(const struct guest_memory *m, uint64_t gpa);
/* Copies to/from guest RAM; -EFAULT when the range is not wholly RAM. */
int guest_memory_write(const struct guest_memory *m, uint64_t gpa, const void *src, uint64_t len);
int guest_memory_read(const struct guest_memory *m, uint64_t gpa, void *dst, uint64_t len);
/* End of RAM below the MMIO hole (exclusive). */
uint64_t guest_memory_low_end(const struct guest_memory *m);

#endif
