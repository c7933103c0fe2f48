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

/*
 * metrics.properties: Firecracker's map of string to string, put on every metrics line; kept
 * as JSON text with its keys sorted (Firecracker's BTreeMap writes them so).
 */
static int properties(struct cfg_ctx *c, json_t *v, const char *path, struct vm_config *cfg)
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
	if (!props)
		return 0;
	free(cfg->metrics_properties);
	cfg->metrics_properties = json_dumps(props, JSON_COMPACT | JSON_SORT_KEYS);
	return cfg->metrics_properties ? 0 : -ENOMEM;
}

/* Firecracker's MetricsConfig does not deny unknown fields: they are ignored (and said). */
int cfg_metrics(struct cfg_ctx *c, json_t *v, const char *path, struct vm_config *cfg)
{
	int r;

	if (!v)
		return 0;
	r = cfg_object_open(c, v, path, CFG_KEYS("metrics_path", "emit_id", "properties"));
	if (!r)
		r = cfg_string(c, v, path, "metrics_path", true, &cfg->metrics_path);
	if (!r)
		r = cfg_bool(c, v, path, "emit_id", false, &cfg->metrics_emit_id);
	if (!r)
		r = properties(c, v, path, cfg);
	return r;
}
