/*
 * What flint itself parses of an API request: the JSON body, as the API's resource
 * handlers (vmm/api/resources.c) hand it on before InstanceStart. evhttp parses the HTTP
 * (libevent's, not flint's), and driving the handlers needs a socket and the server, so
 * this target goes one step in: the input is a request body, parsed as the server parses
 * it (json_loadb, duplicates refused), then checked as the body of every PUT and PATCH
 * that takes one, through the same section functions (vmm/config/sections.h) with the
 * same paths:
 *   PUT /boot-source, /machine-config, /vsock, /entropy, /metrics, /logger: the body at ""
 *   PATCH /machine-config: the defaults {vcpu_count: 1, mem_size_mib: 128} updated by it
 *   PUT /drives/{id}, /network-interfaces/{id}: a list holding it, at "drives" etc.
 *   PUT /mmds/config: against the interfaces the body made, if it made one
 *   PUT /mmds, PATCH /mmds (any JSON value): into an MMDS store, then PATCHed again with
 *   itself; the store, written as Firecracker writes it, never beyond its limit
 * Each accepted body is kept in the config document as resources.c keeps it, and the
 * document is then parsed as InstanceStart parses it (config_parse()). PUT /logger's own
 * step, log_set_file(), is left out: a fuzzer must not create files where a body says.
 *
 * Checked: every refusal is one message, prefixed with the request; nothing leaks, file
 * descriptors included.
 */
#include "tests/fuzz/common.h"
#include "vmm/config/config.h"
#include "vmm/config/sections.h"
#include "vmm/mmds/mmds.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PAYLOAD 51200 /* --http-api-max-payload-size's default */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	fuzz_setup();
	fuzz_make_files();
	return 0;
}

/* check_section() of resources.c: the section function on @v against a scratch config. */
static bool check(const char *request, cfg_section_fn *fn, json_t *v, const char *path)
{
	struct vm_config scratch;
	char err[1024] = "";
	struct cfg_ctx c = { request, err, sizeof(err), NULL };
	int e;

	config_init(&scratch);
	e = fn(&c, v, path, &scratch);
	config_free(&scratch);
	if (e && e != -ENOMEM)
		FUZZ_CHECK(e < 0 && strncmp(err, request, strlen(request)) == 0,
		           "%s: refused (%d) with \"%s\"", request, e, err);
	return e == 0;
}

/* check() against @scratch, which holds what the section may refer to (interfaces). */
static bool check_with(const char *request, cfg_section_fn *fn, json_t *v,
                       struct vm_config *scratch)
{
	char err[1024] = "";
	struct cfg_ctx c = { request, err, sizeof(err), NULL };
	int e = fn(&c, v, "", scratch);

	if (e && e != -ENOMEM)
		FUZZ_CHECK(e < 0 && strncmp(err, request, strlen(request)) == 0,
		           "%s: refused (%d) with \"%s\"", request, e, err);
	return e == 0;
}

/* PUT and PATCH /mmds: a store of 4 KiB, so the limit is met often. */
static void mmds_bodies(json_t *body)
{
	struct mmds_params p = { .size_limit = 4096, .instance_id = "fuzz" };
	struct mmds *m;
	json_t *v;
	size_t len;
	char *text;
	int put, patch;

	FUZZ_CHECK(mmds_new(&m, &p) == 0, "no store");
	patch = mmds_patch(m, body);
	FUZZ_CHECK(patch == -ENODATA, "PATCH before PUT: %d", patch);
	put = mmds_put(m, body);
	FUZZ_CHECK(put == 0 || put == -E2BIG, "PUT: %d", put);
	patch = mmds_patch(m, body);
	FUZZ_CHECK(put || patch == 0 || patch == -E2BIG, "PATCH: %d", patch);
	v = mmds_get(m);
	text = mmds_json_dump(v, &len);
	FUZZ_CHECK(text && len <= 4096 && (put || json_equal(v, body) || !patch),
	           "the store: %zu bytes", text ? len : 0);
	free(text);
	json_decref(v);
	mmds_free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct {
		const char *request, *key;
		cfg_section_fn *fn;
	} whole[] = {
		{ "PUT /boot-source", "boot-source", cfg_boot_source },
		{ "PUT /machine-config", "machine-config", cfg_machine },
		{ "PUT /vsock", "vsock", cfg_vsock },
		{ "PUT /entropy", "entropy", cfg_entropy },
		{ "PUT /metrics", "metrics", cfg_metrics },
		{ "PUT /logger", "logger", cfg_logger },
	};
	int fd0 = fuzz_lowest_fd();
	json_t *body, *doc, *merged, *list;
	json_error_t jerr;
	struct vm_config cfg;
	char err[1024];
	char *text;

	if (size > MAX_PAYLOAD)
		return -1;
	body = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY,
	                  &jerr);
	if (!body)
		return 0; /* answered with jansson's message: nothing of flint's ran */
	mmds_bodies(body);
	if (!json_is_object(body) && !json_is_array(body)) {
		json_decref(body); /* the server takes these for /mmds only */
		return 0;
	}
	doc = json_object();
	FUZZ_CHECK(doc != NULL, "out of memory");
	fuzz_enter_dir();
	for (size_t i = 0; i < sizeof(whole) / sizeof(whole[0]); i++)
		if (check(whole[i].request, whole[i].fn, body, ""))
			json_object_set(doc, whole[i].key, body);
	/* PATCH /machine-config: an object, merged over what is kept (here the defaults). */
	if (json_is_object(body)) {
		merged = json_pack("{s:i,s:i}", "vcpu_count", 1, "mem_size_mib", 128);
		FUZZ_CHECK(merged && json_object_update(merged, body) == 0, "out of memory");
		if (check("PATCH /machine-config", cfg_machine, merged, ""))
			json_object_set(doc, "machine-config", merged);
		json_decref(merged);
	}
	/* PUT /drives/{id}, /network-interfaces/{id}: the list the item joins. */
	list = json_array();
	FUZZ_CHECK(list && json_array_append(list, body) == 0, "out of memory");
	if (check("PUT /drives/fuzz", cfg_drives, list, "drives"))
		json_object_set(doc, "drives", list);
	if (check("PUT /network-interfaces/fuzz", cfg_net, list, "network-interfaces"))
		json_object_set(doc, "network-interfaces", list);
	json_decref(list);
	/* PUT /mmds/config: checked against the interfaces kept so far (resources.c's order). */
	{
		struct vm_config scratch;
		struct cfg_ctx c = { "PUT /mmds/config", err, sizeof(err), NULL };
		config_init(&scratch);
		if (!cfg_net(&c, json_object_get(doc, "network-interfaces"), "network-interfaces",
		             &scratch) &&
		    check_with("PUT /mmds/config", cfg_mmds, body, &scratch))
			json_object_set_new(doc, "mmds-config", config_mmds_json(&scratch.mmds));
		config_free(&scratch);
	}
	/* InstanceStart: the document as a config file. */
	text = json_dumps(doc, JSON_COMPACT);
	FUZZ_CHECK(text != NULL, "out of memory");
	if (config_parse(text, "the API's config", &cfg, err, sizeof(err)) == 0)
		config_free(&cfg);
	fuzz_leave_dir();
	free(text);
	json_decref(doc);
	json_decref(body);
	FUZZ_CHECK(fuzz_lowest_fd() == fd0, "a file descriptor leaked (%d is taken)", fd0);
	return 0;
}
