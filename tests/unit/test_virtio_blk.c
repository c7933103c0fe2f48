/*
 * virtio-blk through the virtio-mmio transport and the test driver: reads and writes land
 * on the image byte for byte, read-only and flush behave as Firecracker's, GET_ID, and a
 * hostile driver (requests outside the disk, overflowing sectors, chains without a status
 * byte, odd lengths, unknown types, resets with I/O in flight) never crashes flint. The
 * host's updates of a running drive (Firecracker's PATCH /drives): a new image swapped in
 * mid-stream, a new rate limiter.
 */
#include "devices/virtio/blk.h"
#include "tests/lib/util.h"
#include "tests/lib/virtio_driver.h"
#include "vmm/base/clock.h"
#include "vmm/base/log.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/virtio_blk.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#define DISK_SECTORS 2048ULL /* 1 MiB */
#define DISK_BYTES   (DISK_SECTORS * 512)
#define WANT                                                                                       \
	(VIRTIO_FEATURE(VIRTIO_F_VERSION_1) | VIRTIO_FEATURE(VIRTIO_F_EVENT_IDX) |                 \
	 VIRTIO_FEATURE(VIRTIO_F_INDIRECT_DESC) | VIRTIO_FEATURE(VIRTIO_BLK_F_FLUSH) |             \
	 VIRTIO_FEATURE(VIRTIO_BLK_F_RO) | VIRTIO_FEATURE(VIRTIO_BLK_F_SEG_MAX))
#define IN_FLIGHT 0xff /* status byte value the device never writes */

struct fixture {
	struct virtio_blk blk;
	struct vdrv d;
	int fd;
	bool read_only;
};

/* Byte i of the image before any write. */
static uint8_t pattern(uint64_t i)
{
	return (uint8_t)(i * 7 + (i >> 9));
}

/* Byte i of the images swapped in: unlike the first one's anywhere. */
static uint8_t pattern2(uint64_t i)
{
	return (uint8_t)(pattern(i) ^ 0x5a);
}

/* An image of @sectors sectors, byte i being @fill(i), open read-write. */
static int make_image_of(uint64_t sectors, uint8_t (*fill)(uint64_t))
{
	static unsigned n;
	uint64_t bytes = sectors * 512;
	char path[512];
	uint8_t *img = malloc(bytes);
	int fd;

	assert_non_null(img);
	for (uint64_t i = 0; i < bytes; i++)
		img[i] = fill(i);
	snprintf(path, sizeof(path), "%s/disk%u.img", test_tmpdir(), n++);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, img, bytes, 0), (ssize_t)bytes);
	free(img);
	return fd;
}

static int make_image(void)
{
	return make_image_of(DISK_SECTORS, pattern);
}

static const struct rate_limiter *limiter; /* for the next setup */

static int setup_with(void **state, bool read_only, bool flush)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->fd = make_image();
	f->read_only = read_only;
	assert_int_equal(vdrv_setup(&f->d, 16 << 20), 0);
	assert_int_equal(
	        virtio_blk_init(&f->blk, &(struct virtio_blk_options){ .id = "rootfs",
	                                                               .fd = f->fd,
	                                                               .read_only = read_only,
	                                                               .flush = flush,
	                                                               .limiter = limiter,
	                                                               .loop = f->d.loop }),
	        0);
	assert_int_equal(vdrv_bind(&f->d, &f->blk.dev), 0);
	*state = f;
	return 0;
}

static int setup(void **state)
{
	return setup_with(state, false, true);
}

static int setup_ro(void **state)
{
	return setup_with(state, true, false);
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	vdrv_unbind(&f->d);
	virtio_blk_destroy(&f->blk);
	vdrv_destroy(&f->d);
	close(f->fd);
	free(f);
	return 0;
}

/* A request in guest memory: header, data buffer, status byte. */
struct req {
	uint64_t hdr, data, status;
	uint32_t len;
	uint16_t head;
};

static struct req submit(struct fixture *f, uint32_t type, uint64_t sector, uint32_t len)
{
	bool in = type == VIRTIO_BLK_T_IN || type == VIRTIO_BLK_T_GET_ID;
	struct req r = { .hdr = vdrv_alloc(&f->d, 16, 16),
		         .data = len ? vdrv_alloc(&f->d, len, 512) : 0,
		         .status = vdrv_alloc(&f->d, 1, 1),
		         .len = len };
	struct virtio_blk_outhdr h = { .type = type, .sector = sector };
	struct vdrv_buf bufs[3] = { { r.hdr, 16, false } };
	unsigned n = 1;

	memcpy(vdrv_hva(&f->d, r.hdr, 16), &h, 16);
	*(uint8_t *)vdrv_hva(&f->d, r.status, 1) = IN_FLIGHT;
	if (len)
		bufs[n++] = (struct vdrv_buf){ r.data, len, in };
	bufs[n++] = (struct vdrv_buf){ r.status, 1, true };
	r.head = vdrv_add(&f->d, 0, bufs, n);
	return r;
}

static uint8_t status_of(struct fixture *f, const struct req *r)
{
	return *(uint8_t *)vdrv_hva(&f->d, r->status, 1);
}

/* Kick, wait for @r's answer; returns its status and checks the used length. */
static uint8_t complete(struct fixture *f, const struct req *r, uint32_t want_used)
{
	uint32_t id, len;

	vdrv_kick(&f->d, 0);
	assert_int_equal(vdrv_wait_used(&f->d, 0, &id, &len, 5000), 1);
	assert_int_equal(id, r->head);
	if (status_of(f, r) == VIRTIO_BLK_S_OK)
		assert_int_equal(len, want_used);
	return status_of(f, r);
}

static void start(struct fixture *f)
{
	assert_true(vdrv_start(&f->d, WANT, 256) & VIRTIO_STATUS_DRIVER_OK);
}

static void expect_image(struct fixture *f, uint64_t off, const uint8_t *want, size_t len)
{
	uint8_t *got = malloc(len);

	assert_int_equal(pread(f->fd, got, len, (off_t)off), (ssize_t)len);
	assert_memory_equal(got, want, len);
	free(got);
}

static void test_config_and_features(void **state)
{
	struct fixture *f = *state;
	uint64_t cap;
	uint32_t seg_max;

	vdrv_read_n(&f->d, VIRTIO_MMIO_CONFIG, &cap, 8);
	vdrv_read_n(&f->d, VIRTIO_MMIO_CONFIG + 12, &seg_max, 4);
	assert_int_equal(cap, DISK_SECTORS);
	assert_int_equal(seg_max, VIRTIO_BLK_SEG_MAX);
	assert_int_equal(vdrv_read(&f->d, VIRTIO_MMIO_DEVICE_ID), VIRTIO_ID_BLOCK);
	start(f);
	assert_true(f->blk.dev.acked & VIRTIO_FEATURE(VIRTIO_BLK_F_FLUSH));
	assert_false(f->blk.dev.acked & VIRTIO_FEATURE(VIRTIO_BLK_F_RO));
}

static void test_read(void **state)
{
	struct fixture *f = *state;
	struct req r;
	uint8_t *data;

	start(f);
	r = submit(f, VIRTIO_BLK_T_IN, 3, 1024);
	assert_int_equal(complete(f, &r, 1024 + 1), VIRTIO_BLK_S_OK);
	data = vdrv_hva(&f->d, r.data, 1024);
	for (unsigned i = 0; i < 1024; i++)
		if (data[i] != pattern(3 * 512 + i))
			fail_msg("byte %u of sector 3 onwards is %#x, want %#x", i, data[i],
			         pattern(3 * 512 + i));
	/* The last sector of the disk, and nothing past it. */
	r = submit(f, VIRTIO_BLK_T_IN, DISK_SECTORS - 1, 512);
	assert_int_equal(complete(f, &r, 513), VIRTIO_BLK_S_OK);
	assert_int_equal(f->blk.reads, 2);
}

static void test_write(void **state)
{
	struct fixture *f = *state;
	uint8_t buf[2048];
	struct req r;

	start(f);
	for (unsigned i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(0xa5 ^ i);
	r = submit(f, VIRTIO_BLK_T_OUT, 100, sizeof(buf));
	memcpy(vdrv_hva(&f->d, r.data, sizeof(buf)), buf, sizeof(buf));
	assert_int_equal(complete(f, &r, 1), VIRTIO_BLK_S_OK);
	expect_image(f, 100 * 512, buf, sizeof(buf));
	/* The neighbours are untouched. */
	assert_int_equal(pread(f->fd, buf, 1, 100 * 512 - 1), 1);
	assert_int_equal(buf[0], pattern(100 * 512 - 1));
	r = submit(f, VIRTIO_BLK_T_FLUSH, 0, 0);
	assert_int_equal(complete(f, &r, 1), VIRTIO_BLK_S_OK);
	assert_int_equal(f->blk.flushes, 1);
}

static void test_read_only(void **state)
{
	struct fixture *f = *state;
	uint8_t before[512];
	struct req r;

	for (unsigned i = 0; i < 512; i++)
		before[i] = pattern(512 * 7 + i);
	start(f);
	assert_true(f->blk.dev.acked & VIRTIO_FEATURE(VIRTIO_BLK_F_RO));
	assert_false(f->blk.dev.acked & VIRTIO_FEATURE(VIRTIO_BLK_F_FLUSH)); /* Unsafe */
	r = submit(f, VIRTIO_BLK_T_OUT, 7, 512);
	memset(vdrv_hva(&f->d, r.data, 512), 0, 512);
	assert_int_equal(complete(f, &r, 1), VIRTIO_BLK_S_IOERR);
	expect_image(f, 512 * 7, before, 512);
	/* No FLUSH offered: a driver that sends one anyway is told it is unsupported. */
	r = submit(f, VIRTIO_BLK_T_FLUSH, 0, 0);
	assert_int_equal(complete(f, &r, 1), VIRTIO_BLK_S_UNSUPP);
	/* Reads still work. */
	r = submit(f, VIRTIO_BLK_T_IN, 7, 512);
	assert_int_equal(complete(f, &r, 513), VIRTIO_BLK_S_OK);
	assert_memory_equal(vdrv_hva(&f->d, r.data, 512), before, 512);
}

static void test_get_id(void **state)
{
	struct fixture *f = *state;
	struct req r;

	start(f);
	r = submit(f, VIRTIO_BLK_T_GET_ID, 0, VIRTIO_BLK_ID_BYTES);
	assert_int_equal(complete(f, &r, 6 + 1), VIRTIO_BLK_S_OK);
	assert_memory_equal(vdrv_hva(&f->d, r.data, 6), "rootfs", 6);
}

static void test_hostile_ranges(void **state)
{
	struct fixture *f = *state;
	struct req r;

	start(f);
	r = submit(f, VIRTIO_BLK_T_IN, DISK_SECTORS, 512); /* just past the end */
	assert_int_equal(complete(f, &r, 0), VIRTIO_BLK_S_IOERR);
	r = submit(f, VIRTIO_BLK_T_IN, DISK_SECTORS - 1, 1024); /* straddles the end */
	assert_int_equal(complete(f, &r, 0), VIRTIO_BLK_S_IOERR);
	r = submit(f, VIRTIO_BLK_T_OUT, UINT64_MAX / 256, 512); /* sector * 512 overflows */
	assert_int_equal(complete(f, &r, 0), VIRTIO_BLK_S_IOERR);
	r = submit(f, VIRTIO_BLK_T_OUT, UINT64_MAX, 512);
	assert_int_equal(complete(f, &r, 0), VIRTIO_BLK_S_IOERR);
	r = submit(f, VIRTIO_BLK_T_IN, 0, 100); /* not whole sectors */
	assert_int_equal(complete(f, &r, 0), VIRTIO_BLK_S_IOERR);
	r = submit(f, 0x1234, 0, 512); /* unknown type */
	assert_int_equal(complete(f, &r, 0), VIRTIO_BLK_S_UNSUPP);
	r = submit(f, VIRTIO_BLK_T_IN, 0, 512); /* and the device still serves */
	assert_int_equal(complete(f, &r, 513), VIRTIO_BLK_S_OK);
	assert_int_equal(f->blk.reads, 1);
}

/* Chains without a header or a status byte are answered (length 0), not served. */
static void test_hostile_chain_shapes(void **state)
{
	struct fixture *f = *state;
	uint64_t hdr = vdrv_alloc(&f->d, 16, 16), data = vdrv_alloc(&f->d, 512, 512);
	struct vdrv_buf no_status[] = { { hdr, 16, false }, { data, 512, false } };
	struct vdrv_buf short_hdr[] = { { hdr, 8, false }, { data, 1, true } };
	struct virtio_blk_outhdr h = { .type = VIRTIO_BLK_T_OUT, .sector = 0 };
	uint32_t id, len;
	uint16_t head;
	struct req r;

	start(f);
	memcpy(vdrv_hva(&f->d, hdr, 16), &h, 16);
	head = vdrv_add(&f->d, 0, no_status, 2);
	vdrv_kick(&f->d, 0);
	assert_int_equal(vdrv_wait_used(&f->d, 0, &id, &len, 5000), 1);
	assert_int_equal(id, head);
	assert_int_equal(len, 0);
	head = vdrv_add(&f->d, 0, short_hdr, 2);
	vdrv_kick(&f->d, 0);
	assert_int_equal(vdrv_wait_used(&f->d, 0, &id, &len, 5000), 1);
	assert_int_equal(len, 0);
	expect_image(f, 0, (uint8_t[]){ pattern(0), pattern(1) }, 2); /* nothing written */
	r = submit(f, VIRTIO_BLK_T_IN, 1, 512);
	assert_int_equal(complete(f, &r, 513), VIRTIO_BLK_S_OK);
}

/* The header split over two descriptors is still a header (the spec allows any framing). */
static void test_split_header(void **state)
{
	struct fixture *f = *state;
	uint64_t hdr = vdrv_alloc(&f->d, 16, 16), data = vdrv_alloc(&f->d, 512, 512),
	         st = vdrv_alloc(&f->d, 1, 1);
	struct virtio_blk_outhdr h = { .type = VIRTIO_BLK_T_IN, .sector = 5 };
	struct vdrv_buf bufs[] = {
		{ hdr, 4, false }, { hdr + 4, 12, false }, { data, 512, true }, { st, 1, true }
	};
	uint32_t len;

	start(f);
	memcpy(vdrv_hva(&f->d, hdr, 16), &h, 16);
	vdrv_add(&f->d, 0, bufs, 4);
	vdrv_kick(&f->d, 0);
	assert_int_equal(vdrv_wait_used(&f->d, 0, NULL, &len, 5000), 1);
	assert_int_equal(*(uint8_t *)vdrv_hva(&f->d, st, 1), VIRTIO_BLK_S_OK);
	assert_int_equal(len, 513);
	assert_int_equal(*(uint8_t *)vdrv_hva(&f->d, data, 1), pattern(5 * 512));
}

/* A full queue of reads at once (3 descriptors each): every one answered once, with its own
 * sector's bytes. */
#define MANY (256 / 3)
static void test_many_in_flight(void **state)
{
	struct fixture *f = *state;
	struct req r[MANY];
	unsigned seen[MANY] = { 0 };
	uint32_t id, len;

	start(f);
	for (unsigned i = 0; i < MANY; i++)
		r[i] = submit(f, VIRTIO_BLK_T_IN, i * 10, 512);
	vdrv_kick(&f->d, 0);
	for (unsigned n = 0; n < MANY; n++) {
		unsigned i;
		assert_int_equal(vdrv_wait_used(&f->d, 0, &id, &len, 5000), 1);
		for (i = 0; i < MANY && r[i].head != id; i++)
			;
		assert_true(i < MANY);
		assert_int_equal(seen[i]++, 0);
		assert_int_equal(len, 513);
		assert_int_equal(status_of(f, &r[i]), VIRTIO_BLK_S_OK);
		assert_int_equal(*(uint8_t *)vdrv_hva(&f->d, r[i].data, 1), pattern(i * 10 * 512));
	}
}

/* A guest that kicks without end: every kick is cheap, nothing is served twice or lost. */
static void test_notification_storm(void **state)
{
	struct fixture *f = *state;
	struct req r = { 0 };

	start(f);
	for (int round = 0; round < 50; round++) {
		r = submit(f, VIRTIO_BLK_T_IN, (uint64_t)round, 512);
		for (int k = 0; k < 200; k++)
			vdrv_write(&f->d, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
		assert_int_equal(complete(f, &r, 513), VIRTIO_BLK_S_OK);
		assert_int_equal(*(uint8_t *)vdrv_hva(&f->d, r.data, 1),
		                 pattern((uint64_t)round * 512));
	}
	for (int i = 0; i < 10; i++)
		loop_run_once(f->d.loop, 1000);
	assert_int_equal(vdrv_used_idx(&f->d, 0), 50); /* one answer per request, no more */
	assert_int_equal(f->blk.reads, 50);
}

/* 2 ops per 100 ms: the third read waits for the refill, on a timer, not a sleep. */
static int setup_limited(void **state)
{
	static const struct rate_limiter two_per_100ms = {
		.ops = { .present = true, .size = 2, .refill_time_ms = 100 }
	};
	int r;

	limiter = &two_per_100ms;
	r = setup_with(state, false, true);
	limiter = NULL;
	return r;
}

static void test_rate_limited(void **state)
{
	struct fixture *f = *state;
	struct req r[3];
	long long t0;

	start(f);
	t0 = clock_now_ns();
	for (unsigned i = 0; i < 3; i++)
		r[i] = submit(f, VIRTIO_BLK_T_IN, i, 512);
	vdrv_kick(&f->d, 0);
	for (unsigned i = 0; i < 3; i++)
		assert_int_equal(vdrv_wait_used(&f->d, 0, NULL, NULL, 1000), 1);
	assert_true(f->blk.throttled >= 1); /* the third was held (again if the timer was early) */
	assert_int_equal(status_of(f, &r[2]), VIRTIO_BLK_S_OK);
	/* One token refills every 50 ms: the third read could not finish before that. */
	assert_true(clock_now_ns() - t0 >= 45 * 1000000LL);
}

/* A reset with reads in flight: none lands in guest memory after it; the device restarts. */
static void test_reset_in_flight(void **state)
{
	struct fixture *f = *state;
	struct req r[64];

	start(f);
	for (unsigned i = 0; i < 64; i++)
		r[i] = submit(f, VIRTIO_BLK_T_IN, i, 512);
	vdrv_write(&f->d, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	loop_run_once(f->d.loop, 0); /* the loop hands them to the workers */
	vdrv_write(&f->d, VIRTIO_MMIO_STATUS, 0);
	/* After the reset returned nothing more is written: poison and let the loop run. */
	for (unsigned i = 0; i < 64; i++)
		*(uint8_t *)vdrv_hva(&f->d, r[i].status, 1) = IN_FLIGHT;
	for (int i = 0; i < 20; i++)
		loop_run_once(f->d.loop, 1000);
	for (unsigned i = 0; i < 64; i++)
		assert_int_equal(status_of(f, &r[i]), IN_FLIGHT);
	start(f);
	r[0] = submit(f, VIRTIO_BLK_T_IN, 9, 512);
	assert_int_equal(complete(f, &r[0], 513), VIRTIO_BLK_S_OK);
}

/* ---- The host's updates of a running drive (PATCH /drives) ---- */

static uint8_t pattern3(uint64_t i)
{
	return (uint8_t)(pattern(i) ^ 0xa5);
}

static uint64_t capacity(struct fixture *f)
{
	uint64_t cap;

	vdrv_read_n(&f->d, VIRTIO_MMIO_CONFIG, &cap, 8);
	return cap;
}

/* Every byte @r read is @fill's byte of the image at its sector. */
static void expect_read(struct fixture *f, const struct req *r, uint64_t sector,
                        uint8_t (*fill)(uint64_t))
{
	const uint8_t *d = vdrv_hva(&f->d, r->data, r->len);

	assert_int_equal(status_of(f, r), VIRTIO_BLK_S_OK);
	for (uint32_t i = 0; i < r->len; i++)
		if (d[i] != fill(sector * 512 + i))
			fail_msg("read of sector %llu, byte %u: %#x, not the image's %#x",
			         (unsigned long long)sector, i, d[i], fill(sector * 512 + i));
}

static void wait_answers(struct fixture *f, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		assert_int_equal(vdrv_wait_used(&f->d, 0, NULL, NULL, 5000), 1);
}

#define SWAP_BATCH 32
/* Sector of the i-th read after the swap: every other one beyond the old image's end. */
#define AFTER_SECTOR(i) (8 * (i) + ((i) % 2 ? DISK_SECTORS : 0))

/*
 * Reads in flight when the host swaps the image finish on the old one; the device takes
 * no chain until they have, then everything reads the new one, whose size the driver is
 * told of (capacity, ConfigGeneration, config interrupt).
 */
static void test_swap_mid_stream(void **state)
{
	struct fixture *f = *state;
	int img = make_image_of(2 * DISK_SECTORS, pattern2);
	struct req before[SWAP_BATCH], after[SWAP_BATCH];
	uint32_t gen;
	unsigned long irqs;

	start(f);
	gen = vdrv_read(&f->d, VIRTIO_MMIO_CONFIG_GENERATION);
	for (unsigned i = 0; i < SWAP_BATCH; i++)
		before[i] = submit(f, VIRTIO_BLK_T_IN, i * 8, 4096);
	vdrv_write(&f->d, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	loop_run_once(f->d.loop, 0); /* on the workers; their answers wait for the loop */
	assert_int_equal(f->blk.inflight, SWAP_BATCH);
	irqs = f->d.t.irqs;
	assert_int_equal(virtio_blk_set_image(&f->blk, img), 0);
	assert_int_equal(f->blk.next_fd, img); /* waits for the old image's reads */
	assert_int_equal(capacity(f), DISK_SECTORS);
	for (unsigned i = 0; i < SWAP_BATCH; i++)
		after[i] = submit(f, VIRTIO_BLK_T_IN, AFTER_SECTOR(i), 4096);
	vdrv_kick(&f->d, 0);
	wait_answers(f, 2 * SWAP_BATCH);
	for (unsigned i = 0; i < SWAP_BATCH; i++) {
		expect_read(f, &before[i], i * 8, pattern);
		expect_read(f, &after[i], AFTER_SECTOR(i), pattern2);
	}
	assert_int_equal(capacity(f), 2 * DISK_SECTORS);
	assert_int_equal(vdrv_read(&f->d, VIRTIO_MMIO_CONFIG_GENERATION), gen + 1);
	assert_true(vdrv_read(&f->d, VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_MMIO_INT_CONFIG);
	assert_true(f->d.t.irqs > irqs);
	assert_int_equal(f->blk.swaps, 1);
	assert_int_equal(f->blk.next_fd, -1);
}

/* Nothing in flight: the new image takes over at once. A driver not up gets no interrupt. */
static void test_swap_before_driver_ok(void **state)
{
	struct fixture *f = *state;
	uint32_t gen = vdrv_read(&f->d, VIRTIO_MMIO_CONFIG_GENERATION);
	struct req r;

	assert_int_equal(virtio_blk_set_image(&f->blk, make_image_of(DISK_SECTORS / 2, pattern2)),
	                 0);
	assert_int_equal(capacity(f), DISK_SECTORS / 2);
	assert_int_equal(vdrv_read(&f->d, VIRTIO_MMIO_CONFIG_GENERATION), gen + 1);
	assert_int_equal(f->d.t.irqs, 0);
	start(f);
	r = submit(f, VIRTIO_BLK_T_IN, 100, 512);
	assert_int_equal(complete(f, &r, 513), VIRTIO_BLK_S_OK);
	expect_read(f, &r, 100, pattern2);
	r = submit(f, VIRTIO_BLK_T_IN, DISK_SECTORS / 2, 512); /* the old image went that far */
	assert_int_equal(complete(f, &r, 0), VIRTIO_BLK_S_IOERR);
}

/* An image that cannot be sized is refused: the old one serves on, nothing changed. */
static void test_swap_refused_keeps_old(void **state)
{
	struct fixture *f = *state;
	uint32_t gen = vdrv_read(&f->d, VIRTIO_MMIO_CONFIG_GENERATION);
	int closed = make_image_of(1, pattern2);
	struct req r;

	close(closed);
	start(f);
	log_set_level(LOG_OFF); /* its error is the point */
	assert_int_equal(virtio_blk_set_image(&f->blk, closed), -EBADF);
	log_set_level(LOG_ERROR);
	assert_int_equal(capacity(f), DISK_SECTORS);
	assert_int_equal(vdrv_read(&f->d, VIRTIO_MMIO_CONFIG_GENERATION), gen);
	assert_int_equal(f->blk.next_fd, -1);
	r = submit(f, VIRTIO_BLK_T_IN, 7, 512);
	assert_int_equal(complete(f, &r, 513), VIRTIO_BLK_S_OK);
	expect_read(f, &r, 7, pattern);
}

/* A read-only drive stays read-only on its new image, even one open for writing. */
static void test_swap_read_only(void **state)
{
	struct fixture *f = *state;
	int img = make_image_of(DISK_SECTORS, pattern2);
	uint8_t before[512];
	struct req r;

	for (unsigned i = 0; i < 512; i++)
		before[i] = pattern2(512 * 3 + i);
	start(f);
	assert_int_equal(virtio_blk_set_image(&f->blk, img), 0);
	r = submit(f, VIRTIO_BLK_T_OUT, 3, 512);
	memset(vdrv_hva(&f->d, r.data, 512), 0, 512);
	assert_int_equal(complete(f, &r, 1), VIRTIO_BLK_S_IOERR);
	r = submit(f, VIRTIO_BLK_T_IN, 3, 512);
	assert_int_equal(complete(f, &r, 513), VIRTIO_BLK_S_OK);
	expect_read(f, &r, 3, pattern2);
	{
		uint8_t got[512];
		assert_int_equal(pread(img, got, 512, 512 * 3), 512);
		assert_memory_equal(got, before, 512);
	}
	assert_true(f->blk.dev.features & VIRTIO_FEATURE(VIRTIO_BLK_F_RO));
}

/* Swapped twice before the first took over: the newest wins, the other is closed. */
static void test_swap_twice_newest_wins(void **state)
{
	struct fixture *f = *state;
	int first = make_image_of(DISK_SECTORS, pattern2), second = make_image_of(64, pattern3);
	struct req r[4];

	start(f);
	for (unsigned i = 0; i < 4; i++)
		r[i] = submit(f, VIRTIO_BLK_T_IN, i, 512);
	vdrv_write(&f->d, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	loop_run_once(f->d.loop, 0);
	assert_true(f->blk.inflight > 0);
	assert_int_equal(virtio_blk_set_image(&f->blk, first), 0);
	assert_int_equal(virtio_blk_set_image(&f->blk, second), 0);
	assert_int_equal(fcntl(first, F_GETFD), -1); /* closed: it never served */
	wait_answers(f, 4);
	for (unsigned i = 0; i < 4; i++)
		expect_read(f, &r[i], i, pattern);
	assert_int_equal(capacity(f), 64);
	r[0] = submit(f, VIRTIO_BLK_T_IN, 63, 512);
	assert_int_equal(complete(f, &r[0], 513), VIRTIO_BLK_S_OK);
	expect_read(f, &r[0], 63, pattern3);
	assert_int_equal(f->blk.swaps, 1);
}

/* One read per 100 s: the second waits for a refill the test never sees. */
static int setup_strict(void **state)
{
	static const struct rate_limiter one_per_100s = {
		.ops = { .present = true, .size = 1, .refill_time_ms = 100000 }
	};
	int r;

	limiter = &one_per_100s;
	r = setup_with(state, false, true);
	limiter = NULL;
	return r;
}

/*
 * PATCH's rate_limiter: the held request goes at once when the limit is lifted; a bucket
 * given again starts full, so one more read passes before the next is held.
 */
static void test_limiter_update(void **state)
{
	struct fixture *f = *state;
	const struct rate_limiter lift = { .ops = { .present = true } };
	const struct rate_limiter again = {
		.ops = { .present = true, .size = 1, .refill_time_ms = 100000 }
	};
	struct req r[4];

	start(f);
	r[0] = submit(f, VIRTIO_BLK_T_IN, 0, 512);
	r[1] = submit(f, VIRTIO_BLK_T_IN, 1, 512);
	vdrv_kick(&f->d, 0);
	wait_answers(f, 1);
	assert_non_null(f->blk.held);
	assert_true(ratelimit_timer_armed(&f->blk.timer));
	virtio_blk_set_limiter(&f->blk, &lift);
	assert_false(ratelimit_timer_armed(&f->blk.timer));
	wait_answers(f, 1);
	expect_read(f, &r[1], 1, pattern);
	virtio_blk_set_limiter(&f->blk, &again);
	r[2] = submit(f, VIRTIO_BLK_T_IN, 2, 512);
	r[3] = submit(f, VIRTIO_BLK_T_IN, 3, 512);
	vdrv_kick(&f->d, 0);
	wait_answers(f, 1);
	expect_read(f, &r[2], 2, pattern);
	assert_non_null(f->blk.held);
	assert_int_equal(vdrv_wait_used(&f->d, 0, NULL, NULL, 100), 0);
	assert_int_equal(status_of(f, &r[3]), IN_FLIGHT);
}

/* A request the limiter held meets the new, smaller image: refused, not read past its end. */
static void test_swap_held_request_checked_again(void **state)
{
	struct fixture *f = *state;
	const struct rate_limiter lift = { .ops = { .present = true } };
	struct req r[2];

	start(f);
	r[0] = submit(f, VIRTIO_BLK_T_IN, 0, 512);
	r[1] = submit(f, VIRTIO_BLK_T_IN, DISK_SECTORS - 1, 512);
	vdrv_kick(&f->d, 0);
	wait_answers(f, 1);
	assert_non_null(f->blk.held);
	assert_int_equal(virtio_blk_set_image(&f->blk, make_image_of(DISK_SECTORS / 2, pattern2)),
	                 0);
	assert_int_equal(capacity(f), DISK_SECTORS / 2); /* nothing was on the engine */
	virtio_blk_set_limiter(&f->blk, &lift);
	wait_answers(f, 1);
	assert_int_equal(status_of(f, &r[1]), VIRTIO_BLK_S_IOERR);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_config_and_features, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_only, setup_ro, teardown),
		cmocka_unit_test_setup_teardown(test_get_id, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_ranges, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_chain_shapes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_split_header, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_in_flight, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reset_in_flight, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rate_limited, setup_limited, teardown),
		cmocka_unit_test_setup_teardown(test_notification_storm, setup, teardown),
		cmocka_unit_test_setup_teardown(test_swap_mid_stream, setup, teardown),
		cmocka_unit_test_setup_teardown(test_swap_before_driver_ok, setup, teardown),
		cmocka_unit_test_setup_teardown(test_swap_refused_keeps_old, setup, teardown),
		cmocka_unit_test_setup_teardown(test_swap_read_only, setup_ro, teardown),
		cmocka_unit_test_setup_teardown(test_swap_twice_newest_wins, setup, teardown),
		cmocka_unit_test_setup_teardown(test_limiter_update, setup_strict, teardown),
		cmocka_unit_test_setup_teardown(test_swap_held_request_checked_again, setup_strict,
		                                teardown),
	};
	log_set_level(LOG_ERROR); /* hostile requests make the device complain, as it should */
	return TEST_MAIN(tests, NULL, test_group_teardown);
}
