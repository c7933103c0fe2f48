/* Firecracker's rate limiter for virtio devices: a bandwidth and an ops token bucket. */
#ifndef FLINT_VIRTIO_RATE_LIMITER_H
#define FLINT_VIRTIO_RATE_LIMITER_H

#include "devices/virtio/config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Semantics are Firecracker's (src/rate_limiter), with integer arithmetic only:
 *
 * - A bucket holds up to `size` tokens and refills linearly, `size` tokens every
 *   `refill_time` ms. It starts full, plus `one_time_burst` extra tokens that are spent
 *   first and never refill. A bucket that is absent, or has size 0 or refill_time 0, is
 *   unlimited. Bandwidth tokens are bytes, ops tokens are requests.
 * - A request takes its tokens from both buckets or from neither (Firecracker's devices get
 *   the same effect by giving the ops token back when the bytes do not fit).
 * - A request that needs more than `size` tokens (after the burst) could never fit. As in
 *   Firecracker's TokenBucket::reduce (OverConsumption), it goes through anyway, whatever
 *   the budget, as long as the bucket owes nothing: the budget drops to zero and the rest
 *   becomes a debt. Refill pays the debt first, and every request of that bucket waits
 *   until it is paid, so the long-run rate holds and a huge request is never starved.
 *   A request that needs 0 tokens of a bucket is never held back by that bucket.
 * - Time is passed in (CLOCK_MONOTONIC ns, clock_now_ns()), never read here: tests are
 *   exact. Time going backwards refills nothing. The fraction of a token earned is carried
 *   over to the next refill, not lost, so the rate is exact however often one polls.
 *
 * Device pattern (loop thread; never sleeps):
 *
 *	if (!ratelimit_consume(&rl, len, 1, now)) {
 *		ratelimit_timer_arm(&timer, ratelimit_wait_ns(&rl, len, 1, now));
 *		return;	// leave the request on the queue; the timer's fn retries it
 *	}
 *	... do the request; if it moved fewer bytes: ratelimit_refund(&rl, len - done, 0);
 *
 * While the timer is armed the device stops taking requests from the guest (Firecracker
 * does the same), so the one that blocked goes first when the timer fires. The loop's
 * clock may be coarser than clock_now_ns(): a timer that fires a little early finds the
 * request still blocked and simply arms again for the rest.
 */

struct loop;
struct loop_watch;

struct ratelimit_bucket {
	bool limited;
	uint64_t size;
	uint64_t burst;  /* one_time_burst left */
	uint64_t budget; /* 0..size */
	uint64_t debt;   /* overconsumption still to be refilled; burst and budget are 0 */
	uint64_t refill_ms;
	uint64_t last_ns; /* refilled up to here */
	/* Part of a token earned by last_ns, in 1/(refill_ms * 10^6) tokens (< 2^84). */
	unsigned __int128 frac;
};

struct ratelimit {
	struct ratelimit_bucket bw, ops;
};

void ratelimit_init(struct ratelimit *rl, const struct rate_limiter *cfg, uint64_t now_ns);
/*
 * Firecracker's update of a running limiter (PATCH /drives, /network-interfaces): each
 * bucket present in @cfg replaces that bucket, which starts afresh (full, its one-time
 * burst unspent, no debt); a present bucket with size 0 or refill_time 0 lifts that limit;
 * an absent one stays as it is, its budget and debt included.
 */
void ratelimit_update(struct ratelimit *rl, const struct rate_limiter *cfg, uint64_t now_ns);
/* Both buckets unlimited: the device may skip the limiter altogether. */
bool ratelimit_unlimited(const struct ratelimit *rl);
/* Takes @bytes of bandwidth and @ops operations at @now_ns, all or nothing. true: go ahead. */
bool ratelimit_consume(struct ratelimit *rl, uint64_t bytes, uint64_t ops, uint64_t now_ns);
/*
 * Nanoseconds from @now_ns until ratelimit_consume() of the same request succeeds, if
 * nothing else consumes meanwhile; 0 when it would now. Saturates at UINT64_MAX.
 */
uint64_t ratelimit_wait_ns(const struct ratelimit *rl, uint64_t bytes, uint64_t ops,
                           uint64_t now_ns);
/*
 * Gives tokens back (a request that moved less than it took). Pays a debt first; then, as
 * in Firecracker, tops up the one-time burst while some is left (that is where the tokens
 * came from), else the budget, never above size.
 */
void ratelimit_refund(struct ratelimit *rl, uint64_t bytes, uint64_t ops);

/* One-shot loop timer that retries a blocked device: @fn(@arg) when it fires. */
struct ratelimit_timer {
	struct loop *loop;
	struct loop_watch *watch; /* NULL when not armed */
	void (*fn)(void *arg);
	void *arg;
};

void ratelimit_timer_init(struct ratelimit_timer *t, struct loop *l, void (*fn)(void *arg),
                          void *arg);
/* Arms the timer @wait_ns from now, rounded up to whole µs; a no-op when already armed. */
int ratelimit_timer_arm(struct ratelimit_timer *t, uint64_t wait_ns);
static inline bool ratelimit_timer_armed(const struct ratelimit_timer *t)
{
	return t->watch != NULL;
}
/* Disarms (device reset or teardown). Safe when not armed. */
void ratelimit_timer_cancel(struct ratelimit_timer *t);

#endif
