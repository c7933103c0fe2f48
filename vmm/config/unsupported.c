/*
 * The sections flint does not implement yet (balloon, cpu-config, mmds-config, pmem,
 * memory-hotplug, serial; config.c lists them). Firecracker's own configs write them as
 * null, {} or [], which ask for nothing and pass; anything else asks for a feature flint
 * lacks, and is refused rather than ignored.
 */
#include "vmm/config/sections.h"

int cfg_unsupported(struct cfg_ctx *c, json_t *v, const char *path, struct vm_config *cfg)
{
	(void)cfg;
	if (!v || (json_is_array(v) && json_array_size(v) == 0) ||
	    (json_is_object(v) && json_object_size(v) == 0))
		return 0;
	return cfg_fail(c, path, "not supported yet");
}
