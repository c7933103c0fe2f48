/*
 * MMDS V2 session tokens. As with Firecracker (src/vmm/src/mmds/token.rs), nothing is kept
 * per token: a token carries its own expiry (milliseconds on the monotonic clock) with a
 * tag that only flint can make, keyed by a random key and bound to the instance
 * ("microvmid=<id>"). It is valid when its tag checks and its expiry has not come. The key
 * is made as the first token is: until then no token can be valid, and a process that
 * issues none never asks for randomness.
 * A guest can ask for any number of tokens at no memory cost to flint, and cannot forge
 * one or stretch its life.
 *
 * Firecracker seals the expiry with AES-256-GCM; flint tags it with SipHash-2-4 (a keyed
 * function made for short messages) run under two independent 128-bit keys, a 128-bit tag,
 * so that no crypto library joins flint's dependencies for this. The expiry is readable
 * in the token, which tells the guest nothing it did not ask for. Text form: base64 of a
 * random nonce (12 bytes), the expiry (8) and the tag (16): 48 characters, as Firecracker's.
 */
#include "vmm/base/log.h"
#include "vmm/mmds/internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#define IV_LEN      12
#define PAYLOAD_LEN 8
#define TAG_LEN     16
#define RAW_LEN     (IV_LEN + PAYLOAD_LEN + TAG_LEN) /* 36 bytes: 48 base64 characters */

static int random_bytes(void *p, size_t n)
{
	ssize_t got = getrandom(p, n, 0);

	return got == (ssize_t)n ? 0 : got < 0 ? -errno : -EIO;
}

void mmds_token_init(struct mmds_tokens *t, const char *instance_id)
{
	snprintf(t->aad, sizeof(t->aad), "microvmid=%s", instance_id);
	t->keyed = false;
}

/* The key, made once, before the first token. 0 or -errno. */
static int make_key(struct mmds_tokens *t)
{
	int r;

	if (t->keyed)
		return 0;
	r = random_bytes(t->key, sizeof(t->key));
	if (r) {
		log_error("MMDS: cannot make the token key: %s", strerror(-r));
		return r;
	}
	t->keyed = true;
	return 0;
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* @n a multiple of 3: no padding. */
static void encode(const uint8_t *in, size_t n, char *out)
{
	for (size_t i = 0; i < n; i += 3) {
		uint32_t w = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		for (int j = 0; j < 4; j++)
			*out++ = b64[(w >> (18 - 6 * j)) & 63];
	}
	*out = 0;
}

static int b64_value(char c)
{
	const char *p = c ? strchr(b64, c) : NULL;

	return p ? (int)(p - b64) : -1;
}

/* Exactly RAW_LEN bytes' worth of standard base64, or false. */
static bool decode(const char *s, size_t len, uint8_t *out)
{
	if (len != MMDS_TOKEN_TEXT)
		return false;
	for (size_t i = 0; i < len; i += 4) {
		uint32_t w = 0;
		for (int j = 0; j < 4; j++) {
			int v = b64_value(s[i + j]);
			if (v < 0)
				return false;
			w = w << 6 | (uint32_t)v;
		}
		*out++ = (uint8_t)(w >> 16);
		*out++ = (uint8_t)(w >> 8);
		*out++ = (uint8_t)w;
	}
	return true;
}

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

static uint64_t le64(const uint8_t *p)
{
	uint64_t w = 0;

	for (int i = 7; i >= 0; i--)
		w = w << 8 | p[i];
	return w;
}

static void sip_rounds(uint64_t v[4], int n)
{
	while (n--) {
		v[0] += v[1], v[1] = ROTL(v[1], 13), v[1] ^= v[0], v[0] = ROTL(v[0], 32);
		v[2] += v[3], v[3] = ROTL(v[3], 16), v[3] ^= v[2];
		v[0] += v[3], v[3] = ROTL(v[3], 21), v[3] ^= v[0];
		v[2] += v[1], v[1] = ROTL(v[1], 17), v[1] ^= v[2], v[2] = ROTL(v[2], 32);
	}
}

/* SipHash-2-4 (Aumasson and Bernstein, 2012) of @n bytes at @in under the 16-byte @key. */
uint64_t mmds_siphash(const uint8_t key[16], const uint8_t *in, size_t n)
{
	uint64_t k0 = le64(key), k1 = le64(key + 8);
	uint64_t v[4] = { k0 ^ 0x736f6d6570736575ULL, k1 ^ 0x646f72616e646f6dULL,
		          k0 ^ 0x6c7967656e657261ULL, k1 ^ 0x7465646279746573ULL };
	uint64_t last = (uint64_t)n << 56;
	size_t whole = n & ~(size_t)7;

	for (size_t i = 0; i < whole; i += 8) {
		uint64_t m = le64(in + i);
		v[3] ^= m;
		sip_rounds(v, 2);
		v[0] ^= m;
	}
	for (size_t i = whole; i < n; i++)
		last |= (uint64_t)in[i] << (8 * (i - whole));
	v[3] ^= last;
	sip_rounds(v, 2);
	v[0] ^= last;
	v[2] ^= 0xff;
	sip_rounds(v, 4);
	return v[0] ^ v[1] ^ v[2] ^ v[3];
}

/* The tag of nonce and expiry (the token's first 20 bytes) for this instance. */
static void tag_of(const struct mmds_tokens *t, const uint8_t *raw, uint8_t *tag)
{
	uint8_t msg[IV_LEN + PAYLOAD_LEN + sizeof(t->aad)];
	size_t aad = strlen(t->aad), n = IV_LEN + PAYLOAD_LEN + aad;

	memcpy(msg, raw, IV_LEN + PAYLOAD_LEN);
	memcpy(msg + IV_LEN + PAYLOAD_LEN, t->aad, aad);
	for (int k = 0; k < 2; k++) {
		uint64_t h = mmds_siphash(t->key + 16 * k, msg, n);
		for (int i = 0; i < 8; i++)
			tag[8 * k + i] = (uint8_t)(h >> (8 * i));
	}
}

int mmds_token_new(struct mmds *m, uint32_t ttl, char *text)
{
	uint64_t expiry = mmds_now_ms(m) + (uint64_t)ttl * 1000;
	uint8_t raw[RAW_LEN];
	int r = make_key(&m->tokens);

	if (!r)
		r = random_bytes(raw, IV_LEN);
	if (r)
		return r;
	for (int i = 0; i < PAYLOAD_LEN; i++)
		raw[IV_LEN + i] = (uint8_t)(expiry >> (8 * i));
	tag_of(&m->tokens, raw, raw + IV_LEN + PAYLOAD_LEN);
	encode(raw, RAW_LEN, text);
	return 0;
}

bool mmds_token_valid(const struct mmds *m, const char *s, size_t len)
{
	uint8_t raw[RAW_LEN], tag[TAG_LEN], diff = 0;
	uint64_t expiry = 0;

	/* No key yet: no token was issued, so none is ours. */
	if (!m->tokens.keyed || len > MMDS_TOKEN_MAX || !decode(s, len, raw))
		return false;
	tag_of(&m->tokens, raw, tag);
	for (int i = 0; i < TAG_LEN;
	     i++) /* every byte: the time says nothing of where it differs */
		diff |= tag[i] ^ raw[IV_LEN + PAYLOAD_LEN + i];
	if (diff)
		return false;
	for (int i = 0; i < PAYLOAD_LEN; i++)
		expiry |= (uint64_t)raw[IV_LEN + i] << (8 * i);
	return expiry > mmds_now_ms(m);
}
