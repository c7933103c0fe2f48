#include "tests/unit/sim_iommu.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define REC  sizeof(struct iommu_hwpt_pgfault)
#define RESP sizeof(struct iommu_hwpt_page_response)

int sim_iommu_init(struct sim_iommu *s)
{
	memset(s, 0, sizeof(*s));
	pthread_mutex_init(&s->lock, NULL);
	s->tail = &s->head;
	s->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	return s->fd < 0 ? -errno : 0;
}

void sim_iommu_destroy(struct sim_iommu *s)
{
	while (s->head) {
		struct sim_group *g = s->head;
		s->head = g->next;
		free(g);
	}
	for (uint32_t i = 0; i < s->out_cap; i++)
		free(s->out[i]);
	free(s->out);
	free(s->resp);
	free(s->maps);
	if (s->fd >= 0)
		close(s->fd);
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

/* iommufd_ioas_map()'s checks of the range itself, before it looks at the IOAS. */
static int check_range(uint64_t iova, uintptr_t hva, uint64_t len)
{
	const uint64_t page = 4096;

	if (!len || (iova | hva | len) & (page - 1))
		return -EINVAL;
	if (iova + (len - 1) < iova || hva + (len - 1) < hva)
		return -EOVERFLOW;
	return 0;
}

/* Where the IOAS refuses [gpa, gpa + len): an injected failure, or an existing mapping. */
static int ioas_conflict(const struct sim_iommu *s, size_t i, uint64_t gpa, uint64_t len)
{
	if (overlaps(gpa, len, s->fail_lo, s->fail_hi))
		return -s->fail_errno;
	if (overlaps(gpa, len, s->exist_lo, s->exist_hi) ||
	    (i < s->n && s->maps[i].iova < gpa + len))
		return -EEXIST; /* like IOAS_MAP with FIXED_IOVA over an existing mapping */
	return 0;
}

static int sim_map(void *ctx, uint64_t gpa, void *hva, uint64_t len, bool writable)
{
	struct sim_iommu *s = ctx;
	size_t i;
	int r = check_range(gpa, (uintptr_t)hva, len);

	pthread_mutex_lock(&s->lock);
	s->map_calls++;
	i = lower_bound(s, gpa);
	if (!r)
		r = ioas_conflict(s, i, gpa, len);
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
		s->map_bytes += len;
		s->mapped += len;
		if (s->mapped > s->mapped_max)
			s->mapped_max = s->mapped;
	}
	pthread_mutex_unlock(&s->lock);
	return r;
}

/* iopt_unmap_iova(): whole mappings inside the range, in IOVA order, until one is not. */
static int unmap_locked(struct sim_iommu *s, uint64_t iova, uint64_t len)
{
	uint64_t last, done = 0;
	size_t i = lower_bound(s, iova);

	if (!len)
		return -EINVAL;
	if (iova + (len - 1) < iova)
		return -EOVERFLOW;
	last = iova + (len - 1);
	while (i < s->n && s->maps[i].iova <= last) {
		struct sim_map *m = &s->maps[i];
		if (m->iova < iova || m->iova + (m->len - 1) > last)
			return -ENOENT; /* it only overlaps the range: what came before stays done */
		done += m->len;
		s->mapped -= m->len;
		s->unmap_bytes += m->len;
		memmove(m, m + 1, (s->n - i - 1) * sizeof(*m));
		s->n--;
	}
	return done ? 0 : -ENOENT;
}

static int sim_unmap(void *ctx, uint64_t gpa, uint64_t len)
{
	struct sim_iommu *s = ctx;
	int r;

	pthread_mutex_lock(&s->lock);
	s->unmap_calls++;
	r = s->unmap_errno ? -s->unmap_errno : unmap_locked(s, gpa, len);
	pthread_mutex_unlock(&s->lock);
	return r;
}

static uint8_t *translate_locked(struct sim_iommu *s, uint64_t iova, bool write)
{
	size_t i = lower_bound(s, iova);

	if (i < s->n && s->maps[i].iova <= iova && (!write || s->maps[i].writable))
		return s->maps[i].hva + (iova - s->maps[i].iova);
	return NULL;
}

uint8_t *sim_iommu_translate(struct sim_iommu *s, uint64_t iova, bool write)
{
	uint8_t *p;

	pthread_mutex_lock(&s->lock);
	p = translate_locked(s, iova, write);
	pthread_mutex_unlock(&s->lock);
	return p;
}

/* The eventfd is readable exactly while undelivered groups exist, as the kernel's poll. */
static void update_fd(struct sim_iommu *s)
{
	uint64_t v = 1;
	bool want = s->head != NULL;

	if (want == s->fd_ready)
		return;
	if (want ? write(s->fd, &v, sizeof(v)) != sizeof(v) : read(s->fd, &v, sizeof(v)) != sizeof(v))
		abort(); /* a nonblocking eventfd at 0 or 1 cannot refuse either */
	s->fd_ready = want;
}

/* xa_alloc() with XA_FLAGS_ALLOC1: the lowest free cookie from 1. 0 when out of memory. */
static uint32_t alloc_cookie(struct sim_iommu *s, struct sim_group *g)
{
	uint32_t c = 1;

	while (c < s->out_cap && s->out[c])
		c++;
	if (c >= s->out_cap) {
		uint32_t cap = s->out_cap ? s->out_cap * 2 : 64;
		struct sim_group **o = realloc(s->out, cap * sizeof(*o));
		if (!o)
			return 0;
		memset(o + s->out_cap, 0, (cap - s->out_cap) * sizeof(*o));
		s->out = o;
		s->out_cap = cap;
	}
	s->out[c] = g;
	return c;
}

/* iommufd_fault_fops_read(). */
static ssize_t sim_read(void *ctx, int fd, void *buf, size_t count)
{
	struct sim_iommu *s = ctx;
	size_t done = 0;
	ssize_t rc = 0;

	if (fd != s->fd)
		return -EBADF;
	if (count % REC)
		return -ESPIPE;
	pthread_mutex_lock(&s->lock);
	s->reads++;
	while (s->head) {
		struct sim_group *g = s->head;
		uint32_t cookie;
		if (done >= count || (size_t)g->n * REC > count - done) {
			/* The first group does not fit: 7.3 says so, older kernels return 0. */
			if (done == 0) {
				s->nofit_reads++;
				rc = s->old_kernel ? 0 : -EINVAL;
			}
			break;
		}
		cookie = alloc_cookie(s, g);
		if (!cookie) {
			rc = -ENOMEM;
			break;
		}
		for (unsigned i = 0; i < g->n; i++) {
			g->rec[i].cookie = cookie;
			memcpy((uint8_t *)buf + done + i * REC, &g->rec[i], REC);
		}
		done += g->n * REC;
		s->head = g->next;
		if (!s->head)
			s->tail = &s->head;
	}
	update_fd(s);
	pthread_mutex_unlock(&s->lock);
	return done ? (ssize_t)done : rc;
}

/* Records of @g a retry would fault on again now (see sim_resp.holes). */
static unsigned holes(struct sim_iommu *s, const struct sim_group *g)
{
	unsigned n = 0;

	for (unsigned i = 0; i < g->n; i++) {
		const struct iommu_hwpt_pgfault *f = &g->rec[i];
		uint8_t *p = translate_locked(s, f->addr, f->perm & IOMMU_PGFAULT_PERM_WRITE);
		n += !p || (s->guest_base && p != s->guest_base + f->addr);
	}
	return n;
}

static void record_answer(struct sim_iommu *s, const struct sim_group *g, uint32_t cookie,
			  uint32_t code, bool by_kernel)
{
	if (s->nresp == s->resp_cap) {
		s->resp_cap = s->resp_cap ? s->resp_cap * 2 : 256;
		s->resp = realloc(s->resp, s->resp_cap * sizeof(*s->resp));
		if (!s->resp)
			abort();
	}
	s->resp[s->nresp++] = (struct sim_resp){.seq = g->seq,
						.cookie = cookie,
						.code = code,
						.map_calls = s->map_calls,
						.map_bytes = s->map_bytes,
						.unmap_calls = s->unmap_calls,
						.by_kernel = by_kernel,
						.holes = holes(s, g)};
	s->answered++;
}

/* The group sim_fault_preanswer() named, once delivered, is answered by the queue. */
static void preanswer(struct sim_iommu *s)
{
	for (uint32_t c = 1; s->preanswer && c < s->out_cap; c++) {
		struct sim_group *g = s->out[c];
		if (g && g->seq == s->preanswer) {
			s->out[c] = NULL;
			record_answer(s, g, c, IOMMUFD_PAGE_RESP_INVALID, true);
			free(g);
			s->preanswer = 0;
		}
	}
}

/* iommufd_fault_fops_write(). */
static ssize_t sim_write(void *ctx, int fd, const void *buf, size_t count)
{
	struct sim_iommu *s = ctx;
	size_t done = 0;
	ssize_t rc = 0;

	if (fd != s->fd)
		return -EBADF;
	if (count % RESP)
		return -ESPIPE;
	pthread_mutex_lock(&s->lock);
	s->writes++;
	preanswer(s);
	while (done < count) {
		struct iommu_hwpt_page_response r;
		struct sim_group *g;
		memcpy(&r, (const uint8_t *)buf + done, RESP);
		if (r.code != IOMMUFD_PAGE_RESP_SUCCESS && r.code != IOMMUFD_PAGE_RESP_INVALID) {
			rc = -EINVAL;
			break;
		}
		g = r.cookie < s->out_cap ? s->out[r.cookie] : NULL;
		if (!g) {
			rc = -EINVAL; /* unknown, or answered already */
			break;
		}
		s->out[r.cookie] = NULL;
		record_answer(s, g, r.cookie, r.code, false);
		free(g);
		done += RESP;
	}
	if (rc)
		s->refused++;
	pthread_mutex_unlock(&s->lock);
	return done ? (ssize_t)done : rc;
}

const struct resolver_backend sim_iommu_backend = {
	.map = sim_map, .read = sim_read, .write = sim_write, .unmap = sim_unmap};

uint64_t sim_fault_raise(struct sim_iommu *s, const struct iommu_hwpt_pgfault *recs, unsigned n)
{
	struct sim_group *g = n ? malloc(sizeof(*g) + n * REC) : NULL;
	uint64_t seq;

	if (!g)
		return 0;
	g->next = NULL;
	g->n = n;
	memcpy(g->rec, recs, n * REC);
	/* The IOPF layer completes a group at the request marked last, and only there. */
	for (unsigned i = 0; i < n; i++) {
		g->rec[i].flags &= ~(uint32_t)IOMMU_PGFAULT_FLAGS_LAST_PAGE;
		g->rec[i].cookie = 0;
	}
	g->rec[n - 1].flags |= IOMMU_PGFAULT_FLAGS_LAST_PAGE;
	pthread_mutex_lock(&s->lock);
	seq = g->seq = ++s->seq;
	*s->tail = g;
	s->tail = &g->next;
	update_fd(s);
	pthread_mutex_unlock(&s->lock);
	return seq;
}

size_t sim_fault_take(struct sim_iommu *s, struct sim_resp *out, size_t max)
{
	size_t n;

	pthread_mutex_lock(&s->lock);
	n = s->nresp < max ? s->nresp : max;
	if (n) {
		memcpy(out, s->resp, n * sizeof(*out));
		memmove(s->resp, s->resp + n, (s->nresp - n) * sizeof(*out));
		s->nresp -= n;
	}
	pthread_mutex_unlock(&s->lock);
	return n;
}

unsigned sim_fault_open(struct sim_iommu *s)
{
	unsigned n = 0;

	pthread_mutex_lock(&s->lock);
	for (struct sim_group *g = s->head; g; g = g->next)
		n++;
	for (uint32_t i = 1; i < s->out_cap; i++)
		n += s->out[i] != NULL;
	pthread_mutex_unlock(&s->lock);
	return n;
}

void sim_fault_preanswer(struct sim_iommu *s, uint64_t seq)
{
	pthread_mutex_lock(&s->lock);
	s->preanswer = seq;
	pthread_mutex_unlock(&s->lock);
}
