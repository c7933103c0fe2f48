#include "vmm/base/memory.h"

#include <errno.h>
#include <linux/memfd.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef MFD_HUGE_2MB
#define MFD_HUGE_2MB (21U << 26)
#endif

static int memfd_open(uint64_t size, enum guest_backing backing)
{
	unsigned flags = MFD_CLOEXEC;
	int fd;

	if (backing == GUEST_BACKING_HUGETLB_2M)
		flags |= MFD_HUGETLB | MFD_HUGE_2MB;
	fd = memfd_create("flint-guest-ram", flags);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)size) < 0) {
		int r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

static void layout_regions(struct guest_memory *m)
{
	uint64_t low = m->size < GUEST_MEMORY_HOLE_START ? m->size : GUEST_MEMORY_HOLE_START;

	m->regions[0] = (struct guest_region){ 0, low, m->base, 0, false };
	m->nregions = 1;
	if (m->size > low) {
		m->regions[1] = (struct guest_region){ GUEST_MEMORY_HOLE_END, m->size - low,
			                               m->base + low, low, false };
		m->nregions = 2;
	}
}

int guest_memory_init(struct guest_memory *m, uint64_t size, enum guest_backing backing)
{
	uint64_t align = backing == GUEST_BACKING_HUGETLB_2M ? 2ULL << 20 : 4096;
	void *p;
	int r;

	memset(m, 0, sizeof(*m));
	m->fd = -1;
	if (size == 0 || size % align || size > (UINT64_MAX >> 2))
		return -EINVAL;
	r = memfd_open(size, backing);
	if (r < 0)
		return r;
	m->fd = r;
	/*
	 * MAP_NORESERVE: RAM is committed as the guest touches it, not at start. Not for
	 * hugetlb: there the mmap must reserve the pages, or a missing huge page would be a
	 * SIGBUS at first touch instead of an error now.
	 */
	p = mmap(NULL, size, PROT_READ | PROT_WRITE,
	         MAP_SHARED | (backing == GUEST_BACKING_HUGETLB_2M ? 0 : MAP_NORESERVE), m->fd, 0);
	if (p == MAP_FAILED) {
		r = -errno;
		close(m->fd);
		m->fd = -1;
		return r;
	}
	/* Guest RAM is the guest's secret and can be GiBs: never part of a flint core dump. */
	if (madvise(p, size, MADV_DONTDUMP) < 0) {
		r = -errno;
		munmap(p, size);
		close(m->fd);
		m->fd = -1;
		return r;
	}
	m->base = p;
	m->size = size;
	m->backing = backing;
	if (backing == GUEST_BACKING_THP)
		madvise(p, size, MADV_HUGEPAGE); /* best effort: THP may be disabled for shmem */
	layout_regions(m);
	return 0;
}

void guest_memory_destroy(struct guest_memory *m)
{
	if (m->base)
		munmap(m->base, m->size);
	if (m->fd >= 0)
		close(m->fd);
	memset(m, 0, sizeof(*m));
	m->fd = -1;
}

const struct guest_region *guest_memory_region(const struct guest_memory *m, uint64_t gpa)
{
	for (unsigned i = 0; i < m->nregions; i++) {
		const struct guest_region *r = &m->regions[i];
		if (gpa >= r->gpa && gpa - r->gpa < r->size)
			return r;
	}
	return NULL;
}

void *guest_memory_hva(const struct guest_memory *m, uint64_t gpa, uint64_t len)
{
	const struct guest_region *r = guest_memory_region(m, gpa);

	/* Written as a subtraction so gpa + len can never wrap around. */
	if (!r || len > r->size - (gpa - r->gpa))
		return NULL;
	return r->hva + (gpa - r->gpa);
}

int guest_memory_write(const struct guest_memory *m, uint64_t gpa, const void *src, uint64_t len)
{
	void *dst = guest_memory_hva(m, gpa, len);

	if (!dst)
		return -EFAULT;
	memcpy(dst, src, len);
	return 0;
}

int guest_memory_read(const struct guest_memory *m, uint64_t gpa, void *dst, uint64_t len)
{
	const void *src = guest_memory_hva(m, gpa, len);

	if (!src)
		return -EFAULT;
	memcpy(dst, src, len);
	return 0;
}

uint64_t guest_memory_low_end(const struct guest_memory *m)
{
	return m->nregions ? m->regions[0].size : 0;
}
