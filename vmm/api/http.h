/* Inside the API: the server's state and the request as the resources see it. */
#ifndef FLINT_API_HTTP_H
#define FLINT_API_HTTP_H

#include "vmm/api/api.h"

#include <jansson.h>
#include <stdbool.h>
#include <sys/stat.h>

struct evhttp;
struct evhttp_request;
struct api_counts;

enum api_state { API_NOT_STARTED, API_RUNNING, API_PAUSED };

struct api {
	struct evhttp *http;
	char *sock_path;     /* removed on close; NULL when not ours (yet) */
	struct stat sock_st; /* the socket file as bound: only that one is removed */
	char id[65];
	size_t max_payload;
	struct vmm *vmm;
	struct vm_config *cfg;
	int (*prepare)(void *ctx, struct vm_config *cfg);
	void *prepare_ctx;
	struct mmds *mmds;
	json_t *doc; /* the config so far, as a --config-file would hold it */
	enum api_state state;
	bool start_failed;
	struct api_counts *counts; /* requests, for the metrics (vmm/api/metrics.h) */
};

#define API_PATH_TOKENS 4

struct api_request {
	struct evhttp_request *req;
	int method; /* enum evhttp_cmd_type */
	const char *method_name;
	const char *tok[API_PATH_TOKENS]; /* the path split at '/', tok[0] the resource */
	unsigned ntok;
	json_t *body;   /* NULL: no body */
	char name[128]; /* "PUT /drives/rootfs": prefixes config messages */
	int status;     /* the answer's, once sent: 200, 204, 400 */
};

/* Answers @r->req: 204, 200 with @body (consumed), or 400 with a fault message. */
void api_reply_empty(struct api_request *r);
void api_reply_json(struct api_request *r, json_t *body);
void api_reply_fault(struct api_request *r, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
/* 413 with a fault message: Firecracker's answer to an MMDS change beyond its limit. */
void api_reply_too_large(struct api_request *r, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
/* 200 with @json_text as it is (GET /mmds: written as Firecracker writes JSON). */
void api_reply_text(struct api_request *r, const char *json_text);

/* /mmds and /mmds/config (mmds.c). */
void api_get_mmds(struct api *a, struct api_request *r);
void api_put_mmds(struct api *a, struct api_request *r);
void api_patch_mmds(struct api *a, struct api_request *r);
/* PUT /mmds/config, before the start (resources.c checks that). */
void api_put_mmds_config(struct api *a, struct api_request *r);

/* Serves one parsed request (resources.c). */
void api_resource(struct api *a, struct api_request *r);

/*
 * PATCH /drives/{id} and /network-interfaces/{id} (devices.c): Firecracker's updates of
 * the running VM's devices, refused before InstanceStart.
 */
void api_patch_drive(struct api *a, struct api_request *r);
void api_patch_net(struct api *a, struct api_request *r);
/* Firecracker's rule for an {id} in a path: false when it failed, @r answered then. */
bool api_id_valid(struct api_request *r, const char *id);

/* Firecracker's words for a resource asked for at the wrong time. */
#define NOT_AFTER_START  "The requested operation is not supported after starting the microVM."
#define NOT_BEFORE_START "The requested operation is not supported before starting the microVM."

#endif
