/*
 * The MMDS through the API: PUT /mmds/config before the start (checked as the config's
 * mmds-config section, against the interfaces PUT so far, and kept in the config document
 * as Firecracker's GET /vm/config shows it), and PUT, PATCH and GET /mmds at any time,
 * with Firecracker's codes and messages (its rpc_interface.rs and parsed_request.rs).
 */
#include "vmm/api/http.h"
#include "vmm/base/log.h"
#include "vmm/config/config.h"
#include "vmm/config/sections.h"
#include "vmm/mmds/mmds.h"

#include <errno.h>
#include <event2/http.h>
#include <stdlib.h>
#include <string.h>

#define TOO_LARGE       "MMDS limit exceeded error: The MMDS patch request doesn't fit."
#define NOT_INITIALIZED "MMDS error: The MMDS data store is not initialized."

/* What a store call's error says; 413 for the limit, as Firecracker. */
static void reply_store_error(struct api_request *r, int e)
{
	if (e == -E2BIG)
		api_reply_too_large(r, TOO_LARGE);
	else if (e == -ENODATA)
		api_reply_fault(r, NOT_INITIALIZED);
	else
		api_reply_fault(r, "%s", e == -ENOMEM ? "out of memory" : strerror(-e));
}

static bool has_store(struct api *a, struct api_request *r)
{
	if (a->mmds)
		return true;
	api_reply_fault(r, "MMDS error: this flint has no MMDS store.");
	return false;
}

/* Never PUT (or PUT null): "{}", as Firecracker answers. */
void api_get_mmds(struct api *a, struct api_request *r)
{
	json_t *v;
	char *text;

	if (!has_store(a, r))
		return;
	v = mmds_get(a->mmds);
	text = json_is_null(v) ? strdup("{}") : mmds_json_dump(v, NULL);
	json_decref(v);
	if (!text) {
		api_reply_fault(r, "out of memory");
		return;
	}
	api_reply_text(r, text);
	free(text);
}

void api_put_mmds(struct api *a, struct api_request *r)
{
	int e;

	if (!has_store(a, r))
		return;
	e = mmds_put(a->mmds, r->body);
	if (e)
		reply_store_error(r, e);
	else
		api_reply_empty(r);
}

void api_patch_mmds(struct api *a, struct api_request *r)
{
	int e;

	if (!has_store(a, r))
		return;
	e = mmds_patch(a->mmds, r->body);
	if (e)
		reply_store_error(r, e);
	else
		api_reply_empty(r);
}

void api_put_mmds_config(struct api *a, struct api_request *r)
{
	struct vm_config scratch;
	char err[1024];
	struct cfg_ctx c = { r->name, err, sizeof(err), NULL };
	json_t *shown = NULL;
	int e;

	config_init(&scratch);
	/* The interfaces so far, read as InstanceStart will read them: their ids. */
	e = cfg_net(&c, json_object_get(a->doc, "network-interfaces"), "network-interfaces",
	            &scratch);
	if (!e)
		e = cfg_mmds(&c, r->body, "", &scratch);
	if (!e) {
		shown = config_mmds_json(&scratch.mmds);
		e = shown && !json_object_set_new(a->doc, "mmds-config", shown) ? 0 : -ENOMEM;
	}
	if (e) {
		api_reply_fault(r, "%s", e == -ENOMEM ? "out of memory" : err);
	} else {
		/* Firecracker's word on V1 (the default): a warning and a Deprecation header. */
		if (scratch.mmds.version == MMDS_V1) {
			log_warn("API: %s: V1 is deprecated. Use V2 instead.", r->name);
			evhttp_add_header(evhttp_request_get_output_headers(r->req), "Deprecation",
			                  "true");
		}
		api_reply_empty(r);
	}
	config_free(&scratch);
}
