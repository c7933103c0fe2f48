/*
 * Typed, path-aware accessors for the JSON config. Each failure writes one message
 * "<file>: <json.path>: <what>" and returns -EINVAL, so callers just propagate. Whatever
 * the config supplies (keys, so paths; strings; file names) goes into a message through
 * MSG_ESC() (vmm/base/log.h): cfg_fail() does it for the file and the path, callers for
 * their arguments.
 */
#ifndef FLINT_CFGPARSE_H
#define FLINT_CFGPARSE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CFG_PATH_MAX 256

struct cfg_ctx {
	const char *name; /* file name for messages */
	char *err;
	size_t errlen;
};

int cfg_fail(struct cfg_ctx *c, const char *path, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
/* "parent.key" (or "key" at the top) into @buf. */
const char *cfg_join(char buf[CFG_PATH_MAX], const char *parent, const char *key);
/* "parent[i]" into @buf. */
const char *cfg_index(char buf[CFG_PATH_MAX], const char *parent, size_t i);

/* The member @key of @obj, or NULL when absent or JSON null (optional means both). */
json_t *cfg_member(json_t *obj, const char *key);
/* @obj must be an object whose keys are all in @allowed (NULL-terminated). */
int cfg_object(struct cfg_ctx *c, json_t *obj, const char *path, const char *const *allowed);
int cfg_string(struct cfg_ctx *c, json_t *obj, const char *path, const char *key, bool required,
               char **out);
int cfg_bool(struct cfg_ctx *c, json_t *obj, const char *path, const char *key, bool required,
             bool *out);
int cfg_uint(struct cfg_ctx *c, json_t *obj, const char *path, const char *key, bool required,
             uint64_t min, uint64_t max, uint64_t *out);
/* A string that must be one of @names (NULL-terminated); *out is its index. */
int cfg_enum(struct cfg_ctx *c, json_t *obj, const char *path, const char *key,
             const char *const *names, int *out);
/*
 * Opens @file, named at JSON path @path, with @flags (O_RDONLY or O_RDWR); it must be one
 * of @kinds (FILE_* in vmm/base/file.h) and, if a regular file, at most @max_bytes (0: any).
 * *fd is what later code reads, never the name again: nothing can be swapped in between.
 */
int cfg_file(struct cfg_ctx *c, const char *path, const char *file, int flags, unsigned kinds,
             uint64_t max_bytes, int *fd);
/*
 * The array @key of @obj (at JSON path @path, at most @max items) into a fresh array of
 * @size-byte items, each read by @one; *n counts the items filled so far, also on failure
 * (to free them).
 */
int cfg_list(struct cfg_ctx *c, json_t *obj, const char *key, const char *path, size_t max,
             size_t size, void **items, size_t *n,
             int (*one)(struct cfg_ctx *, json_t *, const char *, void *));
#define CFG_KEYS(...) ((const char *const[]){ __VA_ARGS__, NULL })
/* flint's own top-level "flint" object. */
struct vm_config;
int cfg_parse_flint(struct cfg_ctx *c, json_t *root, struct vm_config *cfg);

/* A section flint does not implement: null, absent, {} or [] pass; anything else fails. */
int cfg_unsupported(struct cfg_ctx *c, json_t *root, const char *key);

#endif
