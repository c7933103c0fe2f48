/* machine-config (PUT /machine-config): vCPUs, memory and how it is backed. */
#include "vmm/config/config.h"
#include "vmm/config/sections.h"

#include <stdint.h>
#include <string.h>

/* Firecracker's HugePageConfig names, in its order; indexed by enum huge_pages. */
const char *const config_huge_pages_names[] = { "None", "Transparent", "2M", NULL };

/* Firecracker's MachineConfig::default(), what a config without machine-config gets. */
#define DEFAULT_VCPUS   1
#define DEFAULT_MEM_MIB 128

/* Rules between the keys, once each is valid on its own. */
static int check_machine(struct cfg_ctx *c, const char *path, const struct vm_config *cfg)
{
	char sub[CFG_PATH_MAX];

	if (cfg->smt && cfg->vcpus > 1 && cfg->vcpus % 2)
		return cfg_fail(c, cfg_join(sub, path, "vcpu_count"),
		                "must be 1 or even when smt is true (got %u)", cfg->vcpus);
	/* Both huge page kinds, as in Firecracker (HugePageConfig::is_valid_mem_size). */
	if (cfg->huge_pages != HUGE_PAGES_NONE && cfg->mem_mib % 2)
		return cfg_fail(c, cfg_join(sub, path, "mem_size_mib"),
		                "must be a multiple of 2 with huge_pages \"%s\" (got %llu)",
		                config_huge_pages_names[cfg->huge_pages],
		                (unsigned long long)cfg->mem_mib);
	return 0;
}

/*
 * Firecracker's static templates (x86_64 StaticCpuTemplate): "None" (or null) asks for
 * nothing; the others are valid names flint cannot apply yet.
 */
static int cpu_template(struct cfg_ctx *c, json_t *v, const char *path)
{
	static const char *const templates[] = { "C3", "T2", "T2S", "None", "T2CL", "T2A", NULL };
	char sub[CFG_PATH_MAX];
	int t = 3;
	int r = cfg_enum(c, v, path, "cpu_template", templates, &t);

	if (!r && strcmp(templates[t], "None") != 0)
		r = cfg_fail(c, cfg_join(sub, path, "cpu_template"),
		             "\"%s\": CPU templates are not supported yet", templates[t]);
	return r;
}

/* The keys, once @v is an object: vcpu_count and mem_size_mib are required, as there. */
static int machine_keys(struct cfg_ctx *c, json_t *v, const char *path, struct vm_config *cfg)
{
	uint64_t vcpus = 0, mem = 0;
	int hp = HUGE_PAGES_NONE;
	int r = cfg_uint(c, v, path, "vcpu_count", true, 1, CONFIG_MAX_VCPUS, &vcpus);

	if (!r)
		r = cfg_uint(c, v, path, "mem_size_mib", true, 1, CONFIG_MAX_MEM_MIB, &mem);
	if (!r)
		r = cfg_bool(c, v, path, "smt", false, &cfg->smt);
	if (!r)
		r = cfg_bool(c, v, path, "track_dirty_pages", false, &cfg->track_dirty_pages);
	if (!r)
		r = cfg_enum(c, v, path, "huge_pages", config_huge_pages_names, &hp);
	if (!r)
		r = cpu_template(c, v, path);
	cfg->vcpus = (unsigned)vcpus;
	cfg->mem_mib = mem;
	cfg->huge_pages = (enum huge_pages)hp;
	return r;
}

/* Absent or null: Firecracker's defaults, 1 vCPU and 128 MiB. */
int cfg_machine(struct cfg_ctx *c, json_t *v, const char *path, struct vm_config *cfg)
{
	int r;

	cfg->vcpus = DEFAULT_VCPUS;
	cfg->mem_mib = DEFAULT_MEM_MIB;
	if (!v)
		return 0;
	r = cfg_object(c, v, path,
	               CFG_KEYS("vcpu_count", "mem_size_mib", "smt", "cpu_template",
	                        "track_dirty_pages", "huge_pages"));
	if (!r)
		r = machine_keys(c, v, path, cfg);
	return r ? r : check_machine(c, path, cfg);
}
