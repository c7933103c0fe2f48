/*
 * The guest's side of the MMDS: HTTP/1.x requests framed out of one TCP connection's
 * bytes and answered from the store, byte for byte as Firecracker answers them (its
 * src/vmm/src/mmds/mod.rs over micro_http's parser, and dumbo's Endpoint for framing and
 * the answers to requests it cannot parse). Only the framing is flint's own: a request
 * ends at its head's blank line, as in Firecracker, and then also takes the Content-Length
 * bytes after it, so that a body is not read as the next request (Firecracker answers a
 * request with a body 400 "Invalid request.", and so does flint).
 *
 * Bounds: a request (head and body) is at most MMDS_HTTP_MAX_REQUEST bytes; a head that
 * has not ended by then is refused without an answer (Firecracker resets the connection);
 * a body that would go beyond it, or a chunked one, is answered 400 and the connection
 * closed, since the stream cannot be followed past it. Every answer is built from at most
 * that many bytes of input plus the value asked for, which the size limit bounds.
 */
#include "vmm/mmds/internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* micro_http's request line minimum: "GET" SP 1-byte URI SP "HTTP/1.0". */
#define REQUEST_LINE_MIN 14

#define MSG_INVALID_REQUEST "Invalid request."
#define MSG_NO_TOKEN                                                                               \
	"No MMDS token provided. Use `X-metadata-token` or `X-aws-ec2-metadata-token` header to "  \
	"specify the session token."
#define MSG_NO_TTL                                                                                 \
	"Token time to live value not found. Use `X-metadata-token-ttl-seconds` or "               \
	"`X-aws-ec2-metadata-token-ttl-seconds` header to specify the token's lifetime."
#define MSG_UNSUPPORTED_TYPE "Cannot retrieve value. The value has an unsupported type."

struct slice {
	const char *p;
	size_t len;
};

enum method { GET, PUT, PATCH, DELETE };

struct request {
	enum method method;
	struct slice uri;
	bool http10;
	bool accept_json;    /* Accept: application/json; anything else is text/plain */
	struct slice head;   /* the header lines, CRLF-separated, without the last CRLF */
	bool has_head_lines; /* head may be empty and still be one line: "" vs none */
};

struct response {
	int code;
	bool http10;
	bool json;          /* Content-Type: application/json, else text/plain */
	bool allow;         /* Allow: GET, PUT */
	struct slice xname; /* one more header (the token's TTL): name... */
	char xvalue[16];    /* ...and value */
	const char *body;
	size_t body_len;
};

/* --- bytes ------------------------------------------------------------------------------ */

static bool eq(struct slice s, const char *lit)
{
	return s.len == strlen(lit) && !memcmp(s.p, lit, s.len);
}

static bool eq_nocase(struct slice s, const char *lit)
{
	return s.len == strlen(lit) && !strncasecmp(s.p, lit, s.len);
}

static const char *find(const char *p, size_t len, const char *seq)
{
	size_t n = strlen(seq);

	for (size_t i = 0; n <= len && i <= len - n; i++)
		if (!memcmp(p + i, seq, n))
			return p + i;
	return NULL;
}

/* Rust's trim(): ASCII whitespace at both ends (the heads are checked as UTF-8 first). */
static struct slice trim(struct slice s)
{
	while (s.len && (*s.p == ' ' || *s.p == '\t' || *s.p == '\r' || *s.p == '\n' ||
	                 *s.p == '\f' || *s.p == '\v'))
		s.p++, s.len--;
	while (s.len &&
	       (s.p[s.len - 1] == ' ' || s.p[s.len - 1] == '\t' || s.p[s.len - 1] == '\r' ||
	        s.p[s.len - 1] == '\n' || s.p[s.len - 1] == '\f' || s.p[s.len - 1] == '\v'))
		s.len--;
	return s;
}

/* Rust's from_utf8(): no overlong forms, no surrogates, nothing above U+10FFFF. */
static bool utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + len;

	while (p < end) {
		unsigned c = *p++, n, min, cp;
		if (c < 0x80)
			continue;
		if (c >= 0xc2 && c <= 0xdf)
			n = 1, min = 0x80, cp = c & 0x1f;
		else if (c >= 0xe0 && c <= 0xef)
			n = 2, min = 0x800, cp = c & 0x0f;
		else if (c >= 0xf0 && c <= 0xf4)
			n = 3, min = 0x10000, cp = c & 0x07;
		else
			return false;
		if ((size_t)(end - p) < n)
			return false;
		for (unsigned i = 0; i < n; i++, p++) {
			if ((*p & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (*p & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
	}
	return true;
}

/* Rust's u32::from_str: an optional '+', then decimal digits only. */
static bool parse_u32(struct slice s, uint32_t *out)
{
	uint64_t n = 0;

	if (s.len && *s.p == '+')
		s.p++, s.len--;
	if (!s.len)
		return false;
	for (size_t i = 0; i < s.len; i++) {
		if (s.p[i] < '0' || s.p[i] > '9')
			return false;
		n = n * 10 + (uint64_t)(s.p[i] - '0');
		if (n > UINT32_MAX)
			return false;
	}
	*out = (uint32_t)n;
	return true;
}

/* The next CRLF-separated line of @rest into @line; false at the end. */
static bool next_line(struct slice *rest, struct slice *line, bool *more)
{
	const char *crlf;

	if (!*more)
		return false;
	crlf = find(rest->p, rest->len, "\r\n");
	line->p = rest->p;
	line->len = crlf ? (size_t)(crlf - rest->p) : rest->len;
	*more = crlf != NULL;
	if (crlf) {
		rest->len -= line->len + 2;
		rest->p = crlf + 2;
	}
	return true;
}

/* A header line split at its first ':' (raw, untrimmed); false when it has none. */
static bool split_header(struct slice line, struct slice *name, struct slice *value)
{
	const char *colon = memchr(line.p, ':', line.len);

	*name = (struct slice){ line.p, colon ? (size_t)(colon - line.p) : line.len };
	if (!colon)
		return false;
	*value = (struct slice){ colon + 1, line.len - name->len - 1 };
	return true;
}

/* --- answers ---------------------------------------------------------------------------- */

/*
 * micro_http's layout, so a guest sees what it sees under Firecracker (the Server line
 * included: guest tools may have been written against it): no reason phrase, keep-alive.
 */
static long respond(const struct response *r, uint8_t **out, size_t *out_len, long ret)
{
	char head[512];
	int n = snprintf(head, sizeof(head),
	                 "HTTP/1.%c %d \r\nServer: Firecracker API\r\n"
	                 "Connection: keep-alive\r\n%s",
	                 r->http10 ? '0' : '1', r->code, r->allow ? "Allow: GET, PUT\r\n" : "");
	size_t xlen = r->xname.len ? r->xname.len + strlen(r->xvalue) + 4 : 0;
	char tail[128];
	int m = snprintf(tail, sizeof(tail), "Content-Type: %s\r\nContent-Length: %zu\r\n\r\n",
	                 r->json ? "application/json" : "text/plain", r->body_len);
	uint8_t *p = malloc((size_t)n + xlen + (size_t)m + r->body_len);

	*out = p;
	*out_len = 0;
	if (!p)
		return -ENOMEM;
	memcpy(p, head, (size_t)n), p += n;
	if (xlen) {
		memcpy(p, r->xname.p, r->xname.len), p += r->xname.len;
		p += sprintf((char *)p, ": %s\r\n", r->xvalue);
	}
	memcpy(p, tail, (size_t)m), p += m;
	if (r->body_len)
		memcpy(p, r->body, r->body_len), p += r->body_len;
	*out_len = (size_t)(p - *out);
	return ret;
}

static long respond_text(int code, bool http10, const char *body, size_t len, uint8_t **out,
                         size_t *out_len, long ret)
{
	struct response r = { .code = code, .http10 = http10, .body = body, .body_len = len };

	return respond(&r, out, out_len, ret);
}

/*
 * What Firecracker answers a request it could not parse (dumbo's Endpoint): HTTP/1.1 and
 * micro_http's default Content-Type, application/json, whatever the body says.
 */
static long respond_parse_error(int code, const char *body, size_t len, uint8_t **out,
                                size_t *out_len, long ret)
{
	struct response r = { .code = code, .json = true, .body = body, .body_len = len };

	return respond(&r, out, out_len, ret);
}

static long respond_fmt(int code, bool http10, uint8_t **out, size_t *out_len, long ret,
                        const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static long respond_fmt(int code, bool http10, uint8_t **out, size_t *out_len, long ret,
                        const char *fmt, ...)
{
	char *body = NULL;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&body, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -ENOMEM;
	ret = respond_text(code, http10, body, (size_t)n, out, out_len, ret);
	free(body);
	return ret;
}

/* --- parsing (micro_http's rules and messages) ------------------------------------------ */

struct parse_error {
	int code;
	char msg[MMDS_HTTP_MAX_REQUEST + 96];
};

static bool fail(struct parse_error *e, int code, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static bool fail(struct parse_error *e, int code, const char *fmt, ...)
{
	va_list ap;

	e->code = code;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	return false;
}

/* One header line into @q (Accept) or a refusal; names and values as micro_http takes them. */
static bool parse_header(struct request *q, struct slice line, struct parse_error *e)
{
	struct slice name, value, key, v;

	if (!split_header(line, &name, &value))
		return fail(e, 400, "Header is incorrectly formatted. Key: %.*s", (int)name.len,
		            name.p);
	key = trim(name);
	v = trim(value);
	if (eq_nocase(key, "content-length")) {
		uint32_t n;
		if (!parse_u32(v, &n))
			return fail(e, 400, "Invalid value. Key:%.*s; Value:%.*s", (int)name.len,
			            name.p, (int)value.len, value.p);
	} else if (eq_nocase(key, "accept")) {
		/* Anything but these two leaves the default, text/plain. */
		if (eq(v, "application/json"))
			q->accept_json = true;
		else if (eq(v, "text/plain"))
			q->accept_json = false;
	} else if (eq_nocase(key, "accept-encoding")) {
		bool identity = find(v.p, v.len, "identity") != NULL;
		struct slice rest = v, piece;
		const char *comma;
		if (!v.len)
			return fail(e, 400, MSG_INVALID_REQUEST);
		do {
			comma = memchr(rest.p, ',', rest.len);
			piece = (struct slice){ rest.p,
				                comma ? (size_t)(comma - rest.p) : rest.len };
			if (eq(trim(piece), "identity;q=0") ||
			    (eq(trim(piece), "*;q=0") && !identity))
				return fail(e, 400,
				            "Invalid value. Key:Accept-Encoding; Value:%.*s",
				            (int)piece.len, piece.p);
			if (comma)
				rest = (struct slice){ comma + 1, rest.len - piece.len - 1 };
		} while (comma);
	}
	/* content-type, transfer-encoding, expect, server: a bad value is ignored, as there. */
	return true;
}

/* The request's head (up to its blank line) into @q, or the answer to give in @e. */
static bool parse_head(const char *p, size_t len, struct request *q, struct parse_error *e)
{
	const char *crlf = find(p, len, "\r\n"), *sp, *hdr;
	struct slice line, rest, method;

	memset(q, 0, sizeof(*q));
	if (!crlf || (size_t)(crlf - p) < REQUEST_LINE_MIN)
		return fail(e, 400, MSG_INVALID_REQUEST);
	line = (struct slice){ p, (size_t)(crlf - p) };
	sp = memchr(line.p, ' ', line.len);
	if (!sp)
		return fail(e, 400, MSG_INVALID_REQUEST);
	method = (struct slice){ line.p, (size_t)(sp - line.p) };
	rest = (struct slice){ sp + 1, line.len - method.len - 1 };
	sp = memchr(rest.p, ' ', rest.len);
	if (!sp)
		return fail(e, 400, MSG_INVALID_REQUEST);
	q->uri = (struct slice){ rest.p, (size_t)(sp - rest.p) };
	rest = (struct slice){ sp + 1, rest.len - q->uri.len - 1 };
	if (eq(method, "GET"))
		q->method = GET;
	else if (eq(method, "PUT"))
		q->method = PUT;
	else if (eq(method, "PATCH"))
		q->method = PATCH;
	else if (eq(method, "DELETE"))
		q->method = DELETE; /* micro_http parses it: the MMDS answers 405 */
	else
		return fail(e, 501, "Unsupported HTTP method.");
	if (!q->uri.len)
		return fail(e, 400, "Empty URI not allowed.");
	if (!utf8_valid(q->uri.p, q->uri.len))
		return fail(e, 400, "Cannot parse URI as UTF-8.");
	if (eq(rest, "HTTP/1.0"))
		q->http10 = true;
	else if (!eq(rest, "HTTP/1.1"))
		return fail(e, 501, "Unsupported HTTP version.");
	hdr = find(crlf, len - (size_t)(crlf - p), "\r\n\r\n");
	if (!hdr)
		return fail(e, 400, MSG_INVALID_REQUEST);
	if (hdr == crlf)
		return true; /* no header lines */
	q->head = (struct slice){ crlf + 2, (size_t)(hdr - crlf - 2) };
	q->has_head_lines = true;
	if (!utf8_valid(q->head.p, q->head.len))
		return fail(e, 400, MSG_INVALID_REQUEST);
	rest = q->head;
	for (bool more = true; next_line(&rest, &line, &more);) {
		if (!line.len)
			break;
		if (!parse_header(q, line, e))
			return false;
	}
	return true;
}

/*
 * The framing, before and whatever the parse says: the body's length (the last
 * Content-Length that is a number, as micro_http keeps the last) and whether it is chunked.
 */
static void frame(const char *p, size_t len, uint32_t *body, bool *chunked)
{
	struct slice rest = { p, len }, line, name, value;
	bool more = true;

	*body = 0;
	*chunked = false;
	next_line(&rest, &line, &more); /* the request line */
	while (next_line(&rest, &line, &more) && line.len) {
		if (!split_header(line, &name, &value))
			continue;
		if (eq_nocase(trim(name), "content-length"))
			parse_u32(trim(value), body);
		else if (eq_nocase(trim(name), "transfer-encoding") && eq(trim(value), "chunked"))
			*chunked = true;
	}
}

/* The value of the last header named one of @names (any case): Firecracker's custom headers. */
static bool header(const struct request *q, const char *const *names, struct slice *name,
                   struct slice *value)
{
	struct slice rest = q->head, line, n, v;
	bool more = q->has_head_lines, found = false;

	while (next_line(&rest, &line, &more) && line.len) {
		if (!split_header(line, &n, &v))
			continue;
		for (const char *const *x = names; *x; x++)
			if (eq_nocase(trim(n), *x)) {
				*name = trim(n);
				*value = trim(v);
				found = true;
			}
	}
	return found;
}

/* Firecracker's sanitize_uri(): every run of '/' made one. Into @out (@len bytes at most). */
static size_t sanitize(struct slice path, char *out)
{
	size_t n = 0;

	for (size_t i = 0; i < path.len; i++)
		if (path.p[i] != '/' || !n || out[n - 1] != '/')
			out[n++] = path.p[i];
	return n;
}

/* micro_http's get_abs_path(): the path of "http://host/path" or "/path"; else empty. */
static struct slice abs_path(struct slice uri)
{
	static const char scheme[] = "http://";
	const char *slash;

	if (uri.len >= strlen(scheme) && !memcmp(uri.p, scheme, strlen(scheme))) {
		uri.p += strlen(scheme);
		uri.len -= strlen(scheme);
		slash = memchr(uri.p, '/', uri.len);
		return slash ? (struct slice){ slash, uri.len - (size_t)(slash - uri.p) }
		             : (struct slice){ uri.p, 0 };
	}
	return uri.len && uri.p[0] == '/' ? uri : (struct slice){ uri.p, 0 };
}

/* --- the MMDS's answers (Firecracker's mod.rs) ------------------------------------------ */

static const char *const token_names[] = { "x-metadata-token", "x-aws-ec2-metadata-token", NULL };
static const char *const ttl_names[] = { "x-metadata-token-ttl-seconds",
	                                 "x-aws-ec2-metadata-token-ttl-seconds", NULL };
static const char *const forwarded_names[] = { "x-forwarded-for", NULL };

static long answer_get(struct mmds *m, const struct request *q, struct slice path, uint8_t **out,
                       size_t *out_len, long ret)
{
	struct slice name, token;
	char clean[MMDS_HTTP_MAX_REQUEST];
	size_t n;
	json_t *v;
	char *body;
	int r;

	if (!header(q, token_names, &name, &token)) {
		m->stats.no_token++;
		if (m->version == MMDS_V2)
			return respond_text(401, q->http10, MSG_NO_TOKEN, strlen(MSG_NO_TOKEN), out,
			                    out_len, ret);
	} else if (!mmds_token_valid(m, token.p, token.len)) {
		m->stats.invalid_token++;
		/* V1 takes any token, or none: only counted. */
		if (m->version == MMDS_V2)
			return respond_text(401, q->http10, "MMDS token not valid.", 21, out,
			                    out_len, ret);
	}
	n = sanitize(path, clean);
	v = mmds_lookup(m, clean, n);
	if (!v)
		return respond_fmt(404, q->http10, out, out_len, ret, "Resource not found: %.*s.",
		                   (int)path.len, path.p);
	/* EC2's IMDS ignores Accept: with imds_compat, text always (the Content-Type not). */
	r = mmds_render(v, m->imds_compat || !q->accept_json, &body, &n);
	if (r == -ENOTSUP)
		return respond_text(501, q->http10, MSG_UNSUPPORTED_TYPE,
		                    strlen(MSG_UNSUPPORTED_TYPE), out, out_len, ret);
	if (r)
		return r;
	struct response resp = { .code = 200,
		                 .http10 = q->http10,
		                 .json = q->accept_json,
		                 .body = body,
		                 .body_len = n };
	ret = respond(&resp, out, out_len, ret);
	free(body);
	return ret;
}

static long answer_put(struct mmds *m, const struct request *q, struct slice path, uint8_t **out,
                       size_t *out_len, long ret)
{
	struct slice name, value;
	char clean[MMDS_HTTP_MAX_REQUEST], token[MMDS_TOKEN_TEXT + 1];
	uint32_t ttl;
	size_t n;

	if (header(q, forwarded_names, &name, &value))
		return respond_fmt(400, q->http10, out, out_len, ret,
		                   "Invalid header. Reason: Unsupported header name. Key: %.*s",
		                   (int)name.len, name.p);
	n = sanitize(path, clean);
	if (!eq((struct slice){ clean, n }, MMDS_TOKEN_PATH))
		return respond_fmt(404, q->http10, out, out_len, ret, "Resource not found: %.*s.",
		                   (int)path.len, path.p);
	if (!header(q, ttl_names, &name, &value))
		return respond_text(400, q->http10, MSG_NO_TTL, strlen(MSG_NO_TTL), out, out_len,
		                    ret);
	if (!parse_u32(value, &ttl))
		return respond_fmt(400, q->http10, out, out_len, ret,
		                   "Invalid header. Reason: Invalid value. Key:%.*s; Value:%.*s",
		                   (int)name.len, name.p, (int)value.len, value.p);
	if (ttl < MMDS_TOKEN_TTL_MIN || ttl > MMDS_TOKEN_TTL_MAX)
		return respond_fmt(400, q->http10, out, out_len, ret,
		                   "Invalid time to live value provided for token: %u. Please "
		                   "provide a value between %u and %u.",
		                   ttl, MMDS_TOKEN_TTL_MIN, MMDS_TOKEN_TTL_MAX);
	if (mmds_token_new(m, ttl, token))
		return respond_text(500, q->http10, "Failed to encrypt token.", 24, out, out_len,
		                    ret);
	struct response r = { .code = 200,
		              .http10 = q->http10,
		              .xname = name,
		              .body = token,
		              .body_len = strlen(token) };
	snprintf(r.xvalue, sizeof(r.xvalue), "%u", ttl);
	return respond(&r, out, out_len, ret);
}

static long answer(struct mmds *m, const struct request *q, uint8_t **out, size_t *out_len,
                   long ret)
{
	struct slice path = abs_path(q->uri);
	struct response r = { .code = 405,
		              .http10 = q->http10,
		              .allow = true,
		              .body = "Not allowed HTTP method.",
		              .body_len = 24 };

	if (!path.len)
		return respond_text(400, q->http10, "Invalid URI.", 12, out, out_len, ret);
	if (q->method == GET)
		return answer_get(m, q, path, out, out_len, ret);
	if (q->method == PUT)
		return answer_put(m, q, path, out, out_len, ret);
	return respond(&r, out, out_len, ret);
}

/* Where the head ends: after the first "\n\n" or "\n\r\n" (Firecracker's search); 0: not yet. */
static size_t head_end(const uint8_t *in, size_t len)
{
	for (size_t i = 0; i + 1 < len; i++) {
		if (in[i] != '\n')
			continue;
		if (in[i + 1] == '\n')
			return i + 2;
		if (i + 2 < len && in[i + 1] == '\r' && in[i + 2] == '\n')
			return i + 3;
	}
	return 0;
}

long mmds_serve(void *ctx, const uint8_t *in, size_t len, uint8_t **out, size_t *out_len)
{
	struct mmds *m = ctx;
	size_t head = head_end(in, len < MMDS_HTTP_MAX_REQUEST ? len : MMDS_HTTP_MAX_REQUEST);
	struct parse_error *e;
	struct request q;
	uint32_t body;
	bool chunked, ok;
	long r;

	*out = NULL;
	*out_len = 0;
	if (!head) {
		if (len < MMDS_HTTP_MAX_REQUEST)
			return 0;
		m->stats.refused++;
		return -EMSGSIZE;
	}
	frame((const char *)in, head, &body, &chunked);
	if (chunked || body) {
		/*
		 * Firecracker's MMDS answers any request with a body 400 at once; waiting for
		 * the body would only hold the guest's bytes. Where the next request starts is
		 * not trusted to a guest's length: answered, then closed.
		 */
		m->stats.refused++;
		r = respond_parse_error(400, MSG_INVALID_REQUEST, strlen(MSG_INVALID_REQUEST), out,
		                        out_len, -EPROTO);
		return r == -ENOMEM ? r : -EPROTO;
	}
	e = malloc(sizeof(*e));
	if (!e)
		return -ENOMEM;
	ok = parse_head((const char *)in, head, &q, e);
	m->stats.requests++;
	if (ok)
		r = answer(m, &q, out, out_len, (long)head);
	else
		r = respond_parse_error(e->code, e->msg, strlen(e->msg), out, out_len, (long)head);
	free(e);
	return r;
}
