/* drives (PUT /drives/{id}): block devices backed by a host file or block device. */
#include "vmm/config/config.h"
#include "vmm/config/sections.h"
#include "vmm/base/file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

/*
 * Only the root device's partuuid goes on the command line; Firecracker keeps it on any
 * other drive and never uses it, so there it is checked as a string and dropped.
 */
static int partuuid(struct cfg_ctx *c, json_t *v, const char *p, struct drive_config *d)
{
	char sub[CFG_PATH_MAX];
	int r = cfg_string(c, v, p, "partuuid", false, &d->partuuid);

	if (!r && d->partuuid && !d->root) {
		free(d->partuuid);
		d->partuuid = NULL;
	}
	if (!r && d->partuuid && !partuuid_ok(d->partuuid))
		r = cfg_fail(c, cfg_join(sub, p, "partuuid"),
		             "not a partition UUID (hex digits and '-', at most 64 characters; it "
		             "goes on the kernel command line)");
	return r;
}

/*
 * A vhost-user drive: Firecracker takes "socket" only without the keys of a drive backed
 * by a file (its VhostUserBlockConfig), so that is checked before it is refused.
 */
static int vhost_user(struct cfg_ctx *c, json_t *v, const char *p)
{
	static const char *const file_keys[] = { "path_on_host", "is_read_only", "rate_limiter",
		                                 "io_engine", NULL };
	char sub[CFG_PATH_MAX];
	char *socket = NULL;
	int r = cfg_string(c, v, p, "socket", true, &socket);

	free(socket);
	cfg_join(sub, p, "socket");
	for (int i = 0; !r && file_keys[i]; i++)
		if (cfg_member(v, file_keys[i]))
			r = cfg_fail(c, sub,
			             "cannot be combined with %s (a drive has either a "
			             "socket or a file)",
			             file_keys[i]);
	return r ? r : cfg_fail(c, sub, "vhost-user drives are not supported yet");
}

/* The keys of a drive backed by a file; how it is opened depends on is_read_only. */
static int file_drive(struct cfg_ctx *c, json_t *v, const char *p, struct drive_config *d)
{
	int engine = 0;
	int r = cfg_bool(c, v, p, "is_read_only", false, &d->read_only);

	if (!r)
		r = cfg_enum(c, v, p, "io_engine", config_io_engine_names, &engine);
	if (!r)
		r = cfg_rate_limiter(c, v, p, "rate_limiter", &d->limiter);
	if (!r)
		r = cfg_open(c, v, p, "path_on_host", true, d->read_only ? O_RDONLY : O_RDWR,
		             FILE_REG | FILE_BLK, 0, &d->path, &d->fd);
	d->engine = (enum io_engine)engine;
	return r;
}

static int drive_one(struct cfg_ctx *c, json_t *v, const char *p, void *out)
{
	struct drive_config *d = out;
	int cache = 0, r;

	d->fd = -1;
	r = cfg_object(c, v, p,
	               CFG_KEYS("drive_id", "path_on_host", "is_root_device", "is_read_only",
	                        "partuuid", "cache_type", "io_engine", "rate_limiter", "socket"));
	if (!r)
		r = cfg_string(c, v, p, "drive_id", true, &d->id);
	if (!r)
		r = cfg_bool(c, v, p, "is_root_device", true, &d->root);
	if (!r)
		r = partuuid(c, v, p, d);
	if (!r)
		r = cfg_enum(c, v, p, "cache_type", config_cache_names, &cache);
	d->cache = (enum cache_type)cache;
	if (!r && cfg_member(v, "socket"))
		return vhost_user(c, v, p);
	return r ? r : file_drive(c, v, p, d);
}

void cfg_drive_release(struct drive_config *d)
{
	if (d->fd >= 0)
		close(d->fd);
	free(d->id);
	free(d->path);
	free(d->partuuid);
	memset(d, 0, sizeof(*d));
	d->fd = -1;
}

static ssize_t find_drive(const struct drive_config *list, size_t n, const char *id)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(list[i].id, id))
			return (ssize_t)i;
	return -1;
}

/*
 * One entry into @out as Firecracker's BlockBuilder::insert() takes it: a drive_id seen
 * before replaces that drive in its place, a root drive goes first (a replaced one swaps
 * with the first), and a second root device is an error. Moves @d into @out.
 */
static int insert_drive(struct cfg_ctx *c, const char *p, struct drive_config *out, size_t *n,
                        struct drive_config *d)
{
	char sub[CFG_PATH_MAX];
	ssize_t pos = find_drive(out, *n, d->id);
	struct drive_config first;

	if (d->root && *n && out[0].root && pos != 0)
		return cfg_fail(c, cfg_join(sub, p, "is_root_device"),
		                "only one drive can be the root device");
	if (pos < 0) {
		pos = d->root ? 0 : (ssize_t)*n;
		memmove(&out[pos + 1], &out[pos], (*n - (size_t)pos) * sizeof(*out));
		(*n)++;
	} else {
		cfg_drive_release(&out[pos]);
	}
	out[pos] = *d;
	if (pos != 0 && d->root) {
		first = out[0];
		out[0] = out[pos];
		out[pos] = first;
	}
	memset(d, 0, sizeof(*d));
	d->fd = -1;
	return 0;
}

/* The list in Firecracker's order; on failure what was not moved stays, to be freed. */
static int insert_drives(struct cfg_ctx *c, const char *path, struct vm_config *cfg)
{
	struct drive_config *out = calloc(cfg->ndrives + 1, sizeof(*out));
	char idx[CFG_PATH_MAX];
	size_t n = 0, i;
	int r = 0;

	if (!out)
		return -ENOMEM;
	for (i = 0; i < cfg->ndrives && !r; i++)
		r = insert_drive(c, cfg_index(idx, path, i), out, &n, &cfg->drives[i]);
	for (i = 0; i < cfg->ndrives; i++)
		if (cfg->drives[i].id)
			out[n++] = cfg->drives[i];
	free(cfg->drives);
	cfg->drives = out;
	cfg->ndrives = n;
	return r;
}

int cfg_drives(struct cfg_ctx *c, json_t *v, const char *path, struct vm_config *cfg)
{
	int r = cfg_list(c, v, path, CONFIG_MAX_DEVICES, sizeof(*cfg->drives),
	                 (void **)&cfg->drives, &cfg->ndrives, drive_one);

	return r ? r : insert_drives(c, path, cfg);
}
