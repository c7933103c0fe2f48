/*
 * Firecracker's REST API: HTTP/1.1 on a Unix socket, served by libevent's evhttp on the one
 * event loop (no thread, no HTTP parser of flint's own). Before InstanceStart the requests
 * build the VM's config, kept as the JSON document a --config-file would hold and checked
 * by the same section functions (vmm/config/sections.h), so the file and the API share one
 * parser and one set of messages; InstanceStart parses that document as a config file is
 * parsed and starts the VM on the same loop.
 *
 * Answers follow Firecracker: 204 with no body on success, 200 with JSON for GETs, 400 with
 * {"fault_message": "..."} for every error, including unknown paths and methods.
 *
 * Threading: main thread only (the loop's).
 */
#ifndef FLINT_API_H
#define FLINT_API_H

#include "vmm/cli.h"
#include "vmm/vm_config.h"

#include <stddef.h>

struct vmm;
struct api;
struct mmds;

/* The Firecracker release flint follows (GET /version, GET /'s vmm_version). */
#define API_FIRECRACKER_VERSION CLI_FIRECRACKER_VERSION
#define API_DEFAULT_MAX_PAYLOAD CLI_DEFAULT_MAX_PAYLOAD

struct api_params {
	const char *sock_path;
	const char *id;          /* the instance id (--id), "anonymous-instance" when NULL */
	size_t max_payload;      /* request bodies larger than this are refused */
	struct vmm *vmm;         /* the VM lifecycle: its loop, vmm_start() */
	struct vm_config *cfg;   /* where InstanceStart puts the config it starts; the caller
	                          * frees it with config_free() after vmm_free() */
	bool started;            /* the VM runs already (--config-file with --api-sock) */
	const char *config_path; /* then its config file, for GET /vm/config */
	/* The jailer's times, for the metrics' api_server section (as Firecracker reports them). */
	struct cli_time start_time, start_time_cpu, parent_cpu_time;
	/* Called on the parsed config before InstanceStart starts it: 0 or an exit code. */
	int (*prepare)(void *ctx, struct vm_config *cfg);
	void *prepare_ctx;
	struct mmds *mmds; /* PUT, PATCH and GET /mmds: the process's store (vmm/mmds/mmds.h) */
};

/*
 * Opens the socket (mode 0600; a stale socket file is replaced, one a live process serves
 * is refused, as is any other kind of file) and serves it on @p->vmm's loop. Returns 0, or
 * -errno with the reason logged.
 */
int api_open(struct api **out, const struct api_params *p);
/* Stops serving and removes the socket file. Before vmm_free(): it frees evhttp's events. */
void api_close(struct api *a);

#endif
