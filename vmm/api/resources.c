/*
 * The API's resources. Before InstanceStart each PUT/PATCH is checked by its config
 * section's function (the one the config file uses) and then stored in the JSON document
 * of the config; InstanceStart parses the whole document as config_parse() parses a file.
 */
#include "vmm/api/http.h"
#include "vmm/api/metrics.h"
#include "vmm/base/log.h"
#include "vmm/config/config.h"
#include "vmm/config/sections.h"
#include "vmm/vmm.h"

#include <errno.h>
#include <event2/http.h>
#include <stdlib.h>
#include <string.h>

static bool is(const char *a, const char *b)
{
	return a && !strcmp(a, b);
}

/* Runs a section function on @v against a scratch config: its verdict, nothing kept. */
static bool check_section(struct api_request *r, cfg_section_fn *fn, json_t *v, const char *path)
{
	struct vm_config scratch;
	char err[1024];
	struct cfg_ctx c = { r->name, err, sizeof(err), NULL };
	int e;

	config_init(&scratch);
	e = fn(&c, v, path, &scratch);
	config_free(&scratch);
	if (e) {
		api_reply_fault(r, "%s", e == -ENOMEM ? "out of memory" : err);
		return false;
	}
	return true;
}

static bool before_start(struct api *a, struct api_request *r)
{
	if (a->state == API_NOT_STARTED && !a->start_failed)
		return true;
	api_reply_fault(r, NOT_AFTER_START);
	return false;
}

/* PUT of a whole section (boot-source, machine-config, vsock, entropy). */
static void put_section(struct api *a, struct api_request *r, const char *key, cfg_section_fn *fn)
{
	if (!before_start(a, r) || !check_section(r, fn, r->body, ""))
		return;
	json_object_set(a->doc, key, r->body);
	api_reply_empty(r);
}

/* PUT /logger: checked as the config's logger section, and in effect at once (as Firecracker). */
static void put_logger(struct api *a, struct api_request *r)
{
	struct vm_config scratch;
	char err[1024], why[160];
	struct cfg_ctx c = { r->name, err, sizeof(err), NULL };
	int e;

	if (!before_start(a, r))
		return;
	config_init(&scratch);
	e = cfg_logger(&c, r->body, "", &scratch);
	if (e) {
		api_reply_fault(r, "%s", e == -ENOMEM ? "out of memory" : err);
	} else if (scratch.logger.path && log_set_file(scratch.logger.path, why, sizeof(why))) {
		api_reply_fault(r, "Logger error: %s: %s", MSG_ESC(scratch.logger.path), why);
	} else {
		if (scratch.logger.has_level)
			log_set_level(scratch.logger.level);
		json_object_set(a->doc, "logger", r->body);
		api_reply_empty(r);
	}
	config_free(&scratch);
}

/* PATCH /machine-config: the stored keys updated by the body's, then checked as a whole. */
static void patch_machine(struct api *a, struct api_request *r)
{
	json_t *old = json_object_get(a->doc, "machine-config"), *merged;

	if (!before_start(a, r))
		return;
	if (!json_is_object(r->body)) {
		api_reply_fault(r, "%s: must be an object", r->name);
		return;
	}
	merged = old ? json_deep_copy(old)
	             : json_pack("{s:i,s:i}", "vcpu_count", 1, "mem_size_mib", 128);
	if (!merged || json_object_update(merged, r->body)) {
		json_decref(merged);
		api_reply_fault(r, "out of memory");
		return;
	}
	if (check_section(r, cfg_machine, merged, "")) {
		json_object_set(a->doc, "machine-config", merged);
		api_reply_empty(r);
	}
	json_decref(merged);
}

/*
 * PUT /drives/{id} and /network-interfaces/{id}: the item replaces the one with its id, or
 * joins the list; the new list is checked as the config file's list is (one root drive,
 * unique host devices and MACs, ...).
 */
static void put_item(struct api *a, struct api_request *r, const char *key, const char *id_key,
                     cfg_section_fn *fn)
{
	json_t *list, *id = json_object_get(r->body, id_key);
	size_t i, n;

	if (!before_start(a, r) || !api_id_valid(r, r->ntok == 2 ? r->tok[1] : NULL))
		return;
	if (json_is_string(id) && strcmp(json_string_value(id), r->tok[1])) {
		api_reply_fault(r, "The id from the path does not match the id from the body!");
		return;
	}
	list = json_object_get(a->doc, key);
	list = list ? json_copy(list) : json_array();
	if (!list) {
		api_reply_fault(r, "out of memory");
		return;
	}
	n = json_array_size(list);
	for (i = 0; i < n; i++)
		if (is(json_string_value(json_object_get(json_array_get(list, i), id_key)),
		       r->tok[1]))
			break;
	if (i < n ? json_array_set(list, i, r->body) : json_array_append(list, r->body)) {
		api_reply_fault(r, "out of memory");
	} else if (check_section(r, fn, list, key)) {
		json_object_set(a->doc, key, list);
		api_reply_empty(r);
	}
	json_decref(list);
}

/* --- GET -------------------------------------------------------------------------------- */

static const char *state_name(const struct api *a)
{
	return a->state == API_RUNNING  ? "Running"
	       : a->state == API_PAUSED ? "Paused"
	                                : "Not started";
}

static void get_instance(struct api *a, struct api_request *r)
{
	api_reply_json(r, json_pack("{s:s,s:s,s:s,s:s}", "id", a->id, "state", state_name(a),
	                            "vmm_version", API_FIRECRACKER_VERSION, "app_name", "flint"));
}

/* machine-config as Firecracker shows it: every key, defaults filled in. */
static void get_machine(struct api *a, struct api_request *r)
{
	json_t *m = json_pack("{s:i,s:i,s:b,s:b,s:s}", "vcpu_count", 1, "mem_size_mib", 128, "smt",
	                      0, "track_dirty_pages", 0, "huge_pages", "None");
	json_t *set = json_object_get(a->doc, "machine-config");

	if (m && set && json_object_update(m, set)) {
		json_decref(m);
		m = NULL;
	}
	api_reply_json(r, m);
}

/*
 * The config as a --config-file would hold it: save it, replay it with --config-file. A file
 * needs "drives", which the API does not: an empty list when none was PUT.
 */
static void get_vm_config(struct api *a, struct api_request *r)
{
	json_t *doc = json_deep_copy(a->doc);

	if (doc && !json_object_get(doc, "drives") &&
	    json_object_set_new(doc, "drives", json_array())) {
		json_decref(doc);
		doc = NULL;
	}
	api_reply_json(r, doc);
}

/* flint's own: the fault resolver's counters, once a VM runs. */
static void get_flint_iommu(struct api *a, struct api_request *r)
{
	if (a->state == API_NOT_STARTED)
		api_reply_fault(r, NOT_BEFORE_START);
	else
		api_get_iommu(a, r);
}

/* --- actions ---------------------------------------------------------------------------- */

/* InstanceStart: the document parsed as a config file is, then the VM built and started. */
static void instance_start(struct api *a, struct api_request *r)
{
	char *text, err[1024] = "";
	int code;

	if (!before_start(a, r))
		return;
	text = json_dumps(a->doc, JSON_COMPACT);
	if (!text) {
		api_reply_fault(r, "out of memory");
		return;
	}
	code = config_parse(text, "the API's config", a->cfg, err, sizeof(err));
	free(text);
	if (code) {
		api_reply_fault(r, "Start microvm error: %s", err);
		return;
	}
	api_metrics_before_start(a);
	log_capture_first_error(err, sizeof(err));
	code = a->prepare ? a->prepare(a->prepare_ctx, a->cfg) : 0;
	if (!code)
		code = vmm_start(a->vmm, a->cfg);
	log_capture_first_error(NULL, 0);
	if (code) {
		a->start_failed = true;
		api_reply_fault(r, "Start microvm error: %s",
		                *err ? err : "the VM could not start");
		return;
	}
	a->state = API_RUNNING;
	api_reply_empty(r);
}

static void put_actions(struct api *a, struct api_request *r)
{
	const char *type = json_string_value(json_object_get(r->body, "action_type"));

	if (!json_is_object(r->body) || !type) {
		api_reply_fault(r,
		                "An error occurred when deserializing the json body of a request: "
		                "missing field `action_type`.");
	} else if (is(type, "InstanceStart")) {
		instance_start(a, r);
	} else if (a->state == API_NOT_STARTED &&
	           (is(type, "SendCtrlAltDel") || is(type, "FlushMetrics"))) {
		api_reply_fault(r, NOT_BEFORE_START);
	} else if (is(type, "SendCtrlAltDel")) {
		int e = vmm_ctrl_alt_del(a->vmm);
		if (e)
			api_reply_fault(r, "%s",
			                e == -EBUSY ? "The guest has not read the last "
			                              "Ctrl-Alt-Del yet."
			                            : "No VM runs.");
		else
			api_reply_empty(r);
	} else if (is(type, "FlushMetrics")) {
		api_flush_metrics(a, r);
	} else {
		api_reply_fault(r,
		                "An error occurred when deserializing the json body of a request: "
		                "unknown variant `%s`, expected one of `FlushMetrics`, "
		                "`InstanceStart`, `SendCtrlAltDel`.",
		                MSG_ESC(type));
	}
}

/* --- routing ---------------------------------------------------------------------------- */

/* Firecracker resources flint does not serve yet: a named refusal, not "invalid path". */
static bool not_yet(struct api_request *r, const char *res)
{
	static const char *const names[] = { "balloon", "snapshot", "cpu-config", "serial",
		                             "pmem",    "hotplug",  NULL };

	for (unsigned i = 0; names[i]; i++)
		if (is(res, names[i])) {
			api_reply_fault(r,
			                "The requested operation is not supported: /%s is not "
			                "implemented by flint yet.",
			                res);
			return true;
		}
	return false;
}

static bool route_get(struct api *a, struct api_request *r, const char *res)
{
	if (r->ntok == 0)
		get_instance(a, r);
	else if (is(res, "version") && r->ntok == 1)
		api_reply_json(r,
		               json_pack("{s:s}", "firecracker_version", API_FIRECRACKER_VERSION));
	else if (is(res, "machine-config") && r->ntok == 1)
		get_machine(a, r);
	else if (is(res, "vm") && r->ntok == 2 && is(r->tok[1], "config"))
		get_vm_config(a, r);
	else if (is(res, "flint") && r->ntok == 2 && is(r->tok[1], "iommu"))
		get_flint_iommu(a, r);
	else if (is(res, "mmds")) /* Firecracker reads no further than /mmds */
		api_get_mmds(a, r);
	else
		return false;
	return true;
}

/* PUT /mmds at any time; PUT /mmds/config before the start; nothing else under /mmds. */
static void put_mmds(struct api *a, struct api_request *r)
{
	if (r->ntok == 1)
		api_put_mmds(a, r);
	else if (r->ntok == 2 && is(r->tok[1], "config")) {
		if (before_start(a, r))
			api_put_mmds_config(a, r);
	} else
		api_reply_fault(r, "Unrecognized PUT request path `%s`.", MSG_ESC(r->tok[1]));
}

static bool route_put(struct api *a, struct api_request *r, const char *res)
{
	static const struct {
		const char *key;
		cfg_section_fn *fn;
	} whole[] = { { "boot-source", cfg_boot_source },
		      { "machine-config", cfg_machine },
		      { "vsock", cfg_vsock },
		      { "entropy", cfg_entropy } };

	if (is(res, "actions") && r->ntok == 1) {
		put_actions(a, r);
		return true;
	}
	if (is(res, "logger") && r->ntok == 1) {
		put_logger(a, r);
		return true;
	}
	if (is(res, "metrics") && r->ntok == 1) {
		if (before_start(a, r))
			api_put_metrics(a, r);
		return true;
	}
	if (is(res, "mmds")) {
		put_mmds(a, r);
		return true;
	}
	if (is(res, "drives") || is(res, "network-interfaces")) {
		bool drive = is(res, "drives");
		put_item(a, r, res, drive ? "drive_id" : "iface_id", drive ? cfg_drives : cfg_net);
		return true;
	}
	for (unsigned i = 0; i < sizeof(whole) / sizeof(whole[0]); i++)
		if (is(res, whole[i].key) && r->ntok == 1) {
			put_section(a, r, whole[i].key, whole[i].fn);
			return true;
		}
	return false;
}

/* PATCH /vm {"state": "Paused" | "Resumed"}: the vCPUs stop and go on. */
static void patch_vm(struct api *a, struct api_request *r)
{
	const char *want = json_string_value(json_object_get(r->body, "state"));

	if (a->state == API_NOT_STARTED) {
		api_reply_fault(r, NOT_BEFORE_START);
	} else if (!json_is_object(r->body) || json_object_size(r->body) != 1 ||
	           !(is(want, "Paused") || is(want, "Resumed"))) {
		api_reply_fault(r,
		                "An error occurred when deserializing the json body of a request: "
		                "the body must be {\"state\": \"Paused\"} or "
		                "{\"state\": \"Resumed\"}.");
	} else if (is(want, "Paused")) {
		int e = a->state == API_RUNNING ? vmm_pause(a->vmm) : 0;
		if (e) {
			api_reply_fault(r, "%s",
			                e == -ESRCH ? "Internal VMM error: the VM is stopping."
			                            : "Internal VMM error: the vCPUs did not "
			                              "pause.");
			return;
		}
		a->state = API_PAUSED;
		api_reply_empty(r);
	} else {
		if (a->state == API_PAUSED)
			vmm_resume(a->vmm);
		a->state = API_RUNNING;
		api_reply_empty(r);
	}
}

static bool route_patch(struct api *a, struct api_request *r, const char *res)
{
	if (is(res, "machine-config") && r->ntok == 1) {
		patch_machine(a, r);
	} else if (is(res, "vm") && r->ntok == 1) {
		patch_vm(a, r);
	} else if (is(res, "drives")) {
		api_patch_drive(a, r);
	} else if (is(res, "network-interfaces")) {
		api_patch_net(a, r);
	} else if (is(res, "mmds")) { /* as GET: Firecracker reads no further than /mmds */
		api_patch_mmds(a, r);
	} else {
		return false;
	}
	return true;
}

void api_resource(struct api *a, struct api_request *r)
{
	const char *res = r->ntok ? r->tok[0] : "";
	bool done = false;

	if (r->method == EVHTTP_REQ_GET && r->body) {
		api_reply_fault(r, "GET request cannot have a body.");
		return;
	}
	if ((r->method == EVHTTP_REQ_PUT || r->method == EVHTTP_REQ_PATCH) && !r->body) {
		api_reply_fault(r, "Empty %s request.", r->method_name);
		return;
	}
	if (r->method == EVHTTP_REQ_GET)
		done = route_get(a, r, res);
	else if (r->method == EVHTTP_REQ_PUT)
		done = route_put(a, r, res);
	else if (r->method == EVHTTP_REQ_PATCH)
		done = route_patch(a, r, res);
	if (!done && !not_yet(r, res))
		api_reply_fault(r, "Invalid request method and/or path: %s %s.", r->method_name,
		                r->name + strlen(r->method_name) + 1);
}
