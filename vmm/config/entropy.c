/* entropy (PUT /entropy): the virtio-rng device and its optional rate limiter. */
#include "vmm/config/sections.h"

int cfg_entropy(struct cfg_ctx *c, json_t *v, const char *path, struct vm_config *cfg)
{
	int r;

	if (!v)
		return 0;
	r = cfg_object(c, v, path, CFG_KEYS("rate_limiter"));
	if (!r)
		r = cfg_rate_limiter(c, v, path, "rate_limiter", &cfg->entropy_limiter);
	cfg->entropy = r == 0;
	return r;
}
