/* The API's socket and HTTP: evhttp on the loop's event_base, requests parsed and answered. */
#include "vmm/api/http.h"
#include "vmm/api/metrics.h"
#include "vmm/base/log.h"
#include "vmm/base/loop.h"
#include "vmm/vmm.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/*
 * evhttp's own cap on a body (at least twice the API's limit); between the API's limit and
 * this, the API answers as Firecracker does (400 and the sizes), beyond it evhttp answers
 * 413 and closes.
 */
#define HTTP_BODY_HARD_MAX (1u << 20)
#define HTTP_HEADERS_MAX   8192
#define HTTP_TIMEOUT_S     10 /* a client that stalls mid-request is dropped */

/* --- answers ---------------------------------------------------------------------------- */

static void send_json(struct evhttp_request *req, int code, const char *reason, const char *text)
{
	struct evbuffer *b = evbuffer_new();

	if (!b) {
		evhttp_send_error(req, 500, NULL);
		return;
	}
	evbuffer_add(b, text, strlen(text));
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
	                  "application/json");
	evhttp_send_reply(req, code, reason, b);
	evbuffer_free(b);
}

void api_reply_empty(struct api_request *r)
{
	r->status = 204;
	evhttp_send_reply(r->req, 204, "No Content", NULL);
}

void api_reply_json(struct api_request *r, json_t *body)
{
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;

	json_decref(body);
	if (!text) {
		api_reply_fault(r, "out of memory");
		return;
	}
	r->status = 200;
	send_json(r->req, 200, "OK", text);
	free(text);
}

void api_reply_text(struct api_request *r, const char *json_text)
{
	r->status = 200;
	send_json(r->req, 200, "OK", json_text);
}

static void fault_text(struct evhttp_request *req, int code, const char *reason, const char *msg)
{
	json_t *o = json_pack("{s:s}", "fault_message", msg);
	char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;

	json_decref(o);
	if (text)
		send_json(req, code, reason, text);
	else
		evhttp_send_error(req, 500, NULL);
	free(text);
}

static void vfault(struct api_request *r, int code, const char *reason, const char *fmt, va_list ap)
{
	char msg[1024];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	log_info("API: %s: %d: %s", r->name, code, msg);
	r->status = code;
	fault_text(r->req, code, reason, msg);
}

void api_reply_fault(struct api_request *r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfault(r, 400, "Bad Request", fmt, ap);
	va_end(ap);
}

void api_reply_too_large(struct api_request *r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfault(r, 413, "Payload Too Large", fmt, ap);
	va_end(ap);
}

/* --- requests --------------------------------------------------------------------------- */

static const char *method_name(int m)
{
	static const struct {
		int m;
		const char *name;
	} names[] = { { EVHTTP_REQ_GET, "GET" },         { EVHTTP_REQ_PUT, "PUT" },
		      { EVHTTP_REQ_PATCH, "PATCH" },     { EVHTTP_REQ_DELETE, "DELETE" },
		      { EVHTTP_REQ_POST, "POST" },       { EVHTTP_REQ_HEAD, "HEAD" },
		      { EVHTTP_REQ_OPTIONS, "OPTIONS" }, { EVHTTP_REQ_TRACE, "TRACE" },
		      { EVHTTP_REQ_CONNECT, "CONNECT" } };

	for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (names[i].m == m)
			return names[i].name;
	return "?";
}

/* Splits @path ("/drives/rootfs") into @r->tok; false when it has too many parts. */
static bool split_path(struct api_request *r, char *path)
{
	char *save = NULL;

	for (char *t = strtok_r(path, "/", &save); t; t = strtok_r(NULL, "/", &save)) {
		if (r->ntok == API_PATH_TOKENS)
			return false;
		r->tok[r->ntok++] = t;
	}
	return true;
}

/* The body as JSON: 0 (r->body NULL when empty), or -1 with the answer sent. */
static int read_body(struct api *a, struct api_request *r)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(r->req);
	size_t len = evbuffer_get_length(in);
	json_error_t jerr;
	char *text;

	if (!len)
		return 0;
	if (len > a->max_payload) {
		api_reply_fault(r,
		                "Request payload with size %zu is larger than the limit of %zu "
		                "allowed by server.",
		                len, a->max_payload);
		return -1;
	}
	text = malloc(len + 1);
	if (!text) {
		api_reply_fault(r, "out of memory");
		return -1;
	}
	evbuffer_copyout(in, text, len);
	text[len] = 0;
	/* The MMDS takes any JSON value (Firecracker's serde Value), the rest objects. */
	r->body = json_loadb(text, len,
	                     JSON_REJECT_DUPLICATES |
	                             (r->ntok && !strcmp(r->tok[0], "mmds") ? JSON_DECODE_ANY : 0),
	                     &jerr);
	free(text);
	if (!r->body) {
		api_reply_fault(r,
		                "An error occurred when deserializing the json body of a request: "
		                "%s at line %d column %d.",
		                jerr.text, jerr.line, jerr.column);
		return -1;
	}
	return 0;
}

static void on_request(struct evhttp_request *req, void *arg)
{
	struct api *a = arg;
	struct api_request r = { .req = req, .method = evhttp_request_get_command(req) };
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *p = uri ? evhttp_uri_get_path(uri) : NULL;
	char path[256];

	r.method_name = method_name(r.method);
	snprintf(r.name, sizeof(r.name), "%s %s", r.method_name, p ? MSG_ESC(p) : "?");
	log_debug("API: %s", r.name);
	if (!p || strlen(p) >= sizeof(path)) {
		api_reply_fault(&r, "Invalid request method and/or path: %s %s.", r.method_name,
		                p ? MSG_ESC(p) : "");
		return;
	}
	strcpy(path, p);
	if (!split_path(&r, path)) {
		api_reply_fault(&r, "Invalid request method and/or path: %s %s.", r.method_name,
		                MSG_ESC(p));
		return;
	}
	if (read_body(a, &r) == 0)
		api_resource(a, &r);
	api_count(a, &r);
	json_decref(r.body);
}

/* --- the socket ------------------------------------------------------------------------- */

/*
 * A socket file left at @path: stale (nobody accepts) is removed; live, or not a socket
 * at all, is refused. 0 or -errno with @why.
 */
static int clear_path(const char *path, const struct sockaddr_un *addr, char *why, size_t len)
{
	struct stat st;
	int fd, r;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : (snprintf(why, len, "%s", strerror(errno)), -errno);
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(why, len, "exists and is not a socket");
		return -EEXIST;
	}
	/* Non-blocking: a live server with a full backlog must not hold flint up. */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		snprintf(why, len, "socket: %s", strerror(errno));
		return -errno;
	}
	r = connect(fd, (const struct sockaddr *)addr, sizeof(*addr)) == 0 ? 0 : errno;
	close(fd);
	if (r == 0 || r == EAGAIN || r == EINPROGRESS) {
		snprintf(why, len, "another process is serving it");
		return -EADDRINUSE;
	}
	if (r != ECONNREFUSED) { /* only a refusal says nobody listens: else leave it be */
		snprintf(why, len, "cannot tell whether a process serves it: %s", strerror(r));
		return -r;
	}
	if (unlink(path) < 0 && errno != ENOENT) {
		snprintf(why, len, "cannot remove the stale socket: %s", strerror(errno));
		return -errno;
	}
	return 0;
}

static int listen_at(const char *path, char *why, size_t len)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int fd, r;

	if (!*path || strlen(path) >= sizeof(addr.sun_path)) {
		snprintf(why, len, "a socket path must be 1-%zu bytes", sizeof(addr.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	strcpy(addr.sun_path, path);
	r = clear_path(path, &addr, why, len);
	if (r)
		return r;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	/* The mode the file gets at bind(): nobody else may even connect meanwhile. */
	if (fd < 0 || fchmod(fd, 0600) < 0 ||
	    bind(fd, (const struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(fd, 128) < 0) {
		r = -errno;
		snprintf(why, len, "%s", strerror(errno));
		if (fd >= 0)
			close(fd);
		return r;
	}
	return fd;
}

static int serve(struct api *a, int fd)
{
	if (a->http)
		return -EBUSY;
	a->http = evhttp_new(loop_event_base(vmm_loop(a->vmm)));
	if (!a->http)
		return -ENOMEM;
	evhttp_set_max_body_size(a->http, a->max_payload < HTTP_BODY_HARD_MAX / 2
	                                          ? HTTP_BODY_HARD_MAX
	                                          : 2 * (ev_ssize_t)a->max_payload);
	evhttp_set_max_headers_size(a->http, HTTP_HEADERS_MAX);
	evhttp_set_timeout(a->http, HTTP_TIMEOUT_S);
	/* Every method reaches flint, so that an unknown one gets Firecracker's 400, not 501. */
	evhttp_set_allowed_methods(a->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
	                                            EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
	                                            EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
	                                            EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
	evhttp_set_default_content_type(a->http, "application/json");
	evhttp_set_gencb(a->http, on_request, a);
	if (!evhttp_accept_socket_with_handle(a->http, fd))
		return -EIO;
	return 0;
}

/* Serves @fd, which is evhttp's from then on; closed here when that fails. */
static int serve_or_close(struct api *a, int fd)
{
	int r = serve(a, fd);

	if (r)
		close(fd);
	return r;
}

int api_open(struct api **out, const struct api_params *p)
{
	struct api *a = calloc(1, sizeof(*a));
	char why[160] = "";
	int fd, r = -ENOMEM;

	*out = NULL;
	if (!a)
		goto fail;
	/* Already checked by config_load(): read again only to be shown by GET /vm/config. */
	a->doc = p->config_path ? json_load_file(p->config_path, 0, NULL) : json_object();
	if (!a->doc)
		goto fail;
	snprintf(a->id, sizeof(a->id), "%s", p->id ? p->id : "anonymous-instance");
	a->max_payload = p->max_payload ? p->max_payload : API_DEFAULT_MAX_PAYLOAD;
	a->vmm = p->vmm;
	a->cfg = p->cfg;
	a->prepare = p->prepare;
	a->prepare_ctx = p->prepare_ctx;
	a->mmds = p->mmds;
	a->state = p->started ? API_RUNNING : API_NOT_STARTED;
	r = api_metrics_open(a, p);
	if (r)
		goto fail;
	r = -ENOMEM;
	fd = listen_at(p->sock_path, why, sizeof(why));
	if (fd < 0) {
		log_error("--api-sock %s: %s", MSG_ESC(p->sock_path), why);
		r = fd;
		goto fail;
	}
	a->sock_path = strdup(p->sock_path);
	if (stat(p->sock_path, &a->sock_st) < 0)
		memset(&a->sock_st, 0, sizeof(a->sock_st));
	if (!a->sock_path) {
		close(fd);
		unlink(p->sock_path);
		goto fail;
	}
	r = serve_or_close(a, fd);
	if (r) {
		log_error("--api-sock %s: cannot serve it: %s", MSG_ESC(p->sock_path),
		          strerror(-r));
		goto fail;
	}
	log_info("API: serving %s", MSG_ESC(p->sock_path));
	*out = a;
	return 0;
fail:
	api_close(a);
	return r;
}

void api_close(struct api *a)
{
	struct stat st;

	if (!a)
		return;
	if (a->http)
		evhttp_free(a->http); /* closes the listening socket and every connection */
	/* Ours only: a newer flint may have replaced a file it took for stale. */
	if (a->sock_path && stat(a->sock_path, &st) == 0 && st.st_dev == a->sock_st.st_dev &&
	    st.st_ino == a->sock_st.st_ino && unlink(a->sock_path) < 0)
		/* With --uid flint may no longer write to the socket's directory. */
		log_warn("--api-sock %s: cannot remove it: %s", MSG_ESC(a->sock_path),
		         strerror(errno));
	api_metrics_close(a);
	free(a->sock_path);
	json_decref(a->doc);
	free(a);
}
