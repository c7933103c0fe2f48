/*
 * The split virtqueue, device side, driven by a guest driver written here: rings built in
 * real guest memory (3200 MiB, sparse: RAM below the MMIO hole and above 4 GiB), normal
 * traffic, notification suppression both ways, index wrap, and every way a hostile driver
 * can break a queue. Each hostile case checks the specific error, one log line naming the
 * queue and the offending index or address, a queue that stays broken, and that nothing
 * handed out lies outside guest RAM.
 */
#include "tests/lib/util.h"
#include "devices/virtio/virtio.h"
#include "devices/virtio/virtqueue.h"
#include "vmm/base/log.h"
#include "vmm/base/memory.h"

#include <endian.h>
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <cmocka.h>

#define MiB(x) ((uint64_t)(x) << 20)

/* Region 0 is [0, 3 GiB), region 1 [4 GiB, 4 GiB + 128 MiB). */
#define RAM_SIZE MiB(3200)
#define HOLE     GUEST_MEMORY_HOLE_START
#define HIGH     GUEST_MEMORY_HOLE_END
#define RAM_END  (HIGH + RAM_SIZE - HOLE)

/* Where the driver puts things: rings above the hole, buffers below it. */
#define DESC_GPA  (HIGH + MiB(1))
#define AVAIL_GPA (HIGH + MiB(2))
#define USED_GPA  (HIGH + MiB(3))
#define IND_GPA   (HIGH + MiB(4)) /* indirect tables, 64 KiB apart */
#define BUF_GPA   MiB(16)

#define QNAME    "virtio-test vqt queue 0"
#define MAX_SEGS 64

static const uint64_t both =
        VIRTIO_FEATURE(VIRTIO_F_EVENT_IDX) | VIRTIO_FEATURE(VIRTIO_F_INDIRECT_DESC);

/* The guest driver's side of one queue, and the device's queue over the same memory. */
struct drv {
	struct guest_memory m;
	struct virtqueue vq;
	struct virtqueue_config cfg;
	uint16_t avail_idx; /* the driver's next available index */
	struct virtqueue_seg segs[MAX_SEGS];
	struct virtqueue_chain c;
};

/* ---- the log (tests/lib/util.h captures it) ---- */

static unsigned count_lines(const char *s, const char *needle)
{
	unsigned n = 0;
	char line[2048];

	while (*s) {
		size_t len = strcspn(s, "\n");
		size_t k = len < sizeof(line) - 1 ? len : sizeof(line) - 1;

		memcpy(line, s, k);
		line[k] = 0;
		n += strstr(line, needle) != NULL;
		s += len + (s[len] == '\n');
	}
	return n;
}

/* Exactly one line since @mark, naming the queue and saying @what. */
static void expect_one_report(long mark, const char *what)
{
	const char *s = test_log_since(mark);

	if (count_lines(s, "") != 1 || !strstr(s, QNAME ": ") || !strstr(s, what))
		fail_msg("expected one line with \"%s\", logged:\n%s", what, s);
}

/* ---- the driver ---- */

static uint8_t *gp(struct drv *d, uint64_t gpa, uint64_t len)
{
	uint8_t *p = guest_memory_hva(&d->m, gpa, len);

	assert_non_null(p);
	return p;
}

static struct virtqueue_config config(unsigned size, uint64_t features)
{
	return (struct virtqueue_config){ .size = size,
		                          .desc = DESC_GPA,
		                          .avail = AVAIL_GPA,
		                          .used = USED_GPA,
		                          .features = features };
}

static struct drv *drv_new(unsigned size, uint64_t features)
{
	struct drv *d = calloc(1, sizeof(*d));

	assert_non_null(d);
	assert_int_equal(guest_memory_init(&d->m, RAM_SIZE, GUEST_BACKING_4K), 0);
	assert_int_equal(d->m.nregions, 2);
	virtqueue_init(&d->vq, &d->m, QNAME);
	d->cfg = config(size, features);
	assert_int_equal(virtqueue_enable(&d->vq, &d->cfg), 0);
	return d;
}

static void drv_free(struct drv *d)
{
	guest_memory_destroy(&d->m);
	free(d);
}

static void put_desc_at(struct drv *d, uint64_t table, unsigned i, uint64_t addr, uint32_t len,
                        uint16_t flags, uint16_t next)
{
	struct virtq_desc v = { htole64(addr), htole32(len), htole16(flags), htole16(next) };

	memcpy(gp(d, table + 16ULL * i, 16), &v, 16);
}

static void put_desc(struct drv *d, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
                     uint16_t next)
{
	put_desc_at(d, DESC_GPA, i, addr, len, flags, next);
}

static uint16_t *avail_word(struct drv *d, unsigned off)
{
	return (uint16_t *)(void *)gp(d, AVAIL_GPA + off, 2);
}

static uint16_t *used_word(struct drv *d, unsigned off)
{
	return (uint16_t *)(void *)gp(d, USED_GPA + off, 2);
}

static void set_avail_idx(struct drv *d, uint16_t idx)
{
	d->avail_idx = idx;
	__atomic_store_n(avail_word(d, 2), htole16(idx), __ATOMIC_RELEASE);
}

/* Puts @head in the next available ring entry, without publishing it. */
static void queue_head(struct drv *d, uint16_t head)
{
	*avail_word(d, 4 + 2 * (d->avail_idx & (d->cfg.size - 1))) = htole16(head);
	d->avail_idx++;
}

static void offer(struct drv *d, uint16_t head)
{
	queue_head(d, head);
	set_avail_idx(d, d->avail_idx);
}

static uint16_t used_idx(struct drv *d)
{
	return le16toh(__atomic_load_n(used_word(d, 2), __ATOMIC_ACQUIRE));
}

static struct virtq_used_elem used_elem(struct drv *d, uint16_t idx)
{
	struct virtq_used_elem e;

	memcpy(&e, gp(d, USED_GPA + 4 + 8ULL * (idx & (d->cfg.size - 1)), 8), 8);
	return (struct virtq_used_elem){ le32toh(e.id), le32toh(e.len) };
}

static void set_used_event(struct drv *d, uint16_t v)
{
	*avail_word(d, 4 + 2 * d->cfg.size) = htole16(v);
}

static uint16_t avail_event(struct drv *d)
{
	return le16toh(*used_word(d, 4 + 8 * d->cfg.size));
}

static bool in_ram(const struct guest_memory *m, const void *p, uint64_t len)
{
	const uint8_t *b = p;

	for (unsigned i = 0; i < m->nregions; i++) {
		const struct guest_region *r = &m->regions[i];
		if (b >= r->hva && (uint64_t)(b - r->hva) < r->size &&
		    len <= r->size - (uint64_t)(b - r->hva))
			return true;
	}
	return false;
}

/* Every segment lies wholly inside one RAM region, readable ones first, totals right. */
static void check_chain(const struct guest_memory *m, const struct virtqueue_chain *c)
{
	uint64_t rd = 0, wr = 0;

	assert_true(c->nsegs <= c->max);
	assert_true(c->nreadable <= c->nsegs);
	for (unsigned i = 0; i < c->nsegs; i++) {
		const struct virtqueue_seg *s = &c->segs[i];
		assert_true(s->len > 0);
		assert_true(in_ram(m, s->hva, s->len));
		assert_int_equal(s->writable, i >= c->nreadable);
		*(s->writable ? &wr : &rd) += s->len;
	}
	assert_int_equal(rd, c->readable_len);
	assert_int_equal(wr, c->writable_len);
}

static int pop_max(struct drv *d, unsigned max)
{
	int r;

	d->c = (struct virtqueue_chain){ .segs = d->segs, .max = max };
	r = virtqueue_pop(&d->vq, &d->c);
	check_chain(&d->m, &d->c);
	if (r <= 0)
		assert_int_equal(d->c.nsegs, 0);
	return r;
}

static int pop(struct drv *d)
{
	return pop_max(d, MAX_SEGS);
}

static void expect_seg(struct drv *d, unsigned i, uint64_t gpa, uint32_t len, bool writable)
{
	assert_true(i < d->c.nsegs);
	assert_ptr_equal(d->c.segs[i].hva, gp(d, gpa, len));
	assert_int_equal(d->c.segs[i].len, len);
	assert_int_equal(d->c.segs[i].writable, writable);
}

/*
 * The queue is broken for good: every call a no-op with an error, the used ring untouched,
 * nothing logged again. A reset and a fresh enable bring it back.
 */
static void expect_sticky(struct drv *d)
{
	uint16_t used = used_idx(d);
	long mark = test_log_mark();

	assert_true(virtqueue_broken(&d->vq));
	assert_int_equal(pop(d), -EIO);
	assert_int_equal(virtqueue_push(&d->vq, 0, 1), -EIO);
	assert_false(virtqueue_should_notify(&d->vq));
	assert_int_equal(virtqueue_set_avail_event(&d->vq), -EIO);
	assert_int_equal(virtqueue_enable(&d->vq, &d->cfg), -EIO);
	assert_int_equal(used_idx(d), used);
	assert_string_equal(test_log_since(mark), "");
}

/* Pops a hostile chain: error @err, one report saying @what, broken for good. */
static void expect_broken(struct drv *d, int err, const char *what)
{
	long mark = test_log_mark();

	assert_int_equal(pop(d), err);
	assert_int_equal(d->vq.error, err);
	expect_one_report(mark, what);
	expect_sticky(d);
}

/* ---- normal traffic ---- */

/* A request as virtio-blk sends it: header and data to read, status to write. */
static void test_normal_chain(void **state)
{
	struct drv *d = drv_new(8, both);

	(void)state;
	put_desc(d, 3, BUF_GPA, 16, VIRTQ_DESC_F_NEXT, 5);
	put_desc(d, 5, BUF_GPA + 4096, 512, VIRTQ_DESC_F_NEXT, 1);
	put_desc(d, 1, BUF_GPA + 8192, 1, VIRTQ_DESC_F_WRITE, 0);
	assert_int_equal(pop(d), 0); /* nothing offered yet */
	offer(d, 3);
	assert_int_equal(pop(d), 1);
	assert_int_equal(d->c.head, 3);
	assert_int_equal(d->c.nsegs, 3);
	assert_int_equal(d->c.nreadable, 2);
	expect_seg(d, 0, BUF_GPA, 16, false);
	expect_seg(d, 1, BUF_GPA + 4096, 512, false);
	expect_seg(d, 2, BUF_GPA + 8192, 1, true);
	assert_int_equal(d->c.readable_len, 528);
	assert_int_equal(d->c.writable_len, 1);
	assert_int_equal(pop(d), 0);
	assert_int_equal(used_idx(d), 0);
	assert_int_equal(virtqueue_push(&d->vq, 3, 1), 0);
	assert_int_equal(used_idx(d), 1);
	assert_int_equal(used_elem(d, 0).id, 3);
	assert_int_equal(used_elem(d, 0).len, 1);
	assert_false(virtqueue_broken(&d->vq));
	drv_free(d);
}

/* Several chains offered at once come out in ring order, go back in any order. */
static void test_several_chains(void **state)
{
	struct drv *d = drv_new(4, 0);
	uint16_t heads[3] = { 2, 0, 3 };

	(void)state;
	put_desc(d, 2, BUF_GPA, 100, 0, 0);
	put_desc(d, 0, BUF_GPA + 100, 200, VIRTQ_DESC_F_WRITE, 0);
	put_desc(d, 3, BUF_GPA + 300, 10, VIRTQ_DESC_F_NEXT, 1);
	put_desc(d, 1, BUF_GPA + 400, 20, VIRTQ_DESC_F_WRITE, 0);
	for (int i = 0; i < 3; i++)
		queue_head(d, heads[i]);
	set_avail_idx(d, d->avail_idx); /* one batch */
	for (int i = 0; i < 3; i++) {
		assert_int_equal(pop(d), 1);
		assert_int_equal(d->c.head, heads[i]);
	}
	expect_seg(d, 0, BUF_GPA + 300, 10, false);
	expect_seg(d, 1, BUF_GPA + 400, 20, true);
	assert_int_equal(pop(d), 0);
	assert_int_equal(virtqueue_push(&d->vq, 3, 20), 0);
	assert_int_equal(virtqueue_push(&d->vq, 2, 0), 0);
	assert_int_equal(virtqueue_push(&d->vq, 0, 200), 0);
	assert_int_equal(used_idx(d), 3);
	assert_int_equal(used_elem(d, 0).id, 3);
	assert_int_equal(used_elem(d, 1).id, 2);
	assert_int_equal(used_elem(d, 2).id, 0);
	assert_int_equal(used_elem(d, 2).len, 200);
	/* More pushes than chains popped would overrun the driver: the device's bug. */
	assert_int_equal(virtqueue_push(&d->vq, 1, 0), -EINVAL);
	assert_int_equal(used_idx(d), 3);
	assert_false(virtqueue_broken(&d->vq));
	drv_free(d);
}

/* A normal descriptor, then one pointing at a table: both parts make one chain. */
/* Chains filled one by one reach the driver together: used->idx moves once, at publish. */
static void test_fill_then_publish(void **state)
{
	struct drv *d = drv_new(4, 0);

	(void)state;
	for (uint16_t i = 0; i < 3; i++) {
		put_desc(d, i, BUF_GPA + 100 * i, 100, VIRTQ_DESC_F_WRITE, 0);
		queue_head(d, i);
	}
	set_avail_idx(d, d->avail_idx);
	for (int i = 0; i < 3; i++)
		assert_int_equal(pop(d), 1);
	assert_int_equal(virtqueue_fill(&d->vq, 0, 100), 0);
	assert_int_equal(virtqueue_fill(&d->vq, 1, 100), 0);
	assert_int_equal(virtqueue_fill(&d->vq, 2, 50), 0);
	assert_int_equal(used_idx(d), 0); /* nothing visible to the driver yet */
	assert_int_equal(used_elem(d, 2).len, 50);
	assert_int_equal(virtqueue_fill(&d->vq, 3, 0), -EINVAL); /* nothing more in flight */
	virtqueue_publish(&d->vq);
	assert_int_equal(used_idx(d), 3);
	assert_true(virtqueue_should_notify(&d->vq));
	drv_free(d);
}

static void test_indirect_table(void **state)
{
	struct drv *d = drv_new(8, both);

	(void)state;
	put_desc(d, 6, BUF_GPA, 16, VIRTQ_DESC_F_NEXT, 2);
	/* The WRITE flag on the table's descriptor means nothing: the spec has it ignored. */
	put_desc(d, 2, IND_GPA, 3 * 16, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_WRITE, 0);
	put_desc_at(d, IND_GPA, 0, BUF_GPA + 100, 8, VIRTQ_DESC_F_NEXT, 2);
	put_desc_at(d, IND_GPA, 2, HIGH + MiB(64), 4096, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 1);
	put_desc_at(d, IND_GPA, 1, BUF_GPA + 200, 4, VIRTQ_DESC_F_WRITE, 0);
	offer(d, 6);
	assert_int_equal(pop(d), 1);
	assert_int_equal(d->c.nsegs, 4);
	assert_int_equal(d->c.nreadable, 2);
	expect_seg(d, 0, BUF_GPA, 16, false);
	expect_seg(d, 1, BUF_GPA + 100, 8, false);
	expect_seg(d, 2, HIGH + MiB(64), 4096, true);
	expect_seg(d, 3, BUF_GPA + 200, 4, true);
	/* A table of exactly the queue size, at an address aligned to nothing. */
	for (unsigned i = 0; i < 8; i++)
		put_desc_at(d, IND_GPA + 3, i, BUF_GPA + i, 1, i < 7 ? VIRTQ_DESC_F_NEXT : 0,
		            (uint16_t)(i + 1));
	put_desc(d, 0, IND_GPA + 3, 8 * 16, VIRTQ_DESC_F_INDIRECT, 0);
	offer(d, 0);
	assert_int_equal(pop(d), 1);
	assert_int_equal(d->c.nsegs, 8);
	expect_seg(d, 7, BUF_GPA + 7, 1, false);
	drv_free(d);
}

/* Zero-length descriptors access nothing: no segment, their address unchecked. */
static void test_zero_length(void **state)
{
	struct drv *d = drv_new(8, both);

	(void)state;
	put_desc(d, 0, 0xdead00000000ULL, 0, VIRTQ_DESC_F_NEXT, 1);
	put_desc(d, 1, BUF_GPA, 16, VIRTQ_DESC_F_NEXT, 2);
	put_desc(d, 2, UINT64_MAX, 0, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 3);
	put_desc(d, 3, BUF_GPA + 64, 8, VIRTQ_DESC_F_WRITE, 0);
	offer(d, 0);
	assert_int_equal(pop(d), 1);
	assert_int_equal(d->c.nsegs, 2);
	expect_seg(d, 0, BUF_GPA, 16, false);
	expect_seg(d, 1, BUF_GPA + 64, 8, true);
	/* A chain of nothing but a zero-length buffer is a chain of no segments. */
	put_desc(d, 4, HOLE, 0, VIRTQ_DESC_F_WRITE, 0);
	offer(d, 4);
	assert_int_equal(pop(d), 1);
	assert_int_equal(d->c.head, 4);
	assert_int_equal(d->c.nsegs, 0);
	assert_int_equal(virtqueue_push(&d->vq, 0, 8), 0);
	assert_int_equal(virtqueue_push(&d->vq, 4, 0), 0);
	/* Zero length does not excuse the order: readable after writable. */
	put_desc(d, 5, BUF_GPA, 0, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 6);
	put_desc(d, 6, BUF_GPA, 0, 0, 0);
	offer(d, 5);
	expect_broken(d, -EINVAL, "descriptor 6: device-readable after device-writable");
	drv_free(d);
}

/* ---- notification suppression ---- */

/* The driver's used_event: a notification when the used index passes it, not before. */
static void test_event_idx_used_event(void **state)
{
	struct drv *d = drv_new(8, both);

	(void)state;
	for (uint16_t i = 0; i < 6; i++) {
		put_desc(d, i, BUF_GPA, 8, VIRTQ_DESC_F_WRITE, 0);
		offer(d, i);
	}
	/* The driver asks for a notification once entry 2 is used: used->idx reaches 3. */
	set_used_event(d, 2);
	/* NO_INTERRUPT is not for EVENT_IDX queues: ignored. */
	*avail_word(d, 0) = htole16(VIRTQ_AVAIL_F_NO_INTERRUPT);
	assert_false(virtqueue_should_notify(&d->vq)); /* nothing used yet */
	bool want[6] = { false, false, true, false, false, false };
	for (uint16_t i = 0; i < 6; i++) {
		assert_int_equal(pop(d), 1);
		assert_int_equal(virtqueue_push(&d->vq, d->c.head, 8), 0);
		assert_int_equal(virtqueue_should_notify(&d->vq), want[i]);
	}
	/* A batch that jumps over used_event is notified once. */
	set_used_event(d, 7);
	for (uint16_t i = 0; i < 2; i++) {
		put_desc(d, i, BUF_GPA, 8, VIRTQ_DESC_F_WRITE, 0);
		offer(d, i);
		assert_int_equal(pop(d), 1);
		assert_int_equal(virtqueue_push(&d->vq, d->c.head, 8), 0);
	}
	assert_int_equal(used_idx(d), 8);
	assert_true(virtqueue_should_notify(&d->vq));
	assert_false(virtqueue_should_notify(&d->vq)); /* nothing new since */
	drv_free(d);
}

/* Without EVENT_IDX the driver has only its NO_INTERRUPT flag. */
static void test_no_interrupt_flag(void **state)
{
	struct drv *d = drv_new(4, 0);

	(void)state;
	set_used_event(d, 100); /* not negotiated: ignored */
	for (uint16_t i = 0; i < 3; i++) {
		put_desc(d, i, BUF_GPA, 8, 0, 0);
		offer(d, i);
	}
	for (int i = 0; i < 3; i++) {
		*avail_word(d, 0) = htole16(i == 1 ? VIRTQ_AVAIL_F_NO_INTERRUPT : 0);
		assert_int_equal(pop(d), 1);
		assert_int_equal(virtqueue_push(&d->vq, d->c.head, 0), 0);
		assert_int_equal(virtqueue_should_notify(&d->vq), i != 1);
	}
	assert_false(virtqueue_should_notify(&d->vq));
	/* The device leaves avail_event alone when EVENT_IDX is off. */
	*used_word(d, 4 + 8 * 4) = htole16(0xabcd);
	assert_int_equal(virtqueue_set_avail_event(&d->vq), 0);
	assert_int_equal(avail_event(d), 0xabcd);
	drv_free(d);
}

/* The device's avail_event: the driver kicks for the next chain, not for later ones. */
static void test_event_idx_avail_event(void **state)
{
	struct drv *d = drv_new(8, both);
	uint16_t old;

	(void)state;
	for (uint16_t i = 0; i < 8; i++)
		put_desc(d, i, BUF_GPA, 8, 0, 0);
	for (uint16_t i = 0; i < 3; i++)
		offer(d, i);
	while (pop(d) == 1)
		assert_int_equal(virtqueue_push(&d->vq, d->c.head, 0), 0);
	/* Drained: the device asks to hear of the chain at index 3. */
	assert_int_equal(virtqueue_set_avail_event(&d->vq), 0);
	assert_int_equal(avail_event(d), 3);
	/* The driver's side (it checks after publishing): kick for the first chain... */
	old = d->avail_idx;
	offer(d, 3);
	assert_true(vring_need_event(avail_event(d), d->avail_idx, old));
	/* ...and not for the next, while the device has not asked again. */
	old = d->avail_idx;
	offer(d, 4);
	assert_false(vring_need_event(avail_event(d), d->avail_idx, old));
	assert_int_equal(pop(d), 1);
	assert_int_equal(pop(d), 1);
	assert_int_equal(pop(d), 0);
	/* A chain offered before the device asked again: set_avail_event says so. */
	offer(d, 5);
	assert_int_equal(virtqueue_set_avail_event(&d->vq), 1);
	assert_int_equal(avail_event(d), 5);
	assert_int_equal(pop(d), 1);
	assert_int_equal(d->c.head, 5);
	assert_int_equal(virtqueue_set_avail_event(&d->vq), 0);
	assert_int_equal(avail_event(d), 6);
	drv_free(d);
}

/* ---- 16-bit index wrap ---- */

/* A queue restored near the top of the index space, and suppression across the wrap. */
static void test_index_wrap(void **state)
{
	struct drv *d = drv_new(8, both);

	(void)state;
	virtqueue_reset(&d->vq);
	d->cfg.next_avail = d->cfg.next_used = 65533;
	*used_word(d, 2) = htole16(65533);
	set_avail_idx(d, 65533);
	assert_int_equal(virtqueue_enable(&d->vq, &d->cfg), 0);
	set_used_event(d, 65535); /* notify when entry 65535 is used: used->idx reaches 0 */
	for (uint16_t i = 0; i < 6; i++) {
		put_desc(d, i, BUF_GPA + i, 1, VIRTQ_DESC_F_WRITE, 0);
		offer(d, i);
	}
	assert_int_equal(d->avail_idx, 3);
	for (uint16_t i = 0; i < 6; i++) {
		uint16_t idx = (uint16_t)(65533 + i);
		assert_int_equal(pop(d), 1);
		assert_int_equal(d->c.head, i);
		expect_seg(d, 0, BUF_GPA + i, 1, true);
		assert_int_equal(virtqueue_push(&d->vq, i, 1), 0);
		assert_int_equal(used_idx(d), (uint16_t)(idx + 1));
		assert_int_equal(used_elem(d, idx).id, i);
		assert_int_equal(virtqueue_should_notify(&d->vq), idx == 65535);
	}
	assert_int_equal(pop(d), 0);
	assert_int_equal(virtqueue_set_avail_event(&d->vq), 0);
	assert_int_equal(avail_event(d), 3);
	drv_free(d);
}

/* Natural wrap: well over 65536 chains through a queue of 2, one at a time and in pairs. */
static void test_index_wrap_driven(void **state)
{
	struct drv *d = drv_new(2, both);

	(void)state;
	put_desc(d, 0, BUF_GPA, 64, 0, 0);
	put_desc(d, 1, BUF_GPA + 64, 64, VIRTQ_DESC_F_WRITE, 0);
	for (unsigned n = 0; n < 70000; n++) {
		unsigned k = n % 3 ? 1 : 2;
		for (unsigned j = 0; j < k; j++)
			queue_head(d, (uint16_t)j);
		set_avail_idx(d, d->avail_idx);
		for (unsigned j = 0; j < k; j++) {
			assert_int_equal(pop(d), 1);
			assert_int_equal(d->c.head, j);
			assert_int_equal(virtqueue_push(&d->vq, d->c.head, 64 * j), 0);
		}
		assert_int_equal(pop(d), 0);
		assert_int_equal(used_idx(d), d->avail_idx);
		set_used_event(d, (uint16_t)(d->avail_idx - 1));
		virtqueue_should_notify(&d->vq);
	}
	assert_false(virtqueue_broken(&d->vq));
	drv_free(d);
}

/* ---- hostile chains ---- */

static void test_hostile_desc_loop(void **state)
{
	struct drv *d = drv_new(8, both);

	(void)state;
	put_desc(d, 0, BUF_GPA, 8, VIRTQ_DESC_F_NEXT, 1);
	put_desc(d, 1, BUF_GPA, 8, VIRTQ_DESC_F_NEXT, 0);
	offer(d, 0);
	expect_broken(d, -ELOOP, "head 0, descriptor 0: chain loops (more than 8 descriptors)");
	drv_free(d);
	/* A descriptor that is its own next. */
	d = drv_new(8, both);
	put_desc(d, 5, BUF_GPA, 8, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 5);
	offer(d, 5);
	expect_broken(d, -ELOOP, "chain loops");
	drv_free(d);
	/* A loop inside an indirect table. */
	d = drv_new(8, both);
	put_desc(d, 0, IND_GPA, 4 * 16, VIRTQ_DESC_F_INDIRECT, 0);
	put_desc_at(d, IND_GPA, 0, BUF_GPA, 8, VIRTQ_DESC_F_NEXT, 3);
	put_desc_at(d, IND_GPA, 3, BUF_GPA, 8, VIRTQ_DESC_F_NEXT, 0);
	offer(d, 0);
	expect_broken(d, -ELOOP, "indirect descriptor 0: chain loops (more than 4");
	drv_free(d);
}

/*
 * The whole descriptor table in one chain, then an indirect table: each part fits, the
 * chain is longer than the queue.
 */
static void test_hostile_chain_too_long(void **state)
{
	struct drv *d = drv_new(8, both);

	(void)state;
	for (uint16_t i = 0; i < 7; i++)
		put_desc(d, i, BUF_GPA, 8, VIRTQ_DESC_F_NEXT, (uint16_t)(i + 1));
	put_desc(d, 7, IND_GPA, 2 * 16, VIRTQ_DESC_F_INDIRECT, 0);
	put_desc_at(d, IND_GPA, 0, BUF_GPA, 8, VIRTQ_DESC_F_NEXT, 1);
	put_desc_at(d, IND_GPA, 1, BUF_GPA, 8, 0, 0);
	offer(d, 0);
	expect_broken(d, -ELOOP,
	              "head 0, indirect descriptor 1: chain longer than the queue size 8");
	drv_free(d);
	/* One less and it is fine: 6 direct and 2 indirect make 8. */
	d = drv_new(8, both);
	for (uint16_t i = 0; i < 6; i++)
		put_desc(d, i, BUF_GPA, 8, VIRTQ_DESC_F_NEXT, (uint16_t)(i + 1));
	put_desc(d, 6, IND_GPA, 2 * 16, VIRTQ_DESC_F_INDIRECT, 0);
	put_desc_at(d, IND_GPA, 0, BUF_GPA, 8, VIRTQ_DESC_F_NEXT, 1);
	put_desc_at(d, IND_GPA, 1, BUF_GPA, 8, 0, 0);
	offer(d, 0);
	assert_int_equal(pop(d), 1);
	assert_int_equal(d->c.nsegs, 8);
	drv_free(d);
}

static void test_hostile_next_out_of_range(void **state)
{
	struct drv *d = drv_new(8, both);

	(void)state;
	put_desc(d, 2, BUF_GPA, 8, VIRTQ_DESC_F_NEXT, 8);
	offer(d, 2);
	expect_broken(d, -ERANGE, "head 2, descriptor 2: next 8 is not below 8");
	drv_free(d);
	d = drv_new(8, both);
	put_desc(d, 0, IND_GPA, 2 * 16, VIRTQ_DESC_F_INDIRECT, 0);
	put_desc_at(d, IND_GPA, 0, BUF_GPA, 8, VIRTQ_DESC_F_NEXT, 2);
	offer(d, 0);
	expect_broken(d, -ERANGE, "indirect descriptor 0: next 2 is not below 2");
	drv_free(d);
}

static void test_hostile_head_out_of_range(void **state)
{
	struct drv *d = drv_new(8, both);

	(void)state;
	offer(d, 8);
	expect_broken(d, -ERANGE, "available ring entry 0: head 8 is not below the queue size 8");
	drv_free(d);
	d = drv_new(8, both);
	offer(d, 0xffff);
	expect_broken(d, -ERANGE, "head 65535");
	drv_free(d);
}

static void test_hostile_nested_indirect(void **state)
{
	struct drv *d = drv_new(8, both);

	(void)state;
	put_desc(d, 0, IND_GPA, 2 * 16, VIRTQ_DESC_F_INDIRECT, 0);
	put_desc_at(d, IND_GPA, 0, BUF_GPA, 8, VIRTQ_DESC_F_NEXT, 1);
	put_desc_at(d, IND_GPA, 1, IND_GPA, 2 * 16, VIRTQ_DESC_F_INDIRECT, 0);
	offer(d, 0);
	expect_broken(d, -EINVAL, "head 0, indirect descriptor 1: nested indirect table");
	drv_free(d);
}

static void test_hostile_indirect_with_next(void **state)
{
	struct drv *d = drv_new(8, both);

	(void)state;
	put_desc(d, 0, IND_GPA, 16, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT, 1);
	put_desc(d, 1, BUF_GPA, 8, 0, 0);
	put_desc_at(d, IND_GPA, 0, BUF_GPA, 8, 0, 0);
	offer(d, 0);
	expect_broken(d, -EINVAL, "head 0, descriptor 0: INDIRECT together with NEXT");
	drv_free(d);
}

static void test_hostile_indirect_not_negotiated(void **state)
{
	struct drv *d = drv_new(8, VIRTIO_FEATURE(VIRTIO_F_EVENT_IDX));

	(void)state;
	put_desc(d, 0, IND_GPA, 16, VIRTQ_DESC_F_INDIRECT, 0);
	put_desc_at(d, IND_GPA, 0, BUF_GPA, 8, 0, 0);
	offer(d, 0);
	expect_broken(d, -EINVAL, "descriptor 0: INDIRECT not negotiated");
	drv_free(d);
}

/* One chain whose only descriptor points at a table @addr+@len. */
static struct drv *indirect_at(uint64_t addr, uint32_t len)
{
	struct drv *d = drv_new(8, both);

	put_desc(d, 1, addr, len, VIRTQ_DESC_F_INDIRECT, 0);
	offer(d, 1);
	return d;
}

static void test_hostile_indirect_table(void **state)
{
	struct drv *d;

	(void)state;
	d = indirect_at(IND_GPA, 24);
	expect_broken(d, -EINVAL,
	              "descriptor 1: indirect table length 24 is not a non-zero "
	              "multiple of 16");
	drv_free(d);
	d = indirect_at(IND_GPA, 0);
	expect_broken(d, -EINVAL, "indirect table length 0");
	drv_free(d);
	d = indirect_at(IND_GPA, 9 * 16);
	expect_broken(d, -E2BIG, "indirect table of 9 entries, more than the queue size 8");
	drv_free(d);
	d = indirect_at(RAM_END - 16, 32);
	expect_broken(d, -EFAULT, "indirect table 0x107fffff0+0x20 is not inside guest RAM");
	drv_free(d);
	d = indirect_at(HOLE + 4096, 16);
	expect_broken(d, -EFAULT, "indirect table 0xc0001000+0x10");
	drv_free(d);
	d = indirect_at(UINT64_MAX - 15, 32);
	expect_broken(d, -EFAULT, "indirect table 0xfffffffffffffff0+0x20");
	drv_free(d);
}

/*
 * A table that starts at the end of RAM below the hole and runs into it. On the host the
 * next bytes are RAM above the hole: made unreadable here, a read would kill the test.
 */
static void test_hostile_indirect_across_hole(void **state)
{
	struct drv *d = indirect_at(HOLE - 16, 32);
	uint8_t *above = d->m.regions[1].hva;

	(void)state;
	assert_ptr_equal(d->m.regions[0].hva + d->m.regions[0].size, above); /* contiguous */
	put_desc_at(d, HOLE - 16, 0, BUF_GPA, 8, VIRTQ_DESC_F_NEXT, 1);
	assert_int_equal(mprotect(above, 4096, PROT_NONE), 0);
	expect_broken(d, -EFAULT, "indirect table 0xbffffff0+0x20 is not inside guest RAM");
	assert_int_equal(mprotect(above, 4096, PROT_READ | PROT_WRITE), 0);
	drv_free(d);
}

/* One chain of one descriptor @addr+@len, device-readable or writable. */
static struct drv *buffer_at(uint64_t addr, uint32_t len, bool writable)
{
	struct drv *d = drv_new(8, both);

	put_desc(d, 4, addr, len, writable ? VIRTQ_DESC_F_WRITE : 0, 0);
	offer(d, 4);
	return d;
}

static void test_hostile_buffer_outside_ram(void **state)
{
	struct drv *d;

	(void)state;
	/* The last bytes of RAM are fine... */
	d = buffer_at(RAM_END - 16, 16, true);
	assert_int_equal(pop(d), 1);
	expect_seg(d, 0, RAM_END - 16, 16, true);
	drv_free(d);
	/* ...one more is not, nor is the first byte past the end. */
	d = buffer_at(RAM_END - 16, 17, true);
	expect_broken(d, -EFAULT,
	              "head 4, descriptor 4: buffer 0x107fffff0+0x11 is not "
	              "inside guest RAM");
	drv_free(d);
	d = buffer_at(RAM_END, 1, false);
	expect_broken(d, -EFAULT, "buffer 0x108000000+0x1 ");
	drv_free(d);
	/* In the MMIO hole. */
	d = buffer_at(HOLE + 0x1000, 8, false);
	expect_broken(d, -EFAULT, "buffer 0xc0001000+0x8");
	drv_free(d);
	/* gpa + len wraps around 2^64. */
	d = buffer_at(UINT64_MAX - 0xf, 0x20, true);
	expect_broken(d, -EFAULT, "buffer 0xfffffffffffffff0+0x20");
	drv_free(d);
	d = buffer_at(UINT64_MAX, 0xffffffff, false);
	expect_broken(d, -EFAULT, "buffer 0xffffffffffffffff+0xffffffff");
	drv_free(d);
}

/* Below the hole a buffer may end at its edge, not cross it; above it, start at its edge. */
static void test_hostile_buffer_across_hole(void **state)
{
	struct drv *d;

	(void)state;
	d = buffer_at(HOLE - 16, 16, false);
	assert_int_equal(pop(d), 1);
	expect_seg(d, 0, HOLE - 16, 16, false);
	drv_free(d);
	d = buffer_at(HIGH, 16, true);
	assert_int_equal(pop(d), 1);
	expect_seg(d, 0, HIGH, 16, true);
	drv_free(d);
	d = buffer_at(HOLE - 16, 17, false);
	expect_broken(d, -EFAULT, "buffer 0xbffffff0+0x11 is not inside guest RAM");
	drv_free(d);
	/* All the way from below the hole to above it. */
	d = buffer_at(HOLE - 16, 0x40000020, true);
	expect_broken(d, -EFAULT, "buffer 0xbffffff0+0x40000020");
	drv_free(d);
}

/*
 * RAM the guest may not write (a region marked read-only) is no place for a buffer the
 * device writes, nor for the used ring; reading from it is fine.
 */
static void test_hostile_readonly_region(void **state)
{
	struct drv *d = buffer_at(BUF_GPA, 8, false);
	struct virtqueue_config c = config(8, 0);

	(void)state;
	d->m.regions[0].readonly = true;
	assert_int_equal(pop(d), 1);
	expect_seg(d, 0, BUF_GPA, 8, false);
	put_desc(d, 4, BUF_GPA, 8, VIRTQ_DESC_F_WRITE, 0);
	offer(d, 4);
	expect_broken(d, -EFAULT, "head 4, descriptor 4: buffer 0x1000000+0x8 is not inside");
	d->m.regions[0].readonly = false;
	d->m.regions[1].readonly = true;
	c.desc = c.avail = BUF_GPA; /* the driver's areas may overlap: its own business */
	virtqueue_init(&d->vq, &d->m, QNAME);
	assert_int_equal(virtqueue_enable(&d->vq, &c), -EFAULT);
	c.used = BUF_GPA + 4096;
	virtqueue_init(&d->vq, &d->m, QNAME);
	assert_int_equal(virtqueue_enable(&d->vq, &c), 0);
	drv_free(d);
}

static void test_hostile_readable_after_writable(void **state)
{
	struct drv *d = drv_new(8, both);

	(void)state;
	put_desc(d, 0, BUF_GPA, 8, VIRTQ_DESC_F_NEXT, 1);
	put_desc(d, 1, BUF_GPA + 8, 8, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 2);
	put_desc(d, 2, BUF_GPA + 16, 8, 0, 0);
	offer(d, 0);
	expect_broken(d, -EINVAL, "head 0, descriptor 2: device-readable after device-writable");
	drv_free(d);
	/* The order holds across the step into an indirect table. */
	d = drv_new(8, both);
	put_desc(d, 0, BUF_GPA, 8, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 1);
	put_desc(d, 1, IND_GPA, 16, VIRTQ_DESC_F_INDIRECT, 0);
	put_desc_at(d, IND_GPA, 0, BUF_GPA + 8, 8, 0, 0);
	offer(d, 0);
	expect_broken(d, -EINVAL, "indirect descriptor 0: device-readable after device-writable");
	drv_free(d);
}

static void test_hostile_avail_jump(void **state)
{
	struct drv *d = drv_new(8, both);

	(void)state;
	for (uint16_t i = 0; i < 8; i++) {
		put_desc(d, i, BUF_GPA, 8, 0, 0);
		queue_head(d, i);
	}
	/* A whole ring's worth is allowed... */
	set_avail_idx(d, 8);
	for (int i = 0; i < 8; i++)
		assert_int_equal(pop(d), 1);
	/* ...more is not. */
	set_avail_idx(d, 8 + 9);
	expect_broken(d, -EOVERFLOW,
	              "available index 17 is 9 past the device's 8, more than "
	              "the queue size 8");
	drv_free(d);
	/* Nor may the index go back (it reads as a jump of 65535). */
	d = drv_new(8, both);
	put_desc(d, 0, BUF_GPA, 8, 0, 0);
	offer(d, 0);
	assert_int_equal(pop(d), 1);
	set_avail_idx(d, 0);
	expect_broken(d, -EOVERFLOW, "available index 0 is 65535 past the device's 1");
	drv_free(d);
}

/* More segments than the device takes (its seg_max), more bytes than the spec allows. */
static void test_hostile_chain_limits(void **state)
{
	struct drv *d = drv_new(8, both);

	(void)state;
	for (uint16_t i = 0; i < 5; i++)
		put_desc(d, i, BUF_GPA, 8, i < 4 ? VIRTQ_DESC_F_NEXT : 0, (uint16_t)(i + 1));
	offer(d, 0);
	assert_int_equal(pop_max(d, 4), -E2BIG);
	assert_true(virtqueue_broken(&d->vq));
	drv_free(d);
	/* 3 GiB and 1 GiB are 2^32 bytes: allowed; one byte more is not. */
	d = drv_new(8, both);
	put_desc(d, 0, 0, 0xC0000000u, VIRTQ_DESC_F_NEXT, 1);
	put_desc(d, 1, 0, 0x40000000u, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 2);
	put_desc(d, 2, 0, 0, VIRTQ_DESC_F_WRITE, 0);
	offer(d, 0);
	assert_int_equal(pop(d), 1);
	assert_int_equal(d->c.readable_len + d->c.writable_len, 1ULL << 32);
	put_desc(d, 2, 0, 1, VIRTQ_DESC_F_WRITE, 0);
	offer(d, 0);
	expect_broken(d, -EMSGSIZE, "head 0, descriptor 2: chain longer than 2^32 bytes");
	drv_free(d);
}

/* ---- enable ---- */

/* Enables @cfg on a fresh queue of @d, expecting @err and a report saying @what. */
static void enable_fails(struct drv *d, struct virtqueue_config cfg, int err, const char *what)
{
	long mark;

	virtqueue_init(&d->vq, &d->m, QNAME); /* a new queue: its own rate limit */
	mark = test_log_mark();
	assert_int_equal(virtqueue_enable(&d->vq, &cfg), err);
	assert_true(virtqueue_broken(&d->vq));
	assert_false(virtqueue_enabled(&d->vq));
	expect_one_report(mark, what);
	d->cfg = cfg;
	expect_sticky(d);
}

static void test_enable_checks(void **state)
{
	struct drv *d = drv_new(8, both);
	struct virtqueue_config c;

	(void)state;
	enable_fails(d, config(0, 0), -EINVAL, "queue size 0 is not a power of two up to 32768");
	enable_fails(d, config(24, 0), -EINVAL, "queue size 24");
	enable_fails(d, config(65536, 0), -EINVAL, "queue size 65536");
	c = config(8, 0);
	c.desc += 8;
	enable_fails(d, c, -EINVAL, "descriptor table at 0x100100008 is not 16-byte aligned");
	c = config(8, 0);
	c.avail += 1;
	enable_fails(d, c, -EINVAL, "available ring at 0x100200001 is not 2-byte aligned");
	c = config(8, 0);
	c.used += 2;
	enable_fails(d, c, -EINVAL, "used ring at 0x100300002 is not 4-byte aligned");
	/* Past the end of RAM, by the last entry. */
	c = config(8, 0);
	c.desc = RAM_END - 7 * 16;
	enable_fails(d, c, -EFAULT, "descriptor table 0x107ffff90+0x80 is not inside guest RAM");
	/* Straddling the hole, and in it. */
	c = config(8, 0);
	c.avail = HOLE - 6;
	enable_fails(d, c, -EFAULT, "available ring 0xbffffffa+0x16");
	c = config(8, 0);
	c.used = HOLE;
	enable_fails(d, c, -EFAULT, "used ring 0xc0000000+0x46");
	/* Wrapping around 2^64. */
	c = config(8, 0);
	c.desc = UINT64_MAX - 15;
	enable_fails(d, c, -EFAULT, "descriptor table 0xfffffffffffffff0+0x80");
	/* More in flight than the ring holds. */
	c = config(8, 0);
	c.next_avail = 9;
	enable_fails(d, c, -EINVAL, "next available 9 is more than 8 past next used 0");
	/* The edges that are fine: the largest queue, areas ending where RAM does. */
	virtqueue_reset(&d->vq);
	assert_int_equal(virtqueue_enable(&d->vq, &(struct virtqueue_config){ .size = 32768,
	                                                                      .desc = DESC_GPA,
	                                                                      .avail = AVAIL_GPA,
	                                                                      .used = USED_GPA }),
	                 0);
	virtqueue_reset(&d->vq);
	c = config(1, 0);
	c.desc = HOLE - 16;
	c.avail = RAM_END - 8;
	c.used = HIGH;
	assert_int_equal(virtqueue_enable(&d->vq, &c), 0);
	assert_true(virtqueue_enabled(&d->vq));
	drv_free(d);
}

/* A broken queue, reset, works again; one report per break, the name escaped. */
static void test_broken_then_reset(void **state)
{
	struct drv *d = drv_new(8, both);
	long mark;

	(void)state;
	offer(d, 9);
	expect_broken(d, -ERANGE, "head 9");
	virtqueue_reset(&d->vq);
	assert_false(virtqueue_broken(&d->vq));
	assert_false(virtqueue_enabled(&d->vq));
	assert_int_equal(pop(d), 0); /* disabled: nothing */
	assert_int_equal(virtqueue_push(&d->vq, 0, 0), -EINVAL);
	set_avail_idx(d, 0);
	*used_word(d, 2) = 0;
	assert_int_equal(virtqueue_enable(&d->vq, &d->cfg), 0);
	put_desc(d, 0, BUF_GPA, 8, 0, 0);
	offer(d, 0);
	assert_int_equal(pop(d), 1);
	assert_int_equal(virtqueue_push(&d->vq, 0, 0), 0);
	/*
	 * A guest that breaks the queue, resets the device and breaks it again, in a loop:
	 * the log takes the burst (10 a second, one already spent above), then stays quiet.
	 */
	mark = test_log_mark();
	for (int i = 0; i < 50; i++) {
		offer(d, 8);
		assert_int_equal(pop(d), -ERANGE);
		virtqueue_reset(&d->vq);
		set_avail_idx(d, 0);
		*used_word(d, 2) = 0;
		assert_int_equal(virtqueue_enable(&d->vq, &d->cfg), 0);
	}
	assert_in_range(count_lines(test_log_since(mark), QNAME ": "), 9, 20);
	drv_free(d);
	/* A name from a config cannot forge a second line. */
	d = drv_new(8, both);
	virtqueue_init(&d->vq, &d->m, "virtio-blk \"a\nb\" queue 0");
	assert_int_equal(virtqueue_enable(&d->vq, &d->cfg), 0);
	offer(d, 8);
	mark = test_log_mark();
	assert_int_equal(pop(d), -ERANGE);
	assert_non_null(strstr(test_log_since(mark), "virtio-blk \\\"a\\x0ab\\\" queue 0: "));
	assert_int_equal(count_lines(test_log_since(mark), ""), 1);
	drv_free(d);
}

/* ---- storms ---- */

static uint64_t rng_state;

static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

/* An address for a buffer of @len inside RAM, in either region. */
static uint64_t ram_addr(uint32_t len)
{
	if (rnd() % 2)
		return rnd() % (HOLE - len + 1);
	return HIGH + MiB(8) + rnd() % (RAM_END - HIGH - MiB(8) - len + 1);
}

/* An address a hostile driver likes: edges of RAM, the hole, the top of the space. */
static uint64_t nasty_addr(void)
{
	static const uint64_t pick[] = { 0,          HOLE - 1,       HOLE - 8,    HOLE,
		                         HIGH - 1,   HIGH,           RAM_END - 1, RAM_END,
		                         UINT64_MAX, UINT64_MAX - 7, DESC_GPA,    IND_GPA,
		                         USED_GPA };

	return rnd() % 3 ? pick[rnd() % (sizeof(pick) / sizeof(pick[0]))] : rnd();
}

static uint32_t nasty_len(void)
{
	static const uint32_t pick[] = { 0, 1, 8, 16, 24, 4096, 0x40000000u, 0xffffffffu };

	return rnd() % 2 ? pick[rnd() % (sizeof(pick) / sizeof(pick[0]))] : (uint32_t)rnd();
}

/* The segments a valid chain should yield, for comparison. */
struct expect {
	unsigned n;
	uint64_t gpa[MAX_SEGS];
	uint32_t len[MAX_SEGS];
	bool wr[MAX_SEGS];
};

/* A valid chain of 1..6 buffers, direct or through a table, from a random head. */
static uint16_t build_valid(struct drv *d, struct expect *e)
{
	unsigned size = d->cfg.size, k = 1 + rnd() % 6, nr = rnd() % (k + 1);
	bool ind = rnd() % 3 == 0;
	uint16_t perm[16];
	uint64_t table;

	for (unsigned i = 0; i < size; i++)
		perm[i] = (uint16_t)i;
	for (unsigned i = size - 1; i > 0; i--) {
		unsigned j = rnd() % (i + 1);
		uint16_t t = perm[i];
		perm[i] = perm[j];
		perm[j] = t;
	}
	table = ind ? IND_GPA + 3 * (rnd() % 2) : DESC_GPA; /* sometimes unaligned */
	e->n = 0;
	for (unsigned i = 0; i < k; i++) {
		uint32_t len = rnd() % 8 ? 1 + rnd() % 8192 : 0;
		uint64_t addr = len ? ram_addr(len) : nasty_addr();
		bool wr = i >= nr;
		uint16_t at = ind ? (uint16_t)i : perm[i];
		uint16_t next = ind ? (uint16_t)(i + 1) : perm[(i + 1) % size];

		put_desc_at(d, table, at, addr, len,
		            (wr ? VIRTQ_DESC_F_WRITE : 0) | (i + 1 < k ? VIRTQ_DESC_F_NEXT : 0),
		            next);
		if (len) {
			e->gpa[e->n] = addr;
			e->len[e->n] = len;
			e->wr[e->n++] = wr;
		}
	}
	if (!ind)
		return perm[0];
	put_desc(d, perm[0], table, k * 16, VIRTQ_DESC_F_INDIRECT, 0);
	return perm[0];
}

/* Garbage descriptors all over the table and an indirect table: anything may happen. */
static uint16_t build_garbage(struct drv *d)
{
	for (unsigned i = 0; i < d->cfg.size; i++) {
		uint16_t flags = (uint16_t)(rnd() % 8);
		uint64_t addr = flags & VIRTQ_DESC_F_INDIRECT && rnd() % 2 ? IND_GPA : nasty_addr();
		put_desc(d, i, addr, nasty_len(), flags, (uint16_t)(rnd() % (d->cfg.size + 2)));
		put_desc_at(d, IND_GPA, i, nasty_addr(), nasty_len(), (uint16_t)(rnd() % 8),
		            (uint16_t)(rnd() % (d->cfg.size + 2)));
	}
	return (uint16_t)(rnd() % (d->cfg.size + 1));
}

static void match_expected(struct drv *d, const struct expect *e)
{
	assert_int_equal(d->c.nsegs, e->n);
	for (unsigned i = 0; i < e->n; i++)
		expect_seg(d, i, e->gpa[i], e->len[i], e->wr[i]);
}

/* The driver's reaction to DEVICE_NEEDS_RESET: reset, fresh rings, enable again. */
static void restart(struct drv *d)
{
	virtqueue_reset(&d->vq);
	set_avail_idx(d, 0);
	*used_word(d, 2) = 0;
	assert_int_equal(virtqueue_enable(&d->vq, &d->cfg), 0);
}

/*
 * 100k chains, valid and not, from a seeded generator: valid ones come out exactly as
 * built, broken queues stay broken until reset, nothing handed out is outside RAM, and
 * the log stays within its rate limit.
 */
static void test_notification_storm(void **state)
{
	struct drv *d = drv_new(16, both);
	struct expect e;
	unsigned ok = 0, broken = 0;
	long mark = test_log_mark();
	time_t t0 = time(NULL);

	(void)state;
	rng_state = 0x5eed5eed5eedULL;
	for (unsigned n = 0; n < 100000; n++) {
		unsigned kind = rnd() % 100;
		uint16_t head = kind < 85 ? build_valid(d, &e) : build_garbage(d);
		uint16_t old = d->avail_idx;
		int r;

		if (kind >= 97)
			set_avail_idx(d, (uint16_t)(d->avail_idx + 17 + rnd() % 60000));
		else
			offer(d, head);
		set_used_event(d, (uint16_t)(old + rnd() % 3));
		r = pop(d);
		if (kind < 85) {
			assert_int_equal(r, 1);
			match_expected(d, &e);
		}
		if (r == 1) {
			assert_int_equal(
			        virtqueue_push(&d->vq, d->c.head, (uint32_t)d->c.writable_len), 0);
			assert_int_equal(used_elem(d, old).id, d->c.head);
			virtqueue_should_notify(&d->vq);
			assert_int_equal(virtqueue_set_avail_event(&d->vq), 0);
			ok++;
			continue;
		}
		assert_true(r < 0 && r != -EIO);
		expect_sticky(d);
		broken++;
		restart(d);
	}
	print_message("storm: %u chains, %u breaks\n", ok, broken);
	assert_true(ok > 80000);
	assert_true(broken > 5000);
	/* At most the burst per second of log lines about this queue. */
	assert_true(count_lines(test_log_since(mark), QNAME) <=
	            10 * ((unsigned)(time(NULL) - t0) + 2));
	drv_free(d);
}

/* A guest vCPU scribbling over its rings, on a thread of its own. */
struct scribbler {
	struct drv *d;
	bool stop;
	unsigned long writes;
	uint64_t state;
};

static uint64_t next_rnd(uint64_t *st)
{
	*st ^= *st << 13;
	*st ^= *st >> 7;
	*st ^= *st << 17;
	return *st;
}

/* Half the time a plausible descriptor word, half the time anything. */
static void scribble_desc(uint64_t *desc, uint64_t x, uint64_t v)
{
	static const uint64_t addrs[] = { BUF_GPA, BUF_GPA, RAM_END, HOLE, IND_GPA + 64 };
	unsigned i = (unsigned)(x >> 8) % 16;
	uint64_t w;

	if (x % 2) {
		w = addrs[v % 5] - (v >> 40) % 64;
		__atomic_store_n(&desc[2 * i], w, __ATOMIC_RELAXED);
		return;
	}
	/* len (up to 255), flags (any of the three), next (up to 15); or a lone buffer */
	w = v % 2 ? v & 0x000f0007000000ffULL : 64 | (v & 2ULL) << 32;
	__atomic_store_n(&desc[2 * i + 1], w, __ATOMIC_RELAXED);
}

static void *scribble(void *arg)
{
	struct scribbler *s = arg;
	uint64_t *desc = (uint64_t *)(void *)gp(s->d, DESC_GPA, 16 * 16);
	uint64_t *ind = (uint64_t *)(void *)gp(s->d, IND_GPA, 16 * 16);
	uint16_t *avail = avail_word(s->d, 0);

	while (!__atomic_load_n(&s->stop, __ATOMIC_RELAXED)) {
		uint64_t x = next_rnd(&s->state), v = next_rnd(&s->state);

		if (x % 3 == 0)
			scribble_desc(desc, x >> 2, v);
		else if (x % 3 == 1)
			__atomic_store_n(&ind[(x >> 8) % 32], v, __ATOMIC_RELAXED);
		else /* avail->idx (mostly within a ring of the device) and the ring entries */
			__atomic_store_n(&avail[1 + (x >> 8) % 17], (uint16_t)(v % 18),
			                 __ATOMIC_RELAXED);
		__atomic_fetch_add(&s->writes, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * A guest vCPU rewriting descriptors, tables and the available ring while the device
 * walks them: what the device checked is what it hands out, so nothing outside RAM ever
 * comes out, whatever the timing.
 */
static void test_hostile_concurrent_rewrite(void **state)
{
	struct drv *d = drv_new(16, both);
	struct scribbler s = { d, false, 0, 0x1234567 };
	long long deadline = now_ms() + 20000;
	unsigned pops = 0, breaks = 0;
	pthread_t t;

	(void)state;
	for (uint16_t i = 0; i < 16; i++)
		put_desc(d, i, BUF_GPA, 64, 0, 0);
	assert_int_equal(pthread_create(&t, NULL, scribble, &s), 0);
	/* Until both have been seen many times: the two threads may share one busy core. */
	for (unsigned n = 0; n < 200000 || pops < 1000 || breaks < 1000; n++) {
		int r = pop(d);

		if (r == 1) {
			pops++;
			assert_int_equal(virtqueue_push(&d->vq, d->c.head, 0), 0);
		} else if (r < 0) {
			breaks++;
			virtqueue_reset(&d->vq);
			assert_int_equal(virtqueue_enable(&d->vq, &d->cfg), 0);
		}
		if (n % 1024 == 0 && now_ms() > deadline)
			break;
	}
	__atomic_store_n(&s.stop, true, __ATOMIC_RELAXED);
	pthread_join(t, NULL);
	print_message("concurrent rewrite: %u chains, %u breaks, %lu guest writes\n", pops, breaks,
	              s.writes);
	assert_true(pops > 0);
	assert_true(breaks > 0);
	drv_free(d);
}

static int group_setup(void **state)
{
	(void)state;
	return test_log_capture("vq.log");
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_normal_chain),
		cmocka_unit_test(test_several_chains),
		cmocka_unit_test(test_fill_then_publish),
		cmocka_unit_test(test_indirect_table),
		cmocka_unit_test(test_zero_length),
		cmocka_unit_test(test_event_idx_used_event),
		cmocka_unit_test(test_no_interrupt_flag),
		cmocka_unit_test(test_event_idx_avail_event),
		cmocka_unit_test(test_index_wrap),
		cmocka_unit_test(test_index_wrap_driven),
		cmocka_unit_test(test_hostile_desc_loop),
		cmocka_unit_test(test_hostile_chain_too_long),
		cmocka_unit_test(test_hostile_next_out_of_range),
		cmocka_unit_test(test_hostile_head_out_of_range),
		cmocka_unit_test(test_hostile_nested_indirect),
		cmocka_unit_test(test_hostile_indirect_with_next),
		cmocka_unit_test(test_hostile_indirect_not_negotiated),
		cmocka_unit_test(test_hostile_indirect_table),
		cmocka_unit_test(test_hostile_indirect_across_hole),
		cmocka_unit_test(test_hostile_buffer_outside_ram),
		cmocka_unit_test(test_hostile_buffer_across_hole),
		cmocka_unit_test(test_hostile_readonly_region),
		cmocka_unit_test(test_hostile_readable_after_writable),
		cmocka_unit_test(test_hostile_avail_jump),
		cmocka_unit_test(test_hostile_chain_limits),
		cmocka_unit_test(test_enable_checks),
		cmocka_unit_test(test_broken_then_reset),
		cmocka_unit_test(test_notification_storm),
		cmocka_unit_test(test_hostile_concurrent_rewrite),
	};
	return TEST_MAIN(tests, group_setup, test_log_group_teardown);
}
