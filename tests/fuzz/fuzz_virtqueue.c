/*
 * The split virtqueue's device side (devices/virtio/virtqueue.c) and two device request
 * parsers behind it, on guest RAM filled from the input: descriptor tables with loops,
 * chains that run out of RAM or into the hole, indirect tables, huge lengths, indices
 * far ahead. The first header byte picks what reads the queue:
 *   0  the chain walker itself: virtqueue_pop() until the queue is empty or broken, each
 *      chain checked and its buffers touched, then pushed back;
 *   1  virtio-blk (devices/virtio/blk.c) over the virtio-mmio transport, its disk a
 *      read-only memfd: requests parsed, reads run on its I/O threads;
 *   2  virtio-vsock (devices/virtio/vsock.c): TX packet headers parsed, with a host
 *      socket listening on port 52 for the guest to connect to and a host connection
 *      that asks for guest port 1234, so RX packets go out too.
 *
 * Guest RAM is two regions, each a heap buffer of exactly its size, so that a byte
 * beyond either is an ASan report: [0, 32 KiB) and [4 GiB, 4 GiB + 8 KiB). The rings are
 * laid out one after the other, as a driver lays out a queue, from the start of region 0
 * (or of region 1), or at addresses the input gives; the rest of the input is the
 * memory: first the rings' region, then the other.
 *
 * Checked (walker): every segment handed out lies wholly inside one region, device-
 * writable ones not in a read-only region, readable ones first; the lengths add up; a
 * broken queue stays broken; the used index in guest memory is the device's.
 */
#include "devices/virtio/blk.h"
#include "devices/virtio/mmio.h"
#include "devices/virtio/virtio.h"
#include "devices/virtio/virtqueue.h"
#include "devices/virtio/vsock.h"
#include "devices/virtio/config.h"
#include "tests/fuzz/common.h"
#include "vmm/base/loop.h"

#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define KIB      1024ULL
#define HIGH     (4ULL << 30)
#define R0_SIZE  (32 * KIB)
#define R1_SIZE  (8 * KIB)
#define MAX_SEGS 64
#define DISK     (64 * KIB)

static uint8_t *ram[2];
static struct guest_memory mem;
static struct loop *loop;

/* ---- the input's header and the memory it fills ---- */

struct layout {
	unsigned size; /* entries per queue */
	uint64_t features;
	uint64_t desc[3], avail[3], used[3];
	bool high; /* the rings in region 1 */
	uint16_t next_avail, next_used;
	unsigned max_segs;
};

static uint64_t align(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

/* A queue size: mostly a power of two up to 256, sometimes one a driver may not write. */
static unsigned queue_size(uint8_t v)
{
	static const unsigned odd[] = { 0, 3, 257, 512, 1024, 32768, 65535, 65536 };

	return v < 0xf8 ? 1u << (v % 9) : odd[v - 0xf8];
}

static void read_layout(struct fuzz_in *in, struct layout *l, unsigned nqueues)
{
	uint8_t flags = fin_u8(in), size = fin_u8(in);
	uint64_t at;

	l->size = queue_size(size);
	l->features = VIRTIO_FEATURE(VIRTIO_F_VERSION_1) |
	              (flags & 1 ? VIRTIO_FEATURE(VIRTIO_F_EVENT_IDX) : 0) |
	              (flags & 2 ? VIRTIO_FEATURE(VIRTIO_F_INDIRECT_DESC) : 0);
	l->high = flags & 4;
	mem.regions[0].readonly = flags & 8;
	mem.regions[1].readonly = flags & 16;
	l->next_avail = flags & 32 ? fin_u16(in) : 0;
	l->next_used = flags & 32 ? fin_u16(in) : 0;
	l->max_segs = 1 + fin_u8(in) % MAX_SEGS;
	at = l->high ? HIGH : 0;
	for (unsigned q = 0; q < nqueues; q++) {
		if (flags & 64) { /* anywhere: misaligned, outside RAM, across the hole */
			l->desc[q] = fin_u64(in);
			l->avail[q] = fin_u64(in);
			l->used[q] = fin_u64(in);
			continue;
		}
		l->desc[q] = align(at, 16);
		l->avail[q] = l->desc[q] + VIRTQ_DESC_BYTES(l->size);
		l->used[q] = align(l->avail[q] + VIRTQ_AVAIL_BYTES(l->size), 4);
		at = l->used[q] + VIRTQ_USED_BYTES(l->size);
	}
}

static void fill_memory(struct fuzz_in *in, bool high)
{
	unsigned first = high ? 1 : 0;

	fin_bytes(in, ram[first], first ? R1_SIZE : R0_SIZE);
	fin_bytes(in, ram[!first], first ? R0_SIZE : R1_SIZE);
}

/* ---- 0: the walker ---- */

static bool inside(const void *p, uint32_t len, bool writable)
{
	for (unsigned i = 0; i < mem.nregions; i++) {
		const struct guest_region *g = &mem.regions[i];
		const uint8_t *b = p;
		if (b >= g->hva && b < g->hva + g->size && len <= g->size - (uint64_t)(b - g->hva))
			return !(writable && g->readonly);
	}
	return false;
}

static void check_chain(const struct virtqueue *vq, const struct virtqueue_chain *c)
{
	uint64_t rlen = 0, wlen = 0;
	uint8_t sum = 0;

	FUZZ_CHECK(c->head < vq->size, "head %u of a queue of %u", c->head, vq->size);
	FUZZ_CHECK(c->nsegs <= c->max && c->nreadable <= c->nsegs,
	           "%u segments (%u readable), max %u", c->nsegs, c->nreadable, c->max);
	for (unsigned i = 0; i < c->nsegs; i++) {
		const struct virtqueue_seg *s = &c->segs[i];
		FUZZ_CHECK(s->len > 0, "segment %u is empty", i);
		FUZZ_CHECK(s->writable == (i >= c->nreadable),
		           "segment %u: writable %d, %u readable", i, s->writable, c->nreadable);
		FUZZ_CHECK(inside(s->hva, s->len, s->writable),
		           "segment %u (%u bytes, %s) is not inside guest RAM", i, s->len,
		           s->writable ? "writable" : "readable");
		if (s->writable) {
			memset(s->hva, 0xa5, s->len);
			wlen += s->len;
		} else {
			for (uint32_t k = 0; k < s->len; k++)
				sum = (uint8_t)(sum + ((const uint8_t *)s->hva)[k]);
			rlen += s->len;
		}
	}
	(void)sum;
	FUZZ_CHECK(rlen == c->readable_len && wlen == c->writable_len,
	           "lengths %llu/%llu, segments add up to %llu/%llu",
	           (unsigned long long)c->readable_len, (unsigned long long)c->writable_len,
	           (unsigned long long)rlen, (unsigned long long)wlen);
	FUZZ_CHECK(rlen + wlen <= (1ULL << 32), "a chain of %llu bytes",
	           (unsigned long long)(rlen + wlen));
}

static void walker(struct fuzz_in *in)
{
	struct virtqueue vq;
	struct virtqueue_seg segs[MAX_SEGS];
	struct layout l;
	int r;

	read_layout(in, &l, 1);
	fill_memory(in, l.high);
	virtqueue_init(&vq, &mem, "fuzz queue");
	struct virtqueue_chain c = { .segs = segs, .max = l.max_segs };
	r = virtqueue_enable(&vq, &(struct virtqueue_config){ .size = l.size,
	                                                      .desc = l.desc[0],
	                                                      .avail = l.avail[0],
	                                                      .used = l.used[0],
	                                                      .features = l.features,
	                                                      .next_avail = l.next_avail,
	                                                      .next_used = l.next_used });
	if (r) {
		FUZZ_CHECK(virtqueue_broken(&vq) && virtqueue_pop(&vq, &c) == -EIO,
		           "a queue refused (%d) is not broken", r);
		return;
	}
	/* Chains popped and not pushed yet: pushed back in another order. */
	uint16_t held[8];
	unsigned nheld = 0;
	for (unsigned i = 0; i < 2 * l.size + 2; i++) {
		r = virtqueue_pop(&vq, &c);
		if (r == 0)
			r = virtqueue_set_avail_event(&vq);
		if (r <= 0)
			break;
		check_chain(&vq, &c);
		if (nheld < 8 && (c.head & 1)) {
			held[nheld++] = c.head;
			continue;
		}
		FUZZ_CHECK(virtqueue_push(&vq, c.head, (uint32_t)c.writable_len) == 0,
		           "push of head %u refused", c.head);
		virtqueue_should_notify(&vq);
	}
	if (r < 0) {
		FUZZ_CHECK(virtqueue_broken(&vq), "pop failed (%d), the queue is not broken", r);
		FUZZ_CHECK(virtqueue_pop(&vq, &c) == -EIO && c.nsegs == 0,
		           "a broken queue hands out chains");
		return;
	}
	if (!nheld && vq.used_idx == l.next_used)
		return; /* nothing pushed: used->idx is still what the guest left there */
	while (nheld)
		FUZZ_CHECK(virtqueue_push(&vq, held[--nheld], 0) == 0,
		           "push of a held chain refused");
	virtqueue_should_notify(&vq);
	FUZZ_CHECK(virtqueue_push(&vq, (uint16_t)vq.size, 0) == -EINVAL,
	           "a head beyond the queue pushed");
	uint16_t idx;
	memcpy(&idx, guest_memory_hva(&mem, l.used[0] + 2, 2), 2);
	FUZZ_CHECK(le16toh(idx) == vq.used_idx, "used->idx %u, the device's %u", le16toh(idx),
	           vq.used_idx);
}

/* ---- the devices, over the virtio-mmio transport ---- */

static void reg_write(struct virtio_transport *t, uint64_t off, uint32_t v)
{
	v = htole32(v);
	virtio_mmio_ops.write(t, off, (const uint8_t *)&v, 4);
}

static uint32_t reg_read(struct virtio_transport *t, uint64_t off)
{
	uint32_t v;

	virtio_mmio_ops.read(t, off, (uint8_t *)&v, 4);
	return le32toh(v);
}

/* Loop rounds until nothing is ready, at most @max. */
static void settle(unsigned max)
{
	for (unsigned i = 0; i < max; i++)
		loop_run_once(loop, 0);
}

/* Linux's start-up of the device with @l's queues, then DRIVER_OK. */
static void start(struct virtio_transport *t, const struct layout *l, unsigned nqueues)
{
	reg_write(t, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	reg_write(t, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	reg_write(t, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)l->features);
	reg_write(t, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	reg_write(t, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(l->features >> 32));
	reg_write(t, VIRTIO_MMIO_STATUS,
	          VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
	for (unsigned q = 0; q < nqueues; q++) {
		reg_write(t, VIRTIO_MMIO_QUEUE_SEL, q);
		reg_write(t, VIRTIO_MMIO_QUEUE_NUM, l->size);
		reg_write(t, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)l->desc[q]);
		reg_write(t, VIRTIO_MMIO_QUEUE_DESC_HIGH, (uint32_t)(l->desc[q] >> 32));
		reg_write(t, VIRTIO_MMIO_QUEUE_AVAIL_LOW, (uint32_t)l->avail[q]);
		reg_write(t, VIRTIO_MMIO_QUEUE_AVAIL_HIGH, (uint32_t)(l->avail[q] >> 32));
		reg_write(t, VIRTIO_MMIO_QUEUE_USED_LOW, (uint32_t)l->used[q]);
		reg_write(t, VIRTIO_MMIO_QUEUE_USED_HIGH, (uint32_t)(l->used[q] >> 32));
		reg_write(t, VIRTIO_MMIO_QUEUE_READY, 1);
	}
	reg_write(t, VIRTIO_MMIO_STATUS, reg_read(t, VIRTIO_MMIO_STATUS) | VIRTIO_STATUS_DRIVER_OK);
}

/* ---- 1: virtio-blk ---- */

static struct virtio_blk blk;
static struct virtio_transport blk_t;

static bool blk_busy(void)
{
	for (unsigned i = 0; i < VIRTIO_BLK_QUEUE_SIZE; i++)
		if (blk.reqs[i].busy)
			return true;
	return false;
}

static void blk_setup(void)
{
	int fd = memfd_create("fuzz-disk", MFD_CLOEXEC);
	uint8_t sector[512];

	FUZZ_CHECK(fd >= 0 && ftruncate(fd, DISK) == 0, "the disk");
	for (unsigned s = 0; s < DISK / 512; s++) {
		memset(sector, (int)s, sizeof(sector));
		FUZZ_CHECK(pwrite(fd, sector, sizeof(sector), s * 512) == sizeof(sector),
		           "the disk");
	}
	struct virtio_blk_options o = {
		.id = "fuzzdisk", .fd = fd, .read_only = true, .flush = true, .loop = loop
	};
	FUZZ_CHECK(virtio_blk_init(&blk, &o) == 0, "virtio_blk_init()");
	FUZZ_CHECK(virtio_mmio_init(&blk_t, &blk.dev, &mem, loop, -1) == 0, "virtio_mmio_init()");
	/* The device keeps its own descriptor of the image (blk_io): this one is the test's. */
}

static void blk_run(struct fuzz_in *in)
{
	struct layout l;

	/* A reset first: no request of the last input still writes guest memory. */
	reg_write(&blk_t, VIRTIO_MMIO_STATUS, 0);
	read_layout(in, &l, 1);
	fill_memory(in, l.high);
	start(&blk_t, &l, 1);
	reg_write(&blk_t, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	/* Until every request is answered: reads complete on the loop from the I/O threads. */
	for (unsigned i = 0, idle = 0; i < 20000 && idle < 3; i++) {
		bool busy = blk_busy();
		loop_run_once(loop, busy ? 1000 : 0);
		idle = busy ? 0 : idle + 1;
	}
	FUZZ_CHECK(!blk_busy(), "virtio-blk still has requests in flight");
	reg_write(&blk_t, VIRTIO_MMIO_STATUS, 0);
}

/* ---- 2: virtio-vsock ---- */

enum { RXQ, TXQ, EVQ };
#define GUEST_CID  3
#define HOST_PORT  52   /* the host listens at <uds_path>_52 */
#define GUEST_PORT 1234 /* the host asks for it */

static struct virtio_vsock vsock;
static struct virtio_transport vsock_t;
static char uds[108];
static int host_listen = -1;
static int host_fds[16];
static unsigned nhost;

static int unix_socket(const char *path, bool listening)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	FUZZ_CHECK(fd >= 0 && strlen(path) < sizeof(a.sun_path), "socket for %s", path);
	memcpy(a.sun_path, path, strlen(path));
	if (listening)
		FUZZ_CHECK(bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 && listen(fd, 64) == 0,
		           "listening on %s", path);
	else if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void vsock_setup(void)
{
	char path[128];
	struct vsock_config cfg = { .present = true, .guest_cid = GUEST_CID, .uds_path = uds };

	snprintf(uds, sizeof(uds), "%s/v.sock", fuzz_dir());
	snprintf(path, sizeof(path), "%s_%u", uds, HOST_PORT);
	host_listen = unix_socket(path, true);
	FUZZ_CHECK(virtio_vsock_init(&vsock, &cfg, loop) == 0, "virtio_vsock_init()");
	FUZZ_CHECK(virtio_mmio_init(&vsock_t, &vsock.dev, &mem, loop, -1) == 0,
	           "virtio_mmio_init()");
}

static void host_close_all(void)
{
	while (nhost)
		close(host_fds[--nhost]);
}

/* Host peers the guest connected to: each accepted, and given something to read. */
static void host_accept(void)
{
	int fd;

	while (nhost < 16 &&
	       (fd = accept4(host_listen, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0)
		host_fds[nhost++] = fd;
	while (nhost == 16 && (fd = accept4(host_listen, NULL, NULL, SOCK_CLOEXEC)) >= 0)
		close(fd); /* beyond what we keep */
}

static void vsock_run(struct fuzz_in *in)
{
	struct layout l;
	int fd;

	/* A reset: the loop closes what the last input left; so does the host. */
	reg_write(&vsock_t, VIRTIO_MMIO_STATUS, 0);
	settle(4);
	host_close_all();
	host_accept();
	host_close_all();
	settle(2);
	vsock.last_local_port = VSOCK_LOCAL_PORT_BASE - 1; /* the same ports every input */
	read_layout(in, &l, 3);
	fill_memory(in, l.high);
	start(&vsock_t, &l, 3);
	settle(2); /* listening */
	/* A host process asks for the guest's port 1234: REQUEST, from port 1 << 30. */
	fd = unix_socket(uds, false);
	if (fd >= 0) {
		host_fds[nhost++] = fd;
		char line[32];
		int n = snprintf(line, sizeof(line), "CONNECT %u\n", GUEST_PORT);
		FUZZ_CHECK(send(fd, line, (size_t)n, MSG_NOSIGNAL) == n, "CONNECT");
	}
	settle(3);
	reg_write(&vsock_t, VIRTIO_MMIO_QUEUE_NOTIFY, RXQ);
	settle(2);
	reg_write(&vsock_t, VIRTIO_MMIO_QUEUE_NOTIFY, TXQ);
	settle(3);
	/* The host side talks: each peer the guest reached, and the CONNECT one, write. */
	host_accept();
	for (unsigned i = 0; i < nhost; i++)
		if (send(host_fds[i], "host data", 9, MSG_NOSIGNAL) < 0)
			continue; /* closed by flint already: fine */
	settle(3);
	reg_write(&vsock_t, VIRTIO_MMIO_QUEUE_NOTIFY, RXQ);
	settle(3);
	/*
	 * A second round: the guest makes two more TX chains available (the ring's next
	 * entries, as the input wrote them), now that RESPONSEs went out.
	 */
	uint16_t *idx = guest_memory_hva(&mem, l.avail[TXQ] + 2, 2);
	if (idx && !((uintptr_t)idx % 2)) {
		*idx = htole16((uint16_t)(le16toh(*idx) + 2));
		reg_write(&vsock_t, VIRTIO_MMIO_QUEUE_NOTIFY, TXQ);
		settle(3);
		reg_write(&vsock_t, VIRTIO_MMIO_QUEUE_NOTIFY, RXQ);
		settle(2);
	}
}

/* ---- the target ---- */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	fuzz_setup();
	ram[0] = malloc(R0_SIZE);
	ram[1] = malloc(R1_SIZE);
	loop = loop_new();
	FUZZ_CHECK(ram[0] && ram[1] && loop, "out of memory");
	mem = (struct guest_memory){
		.fd = -1, .base = ram[0], .size = R0_SIZE + R1_SIZE, .nregions = 2
	};
	mem.regions[0] = (struct guest_region){ 0, R0_SIZE, ram[0], 0, false };
	mem.regions[1] = (struct guest_region){ HIGH, R1_SIZE, ram[1], R0_SIZE, false };
	blk_setup();
	vsock_setup();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };

	switch (fin_u8(&in) % 3) {
	case 0:
		walker(&in);
		break;
	case 1:
		blk_run(&in);
		break;
	default:
		vsock_run(&in);
		break;
	}
	return 0;
}
