/*
 * MMDS V2 session tokens, as Firecracker makes them (src/vmm/src/mmds/token.rs): nothing
 * is kept per token. A token is its expiry (milliseconds on the monotonic clock) encrypted
 * with AES-256-GCM under a key made at start, bound to the instance ("microvmid=<id>" as
 * the additional data), with a random 12-byte IV: base64 of IV, ciphertext and tag. It is
 * valid when it decrypts and its expiry has not come. A guest can ask for any number of
 * tokens at no memory cost to flint, and cannot forge one or stretch its life. The key is
 * replaced (every token made so far dies) before 2^32 tokens are made under it, GCM's
 * limit for random IVs.
 */
#include "vmm/base/log.h"
#include "vmm/mmds/internal.h"

#include <errno.h>
#include <openssl/evp.h>
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

int mmds_token_init(struct mmds_tokens *t, const char *instance_id)
{
	snprintf(t->aad, sizeof(t->aad), "microvmid=%s", instance_id);
	t->issued = 0;
	return random_bytes(t->key, sizeof(t->key));
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

/* AES-256-GCM over the 8 bytes at @payload, in place; the tag out (seal) or checked (open). */
static bool gcm(const struct mmds_tokens *t, bool seal, const uint8_t *iv, uint8_t *payload,
                uint8_t *tag)
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	uint8_t out[PAYLOAD_LEN + 16];
	int n, ok;

	if (!ctx)
		return false;
	ok = EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, t->key, iv, seal) == 1 &&
	     EVP_CipherUpdate(ctx, NULL, &n, (const uint8_t *)t->aad, (int)strlen(t->aad)) == 1 &&
	     EVP_CipherUpdate(ctx, out, &n, payload, PAYLOAD_LEN) == 1 && n == PAYLOAD_LEN &&
	     (seal || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG_LEN, tag) == 1) &&
	     EVP_CipherFinal_ex(ctx, out + n, &n) == 1 &&
	     (!seal || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_LEN, tag) == 1);
	EVP_CIPHER_CTX_free(ctx);
	if (ok)
		memcpy(payload, out, PAYLOAD_LEN);
	explicit_bzero(out, sizeof(out));
	return ok;
}

int mmds_token_new(struct mmds *m, uint32_t ttl, char *text)
{
	struct mmds_tokens *t = &m->tokens;
	uint64_t expiry = mmds_now_ms(m) + (uint64_t)ttl * 1000;
	uint8_t raw[RAW_LEN];
	int r;

	if (t->issued == UINT32_MAX) {
		r = random_bytes(t->key, sizeof(t->key));
		if (r)
			return r;
		t->issued = 0;
		log_warn("MMDS: 2^32 - 1 tokens made under one key: a new key, every token "
		         "made so far is no longer valid");
	}
	r = random_bytes(raw, IV_LEN);
	if (r)
		return r;
	for (int i = 0; i < PAYLOAD_LEN; i++)
		raw[IV_LEN + i] = (uint8_t)(expiry >> (8 * i));
	if (!gcm(t, true, raw, raw + IV_LEN, raw + IV_LEN + PAYLOAD_LEN))
		return -EIO;
	t->issued++;
	encode(raw, RAW_LEN, text);
	return 0;
}

bool mmds_token_valid(const struct mmds *m, const char *s, size_t len)
{
	uint8_t raw[RAW_LEN];
	uint64_t expiry = 0;

	if (len > MMDS_TOKEN_MAX || !decode(s, len, raw) ||
	    !gcm(&m->tokens, false, raw, raw + IV_LEN, raw + IV_LEN + PAYLOAD_LEN))
		return false;
	for (int i = 0; i < PAYLOAD_LEN; i++)
		expiry |= (uint64_t)raw[IV_LEN + i] << (8 * i);
	return expiry > mmds_now_ms(m);
}
