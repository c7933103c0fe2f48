#include "iommu/resolver.h"
#include "iommu/uapi_compat.h"
#include "vmm/log.h"
#include "vmm/loop.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ  22
#define MADV_POPULATE_WRITE 23
#endif

#define REC_SIZE        sizeof(struct iommu_hwpt_pgfault)
#define MAX_OPEN_GROUPS 4096 /* far above any device's page-request credits */
#define MAX_BATCH       4096 /* records; a group larger than this is refused */

/* A group whose LAST_PAGE record has not been read yet. */
struct open_group {
	uint32_t cookie;
	uint32_t dev_id;
	uint64_t addr;
	const char *why; /* first failure, NULL while every record resolved */
	long long t_ns;  /* when its first record was read */
};

struct resolver {
	int fd;
	const struct guest_memory *mem;
	const struct resolver_backend *backend;
	void *ctx;
	uint64_t chunk;
	unsigned batch;
	uint64_t *mapped[GUEST_MEMORY_MAX_REGIONS]; /* one bit per chunk of each region */
	uint32_t *devs;
	unsigned ndevs;
	struct open_group *open;
	unsigned nopen;
	uint8_t *buf; /* batch * REC_SIZE; a partial record may wait at its start */
	size_t partial;
	struct iommu_hwpt_page_response *resp;
	unsigned nresp;
	struct loop_watch *watch;
	struct log_ratelimit rl;
	struct resolver_stats stats;
};

static long long now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int alloc_buffers(struct resolver *r, unsigned batch)
{
	uint8_t *buf = realloc(r->buf, batch * REC_SIZE);
	struct iommu_hwpt_page_response *resp;

	if (!buf)
		return -ENOMEM;
	r->buf = buf;
	resp = realloc(r->resp, batch * sizeof(*resp));
	if (!resp)
		return -ENOMEM;
	r->resp = resp;
	r->batch = batch;
	return 0;
}

struct resolver *resolver_new(const struct resolver_params *p)
{
	struct resolver *r = calloc(1, sizeof(*r));
	uint64_t chunk = p->chunk ? p->chunk : 2ULL << 20;

	if (!r || chunk < 4096 || (chunk & (chunk - 1)))
		goto fail;
	r->fd = p->fault_fd;
	r->mem = p->mem;
	r->backend = p->backend;
	r->ctx = p->backend_ctx;
	r->chunk = chunk;
	for (unsigned i = 0; i < p->mem->nregions; i++) {
		uint64_t chunks = (p->mem->regions[i].size + chunk - 1) / chunk;
		r->mapped[i] = calloc((chunks + 63) / 64, sizeof(uint64_t));
		if (!r->mapped[i])
			goto fail;
	}
	r->open = calloc(MAX_OPEN_GROUPS, sizeof(*r->open));
	if (!r->open || alloc_buffers(r, p->batch ? p->batch : 64))
		goto fail;
	return r;
fail:
	resolver_free(r);
	return NULL;
}

int resolver_add_device(struct resolver *r, uint32_t dev_id)
{
	uint32_t *d = realloc(r->devs, (r->ndevs + 1) * sizeof(*d));

	if (!d)
		return -ENOMEM;
	r->devs = d;
	r->devs[r->ndevs++] = dev_id;
	return 0;
}

const struct resolver_stats *resolver_stats(const struct resolver *r)
{
	return &r->stats;
}

static int region_index(const struct resolver *r, const struct guest_region *g)
{
	return (int)(g - r->mem->regions);
}

bool resolver_is_mapped(const struct resolver *r, uint64_t gpa)
{
	const struct guest_region *g = guest_memory_region(r->mem, gpa);
	uint64_t i;

	if (!g)
		return false;
	i = (gpa - g->gpa) / r->chunk;
	return r->mapped[region_index(r, g)][i / 64] & (1ULL << (i % 64));
}

/* Maps one chunk of region @g. Returns NULL or why it failed. */
static const char *map_chunk(struct resolver *r, const struct guest_region *g, uint64_t i)
{
	uint64_t *word = &r->mapped[region_index(r, g)][i / 64], bit = 1ULL << (i % 64);
	uint64_t off = i * r->chunk, len = g->size - off < r->chunk ? g->size - off : r->chunk;
	int e;

	if (*word & bit)
		return NULL;
	/* IOAS_MAP pins the pages: have them exist first, in one call, not fault by fault. */
	if (madvise(g->hva + off, len, g->readonly ? MADV_POPULATE_READ : MADV_POPULATE_WRITE) &&
	    errno != EINVAL)
		return "host memory for the chunk could not be populated";
	e = r->backend->map(r->ctx, g->gpa + off, g->hva + off, len, !g->readonly);
	if (e && e != -EEXIST)
		return "mapping the chunk into the IOAS failed";
	*word |= bit;
	if (!e) {
		r->stats.chunks_mapped++;
		r->stats.bytes_mapped += len;
	}
	return NULL;
}

static bool known_device(const struct resolver *r, uint32_t dev_id)
{
	for (unsigned i = 0; i < r->ndevs; i++)
		if (r->devs[i] == dev_id)
			return true;
	return false;
}

/* Makes [addr, addr + length hint) DMA-able. Returns NULL or why not. */
static const char *resolve(struct resolver *r, const struct iommu_hwpt_pgfault *f)
{
	const struct guest_region *g;
	uint64_t first, last, end;

	if (f->flags & IOMMU_PGFAULT_FLAGS_PASID_VALID)
		return "PASID-tagged request on a page table without PASID support";
	if (!known_device(r, f->dev_id))
		return "request from a device flint did not attach";
	g = guest_memory_region(r->mem, f->addr);
	if (!g)
		return "address is not guest RAM";
	if ((f->perm & IOMMU_PGFAULT_PERM_WRITE) && g->readonly)
		return "write to read-only guest memory";
	/* The length hint grows the range; it never reaches past this RAM region. */
	end = f->addr - g->gpa + (f->length ? f->length : 1);
	if (end > g->size || end < f->addr - g->gpa)
		end = g->size;
	first = (f->addr - g->gpa) / r->chunk;
	last = (end - 1) / r->chunk;
	for (uint64_t i = first; i <= last; i++) {
		const char *why = map_chunk(r, g, i);
		if (why)
			return why;
	}
	return NULL;
}

static struct open_group *find_group(struct resolver *r, uint32_t cookie)
{
	for (unsigned i = 0; i < r->nopen; i++)
		if (r->open[i].cookie == cookie)
			return &r->open[i];
	return NULL;
}

static void answer(struct resolver *r, const struct open_group *g, long long now)
{
	long long us = (now - g->t_ns) / 1000;
	unsigned b = 0;

	while (b < RESOLVER_LAT_BUCKETS - 1 && us >= (1LL << b))
		b++;
	r->stats.latency_us[b]++;
	r->stats.groups++;
	if (g->why) {
		r->stats.invalid++;
		if (log_ratelimit_ok(&r->rl))
			log_warn("iommu: page request group %u from device %u at %#llx answered "
			         "INVALID: %s",
			         g->cookie, g->dev_id, (unsigned long long)g->addr, g->why);
	}
	r->resp[r->nresp++] =
	        (struct iommu_hwpt_page_response){ g->cookie, g->why ? IOMMUFD_PAGE_RESP_INVALID
		                                                     : IOMMUFD_PAGE_RESP_SUCCESS };
}

static void handle_record(struct resolver *r, const struct iommu_hwpt_pgfault *f, long long now)
{
	struct open_group *g = find_group(r, f->cookie), overflow;

	r->stats.faults++;
	if (!g && r->nopen < MAX_OPEN_GROUPS) {
		g = &r->open[r->nopen++];
		*g = (struct open_group){ f->cookie, f->dev_id, f->addr, NULL, now };
	} else if (!g) {
		/* Cannot track it: refuse now rather than leave the device waiting. */
		overflow = (struct open_group){ f->cookie, f->dev_id, f->addr,
			                        "too many open page request groups", now };
		answer(r, &overflow, now);
		return;
	}
	if (!g->why) {
		g->why = resolve(r, f);
		if (g->why)
			g->addr = f->addr, g->dev_id = f->dev_id;
	}
	if (f->flags & IOMMU_PGFAULT_FLAGS_LAST_PAGE) {
		answer(r, g, now);
		if (g != &r->open[--r->nopen]) /* keep the open groups packed */
			*g = r->open[r->nopen];
	}
}

/* Writes the queued responses; a refused one is logged and skipped, never retried. */
static int flush_responses(struct resolver *r)
{
	size_t done = 0, total = r->nresp * sizeof(r->resp[0]);

	while (done < total) {
		ssize_t n = write(r->fd, (uint8_t *)r->resp + done, total - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != EINVAL) {
			int e = errno;
			log_error("iommu: writing page responses to the fault fd: %s", strerror(e));
			r->nresp = 0;
			return -e;
		}
		if (n > 0) {
			done += (size_t)n;
			continue;
		}
		/* The kernel refused the response at `done` (unknown or repeated cookie). */
		r->stats.refused++;
		log_warn("iommu: kernel refused the response for group %u",
		         r->resp[done / sizeof(r->resp[0])].cookie);
		done += sizeof(r->resp[0]);
	}
	r->nresp = 0;
	return 0;
}

int resolver_process(struct resolver *r)
{
	int answered = 0;

	/* Bounded so one busy device cannot starve the rest of the loop. */
	for (int round = 0; round < 16; round++) {
		size_t want = r->batch * REC_SIZE - r->partial;
		ssize_t n = read(r->fd, r->buf + r->partial, want);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EINVAL && r->partial == 0 && r->batch < MAX_BATCH) {
			/* The next group is larger than the buffer: grow and read it whole. */
			if (alloc_buffers(r, r->batch * 2))
				return -ENOMEM;
			continue;
		}
		if (n < 0 && errno == EAGAIN)
			break;
		if (n < 0) {
			int e = errno;
			log_error("iommu: reading the fault fd: %s", strerror(e));
			return -e;
		}
		if (n == 0)
			break;
		long long now = now_ns();
		size_t total = r->partial + (size_t)n, nrec = total / REC_SIZE;
		for (size_t i = 0; i < nrec; i++) {
			struct iommu_hwpt_pgfault f;
			memcpy(&f, r->buf + i * REC_SIZE, REC_SIZE);
			handle_record(r, &f, now);
		}
		r->partial = total % REC_SIZE;
		memmove(r->buf, r->buf + nrec * REC_SIZE, r->partial);
		answered += (int)r->nresp;
		if (flush_responses(r))
			return -EIO;
		if ((size_t)n < want)
			break;
	}
	return answered;
}

static void on_fault_fd(int fd, int events, void *arg)
{
	(void)fd;
	(void)events;
	resolver_process(arg);
}

int resolver_attach(struct resolver *r, struct loop *loop)
{
	r->watch = loop_add_fd(loop, r->fd, LOOP_READ, on_fault_fd, r);
	return r->watch ? 0 : -ENOMEM;
}

void resolver_free(struct resolver *r)
{
	if (!r)
		return;
	if (r->open && r->resp) {
		long long now = now_ns();
		while (r->nopen) {
			struct open_group *g = &r->open[--r->nopen];
			if (!g->why)
				g->why = "flint is shutting down";
			answer(r, g, now);
			if (r->nresp == r->batch)
				flush_responses(r);
		}
		flush_responses(r);
	}
	loop_remove(r->watch);
	for (unsigned i = 0; i < GUEST_MEMORY_MAX_REGIONS; i++)
		free(r->mapped[i]);
	free(r->devs);
	free(r->open);
	free(r->buf);
	free(r->resp);
	free(r);
}
