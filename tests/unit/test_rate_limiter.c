/* The virtio rate limiter: Firecracker's token buckets, driven by exact fake time. */
#include "devices/virtio/rate_limiter.h"
#include "tests/lib/util.h"
#include "vmm/base/loop.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#define MS 1000000ULL
#define US 1000ULL
/* An arbitrary start, so nothing works only because time starts at 0. */
#define T0 (1234 * MS + 567)

static struct token_bucket bucket(uint64_t size, uint64_t burst, uint64_t refill_ms)
{
	return (struct token_bucket){
		.present = true, .size = size, .one_time_burst = burst, .refill_time_ms = refill_ms
	};
}

/* 1000 bytes per 100 ms: one byte every 100 µs. */
static struct ratelimit bw_limiter(uint64_t burst)
{
	struct rate_limiter cfg = { .bandwidth = bucket(1000, burst, 100) };
	struct ratelimit rl;

	ratelimit_init(&rl, &cfg, T0);
	return rl;
}

static void test_unlimited(void **state)
{
	const struct rate_limiter cfgs[] = {
		{ .bandwidth = { .present = false } }, /* absent */
		{ .bandwidth = bucket(0, 5, 100), .ops = bucket(0, 0, 100) },
		{ .bandwidth = bucket(1000, 0, 0), .ops = bucket(10, 0, 0) },
	};
	struct ratelimit rl;

	(void)state;
	for (size_t i = 0; i < sizeof(cfgs) / sizeof(cfgs[0]); i++) {
		ratelimit_init(&rl, &cfgs[i], T0);
		assert_true(ratelimit_unlimited(&rl));
		for (int n = 0; n < 3; n++)
			assert_true(ratelimit_consume(&rl, UINT64_MAX, UINT64_MAX, T0));
		assert_int_equal(ratelimit_wait_ns(&rl, UINT64_MAX, UINT64_MAX, T0), 0);
		ratelimit_refund(&rl, UINT64_MAX, UINT64_MAX);
	}
	rl = bw_limiter(0);
	assert_false(ratelimit_unlimited(&rl));
	/* The ops bucket alone is absent: any number of operations within the bytes. */
	assert_true(ratelimit_consume(&rl, 10, UINT64_MAX, T0));
}

static void test_starts_full_and_refuses_one_more(void **state)
{
	struct ratelimit rl = bw_limiter(0);

	(void)state;
	assert_true(ratelimit_consume(&rl, 1000, 0, T0));
	assert_false(ratelimit_consume(&rl, 1, 0, T0));
	/* A refused request took nothing: still refused a moment before its byte is earned. */
	assert_false(ratelimit_consume(&rl, 1, 0, T0 + 100 * US - 1));
	assert_true(ratelimit_consume(&rl, 1, 0, T0 + 100 * US));
}

static void test_refills_linearly(void **state)
{
	struct ratelimit rl = bw_limiter(0);
	struct ratelimit other = bw_limiter(0);

	(void)state;
	assert_true(ratelimit_consume(&rl, 1000, 0, T0));
	assert_true(ratelimit_consume(&rl, 500, 0, T0 + 50 * MS));
	assert_false(ratelimit_consume(&rl, 1, 0, T0 + 50 * MS));

	assert_true(ratelimit_consume(&other, 1000, 0, T0));
	assert_false(ratelimit_consume(&other, 501, 0, T0 + 50 * MS));
	assert_true(ratelimit_consume(&other, 500, 0, T0 + 50 * MS));
}

static void test_refill_stops_at_size(void **state)
{
	struct ratelimit rl = bw_limiter(0);
	uint64_t t = T0 + 1000 * MS + 50 * US;

	(void)state;
	assert_true(ratelimit_consume(&rl, 1, 0, T0));
	/* Ten refill times and half a byte idle bank one bucket, and not even the half byte. */
	assert_true(ratelimit_consume(&rl, 1000, 0, t));
	assert_false(ratelimit_consume(&rl, 1, 0, t));
	assert_false(ratelimit_consume(&rl, 1, 0, t + 100 * US - 1));
	assert_true(ratelimit_consume(&rl, 1, 0, t + 100 * US));
}

/* Polling every 30 µs (0.3 byte) loses no fraction: exactly 1000 bytes per 100 ms. */
static void test_fractions_carry_over(void **state)
{
	struct ratelimit rl = bw_limiter(0);
	uint64_t got = 0;

	(void)state;
	assert_true(ratelimit_consume(&rl, 1000, 0, T0));
	for (uint64_t t = T0; t <= T0 + 100 * MS; t += 30 * US)
		while (ratelimit_consume(&rl, 1, 0, t))
			got++;
	/* 100 ms / 30 µs rounds down to 99990 µs: 999 bytes, the 1000th is 10 µs away. */
	assert_int_equal(got, 999);
	assert_int_equal(ratelimit_wait_ns(&rl, 1, 0, T0 + 99990 * US), 10 * US);
	assert_true(ratelimit_consume(&rl, 1, 0, T0 + 100 * MS));
}

static void test_one_time_burst(void **state)
{
	struct ratelimit rl = bw_limiter(500);

	(void)state;
	/* Spent first: the bucket stays full while the burst lasts. */
	assert_true(ratelimit_consume(&rl, 400, 0, T0));
	assert_int_equal(ratelimit_wait_ns(&rl, 1100, 0, T0), 0);
	assert_true(ratelimit_consume(&rl, 1100, 0, T0));
	assert_false(ratelimit_consume(&rl, 1, 0, T0));
	/* Never refilled: a whole refill time later there is one bucket and no burst. */
	assert_true(ratelimit_consume(&rl, 1000, 0, T0 + 100 * MS));
	assert_false(ratelimit_consume(&rl, 1, 0, T0 + 100 * MS));
	assert_true(ratelimit_consume(&rl, 1000, 0, T0 + 10000 * MS));
	assert_false(ratelimit_consume(&rl, 1, 0, T0 + 10000 * MS));
}

static void test_ops_independent_and_all_or_nothing(void **state)
{
	/* 1000 bytes and 10 operations per 100 ms. */
	struct rate_limiter cfg = { .bandwidth = bucket(1000, 0, 100), .ops = bucket(10, 0, 100) };
	struct ratelimit rl;

	(void)state;
	ratelimit_init(&rl, &cfg, T0);
	assert_true(ratelimit_consume(&rl, 500, 10, T0));
	/* Ops short: the bytes, which fit, are not taken either. */
	assert_false(ratelimit_consume(&rl, 500, 1, T0));
	assert_true(ratelimit_consume(&rl, 500, 0, T0));
	assert_false(ratelimit_consume(&rl, 1, 0, T0));
	/* At 10 ms: 100 bytes and 1 op. Bytes short: the op is not taken. */
	assert_false(ratelimit_consume(&rl, 101, 1, T0 + 10 * MS));
	assert_true(ratelimit_consume(&rl, 0, 1, T0 + 10 * MS));
	assert_false(ratelimit_consume(&rl, 0, 1, T0 + 10 * MS));
	/* Bytes need no op: they earn on their own. */
	assert_true(ratelimit_consume(&rl, 100, 0, T0 + 10 * MS));
	assert_false(ratelimit_consume(&rl, 1, 0, T0 + 10 * MS));
}

static void test_wait_ns_exact(void **state)
{
	struct rate_limiter cfg = { .bandwidth = bucket(1000, 0, 100), .ops = bucket(10, 0, 100) };
	struct ratelimit rl;
	uint64_t w;

	(void)state;
	ratelimit_init(&rl, &cfg, T0);
	assert_int_equal(ratelimit_wait_ns(&rl, 1000, 10, T0), 0);
	assert_true(ratelimit_consume(&rl, 1000, 10, T0));
	/* 500 bytes: 50 ms; 1 op: 10 ms; both: the later one. */
	assert_int_equal(ratelimit_wait_ns(&rl, 500, 0, T0), 50 * MS);
	assert_int_equal(ratelimit_wait_ns(&rl, 0, 1, T0), 10 * MS);
	assert_int_equal(ratelimit_wait_ns(&rl, 500, 1, T0), 50 * MS);
	/* Asked later, it counts what was earned meanwhile. */
	assert_int_equal(ratelimit_wait_ns(&rl, 500, 1, T0 + 20 * MS), 30 * MS);
	w = ratelimit_wait_ns(&rl, 500, 1, T0 + 7 * US);
	assert_int_equal(w, 50 * MS - 7 * US);
	assert_false(ratelimit_consume(&rl, 500, 1, T0 + 7 * US + w - 1));
	assert_true(ratelimit_consume(&rl, 500, 1, T0 + 7 * US + w));
}

static void test_oversized_request_borrows(void **state)
{
	struct ratelimit rl = bw_limiter(0);
	uint64_t t1 = T0 + 1500 * US + 150 * MS;

	(void)state;
	/* 2500 > size: through from a full bucket, 1500 bytes (150 ms) owed. */
	assert_true(ratelimit_consume(&rl, 2500, 0, T0));
	assert_false(ratelimit_consume(&rl, 1, 0, T0 + 149 * MS));
	assert_int_equal(ratelimit_wait_ns(&rl, 1, 0, T0), 150 * MS + 100 * US);
	/* Another oversized one waits for the debt too, then only for the debt. */
	assert_int_equal(ratelimit_wait_ns(&rl, 5000, 0, T0), 150 * MS);
	assert_false(ratelimit_consume(&rl, 5000, 0, T0 + 150 * MS - 1));
	/* Paid back at 150 ms; the next byte 100 µs later. */
	assert_false(ratelimit_consume(&rl, 1, 0, T0 + 150 * MS + 100 * US - 1));
	assert_true(ratelimit_consume(&rl, 1, 0, T0 + 150 * MS + 100 * US));
	/* From a bucket that is not full it goes through too (Firecracker): 1400 more owed. */
	assert_true(ratelimit_consume(&rl, 1414, 0, t1)); /* 14 bytes earned since */
	assert_int_equal(ratelimit_wait_ns(&rl, 1, 0, t1), 140 * MS + 100 * US);
}

static void test_oversized_all_or_nothing(void **state)
{
	struct rate_limiter cfg = { .bandwidth = bucket(1000, 0, 100), .ops = bucket(1, 0, 100) };
	struct ratelimit rl;

	(void)state;
	ratelimit_init(&rl, &cfg, T0);
	assert_true(ratelimit_consume(&rl, 0, 1, T0));
	/* Ops short: the oversized bytes run up no debt. */
	assert_false(ratelimit_consume(&rl, 5000, 1, T0));
	assert_int_equal(ratelimit_wait_ns(&rl, 5000, 1, T0), 100 * MS);
	assert_true(ratelimit_consume(&rl, 1000, 0, T0));
	assert_true(ratelimit_consume(&rl, 5000, 1, T0 + 100 * MS));
	assert_int_equal(ratelimit_wait_ns(&rl, 0, 1, T0 + 100 * MS), 100 * MS);
	assert_int_equal(ratelimit_wait_ns(&rl, 1, 0, T0 + 100 * MS), 400 * MS + 100 * US);
}

static void test_refund(void **state)
{
	struct ratelimit rl = bw_limiter(0);
	struct ratelimit burst = bw_limiter(100);

	(void)state;
	/* Capped at size. */
	assert_true(ratelimit_consume(&rl, 300, 0, T0));
	ratelimit_refund(&rl, 100000, 0);
	assert_true(ratelimit_consume(&rl, 1000, 0, T0));
	assert_false(ratelimit_consume(&rl, 1, 0, T0));
	ratelimit_refund(&rl, 40, 0);
	assert_true(ratelimit_consume(&rl, 40, 0, T0));
	assert_false(ratelimit_consume(&rl, 1, 0, T0));
	/* A debt is paid first. */
	assert_true(ratelimit_consume(&rl, 3000, 0, T0 + 100 * MS));
	ratelimit_refund(&rl, 1500, 0);
	assert_int_equal(ratelimit_wait_ns(&rl, 1, 0, T0 + 100 * MS), 50 * MS + 100 * US);
	ratelimit_refund(&rl, 600, 0);
	assert_true(ratelimit_consume(&rl, 100, 0, T0 + 100 * MS));
	assert_false(ratelimit_consume(&rl, 1, 0, T0 + 100 * MS));
	/* Taken from the burst, given back to the burst. */
	assert_true(ratelimit_consume(&burst, 60, 0, T0));
	ratelimit_refund(&burst, 60, 0);
	assert_true(ratelimit_consume(&burst, 1100, 0, T0));
	assert_false(ratelimit_consume(&burst, 1, 0, T0));
	assert_int_equal(ratelimit_wait_ns(&burst, 1, 0, T0), 100 * US); /* nothing owed */
}

static void test_huge_values(void **state)
{
	const uint64_t max = UINT64_MAX;
	struct rate_limiter cfg = { .bandwidth = bucket(max, max, max), .ops = bucket(1, 0, max) };
	struct rate_limiter fast = { .bandwidth = bucket(max, 0, 1) };
	struct rate_limiter half = { .bandwidth = bucket(1ULL << 63, 0, 1),
		                     .ops = bucket(1000, 0, 100) };
	struct ratelimit rl;

	(void)state;
	ratelimit_init(&rl, &cfg, 0);
	assert_true(ratelimit_consume(&rl, max, 1, 0)); /* the burst */
	assert_true(ratelimit_consume(&rl, max, 0, 0)); /* the bucket */
	assert_false(ratelimit_consume(&rl, 1, 0, 0));
	/* One op per 2^64-1 ms: further off than u64 nanoseconds reach. */
	assert_int_equal(ratelimit_wait_ns(&rl, 0, 1, 0), max);
	/* 2^64-1 bytes per 2^64-1 ms earn a byte a ms. */
	assert_int_equal(ratelimit_wait_ns(&rl, 1, 0, 0), MS);
	assert_true(ratelimit_consume(&rl, 1, 0, MS));
	assert_false(ratelimit_consume(&rl, 1, 0, MS));
	ratelimit_refund(&rl, max, max);
	assert_true(ratelimit_consume(&rl, max, 1, MS));
	/* At the end of time, 2^64-1 ns - 1 ms later: 18446744073708 bytes, still no op. */
	assert_true(ratelimit_consume(&rl, 18446744073708ULL, 0, max));
	assert_false(ratelimit_consume(&rl, 1, 0, max));
	assert_false(ratelimit_consume(&rl, 0, 1, max));
	/* 2^64-1 ops owed, at one per 2^64-1 ms: ~2^148 ns, far past what 128 bits hold. */
	assert_true(ratelimit_consume(&rl, 0, max, max));
	assert_int_equal(ratelimit_wait_ns(&rl, 0, 1, max), max);
	assert_int_equal(ratelimit_wait_ns(&rl, 0, max, max), max);

	/* 2^64-1 bytes a ms: 18446744073709 (and a fraction) a ns, near the end of time. */
	ratelimit_init(&rl, &fast, max - 10);
	assert_true(ratelimit_consume(&rl, max, 0, max - 10));
	assert_true(ratelimit_consume(&rl, 18446744073709ULL, 0, max - 9));
	assert_false(ratelimit_consume(&rl, 1, 0, max - 9));
	assert_int_equal(ratelimit_wait_ns(&rl, max, 0, max - 9), MS);

	/* Oversized by 2^63-1 bytes at 2^63 a ms: one more ms; ops owing 2^64-1001 ops saturate. */
	ratelimit_init(&rl, &half, T0);
	assert_true(ratelimit_consume(&rl, max, max, T0));
	assert_int_equal(ratelimit_wait_ns(&rl, 1, 0, T0), MS);
	assert_int_equal(ratelimit_wait_ns(&rl, 0, 1, T0), max);
	assert_int_equal(ratelimit_wait_ns(&rl, 0, max, T0), max);
	assert_false(ratelimit_consume(&rl, 1, 0, T0 + MS - 1));
	assert_true(ratelimit_consume(&rl, 1, 0, T0 + MS));
	ratelimit_refund(&rl, 0, max);
	assert_true(ratelimit_consume(&rl, 0, 1000, T0 + MS));
	assert_false(ratelimit_consume(&rl, 0, 1, T0 + MS));
}

static void test_time_going_backwards(void **state)
{
	struct ratelimit rl = bw_limiter(0);

	(void)state;
	assert_true(ratelimit_consume(&rl, 1000, 0, T0 + 50 * MS));
	/* An earlier time refills nothing and the wait counts from the latest refill. */
	assert_false(ratelimit_consume(&rl, 1, 0, T0));
	assert_int_equal(ratelimit_wait_ns(&rl, 10, 0, T0), 51 * MS);
	assert_true(ratelimit_consume(&rl, 10, 0, T0 + 51 * MS));
}

/* Firecracker's PATCH: a bucket given starts afresh, one of size 0 lifts, an absent one stays. */
static void test_update(void **state)
{
	struct rate_limiter both = { .bandwidth = bucket(1000, 0, 100), .ops = bucket(2, 0, 100) };
	struct rate_limiter ops_only = { .ops = bucket(5, 0, 100) };
	struct rate_limiter lift_bw = { .bandwidth = bucket(0, 0, 0) };
	struct ratelimit rl;

	(void)state;
	ratelimit_init(&rl, &both, T0);
	assert_true(ratelimit_consume(&rl, 1000, 2, T0)); /* both buckets empty now */
	assert_false(ratelimit_consume(&rl, 1, 0, T0));
	assert_false(ratelimit_consume(&rl, 0, 1, T0));
	/* New ops bucket, full; the bandwidth bucket keeps its (empty) budget. */
	ratelimit_update(&rl, &ops_only, T0);
	assert_true(ratelimit_consume(&rl, 0, 5, T0));
	assert_false(ratelimit_consume(&rl, 0, 1, T0));
	assert_false(ratelimit_consume(&rl, 1, 0, T0));
	/* Bandwidth lifted: any number of bytes; ops still limited. */
	ratelimit_update(&rl, &lift_bw, T0);
	assert_true(ratelimit_consume(&rl, UINT64_MAX, 0, T0));
	assert_false(ratelimit_consume(&rl, 0, 1, T0));
	assert_false(ratelimit_unlimited(&rl));
	/* A replaced bucket takes its debt with it: the new one starts full. */
	ratelimit_init(&rl, &both, T0);
	assert_true(ratelimit_consume(&rl, 5000, 0, T0)); /* oversized: 4000 owed */
	ratelimit_update(&rl, &(struct rate_limiter){ .bandwidth = bucket(1000, 0, 100) }, T0);
	assert_true(ratelimit_consume(&rl, 1000, 0, T0));
	ratelimit_update(&rl, &(struct rate_limiter){ .ops = bucket(0, 0, 0) }, T0);
	ratelimit_update(&rl, &lift_bw, T0);
	assert_true(ratelimit_unlimited(&rl));
}

struct retry {
	struct loop *loop;
	int fired;
};

static void on_retry(void *arg)
{
	struct retry *r = arg;

	r->fired++;
	loop_stop(r->loop, 0);
}

static void test_timer(void **state)
{
	struct retry r = { .loop = loop_new() };
	struct ratelimit_timer t;

	(void)state;
	assert_non_null(r.loop);
	ratelimit_timer_init(&t, r.loop, on_retry, &r);
	assert_false(ratelimit_timer_armed(&t));
	assert_int_equal(ratelimit_timer_arm(&t, 2 * MS), 0);
	assert_true(ratelimit_timer_armed(&t));
	/* Armed already: one timer, one retry. */
	assert_int_equal(ratelimit_timer_arm(&t, 1), 0);
	assert_int_equal(loop_run(r.loop), 0);
	assert_int_equal(r.fired, 1);
	assert_false(ratelimit_timer_armed(&t));
	/* Cancelled: never fires. The longest wait (584 years) still arms. */
	assert_int_equal(ratelimit_timer_arm(&t, UINT64_MAX), 0);
	ratelimit_timer_cancel(&t);
	assert_false(ratelimit_timer_armed(&t));
	ratelimit_timer_cancel(&t);
	assert_int_equal(loop_run_once(r.loop, 5000), 0);
	assert_int_equal(r.fired, 1);
	loop_free(r.loop);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unlimited),
		cmocka_unit_test(test_starts_full_and_refuses_one_more),
		cmocka_unit_test(test_refills_linearly),
		cmocka_unit_test(test_refill_stops_at_size),
		cmocka_unit_test(test_fractions_carry_over),
		cmocka_unit_test(test_one_time_burst),
		cmocka_unit_test(test_ops_independent_and_all_or_nothing),
		cmocka_unit_test(test_wait_ns_exact),
		cmocka_unit_test(test_oversized_request_borrows),
		cmocka_unit_test(test_oversized_all_or_nothing),
		cmocka_unit_test(test_refund),
		cmocka_unit_test(test_huge_values),
		cmocka_unit_test(test_time_going_backwards),
		cmocka_unit_test(test_update),
		cmocka_unit_test(test_timer),
	};
	return TEST_MAIN(tests, NULL, NULL);
}
