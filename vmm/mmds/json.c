/*
 * JSON written as Firecracker's MMDS writes it (serde_json's compact form over a sorted
 * map), not as jansson does: the limit is measured on this text and the guest reads it, so
 * both must be what a Firecracker guest sees. Where they differ: jansson prints reals with
 * 17 significant digits (12.12 as 12.119999999999999) and escapes control characters in
 * upper-case hex; serde prints the shortest real that reads back the same, with ".0" on
 * whole ones, and lower-case hex.
 */
#include "vmm/mmds/internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct buf {
	char *p;
	size_t len, cap;
	bool failed;
};

static void put(struct buf *b, const char *s, size_t n)
{
	if (b->failed)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		char *p;
		while (cap < b->len + n + 1)
			cap *= 2;
		p = realloc(b->p, cap);
		if (!p) {
			b->failed = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = 0;
}

static void puts_(struct buf *b, const char *s)
{
	put(b, s, strlen(s));
}

static void put_string(struct buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t run = 0;

	put(b, "\"", 1);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		char esc[7] = { '\\', 0 };

		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		put(b, s + run, i - run);
		run = i + 1;
		switch (c) {
		case '"':
		case '\\':
			esc[1] = (char)c;
			break;
		case '\b':
			esc[1] = 'b';
			break;
		case '\f':
			esc[1] = 'f';
			break;
		case '\n':
			esc[1] = 'n';
			break;
		case '\r':
			esc[1] = 'r';
			break;
		case '\t':
			esc[1] = 't';
			break;
		default:
			memcpy(esc + 1, "u00", 3);
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			break;
		}
		puts_(b, esc);
	}
	put(b, s + run, n - run);
	put(b, "\"", 1);
}

/*
 * The shortest decimal digits that read back as @v (printf rounds correctly, so the
 * first precision that round-trips gives them), then laid out as Rust's ryu does: plain
 * decimals for exponents from -5 to 16, else d.ddde<exp>.
 */
static void put_real(struct buf *b, double v)
{
	char e[40], digits[24], out[64], *o = out;
	int nd = 0, kk, k;
	const char *s;

	if (!isfinite(v)) { /* JSON has none; serde writes null */
		puts_(b, "null");
		return;
	}
	for (int p = 0; p <= 17; p++) {
		snprintf(e, sizeof(e), "%.*e", p, v);
		if (strtod(e, NULL) == v)
			break;
	}
	s = e;
	if (*s == '-')
		*o++ = *s++;
	for (; *s && *s != 'e'; s++)
		if (*s >= '0' && *s <= '9')
			digits[nd++] = *s;
	while (nd > 1 && digits[nd - 1] == '0')
		nd--;
	kk = atoi(s + 1) + 1; /* 10^(kk-1) <= |v| < 10^kk */
	k = kk - nd;          /* the exponent of the last digit */
	if (digits[0] == '0') /* zero: "0.0" */
		kk = 1, k = 0;
	if (k >= 0 && kk <= 16) {
		memcpy(o, digits, (size_t)nd), o += nd;
		memset(o, '0', (size_t)k), o += k;
		memcpy(o, ".0", 2), o += 2;
	} else if (kk > 0 && kk <= 16) {
		memcpy(o, digits, (size_t)kk), o += kk;
		*o++ = '.';
		memcpy(o, digits + kk, (size_t)(nd - kk)), o += nd - kk;
	} else if (kk > -5 && kk <= 0) {
		memcpy(o, "0.", 2), o += 2;
		memset(o, '0', (size_t)-kk), o += -kk;
		memcpy(o, digits, (size_t)nd), o += nd;
	} else {
		*o++ = digits[0];
		if (nd > 1) {
			*o++ = '.';
			memcpy(o, digits + 1, (size_t)(nd - 1)), o += nd - 1;
		}
		o += sprintf(o, "e%d", kk - 1);
	}
	put(b, out, (size_t)(o - out));
}

static int key_cmp(const void *a, const void *b)
{
	const struct mmds_key *x = a, *y = b;
	int c = memcmp(x->s, y->s, x->len < y->len ? x->len : y->len);

	return c ? c : (x->len > y->len) - (x->len < y->len);
}

struct mmds_key *mmds_sorted_keys(const json_t *o, size_t *n, bool *failed)
{
	struct mmds_key *keys;
	const char *k;
	size_t klen, i = 0;
	json_t *v;

	*n = json_object_size(o);
	if (!*n)
		return NULL;
	keys = calloc(*n, sizeof(*keys));
	if (!keys) {
		*failed = true;
		return NULL;
	}
	json_object_keylen_foreach((json_t *)o, k, klen, v)
	{
		keys[i++] = (struct mmds_key){ k, klen, v };
	}
	qsort(keys, *n, sizeof(*keys), key_cmp);
	return keys;
}

/* Depth is bounded by what jansson parses (2048 levels) and merge patches keep to that. */
static void put_value(struct buf *b, const json_t *v)
{
	char num[32];

	switch (json_typeof(v)) {
	case JSON_OBJECT: {
		size_t n;
		struct mmds_key *keys = mmds_sorted_keys(v, &n, &b->failed);
		put(b, "{", 1);
		for (size_t i = 0; keys && i < n; i++) {
			if (i)
				put(b, ",", 1);
			put_string(b, keys[i].s, keys[i].len);
			put(b, ":", 1);
			put_value(b, keys[i].v);
		}
		put(b, "}", 1);
		free(keys);
		break;
	}
	case JSON_ARRAY:
		put(b, "[", 1);
		for (size_t i = 0; i < json_array_size(v); i++) {
			if (i)
				put(b, ",", 1);
			put_value(b, json_array_get(v, i));
		}
		put(b, "]", 1);
		break;
	case JSON_STRING:
		put_string(b, json_string_value(v), json_string_length(v));
		break;
	case JSON_INTEGER:
		snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		puts_(b, num);
		break;
	case JSON_REAL:
		put_real(b, json_real_value(v));
		break;
	case JSON_TRUE:
		puts_(b, "true");
		break;
	case JSON_FALSE:
		puts_(b, "false");
		break;
	default:
		puts_(b, "null");
		break;
	}
}

char *mmds_json_dump(const json_t *v, size_t *len)
{
	struct buf b = { 0 };

	put_value(&b, v);
	put(&b, "", 0); /* "" for a value that wrote nothing cannot happen; keeps b.p set */
	if (b.failed || !b.p) {
		free(b.p);
		return NULL;
	}
	if (len)
		*len = b.len;
	return b.p;
}
