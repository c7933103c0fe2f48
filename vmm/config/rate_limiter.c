/* Firecracker's RateLimiter: two optional token buckets, shared by drives, net and entropy. */
#include "vmm/config/sections.h"

#include <stdint.h>

static int parse_bucket(struct cfg_ctx *c, json_t *obj, const char *path, const char *key,
                        struct token_bucket *b)
{
	/* Firecracker takes any u64; jansson's integers stop at INT64_MAX. */
	const uint64_t max = UINT64_MAX >> 1;
	char sub[CFG_PATH_MAX];
	json_t *v = cfg_member(obj, key);
	int r;

	if (!v)
		return 0;
	/* Firecracker's TokenBucketConfig does not deny unknown fields: ignored, and said. */
	r = cfg_object_open(c, v, cfg_join(sub, path, key),
	                    CFG_KEYS("size", "one_time_burst", "refill_time"));
	if (!r)
		r = cfg_uint(c, v, sub, "size", true, 0, max, &b->size);
	if (!r)
		r = cfg_uint(c, v, sub, "one_time_burst", false, 0, max, &b->one_time_burst);
	if (!r)
		r = cfg_uint(c, v, sub, "refill_time", true, 0, max, &b->refill_time_ms);
	b->present = r == 0;
	return r;
}

/* RateLimiterConfig itself denies unknown fields, as here. */
int cfg_rate_limiter(struct cfg_ctx *c, json_t *obj, const char *path, const char *key,
                     struct rate_limiter *l)
{
	char sub[CFG_PATH_MAX];
	json_t *v;
	int r = cfg_sub(c, obj, path, key, CFG_KEYS("bandwidth", "ops"), &v, sub);

	if (r <= 0)
		return r;
	r = parse_bucket(c, v, sub, "bandwidth", &l->bandwidth);
	if (!r)
		r = parse_bucket(c, v, sub, "ops", &l->ops);
	return r;
}
