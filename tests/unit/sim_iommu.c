#include "tests/unit/sim_iommu.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void sim_iommu_init(struct sim_iommu *s)
{
	memset(s, 0, sizeof(*s));
	pthread_mutex_init(&s->lock, NULL);
}

void sim_iommu_destroy(struct sim_iommu *s)
{
	free(s->maps);
	pthread_mutex_destroy(&s->lock);
}

static bool overlaps(uint64_t a, uint64_t alen, uint64_t lo, uint64_t hi)
{
	return a < hi && lo < a + alen;
}

/* Index of the first mapping that ends after @iova. */
static size_t lower_bound(const struct sim_iommu *s, uint64_t iova)
{
	size_t lo = 0, hi = s->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (s->maps[mid].iova + s->maps[mid].len <= iova)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int sim_map(void *ctx, uint64_t gpa, void *hva, uint64_t len, bool writable)
{
	struct sim_iommu *s = ctx;
	size_t i;
	int r = 0;

	pthread_mutex_lock(&s->lock);
	s->map_calls++;
	i = lower_bound(s, gpa);
	if (overlaps(gpa, len, s->fail_lo, s->fail_hi))
		r = -s->fail_errno;
	else if (overlaps(gpa, len, s->exist_lo, s->exist_hi) ||
		 (i < s->n && s->maps[i].iova < gpa + len))
		r = -EEXIST; /* like IOAS_MAP with FIXED_IOVA over an existing mapping */
	if (!r && s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 64;
		struct sim_map *m = realloc(s->maps, cap * sizeof(*m));
		if (!m)
			r = -ENOMEM;
		else
			s->maps = m, s->cap = cap;
	}
	if (!r) {
		memmove(&s->maps[i + 1], &s->maps[i], (s->n - i) * sizeof(*s->maps));
		s->maps[i] = (struct sim_map){gpa, len, hva, writable};
		s->n++;
	}
	pthread_mutex_unlock(&s->lock);
	return r;
}

const struct resolver_backend sim_iommu_backend = {sim_map};

uint8_t *sim_iommu_translate(struct sim_iommu *s, uint64_t iova, bool write)
{
	uint8_t *p = NULL;
	size_t i;

	pthread_mutex_lock(&s->lock);
	i = lower_bound(s, iova);
	if (i < s->n && s->maps[i].iova <= iova && (!write || s->maps[i].writable))
		p = s->maps[i].hva + (iova - s->maps[i].iova);
	pthread_mutex_unlock(&s->lock);
	return p;
}
