#include "tests/lib/flintrun.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

struct child_result flint_res;
bool flint_boot_huge_pages;

char *flint_payload(const char *name)
{
	static char path[4][600];
	static int i;
	const char *b = getenv("FLINT_BUILD");
	char *p = path[i++ % 4];

	snprintf(p, 600, "%s/guest/%s", b ? b : "build", name);
	return p;
}

void flint_boot(const char *kernel, const char *args, const char *initrd, unsigned vcpus,
		unsigned mem, const char *extra_json, char *const extra_argv[], double timeout,
		int sig, int sig_ms)
{
	char json[4096];
	char *argv[16] = {(char *)test_flint_bin(), "--config-file", NULL};
	int n = 3;

	snprintf(json, sizeof(json),
		 "{\"boot-source\":{\"kernel_image_path\":\"%s\",\"boot_args\":\"%s\"%s%s%s},"
		 "\"drives\":[],\"machine-config\":{\"vcpu_count\":%u,\"mem_size_mib\":%u%s}%s}",
		 kernel, args, initrd ? ",\"initrd_path\":\"" : "", initrd ? initrd : "",
		 initrd ? "\"" : "", vcpus, mem, flint_boot_huge_pages ? ",\"huge_pages\":\"2M\"" : "",
		 extra_json ? extra_json : "");
	argv[2] = test_write_file("vm.json", json, strlen(json));
	/* The payloads report through the exit port; a config with flint.ci decides itself. */
	if (!extra_json || !strstr(extra_json, "\"ci\"")) {
		argv[n++] = "--exit-port";
		argv[n++] = "0xf4";
	}
	for (int i = 0; extra_argv && extra_argv[i]; i++)
		argv[n++] = extra_argv[i];
	argv[n] = NULL;
	/* flint says it boots after its signal handlers are in place. */
	test_run_signal_when(sig ? "booting " : NULL);
	assert_int_equal(test_run(argv, timeout, sig, sig_ms, &flint_res), 0);
	free(argv[2]);
}

void flint_expect(int code, const char *out, const char *err)
{
	const struct child_result *r = &flint_res;

	if (r->code != code || (out && !strstr(r->out, out)) || (err && !strstr(r->err, err)))
		print_error("exit %d (want %d)\nstdout: %s\nstderr: %s\nwant out \"%s\" err \"%s\"\n",
			    r->code, code, r->out, r->err, out ? out : "", err ? err : "");
	assert_int_equal(r->code, code);
	if (out)
		assert_non_null(strstr(r->out, out));
	if (err)
		assert_non_null(strstr(r->err, err));
}

void tiny_elf(struct tiny_elf *e, const uint8_t *code, size_t len)
{
	memset(e, 0, sizeof(*e));
	memcpy(e->eh.e_ident, ELFMAG, SELFMAG);
	e->eh.e_ident[EI_CLASS] = ELFCLASS64;
	e->eh.e_ident[EI_DATA] = ELFDATA2LSB;
	e->eh.e_ident[EI_VERSION] = EV_CURRENT;
	e->eh.e_type = ET_EXEC;
	e->eh.e_machine = EM_X86_64;
	e->eh.e_version = EV_CURRENT;
	e->eh.e_entry = 0x100000;
	e->eh.e_phoff = offsetof(struct tiny_elf, ph);
	e->eh.e_ehsize = sizeof(Elf64_Ehdr);
	e->eh.e_phentsize = sizeof(Elf64_Phdr);
	e->eh.e_phnum = 1;
	e->ph.p_type = PT_LOAD;
	e->ph.p_flags = PF_R | PF_X;
	e->ph.p_offset = offsetof(struct tiny_elf, code);
	e->ph.p_paddr = e->ph.p_vaddr = 0x100000;
	e->ph.p_filesz = e->ph.p_memsz = sizeof(e->code);
	memcpy(e->code, code, len);
}

char *tiny_elf_file(const char *name, const uint8_t *code, size_t len)
{
	struct tiny_elf e;

	tiny_elf(&e, code, len);
	return test_write_file(name, &e, sizeof(e));
}
