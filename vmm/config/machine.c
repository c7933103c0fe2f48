/* machine-config (PUT /machine-config): vCPUs, memory and how it is backed. */
#include "vmm/config/config.h"
#include "vmm/config/sections.h"

#include <stdint.h>
#include <string.h>

const char *const config_huge_pages_names[] = { "None", "2M", NULL };

/* Rules between the keys, once each is valid on its own. */
static int check_machine(struct cfg_ctx *c, const char *path, const struct vm_config *cfg)
{
	char sub[CFG_PATH_MAX];

	if (cfg->smt && cfg->vcpus > 1 && cfg->vcpus % 2)
		return cfg_fail(c, cfg_join(sub, path, "vcpu_count"),
		                "must be 1 or even when smt is true (got %u)", cfg->vcpus);
	if (cfg->huge_pages == HUGE_PAGES_2M && cfg->mem_mib % 2)
		return cfg_fail(c, cfg_join(sub, path, "mem_size_mib"),
		                "must be a multiple of 2 with huge_pages \"2M\" (got %llu)",
		                (unsigned long long)cfg->mem_mib);
	return 0;
}

/* "None" (or null) is the only template: anything else asks for what flint lacks. */
static int cpu_template(struct cfg_ctx *c, json_t *v, const char *path)
{
	static const char *const templates[] = { "None", NULL };
	json_t *t = cfg_member(v, "cpu_template");
	char sub[CFG_PATH_MAX];
	int unused;

	if (json_is_string(t) && strcmp(json_string_value(t), "None") != 0)
		return cfg_fail(c, cfg_join(sub, path, "cpu_template"),
		                "CPU templates are not supported yet");
	return cfg_enum(c, v, path, "cpu_template", templates, &unused);
}

int cfg_machine(struct cfg_ctx *c, json_t *v, const char *path, struct vm_config *cfg)
{
	uint64_t vcpus = 0, mem = 0;
	int hp = 0, r;

	if (!v)
		return cfg_fail(c, path, "required section is missing");
	r = cfg_object(c, v, path,
	               CFG_KEYS("vcpu_count", "mem_size_mib", "smt", "cpu_template",
	                        "track_dirty_pages", "huge_pages"));
	if (!r)
		r = cfg_uint(c, v, path, "vcpu_count", true, 1, CONFIG_MAX_VCPUS, &vcpus);
	if (!r)
		r = cfg_uint(c, v, path, "mem_size_mib", true, 1, CONFIG_MAX_MEM_MIB, &mem);
	if (!r)
		r = cfg_bool(c, v, path, "smt", false, &cfg->smt);
	if (!r)
		r = cfg_bool(c, v, path, "track_dirty_pages", false, &cfg->track_dirty_pages);
	if (!r)
		r = cpu_template(c, v, path);
	if (!r)
		r = cfg_enum(c, v, path, "huge_pages", config_huge_pages_names, &hp);
	if (r)
		return r;
	cfg->vcpus = (unsigned)vcpus;
	cfg->mem_mib = mem;
	cfg->huge_pages = (enum huge_pages)hp;
	return check_machine(c, path, cfg);
}
