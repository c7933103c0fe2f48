/*
 * config_parse(): the input is a config document (a --config-file, or the API's document
 * at InstanceStart). It is parsed, and freed: accepted or refused, nothing may leak, read
 * out of bounds or overflow, and a refusal is one message naming the document.
 */
#include "tests/fuzz/common.h"
#include "vmm/config/config.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	fuzz_setup();
	fuzz_make_files();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vm_config cfg;
	char err[1024] = "";
	char *text;
	int r, fd0 = fuzz_lowest_fd();

	/* What config_load() hands on: the file read whole, NUL-terminated, no NUL inside. */
	if (size > CONFIG_MAX_FILE_BYTES || memchr(data, 0, size))
		return -1;
	text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = 0;
	fuzz_enter_dir();
	r = config_parse(text, "fuzz.json", &cfg, err, sizeof(err));
	if (r == 0) {
		/* What --dry-run prints of an accepted config. */
		char *d = config_describe(&cfg);
		json_t *back;
		FUZZ_CHECK(d != NULL, "config_describe() of an accepted config failed");
		for (const char *p = d; *p; p++)
			FUZZ_CHECK((unsigned char)*p < 0x80, "--dry-run's JSON is not ASCII: %s",
			           d);
		back = json_loads(d, 0, NULL);
		FUZZ_CHECK(back != NULL, "--dry-run's JSON does not parse: %s", d);
		json_decref(back);
		free(d);
		config_free(&cfg);
	} else {
		FUZZ_CHECK(r < 0, "config_parse() returned %d", r);
		FUZZ_CHECK(strncmp(err, "fuzz.json", 9) == 0,
		           "the message does not name the file: %s", err);
	}
	fuzz_leave_dir();
	free(text);
	FUZZ_CHECK(fuzz_lowest_fd() == fd0, "a file descriptor leaked (%d is taken)", fd0);
	return 0;
}
