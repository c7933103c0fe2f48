/* Inside the MMDS: the store's state, shared by store.c, token.c and http.c. */
#ifndef FLINT_MMDS_INTERNAL_H
#define FLINT_MMDS_INTERNAL_H

#include "vmm/mmds/mmds.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MMDS_KEY_LEN 32 /* two SipHash keys */
/* The text of a token: base64 of nonce (12), expiry (8) and tag (16), 48 characters. */
#define MMDS_TOKEN_TEXT 48
/* Longer than this is no token of ours, refused before it is decoded (as Firecracker). */
#define MMDS_TOKEN_MAX 70

struct mmds_tokens {
	uint8_t key[MMDS_KEY_LEN]; /* random, made as the first token is (none is valid before) */
	bool keyed;
	char aad[96]; /* "microvmid=<id>": a token is good for this instance only */
};

struct mmds {
	json_t *data;     /* JSON null until the first PUT */
	bool initialized; /* a PUT happened: PATCH needs one first */
	size_t limit;
	enum mmds_version version;
	bool imds_compat;
	uint8_t ipv4[4];
	char **ifaces; /* where mmds_net() answers */
	size_t nifaces;
	struct mmds_tokens tokens;
	uint64_t (*clock_ms)(void *ctx);
	void *clock_ctx;
	struct mmds_stats stats;
};

uint64_t mmds_now_ms(const struct mmds *m);

/*
 * token.c. mmds_token_init: binds the tokens to @instance_id; the random key is made by the
 * first mmds_token_new() (a process that never issues a token never asks for randomness).
 */
void mmds_token_init(struct mmds_tokens *t, const char *instance_id);
/*
 * A token valid for @ttl seconds (checked by the caller) into @out (MMDS_TOKEN_TEXT + 1
 * bytes); the first makes the key. 0 or -errno (the key or the nonce could not be made).
 */
int mmds_token_new(struct mmds *m, uint32_t ttl, char *out);
/* SipHash-2-4 of @n bytes at @in under @key (the token's tag; exposed for its test). */
uint64_t mmds_siphash(const uint8_t key[16], const uint8_t *in, size_t n);
/* The @len bytes at @s are a token of ours that has not expired. */
bool mmds_token_valid(const struct mmds *m, const char *s, size_t len);

/* json.c: an object's members in serde's BTreeMap order (bytewise); NULL when none. */
struct mmds_key {
	const char *s;
	size_t len;
	json_t *v;
};
struct mmds_key *mmds_sorted_keys(const json_t *o, size_t *n, bool *failed);

/*
 * store.c: the value at JSON pointer @path (@len bytes; Firecracker's rule: one trailing
 * '/' is dropped) or NULL; as serde_json's pointer(): "" the whole store, "~1" is '/'
 * and "~0" '~' in a key, array indices without sign or leading zeros.
 */
json_t *mmds_lookup(const struct mmds *m, const char *path, size_t len);
/*
 * @v as the guest reads it: JSON (compact, mmds_json_dump) or IMDS text (an object's keys
 * one a line, "/" after those holding objects; a string as it is). 0, -ENOTSUP (IMDS text
 * of a number, bool, array or null), -ENOMEM. *@out malloc'd.
 */
int mmds_render(const json_t *v, bool imds, char **out, size_t *out_len);

#endif
