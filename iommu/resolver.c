#include "iommu/resolver.h"
#include "vmm/base/clock.h"
#include "iommu/uapi_compat.h"
#include "vmm/base/log.h"
#include "vmm/base/loop.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>


#define REC_SIZE       sizeof(struct iommu_hwpt_pgfault)
#define PREFETCH_SLOTS 64  /* queued ranges; more are dropped (the device faults again) */
#define DRAIN_ROUNDS   16  /* reads at shutdown; the kernel answers whatever is left */
#define RESP_BATCH     64  /* answers written together at most */
#define BACKOFF_MIN_MS 10  /* after a read or write error, the fd rests this long... */
#define BACKOFF_MAX_MS 100 /* ...doubling while the errors go on, up to this */

/* Pieces [next, end) of region @region still to map after their fault was answered. */
struct prefetch {
	unsigned region;
	uint64_t next, end;
};

#define NIL UINT32_MAX /* no slot: a list's end */

enum slot_list { SLOT_NONE, SLOT_LRU, SLOT_INFLIGHT };

/*
 * The cap's bookkeeping for one unit, by unit number across the regions. A unit the
 * resolver mapped is on one of two lists, each in the order its units were last used:
 * the in-flight list while it holds an address of a group whose answer is not written
 * yet, else the LRU list, the only one units are unmapped from. A unit mapped on
 * speculation (a length hint's, or prefetch) is used by no answer: it goes straight to
 * the LRU list. Answers are written in the order their groups started, so in-flight
 * units leave their list from its head, as their answers go out: every step is O(1). A
 * unit someone else mapped (EEXIST) is on neither list: it is not the resolver's to
 * count or to unmap.
 */
struct slot {
	uint32_t prev, next;
	uint32_t serial; /* in flight: the last group that used it */
	uint8_t list;    /* enum slot_list */
	bool evicted;    /* unmapped by the cap, not mapped again since */
};

struct slot_list_ends {
	uint32_t head, tail; /* least and most recently used */
};

/* The cap, when there is one (resolver_params.max_mapped). */
struct cap {
	uint64_t max;  /* bytes */
	uint64_t held; /* bytes of the units on the two lists */
	struct slot *slots;
	uint32_t first[GUEST_MEMORY_MAX_REGIONS]; /* the slot of each region's unit 0 */
	struct slot_list_ends lru, inflight;
	struct log_ratelimit rl_unmap;
};

struct resolver {
	int fd;
	char name[64];
	const struct guest_memory *mem;
	const struct resolver_backend *backend;
	void *ctx;
	uint64_t chunk;
	uint64_t unit; /* the chunk, or RESOLVER_UNIT_MAX when the chunk is larger */
	uint64_t *mapped[GUEST_MEMORY_MAX_REGIONS]; /* one bit per unit of each region */
	uint32_t *devs;
	unsigned ndevs;
	/*
	 * Records read and not all resolved yet: [pos, nbuf) of buf, pos inside the group
	 * that ends at grp_end. They survive the turn that read them, so a big read is
	 * served over several turns, each record resolved once.
	 */
	struct iommu_hwpt_pgfault *buf;
	unsigned batch; /* records the buffer holds */
	unsigned nbuf, pos, grp_end;
	long long t_read; /* when buf was read */
	/* Answers not written yet, each with when its group was read. */
	struct iommu_hwpt_page_response resp[RESP_BATCH];
	long long resp_t[RESP_BATCH];
	uint32_t resp_serial[RESP_BATCH]; /* each answer's group */
	unsigned nresp;
	uint32_t serial;    /* the group at pos: groups are numbered as they start (it wraps) */
	uint64_t unflushed; /* bytes mapped for groups whose answers are not written yet */
	struct prefetch pf[PREFETCH_SLOTS]; /* a ring */
	unsigned pf_head, pf_n;
	struct loop *loop;
	struct loop_watch *watch, *pf_timer;
	struct loop_watch *more;  /* one-shot: records are left in the buffer */
	struct loop_watch *retry; /* one-shot: the fd rests after an error */
	unsigned backoff_ms;      /* the last rest; 0 once a turn goes without error */
	const char *err_what;     /* what failed, for the backoff's log line */
	bool closing;             /* resolver_free: answer INVALID, map nothing */
	bool dead;                /* gave the queue up: a group beyond RESOLVER_GROUP_MAX */
	struct log_ratelimit rl_invalid, rl_refused, rl_io, rl_prefetch;
	struct cap *cap; /* NULL: no cap */
	struct resolver_stats stats;
};

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

/* Room for @batch records; what the buffer holds is kept (it only grows). */
static int alloc_buffers(struct resolver *r, unsigned batch)
{
	struct iommu_hwpt_pgfault *buf = realloc(r->buf, batch * REC_SIZE);

	if (!buf)
		return -ENOMEM;
	r->buf = buf;
	r->batch = batch;
	return 0;
}

/* Units of region @g: the last one may be short. */
static uint64_t region_units(const struct resolver *r, const struct guest_region *g)
{
	return (g->size + r->unit - 1) / r->unit;
}

/* The cap's slots, one per unit of guest RAM, on no list yet. Returns 0 or -errno. */
static int cap_new(struct resolver *r, uint64_t max)
{
	uint64_t n = 0;

	/* Less than a chunk would refuse every request; the config never asks for it. */
	if (max < r->chunk || !r->backend->unmap) {
		log_error("iommu: %s: a cap of %llu KiB needs at least one %llu KiB chunk and a "
		          "backend that unmaps",
		          r->name, (unsigned long long)(max >> 10),
		          (unsigned long long)(r->chunk >> 10));
		return -EINVAL;
	}
	r->cap = calloc(1, sizeof(*r->cap));
	if (!r->cap)
		return -ENOMEM;
	for (unsigned i = 0; i < r->mem->nregions; i++) {
		r->cap->first[i] = (uint32_t)n;
		n += region_units(r, &r->mem->regions[i]);
	}
	/* Slot numbers are 32 bits: up to 16 TiB of 4 KiB chunks. */
	if (n >= NIL)
		return -E2BIG;
	r->cap->slots = calloc(n, sizeof(*r->cap->slots)); /* SLOT_NONE */
	if (!r->cap->slots)
		return -ENOMEM;
	r->cap->max = max;
	r->cap->lru = r->cap->inflight = (struct slot_list_ends){ NIL, NIL };
	return 0;
}

struct resolver *resolver_new(const struct resolver_params *p)
{
	struct resolver *r = calloc(1, sizeof(*r));
	uint64_t chunk = p->chunk ? p->chunk : 2ULL << 20;
	unsigned batch = p->batch ? p->batch : RESOLVER_GROUP_DEFAULT;

	if (!r || chunk < 4096 || (chunk & (chunk - 1)))
		goto fail;
	r->fd = p->fault_fd;
	snprintf(r->name, sizeof(r->name), "%s", p->name ? p->name : "fault queue");
	r->mem = p->mem;
	r->backend = p->backend;
	r->ctx = p->backend_ctx;
	r->chunk = chunk;
	r->unit = min_u64(chunk, RESOLVER_UNIT_MAX);
	for (unsigned i = 0; i < p->mem->nregions; i++) {
		r->mapped[i] =
		        calloc((region_units(r, &p->mem->regions[i]) + 63) / 64, sizeof(uint64_t));
		if (!r->mapped[i])
			goto fail;
	}
	/* Before the buffer: with one, resolver_free() answers what the fd holds. */
	if (p->max_mapped && cap_new(r, p->max_mapped))
		goto fail;
	if (alloc_buffers(r, batch > RESOLVER_GROUP_MAX ? RESOLVER_GROUP_MAX : batch))
		goto fail;
	return r;
fail:
	resolver_free(r);
	return NULL;
}

static bool known_device(const struct resolver *r, uint32_t dev_id)
{
	for (unsigned i = 0; i < r->ndevs; i++)
		if (r->devs[i] == dev_id)
			return true;
	return false;
}

int resolver_add_device(struct resolver *r, uint32_t dev_id, uint32_t max_group)
{
	uint32_t want = max_group ? max_group : RESOLVER_GROUP_DEFAULT;

	/* Read a device's largest group the first time, rather than fail a read and grow. */
	if (want > RESOLVER_GROUP_MAX)
		want = RESOLVER_GROUP_MAX;
	if (want > r->batch && alloc_buffers(r, want))
		return -ENOMEM;
	if (known_device(r, dev_id))
		return 0;
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

bool resolver_prefetching(const struct resolver *r)
{
	return r->pf_n != 0;
}

static unsigned region_index(const struct resolver *r, const struct guest_region *g)
{
	return (unsigned)(g - r->mem->regions);
}

static bool unit_mapped(const struct resolver *r, unsigned region, uint64_t i)
{
	return r->mapped[region][i / 64] & (1ULL << (i % 64));
}

bool resolver_is_mapped(const struct resolver *r, uint64_t gpa)
{
	const struct guest_region *g = guest_memory_region(r->mem, gpa);

	return g && unit_mapped(r, region_index(r, g), (gpa - g->gpa) / r->unit);
}

/* ---- the cap ---- */

static struct slot_list_ends *list_ends(struct cap *c, enum slot_list l)
{
	return l == SLOT_LRU ? &c->lru : &c->inflight;
}

/* Moves slot @i from its list (if any) to the most recent end of @to. */
static void slot_move(struct cap *c, uint32_t i, enum slot_list to)
{
	struct slot *s = &c->slots[i];
	struct slot_list_ends *l;

	if (s->list != SLOT_NONE) {
		l = list_ends(c, s->list);
		*(s->prev != NIL ? &c->slots[s->prev].next : &l->head) = s->next;
		*(s->next != NIL ? &c->slots[s->next].prev : &l->tail) = s->prev;
	}
	s->list = (uint8_t)to;
	if (to == SLOT_NONE)
		return;
	l = list_ends(c, to);
	s->prev = l->tail;
	s->next = NIL;
	*(l->tail != NIL ? &c->slots[l->tail].next : &l->head) = i;
	l->tail = i;
}

/* The slot of unit @i of region @g, NIL without a cap. */
static uint32_t slot_of(const struct resolver *r, const struct guest_region *g, uint64_t i)
{
	return r->cap ? r->cap->first[region_index(r, g)] + (uint32_t)i : NIL;
}

/*
 * The group being resolved has an address in unit @slot: in flight until its answer is
 * written.
 */
static void slot_use(struct resolver *r, uint32_t slot)
{
	r->cap->slots[slot].serial = r->serial;
	slot_move(r->cap, slot, SLOT_INFLIGHT);
}

/*
 * Answers are written in the order their groups started, so the groups not answered in
 * the kernel yet are those from the oldest queued answer on (or the group being
 * resolved, when none is queued): a unit one of them used last is in flight. Serials
 * wrap, and at most RESP_BATCH + 1 groups are open: the difference decides.
 */
static bool in_flight(const struct resolver *r, uint32_t serial)
{
	uint32_t oldest = r->nresp ? r->resp_serial[0] : r->serial;

	if (!r->nresp && r->pos == r->grp_end)
		return false; /* no group open */
	return (int32_t)(serial - oldest) >= 0;
}

/* Units whose answers are all written become the most recent of the LRU list. */
static void release(struct resolver *r)
{
	struct cap *c = r->cap;

	while (c->inflight.head != NIL && !in_flight(r, c->slots[c->inflight.head].serial))
		slot_move(c, c->inflight.head, SLOT_LRU);
}

/*
 * Unmaps unit @slot, the least recently used one no answer waits for. A failure, which
 * the kernel has no reason for (the range is exactly one mapping the resolver made),
 * leaves it mapped and last in line, so that the next try takes another one first.
 */
static int evict(struct resolver *r, uint32_t slot)
{
	struct cap *c = r->cap;
	unsigned k = r->mem->nregions - 1;

	while (k > 0 && slot < c->first[k])
		k--;
	const struct guest_region *g = &r->mem->regions[k];
	uint64_t i = slot - c->first[k], off = i * r->unit, len = min_u64(g->size - off, r->unit);
	int e = r->backend->unmap(r->ctx, g->gpa + off, len);

	if (e) {
		slot_move(c, slot, SLOT_LRU);
		if (log_ratelimit_ok(&c->rl_unmap))
			log_error("iommu: %s: unmapping guest memory at %#llx (%llu KiB) to stay "
			          "under the cap failed: %s",
			          r->name, (unsigned long long)(g->gpa + off),
			          (unsigned long long)(len >> 10), strerror(-e));
		return e;
	}
	slot_move(c, slot, SLOT_NONE);
	c->slots[slot].evicted = true;
	r->mapped[k][i / 64] &= ~(1ULL << (i % 64));
	c->held -= len;
	r->stats.chunks_unmapped++;
	r->stats.bytes_unmapped += len;
	return 0;
}

/*
 * Unmaps least recently used units until @len more bytes fit under the cap, for a unit
 * holding a request's address (nothing else unmaps). Returns 0; -EAGAIN when every unit
 * is in flight and some for answers queued but not written (they are released once
 * written); -E2BIG when all of them hold addresses of the group being resolved; or the
 * unmap's -errno.
 */
static int make_room(struct resolver *r, uint64_t len)
{
	struct cap *c = r->cap;

	while (c->held + len > c->max) {
		if (c->lru.head == NIL)
			return r->nresp ? -EAGAIN : -E2BIG;
		int e = evict(r, c->lru.head);
		if (e)
			return e;
	}
	return 0;
}

/*
 * Why a unit is mapped: what the answer waits for, or speculation. Only an address may
 * unmap other units, and only an address's unit is held in flight: speculation goes into
 * the room the cap has free, and onto the LRU list, where an address may take it back.
 */
enum need {
	NEED_ADDR,     /* holds the request's address: the answer waits for it */
	NEED_HINT,     /* holds the start of its length hint: only into free room */
	NEED_PREFETCH, /* the rest of the chunk, after the answer: also only into free room */
};

/*
 * map_unit()'s answers that are no failure. WAIT: the record waits until the queued
 * answers are written, which releases the units they hold. NO_ROOM: a unit the answer
 * does not wait for is left unmapped.
 */
static const char WAIT[] = "waiting for answers to be written";
static const char NO_ROOM[] = "no room under the cap";

/*
 * Room under the cap for @len more bytes, for a unit mapped for @need: NULL or why not.
 * Speculation only takes free room: unmapping for it would trade memory a device faulted
 * on (it never faults on what is mapped, so the LRU order is the order of mapping) for a
 * guess, and would count the guess as the more recent.
 */
static const char *cap_room(struct resolver *r, uint64_t len, enum need need)
{
	if (need != NEED_ADDR)
		return r->cap->held + len > r->cap->max ? NO_ROOM : NULL;

	int e = make_room(r, len);

	if (!e)
		return NULL;
	if (e == -EAGAIN)
		return WAIT;
	/*
	 * Everything mapped is held by this one group, whose answer waits for all of it: no
	 * answer can release any of it, so waiting would never end, and answering SUCCESS
	 * would leave a record unmapped. INVALID keeps both the cap and the one answer.
	 */
	if (e == -E2BIG)
		return "the group needs more guest memory mapped at once than the cap allows";
	return "unmapping guest memory to stay under the cap failed";
}

/* Accounts a unit the resolver has just mapped for @need, under the cap. */
static void cap_add(struct resolver *r, uint32_t slot, uint64_t len, enum need need)
{
	struct slot *s = &r->cap->slots[slot];

	r->cap->held += len;
	if (s->evicted && need == NEED_ADDR)
		r->stats.refaults++;
	s->evicted = false;
	if (need == NEED_ADDR)
		slot_use(r, slot);
	else
		slot_move(r->cap, slot, SLOT_LRU);
}

/* ---- mapping ---- */

/*
 * Maps unit @i of region @g (at most RESOLVER_UNIT_MAX). Returns NULL, or why not (WAIT
 * and NO_ROOM included). A request's address in a unit mapped already uses it again (in
 * flight, then the most recent); speculation leaves a mapped unit where it is.
 */
static const char *map_unit(struct resolver *r, const struct guest_region *g, uint64_t i,
                            enum need need)
{
	uint64_t *word = &r->mapped[region_index(r, g)][i / 64], bit = 1ULL << (i % 64);
	uint64_t off = i * r->unit, len = min_u64(g->size - off, r->unit);
	uint32_t slot = slot_of(r, g, i);
	const char *why;
	int e;

	if (*word & bit) {
		if (slot != NIL && need == NEED_ADDR && r->cap->slots[slot].list != SLOT_NONE)
			slot_use(r, slot);
		return NULL;
	}
	if (r->cap && (why = cap_room(r, len, need)))
		return why;
	/*
	 * No MADV_POPULATE first: IOAS_MAP's pinning faults absent pages in itself, as fast,
	 * and on present pages a populate is a second walk that costs more than the map
	 * (measured: make bench-fault-cold, bench/README.md).
	 */
	e = r->backend->map(r->ctx, g->gpa + off, g->hva + off, len, !g->readonly);
	if (e && e != -EEXIST)
		return "mapping the chunk into the IOAS failed";
	*word |= bit;
	if (!e) {
		r->stats.chunks_mapped++;
		r->stats.bytes_mapped += len;
		if (need == NEED_PREFETCH)
			r->stats.prefetched += len;
		else
			r->unflushed += len;
		if (slot != NIL)
			cap_add(r, slot, len, need);
	}
	return NULL;
}

static void prefetch_tick(void *arg);

/*
 * A one-shot zero-delay timer, armed again after each unit: one unit per loop turn,
 * between the loop's other events. (libevent never re-fires a persistent zero timeout.)
 * Also called after every turn of the fault fd, so a timer that could not be armed once
 * is tried again with the next page requests instead of leaving the queue stalled.
 */
static void prefetch_arm(struct resolver *r)
{
	if (!r->loop || r->pf_timer || !r->pf_n)
		return;
	r->pf_timer = loop_add_timer(r->loop, 0, false, prefetch_tick, r);
	if (!r->pf_timer && log_ratelimit_ok(&r->rl_prefetch))
		log_warn("iommu: %s: cannot arm the prefetch timer; trying again with the next "
		         "page requests",
		         r->name);
}

/* Queues units [lo, hi) of region @ri, merged with a queued range it touches. */
static void prefetch_add(struct resolver *r, unsigned ri, uint64_t lo, uint64_t hi)
{
	while (lo < hi && unit_mapped(r, ri, lo))
		lo++;
	while (hi > lo && unit_mapped(r, ri, hi - 1))
		hi--;
	if (lo == hi)
		return;
	for (unsigned k = 0; k < r->pf_n; k++) {
		struct prefetch *p = &r->pf[(r->pf_head + k) % PREFETCH_SLOTS];
		if (p->region == ri && lo <= p->end && p->next <= hi) {
			p->next = min_u64(p->next, lo);
			p->end = hi > p->end ? hi : p->end;
			prefetch_arm(r); /* the queue may have waited for a loop or a timer */
			return;
		}
	}
	if (r->pf_n == PREFETCH_SLOTS)
		return; /* best effort: an unmapped piece only costs the device another fault */
	r->pf[(r->pf_head + r->pf_n++) % PREFETCH_SLOTS] = (struct prefetch){ ri, lo, hi };
	prefetch_arm(r);
}

/* Maps the next unmapped unit of the oldest queued range. */
static void prefetch_step(struct resolver *r)
{
	struct prefetch *p = &r->pf[r->pf_head];
	const struct guest_region *g = &r->mem->regions[p->region];

	while (p->next < p->end && unit_mapped(r, p->region, p->next))
		p->next++;
	if (p->next < p->end) {
		const char *why = map_unit(r, g, p->next, NEED_PREFETCH);
		if (why == NO_ROOM)
			p->next = p->end; /* the cap is full: leave the rest to faults */
		else if (why && log_ratelimit_ok(&r->rl_prefetch))
			log_warn("iommu: %s: prefetching guest memory at %#llx: %s", r->name,
			         (unsigned long long)(g->gpa + p->next * r->unit), why);
		p->next++; /* a failed unit is left to the device's next fault there */
	}
	if (p->next >= p->end) {
		r->pf_head = (r->pf_head + 1) % PREFETCH_SLOTS;
		r->pf_n--;
	}
}

static void prefetch_tick(void *arg)
{
	struct resolver *r = arg;

	r->pf_timer = NULL; /* a one-shot watch is freed once it fires */
	if (r->pf_n)
		prefetch_step(r);
	prefetch_arm(r);
}

/*
 * Maps what request @f needs before it is answered: the unit(s) holding [addr, addr +
 * length hint), at most two. The rest of its chunk, grown to the hint and clipped to the
 * region, is prefetched later: a 1 GiB chunk is not populated and pinned on this thread
 * while the device (and every other fault behind it) waits.
 */
static const char *map_request(struct resolver *r, const struct guest_region *g,
                               const struct iommu_hwpt_pgfault *f)
{
	uint64_t off = f->addr - g->gpa, end = min_u64(off + (f->length ? f->length : 1), g->size);
	uint64_t now_end = min_u64(end, off + r->unit);
	unsigned ri = region_index(r, g);

	/*
	 * The hint's unit is no part of the answer: mapped only into free room under the cap,
	 * and not held in flight, so a later record of the group may take it back.
	 */
	for (uint64_t i = off / r->unit; i <= (now_end - 1) / r->unit; i++) {
		const char *why = map_unit(r, g, i, i == off / r->unit ? NEED_ADDR : NEED_HINT);
		if (why == NO_ROOM)
			break;
		if (why)
			return why;
	}
	if (r->unit < r->chunk || end > now_end) {
		uint64_t lo = off & ~(r->chunk - 1);
		uint64_t hi = min_u64((end + r->chunk - 1) & ~(r->chunk - 1), g->size);
		prefetch_add(r, ri, lo / r->unit, (hi + r->unit - 1) / r->unit);
	}
	return NULL;
}

/* Makes [addr, addr + length hint) DMA-able. Returns NULL or why not. */
static const char *resolve(struct resolver *r, const struct iommu_hwpt_pgfault *f)
{
	const struct guest_region *g;

	if (f->flags & IOMMU_PGFAULT_FLAGS_PASID_VALID)
		return "PASID-tagged request on a page table without PASID support";
	if (!known_device(r, f->dev_id))
		return "request from a device flint did not attach";
	g = guest_memory_region(r->mem, f->addr);
	if (!g)
		return "address is not guest RAM";
	if ((f->perm & IOMMU_PGFAULT_PERM_WRITE) && g->readonly)
		return "write to read-only guest memory";
	return map_request(r, g, f);
}

/* Queues the one answer of the group whose (first failing, or last) record is @f. */
static void answer(struct resolver *r, const struct iommu_hwpt_pgfault *f, const char *why)
{
	if (why) {
		r->stats.invalid++;
		if (log_ratelimit_ok(&r->rl_invalid))
			log_warn("iommu: %s: page request group %u from device %u at %#llx "
			         "answered INVALID: %s",
			         r->name, f->cookie, f->dev_id, (unsigned long long)f->addr, why);
	}
	r->resp_t[r->nresp] = r->t_read;
	r->resp_serial[r->nresp] = r->serial;
	r->resp[r->nresp++] =
	        (struct iommu_hwpt_page_response){ f->cookie, why ? IOMMUFD_PAGE_RESP_INVALID
		                                                  : IOMMUFD_PAGE_RESP_SUCCESS };
}

/*
 * Records in one group: the kernel delivers each group whole and contiguous, its last
 * record marked LAST_PAGE. A cookie change also ends one (the kernel never does that),
 * so that every cookie read gets an answer whatever the records say.
 */
static unsigned group_len(const struct iommu_hwpt_pgfault *f, unsigned n)
{
	unsigned k = 0;

	while (k + 1 < n && !(f[k].flags & IOMMU_PGFAULT_FLAGS_LAST_PAGE) &&
	       f[k + 1].cookie == f[0].cookie)
		k++;
	return k + 1;
}

enum step {
	STEP_MORE,     /* the record is resolved, its group goes on */
	STEP_ANSWERED, /* the group's answer is queued */
	STEP_WAIT,     /* the record waits for the queued answers to be written (the cap) */
};

/*
 * Resolves the record at pos (pos < nbuf, room for one more answer). A group is answered
 * after its last record, or at its first record that cannot be resolved (the rest of it
 * is skipped). A record that waits stays at pos, to be resolved again.
 */
static enum step step(struct resolver *r)
{
	const struct iommu_hwpt_pgfault *f = &r->buf[r->pos];
	const char *why;

	if (r->pos == r->grp_end) {
		r->grp_end = r->pos + group_len(f, r->nbuf - r->pos);
		r->serial++;
	}
	why = r->closing ? "flint is shutting down" : resolve(r, f);
	if (why == WAIT) {
		r->stats.cap_waits++;
		return STEP_WAIT;
	}
	r->pos = why ? r->grp_end : r->pos + 1;
	if (!why && r->pos < r->grp_end)
		return STEP_MORE;
	answer(r, f, why);
	return STEP_ANSWERED;
}

/* Accounts the @k answers from @first on as written now. Returns @k. */
static unsigned written_now(struct resolver *r, unsigned first, unsigned k)
{
	long long now = clock_now_ns();

	for (unsigned i = first; i < first + k; i++) {
		long long us = (now - r->resp_t[i]) / 1000;
		unsigned b = 0;
		while (b < RESOLVER_LAT_BUCKETS - 1 && us >= (1LL << b))
			b++;
		r->stats.latency_us[b]++;
		r->stats.groups++;
	}
	return k;
}

/* Records what failed, for the log line of the backoff that follows. Returns @e. */
static int fail(struct resolver *r, int e, const char *what)
{
	r->err_what = what;
	return e;
}

/*
 * Writes the queued answers, in order, counting them into @written. One the kernel
 * refuses (EINVAL: an unknown or already answered cookie, e.g. its device was detached)
 * is logged and skipped, never retried. On another error the answers not written stay
 * queued, in order, for the next try: a group is never left unanswered. Returns 0 or
 * -errno.
 */
static int flush_responses(struct resolver *r, unsigned *written)
{
	const size_t size = sizeof(r->resp[0]);
	unsigned done = 0;
	int e = 0;

	while (done < r->nresp) {
		ssize_t n =
		        r->backend->write(r->ctx, r->fd, &r->resp[done], (r->nresp - done) * size);
		if (n == -EINTR)
			continue;
		if (n >= (ssize_t)size) {
			done += written_now(r, done,
			                    (unsigned)min_u64((size_t)n / size, r->nresp - done));
			continue;
		}
		if (n != -EINVAL) {
			e = fail(r, n < 0 ? (int)n : -EIO, "writing page responses");
			break;
		}
		r->stats.refused++;
		if (log_ratelimit_ok(&r->rl_refused))
			log_warn("iommu: %s: the kernel refused the response for group %u", r->name,
			         r->resp[done].cookie);
		done += written_now(r, done, 1);
	}
	r->nresp -= done;
	memmove(r->resp, r->resp + done, r->nresp * size);
	memmove(r->resp_t, r->resp_t + done, r->nresp * sizeof(r->resp_t[0]));
	memmove(r->resp_serial, r->resp_serial + done, r->nresp * sizeof(r->resp_serial[0]));
	if (!r->nresp)
		r->unflushed = 0;
	if (done && r->cap)
		release(r);
	*written += done;
	return e;
}

/*
 * Answers go out once the mapping done for them reaches RESOLVER_UNIT_MAX, or the queue
 * is full: a group waits for at most that much work on others, not for the whole read.
 */
static bool flush_due(const struct resolver *r)
{
	return r->nresp == RESP_BATCH || r->unflushed >= RESOLVER_UNIT_MAX;
}

static bool fd_readable(int fd)
{
	struct pollfd p = { fd, POLLIN, 0 };

	return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

/*
 * A group beyond RESOLVER_GROUP_MAX records: no device may send one (PRI allocations are
 * far smaller), and reading it would take an unbounded buffer. Stop serving the queue,
 * which all devices share, rather than spin on a readable fd that never yields; the
 * kernel answers its groups INVALID when flint destroys the queue.
 */
static int give_up(struct resolver *r)
{
	char devs[96] = "";
	size_t len = 0;

	/* The group cannot be read, so which device sent it is unknown: name them all. */
	for (unsigned i = 0; i < r->ndevs && len + 12 < sizeof(devs); i++)
		len += (size_t)snprintf(devs + len, sizeof(devs) - len, "%s%u", i ? ", " : "",
		                        r->devs[i]);
	log_error("iommu: %s: a page request group has more than %u records, more than any "
	          "device may send: one of its devices (iommufd ids %s) is misbehaving; the "
	          "queue is no longer served, for any of its devices, and the kernel answers "
	          "its page requests INVALID when flint releases the devices",
	          r->name, (unsigned)RESOLVER_GROUP_MAX, devs[0] ? devs : "none");
	r->dead = true;
	loop_remove(r->watch);
	r->watch = NULL;
	loop_remove(r->more);
	r->more = NULL;
	return -E2BIG;
}

static int grow(struct resolver *r)
{
	unsigned batch = r->batch * 2 > RESOLVER_GROUP_MAX ? RESOLVER_GROUP_MAX : r->batch * 2;

	if (r->batch >= RESOLVER_GROUP_MAX)
		return give_up(r);
	if (alloc_buffers(r, batch))
		return fail(r, -ENOMEM, "growing the read buffer");
	log_debug("iommu: %s: read buffer grown to %u records", r->name, batch);
	return 0;
}

/*
 * Reads whole groups into the buffer. Returns the records read, 0 when nothing is
 * pending, or -errno. A 0 is believed when poll says the fd is not readable. A 0 while
 * it is readable is either an older kernel saying the first group does not fit, or a
 * group that arrived between the read and the poll: so it is read once more, and only a
 * second 0 with the fd still readable grows the buffer. Linux 7.3 (and 6.12.101+) say
 * EINVAL for a group that does not fit, which grows it at once.
 */
static int read_groups(struct resolver *r)
{
	bool zero_before = false;

	for (;;) {
		ssize_t n = r->backend->read(r->ctx, r->fd, r->buf, r->batch * REC_SIZE);
		if (n > 0)
			return (int)((size_t)n / REC_SIZE);
		if (n == -EINTR)
			continue;
		if (n == -EAGAIN || (n == 0 && !fd_readable(r->fd)))
			return 0;
		if (n == 0 && !zero_before) {
			zero_before = true;
			continue;
		}
		if (n < 0 && n != -EINVAL)
			return fail(r, (int)n, "reading page requests");
		zero_before = false;
		int e = grow(r);
		if (e)
			return e;
	}
}

/* Reads the next groups into the (consumed) buffer: records read, 0 or -errno. */
static int fill(struct resolver *r)
{
	int n = read_groups(r);

	if (n > 0) {
		r->nbuf = (unsigned)n;
		r->pos = r->grp_end = 0;
		r->t_read = clock_now_ns();
		r->stats.faults += (unsigned)n;
	}
	return n;
}

/*
 * One turn: the answers a failed write left, then the records left in the buffer, then
 * new reads, until the turn's budget is spent. Counts answers written into @written.
 */
static int serve(struct resolver *r, unsigned *written)
{
	uint64_t bytes0 = r->stats.bytes_mapped;
	unsigned records = 0;
	bool short_read = false;
	int e = flush_responses(r, written);

	while (!e && records < RESOLVER_TURN_RECORDS &&
	       r->stats.bytes_mapped - bytes0 < RESOLVER_TURN_BYTES) {
		if (r->pos == r->nbuf) {
			/* A short read: drained, or the next group needs a read of its own. */
			if (short_read)
				break;
			int n = fill(r);
			if (n <= 0)
				return n;
			short_read = (unsigned)n < r->batch;
		}
		records++;
		enum step st = step(r);
		/* A record that waits: writing the queued answers releases their units. */
		if (st == STEP_WAIT || (st == STEP_ANSWERED && flush_due(r)))
			e = flush_responses(r, written);
	}
	return e;
}

static void on_fault_fd(int fd, int events, void *arg)
{
	(void)fd;
	(void)events;
	resolver_process(arg);
}

static void on_more(void *arg)
{
	struct resolver *r = arg;

	r->more = NULL; /* a one-shot watch is freed once it fires */
	resolver_process(r);
}

/* Records already read are left: the fd may never be readable again, so come back. */
static void resume(struct resolver *r)
{
	if (!r->loop || r->more || r->retry || r->pos == r->nbuf)
		return;
	r->more = loop_add_timer(r->loop, 0, false, on_more, r);
	if (!r->more && log_ratelimit_ok(&r->rl_io))
		log_error("iommu: %s: cannot arm a timer; the page requests read are served "
		          "with the next ones",
		          r->name);
}

static void backoff(struct resolver *r, int e);

static void on_retry(void *arg)
{
	struct resolver *r = arg;

	r->retry = NULL;
	if (!r->dead && !r->watch) {
		r->watch = loop_add_fd(r->loop, r->fd, LOOP_READ, on_fault_fd, r);
		if (!r->watch) {
			backoff(r, fail(r, -ENOMEM, "watching the fault fd"));
			return;
		}
	}
	/* Now, not when the fd is readable: answers and records may be waiting already. */
	resolver_process(r);
}

/*
 * A read or write error (other than the kernel refusing one answer) is likely to last,
 * and the fd stays readable: rather than spin the loop thread on it, the fd is not
 * watched for 10 ms, then 20, up to 100 ms while the errors go on. Nothing read is lost:
 * answers and records wait for the retry.
 */
static void backoff(struct resolver *r, int e)
{
	r->backoff_ms = r->backoff_ms ? (unsigned)min_u64(2 * r->backoff_ms, BACKOFF_MAX_MS)
	                              : BACKOFF_MIN_MS;
	if (log_ratelimit_ok(&r->rl_io))
		log_error("iommu: %s: %s: %s; trying again in %u ms", r->name, r->err_what,
		          strerror(-e), r->backoff_ms);
	if (!r->loop || r->retry)
		return;
	r->retry = loop_add_timer(r->loop, r->backoff_ms * 1000ULL, false, on_retry, r);
	if (!r->retry)
		return; /* keep the watch: spinning beats never answering */
	loop_remove(r->watch);
	r->watch = NULL;
	loop_remove(r->more);
	r->more = NULL;
}

int resolver_process(struct resolver *r)
{
	unsigned written = 0;
	int e = r->dead ? -E2BIG : serve(r, &written);
	int we = flush_responses(r, &written); /* what the turn answered, even after an error */

	if (we || (e && !r->dead))
		backoff(r, we ? we : e);
	else if (!e)
		r->backoff_ms = 0;
	resume(r);
	prefetch_arm(r);
	return written ? (int)written : e ? e : we;
}

int resolver_attach(struct resolver *r, struct loop *loop)
{
	r->watch = loop_add_fd(loop, r->fd, LOOP_READ, on_fault_fd, r);
	if (!r->watch)
		return -ENOMEM;
	r->loop = loop;
	prefetch_arm(r); /* ranges queued before there was a loop */
	resume(r);
	return 0;
}

/* Answers INVALID what is read and what the fd still delivers: no device waits on us. */
static void drain(struct resolver *r)
{
	unsigned written = 0;

	r->closing = true;
	for (int reads = 0; !flush_responses(r, &written);) {
		if (r->pos < r->nbuf) {
			while (r->pos < r->nbuf && r->nresp < RESP_BATCH)
				step(r);
		} else if (r->dead || reads++ == DRAIN_ROUNDS || fill(r) <= 0) {
			return;
		}
	}
}

void resolver_free(struct resolver *r)
{
	if (!r)
		return;
	if (r->buf)
		drain(r);
	loop_remove(r->watch);
	loop_remove(r->pf_timer);
	loop_remove(r->more);
	loop_remove(r->retry);
	for (unsigned i = 0; i < GUEST_MEMORY_MAX_REGIONS; i++)
		free(r->mapped[i]);
	if (r->cap)
		free(r->cap->slots);
	free(r->cap);
	free(r->devs);
	free(r->buf);
	free(r);
}
