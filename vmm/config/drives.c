/* drives (PUT /drives/{id}): block devices backed by a host file or block device. */
#include "vmm/config/config.h"
#include "vmm/config/sections.h"
#include "vmm/base/file.h"

#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

const char *const config_cache_names[] = { "Unsafe", "Writeback", NULL };
const char *const config_io_engine_names[] = { "Sync", "Async", NULL };

/*
 * What Linux's root=PARTUUID= takes: a GPT UUID or an MBR "SSSSSSSS-PP", optionally
 * "/PARTNROFF=n". Nothing else, so the string cannot add arguments to the command line.
 */
static bool partuuid_ok(const char *s)
{
	static const char partnroff[] = "/PARTNROFF=";
	size_t uuid = strspn(s, "0123456789abcdefABCDEF-");
	const char *off;

	if (!uuid || strlen(s) > 64)
		return false;
	if (!s[uuid])
		return true;
	if (strncmp(s + uuid, partnroff, sizeof(partnroff) - 1) != 0)
		return false;
	off = s + uuid + sizeof(partnroff) - 1;
	return *off && strspn(off, "0123456789") == strlen(off);
}

static int drive_one(struct cfg_ctx *c, json_t *v, const char *p, void *out)
{
	struct drive_config *d = out;
	char sub[CFG_PATH_MAX];
	int cache = 0, engine = 0, r;

	d->fd = -1;
	r = cfg_object(c, v, p,
	               CFG_KEYS("drive_id", "path_on_host", "is_root_device", "is_read_only",
	                        "partuuid", "cache_type", "io_engine", "rate_limiter", "socket"));
	if (!r && cfg_member(v, "socket"))
		return cfg_fail(c, cfg_join(sub, p, "socket"),
		                "vhost-user drives are not supported yet");
	if (!r)
		r = cfg_string(c, v, p, "drive_id", true, &d->id);
	if (!r)
		r = cfg_bool(c, v, p, "is_root_device", true, &d->root);
	if (!r)
		r = cfg_bool(c, v, p, "is_read_only", false, &d->read_only);
	if (!r)
		r = cfg_string(c, v, p, "partuuid", false, &d->partuuid);
	if (!r && d->partuuid && !partuuid_ok(d->partuuid))
		r = cfg_fail(c, cfg_join(sub, p, "partuuid"),
		             "not a partition UUID (hex digits and '-', at most 64 characters; it "
		             "goes on the kernel command line)");
	if (!r)
		r = cfg_enum(c, v, p, "cache_type", config_cache_names, &cache);
	if (!r)
		r = cfg_enum(c, v, p, "io_engine", config_io_engine_names, &engine);
	if (!r)
		r = cfg_rate_limiter(c, v, p, "rate_limiter", &d->limiter);
	/* Last: how it is opened depends on is_read_only. */
	if (!r)
		r = cfg_open(c, v, p, "path_on_host", true, d->read_only ? O_RDONLY : O_RDWR,
		             FILE_REG | FILE_BLK, 0, &d->path, &d->fd);
	d->cache = (enum cache_type)cache;
	d->engine = (enum io_engine)engine;
	return r;
}

/* One root device at most, and only it may name its partition. */
static int check_root(struct cfg_ctx *c, const char *path, const struct vm_config *cfg)
{
	char sub[CFG_PATH_MAX], idx[CFG_PATH_MAX];
	size_t roots = 0;

	for (size_t i = 0; i < cfg->ndrives; i++) {
		const struct drive_config *d = &cfg->drives[i];
		cfg_index(idx, path, i);
		if (d->root && ++roots > 1)
			return cfg_fail(c, cfg_join(sub, idx, "is_root_device"),
			                "only one drive can be the root device");
		if (d->partuuid && !d->root)
			return cfg_fail(c, cfg_join(sub, idx, "partuuid"),
			                "only the root device takes a partuuid");
	}
	return 0;
}

int cfg_drives(struct cfg_ctx *c, json_t *v, const char *path, struct vm_config *cfg)
{
	int r = cfg_list(c, v, path, CONFIG_MAX_DEVICES, sizeof(*cfg->drives),
	                 (void **)&cfg->drives, &cfg->ndrives, drive_one);

	if (!r)
		r = cfg_unique(c, path, cfg->drives, cfg->ndrives, sizeof(*cfg->drives),
		               offsetof(struct drive_config, id), "drive_id", "id");
	if (!r)
		r = check_root(c, path, cfg);
	return r;
}
