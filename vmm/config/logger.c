/* logger (PUT /logger) and metrics (PUT /metrics): where flint's log and metrics go. */
#include "vmm/config/sections.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Firecracker's level names; vmm/main.c maps them onto flint's levels. */
static const char *const levels[] = { "Error", "Warning", "Info", "Debug", "Trace", "Off", NULL };

/*
 * A boolean flint cannot honour when true: false and absent (Firecracker's default) pass,
 * true is refused rather than ignored.
 */
static int false_only(struct cfg_ctx *c, json_t *v, const char *path, const char *key)
{
	char sub[CFG_PATH_MAX];
	bool on = false;
	int r = cfg_bool(c, v, path, key, false, &on);

	if (!r && on)
		r = cfg_fail(c, cfg_join(sub, path, key), "not supported yet");
	return r;
}

/*
 * module filters by Firecracker's Rust module paths, which flint does not have: checked
 * as a string, then refused rather than ignored (flint would log more than asked).
 */
static int no_module(struct cfg_ctx *c, json_t *v, const char *path)
{
	char sub[CFG_PATH_MAX];
	char *module = NULL;
	int r = cfg_string(c, v, path, "module", false, &module);

	if (!r && module)
		r = cfg_fail(c, cfg_join(sub, path, "module"), "not supported yet");
	free(module);
	return r;
}

int cfg_logger(struct cfg_ctx *c, json_t *v, const char *path, struct vm_config *cfg)
{
	bool show_level = false;
	int level = 0, r;

	if (!v)
		return 0;
	r = cfg_object(c, v, path,
	               CFG_KEYS("log_path", "level", "show_level", "show_log_origin", "module"));
	if (!r)
		r = cfg_string(c, v, path, "log_path", false, &cfg->logger.path);
	if (!r)
		r = cfg_enum(c, v, path, "level", levels, &level);
	if (!r && cfg_member(v, "level") && !(cfg->logger.level = strdup(levels[level])))
		r = -ENOMEM;
	/* Either way: flint's log lines always carry their level (vmm/base/log.c). */
	if (!r)
		r = cfg_bool(c, v, path, "show_level", false, &show_level);
	if (!r)
		r = false_only(c, v, path, "show_log_origin");
	if (!r)
		r = no_module(c, v, path);
	return r;
}

int cfg_metrics(struct cfg_ctx *c, json_t *v, const char *path, struct vm_config *cfg)
{
	int r;

	if (!v)
		return 0;
	r = cfg_object(c, v, path, CFG_KEYS("metrics_path"));
	if (!r)
		r = cfg_string(c, v, path, "metrics_path", true, &cfg->metrics_path);
	return r;
}
