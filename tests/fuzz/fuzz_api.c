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
	body = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &jerr);
	if (!body)
		return 0; /* answered with jansson's message: nothing of flint's ran */
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
