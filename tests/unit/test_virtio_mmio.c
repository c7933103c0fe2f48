/*
 * The virtio-mmio transport, driven through its registers by a test driver: identity,
 * feature negotiation, queue set-up, the status state machine, notifications served on
 * the loop, interrupts, reset, and a hostile driver (wrong widths, bad queues, a
 * register storm). The device behind it is an echo device defined here.
 */
#include "tests/lib/util.h"
#include "tests/lib/virtio_driver.h"
#include "vmm/base/log.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define ECHO_ID      42
#define ECHO_FEATURE 3 /* a device feature bit the driver may take or leave */

/* Copies each chain's readable bytes into its writable ones. */
struct echo {
	struct virtio_dev dev;
	struct virtqueue_seg segs[16];
	uint8_t config[8];
	unsigned activations, resets, notifies, served;
	int refuse_activate;
};

static void echo_config_read(struct virtio_dev *d, uint32_t off, uint8_t *data, uint32_t len)
{
	memcpy(data, ((struct echo *)d)->config + off, len);
}

static void echo_config_write(struct virtio_dev *d, uint32_t off, const uint8_t *data, uint32_t len)
{
	memcpy(((struct echo *)d)->config + off, data, len);
}

static int echo_activate(struct virtio_dev *d)
{
	struct echo *e = (struct echo *)d;

	e->activations++;
	return e->refuse_activate;
}

static void echo_serve(struct echo *e, unsigned q)
{
	struct virtqueue *vq = &e->dev.vqs[q];
	struct virtqueue_chain c = { .segs = e->segs, .max = 16 };
	int r;

	while ((r = virtqueue_pop(vq, &c)) == 1) {
		uint32_t n = 0;
		if (c.nreadable && c.nsegs > c.nreadable) {
			n = c.segs[0].len < c.segs[c.nreadable].len ? c.segs[0].len
			                                            : c.segs[c.nreadable].len;
			memcpy(c.segs[c.nreadable].hva, c.segs[0].hva, n);
		}
		virtqueue_push(vq, c.head, n);
		e->served++;
	}
	if (r < 0)
		virtio_dev_needs_reset(&e->dev, (int)q, r);
	virtio_dev_used(&e->dev, q);
}

static void echo_notify(struct virtio_dev *d, unsigned q)
{
	struct echo *e = (struct echo *)d;

	e->notifies++;
	echo_serve(e, q);
}

static void echo_reset(struct virtio_dev *d)
{
	((struct echo *)d)->resets++;
}

static const struct virtio_dev_ops echo_ops = {
	echo_config_read, echo_config_write, echo_activate, echo_notify, echo_reset,
};

struct fixture {
	struct echo e;
	struct vdrv d;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->e.dev = (struct virtio_dev){ .ops = &echo_ops,
		                        .name = "virtio-echo test",
		                        .device_id = ECHO_ID,
		                        .features = VIRTIO_FEATURE(ECHO_FEATURE),
		                        .nqueues = 2,
		                        .queue_max = 256,
		                        .config_len = sizeof(f->e.config) };
	memcpy(f->e.config, "flintcfg", 8);
	assert_int_equal(vdrv_init(&f->d, &f->e.dev, 16 << 20), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	vdrv_destroy(&f->d);
	free(f);
	return 0;
}

static const uint64_t WANT = VIRTIO_FEATURE(VIRTIO_F_VERSION_1) |
                             VIRTIO_FEATURE(VIRTIO_F_EVENT_IDX) |
                             VIRTIO_FEATURE(VIRTIO_F_INDIRECT_DESC) | VIRTIO_FEATURE(ECHO_FEATURE);

/* One echo round trip on queue @q: @msg in, the same bytes out. */
static void echo_once(struct fixture *f, unsigned q, const char *msg)
{
	size_t n = strlen(msg);
	uint64_t in = vdrv_alloc(&f->d, n, 8), out = vdrv_alloc(&f->d, 64, 8);
	struct vdrv_buf bufs[] = { { in, (uint32_t)n, false }, { out, 64, true } };
	uint32_t id, len;
	uint16_t head;

	memcpy(vdrv_hva(&f->d, in, n), msg, n);
	head = vdrv_add(&f->d, q, bufs, 2);
	vdrv_kick(&f->d, q);
	assert_int_equal(vdrv_wait_used(&f->d, q, &id, &len, 1000), 1);
	assert_int_equal(id, head);
	assert_int_equal(len, n);
	assert_memory_equal(vdrv_hva(&f->d, out, n), msg, n);
}

static void test_identity(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(vdrv_read(&f->d, VIRTIO_MMIO_MAGIC_VALUE), 0x74726976);
	assert_int_equal(vdrv_read(&f->d, VIRTIO_MMIO_VERSION), 2);
	assert_int_equal(vdrv_read(&f->d, VIRTIO_MMIO_DEVICE_ID), ECHO_ID);
	assert_int_equal(vdrv_read(&f->d, VIRTIO_MMIO_VENDOR_ID), VIRTIO_MMIO_VENDOR);
	vdrv_write(&f->d, VIRTIO_MMIO_QUEUE_SEL, 1);
	assert_int_equal(vdrv_read(&f->d, VIRTIO_MMIO_QUEUE_NUM_MAX), 256);
	vdrv_write(&f->d, VIRTIO_MMIO_QUEUE_SEL, 2); /* no such queue */
	assert_int_equal(vdrv_read(&f->d, VIRTIO_MMIO_QUEUE_NUM_MAX), 0);
}

static void test_features_offered(void **state)
{
	struct fixture *f = *state;

	vdrv_write(&f->d, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	assert_int_equal(vdrv_read(&f->d, VIRTIO_MMIO_DEVICE_FEATURES),
	                 (1u << ECHO_FEATURE) | (1u << VIRTIO_F_INDIRECT_DESC) |
	                         (1u << VIRTIO_F_EVENT_IDX));
	vdrv_write(&f->d, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	assert_int_equal(vdrv_read(&f->d, VIRTIO_MMIO_DEVICE_FEATURES), 1); /* VERSION_1 */
	vdrv_write(&f->d, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 7);
	assert_int_equal(vdrv_read(&f->d, VIRTIO_MMIO_DEVICE_FEATURES), 0);
}

static void test_negotiation(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(vdrv_negotiate(&f->d, WANT), WANT);
	assert_int_equal(f->e.dev.acked, WANT);
	/* A legacy driver (no VERSION_1): FEATURES_OK does not stick. */
	assert_int_equal(vdrv_negotiate(&f->d, WANT & ~VIRTIO_FEATURE(VIRTIO_F_VERSION_1)), 0);
	assert_false(vdrv_read(&f->d, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_FEATURES_OK);
}

static void test_features_never_offered(void **state)
{
	struct fixture *f = *state;

	vdrv_write(&f->d, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	vdrv_write(&f->d, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	vdrv_write(&f->d, VIRTIO_MMIO_DRIVER_FEATURES, 1);
	vdrv_write(&f->d, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	vdrv_write(&f->d, VIRTIO_MMIO_DRIVER_FEATURES, 1u << 20); /* not offered */
	vdrv_write(&f->d, VIRTIO_MMIO_STATUS,
	           VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
	assert_false(vdrv_read(&f->d, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_FEATURES_OK);
}

static void test_round_trip_and_interrupt(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(vdrv_start(&f->d, WANT & ~VIRTIO_FEATURE(VIRTIO_F_EVENT_IDX), 64),
	                 VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
	                         VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
	assert_int_equal(f->e.activations, 1);
	echo_once(f, 0, "hello through queue 0");
	echo_once(f, 1, "and queue 1");
	assert_int_equal(vdrv_read(&f->d, VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_MMIO_INT_VRING);
	assert_int_equal(f->d.t.irqs, 2);
	vdrv_write(&f->d, VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_VRING);
	assert_int_equal(vdrv_read(&f->d, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
}

/* With EVENT_IDX the driver's used_event decides: no interrupt until it is crossed. */
static void test_event_idx_suppresses(void **state)
{
	struct fixture *f = *state;
	uint16_t *avail;

	vdrv_start(&f->d, WANT, 64);
	avail = vdrv_hva(&f->d, f->d.q[0].avail, VIRTQ_AVAIL_BYTES(64));
	avail[2 + 64] = 5; /* used_event: interrupt once used->idx passes 5 */
	for (int i = 0; i < 5; i++)
		echo_once(f, 0, "quiet");
	assert_int_equal(f->d.t.irqs, 0);
	echo_once(f, 0, "now");
	assert_int_equal(f->d.t.irqs, 1);
}

static void test_notify_before_driver_ok(void **state)
{
	struct fixture *f = *state;
	uint64_t in = vdrv_alloc(&f->d, 4, 8), out = vdrv_alloc(&f->d, 4, 8);
	struct vdrv_buf bufs[] = { { in, 4, false }, { out, 4, true } };

	vdrv_negotiate(&f->d, WANT);
	vdrv_queue_setup(&f->d, 0, 16);
	vdrv_queue_setup(&f->d, 1, 16);
	memcpy(vdrv_hva(&f->d, in, 4), "early", 4);
	vdrv_add(&f->d, 0, bufs, 2);
	vdrv_kick(&f->d, 0);
	assert_int_equal(f->e.served, 0); /* not before DRIVER_OK */
	vdrv_driver_ok(&f->d);
	assert_int_equal(f->e.served, 1); /* but not lost either */
	assert_memory_equal(vdrv_hva(&f->d, out, 4), "earl", 4);
}

static void test_reset(void **state)
{
	struct fixture *f = *state;
	unsigned notifies;

	vdrv_start(&f->d, WANT, 64);
	echo_once(f, 0, "before");
	vdrv_write(&f->d, VIRTIO_MMIO_STATUS, 0);
	assert_int_equal(f->e.resets, 1);
	assert_int_equal(vdrv_read(&f->d, VIRTIO_MMIO_STATUS), 0);
	assert_int_equal(vdrv_read(&f->d, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
	vdrv_write(&f->d, VIRTIO_MMIO_QUEUE_SEL, 0);
	assert_int_equal(vdrv_read(&f->d, VIRTIO_MMIO_QUEUE_READY), 0);
	/* A kick to the reset device reaches nothing. */
	notifies = f->e.notifies;
	vdrv_kick(&f->d, 0);
	assert_int_equal(f->e.notifies, notifies);
	/* And it starts again from scratch. */
	vdrv_start(&f->d, WANT, 32);
	echo_once(f, 0, "after");
	assert_int_equal(f->e.activations, 2);
}

static void test_config_space(void **state)
{
	struct fixture *f = *state;
	uint8_t b[8] = { 0 };
	uint16_t h;

	vdrv_read_n(&f->d, VIRTIO_MMIO_CONFIG, b, 8);
	assert_memory_equal(b, "flintcfg", 8);
	vdrv_read_n(&f->d, VIRTIO_MMIO_CONFIG + 2, &h, 2);
	assert_memory_equal(&h, "in", 2);
	vdrv_write_n(&f->d, VIRTIO_MMIO_CONFIG + 5, "X", 1);
	assert_int_equal(f->e.config[5], 'X');
	/* Past the end: reads zero, writes nothing, nothing read past the device's buffer. */
	memset(b, 0xaa, sizeof(b));
	vdrv_read_n(&f->d, VIRTIO_MMIO_CONFIG + 6, b, 4);
	assert_memory_equal(b, "\0\0\0\0", 4);
	vdrv_write_n(&f->d, VIRTIO_MMIO_CONFIG + 0xe00, "zz", 2);
	assert_memory_equal(f->e.config, "flintXfg", 8);
}

/* DRIVER_OK without FEATURES_OK, and an activation the device refuses. */
static void test_status_machine(void **state)
{
	struct fixture *f = *state;

	vdrv_write(&f->d, VIRTIO_MMIO_STATUS,
	           VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_DRIVER_OK);
	assert_true(vdrv_read(&f->d, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	assert_int_equal(f->e.activations, 0);
	assert_true(vdrv_read(&f->d, VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_MMIO_INT_CONFIG);

	f->e.refuse_activate = -ENOMEM;
	vdrv_start(&f->d, WANT, 16);
	assert_true(vdrv_read(&f->d, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	f->e.refuse_activate = 0;

	/* Clearing bits without a reset is refused. */
	vdrv_start(&f->d, WANT, 16);
	vdrv_write(&f->d, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE);
	assert_int_equal(vdrv_read(&f->d, VIRTIO_MMIO_STATUS),
	                 VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
	                         VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
}

/* A queue outside RAM never becomes ready; the device asks for a reset. */
static void test_hostile_queue_address(void **state)
{
	struct fixture *f = *state;

	vdrv_negotiate(&f->d, WANT);
	vdrv_write(&f->d, VIRTIO_MMIO_QUEUE_SEL, 0);
	vdrv_write(&f->d, VIRTIO_MMIO_QUEUE_NUM, 64);
	vdrv_write(&f->d, VIRTIO_MMIO_QUEUE_DESC_LOW, 0xfffff000);
	vdrv_write(&f->d, VIRTIO_MMIO_QUEUE_DESC_HIGH, 0xffffffff);
	vdrv_write(&f->d, VIRTIO_MMIO_QUEUE_READY, 1);
	assert_int_equal(vdrv_read(&f->d, VIRTIO_MMIO_QUEUE_READY), 0);
	assert_true(vdrv_read(&f->d, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	/* A size that is not a power of two, after a reset. */
	vdrv_negotiate(&f->d, WANT);
	vdrv_write(&f->d, VIRTIO_MMIO_QUEUE_NUM, 100);
	vdrv_write(&f->d, VIRTIO_MMIO_QUEUE_READY, 1);
	assert_int_equal(vdrv_read(&f->d, VIRTIO_MMIO_QUEUE_READY), 0);
	/* More entries than QueueNumMax said (a cheap way to make chains 128x longer). */
	vdrv_negotiate(&f->d, WANT);
	assert_int_equal(vdrv_queue_setup(&f->d, 0, 512), 0);
	assert_true(vdrv_read(&f->d, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	/* Ready before the features were agreed: ignored. */
	vdrv_write(&f->d, VIRTIO_MMIO_STATUS, 0);
	vdrv_write(&f->d, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	assert_int_equal(vdrv_queue_setup(&f->d, 0, 16), 0);
	assert_false(vdrv_read(&f->d, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
}

/* A driver that breaks a running queue stops the device until it resets it. */
static void test_hostile_ring_needs_reset(void **state)
{
	struct fixture *f = *state;
	unsigned notifies;

	vdrv_start(&f->d, WANT, 16);
	vdrv_set_avail_idx(&f->d, 0, 100); /* 100 chains in a 16-entry queue */
	vdrv_kick(&f->d, 0);
	assert_true(vdrv_read(&f->d, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	assert_int_equal(f->e.served, 0);
	notifies = f->e.notifies;
	vdrv_kick(&f->d, 0);
	assert_int_equal(f->e.notifies, notifies); /* stopped: a kick reaches nothing */
	vdrv_start(&f->d, WANT, 16);
	echo_once(f, 0, "healed");
}

/* Writes to a ready queue's addresses, and to read-only registers, change nothing. */
static void test_hostile_register_writes(void **state)
{
	struct fixture *f = *state;
	uint64_t desc;
	uint8_t b = 0xff;
	uint16_t w = 0xffff;
	unsigned notifies;

	vdrv_start(&f->d, WANT, 16);
	desc = f->d.q[0].desc;
	vdrv_write(&f->d, VIRTIO_MMIO_QUEUE_SEL, 0);
	vdrv_write(&f->d, VIRTIO_MMIO_QUEUE_DESC_LOW, 0x123000);
	vdrv_write(&f->d, VIRTIO_MMIO_QUEUE_NUM, 4);
	assert_int_equal(f->d.t.q[0].desc, desc);
	assert_int_equal(f->d.t.q[0].num, 16);
	vdrv_write(&f->d, VIRTIO_MMIO_MAGIC_VALUE, 0);
	vdrv_write(&f->d, VIRTIO_MMIO_DEVICE_ID, 7);
	assert_int_equal(vdrv_read(&f->d, VIRTIO_MMIO_DEVICE_ID), ECHO_ID);
	/* Byte and halfword accesses to registers are ignored, reads see zero. */
	vdrv_write_n(&f->d, VIRTIO_MMIO_STATUS, &b, 1);
	vdrv_write_n(&f->d, VIRTIO_MMIO_STATUS, &w, 2);
	vdrv_read_n(&f->d, VIRTIO_MMIO_MAGIC_VALUE, &w, 2);
	assert_int_equal(w, 0);
	assert_false(vdrv_read(&f->d, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_FAILED);
	/* A notify for a queue that does not exist. */
	notifies = f->e.notifies;
	vdrv_kick(&f->d, 9);
	assert_int_equal(f->e.notifies, notifies);
	echo_once(f, 0, "still fine");
}

/* Random register traffic: no crash, no access outside guest RAM (ASan), no hang. */
static void test_hostile_register_storm(void **state)
{
	struct fixture *f = *state;
	unsigned seed = 1234;

	for (int i = 0; i < 200000; i++) {
		uint32_t off = (uint32_t)(rand_r(&seed) % 0x140) & ~3u;
		uint32_t v = (uint32_t)rand_r(&seed);
		unsigned kind = (unsigned)rand_r(&seed) % 8;
		if (kind == 0)
			v = (uint32_t)rand_r(&seed) % 16; /* small values: selectors, sizes */
		else if (kind == 1)
			v = 0x1000 * ((uint32_t)rand_r(&seed) % 4096); /* guest addresses */
		if (off == VIRTIO_MMIO_STATUS && kind < 4)
			v &= 0xf;
		vdrv_write(&f->d, off, v);
		if (i % 64 == 0)
			loop_run_once(f->d.loop, 0);
		(void)vdrv_read(&f->d, (uint32_t)(rand_r(&seed) % 0x140) & ~3u);
	}
	vdrv_start(&f->d, WANT, 16);
	echo_once(f, 0, "survived");
}

static void test_cmdline(void **state)
{
	char cmd[64] = "console=ttyS0";

	(void)state;
	assert_int_equal(virtio_mmio_cmdline(cmd, sizeof(cmd), 0xd0000000, 5), 0);
	assert_string_equal(cmd, "console=ttyS0 virtio_mmio.device=4K@0xd0000000:5");
	assert_int_equal(virtio_mmio_cmdline(cmd, sizeof(cmd), 0xd0001000, 6), -ENOSPC);
	assert_string_equal(cmd, "console=ttyS0 virtio_mmio.device=4K@0xd0000000:5");
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_identity, setup, teardown),
		cmocka_unit_test_setup_teardown(test_features_offered, setup, teardown),
		cmocka_unit_test_setup_teardown(test_negotiation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_features_never_offered, setup, teardown),
		cmocka_unit_test_setup_teardown(test_round_trip_and_interrupt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_event_idx_suppresses, setup, teardown),
		cmocka_unit_test_setup_teardown(test_notify_before_driver_ok, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reset, setup, teardown),
		cmocka_unit_test_setup_teardown(test_config_space, setup, teardown),
		cmocka_unit_test_setup_teardown(test_status_machine, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_queue_address, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_ring_needs_reset, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_register_writes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_register_storm, setup, teardown),
		cmocka_unit_test(test_cmdline),
	};
	log_set_level(LOG_ERROR); /* the hostile tests make the device complain, as it should */
	return TEST_MAIN(tests, NULL, test_group_teardown);
}
