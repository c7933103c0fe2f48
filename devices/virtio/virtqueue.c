#include "devices/virtio/virtqueue.h"
#include "devices/virtio/virtio.h"

#include <endian.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Byte offsets of the words in the available and used areas. */
enum { AVAIL_FLAGS = 0, AVAIL_IDX = 2, AVAIL_RING = 4 };
enum { USED_IDX = 2, USED_RING = 4 };

/*
 * Every failure the driver causes ends here: the queue breaks for good (until a reset),
 * so this logs at most once per break, and the rate limit bounds a guest that resets and
 * breaks its queues in a loop.
 */
static int __attribute__((format(printf, 3, 4)))
vq_fail(struct virtqueue *vq, int err, const char *fmt, ...)
{
	char why[256];
	va_list ap;

	vq->broken = true;
	vq->error = err;
	if (!log_ratelimit_ok(&vq->rl))
		return err;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	log_warn("%s: %s; the queue is broken until the device is reset", vq->name, why);
	return err;
}

/*
 * The shared words are reached through __atomic builtins: the guest writes them while we
 * read, and enable checked the alignment that makes these accesses naturally aligned.
 */
static uint16_t *avail_word(const struct virtqueue *vq, size_t off)
{
	return (uint16_t *)(void *)(vq->avail + off);
}

static uint16_t *used_word(const struct virtqueue *vq, size_t off)
{
	return (uint16_t *)(void *)(vq->used + off);
}

static uint16_t load_relaxed(const uint16_t *p)
{
	return le16toh(__atomic_load_n(p, __ATOMIC_RELAXED));
}

void virtqueue_init(struct virtqueue *vq, const struct guest_memory *mem, const char *name)
{
	memset(vq, 0, sizeof(*vq));
	vq->mem = mem;
	/* Names come from the config (a drive id): escaped once, here, for every message. */
	msg_escape(vq->name, sizeof(vq->name), name);
}

void virtqueue_reset(struct virtqueue *vq)
{
	struct log_ratelimit rl = vq->rl;
	char name[VIRTQUEUE_NAME_MAX];

	memcpy(name, vq->name, sizeof(name));
	virtqueue_init(vq, vq->mem, "");
	memcpy(vq->name, name, sizeof(name));
	vq->rl = rl;
}

bool virtqueue_enabled(const struct virtqueue *vq)
{
	return vq->enabled;
}

bool virtqueue_broken(const struct virtqueue *vq)
{
	return vq->broken;
}

/*
 * Host view of one ring area: aligned per the spec, wholly inside one RAM region (so it
 * neither runs into the MMIO hole nor wraps), and writable when the device writes it.
 */
static int map_area(struct virtqueue *vq, const char *what, uint64_t gpa, uint64_t len,
                    uint64_t align, bool device_writes, uint8_t **out)
{
	if (gpa % align)
		return vq_fail(vq, -EINVAL, "%s at 0x%llx is not %llu-byte aligned", what,
		               (unsigned long long)gpa, (unsigned long long)align);
	*out = guest_memory_hva(vq->mem, gpa, len);
	if (*out && device_writes && guest_memory_region(vq->mem, gpa)->readonly)
		*out = NULL;
	if (!*out)
		return vq_fail(vq, -EFAULT, "%s 0x%llx+0x%llx is not inside guest RAM", what,
		               (unsigned long long)gpa, (unsigned long long)len);
	return 0;
}

static bool size_ok(unsigned size)
{
	return size && size <= VIRTQ_MAX_SIZE && (size & (size - 1)) == 0;
}

static int check_config(struct virtqueue *vq, const struct virtqueue_config *cfg)
{
	if (!size_ok(cfg->size))
		return vq_fail(vq, -EINVAL, "queue size %u is not a power of two up to %u",
		               cfg->size, VIRTQ_MAX_SIZE);
	/* More in flight than the ring holds could never be pushed back. */
	if ((uint16_t)(cfg->next_avail - cfg->next_used) > cfg->size)
		return vq_fail(vq, -EINVAL, "next available %u is more than %u past next used %u",
		               cfg->next_avail, cfg->size, cfg->next_used);
	return 0;
}

int virtqueue_enable(struct virtqueue *vq, const struct virtqueue_config *cfg)
{
	uint8_t *desc, *avail, *used;
	int r;

	if (vq->broken)
		return -EIO;
	r = check_config(vq, cfg);
	if (!r)
		r = map_area(vq, "descriptor table", cfg->desc, VIRTQ_DESC_BYTES(cfg->size),
		             VIRTQ_DESC_ALIGN, false, &desc);
	if (!r)
		r = map_area(vq, "available ring", cfg->avail, VIRTQ_AVAIL_BYTES(cfg->size),
		             VIRTQ_AVAIL_ALIGN, false, &avail);
	if (!r)
		r = map_area(vq, "used ring", cfg->used, VIRTQ_USED_BYTES(cfg->size),
		             VIRTQ_USED_ALIGN, true, &used);
	if (r)
		return r;
	vq->size = (uint16_t)cfg->size; /* up to 32768: fits */
	vq->event_idx = cfg->features & VIRTIO_FEATURE(VIRTIO_F_EVENT_IDX);
	vq->indirect = cfg->features & VIRTIO_FEATURE(VIRTIO_F_INDIRECT_DESC);
	vq->desc = desc;
	vq->avail = avail;
	vq->used = used;
	vq->last_avail = vq->avail_idx = cfg->next_avail;
	vq->used_idx = vq->signalled_used = cfg->next_used;
	vq->inflight = (uint16_t)(cfg->next_avail - cfg->next_used);
	vq->enabled = true;
	return 0;
}

/*
 * 1 when a chain is available. avail->idx is read (with acquire, so the ring entries and
 * descriptors the driver wrote before it are visible) only once the chains seen before
 * are taken, and checked: the driver can offer at most a ring's worth.
 */
static int avail_pending(struct virtqueue *vq)
{
	uint16_t idx, n;

	if (vq->avail_idx != vq->last_avail)
		return 1;
	idx = le16toh(__atomic_load_n(avail_word(vq, AVAIL_IDX), __ATOMIC_ACQUIRE));
	n = (uint16_t)(idx - vq->last_avail);
	if (n > vq->size)
		return vq_fail(vq, -EOVERFLOW,
		               "available index %u is %u past the device's %u, more than the "
		               "queue size %u",
		               idx, n, vq->last_avail, vq->size);
	vq->avail_idx = idx;
	return n != 0;
}

static int read_head(struct virtqueue *vq, uint16_t *head)
{
	uint16_t slot = vq->last_avail & (vq->size - 1);

	*head = load_relaxed(avail_word(vq, AVAIL_RING + 2 * (size_t)slot));
	if (*head >= vq->size)
		return vq_fail(vq, -ERANGE,
		               "available ring entry %u: head %u is not below the "
		               "queue size %u",
		               slot, *head, vq->size);
	return 0;
}

/*
 * Copies one descriptor out of guest memory, each byte read once, before anything looks
 * at it: the guest may rewrite it meanwhile, and checks must hold for what is used. The
 * atomic loads keep the compiler from reading the guest's copy again; an indirect table
 * (the spec sets it no alignment) may need the byte-wise way.
 */
static void desc_read(struct virtq_desc *d, const uint8_t *p)
{
	uint64_t w[2];

	if ((uintptr_t)p % 8 == 0) {
		w[0] = __atomic_load_n((const uint64_t *)(const void *)p, __ATOMIC_RELAXED);
		w[1] = __atomic_load_n((const uint64_t *)(const void *)p + 1, __ATOMIC_RELAXED);
	} else {
		const volatile uint8_t *v = p;
		uint8_t b[16];

		for (unsigned i = 0; i < sizeof(b); i++)
			b[i] = v[i];
		memcpy(w, b, sizeof(w));
	}
	d->addr = le64toh(w[0]);
	w[1] = le64toh(w[1]); /* len, flags and next, little-endian in one word */
	d->len = (uint32_t)w[1];
	d->flags = (uint16_t)(w[1] >> 32);
	d->next = (uint16_t)(w[1] >> 48);
}

/* One chain being taken apart. */
struct walk {
	struct virtqueue *vq;
	struct virtqueue_chain *c;
	unsigned ndesc; /* buffer descriptors so far: a chain has at most the queue size */
	bool writable_seen;
};

static const char *table_name(bool indirect)
{
	return indirect ? "indirect descriptor" : "descriptor";
}

/* The chain's byte count and segment count stay within what the spec and the device allow. */
static int check_room(struct walk *w, const struct virtq_desc *d, unsigned i, bool indirect)
{
	struct virtqueue_chain *c = w->c;

	if (c->readable_len + c->writable_len + d->len > (1ULL << 32))
		return vq_fail(w->vq, -EMSGSIZE, "head %u, %s %u: chain longer than 2^32 bytes",
		               c->head, table_name(indirect), i);
	if (c->nsegs == c->max)
		return vq_fail(w->vq, -E2BIG, "head %u, %s %u: more than the device's %u segments",
		               c->head, table_name(indirect), i, c->max);
	return 0;
}

/* Adds a buffer descriptor's segment to the chain, after checking it. */
static int add_seg(struct walk *w, const struct virtq_desc *d, unsigned i, bool indirect)
{
	struct virtqueue_chain *c = w->c;
	bool writable = d->flags & VIRTQ_DESC_F_WRITE;
	void *hva;
	int r;

	if (!writable && w->writable_seen)
		return vq_fail(w->vq, -EINVAL,
		               "head %u, %s %u: device-readable after "
		               "device-writable",
		               c->head, table_name(indirect), i);
	w->writable_seen |= writable;
	if (++w->ndesc > w->vq->size)
		return vq_fail(w->vq, -ELOOP, "head %u, %s %u: chain longer than the queue size %u",
		               c->head, table_name(indirect), i, w->vq->size);
	/* A zero-length buffer is no access at all: the spec gives its address no meaning. */
	if (!d->len)
		return 0;
	hva = guest_memory_hva(w->vq->mem, d->addr, d->len);
	if (hva && writable && guest_memory_region(w->vq->mem, d->addr)->readonly)
		hva = NULL;
	if (!hva)
		return vq_fail(w->vq, -EFAULT,
		               "head %u, %s %u: buffer 0x%llx+0x%x is not inside "
		               "guest RAM",
		               c->head, table_name(indirect), i, (unsigned long long)d->addr,
		               d->len);
	r = check_room(w, d, i, indirect);
	if (r)
		return r;
	c->segs[c->nsegs++] = (struct virtqueue_seg){ hva, d->len, writable };
	if (writable) {
		c->writable_len += d->len;
	} else {
		c->readable_len += d->len;
		c->nreadable++;
	}
	return 0;
}

static int walk_table(struct walk *w, const uint8_t *table, unsigned n, uint16_t i, bool indirect);

/*
 * A descriptor that points at an indirect table ends the chain in the descriptor table
 * (it may not have NEXT) and the chain goes on in that table, which may not point at
 * another. Its WRITE flag means nothing: the spec has the device ignore it.
 */
static int walk_indirect(struct walk *w, const struct virtq_desc *d, unsigned i, bool nested)
{
	struct virtqueue *vq = w->vq;
	uint16_t head = w->c->head;
	const uint8_t *table;

	if (nested)
		return vq_fail(vq, -EINVAL,
		               "head %u, indirect descriptor %u: nested indirect table", head, i);
	if (!vq->indirect)
		return vq_fail(vq, -EINVAL, "head %u, descriptor %u: INDIRECT not negotiated", head,
		               i);
	if (d->flags & VIRTQ_DESC_F_NEXT)
		return vq_fail(vq, -EINVAL, "head %u, descriptor %u: INDIRECT together with NEXT",
		               head, i);
	if (!d->len || d->len % sizeof(struct virtq_desc))
		return vq_fail(vq, -EINVAL,
		               "head %u, descriptor %u: indirect table length %u is "
		               "not a non-zero multiple of 16",
		               head, i, d->len);
	if (d->len / sizeof(struct virtq_desc) > vq->size)
		return vq_fail(vq, -E2BIG,
		               "head %u, descriptor %u: indirect table of %u entries, "
		               "more than the queue size %u",
		               head, i, d->len / 16, vq->size);
	table = guest_memory_hva(vq->mem, d->addr, d->len);
	if (!table)
		return vq_fail(vq, -EFAULT,
		               "head %u, descriptor %u: indirect table 0x%llx+0x%x "
		               "is not inside guest RAM",
		               head, i, (unsigned long long)d->addr, d->len);
	return walk_table(w, table, d->len / sizeof(struct virtq_desc), 0, true);
}

/*
 * Follows next links through @table of @n descriptors from @i. A chain visits a
 * descriptor at most once, so a step beyond @n means a loop.
 */
static int walk_table(struct walk *w, const uint8_t *table, unsigned n, uint16_t i, bool indirect)
{
	struct virtq_desc d;
	int r;

	for (unsigned steps = 0;; steps++) {
		if (steps == n)
			return vq_fail(w->vq, -ELOOP,
			               "head %u, %s %u: chain loops (more than %u "
			               "descriptors)",
			               w->c->head, table_name(indirect), i, n);
		desc_read(&d, table + (size_t)i * sizeof(d));
		if (d.flags & VIRTQ_DESC_F_INDIRECT)
			return walk_indirect(w, &d, i, indirect);
		r = add_seg(w, &d, i, indirect);
		if (r || !(d.flags & VIRTQ_DESC_F_NEXT))
			return r;
		if (d.next >= n)
			return vq_fail(w->vq, -ERANGE, "head %u, %s %u: next %u is not below %u",
			               w->c->head, table_name(indirect), i, d.next, n);
		i = d.next;
	}
}

static void chain_clear(struct virtqueue_chain *c)
{
	c->nsegs = c->nreadable = 0;
	c->readable_len = c->writable_len = 0;
}

int virtqueue_pop(struct virtqueue *vq, struct virtqueue_chain *c)
{
	struct walk w = { vq, c, 0, false };
	int r;

	chain_clear(c);
	if (vq->broken)
		return -EIO;
	if (!vq->enabled)
		return 0;
	r = avail_pending(vq);
	if (r <= 0)
		return r;
	r = read_head(vq, &c->head);
	if (!r)
		r = walk_table(&w, vq->desc, vq->size, c->head, false);
	if (r) {
		chain_clear(c); /* nothing of a bad chain is handed out */
		return r;
	}
	vq->last_avail++;
	vq->inflight++;
	return 1;
}

int virtqueue_fill(struct virtqueue *vq, uint16_t head, uint32_t written)
{
	uint8_t *elem;

	if (vq->broken)
		return -EIO;
	/* A push with nothing in flight would run the used ring past what the driver offered. */
	if (!vq->enabled || head >= vq->size || !vq->inflight)
		return -EINVAL;
	elem = vq->used + USED_RING +
	       sizeof(struct virtq_used_elem) * (vq->used_idx & (vq->size - 1));
	__atomic_store_n((uint32_t *)(void *)elem, htole32(head), __ATOMIC_RELAXED);
	__atomic_store_n((uint32_t *)(void *)(elem + 4), htole32(written), __ATOMIC_RELAXED);
	vq->used_idx++;
	vq->inflight--;
	return 0;
}

void virtqueue_publish(struct virtqueue *vq)
{
	if (vq->broken || !vq->enabled)
		return;
	/* Release: the elements, and what the device wrote to the buffers, before the index. */
	__atomic_store_n(used_word(vq, USED_IDX), htole16(vq->used_idx), __ATOMIC_RELEASE);
}

int virtqueue_push(struct virtqueue *vq, uint16_t head, uint32_t written)
{
	int r = virtqueue_fill(vq, head, written);

	if (!r)
		virtqueue_publish(vq);
	return r;
}

bool virtqueue_should_notify(struct virtqueue *vq)
{
	uint16_t old = vq->signalled_used, event;

	if (vq->broken || !vq->enabled || old == vq->used_idx)
		return false;
	vq->signalled_used = vq->used_idx;
	/*
	 * used->idx must be visible before the driver's wishes are read: a store then a
	 * load, which only a full fence orders. The driver pairs it with its own fence
	 * between writing used_event (or flags) and reading used->idx again.
	 */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (!vq->event_idx)
		return !(load_relaxed(avail_word(vq, AVAIL_FLAGS)) & VIRTQ_AVAIL_F_NO_INTERRUPT);
	event = load_relaxed(avail_word(vq, AVAIL_RING + 2 * (size_t)vq->size));
	return vring_need_event(event, vq->used_idx, old);
}

int virtqueue_set_avail_event(struct virtqueue *vq)
{
	if (vq->broken)
		return -EIO;
	if (!vq->enabled)
		return 0;
	if (vq->event_idx)
		__atomic_store_n(used_word(vq, USED_RING + 8 * (size_t)vq->size),
		                 htole16(vq->last_avail), __ATOMIC_RELAXED);
	/* The store above before the look below; pairs with the driver's fence. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return avail_pending(vq);
}
