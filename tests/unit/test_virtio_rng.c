/* virtio-rng through the transport: random bytes in the guest's buffers, paced by its rate limiter.
 */
#include "devices/virtio/rng.h"
#include "tests/lib/util.h"
#include "tests/lib/virtio_driver.h"
#include "vmm/base/clock.h"
#include "vmm/base/log.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define WANT (VIRTIO_FEATURE(VIRTIO_F_VERSION_1) | VIRTIO_FEATURE(VIRTIO_F_EVENT_IDX))

struct fixture {
	struct virtio_rng rng;
	struct vdrv d;
};

static const struct rate_limiter *limiter;

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_int_equal(vdrv_setup(&f->d, 4 << 20), 0);
	virtio_rng_init(&f->rng, limiter, f->d.loop);
	assert_int_equal(vdrv_bind(&f->d, &f->rng.dev), 0);
	assert_true(vdrv_start(&f->d, WANT, 64) & VIRTIO_STATUS_DRIVER_OK);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	vdrv_unbind(&f->d);
	virtio_rng_destroy(&f->rng);
	vdrv_destroy(&f->d);
	free(f);
	return 0;
}

/* Asks for @len bytes; returns what the device said it wrote. */
static uint32_t ask(struct fixture *f, uint64_t *gpa, uint32_t len)
{
	struct vdrv_buf b = { vdrv_alloc(&f->d, len, 8), len, true };
	uint32_t got;

	*gpa = b.gpa;
	vdrv_add(&f->d, 0, &b, 1);
	vdrv_kick(&f->d, 0);
	assert_int_equal(vdrv_wait_used(&f->d, 0, NULL, &got, 1000), 1);
	return got;
}

static void test_random_bytes(void **state)
{
	struct fixture *f = *state;
	uint64_t a, b;
	uint8_t *pa, *pb;

	assert_int_equal(vdrv_read(&f->d, VIRTIO_MMIO_DEVICE_ID), VIRTIO_ID_RNG);
	assert_int_equal(ask(f, &a, 256), 256);
	assert_int_equal(ask(f, &b, 256), 256);
	pa = vdrv_hva(&f->d, a, 256);
	pb = vdrv_hva(&f->d, b, 256);
	assert_memory_not_equal(pa, pb, 256); /* 2^-2048 to fail by chance */
	assert_int_equal(f->rng.bytes, 512);
}

/* A huge request is served up to 64 KiB: the loop never stalls on one guest ask. */
static void test_request_capped(void **state)
{
	struct fixture *f = *state;
	uint64_t a;

	assert_int_equal(ask(f, &a, 1 << 20), 64 * 1024);
}

/* A chain with nothing writable gets nothing and the device goes on. */
static void test_hostile_readable_only(void **state)
{
	struct fixture *f = *state;
	struct vdrv_buf b = { vdrv_alloc(&f->d, 16, 8), 16, false };
	uint32_t len = 99;
	uint64_t a;

	vdrv_add(&f->d, 0, &b, 1);
	vdrv_kick(&f->d, 0);
	assert_int_equal(vdrv_wait_used(&f->d, 0, NULL, &len, 1000), 1);
	assert_int_equal(len, 0);
	assert_int_equal(ask(f, &a, 32), 32);
}

/* A guest thread that re-offers its buffer as soon as it comes back, for up to 5 s. */
struct poster {
	struct fixture *f;
	uint64_t gpa;
	atomic_bool stop;
	atomic_uint offered;
};

static void *post_forever(void *arg)
{
	struct poster *p = arg;
	struct vdrv_buf b = { p->gpa, 16, true };
	long long until = clock_now_ns() + 5000 * 1000000LL;
	uint16_t seen = 0;

	while (!atomic_load(&p->stop) && clock_now_ns() < until) {
		uint16_t used = vdrv_used_idx(&p->f->d, 0);
		if (used == seen)
			continue;
		seen = used;
		vdrv_add(&p->f->d, 0, &b, 1);
		vdrv_write(&p->f->d, VIRTIO_MMIO_QUEUE_NOTIFY, 0); /* as a vCPU would */
		atomic_fetch_add(&p->offered, 1);
	}
	return NULL;
}

struct watcher {
	struct loop *loop;
	struct poster *p;
};

/* Stops the loop once the guest has outrun one turn of the device: 7. */
static void on_timer(void *arg)
{
	struct watcher *w = arg;

	if (atomic_load(&w->p->offered) > VIRTIO_DEV_BUDGET)
		loop_stop(w->loop, 7);
}

/*
 * However fast a guest thread re-offers (and kicks), the loop's other work (here a timer)
 * still runs: the device yields after VIRTIO_DEV_BUDGET chains a turn. The timer sees the
 * guest go past one turn's budget while the guest is still offering; a device that did not
 * yield would hold the loop until the guest gives up after 5 s.
 */
static void test_endless_requests_yield(void **state)
{
	struct fixture *f = *state;
	struct poster p = { .f = f, .gpa = vdrv_alloc(&f->d, 16, 8) };
	struct watcher w = { f->d.loop, &p };
	struct vdrv_buf b = { p.gpa, 16, true };
	pthread_t t;
	long long t0;

	for (int i = 0; i < 8; i++)
		vdrv_add(&f->d, 0, &b, 1);
	assert_int_equal(pthread_create(&t, NULL, post_forever, &p), 0);
	assert_non_null(loop_add_timer(f->d.loop, 2000, true, on_timer, &w));
	t0 = clock_now_ns();
	vdrv_write(&f->d, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	assert_int_equal(loop_run(f->d.loop), 7);
	atomic_store(&p.stop, true);
	pthread_join(t, NULL);
	assert_true(clock_now_ns() - t0 < 4000 * 1000000LL); /* not starved */
}

static int setup_limited(void **state)
{
	static const struct rate_limiter one_per_100ms = {
		.ops = { .present = true, .size = 1, .refill_time_ms = 100 }
	};
	int r;

	limiter = &one_per_100ms;
	r = setup(state);
	limiter = NULL;
	return r;
}

static void test_rate_limited(void **state)
{
	struct fixture *f = *state;
	long long t0 = clock_now_ns();
	uint64_t a;

	assert_int_equal(ask(f, &a, 16), 16);
	assert_int_equal(ask(f, &a, 16), 16); /* waited for the refill */
	assert_true(clock_now_ns() - t0 >= 90 * 1000000LL);
	assert_true(f->rng.throttled >= 1);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_random_bytes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_request_capped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_readable_only, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rate_limited, setup_limited, teardown),
		cmocka_unit_test_setup_teardown(test_endless_requests_yield, setup, teardown),
	};
	log_set_level(LOG_ERROR);
	return TEST_MAIN(tests, NULL, test_group_teardown);
}
