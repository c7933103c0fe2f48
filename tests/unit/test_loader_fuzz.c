/*
 * The loaders against thousands of corrupted images, in-process under the sanitizers:
 * every image is either loaded or refused with a message naming the file; none may
 * read or write out of bounds (ASan/UBSan turn that into a failure). And what the
 * intact payloads load to: the boot vCPU's registers and the structures they point at.
 */
#include "boot/boot.h"
#include "boot/pvh.h"
#include "tests/lib/util.h"
#include "vmm/x86/layout.h"

#include <asm/bootparam.h>
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

static uint8_t *read_payload(const char *name, size_t *len)
{
	char path[600];
	const char *b = getenv("FLINT_BUILD");

	snprintf(path, sizeof(path), "%s/guest/%s", b ? b : "build", name);
	return read_all(path, len);
}

static void fuzz(const char *name, unsigned seed)
{
	size_t len, loaded = 0;
	uint8_t *orig, *img;
	struct guest_memory mem;

	orig = read_payload(name, &len);
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

static void test_fuzz_pvh32(void **state)
{
	(void)state;
	fuzz("pvh32.elf", 4);
}

/* Loads payload @name with an initrd into fresh 64 MiB of guest memory. */
static void load_payload(const char *name, struct guest_memory *mem, struct boot_info *info)
{
	size_t len, ilen;
	uint8_t *img = read_payload(name, &len), *rd = read_payload("test-initrd.img", &ilen);
	char *file = test_write_file("payload.img", img, len);
	char *initrd = test_write_file("initrd.img", rd, ilen);
	struct boot_source src = {.kernel_fd = open(file, O_RDONLY | O_CLOEXEC), .kernel_path = file,
				  .initrd_fd = open(initrd, O_RDONLY | O_CLOEXEC), .initrd_path = initrd,
				  .cmdline = "console=ttyS0"};
	char err[512] = "";

	assert_int_equal(guest_memory_init(mem, MiB(64), GUEST_BACKING_4K), 0);
	assert_int_equal(boot_load(&src, mem, info, err, sizeof(err)), 0);
	close(src.kernel_fd);
	close(src.initrd_fd);
	free(file);
	free(initrd);
	free(img);
	free(rd);
}

/* PVH, from an ELF64 and an ELF32: 32-bit entry at the note's address, %ebx = start info. */
static void check_pvh(const char *name)
{
	struct guest_memory mem;
	struct boot_info info;
	struct hvm_start_info si;
	struct hvm_modlist_entry mod;

	load_payload(name, &mem, &info);
	assert_int_equal(info.mode, BOOT_MODE_PVH);
	assert_string_equal(info.format, "PVH");
	assert_int_equal(info.entry, 0x100000); /* pvh_start, not e_entry */
	assert_int_equal(info.cpu.mode, X86_MODE_PROTECTED);
	assert_int_equal(info.cpu.regs.rip, info.entry);
	assert_int_equal(info.cpu.regs.rbx, LAYOUT_PVH_INFO);
	assert_int_equal(info.cpu.regs.rflags, 0x2);
	assert_int_equal(guest_memory_read(&mem, LAYOUT_PVH_INFO, &si, sizeof(si)), 0);
	assert_int_equal(si.magic, HVM_START_MAGIC_VALUE);
	assert_int_equal(si.version, 1);
	assert_int_equal(si.cmdline_paddr, LAYOUT_CMDLINE);
	assert_int_equal(si.memmap_paddr, LAYOUT_PVH_MEMMAP);
	assert_true(si.memmap_entries >= 3);
	assert_int_equal(si.nr_modules, 1);
	assert_int_equal(guest_memory_read(&mem, si.modlist_paddr, &mod, sizeof(mod)), 0);
	assert_int_equal(mod.size, 4096);
	assert_memory_equal(guest_memory_hva(&mem, mod.paddr, 8), "FLINTRD\n", 8);
	guest_memory_destroy(&mem);
}

static void test_pvh_entry(void **state)
{
	(void)state;
	check_pvh("pvh.elf");
	check_pvh("pvh32.elf");
}

/* The 64-bit boot protocol: long mode at the entry, %rsi = boot_params, a stack. */
static void check_64bit(const char *name, const char *format, uint64_t entry)
{
	struct guest_memory mem;
	struct boot_info info;
	struct boot_params bp;

	load_payload(name, &mem, &info);
	assert_int_equal(info.mode, BOOT_MODE_64BIT);
	assert_string_equal(info.format, format);
	assert_int_equal(info.entry, entry);
	assert_int_equal(info.cpu.mode, X86_MODE_LONG);
	assert_int_equal(info.cpu.regs.rip, entry);
	assert_int_equal(info.cpu.regs.rsi, LAYOUT_ZERO_PAGE);
	assert_int_equal(info.cpu.regs.rsp, LAYOUT_BOOT_STACK);
	assert_int_equal(guest_memory_read(&mem, LAYOUT_ZERO_PAGE, &bp, sizeof(bp)), 0);
	assert_int_equal(bp.hdr.boot_flag, 0xaa55);
	assert_int_equal(bp.hdr.type_of_loader, 0xff);
	assert_int_equal(bp.hdr.cmd_line_ptr, LAYOUT_CMDLINE);
	assert_int_equal(bp.hdr.ramdisk_size, 4096);
	assert_memory_equal(guest_memory_hva(&mem, bp.hdr.ramdisk_image, 8), "FLINTRD\n", 8);
	assert_true(bp.e820_entries >= 3);
	assert_int_equal(bp.e820_table[0].addr, 0);
	assert_int_equal(bp.e820_table[0].type, 1);
	guest_memory_destroy(&mem);
}

static void test_64bit_entry(void **state)
{
	(void)state;
	check_64bit("elf64.elf", "ELF", 0x100000);
	check_64bit("bzimage.bin", "bzImage", 0x100200);
}

/* The MP table: both checksums hold, one entry per CPU plus bus, IOAPIC, 24 pins + 2 LINTs. */
static void test_mptable(void **state)
{
	struct guest_memory mem;
	uint8_t sum = 0;
	uint8_t *fp, *cfg;
	uint16_t len, count;

	(void)state;
	assert_int_equal(guest_memory_init(&mem, MiB(64), GUEST_BACKING_4K), 0);
	assert_int_equal(mptable_write(&mem, 3), 0);
	fp = guest_memory_hva(&mem, LAYOUT_EBDA, 16);
	assert_memory_equal(fp, "_MP_", 4);
	for (int i = 0; i < 16; i++)
		sum = (uint8_t)(sum + fp[i]);
	assert_int_equal(sum, 0);
	cfg = guest_memory_hva(&mem, LAYOUT_EBDA + 16, 44);
	assert_memory_equal(cfg, "PCMP", 4);
	memcpy(&len, cfg + 4, 2);
	memcpy(&count, cfg + 34, 2);
	assert_int_equal(len, 44 + 3 * 20 + 8 + 8 + 26 * 8);
	assert_int_equal(count, 3 + 1 + 1 + 26);
	for (unsigned i = 0; i < len; i++)
		sum = (uint8_t)(sum + cfg[i]);
	assert_int_equal(sum, 0);
	assert_int_not_equal(mptable_write(&mem, 255), 0);
	guest_memory_destroy(&mem);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fuzz_bzimage),
		cmocka_unit_test(test_fuzz_elf),
		cmocka_unit_test(test_fuzz_pvh),
		cmocka_unit_test(test_fuzz_pvh32),
		cmocka_unit_test(test_pvh_entry),
		cmocka_unit_test(test_64bit_entry),
		cmocka_unit_test(test_mptable),
	};
	return TEST_MAIN(tests, NULL, test_group_teardown);
}
