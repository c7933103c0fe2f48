/*
 * The sections flint does not implement yet: balloon, cpu-config, pmem and memory-hotplug. Each is
 * first checked as Firecracker's struct for it reads it (required keys, types, unknown keys), so a
 * config Firecracker would refuse gets the same reason; only a valid one that asks for something is
 * then refused as "not supported yet", never ignored. Absent or null asks for nothing, and so do an
 * empty pmem list and a CPU template with no modifiers.
 */
#include "vmm/config/sections.h"
#include "vmm/base/log.h"

#include <stdint.h>
#include <stdlib.h>

static int not_yet(struct cfg_ctx *c, const char *path)
{
	return cfg_fail(c, path, "not supported yet");
}

/* BalloonDeviceConfig: amount_mib (u32) and deflate_on_oom are required. */
int cfg_balloon(struct cfg_ctx *c, json_t *v, const char *path, struct vm_config *cfg)
{
	uint64_t n;
	bool b;
	int r;

	(void)cfg;
	if (!v)
		return 0;
	r = cfg_object(c, v, path,
	               CFG_KEYS("amount_mib", "deflate_on_oom", "stats_polling_interval_s",
	                        "free_page_hinting", "free_page_reporting"));
	if (!r)
		r = cfg_uint(c, v, path, "amount_mib", true, 0, UINT32_MAX, &n);
	if (!r)
		r = cfg_bool(c, v, path, "deflate_on_oom", true, &b);
	if (!r)
		r = cfg_uint(c, v, path, "stats_polling_interval_s", false, 0, UINT16_MAX, &n);
	if (!r)
		r = cfg_bool(c, v, path, "free_page_hinting", false, &b);
	if (!r)
		r = cfg_bool(c, v, path, "free_page_reporting", false, &b);
	return r ? r : not_yet(c, path);
}

/*
 * A custom CPU template: a file name, or the template itself (x86_64 CustomCpuTemplate:
 * three optional lists of modifiers). A file is not read; the modifiers' own fields are not
 * checked, since any modifier is refused.
 */
int cfg_cpu_config(struct cfg_ctx *c, json_t *v, const char *path, struct vm_config *cfg)
{
	static const char *const lists[] = { "kvm_capabilities", "cpuid_modifiers", "msr_modifiers",
		                             NULL };
	char sub[CFG_PATH_MAX];
	bool asks = false;
	int r;

	(void)cfg;
	if (!v)
		return 0;
	if (json_is_string(v))
		return not_yet(c, path);
	if (!json_is_object(v))
		return cfg_fail(c, path, "must be a file name or a CPU template object");
	r = cfg_object(c, v, path, lists);
	for (int i = 0; !r && lists[i]; i++) {
		json_t *l = cfg_member(v, lists[i]);
		if (l && !json_is_array(l))
			r = cfg_fail(c, cfg_join(sub, path, lists[i]), "must be an array");
		asks |= json_array_size(l) > 0;
	}
	return r || !asks ? r : not_yet(c, path);
}

/* One PmemConfig: id and path_on_host are required. */
static int pmem_one(struct cfg_ctx *c, json_t *v, const char *p)
{
	struct rate_limiter l = { 0 };
	char *s = NULL;
	bool b;
	int r = cfg_object(
	        c, v, p,
	        CFG_KEYS("id", "path_on_host", "root_device", "read_only", "rate_limiter"));

	if (!r)
		r = cfg_string(c, v, p, "id", true, &s);
	free(s);
	s = NULL;
	if (!r)
		r = cfg_string(c, v, p, "path_on_host", true, &s);
	free(s);
	if (!r)
		r = cfg_bool(c, v, p, "root_device", false, &b);
	if (!r)
		r = cfg_bool(c, v, p, "read_only", false, &b);
	if (!r)
		r = cfg_rate_limiter(c, v, p, "rate_limiter", &l);
	return r;
}

int cfg_pmem(struct cfg_ctx *c, json_t *v, const char *path, struct vm_config *cfg)
{
	char sub[CFG_PATH_MAX];
	json_t *item;
	size_t i;
	int r = 0;

	(void)cfg;
	if (!v)
		return 0;
	if (!json_is_array(v))
		return cfg_fail(c, path, "must be an array");
	json_array_foreach(v, i, item)
	{
		if (!r)
			r = pmem_one(c, item, cfg_index(sub, path, i));
	}
	return r || !json_array_size(v) ? r : not_yet(c, path);
}

/* MemoryHotplugConfig: total_size_mib is required; sizes are u32 MiB. */
int cfg_memory_hotplug(struct cfg_ctx *c, json_t *v, const char *path, struct vm_config *cfg)
{
	uint64_t n;
	int r;

	(void)cfg;
	if (!v)
		return 0;
	r = cfg_object(c, v, path, CFG_KEYS("total_size_mib", "block_size_mib", "slot_size_mib"));
	if (!r)
		r = cfg_uint(c, v, path, "total_size_mib", true, 0, UINT32_MAX, &n);
	if (!r)
		r = cfg_uint(c, v, path, "block_size_mib", false, 0, UINT32_MAX, &n);
	if (!r)
		r = cfg_uint(c, v, path, "slot_size_mib", false, 0, UINT32_MAX, &n);
	return r ? r : not_yet(c, path);
}
