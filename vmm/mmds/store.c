/*
 * The MMDS data store: what the API puts, patches and gets, and what the guest's requests
 * read (paths into the tree, JSON or IMDS text). Facts from Firecracker's
 * src/vmm/src/mmds/data_store.rs and mod.rs (json_patch).
 */
#include "vmm/base/clock.h"
#include "vmm/base/log.h"
#include "vmm/mmds/internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static uint64_t monotonic_ms(void *ctx)
{
	(void)ctx;
	return (uint64_t)clock_now_ns() / 1000000;
}

uint64_t mmds_now_ms(const struct mmds *m)
{
	return m->clock_ms(m->clock_ctx);
}

int mmds_new(struct mmds **out, const struct mmds_params *p)
{
	struct mmds *m = calloc(1, sizeof(*m));
	const uint8_t ip[4] = MMDS_DEFAULT_IPV4;

	*out = NULL;
	if (!m || !(m->data = json_null())) {
		free(m);
		log_error("MMDS: out of memory");
		return -ENOMEM;
	}
	m->limit = p->size_limit;
	m->version = MMDS_V1;
	memcpy(m->ipv4, ip, sizeof(ip));
	m->clock_ms = p->clock_ms ? p->clock_ms : monotonic_ms;
	m->clock_ctx = p->clock_ctx;
	mmds_token_init(&m->tokens, p->instance_id ? p->instance_id : "");
	*out = m;
	return 0;
}

static void free_ifaces(struct mmds *m)
{
	for (size_t i = 0; i < m->nifaces; i++)
		free(m->ifaces[i]);
	free(m->ifaces);
	m->ifaces = NULL;
	m->nifaces = 0;
}

void mmds_free(struct mmds *m)
{
	if (!m)
		return;
	json_decref(m->data);
	free_ifaces(m);
	/* The key made every token: gone with the store. */
	explicit_bzero(&m->tokens, sizeof(m->tokens));
	free(m);
}

/* Written compactly, as Firecracker measures it, within the limit? -E2BIG, -ENOMEM or 0. */
static int fits(const struct mmds *m, const json_t *v)
{
	size_t len;
	char *text = mmds_json_dump(v, &len);

	if (!text)
		return -ENOMEM;
	free(text);
	return len > m->limit ? -E2BIG : 0;
}

int mmds_put(struct mmds *m, json_t *v)
{
	json_t *copy = json_deep_copy(v);
	int r = copy ? fits(m, copy) : -ENOMEM;

	if (r) {
		json_decref(copy);
		return r;
	}
	json_decref(m->data);
	m->data = copy;
	m->initialized = true;
	return 0;
}

/*
 * RFC 7396 as Firecracker's json_patch() does it: an object patch turns the target into
 * an object (if it was none), deletes the keys it sets to null and merges the rest, each
 * in turn; anything else replaces the target. Takes @target's reference, returns the
 * merged value (NULL when out of memory). Recursion is as deep as @patch, which jansson
 * parsed (at most 2048 levels).
 */
static json_t *merge(json_t *target, const json_t *patch)
{
	const char *key;
	size_t klen;
	json_t *v;

	if (!json_is_object(patch)) {
		json_decref(target);
		return json_deep_copy(patch);
	}
	if (!json_is_object(target)) {
		json_decref(target);
		target = json_object();
		if (!target)
			return NULL;
	}
	json_object_keylen_foreach((json_t *)patch, key, klen, v)
	{
		json_t *cur, *merged;

		if (json_is_null(v)) {
			json_object_deln(target, key, klen);
			continue;
		}
		cur = json_incref(json_object_getn(target, key, klen));
		merged = merge(cur, v);
		if (!merged || json_object_setn_new(target, key, klen, merged)) {
			json_decref(target);
			return NULL;
		}
	}
	return target;
}

int mmds_patch(struct mmds *m, json_t *patch)
{
	json_t *next;
	int r;

	if (!m->initialized)
		return -ENODATA;
	/* On a copy: a patch that does not fit leaves the store as it was. */
	next = json_deep_copy(m->data);
	next = next ? merge(next, patch) : NULL;
	r = next ? fits(m, next) : -ENOMEM;
	if (r) {
		json_decref(next);
		return r;
	}
	json_decref(m->data);
	m->data = next;
	return 0;
}

json_t *mmds_get(struct mmds *m)
{
	return json_incref(m->data);
}

int mmds_configure(struct mmds *m, const struct mmds_config *c)
{
	char **ifaces = c->nifaces ? calloc(c->nifaces, sizeof(*ifaces)) : NULL;
	size_t i;

	if (c->nifaces && !ifaces)
		return -ENOMEM;
	for (i = 0; i < c->nifaces; i++) {
		ifaces[i] = strdup(c->ifaces[i]);
		if (!ifaces[i]) {
			while (i--)
				free(ifaces[i]);
			free(ifaces);
			return -ENOMEM;
		}
	}
	free_ifaces(m);
	m->ifaces = ifaces;
	m->nifaces = c->nifaces;
	m->version = c->version;
	m->imds_compat = c->imds_compat;
	memcpy(m->ipv4, c->ipv4, sizeof(m->ipv4));
	return 0;
}

int mmds_net(struct mmds *m, const char *iface_id, struct mmds_net *out)
{
	memset(out, 0, sizeof(*out));
	if (!m || !iface_id)
		return -EINVAL;
	for (size_t i = 0; i < m->nifaces; i++) {
		if (strcmp(m->ifaces[i], iface_id))
			continue;
		memcpy(out->ipv4, m->ipv4, sizeof(out->ipv4));
		out->responder = (struct net_mmds_responder){ mmds_serve, m };
		return 1;
	}
	return 0;
}

const struct mmds_stats *mmds_stats(const struct mmds *m)
{
	return &m->stats;
}

/* serde_json's parse_index(): digits only, no '+', no leading zero but "0" itself. */
static bool array_index(const char *s, size_t len, size_t *out)
{
	size_t n = 0;

	if (!len || (s[0] == '0' && len > 1))
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9' || n > (SIZE_MAX - 9) / 10)
			return false;
		n = n * 10 + (size_t)(s[i] - '0');
	}
	*out = n;
	return true;
}

/* One reference token, unescaped as Rust's replace("~1", "/") then replace("~0", "~"). */
static size_t unescape(const char *s, size_t len, char *out)
{
	size_t n = 0, i;
	char *tmp = out;

	for (i = 0; i < len; i++) {
		if (s[i] == '~' && i + 1 < len && s[i + 1] == '1') {
			tmp[n++] = '/';
			i++;
		} else {
			tmp[n++] = s[i];
		}
	}
	len = n;
	n = 0;
	for (i = 0; i < len; i++) {
		if (tmp[i] == '~' && i + 1 < len && tmp[i + 1] == '0') {
			out[n++] = '~';
			i++;
		} else {
			out[n++] = tmp[i];
		}
	}
	return n;
}

json_t *mmds_lookup(const struct mmds *m, const char *path, size_t len)
{
	json_t *v = m->data;
	char *tok;

	/* Firecracker: "with a trailing '/', pointer does not know how to get the object". */
	if (len && path[len - 1] == '/')
		len--;
	if (!len)
		return v;
	if (path[0] != '/')
		return NULL;
	tok = malloc(len);
	if (!tok)
		return NULL;
	for (size_t at = 1; v;) {
		const char *end = memchr(path + at, '/', len - at);
		size_t raw = end ? (size_t)(end - (path + at)) : len - at, n, idx;

		n = unescape(path + at, raw, tok);
		if (json_is_object(v))
			v = json_object_getn(v, tok, n);
		else if (json_is_array(v) && array_index(tok, n, &idx))
			v = json_array_get(v, idx);
		else
			v = NULL;
		if (!end)
			break;
		at += raw + 1;
	}
	free(tok);
	return v;
}

int mmds_render(const json_t *v, bool imds, char **out, size_t *out_len)
{
	if (!imds) {
		*out = mmds_json_dump(v, out_len);
		return *out ? 0 : -ENOMEM;
	}
	if (json_is_string(v)) {
		*out_len = json_string_length(v);
		*out = malloc(*out_len + 1);
		if (!*out)
			return -ENOMEM;
		memcpy(*out, json_string_value(v), *out_len + 1);
		return 0;
	}
	if (!json_is_object(v))
		return -ENOTSUP;
	/* The keys, sorted as the JSON is, one a line; "/" after those that hold objects. */
	size_t n, len = 0;
	bool failed = false;
	struct mmds_key *keys = mmds_sorted_keys(v, &n, &failed);
	char *p;

	if (failed)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		len += keys[i].len + 2;
	p = *out = malloc(len + 1);
	if (!p) {
		free(keys);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		if (i)
			*p++ = '\n';
		memcpy(p, keys[i].s, keys[i].len);
		p += keys[i].len;
		if (json_is_object(keys[i].v))
			*p++ = '/';
	}
	*p = 0;
	*out_len = (size_t)(p - *out);
	free(keys);
	return 0;
}
