#include "vmm/config/parse.h"
#include "vmm/base/file.h"
#include "vmm/base/log.h"
#include "vmm/vm_config.h"

#include <errno.h>
#include <stdlib.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int cfg_fail(struct cfg_ctx *c, const char *path, const char *fmt, ...)
{
	char prefix[CFG_PATH_MAX + 512];
	va_list ap;

	if (*path)
		snprintf(prefix, sizeof(prefix), "%s: %s", c->name, path);
	else
		snprintf(prefix, sizeof(prefix), "%s", c->name);
	va_start(ap, fmt);
	msg_vformat(c->err, c->errlen, prefix, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

const char *cfg_join(char buf[CFG_PATH_MAX], const char *parent, const char *key)
{
	int n;

	if (parent && *parent)
		n = snprintf(buf, CFG_PATH_MAX, "%s.%s", parent, key);
	else
		n = snprintf(buf, CFG_PATH_MAX, "%s", key);
	/* Only a config's own absurdly long keys get here: cut, and the message says so. */
	if (n >= CFG_PATH_MAX)
		memcpy(buf + CFG_PATH_MAX - 4, "...", 4);
	return buf;
}

const char *cfg_index(char buf[CFG_PATH_MAX], const char *parent, size_t i)
{
	snprintf(buf, CFG_PATH_MAX, "%s[%zu]", parent, i);
	return buf;
}

json_t *cfg_member(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);

	return json_is_null(v) ? NULL : v;
}

static const char *json_kind(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "an object";
	case JSON_ARRAY:
		return "an array";
	case JSON_STRING:
		return "a string";
	case JSON_INTEGER:
		return "an integer";
	case JSON_REAL:
		return "a number with a fraction";
	case JSON_TRUE:
	case JSON_FALSE:
		return "a boolean";
	default:
		return "null";
	}
}

int cfg_object(struct cfg_ctx *c, json_t *obj, const char *path, const char *const *allowed)
{
	const char *key;
	json_t *v;
	char sub[CFG_PATH_MAX];

	if (!json_is_object(obj))
		return cfg_fail(c, path, "must be an object, not %s", json_kind(obj));
	json_object_foreach(obj, key, v)
	{
		const char *const *a = allowed;
		while (*a && strcmp(*a, key) != 0)
			a++;
		if (!*a)
			return cfg_fail(c, cfg_join(sub, path, key), "unknown key");
	}
	return 0;
}

/* Keeps the first CONFIG_MAX_IGNORED paths, counts the rest: a config cannot cost more. */
static int note_ignored(struct config_ignored *ig, const char *path)
{
	if (!ig)
		return 0;
	if (ig->n == CONFIG_MAX_IGNORED) {
		ig->more++;
		return 0;
	}
	ig->paths[ig->n] = strdup(path);
	if (!ig->paths[ig->n])
		return -ENOMEM;
	ig->n++;
	return 0;
}

int cfg_object_open(struct cfg_ctx *c, json_t *obj, const char *path, const char *const *allowed)
{
	const char *key;
	json_t *v;
	char sub[CFG_PATH_MAX];
	int r = 0;

	if (!json_is_object(obj))
		return cfg_fail(c, path, "must be an object, not %s", json_kind(obj));
	json_object_foreach(obj, key, v)
	{
		const char *const *a = allowed;
		while (*a && strcmp(*a, key) != 0)
			a++;
		if (!*a && !r)
			r = note_ignored(c->ignored, cfg_join(sub, path, key));
	}
	return r;
}

int cfg_sub(struct cfg_ctx *c, json_t *obj, const char *path, const char *key,
            const char *const *allowed, json_t **out, char sub[CFG_PATH_MAX])
{
	int r;

	*out = cfg_member(obj, key);
	if (!*out)
		return 0;
	r = cfg_object(c, *out, cfg_join(sub, path, key), allowed);
	return r ? r : 1;
}

/* Fetches @key; 1 when present and not null, 0 when optional and missing, <0 on error. */
static int member(struct cfg_ctx *c, json_t *obj, const char *path, const char *key, bool required,
                  json_t **out, char sub[CFG_PATH_MAX])
{
	cfg_join(sub, path, key);
	*out = cfg_member(obj, key);
	if (*out)
		return 1;
	return required ? cfg_fail(c, sub, "required key is missing") : 0;
}

/* A string member, copied; empty allowed or not (cfg_string and cfg_text). */
static int string_member(struct cfg_ctx *c, json_t *obj, const char *path, const char *key,
                         bool required, bool empty_ok, char **out)
{
	char sub[CFG_PATH_MAX];
	json_t *v;
	int r = member(c, obj, path, key, required, &v, sub);

	if (r <= 0)
		return r;
	if (!json_is_string(v))
		return cfg_fail(c, sub, "must be a string, not %s", json_kind(v));
	if (!empty_ok && json_string_length(v) == 0)
		return cfg_fail(c, sub, "must not be empty");
	*out = strdup(json_string_value(v));
	return *out ? 0 : -ENOMEM;
}

int cfg_string(struct cfg_ctx *c, json_t *obj, const char *path, const char *key, bool required,
               char **out)
{
	return string_member(c, obj, path, key, required, false, out);
}

int cfg_text(struct cfg_ctx *c, json_t *obj, const char *path, const char *key, bool required,
             char **out)
{
	return string_member(c, obj, path, key, required, true, out);
}

int cfg_bool(struct cfg_ctx *c, json_t *obj, const char *path, const char *key, bool required,
             bool *out)
{
	char sub[CFG_PATH_MAX];
	json_t *v;
	int r = member(c, obj, path, key, required, &v, sub);

	if (r <= 0)
		return r;
	if (!json_is_boolean(v))
		return cfg_fail(c, sub, "must be true or false, not %s", json_kind(v));
	*out = json_is_true(v);
	return 0;
}

int cfg_uint(struct cfg_ctx *c, json_t *obj, const char *path, const char *key, bool required,
             uint64_t min, uint64_t max, uint64_t *out)
{
	char sub[CFG_PATH_MAX];
	json_t *v;
	int r = member(c, obj, path, key, required, &v, sub);

	if (r <= 0)
		return r;
	if (!json_is_integer(v))
		return cfg_fail(c, sub, "must be an integer, not %s", json_kind(v));
	json_int_t n = json_integer_value(v);
	if (n < 0 || (uint64_t)n < min || (uint64_t)n > max)
		return cfg_fail(c, sub, "%lld is out of range [%llu, %llu]", (long long)n,
		                (unsigned long long)min, (unsigned long long)max);
	*out = (uint64_t)n;
	return 0;
}

int cfg_enum(struct cfg_ctx *c, json_t *obj, const char *path, const char *key,
             const char *const *names, int *out)
{
	char sub[CFG_PATH_MAX];
	char choices[256] = "";
	json_t *v;
	int r = member(c, obj, path, key, false, &v, sub);

	if (r <= 0)
		return r;
	if (!json_is_string(v))
		return cfg_fail(c, sub, "must be a string, not %s", json_kind(v));
	for (int i = 0; names[i]; i++) {
		if (strcmp(names[i], json_string_value(v)) == 0) {
			*out = i;
			return 0;
		}
		snprintf(choices + strlen(choices), sizeof(choices) - strlen(choices), "%s\"%s\"",
		         i ? ", " : "", names[i]);
	}
	return cfg_fail(c, sub, "\"%s\" is not one of %s", MSG_ESC(json_string_value(v)), choices);
}

int cfg_open(struct cfg_ctx *c, json_t *obj, const char *path, const char *key, bool required,
             int flags, unsigned kinds, uint64_t max_bytes, char **name, int *fd)
{
	char sub[CFG_PATH_MAX], why[160];
	int r = cfg_string(c, obj, path, key, required, name);

	if (r || !*name)
		return r;
	*fd = file_open(*name, flags, kinds, max_bytes, why, sizeof(why));
	if (*fd < 0)
		return cfg_fail(c, cfg_join(sub, path, key), "%s: %s", MSG_ESC(*name), why);
	return 0;
}

int cfg_list(struct cfg_ctx *c, json_t *list, const char *path, size_t max, size_t size,
             void **items, size_t *n, int (*one)(struct cfg_ctx *, json_t *, const char *, void *))
{
	char sub[CFG_PATH_MAX];
	json_t *v;
	size_t i;

	if (!list)
		return 0;
	if (!json_is_array(list))
		return cfg_fail(c, path, "must be an array");
	if (json_array_size(list) > max)
		return cfg_fail(c, path, "%zu entries, more than the limit of %zu",
		                json_array_size(list), max);
	*items = calloc(json_array_size(list) + 1, size);
	if (!*items)
		return -ENOMEM;
	json_array_foreach(list, i, v)
	{
		int r = one(c, v, cfg_index(sub, path, i), (char *)*items + i * size);
		(*n)++;
		if (r)
			return r;
	}
	return 0;
}

/* The string at offset @off of item @i. */
static const char *item_string(const void *items, size_t i, size_t size, size_t off)
{
	return *(char *const *)((const char *)items + i * size + off);
}

int cfg_unique(struct cfg_ctx *c, const char *path, const void *items, size_t n, size_t size,
               size_t off, const char *key, const char *what)
{
	char idx[CFG_PATH_MAX], sub[CFG_PATH_MAX];
	const char *s;

	for (size_t i = 1; i < n; i++) {
		s = item_string(items, i, size, off);
		for (size_t j = 0; j < i; j++) {
			if (strcmp(s, item_string(items, j, size, off)) != 0)
				continue;
			cfg_index(idx, path, i);
			return cfg_fail(c, key ? cfg_join(sub, idx, key) : idx,
			                "duplicate %s \"%s\" (also %s[%zu])", what, MSG_ESC(s),
			                path, j);
		}
	}
	return 0;
}
