/*
 * The running VM's devices through the API: PATCH /drives/{id} (a new backing file, a new
 * rate limiter) and PATCH /network-interfaces/{id} (new RX/TX rate limiters), as
 * Firecracker serves them after InstanceStart. The body is checked as Firecracker's serde
 * structs check it (unknown fields denied, the same messages); a new file is opened and
 * checked as the config's path_on_host is (cfg_open: the same rules and messages). The
 * changes are then the device's (vmm_drive_update, vmm_net_update), and the config
 * document follows them, so GET /vm/config shows what runs, as Firecracker's does.
 */
#include "vmm/api/http.h"
#include "vmm/base/file.h"
#include "vmm/base/log.h"
#include "vmm/config/sections.h"
#include "vmm/vmm.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* As resources.c answers every change before the start. */
#define SERDE_PREFIX     "An error occurred when deserializing the json body of a request: "

/* Firecracker's answers when the VM has no device by that id (FindDeviceError). */
#define DRIVE_ERROR                                                                                \
	"Drive config error: Unable to patch the block device: %s Please verify the request "      \
	"arguments."
#define NET_ERROR        "Network config error: Unable to update the net device: %s"
#define DEVICE_NOT_FOUND "Failed perform action on device: Device not found"
/* Neither path_on_host nor rate_limiter: Firecracker's vhost-user update, refused for virtio. */
#define NOT_VHOST_USER "Block: Running method expected different backend."

/* Firecracker's rule for the {id} of /drives/{id} and /network-interfaces/{id}. */
bool api_id_valid(struct api_request *r, const char *id)
{
	if (!id || !*id) {
		api_reply_fault(r, "The ID cannot be empty.");
		return false;
	}
	for (const char *p = id; *p; p++)
		if (!(*p == '_' || (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') ||
		      (*p >= 'A' && *p <= 'Z'))) {
			api_reply_fault(r, "API Resource IDs can only contain alphanumeric "
			                   "characters and underscores.");
			return false;
		}
	return true;
}

/* --- Firecracker's serde structs, as far as the PATCH bodies go ------------------------ */

enum serde_kind { SERDE_STRING, SERDE_U64, SERDE_STRUCT };

struct serde_struct;

struct serde_field {
	const char *name;
	enum serde_kind kind;
	bool optional; /* Option<T>: absent or null is None */
	const struct serde_struct *of;
};

struct serde_struct {
	const char *name;
	bool deny_unknown; /* #[serde(deny_unknown_fields)] */
	struct serde_field fields[4];
};

/* src/vmm/src/vmm_config/mod.rs, drive.rs, net.rs */
static const struct serde_struct token_bucket = {
	"TokenBucketConfig",
	false,
	{ { "size", SERDE_U64, false, NULL },
	  { "one_time_burst", SERDE_U64, true, NULL },
	  { "refill_time", SERDE_U64, false, NULL } },
};
static const struct serde_struct rate_limiter = {
	"RateLimiterConfig",
	true,
	{ { "bandwidth", SERDE_STRUCT, true, &token_bucket },
	  { "ops", SERDE_STRUCT, true, &token_bucket } },
};
static const struct serde_struct drive_update = {
	"BlockDeviceUpdateConfig",
	true,
	{ { "drive_id", SERDE_STRING, false, NULL },
	  { "path_on_host", SERDE_STRING, true, NULL },
	  { "rate_limiter", SERDE_STRUCT, true, &rate_limiter } },
};
static const struct serde_struct net_update = {
	"NetworkInterfaceUpdateConfig",
	true,
	{ { "iface_id", SERDE_STRING, false, NULL },
	  { "rx_rate_limiter", SERDE_STRUCT, true, &rate_limiter },
	  { "tx_rate_limiter", SERDE_STRUCT, true, &rate_limiter } },
};

/* serde_json's words for what it found ("integer `-1`", "string \"x\"", "map"). */
static const char *unexpected(json_t *v, char *buf, size_t len)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "map";
	case JSON_ARRAY:
		return "sequence";
	case JSON_STRING:
		snprintf(buf, len, "string \"%s\"", MSG_ESC(json_string_value(v)));
		return buf;
	case JSON_INTEGER:
		snprintf(buf, len, "integer `%" JSON_INTEGER_FORMAT "`", json_integer_value(v));
		return buf;
	case JSON_REAL: {
		char num[64];
		snprintf(num, sizeof(num), "%g", json_real_value(v));
		/* Rust prints a whole float with ".0". */
		snprintf(buf, len, "floating point `%s%s`", num, strpbrk(num, ".eni") ? "" : ".0");
		return buf;
	}
	case JSON_TRUE:
		return "boolean `true`";
	case JSON_FALSE:
		return "boolean `false`";
	default:
		return "null";
	}
}

static bool serde_struct_ok(const struct serde_struct *s, json_t *v, char *err, size_t len);

static bool serde_field_ok(const struct serde_field *f, json_t *v, char *err, size_t len)
{
	char what[MSG_ESC_MAX + 32];

	if (f->optional && json_is_null(v))
		return true;
	switch (f->kind) {
	case SERDE_STRING:
		if (json_is_string(v))
			return true;
		snprintf(err, len, "invalid type: %s, expected a string",
		         unexpected(v, what, sizeof(what)));
		return false;
	case SERDE_U64:
		if (json_is_integer(v) && json_integer_value(v) >= 0)
			return true;
		snprintf(err, len, "invalid %s: %s, expected u64",
		         json_is_integer(v) ? "value" : "type", unexpected(v, what, sizeof(what)));
		return false;
	case SERDE_STRUCT:
		return serde_struct_ok(f->of, v, err, len);
	}
	return false;
}

/* serde's list of the fields it knows: "`a`", "`a` or `b`", "one of `a`, `b`, `c`". */
static void expected_fields(const struct serde_struct *s, char *buf, size_t len)
{
	unsigned n = 0, used = 0;

	while (n < 4 && s->fields[n].name)
		n++;
	if (n > 2)
		used = (unsigned)snprintf(buf, len, "one of ");
	for (unsigned i = 0; i < n && used < len; i++)
		used += (unsigned)snprintf(buf + used, len - used, "%s`%s`",
		                           !i       ? ""
		                           : n == 2 ? " or "
		                                    : ", ",
		                           s->fields[i].name);
}

static const struct serde_field *field_named(const struct serde_struct *s, const char *key)
{
	for (unsigned i = 0; i < 4 && s->fields[i].name; i++)
		if (!strcmp(s->fields[i].name, key))
			return &s->fields[i];
	return NULL;
}

/* Fields in the body's order, errors as they come; the missing ones last, as serde. */
static bool serde_struct_ok(const struct serde_struct *s, json_t *v, char *err, size_t len)
{
	char what[MSG_ESC_MAX + 32], names[128];
	const char *key;
	json_t *member;

	if (!json_is_object(v)) {
		snprintf(err, len, "invalid type: %s, expected struct %s",
		         unexpected(v, what, sizeof(what)), s->name);
		return false;
	}
	json_object_foreach(v, key, member)
	{
		const struct serde_field *f = field_named(s, key);
		if (f && !serde_field_ok(f, member, err, len))
			return false;
		if (!f && s->deny_unknown) {
			expected_fields(s, names, sizeof(names));
			snprintf(err, len, "unknown field `%s`, expected %s", MSG_ESC(key), names);
			return false;
		}
	}
	for (unsigned i = 0; i < 4 && s->fields[i].name; i++)
		if (!s->fields[i].optional && !json_object_get(v, s->fields[i].name)) {
			snprintf(err, len, "missing field `%s`", s->fields[i].name);
			return false;
		}
	return true;
}

/* The path's id, the body as @s, the body's id (@id_key) the path's; false: answered. */
static bool body_ok(struct api_request *r, const struct serde_struct *s, const char *id_key,
                    bool drive)
{
	const char *id = r->ntok == 2 ? r->tok[1] : NULL, *body_id;
	char err[768];

	if (!api_id_valid(r, id))
		return false;
	if (!serde_struct_ok(s, r->body, err, sizeof(err))) {
		api_reply_fault(r, SERDE_PREFIX "%s.", err);
		return false;
	}
	body_id = json_string_value(json_object_get(r->body, id_key));
	if (!strcmp(body_id, id))
		return true;
	if (drive)
		api_reply_fault(r, "The id from the path does not match the id from the body!");
	else
		api_reply_fault(r,
		                "The id from the path [%s] does not match the id from the body "
		                "[%s]!",
		                id, MSG_ESC(body_id));
	return false;
}

/* --- the config document follows the devices -------------------------------------------- */

/* The entry of the list @key in the document whose @id_key is @id; NULL: none. */
static json_t *doc_item(struct api *a, const char *key, const char *id_key, const char *id)
{
	json_t *list = json_object_get(a->doc, key), *item;
	size_t i;

	json_array_foreach(list, i, item)
	{
		const char *s = json_string_value(json_object_get(item, id_key));
		if (s && !strcmp(s, id))
			return item;
	}
	return NULL;
}

/* A bucket that limits nothing (size or refill_time 0) lifts that limit: no key then. */
static bool bucket_limits(json_t *b)
{
	return json_integer_value(json_object_get(b, "size")) &&
	       json_integer_value(json_object_get(b, "refill_time"));
}

/*
 * @patch's buckets into the limiter @key of @item, as ratelimit_update() takes them. Out
 * of memory costs GET /vm/config the update, never the device.
 */
static void doc_limiter(json_t *item, const char *key, json_t *patch)
{
	static const char *const buckets[] = { "bandwidth", "ops" };
	json_t *rl = json_object_get(item, key);

	if (!item || !json_is_object(patch))
		return;
	rl = json_is_object(rl) ? json_deep_copy(rl) : json_object();
	if (!rl)
		return;
	for (unsigned i = 0; i < 2; i++) {
		json_t *b = cfg_member(patch, buckets[i]);
		if (b && bucket_limits(b))
			json_object_set(rl, buckets[i], b);
		else if (b)
			json_object_del(rl, buckets[i]);
	}
	if (json_object_size(rl))
		json_object_set(item, key, rl);
	else
		json_object_del(item, key);
	json_decref(rl);
}

/* --- PATCH /drives/{id} ---------------------------------------------------------------- */

static void drive_fault(struct api_request *r, int e)
{
	if (e == -ENOENT)
		api_reply_fault(r, DRIVE_ERROR, DEVICE_NOT_FOUND);
	else if (e == -ESRCH)
		api_reply_fault(r, "No VM runs.");
	else
		api_reply_fault(r, "%s: path_on_host: the new image cannot be used: %s", r->name,
		                strerror(-e));
}

/*
 * path_on_host as the config opens it: regular file or block device, read-only when the
 * drive is. -1 with nothing asked, -2 after a fault.
 */
static int open_image(struct api_request *r, bool read_only, char **path)
{
	char err[1024];
	struct cfg_ctx c = { r->name, err, sizeof(err), NULL };
	int fd = -1;

	if (cfg_open(&c, r->body, "", "path_on_host", false, read_only ? O_RDONLY : O_RDWR,
	             FILE_REG | FILE_BLK, 0, path, &fd)) {
		api_reply_fault(r, "%s", err);
		return -2;
	}
	return fd;
}

/* The body's rate limiter @key into @l: NULL when it has none. */
static const struct rate_limiter *limiter_of(struct api_request *r, const char *key,
                                             struct rate_limiter *l)
{
	char err[256];
	struct cfg_ctx c = { r->name, err, sizeof(err), NULL };

	*l = (struct rate_limiter){ 0 };
	/* Cannot fail: serde_struct_ok() took the body, and jansson's integers fit. */
	if (!cfg_member(r->body, key) || cfg_rate_limiter(&c, r->body, "", key, l))
		return NULL;
	return l;
}

/* The drive exists: a new file and/or limiter for it, then the document follows. */
static void update_drive(struct api *a, struct api_request *r, bool read_only)
{
	struct rate_limiter l;
	const struct rate_limiter *limiter = limiter_of(r, "rate_limiter", &l);
	char *path = NULL;
	int fd, e;

	if (!limiter && !cfg_member(r->body, "path_on_host")) {
		api_reply_fault(r, DRIVE_ERROR, NOT_VHOST_USER);
		return;
	}
	fd = open_image(r, read_only, &path);
	if (fd == -2) {
		free(path);
		return;
	}
	e = vmm_drive_update(a->vmm, r->tok[1], fd, limiter);
	if (e) {
		if (fd >= 0)
			close(fd);
		drive_fault(r, e);
	} else {
		json_t *item = doc_item(a, "drives", "drive_id", r->tok[1]);
		if (path) {
			log_info("drive %s: now backed by %s", r->tok[1], MSG_ESC(path));
			json_object_set_new(item, "path_on_host", json_string(path));
		}
		doc_limiter(item, "rate_limiter", cfg_member(r->body, "rate_limiter"));
		api_reply_empty(r);
	}
	free(path);
}

void api_patch_drive(struct api *a, struct api_request *r)
{
	bool read_only;
	int e;

	if (!body_ok(r, &drive_update, "drive_id", true))
		return;
	if (a->state == API_NOT_STARTED) {
		api_reply_fault(r, NOT_BEFORE_START);
		return;
	}
	e = vmm_drive_find(a->vmm, r->tok[1], &read_only);
	if (e)
		drive_fault(r, e);
	else
		update_drive(a, r, read_only);
}

/* --- PATCH /network-interfaces/{id} ---------------------------------------------------- */

void api_patch_net(struct api *a, struct api_request *r)
{
	struct rate_limiter rx, tx;
	json_t *item;
	int e;

	if (!body_ok(r, &net_update, "iface_id", false))
		return;
	if (a->state == API_NOT_STARTED) {
		api_reply_fault(r, NOT_BEFORE_START);
		return;
	}
	e = vmm_net_update(a->vmm, r->tok[1], limiter_of(r, "rx_rate_limiter", &rx),
	                   limiter_of(r, "tx_rate_limiter", &tx));
	if (e) {
		api_reply_fault(r, NET_ERROR, e == -ENOENT ? DEVICE_NOT_FOUND : "No VM runs.");
		return;
	}
	item = doc_item(a, "network-interfaces", "iface_id", r->tok[1]);
	doc_limiter(item, "rx_rate_limiter", cfg_member(r->body, "rx_rate_limiter"));
	doc_limiter(item, "tx_rate_limiter", cfg_member(r->body, "tx_rate_limiter"));
	api_reply_empty(r);
}
