/*
 * The MMDS responder (vmm/mmds/http.c) as a net device's MMDS stack drives it: the bytes
 * one guest TCP connection sends, arriving in pieces, kept in order up to a bound, handed
 * to mmds_serve() after each piece until it wants more. Input: one byte of set-up
 * (bit 0: V2, bit 1: imds_compat, bits 2-7: the piece size, 1-64 bytes), then the stream.
 * The store holds a small tree (objects, arrays, numbers, escapes), so GETs reach every
 * kind of answer.
 *
 * Checked: a request taken is never more than what was given; every answer is a whole
 * HTTP/1.x response whose Content-Length is its body's; nothing waits for more once the
 * bound is reached (the stream is refused instead); after a refusal nothing more is
 * served; nothing leaks (ASan).
 */
#include "tests/fuzz/common.h"
#include "vmm/mmds/mmds.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What the stack keeps of one connection: more than a request may take, as a real stack. */
#define STACK_BUF (2 * MMDS_HTTP_MAX_REQUEST)

static const char tree[] = "{\"latest\": {\"meta-data\": {\"ami-id\": \"ami-1\", \"tags\": "
                           "[\"a\", {\"b\": null}], \"n\": 12.12, \"e\": \"\\u0001/~\"}}, "
                           "\"a/b\": {\"c~d\": true}, \"\": 1}";

/* One store for the run: serving reads it (and counts), so inputs do not reach each other. */
static struct mmds *store;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct mmds_params p = { .size_limit = 51200, .instance_id = "fuzz" };
	json_t *v = json_loads(tree, 0, NULL);

	(void)argc, (void)argv;
	fuzz_setup();
	FUZZ_CHECK(v && mmds_new(&store, &p) == 0 && mmds_put(store, v) == 0, "no store");
	json_decref(v);
	return 0;
}

/* @out is one whole response: status line, headers, a body of its Content-Length. */
static void check_response(const uint8_t *out, size_t len)
{
	const char *end = memmem(out, len, "\r\n\r\n", 4), *cl;
	unsigned long n;

	FUZZ_CHECK(len > 12 && (!memcmp(out, "HTTP/1.0 ", 9) || !memcmp(out, "HTTP/1.1 ", 9)),
	           "an answer that is no HTTP response (%zu bytes)", len);
	FUZZ_CHECK(end != NULL, "an answer without the end of its head");
	cl = memmem(out, (size_t)(end - (const char *)out), "\r\nContent-Length: ", 18);
	FUZZ_CHECK(cl != NULL, "an answer without Content-Length");
	n = strtoul(cl + 18, NULL, 10);
	FUZZ_CHECK(n == len - (size_t)(end + 4 - (const char *)out),
	           "Content-Length %lu for a body of %zu bytes", n,
	           len - (size_t)(end + 4 - (const char *)out));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *ifaces[] = { "eth0" };
	struct mmds_config c = { true, MMDS_V1, false, MMDS_DEFAULT_IPV4, ifaces, 1 };
	static uint8_t buf[STACK_BUF];
	size_t have = 0, at = 1, piece;
	struct mmds *m = store;
	bool refused = false;

	if (!size)
		return 0;
	c.version = data[0] & 1 ? MMDS_V2 : MMDS_V1;
	c.imds_compat = data[0] & 2;
	piece = (size_t)(data[0] >> 2) + 1;
	FUZZ_CHECK(mmds_configure(m, &c) == 0, "out of memory");
	while (at < size && !refused) {
		size_t n = size - at < piece ? size - at : piece;
		if (n > STACK_BUF - have)
			break; /* the stack's own bound: it drops the connection */
		memcpy(buf + have, data + at, n);
		have += n;
		at += n;
		for (;;) {
			uint8_t *out = NULL;
			size_t out_len = 0;
			long r = mmds_serve(m, buf, have, &out, &out_len);

			FUZZ_CHECK(r <= (long)have, "took %ld of %zu bytes", r, have);
			FUZZ_CHECK(r != 0 || have < MMDS_HTTP_MAX_REQUEST,
			           "waits for more with %zu bytes", have);
			FUZZ_CHECK(r != 0 || !out, "an answer to nothing");
			if (r > 0)
				FUZZ_CHECK(out != NULL, "a request taken without an answer");
			if (out)
				check_response(out, out_len);
			free(out);
			if (r <= 0) {
				refused = r < 0;
				break;
			}
			memmove(buf, buf + r, have - (size_t)r);
			have -= (size_t)r;
		}
	}
	return 0;
}
