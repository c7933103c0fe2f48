/*
 * Typed, path-aware accessors for the JSON config. Each failure writes one message
 * "<source>: <json.path>: <what>" and returns -EINVAL, so callers just propagate. Whatever
 * the config supplies (keys, so paths; strings; file names) goes into a message through
 * MSG_ESC() (vmm/base/log.h): cfg_fail() does it for the source and the path, callers for
 * their arguments.
 */
#ifndef FLINT_CFGPARSE_H
#define FLINT_CFGPARSE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CFG_PATH_MAX 256

struct config_ignored;

struct cfg_ctx {
	const char *name; /* where the JSON came from, for messages: a file name */
	char *err;
	size_t errlen;
	struct config_ignored *ignored; /* where cfg_object_open() notes keys; NULL: nowhere */
};

/* An empty @path is the whole value parsed (an API body): the message names @c->name only. */
int cfg_fail(struct cfg_ctx *c, const char *path, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
/* "parent.key" (or "key" at the top, parent "") into @buf. */
const char *cfg_join(char buf[CFG_PATH_MAX], const char *parent, const char *key);
/* "parent[i]" into @buf. */
const char *cfg_index(char buf[CFG_PATH_MAX], const char *parent, size_t i);

/* The member @key of @obj, or NULL when absent or JSON null (optional means both). */
json_t *cfg_member(json_t *obj, const char *key);
/* @obj must be an object whose keys are all in @allowed (NULL-terminated). */
int cfg_object(struct cfg_ctx *c, json_t *obj, const char *path, const char *const *allowed);
/*
 * @obj must be an object; keys not in @allowed are ignored and noted in @c->ignored. Only
 * where Firecracker's struct does not deny unknown fields (the top level, metrics, a token
 * bucket): everywhere else an unknown key is an error, as there.
 */
int cfg_object_open(struct cfg_ctx *c, json_t *obj, const char *path, const char *const *allowed);
/*
 * The optional object @key of @obj, checked by cfg_object(), into *out and its path into
 * @sub: 1 when there, 0 when absent or null, <0 on error.
 */
int cfg_sub(struct cfg_ctx *c, json_t *obj, const char *path, const char *key,
            const char *const *allowed, json_t **out, char sub[CFG_PATH_MAX]);
int cfg_string(struct cfg_ctx *c, json_t *obj, const char *path, const char *key, bool required,
               char **out);
/* As cfg_string(), but "" is a value too (boot_args: an empty command line). */
int cfg_text(struct cfg_ctx *c, json_t *obj, const char *path, const char *key, bool required,
             char **out);
int cfg_bool(struct cfg_ctx *c, json_t *obj, const char *path, const char *key, bool required,
             bool *out);
int cfg_uint(struct cfg_ctx *c, json_t *obj, const char *path, const char *key, bool required,
             uint64_t min, uint64_t max, uint64_t *out);
/* A string that must be one of @names (NULL-terminated); *out is its index. */
int cfg_enum(struct cfg_ctx *c, json_t *obj, const char *path, const char *key,
             const char *const *names, int *out);
/*
 * The file named by the string @key of @obj: the name into *name (left alone when optional
 * and absent), then opened with @flags (O_RDONLY or O_RDWR) into *fd. It must be one of
 * @kinds (FILE_* in vmm/base/file.h) and, if a regular file, at most @max_bytes (0: any).
 * *fd is what later code reads, never the name again: nothing can be swapped in between.
 */
int cfg_open(struct cfg_ctx *c, json_t *obj, const char *path, const char *key, bool required,
             int flags, unsigned kinds, uint64_t max_bytes, char **name, int *fd);
/*
 * The array @list (NULL: absent; at JSON path @path, at most @max items) into a fresh
 * array of @size-byte items, each read by @one; *n counts the items filled so far, also on
 * failure (to free them).
 */
int cfg_list(struct cfg_ctx *c, json_t *list, const char *path, size_t max, size_t size,
             void **items, size_t *n, int (*one)(struct cfg_ctx *, json_t *, const char *, void *));
/*
 * The @n items of the array at @path (@size bytes each) must differ in the string at
 * offset @off, JSON key @key (NULL: the item as a whole): else "<path>[i].<key>: duplicate
 * <what> "<value>" (also <path>[j])".
 */
int cfg_unique(struct cfg_ctx *c, const char *path, const void *items, size_t n, size_t size,
               size_t off, const char *key, const char *what);
#define CFG_KEYS(...) ((const char *const[]){ __VA_ARGS__, NULL })

#endif
