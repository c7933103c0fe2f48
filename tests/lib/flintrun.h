/*
 * Running the flint binary on a generated config, for the tests that start whole VMs
 * (tests/kvm) and those that must be refused before any VM exists (tests/unit).
 */
#ifndef FLINT_TEST_FLINTRUN_H
#define FLINT_TEST_FLINTRUN_H

#include "tests/lib/util.h"

#include <elf.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The last flint_boot()'s exit code and output. */
extern struct child_result flint_res;
/* When set, flint_boot() asks for huge_pages "2M". */
extern bool flint_boot_huge_pages;

/* $FLINT_BUILD/guest/@name: a payload from tests/guest (rotating static storage). */
char *flint_payload(const char *name);

/*
 * Writes a config for @kernel/@args/@initrd/@vcpus/@mem (MiB) plus @extra_json (appended
 * to the top-level object) and runs flint on it with @extra_argv; see test_run(). The CI
 * exit port is on at 0xf4 (--exit-port) unless @extra_json has a "ci" section.
 */
void flint_boot(const char *kernel, const char *args, const char *initrd, unsigned vcpus,
		unsigned mem, const char *extra_json, char *const extra_argv[], double timeout,
		int sig, int sig_ms);

/* Asserts the exit code and, when not NULL, text in stdout and stderr (printing all on failure). */
void flint_expect(int code, const char *out, const char *err);

/* Exit code for an exit-port value, as isa-debug-exit computes it. */
#define PORT_EXIT(v) ((((v) << 1) | 1) & 0xff)

/*
 * A minimal ELF64 with one PT_LOAD of @code at 1 MiB, entered in long mode. Used for
 * guests the payload set does not cover, and as a base for corrupt images.
 */
struct tiny_elf {
	Elf64_Ehdr eh;
	Elf64_Phdr ph;
	uint8_t code[64];
};
void tiny_elf(struct tiny_elf *e, const uint8_t *code, size_t len);
/* The same written to a file in the test directory; the caller frees the path. */
char *tiny_elf_file(const char *name, const uint8_t *code, size_t len);

#endif
