/*
 * The MMDS: the data store (PUT, PATCH as RFC 7396, the size limit as Firecracker measures
 * it), JSON written as Firecracker writes it, paths into the tree, and the guest's HTTP
 * responder (framing, V1 and V2 with session tokens, IMDS text, every error answer), on a
 * fake clock. Expected bytes are Firecracker's (its mmds/ tests and micro_http's layout).
 */
#include "vmm/mmds/mmds.h"
#include "vmm/mmds/internal.h"
#include "tests/lib/util.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

static uint64_t fake_now = 1000000; /* ms; an arbitrary start */

static uint64_t fake_clock(void *ctx)
{
	(void)ctx;
	return fake_now;
}

static struct mmds *new_store(size_t limit)
{
	struct mmds_params p = { .size_limit = limit,
		                 .instance_id = "test-vm",
		                 .clock_ms = fake_clock };
	struct mmds *m;

	assert_int_equal(mmds_new(&m, &p), 0);
	return m;
}

static json_t *parse(const char *text)
{
	json_error_t err;
	json_t *v = json_loads(text, JSON_DECODE_ANY, &err);

	if (!v)
		fail_msg("bad JSON in the test: %s: %s", text, err.text);
	return v;
}

static void put_text(struct mmds *m, const char *text)
{
	json_t *v = parse(text);

	assert_int_equal(mmds_put(m, v), 0);
	json_decref(v);
}

static int patch_text(struct mmds *m, const char *text)
{
	json_t *v = parse(text);
	int r = mmds_patch(m, v);

	json_decref(v);
	return r;
}

/* The store written as Firecracker writes it. */
static char *dump(struct mmds *m)
{
	json_t *v = mmds_get(m);
	char *s = mmds_json_dump(v, NULL);

	json_decref(v);
	return s;
}

static void assert_dump(const char *json_in, const char *expected)
{
	json_t *v = parse(json_in);
	size_t len;
	char *s = mmds_json_dump(v, &len);

	assert_non_null(s);
	assert_string_equal(s, expected);
	assert_int_equal(len, strlen(expected));
	free(s);
	json_decref(v);
}

/* Data of Firecracker's mod.rs tests (populate_mmds). */
static const char *const populated = "{\"name\": {\"first\": \"John\", \"second\": \"Doe\"}, "
                                     "\"age\": 43, \"phones\": {\"home\": {\"RO\": "
                                     "\"+401234567\", \"UK\": \"+441234567\"}, \"mobile\": "
                                     "\"+442345678\"}}";

/* --- JSON as Firecracker writes it ------------------------------------------------------ */

static void test_json_like_serde(void **state)
{
	(void)state;
	/* Keys sorted bytewise (serde's BTreeMap), compact. */
	assert_dump("{\"b\": 1, \"a\": {\"z\": [1, 2], \"B\": null}, \"aa\": true}",
	            "{\"a\":{\"B\":null,\"z\":[1,2]},\"aa\":true,\"b\":1}");
	/* Reals: shortest form that reads back, ".0" on whole ones, ryu's exponents. */
	assert_dump(
	        "[12.12, 1.0, 100e0, 0.1, -0.0, 1e21, 1e16, 1e15, 1.5e-7, 0.001234, 1e-5, 1e-6]",
	        "[12.12,1.0,100.0,0.1,-0.0,1e21,1e16,1000000000000000.0,1.5e-7,0.001234,"
	        "0.00001,1e-6]");
	assert_dump("[123456789.125, 5e-324, 1.7976931348623157e308]",
	            "[123456789.125,5e-324,1.7976931348623157e308]");
	/* Only '"', '\\' and control characters escaped, those in lower-case hex. */
	assert_dump("\"a/b\\\"c\\\\d\\n\\t\\u001f\\u007f\\u00e9\"",
	            "\"a/b\\\"c\\\\d\\n\\t\\u001f\x7f\xc3\xa9\"");
	assert_dump("{}", "{}");
	assert_dump("null", "null");
	assert_dump("-9223372036854775808", "-9223372036854775808");
}

/* --- the store -------------------------------------------------------------------------- */

static void test_put_patch_get(void **state)
{
	struct mmds *m = new_store(51200);
	char *s;

	(void)state;
	s = dump(m);
	assert_string_equal(s, "null"); /* nothing PUT: GET /mmds shows {} (the API's part) */
	free(s);
	assert_int_equal(patch_text(m, "{\"a\": 1}"), -ENODATA);
	put_text(m, "{\"meta-data\":{\"iam\":\"dummy\"},\"user-data\":\"1522850095\"}");
	assert_int_equal(patch_text(m, "{\"user-data\":\"10\"}"), 0);
	s = dump(m);
	assert_string_equal(s, "{\"meta-data\":{\"iam\":\"dummy\"},\"user-data\":\"10\"}");
	free(s);
	/* PUT replaces, whatever the JSON (any value, as serde's Value). */
	put_text(m, "\"just a string\"");
	s = dump(m);
	assert_string_equal(s, "\"just a string\"");
	free(s);
	/* A PUT of null still counts as a PUT: PATCH works on it (and makes an object). */
	put_text(m, "null");
	assert_int_equal(patch_text(m, "{\"k\": \"v\"}"), 0);
	s = dump(m);
	assert_string_equal(s, "{\"k\":\"v\"}");
	free(s);
	mmds_free(m);
}

/* RFC 7396, as Firecracker's test_json_patch. */
static void test_merge_patch(void **state)
{
	struct mmds *m = new_store(51200);
	char *s;

	(void)state;
	put_text(m, "{\"name\": {\"first\": \"John\", \"second\": \"Doe\"}, \"age\": \"43\", "
	            "\"phones\": {\"home\": {\"RO\": \"+40 1234567\", \"UK\": \"+44 1234567\"},"
	            " \"mobile\": \"+44 2345678\"}}");
	assert_int_equal(patch_text(m, "{\"name\": {\"second\": null, \"last\": \"Kennedy\"}, "
	                               "\"age\": \"44\", \"phones\": {\"home\": \"+44 1234567\", "
	                               "\"mobile\": {\"RO\": \"+40 2345678\", \"UK\": \"+44 "
	                               "2345678\"}}, \"new\": {\"deep\": {\"gone\": null}}}"),
	                 0);
	s = dump(m);
	assert_string_equal(s, "{\"age\":\"44\",\"name\":{\"first\":\"John\",\"last\":\"Kennedy\"},"
	                       "\"new\":{\"deep\":{}},\"phones\":{\"home\":\"+44 1234567\","
	                       "\"mobile\":{\"RO\":\"+40 2345678\",\"UK\":\"+44 2345678\"}}}");
	free(s);
	/* A patch that is no object replaces the whole store. */
	assert_int_equal(patch_text(m, "[1, 2]"), 0);
	s = dump(m);
	assert_string_equal(s, "[1,2]");
	free(s);
	mmds_free(m);
}

/* Firecracker's test_update_data_store and test_put_size_limit, limit 51200. */
static void test_size_limit(void **state)
{
	struct mmds *m = new_store(51200);
	char *big = malloc(51400), *s;

	(void)state;
	put_text(m, "{\"name\": {\"first\": \"John\", \"second\": \"Doe\"}, \"age\": \"43\"}");
	assert_int_equal(patch_text(m, "{\"name\": {\"first\": \"John\", \"second\": null}}"), 0);
	snprintf(big, 51400, "{\"new_key\": \"%0*d\"}", 51151, 0);
	assert_int_equal(patch_text(m, big), 0);
	assert_int_equal(patch_text(m, "{\"new_key2\" : \"smth\"}"), -E2BIG);
	s = dump(m);
	assert_null(strstr(s, "smth")); /* refused: the store as it was */
	free(s);
	assert_int_equal(patch_text(m, "{\"new_key\" : \"smth\"}"), 0);
	s = dump(m);
	assert_int_equal(strlen(s), 53);
	free(s);
	assert_int_equal(patch_text(m, "{\"new_key2\" : \"smth2\"}"), 0);
	s = dump(m);
	assert_int_equal(strlen(s), 72);
	free(s);
	/* A PUT over the limit leaves the store too. */
	snprintf(big, 51400, "{\"key\": \"%0*d\"}", 51300, 0);
	json_t *v = parse(big);
	assert_int_equal(mmds_put(m, v), -E2BIG);
	json_decref(v);
	s = dump(m);
	assert_int_equal(strlen(s), 72);
	free(s);
	/* Exactly the limit fits: measured compactly ({"k":"..."} is 8 + n bytes). */
	mmds_free(m);
	m = new_store(20);
	put_text(m, "{ \"k\" :   \"123456789012\" }");
	v = parse("{\"k\": \"1234567890123\"}");
	assert_int_equal(mmds_put(m, v), -E2BIG);
	json_decref(v);
	mmds_free(m);
	free(big);
}

/* --- the guest's requests --------------------------------------------------------------- */

/* One request through the responder: the whole answer as text, the bytes it took. */
static char *serve(struct mmds *m, const char *req, long *took)
{
	uint8_t *out = NULL;
	size_t out_len = 0;
	long r = mmds_serve(m, (const uint8_t *)req, strlen(req), &out, &out_len);
	char *text = calloc(1, out_len + 1);

	assert_non_null(text);
	if (out)
		memcpy(text, out, out_len);
	free(out);
	*took = r;
	return text;
}

/* micro_http's answer layout. */
static char *expect(const char *version, int code, const char *type, const char *extra,
                    const char *body)
{
	char *s;

	assert_true(asprintf(&s,
	                     "%s %d \r\nServer: Firecracker API\r\nConnection: keep-alive\r\n%s"
	                     "Content-Type: %s\r\nContent-Length: %zu\r\n\r\n%s",
	                     version, code, extra, type, strlen(body), body) > 0);
	return s;
}

static void check(struct mmds *m, const char *req, const char *version, int code, const char *type,
                  const char *extra, const char *body)
{
	long took;
	char *got = serve(m, req, &took), *want = expect(version, code, type, extra, body);

	assert_string_equal(got, want);
	assert_int_equal(took, strlen(req));
	free(got);
	free(want);
}

#define JSON "application/json"
#define TEXT "text/plain"

static struct mmds *populated_store(enum mmds_version version, bool imds_compat)
{
	struct mmds *m = new_store(51200);
	char *ifaces[] = { "eth0" };
	struct mmds_config c = { true, version, imds_compat, MMDS_DEFAULT_IPV4, ifaces, 1 };

	put_text(m, populated);
	assert_int_equal(mmds_configure(m, &c), 0);
	return m;
}

static void test_get_v1_formats(void **state)
{
	struct mmds *m = populated_store(MMDS_V1, false);
	const char *all = "{\"age\":43,\"name\":{\"first\":\"John\",\"second\":\"Doe\"},\"phones\":"
	                  "{\"home\":{\"RO\":\"+401234567\",\"UK\":\"+441234567\"},\"mobile\":"
	                  "\"+442345678\"}}";

	(void)state;
	/* No Accept, an empty one, any other, text/plain: IMDS text. */
	check(m, "GET http://169.254.169.254/ HTTP/1.0\r\n\r\n", "HTTP/1.0", 200, TEXT, "",
	      "age\nname/\nphones/");
	check(m, "GET http://169.254.169.254/ HTTP/1.0\r\nAccept:\r\n\r\n", "HTTP/1.0", 200, TEXT,
	      "", "age\nname/\nphones/");
	check(m, "GET http://169.254.169.254/ HTTP/1.0\r\nAccept: */*\r\n\r\n", "HTTP/1.0", 200,
	      TEXT, "", "age\nname/\nphones/");
	check(m, "GET / HTTP/1.1\r\nAccept: text/plain\r\n\r\n", "HTTP/1.1", 200, TEXT, "",
	      "age\nname/\nphones/");
	check(m, "GET http://169.254.169.254/ HTTP/1.0\r\nAccept: application/json\r\n\r\n",
	      "HTTP/1.0", 200, JSON, "", all);
	/* Paths: a leaf, a subtree, a trailing '/', runs of '/'. */
	check(m, "GET /phones/home/RO HTTP/1.1\r\n\r\n", "HTTP/1.1", 200, TEXT, "", "+401234567");
	check(m, "GET //phones///home/ HTTP/1.1\r\nAccept: application/json\r\n\r\n", "HTTP/1.1",
	      200, JSON, "", "{\"RO\":\"+401234567\",\"UK\":\"+441234567\"}");
	check(m, "GET /name/first HTTP/1.1\r\nAccept: application/json\r\n\r\n", "HTTP/1.1", 200,
	      JSON, "", "\"John\"");
	check(m, "GET /age HTTP/1.1\r\nAccept: application/json\r\n\r\n", "HTTP/1.1", 200, JSON, "",
	      "43");
	/* IMDS text of a number: 501. A missing path: 404 naming the path as sent. */
	check(m, "GET /age HTTP/1.1\r\n\r\n", "HTTP/1.1", 501, TEXT, "",
	      "Cannot retrieve value. The value has an unsupported type.");
	check(m, "GET http://169.254.169.254/invalid HTTP/1.0\r\n\r\n", "HTTP/1.0", 404, TEXT, "",
	      "Resource not found: /invalid.");
	check(m, "GET //nope// HTTP/1.0\r\n\r\n", "HTTP/1.0", 404, TEXT, "",
	      "Resource not found: //nope//.");
	/* V1 takes any token, or none, and counts them. */
	check(m, "GET /name/second HTTP/1.1\r\nX-metadata-token: INVALID_TOKEN\r\n\r\n", "HTTP/1.1",
	      200, TEXT, "", "Doe");
	assert_int_equal(mmds_stats(m)->invalid_token, 1);
	assert_true(mmds_stats(m)->no_token >= 10);
	mmds_free(m);
}

static void test_paths(void **state)
{
	struct mmds *m = new_store(51200);

	(void)state;
	put_text(m, "{\"a/b\": {\"c~d\": \"slash-tilde\"}, \"list\": [\"zero\", \"one\"], "
	            "\"\": \"empty key\", \"n\": null}");
	check(m, "GET /a~1b/c~0d HTTP/1.1\r\n\r\n", "HTTP/1.1", 200, TEXT, "", "slash-tilde");
	check(m, "GET /list/1 HTTP/1.1\r\n\r\n", "HTTP/1.1", 200, TEXT, "", "one");
	check(m, "GET /list/0/ HTTP/1.1\r\nAccept: application/json\r\n\r\n", "HTTP/1.1", 200, JSON,
	      "", "\"zero\"");
	/* serde's array indices: no sign, no leading zero, in range. */
	check(m, "GET /list/01 HTTP/1.1\r\n\r\n", "HTTP/1.1", 404, TEXT, "",
	      "Resource not found: /list/01.");
	check(m, "GET /list/+1 HTTP/1.1\r\n\r\n", "HTTP/1.1", 404, TEXT, "",
	      "Resource not found: /list/+1.");
	check(m, "GET /list/2 HTTP/1.1\r\n\r\n", "HTTP/1.1", 404, TEXT, "",
	      "Resource not found: /list/2.");
	check(m, "GET /list/99999999999999999999999 HTTP/1.1\r\n\r\n", "HTTP/1.1", 404, TEXT, "",
	      "Resource not found: /list/99999999999999999999999.");
	check(m, "GET /list HTTP/1.1\r\n\r\n", "HTTP/1.1", 501, TEXT, "",
	      "Cannot retrieve value. The value has an unsupported type.");
	check(m, "GET /n HTTP/1.1\r\nAccept: application/json\r\n\r\n", "HTTP/1.1", 200, JSON, "",
	      "null");
	/* No query strings, no percent-decoding: the path is the bytes sent. */
	check(m, "GET /list?x=1 HTTP/1.1\r\n\r\n", "HTTP/1.1", 404, TEXT, "",
	      "Resource not found: /list?x=1.");
	mmds_free(m);
	/* Nothing PUT yet: the store is null. */
	m = new_store(51200);
	check(m, "GET / HTTP/1.1\r\nAccept: application/json\r\n\r\n", "HTTP/1.1", 200, JSON, "",
	      "null");
	check(m, "GET / HTTP/1.1\r\n\r\n", "HTTP/1.1", 501, TEXT, "",
	      "Cannot retrieve value. The value has an unsupported type.");
	mmds_free(m);
}

static void test_imds_compat(void **state)
{
	struct mmds *m = populated_store(MMDS_V1, true);

	(void)state;
	/* EC2 ignores Accept: text always, the Content-Type still Accept's. */
	check(m, "GET /name HTTP/1.1\r\nAccept: application/json\r\n\r\n", "HTTP/1.1", 200, JSON,
	      "", "first\nsecond");
	check(m, "GET /age HTTP/1.1\r\nAccept: application/json\r\n\r\n", "HTTP/1.1", 501, TEXT, "",
	      "Cannot retrieve value. The value has an unsupported type.");
	mmds_free(m);
}

/* PUT /latest/api/token, then its use; the 401s; expiry on the fake clock. */
static char *get_token(struct mmds *m, const char *ttl_header, unsigned ttl)
{
	char req[256], *got, *body, *token;
	long took;

	snprintf(req, sizeof(req),
	         "PUT http://169.254.169.254/latest/api/token HTTP/1.0\r\n%s: %u\r\n\r\n",
	         ttl_header, ttl);
	got = serve(m, req, &took);
	assert_int_equal(took, strlen(req));
	assert_non_null(strstr(got, "HTTP/1.0 200 \r\n"));
	snprintf(req, sizeof(req), "\r\n%s: %u\r\nContent-Type: text/plain\r\n", ttl_header, ttl);
	assert_non_null(strstr(got, req)); /* the TTL header comes back, as the guest spelt it */
	body = strstr(got, "\r\n\r\n") + 4;
	assert_int_equal(strlen(body), 48);
	token = strdup(body);
	free(got);
	return token;
}

/* The tag's function against the SipHash paper's own vector (appendix A). */
static void test_siphash_vector(void **state)
{
	uint8_t key[16], msg[15];

	(void)state;
	for (int i = 0; i < 16; i++)
		key[i] = (uint8_t)i;
	for (int i = 0; i < 15; i++)
		msg[i] = (uint8_t)i;
	assert_true(mmds_siphash(key, msg, sizeof(msg)) == 0xa129ca6149be45e5ULL);
}

static void test_v2_tokens(void **state)
{
	struct mmds *m = populated_store(MMDS_V2, false);
	char req[512], *token, *short_lived, *other;

	(void)state;
	token = get_token(m, "X-metadata-token-ttl-seconds", 60);
	snprintf(req, sizeof(req),
	         "GET http://169.254.169.254/name/first HTTP/1.0\r\nX-metadata-token: %s\r\n\r\n",
	         token);
	check(m, req, "HTTP/1.0", 200, TEXT, "", "John");
	/* The EC2 names work too, in any case. */
	other = get_token(m, "x-aws-ec2-metadata-token-ttl-seconds", 21600);
	snprintf(req, sizeof(req),
	         "GET /name/second HTTP/1.1\r\nX-AWS-EC2-Metadata-Token: %s\r\n\r\n", other);
	check(m, req, "HTTP/1.1", 200, TEXT, "", "Doe");
	/* No token, a bad one: 401. */
	check(m, "GET http://169.254.169.254/ HTTP/1.0\r\n\r\n", "HTTP/1.0", 401, TEXT, "",
	      "No MMDS token provided. Use `X-metadata-token` or `X-aws-ec2-metadata-token` header "
	      "to specify the session token.");
	check(m, "GET / HTTP/1.0\r\nX-metadata-token: INVALID_TOKEN\r\n\r\n", "HTTP/1.0", 401, TEXT,
	      "", "MMDS token not valid.");
	/*
	 * A token altered by one character (in its nonce, its expiry: a longer life, its tag),
	 * or of another store (another key): not valid.
	 */
	for (int at = 10; at < 48; at += 12) {
		token[at] = token[at] == 'A' ? 'B' : 'A';
		snprintf(req, sizeof(req), "GET / HTTP/1.0\r\nX-metadata-token: %s\r\n\r\n", token);
		check(m, req, "HTTP/1.0", 401, TEXT, "", "MMDS token not valid.");
		token[at] = token[at] == 'A' ? 'B' : 'A';
	}
	struct mmds *m2 = populated_store(MMDS_V2, false);
	snprintf(req, sizeof(req), "GET / HTTP/1.0\r\nX-metadata-token: %s\r\n\r\n", other);
	check(m2, req, "HTTP/1.0", 401, TEXT, "", "MMDS token not valid.");
	mmds_free(m2);
	/* Expiry: valid up to its last millisecond, not at it. */
	short_lived = get_token(m, "X-metadata-token-ttl-seconds", 1);
	snprintf(req, sizeof(req), "GET /name/first HTTP/1.0\r\nX-metadata-token: %s\r\n\r\n",
	         short_lived);
	fake_now += 999;
	check(m, req, "HTTP/1.0", 200, TEXT, "", "John");
	fake_now += 1;
	check(m, req, "HTTP/1.0", 401, TEXT, "", "MMDS token not valid.");
	/* The 6 h one lives on. */
	snprintf(req, sizeof(req),
	         "GET /name/second HTTP/1.1\r\nX-aws-ec2-metadata-token: %s\r\n\r\n", other);
	check(m, req, "HTTP/1.1", 200, TEXT, "", "Doe");
	fake_now += 21600 * 1000;
	check(m, req, "HTTP/1.1", 401, TEXT, "", "MMDS token not valid.");
	/* A token's length is checked before anything is decoded. */
	memset(req, 0, sizeof(req));
	snprintf(req, sizeof(req), "GET / HTTP/1.0\r\nX-metadata-token: %0300d\r\n\r\n", 7);
	check(m, req, "HTTP/1.0", 401, TEXT, "", "MMDS token not valid.");
	free(token);
	free(short_lived);
	free(other);
	mmds_free(m);
}

static void test_token_put_errors(void **state)
{
	struct mmds *m = populated_store(MMDS_V2, false);
	char req[256];

	(void)state;
	check(m, "PUT http://169.254.169.254/latest/api/token HTTP/1.0\r\n\r\n", "HTTP/1.0", 400,
	      TEXT, "",
	      "Token time to live value not found. Use `X-metadata-token-ttl-seconds` or "
	      "`X-aws-ec2-metadata-token-ttl-seconds` header to specify the token's lifetime.");
	check(m,
	      "PUT http://169.254.169.254/latest/api/token HTTP/1.0\r\n"
	      "X-metadata-token-ttl-seconds: application/json\r\n\r\n",
	      "HTTP/1.0", 400, TEXT, "",
	      "Invalid header. Reason: Invalid value. Key:X-metadata-token-ttl-seconds; "
	      "Value:application/json");
	for (unsigned ttl = 0; ttl <= 21601; ttl += 21601) {
		snprintf(req, sizeof(req),
		         "PUT /latest/api/token HTTP/1.1\r\nX-metadata-token-ttl-seconds: "
		         "%u\r\n\r\n",
		         ttl);
		char body[160];
		snprintf(body, sizeof(body),
		         "Invalid time to live value provided for token: %u. Please provide a "
		         "value between 1 and 21600.",
		         ttl);
		check(m, req, "HTTP/1.1", 400, TEXT, "", body);
	}
	check(m,
	      "PUT /latest/api/token HTTP/1.1\r\nX-metadata-token-ttl-seconds: 99999999999\r\n\r\n",
	      "HTTP/1.1", 400, TEXT, "",
	      "Invalid header. Reason: Invalid value. Key:X-metadata-token-ttl-seconds; "
	      "Value:99999999999");
	check(m,
	      "PUT /latest/api/token HTTP/1.1\r\nX-fOrWaRdEd-FoR: 203.0.113.195\r\n"
	      "X-metadata-token-ttl-seconds: 60\r\n\r\n",
	      "HTTP/1.1", 400, TEXT, "",
	      "Invalid header. Reason: Unsupported header name. Key: X-fOrWaRdEd-FoR");
	check(m,
	      "PUT http://169.254.169.254/token HTTP/1.0\r\nX-metadata-token-ttl-seconds: "
	      "60\r\n\r\n",
	      "HTTP/1.0", 404, TEXT, "", "Resource not found: /token.");
	check(m, "PUT /latest/api/token/ HTTP/1.0\r\nX-metadata-token-ttl-seconds: 60\r\n\r\n",
	      "HTTP/1.0", 404, TEXT, "", "Resource not found: /latest/api/token/.");
	/* A bad TTL header on a GET is nobody's business. */
	check(m, "GET / HTTP/1.0\r\nX-metadata-token-ttl-seconds: nonsense\r\n\r\n", "HTTP/1.0",
	      401, TEXT, "",
	      "No MMDS token provided. Use `X-metadata-token` or "
	      "`X-aws-ec2-metadata-token` header to specify the session token.");
	mmds_free(m);
}

static void test_bad_requests(void **state)
{
	struct mmds *m = populated_store(MMDS_V1, false);

	(void)state;
	check(m, "PATCH http://169.254.169.255/ HTTP/1.0\r\n\r\n", "HTTP/1.0", 405, TEXT,
	      "Allow: GET, PUT\r\n", "Not allowed HTTP method.");
	check(m, "DELETE /name HTTP/1.1\r\n\r\n", "HTTP/1.1", 405, TEXT, "Allow: GET, PUT\r\n",
	      "Not allowed HTTP method.");
	check(m, "GET http:// HTTP/1.0\r\n\r\n", "HTTP/1.0", 400, TEXT, "", "Invalid URI.");
	check(m, "GET http://169.254.169.254 HTTP/1.0\r\n\r\n", "HTTP/1.0", 400, TEXT, "",
	      "Invalid URI.");
	check(m, "GET relative/path HTTP/1.1\r\n\r\n", "HTTP/1.1", 400, TEXT, "", "Invalid URI.");
	/* What micro_http cannot parse: HTTP/1.1, application/json, its messages. */
	check(m, "POST http://169.254.169.255/ HTTP/1.0\r\n\r\n", "HTTP/1.1", 501, JSON, "",
	      "Unsupported HTTP method.");
	check(m, "GET http://169.254.169.255/ HTTP/2.0\r\n\r\n", "HTTP/1.1", 501, JSON, "",
	      "Unsupported HTTP version.");
	check(m, "GET   HTTP/1.0\r\n\r\n", "HTTP/1.1", 400, JSON, "", "Empty URI not allowed.");
	check(m, "GET /\xff\xfe HTTP/1.0\r\n\r\n", "HTTP/1.1", 400, JSON, "",
	      "Cannot parse URI as UTF-8.");
	check(m, "GET / HTTP/1.1\n\n", "HTTP/1.1", 400, JSON, "", "Invalid request.");
	check(m, "GET/ HTTP/1.1\r\n\r\n", "HTTP/1.1", 400, JSON, "", "Invalid request.");
	check(m, "GET / HTTP/1.1\r\nNoColonHere\r\n\r\n", "HTTP/1.1", 400, JSON, "",
	      "Header is incorrectly formatted. Key: NoColonHere");
	check(m, "GET / HTTP/1.1\r\nContent-Length: abc\r\n\r\n", "HTTP/1.1", 400, JSON, "",
	      "Invalid value. Key:Content-Length; Value: abc");
	check(m, "GET / HTTP/1.1\r\nAccept-Encoding: identity;q=0\r\n\r\n", "HTTP/1.1", 400, JSON,
	      "", "Invalid value. Key:Accept-Encoding; Value:identity;q=0");
	check(m, "GET / HTTP/1.1\r\nAccept-Encoding:\r\n\r\n", "HTTP/1.1", 400, JSON, "",
	      "Invalid request.");
	/* Unknown values of known headers are ignored, as there. */
	check(m,
	      "GET /name/first HTTP/1.1\r\nContent-Type: image/png\r\nExpect: x\r\n"
	      "Transfer-Encoding: gzip\r\nAccept-Encoding: gzip, deflate\r\n\r\n",
	      "HTTP/1.1", 200, TEXT, "", "John");
	mmds_free(m);
}

/* The byte stream: partial input, pipelining, bodies, the bounds. */
static void test_framing(void **state)
{
	struct mmds *m = populated_store(MMDS_V1, false);
	const char *two = "GET /name/first HTTP/1.1\r\n\r\nGET /name/second HTTP/1.1\r\n\r\n";
	char *big = malloc(MMDS_HTTP_MAX_REQUEST + 100), *got;
	uint8_t *out;
	size_t out_len;
	long took;

	(void)state;
	/* Every prefix of a request is "not yet". */
	for (size_t n = 0; n < strlen(two) / 2; n++) {
		assert_int_equal(mmds_serve(m, (const uint8_t *)two, n, &out, &out_len), 0);
		assert_null(out);
	}
	/* Pipelined: one request a call, each answered in turn. */
	got = serve(m, two, &took);
	assert_int_equal(took, strlen("GET /name/first HTTP/1.1\r\n\r\n"));
	assert_non_null(strstr(got, "\r\n\r\nJohn"));
	free(got);
	got = serve(m, two + took, &took);
	assert_int_equal(took, strlen(two) - strlen("GET /name/first HTTP/1.1\r\n\r\n"));
	assert_non_null(strstr(got, "\r\n\r\nDoe"));
	free(got);
	/* A head announcing a body: 400 as soon as the head is complete, and the stream ends. */
	got = serve(m,
	            "PUT /latest/api/token HTTP/1.1\r\nContent-Length: 5\r\n"
	            "X-metadata-token-ttl-seconds: 5\r\n\r\n",
	            &took);
	assert_true(took < 0);
	assert_non_null(strstr(got, "HTTP/1.1 400 \r\n"));
	assert_non_null(strstr(got, "\r\n\r\nInvalid request."));
	free(got);
	got = serve(m, "GET / HTTP/1.1\r\nContent-Length: 1\r\n\r\n", &took);
	assert_true(took < 0);
	assert_non_null(strstr(got, "\r\n\r\nInvalid request."));
	free(got);
	/* Content-Length: 0 is no body. */
	got = serve(m, "GET /name/first HTTP/1.1\r\nContent-Length: 0\r\n\r\n", &took);
	assert_int_equal(took, strlen("GET /name/first HTTP/1.1\r\nContent-Length: 0\r\n\r\n"));
	assert_non_null(strstr(got, "\r\n\r\nJohn"));
	free(got);
	/* A head that has not ended within the bound: refused, no answer (a reset). */
	memset(big, 'a', MMDS_HTTP_MAX_REQUEST + 99);
	big[MMDS_HTTP_MAX_REQUEST + 99] = 0;
	memcpy(big, "GET /", 5);
	assert_int_equal(
	        mmds_serve(m, (const uint8_t *)big, MMDS_HTTP_MAX_REQUEST - 1, &out, &out_len), 0);
	assert_true(mmds_serve(m, (const uint8_t *)big, MMDS_HTTP_MAX_REQUEST, &out, &out_len) < 0);
	assert_null(out);
	/* One that ends just within it is served (a 404 for its long path). */
	snprintf(big, MMDS_HTTP_MAX_REQUEST + 1, "GET /%0*d HTTP/1.1\r\n\r\n",
	         MMDS_HTTP_MAX_REQUEST - 5 - 13, 0);
	assert_int_equal(strlen(big), MMDS_HTTP_MAX_REQUEST);
	got = serve(m, big, &took);
	assert_int_equal(took, MMDS_HTTP_MAX_REQUEST);
	assert_non_null(strstr(got, "HTTP/1.1 404 \r\n"));
	free(got);
	/* A body beyond the bound, or chunked: answered 400, and the stream ends there. */
	got = serve(m, "GET / HTTP/1.1\r\nContent-Length: 4000000000\r\n\r\n", &took);
	assert_true(took < 0);
	assert_non_null(strstr(got, "HTTP/1.1 400 \r\n"));
	free(got);
	got = serve(m, "GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", &took);
	assert_true(took < 0);
	assert_non_null(strstr(got, "\r\n\r\nInvalid request."));
	free(got);
	free(big);
	mmds_free(m);
}

/* Random bytes and mangled requests: an answer or a refusal, never more than it was given. */
static void test_hostile_bytes(void **state)
{
	struct mmds *m = populated_store(MMDS_V2, false);
	const char *seed = "PUT /latest/api/token HTTP/1.1\r\nX-metadata-token-ttl-seconds: 60\r\n"
	                   "Accept: application/json\r\nContent-Length: 0\r\n\r\n";
	uint8_t buf[MMDS_HTTP_MAX_REQUEST + 64], *out;
	size_t out_len, len;
	unsigned seedv = 7;

	(void)state;
	for (int i = 0; i < 20000; i++) {
		len = strlen(seed);
		memcpy(buf, seed, len);
		for (int k = rand_r(&seedv) % 8; k >= 0; k--) {
			size_t at = (size_t)rand_r(&seedv) % len;
			buf[at] = (uint8_t)(rand_r(&seedv) % 4 ? "\r\n: /0a"[rand_r(&seedv) % 7]
			                                       : rand_r(&seedv));
		}
		if (i % 3 == 0)
			len = (size_t)rand_r(&seedv) % (sizeof(buf));
		long r = mmds_serve(m, buf, len, &out, &out_len);
		assert_true(r <= (long)len);
		if (r > 0)
			assert_non_null(out);
		free(out);
	}
	mmds_free(m);
}

/* What the VM's wiring asks: for an interface, whether, where, and who answers. */
static void test_net_lookup(void **state)
{
	struct mmds *m = new_store(51200);
	char *ifaces[] = { "eth0", "eth2" };
	struct mmds_config c = { true, MMDS_V1, false, { 169, 254, 170, 2 }, ifaces, 2 };
	struct mmds_net n;
	uint8_t *out;
	size_t out_len;

	(void)state;
	assert_int_equal(mmds_net(m, "eth0", &n), 0); /* not configured: answers nowhere */
	assert_int_equal(mmds_configure(m, &c), 0);
	assert_int_equal(mmds_net(m, "eth1", &n), 0);
	assert_null(n.responder.serve);
	assert_int_equal(mmds_net(m, "eth2", &n), 1);
	assert_memory_equal(n.ipv4, ((uint8_t[]){ 169, 254, 170, 2 }), 4);
	assert_ptr_equal(n.responder.ctx, m);
	put_text(m, "{\"x\": \"y\"}");
	const char *req = "GET /x HTTP/1.1\r\n\r\n";
	assert_int_equal(n.responder.serve(n.responder.ctx, (const uint8_t *)req, strlen(req), &out,
	                                   &out_len),
	                 strlen(req));
	assert_non_null(memmem(out, out_len, "\r\n\r\ny", 5));
	free(out);
	assert_int_equal(mmds_net(NULL, "eth0", &n), -EINVAL);
	mmds_free(m);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_json_like_serde),  cmocka_unit_test(test_put_patch_get),
		cmocka_unit_test(test_merge_patch),      cmocka_unit_test(test_size_limit),
		cmocka_unit_test(test_get_v1_formats),   cmocka_unit_test(test_paths),
		cmocka_unit_test(test_imds_compat),      cmocka_unit_test(test_v2_tokens),
		cmocka_unit_test(test_token_put_errors), cmocka_unit_test(test_bad_requests),
		cmocka_unit_test(test_framing),          cmocka_unit_test(test_hostile_bytes),
		cmocka_unit_test(test_net_lookup),       cmocka_unit_test(test_siphash_vector),
	};
	return TEST_MAIN(tests, NULL, NULL);
}
