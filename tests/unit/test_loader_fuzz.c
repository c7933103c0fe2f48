/*
 * The loaders against thousands of corrupted images, in-process under the sanitizers:
 * every image is either loaded or refused with a message naming the file; none may
 * read or write out of bounds (ASan/UBSan turn that into a failure).
 */
#include "boot/boot.h"
#include "tests/lib/util.h"
#include "vmm/x86/layout.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#define ROUNDS 1500

static uint8_t *read_all(const char *path, size_t *len)
{
	FILE *f = fopen(path, "r");
	uint8_t *buf = malloc(1 << 20);

	assert_non_null(f);
	*len = fread(buf, 1, 1 << 20, f);
	fclose(f);
	assert_true(*len > 0);
	return buf;
}

/* Flips bytes, mostly in the headers where the loaders look, sometimes truncates. */
static size_t mutate(uint8_t *d, size_t len, unsigned *seed)
{
	unsigned n = 1 + rand_r(seed) % 8;

	for (unsigned i = 0; i < n; i++) {
		size_t span = rand_r(seed) % 4 ? (len < 0x300 ? len : 0x300) : len;
		size_t at = (size_t)rand_r(seed) % span;
		switch (rand_r(seed) % 4) {
		case 0:
			d[at] = (uint8_t)rand_r(seed);
			break;
		case 1:
			d[at] ^= (uint8_t)(1 << (rand_r(seed) % 8));
			break;
		case 2: /* extreme values in a 32-bit field */
			if (at + 4 <= len)
				memcpy(d + at, (uint32_t[]){rand_r(seed) % 2 ? 0xffffffffu : 0x80000000u}, 4);
			break;
		default:
			d[at] = 0;
			break;
		}
	}
	if (rand_r(seed) % 10 == 0)
		len = (size_t)rand_r(seed) % len;
	return len;
}

static void fuzz(const char *name, unsigned seed)
{
	char path[600];
	size_t len, loaded = 0;
	const char *b = getenv("FLINT_BUILD");
	uint8_t *orig, *img;
	struct guest_memory mem;

	snprintf(path, sizeof(path), "%s/guest/%s", b ? b : "build", name);
	orig = read_all(path, &len);
	img = malloc(len);
	assert_int_equal(guest_memory_init(&mem, MiB(64), GUEST_BACKING_4K), 0);
	for (int i = 0; i < ROUNDS; i++) {
		memcpy(img, orig, len);
		size_t n = mutate(img, len, &seed);
		char *file = test_write_file("fuzz.img", img, n);
		/* The loaders read the fd the config opened, as flint does. */
		int fd = open(file, O_RDONLY | O_CLOEXEC);
		struct boot_source src = {.kernel_fd = fd, .kernel_path = file, .initrd_fd = -1,
					  .cmdline = "console=ttyS0"};
		struct boot_info info;
		char err[512] = "";
		int r = boot_load(&src, &mem, &info, err, sizeof(err));
		close(fd);
		if (r == 0) {
			loaded++;
			/* What loaded must enter inside guest RAM. */
			assert_non_null(guest_memory_hva(&mem, info.entry, 1));
		} else {
			assert_true(r < 0);
			assert_non_null(strstr(err, file)); /* the message names the file */
		}
		free(file);
	}
	print_message("%s: %zu of %d mutants loaded, the rest refused\n", name, loaded, ROUNDS);
	guest_memory_destroy(&mem);
	free(img);
	free(orig);
}

static void test_fuzz_bzimage(void **state)
{
	(void)state;
	fuzz("bzimage.bin", 1);
}

static void test_fuzz_elf(void **state)
{
	(void)state;
	fuzz("elf64.elf", 2);
}

static void test_fuzz_pvh(void **state)
{
	(void)state;
	fuzz("pvh.elf", 3);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fuzz_bzimage),
		cmocka_unit_test(test_fuzz_elf),
		cmocka_unit_test(test_fuzz_pvh),
	};
	return TEST_MAIN(tests, NULL, test_group_teardown);
}
