/* Firecracker's rate limiter: token buckets refilled from caller-supplied time, integer only. */
#include "devices/virtio/rate_limiter.h"
#include "vmm/base/loop.h"

#include <errno.h>
#include <stddef.h>

/* size * elapsed needs 128 bits; refill_time in ns needs up to 84. */
typedef unsigned __int128 u128;

#define NS_PER_MS 1000000u

static u128 period_ns(const struct ratelimit_bucket *b)
{
	return (u128)b->refill_ms * NS_PER_MS;
}

static uint64_t sat64(u128 v)
{
	return v > UINT64_MAX ? UINT64_MAX : (uint64_t)v;
}

/*
 * min(ceil((a * b + add) / c), UINT64_MAX) for c > 0 and add < 2^100. a * b may need ~150
 * bits, so split both by c: a = aq * c + ar, b = bq * c + br give
 * a * b = c * (aq * b + ar * bq) + ar * br.
 */
static uint64_t muldiv_ceil_sat(u128 a, u128 b, u128 add, uint64_t c)
{
	u128 aq = a / c, ar = a % c, bq = b / c, br = b % c, sum, part;

	if ((aq && b > UINT64_MAX / aq) || (ar && bq > UINT64_MAX / ar))
		return UINT64_MAX; /* the quotient alone is past 2^64 */
	sum = aq * b + ar * bq;
	part = ar * br; /* both < c < 2^64 */
	sum += part / c;
	part = part % c + add;
	sum += part / c + (part % c != 0);
	return sat64(sum);
}

static void bucket_init(struct ratelimit_bucket *b, const struct token_bucket *cfg, uint64_t now_ns)
{
	*b = (struct ratelimit_bucket){ .last_ns = now_ns };
	/* Firecracker's TokenBucket::new returns None for these: no limit at all. */
	if (!cfg->present || !cfg->size || !cfg->refill_time_ms)
		return;
	b->limited = true;
	b->size = cfg->size;
	b->budget = cfg->size;
	b->burst = cfg->one_time_burst;
	b->refill_ms = cfg->refill_time_ms;
}

/* Adds what was earned since last_ns: the debt is paid first, then the budget up to size. */
static void bucket_refill(struct ratelimit_bucket *b, uint64_t now_ns)
{
	u128 period = period_ns(b), scaled, earned;

	if (!b->limited || now_ns <= b->last_ns)
		return;
	/* earned = (elapsed * size + frac) / period, without the sum overflowing 128 bits */
	scaled = (u128)(now_ns - b->last_ns) * b->size;
	earned = scaled / period;
	b->frac += scaled % period; /* < 2 * period */
	earned += b->frac / period;
	b->frac %= period;
	b->last_ns = now_ns;
	if (earned < b->debt) {
		b->debt -= (uint64_t)earned;
		return;
	}
	earned -= b->debt;
	b->debt = 0;
	if (earned < b->size - b->budget) {
		b->budget += (uint64_t)earned;
		return;
	}
	/* A full bucket banks nothing, not even a fraction. */
	b->budget = b->size;
	b->frac = 0;
}

/* Whether @n tokens can be taken now (after a refill). */
static bool bucket_fits(const struct ratelimit_bucket *b, uint64_t n)
{
	uint64_t rest;

	if (!b->limited || n <= b->burst)
		return true;
	if (b->debt)
		return false;
	rest = n - b->burst;
	/* More than size never fits: Firecracker lets it through and bills the rest as debt. */
	return rest <= b->budget || rest > b->size;
}

static void bucket_take(struct ratelimit_bucket *b, uint64_t n)
{
	if (!b->limited)
		return;
	if (n <= b->burst) {
		b->burst -= n;
		return;
	}
	n -= b->burst;
	b->burst = 0;
	if (n <= b->budget) {
		b->budget -= n;
		return;
	}
	b->debt = n - b->budget;
	b->budget = 0;
}

/* Tokens refill must still earn before @n fits; 0 when it fits. Debt implies no budget. */
static u128 bucket_shortfall(const struct ratelimit_bucket *b, uint64_t n)
{
	uint64_t rest;

	if (bucket_fits(b, n))
		return 0;
	rest = n - b->burst;
	if (rest > b->size)
		return b->debt; /* an oversized request only waits for the debt */
	return (u128)b->debt + rest - b->budget;
}

static uint64_t bucket_wait_ns(const struct ratelimit_bucket *b, uint64_t n, uint64_t now_ns)
{
	struct ratelimit_bucket c = *b;
	uint64_t need_ns;
	u128 need;

	bucket_refill(&c, now_ns);
	need = bucket_shortfall(&c, n);
	if (!need)
		return 0;
	/*
	 * Refill earns (elapsed * size + frac) / period tokens, so the smallest elapsed is
	 * ceil((need * period - frac) / size); frac < period keeps it positive.
	 */
	need_ns = muldiv_ceil_sat(need - 1, period_ns(&c), period_ns(&c) - c.frac, c.size);
	/* The refill above moved last_ns to now, unless time went backwards. */
	if (now_ns < c.last_ns)
		return sat64((u128)need_ns + (c.last_ns - now_ns));
	return need_ns;
}

static void bucket_refund(struct ratelimit_bucket *b, uint64_t n)
{
	if (!b->limited)
		return;
	if (n <= b->debt) {
		b->debt -= n;
		return;
	}
	n -= b->debt;
	b->debt = 0;
	/* While burst is left every take came from it alone (Firecracker's replenish). */
	if (b->burst) {
		b->burst = sat64((u128)b->burst + n);
		return;
	}
	b->budget = n < b->size - b->budget ? b->budget + n : b->size;
}

void ratelimit_init(struct ratelimit *rl, const struct rate_limiter *cfg, uint64_t now_ns)
{
	bucket_init(&rl->bw, &cfg->bandwidth, now_ns);
	bucket_init(&rl->ops, &cfg->ops, now_ns);
}

void ratelimit_update(struct ratelimit *rl, const struct rate_limiter *cfg, uint64_t now_ns)
{
	if (cfg->bandwidth.present)
		bucket_init(&rl->bw, &cfg->bandwidth, now_ns);
	if (cfg->ops.present)
		bucket_init(&rl->ops, &cfg->ops, now_ns);
}

bool ratelimit_unlimited(const struct ratelimit *rl)
{
	return !rl->bw.limited && !rl->ops.limited;
}

bool ratelimit_consume(struct ratelimit *rl, uint64_t bytes, uint64_t ops, uint64_t now_ns)
{
	bucket_refill(&rl->bw, now_ns);
	bucket_refill(&rl->ops, now_ns);
	if (!bucket_fits(&rl->bw, bytes) || !bucket_fits(&rl->ops, ops))
		return false;
	bucket_take(&rl->bw, bytes);
	bucket_take(&rl->ops, ops);
	return true;
}

uint64_t ratelimit_wait_ns(const struct ratelimit *rl, uint64_t bytes, uint64_t ops,
                           uint64_t now_ns)
{
	uint64_t bw = bucket_wait_ns(&rl->bw, bytes, now_ns);
	uint64_t op = bucket_wait_ns(&rl->ops, ops, now_ns);

	/* Refill only ever helps a request fit, so the later of the two covers both. */
	return bw > op ? bw : op;
}

void ratelimit_refund(struct ratelimit *rl, uint64_t bytes, uint64_t ops)
{
	bucket_refund(&rl->bw, bytes);
	bucket_refund(&rl->ops, ops);
}

void ratelimit_timer_init(struct ratelimit_timer *t, struct loop *l, void (*fn)(void *arg),
                          void *arg)
{
	*t = (struct ratelimit_timer){ .loop = l, .fn = fn, .arg = arg };
}

static void timer_fired(void *arg)
{
	struct ratelimit_timer *t = arg;

	t->watch = NULL; /* the loop freed its one-shot watch */
	t->fn(t->arg);
}

int ratelimit_timer_arm(struct ratelimit_timer *t, uint64_t wait_ns)
{
	uint64_t usec;

	if (t->watch)
		return 0;
	usec = wait_ns / 1000 + (wait_ns % 1000 != 0);
	t->watch = loop_add_timer(t->loop, usec, false, timer_fired, t);
	return t->watch ? 0 : -ENOMEM;
}

void ratelimit_timer_cancel(struct ratelimit_timer *t)
{
	loop_remove(t->watch);
	t->watch = NULL;
}
