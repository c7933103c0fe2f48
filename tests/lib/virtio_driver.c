/* A guest virtio driver for unit tests (see virtio_driver.h). */
#include "tests/lib/virtio_driver.h"
#include "vmm/base/clock.h"

#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int vdrv_setup(struct vdrv *d, uint64_t mem_size)
{
	int r;

	memset(d, 0, sizeof(*d));
	r = guest_memory_init(&d->mem, mem_size, GUEST_BACKING_4K);
	if (r)
		return r;
	d->loop = loop_new();
	if (!d->loop) {
		guest_memory_destroy(&d->mem);
		return -ENOMEM;
	}
	d->brk = 0x1000; /* page 0 stays unused: a zero address is never a valid buffer here */
	return 0;
}

int vdrv_bind(struct vdrv *d, struct virtio_dev *dev)
{
	d->dev = dev;
	return virtio_mmio_init(&d->t, dev, &d->mem, d->loop, -1);
}

int vdrv_init(struct vdrv *d, struct virtio_dev *dev, uint64_t mem_size)
{
	int r = vdrv_setup(d, mem_size);

	if (!r && (r = vdrv_bind(d, dev))) {
		loop_free(d->loop);
		guest_memory_destroy(&d->mem);
	}
	return r;
}

void vdrv_unbind(struct vdrv *d)
{
	if (d->dev)
		virtio_mmio_destroy(&d->t);
	d->dev = NULL;
}

void vdrv_destroy(struct vdrv *d)
{
	vdrv_unbind(d);
	loop_free(d->loop);
	guest_memory_destroy(&d->mem);
}

void vdrv_read_n(struct vdrv *d, uint64_t off, void *buf, uint32_t len)
{
	virtio_mmio_ops.read(&d->t, off, buf, len);
}

void vdrv_write_n(struct vdrv *d, uint64_t off, const void *buf, uint32_t len)
{
	virtio_mmio_ops.write(&d->t, off, buf, len);
}

uint32_t vdrv_read(struct vdrv *d, uint64_t off)
{
	uint32_t v;

	vdrv_read_n(d, off, &v, 4);
	return le32toh(v);
}

void vdrv_write(struct vdrv *d, uint64_t off, uint32_t v)
{
	v = htole32(v);
	vdrv_write_n(d, off, &v, 4);
}

static void add_status(struct vdrv *d, uint32_t bits)
{
	vdrv_write(d, VIRTIO_MMIO_STATUS, vdrv_read(d, VIRTIO_MMIO_STATUS) | bits);
}

uint64_t vdrv_negotiate(struct vdrv *d, uint64_t want)
{
	uint64_t offered, agreed;

	vdrv_write(d, VIRTIO_MMIO_STATUS, 0);
	add_status(d, VIRTIO_STATUS_ACKNOWLEDGE);
	add_status(d, VIRTIO_STATUS_DRIVER);
	vdrv_write(d, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	offered = (uint64_t)vdrv_read(d, VIRTIO_MMIO_DEVICE_FEATURES) << 32;
	vdrv_write(d, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	offered |= vdrv_read(d, VIRTIO_MMIO_DEVICE_FEATURES);
	agreed = want & offered;
	vdrv_write(d, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	vdrv_write(d, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(agreed >> 32));
	vdrv_write(d, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	vdrv_write(d, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)agreed);
	add_status(d, VIRTIO_STATUS_FEATURES_OK);
	return (vdrv_read(d, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_FEATURES_OK) ? agreed : 0;
}

uint64_t vdrv_alloc(struct vdrv *d, uint64_t len, uint64_t align)
{
	uint64_t gpa = (d->brk + align - 1) & ~(align - 1);

	if (gpa + len > d->mem.size) {
		fprintf(stderr, "vdrv_alloc: guest memory full\n");
		abort();
	}
	d->brk = gpa + len;
	memset(vdrv_hva(d, gpa, len), 0, len);
	return gpa;
}

void *vdrv_hva(struct vdrv *d, uint64_t gpa, uint64_t len)
{
	void *p = guest_memory_hva(&d->mem, gpa, len ? len : 1);

	if (!p) {
		fprintf(stderr, "vdrv_hva: %#llx+%llu is not RAM\n", (unsigned long long)gpa,
		        (unsigned long long)len);
		abort();
	}
	return p;
}

static void run_ready(struct vdrv *d)
{
	/* Each round runs what is ready; a few rounds cover work that queues more work. */
	for (int i = 0; i < 4; i++)
		loop_run_once(d->loop, 0);
}

static void write_addr(struct vdrv *d, uint64_t lo, uint64_t gpa)
{
	vdrv_write(d, lo, (uint32_t)gpa);
	vdrv_write(d, lo + 4, (uint32_t)(gpa >> 32));
}

uint32_t vdrv_queue_setup(struct vdrv *d, unsigned q, uint16_t size)
{
	struct vdrv_queue *vq = &d->q[q];

	*vq = (struct vdrv_queue){ .size = size };
	vq->desc = vdrv_alloc(d, VIRTQ_DESC_BYTES(size), 4096);
	vq->avail = vdrv_alloc(d, VIRTQ_AVAIL_BYTES(size), 4096);
	vq->used = vdrv_alloc(d, VIRTQ_USED_BYTES(size), 4096);
	vdrv_write(d, VIRTIO_MMIO_QUEUE_SEL, q);
	vdrv_write(d, VIRTIO_MMIO_QUEUE_NUM, size);
	write_addr(d, VIRTIO_MMIO_QUEUE_DESC_LOW, vq->desc);
	write_addr(d, VIRTIO_MMIO_QUEUE_AVAIL_LOW, vq->avail);
	write_addr(d, VIRTIO_MMIO_QUEUE_USED_LOW, vq->used);
	vdrv_write(d, VIRTIO_MMIO_QUEUE_READY, 1);
	return vdrv_read(d, VIRTIO_MMIO_QUEUE_READY);
}

void vdrv_driver_ok(struct vdrv *d)
{
	add_status(d, VIRTIO_STATUS_DRIVER_OK);
	run_ready(d);
}

uint32_t vdrv_start(struct vdrv *d, uint64_t want, uint16_t size)
{
	if (!vdrv_negotiate(d, want))
		return vdrv_read(d, VIRTIO_MMIO_STATUS);
	for (unsigned i = 0; i < d->dev->nqueues; i++)
		vdrv_queue_setup(d, i, size);
	vdrv_driver_ok(d);
	return vdrv_read(d, VIRTIO_MMIO_STATUS);
}

uint16_t vdrv_add(struct vdrv *d, unsigned q, const struct vdrv_buf *bufs, unsigned n)
{
	struct vdrv_queue *vq = &d->q[q];
	struct virtq_desc *table = vdrv_hva(d, vq->desc, VIRTQ_DESC_BYTES(vq->size));
	uint16_t *avail = vdrv_hva(d, vq->avail, VIRTQ_AVAIL_BYTES(vq->size));
	uint16_t head = vq->next_desc;

	for (unsigned i = 0; i < n; i++) {
		uint16_t at = (uint16_t)((head + i) % vq->size);
		uint16_t next = (uint16_t)((at + 1) % vq->size);
		table[at] = (struct virtq_desc){
			.addr = htole64(bufs[i].gpa),
			.len = htole32(bufs[i].len),
			.flags = htole16((uint16_t)((bufs[i].writable ? VIRTQ_DESC_F_WRITE : 0) |
			                            (i + 1 < n ? VIRTQ_DESC_F_NEXT : 0))),
			.next = htole16(next),
		};
	}
	vq->next_desc = (uint16_t)((head + n) % vq->size);
	avail[2 + vq->avail_idx % vq->size] = htole16(head);
	__atomic_store_n(&avail[1], htole16(++vq->avail_idx), __ATOMIC_RELEASE);
	return head;
}

void vdrv_kick(struct vdrv *d, unsigned q)
{
	vdrv_write(d, VIRTIO_MMIO_QUEUE_NOTIFY, q);
	run_ready(d);
}

uint16_t vdrv_used_idx(struct vdrv *d, unsigned q)
{
	uint16_t *used = vdrv_hva(d, d->q[q].used, VIRTQ_USED_BYTES(d->q[q].size));

	return le16toh(__atomic_load_n(&used[1], __ATOMIC_ACQUIRE));
}

int vdrv_wait_used(struct vdrv *d, unsigned q, uint32_t *id, uint32_t *len, unsigned ms)
{
	struct vdrv_queue *vq = &d->q[q];
	long long deadline = clock_now_ns() + (long long)ms * 1000000;
	struct virtq_used_elem *ring;

	while (vdrv_used_idx(d, q) == vq->last_used) {
		if (clock_now_ns() > deadline)
			return 0;
		loop_run_once(d->loop, 1000);
	}
	ring = (struct virtq_used_elem *)((uint8_t *)vdrv_hva(d, vq->used,
	                                                      VIRTQ_USED_BYTES(vq->size)) +
	                                  4);
	if (id)
		*id = le32toh(ring[vq->last_used % vq->size].id);
	if (len)
		*len = le32toh(ring[vq->last_used % vq->size].len);
	vq->last_used++;
	return 1;
}

void vdrv_set_avail_idx(struct vdrv *d, unsigned q, uint16_t idx)
{
	uint16_t *avail = vdrv_hva(d, d->q[q].avail, VIRTQ_AVAIL_BYTES(d->q[q].size));

	d->q[q].avail_idx = idx;
	__atomic_store_n(&avail[1], htole16(idx), __ATOMIC_RELEASE);
}
