/* logger (PUT /logger) and metrics (PUT /metrics): where flint's log and metrics go. */
#include "vmm/config/sections.h"
#include "vmm/base/log.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/*
 * Firecracker's LevelFilter, read as it reads it: in any case, Warn also as "Warning"
 * (logger/logging.rs); flint's levels are its levels, Trace being flint's Debug.
 */
static int level(struct cfg_ctx *c, json_t *v, const char *path, struct logger_config *l)
{
	char sub[CFG_PATH_MAX];
	char *name = NULL;
	int r = cfg_text(c, v, path, "level", false, &name);

	if (!r && name && log_level_parse(name, &l->level) < 0)
		r = cfg_fail(
		        c, cfg_join(sub, path, "level"),
		        "\"%s\" is not one of Error, Warning, Info, Debug, Trace, Off (any case)",
		        MSG_ESC(name));
	l->has_level = !r && name;
	free(name);
	return r;
}

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
	int r;

	if (!v)
		return 0;
	r = cfg_object(c, v, path,
	               CFG_KEYS("log_path", "level", "show_level", "show_log_origin", "module"));
	if (!r)
		r = cfg_string(c, v, path, "log_path", false, &cfg->logger.path);
	if (!r)
		r = level(c, v, path, &cfg->logger);
	/* Either way: flint's log lines always carry their level (vmm/base/log.c). */
	if (!r)
		r = cfg_bool(c, v, path, "show_level", false, &show_level);
	if (!r)
		r = false_only(c, v, path, "show_log_origin");
	if (!r)
		r = no_module(c, v, path);
	return r;
}

/* metrics.properties: Firecracker's map of string to string, put on every metrics line. */
static int properties(struct cfg_ctx *c, json_t *v, const char *path)
{
	char p[CFG_PATH_MAX], sub[CFG_PATH_MAX];
	json_t *props = cfg_member(v, "properties"), *val;
	const char *key;

	cfg_join(p, path, "properties");
	if (props && !json_is_object(props))
		return cfg_fail(c, p, "must be an object of strings");
	json_object_foreach(props, key, val)
	{
		if (!json_is_string(val))
			return cfg_fail(c, cfg_join(sub, p, key), "must be a string");
	}
	return 0;
}

/*
 * Firecracker's MetricsConfig does not deny unknown fields: they are ignored (and said).
 * emit_id and properties shape lines flint does not write yet (vmm_run says so).
 */
int cfg_metrics(struct cfg_ctx *c, json_t *v, const char *path, struct vm_config *cfg)
{
	bool emit_id = false;
	int r;

	if (!v)
		return 0;
	r = cfg_object_open(c, v, path, CFG_KEYS("metrics_path", "emit_id", "properties"));
	if (!r)
		r = cfg_string(c, v, path, "metrics_path", true, &cfg->metrics_path);
	if (!r)
		r = cfg_bool(c, v, path, "emit_id", false, &emit_id);
	if (!r)
		r = properties(c, v, path);
	return r;
}
