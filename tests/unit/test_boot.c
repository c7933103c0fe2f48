/*
 * Booting on the host's /dev/kvm: the payloads in tests/guest in every format flint loads,
 * crashes and exits, and images that must be refused with a precise message.
 */
#include "tests/unit/util.h"

#include <elf.h>
#include <stdbool.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

static struct child_result res;
static char guest_dir[512];
static bool json_huge; /* boot() asks for huge_pages "2M" */

static char *payload(const char *name)
{
	static char path[4][600];
	static int i;
	char *p = path[i++ % 4];

	snprintf(p, 600, "%s/%s", guest_dir, name);
	return p;
}

/* Writes a config and runs flint on it with extra CLI options. */
static void boot(const char *kernel, const char *args, const char *initrd, unsigned vcpus,
		 unsigned mem, const char *extra_json, char *const extra_argv[], double timeout,
		 int sig, int sig_ms)
{
	char json[4096];
	char *argv[16] = {(char *)test_flint_bin(), "--config-file", NULL};
	int n = 3;

	snprintf(json, sizeof(json),
		 "{\"boot-source\":{\"kernel_image_path\":\"%s\",\"boot_args\":\"%s\"%s%s%s},"
		 "\"machine-config\":{\"vcpu_count\":%u,\"mem_size_mib\":%u%s}%s}",
		 kernel, args, initrd ? ",\"initrd_path\":\"" : "", initrd ? initrd : "",
		 initrd ? "\"" : "", vcpus, mem, json_huge ? ",\"huge_pages\":\"2M\"" : "",
		 extra_json ? extra_json : "");
	argv[2] = test_write_file("vm.json", json, strlen(json));
	for (int i = 0; extra_argv && extra_argv[i]; i++)
		argv[n++] = extra_argv[i];
	argv[n] = NULL;
	assert_int_equal(test_run(argv, timeout, sig, sig_ms, &res), 0);
	free(argv[2]);
}

static void expect(int code, const char *out, const char *err)
{
	if (res.code != code || (out && !strstr(res.out, out)) || (err && !strstr(res.err, err)))
		print_error("exit %d (want %d)\nstdout: %s\nstderr: %s\nwant out \"%s\" err \"%s\"\n",
			    res.code, code, res.out, res.err, out ? out : "", err ? err : "");
	assert_int_equal(res.code, code);
	if (out)
		assert_non_null(strstr(res.out, out));
	if (err)
		assert_non_null(strstr(res.err, err));
}

/* Exit code for an exit-port value, as isa-debug-exit computes it. */
#define PORT_EXIT(v) ((((v) << 1) | 1) & 0xff)

static void boot_format(const char *file, const char *banner)
{
	char *initrd = payload("test-initrd.img");

	boot(payload(file), "flint.test_exit=42 flint.test_mem_mib=128 flint.test_initrd=1", initrd,
	     1, 128, NULL, NULL, 30, 0, 0);
	expect(PORT_EXIT(42), banner, "guest boot time: ");
	assert_non_null(strstr(res.out, "e820 ok"));
	assert_non_null(strstr(res.out, "initrd ok"));
	assert_non_null(strstr(res.out, "flint-guest: done"));
}

static void test_boot_pvh(void **state)
{
	(void)state;
	boot_format("pvh.elf", "flint-guest: pvh start");
}

static void test_boot_elf64(void **state)
{
	(void)state;
	boot_format("elf64.elf", "flint-guest: elf64 start");
}

static void test_boot_bzimage(void **state)
{
	(void)state;
	boot_format("bzimage.bin", "flint-guest: bzimage start");
}

/* Two vCPUs (the AP waits for SIPI), and RAM that continues above 4 GiB. */
static void test_smp_and_high_memory(void **state)
{
	(void)state;
	boot(payload("pvh.elf"), "flint.test_exit=3 flint.test_mem_mib=256", NULL, 2, 256, NULL,
	     NULL, 30, 0, 0);
	expect(PORT_EXIT(3), "e820 ok", "2 vCPU");
	boot(payload("elf64.elf"), "flint.test_exit=5 flint.test_mem_mib=3200", NULL, 1, 3200, NULL,
	     NULL, 30, 0, 0);
	expect(PORT_EXIT(5), "e820 ok", NULL);
}

/* A payload that finds something wrong exits with its own code >= 100. */
static void test_payload_sees_wrong_memory(void **state)
{
	(void)state;
	boot(payload("elf64.elf"), "flint.test_exit=1 flint.test_mem_mib=64", NULL, 1, 128, NULL,
	     NULL, 30, 0, 0);
	expect(PORT_EXIT(101), NULL, NULL);
}

static void test_triple_fault(void **state)
{
	(void)state;
	boot(payload("triple.elf"), "x", NULL, 1, 32, NULL, NULL, 30, 0, 0);
	expect(80, NULL, "triple fault");
	assert_non_null(strstr(res.err, "rip="));
	assert_non_null(strstr(res.err, "cr0="));
}

static void test_unmapped_mmio(void **state)
{
	(void)state;
	boot(payload("badmmio.elf"), "x", NULL, 1, 32, NULL, NULL, 30, 0, 0);
	expect(PORT_EXIT(7), NULL, "write of 4 bytes at guest address 0xe0001000: no device there");
	assert_non_null(strstr(res.err, "read of 4 bytes at guest address 0xe0001000"));
}

/*
 * A minimal ELF64 with one PT_LOAD of @code at 1 MiB, entered in long mode. Used for
 * guests the payload set does not cover, and as a base for corrupt images.
 */
struct tiny_elf {
	Elf64_Ehdr eh;
	Elf64_Phdr ph;
	uint8_t code[64];
};

static void tiny_elf(struct tiny_elf *e, const uint8_t *code, size_t len)
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

static char *tiny_elf_file(const char *name, const uint8_t *code, size_t len)
{
	struct tiny_elf e;

	tiny_elf(&e, code, len);
	return test_write_file(name, &e, sizeof(e));
}

static const uint8_t spin[] = {0xeb, 0xfe}; /* jmp . */

static void test_timeout(void **state)
{
	char *k = tiny_elf_file("spin.elf", spin, sizeof(spin));
	char *argv[] = {"--timeout", "0.5", NULL};

	(void)state;
	boot(k, "x", NULL, 2, 32, NULL, argv, 30, 0, 0);
	expect(124, NULL, "timeout");
	free(k);
}

static void test_sigterm(void **state)
{
	char *k = tiny_elf_file("spin.elf", spin, sizeof(spin));

	(void)state;
	boot(k, "x", NULL, 2, 32, NULL, NULL, 30, SIGTERM, 600);
	expect(143, NULL, "received SIGTERM, shutting down");
	boot(k, "x", NULL, 1, 32, NULL, NULL, 30, SIGINT, 600);
	expect(130, NULL, "received SIGINT");
	free(k);
}

/* mov al, 0xfe; out 0x64, al: the keyboard controller's CPU reset, as reboot=k does. */
static void test_i8042_reset(void **state)
{
	static const uint8_t code[] = {0xb0, 0xfe, 0xe6, 0x64, 0xeb, 0xfe};
	char *k = tiny_elf_file("reset.elf", code, sizeof(code));

	(void)state;
	boot(k, "x", NULL, 1, 32, NULL, NULL, 30, 0, 0);
	expect(0, NULL, "reset through the i8042");
	free(k);
}

/* The exit port moves with flint.ci.exit_port and is gone when it is null. */
static void test_exit_port_config(void **state)
{
	/* mov dx, 0x501; mov al, 9; out dx, al; mov al, 0xfe; out 0x64, al */
	static const uint8_t code[] = {0x66, 0xba, 0x01, 0x05, 0xb0, 0x09, 0xee,
				       0xb0, 0xfe, 0xe6, 0x64, 0xeb, 0xfe};
	/* mov al, 9; out 0xf4, al; mov al, 0xfe; out 0x64, al */
	static const uint8_t code_f4[] = {0xb0, 0x09, 0xe6, 0xf4, 0xb0, 0xfe, 0xe6, 0x64, 0xeb, 0xfe};
	char *k = tiny_elf_file("port.elf", code, sizeof(code));
	char *k2 = tiny_elf_file("portf4.elf", code_f4, sizeof(code_f4));

	(void)state;
	boot(k, "x", NULL, 1, 32, ",\"flint\":{\"ci\":{\"exit_port\":1281}}", NULL, 30, 0, 0);
	expect(PORT_EXIT(9), NULL, "guest wrote 9 to the CI exit port");
	boot(k2, "x", NULL, 1, 32, ",\"flint\":{\"ci\":{\"exit_port\":null}}", NULL, 30, 0, 0);
	expect(0, NULL, "reset through the i8042");
	free(k);
	free(k2);
}

/*
 * Console input: bytes on flint's stdin reach the guest's UART receive buffer. The guest
 * polls LSR.DR, reads RBR twice and writes the sum to the exit port.
 */
static void test_serial_input(void **state)
{
	static const uint8_t code[] = {
		0x66, 0xba, 0xfd, 0x03, /* 0: mov dx, 0x3fd (LSR) */
		0xec,                   /* 4: in al, dx */
		0xa8, 0x01,             /* 5: test al, 1 (data ready) */
		0x74, 0xf7,             /* 7: jz 0 */
		0x66, 0xba, 0xf8, 0x03, /* 9: mov dx, 0x3f8 (RBR) */
		0xec,                   /* 13: in al, dx */
		0x88, 0xc3,             /* 14: mov bl, al */
		0xec,                   /* 16: in al, dx (second byte, already queued) */
		0x00, 0xd8,             /* 17: add al, bl */
		0xe6, 0xf4,             /* 19: out 0xf4, al */
		0xeb, 0xfe,             /* 21: jmp . */
	};
	char *k = tiny_elf_file("echo.elf", code, sizeof(code));
	char json[1024];
	char *argv[] = {(char *)test_flint_bin(), "--config-file", NULL, NULL};

	(void)state;
	snprintf(json, sizeof(json),
		 "{\"boot-source\":{\"kernel_image_path\":\"%s\"},"
		 "\"machine-config\":{\"vcpu_count\":1,\"mem_size_mib\":32}}", k);
	argv[2] = test_write_file("echo.json", json, strlen(json));
	assert_int_equal(test_run_input(argv, "\x05\x02", 30, 0, 0, &res), 0);
	expect(PORT_EXIT(7), NULL, NULL);
	free(argv[2]);
	free(k);
}

/* Device assignment that cannot start is a clean error (and, under ASan, leak-free). */
static void test_vfio_setup_errors(void **state)
{
	(void)state;
	boot(payload("pvh.elf"), "x", NULL, 1, 32,
	     ",\"flint\":{\"iommu\":{\"path\":\"/nonexistent/iommu\"},"
	     "\"vfio-devices\":[{\"id\":\"d\",\"bdf\":\"0000:00:1f.7\"}]}",
	     NULL, 30, 0, 0);
	expect(70, NULL, "cannot open /nonexistent/iommu: No such file or directory");
	/* An inherited fd that is not an iommufd is refused, not used. */
	boot(payload("pvh.elf"), "x", NULL, 1, 32,
	     ",\"flint\":{\"iommu\":{\"fd\":0},\"vfio-devices\":[{\"id\":\"d\",\"bdf\":\"0000:00:1f.7\"}]}",
	     NULL, 30, 0, 0);
	expect(70, NULL, "inherited fd 0 is not a usable iommufd");
}

static void test_serial_log(void **state)
{
	char log[600];
	char *argv[] = {"--serial-log", log, "--no-console", NULL};
	char buf[4096] = "";
	FILE *f;

	(void)state;
	snprintf(log, sizeof(log), "%s/console.log", test_tmpdir());
	boot(payload("pvh.elf"), "flint.test_exit=0 flint.test_mem_mib=64", NULL, 1, 64, NULL, argv,
	     30, 0, 0);
	expect(PORT_EXIT(0), NULL, NULL);
	assert_string_equal(res.out, "");
	f = fopen(log, "r");
	assert_non_null(f);
	assert_true(fread(buf, 1, sizeof(buf) - 1, f) > 0);
	fclose(f);
	assert_non_null(strstr(buf, "flint-guest: done"));
}

/* Corrupt images: refused with a message naming the file and the field, exit 78. */
struct bad_image {
	const char *name;
	void (*mutate)(uint8_t *d, size_t *len);
	const char *expect;
};

static void truncate_small(uint8_t *d, size_t *len)
{
	(void)d;
	*len = 600;
}
static void zero_boot_flag(uint8_t *d, size_t *len)
{
	(void)len;
	d[0x1fe] = d[0x1ff] = 0;
}
static void old_protocol(uint8_t *d, size_t *len)
{
	(void)len;
	d[0x206] = 0x05;
}
static void no_kernel64(uint8_t *d, size_t *len)
{
	(void)len;
	d[0x236] &= (uint8_t)~1;
}
static void huge_setup(uint8_t *d, size_t *len)
{
	(void)len;
	d[0x1f1] = 200;
}
static void odd_alignment(uint8_t *d, size_t *len)
{
	(void)len;
	memcpy(d + 0x230, &(uint32_t){3}, 4);
}
static void huge_init_size(uint8_t *d, size_t *len)
{
	(void)len;
	memcpy(d + 0x260, &(uint32_t){0xf0000000}, 4);
}
static void tiny_cmdline(uint8_t *d, size_t *len)
{
	(void)len;
	memcpy(d + 0x238, &(uint32_t){4}, 4);
}
static void not_a_kernel(uint8_t *d, size_t *len)
{
	memset(d, 0x5a, *len);
}
static void empty(uint8_t *d, size_t *len)
{
	(void)d;
	*len = 0;
}

static void test_bad_bzimages(void **state)
{
	static const struct bad_image cases[] = {
		{"bz-small", truncate_small, "bzImage of 600 bytes is too small for a setup header"},
		{"bz-flag", zero_boot_flag, "boot_flag is 0x0000, expected 0xaa55"},
		{"bz-old", old_protocol, "boot protocol 2.05 is older than 2.06"},
		{"bz-32", no_kernel64, "xloadflags: XLF_KERNEL_64 is clear"},
		{"bz-setup", huge_setup, "setup_sects 200"},
		{"bz-align", odd_alignment, "kernel_alignment 0x3"},
		{"bz-init", huge_init_size, "needs guest RAM up to"},
		{"bz-cmdline", tiny_cmdline, NULL},
		{"garbage", not_a_kernel, "not a kernel flint can boot"},
		{"empty", empty, "not a kernel flint can boot"},
	};
	static uint8_t img[1 << 20];
	FILE *f = fopen(payload("bzimage.bin"), "r");
	size_t full = fread(img, 1, sizeof(img), f);

	(void)state;
	fclose(f);
	assert_true(full > 0x400);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		static uint8_t copy[1 << 20];
		size_t len = full;
		memcpy(copy, img, full);
		cases[i].mutate(copy, &len);
		char *path = test_write_file(cases[i].name, copy, len);
		boot(path, "flint.test=1", NULL, 1, 64, NULL, NULL, 30, 0, 0);
		char want[700];
		if (cases[i].expect)
			snprintf(want, sizeof(want), "%s: %s", path, cases[i].expect);
		else /* the command line is the config's fault, not the image's */
			snprintf(want, sizeof(want), "boot-source.boot_args: 12 bytes, but %s takes at "
				 "most 4 (cmdline_size)", path);
		expect(78, NULL, want);
		free(path);
	}
}

static void test_bad_elves(void **state)
{
	struct tiny_elf e;
	char *path;

	(void)state;
	struct {
		const char *expect;
		size_t len;
	} cases[] = {
		{"shorter than its header", 40},
		{"only 64-bit ELF kernels", sizeof(e)},
		{"program headers (e_phoff 0xffff00) run past the end", sizeof(e)},
		{"segment 0: p_offset 0x78 + p_filesz 0x100000 run past the end", sizeof(e)},
		{"segment 0: p_paddr 0x7000 is below 1 MiB", sizeof(e)},
		{"segment 0: [0x7f00000, +0x200000) is not inside guest RAM", sizeof(e)},
		{"e_entry 0x9000000 is not inside a loaded segment", sizeof(e)},
		{"segment 0: p_filesz is larger than p_memsz", sizeof(e)},
		{"no PT_LOAD segment", sizeof(e)},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		tiny_elf(&e, spin, sizeof(spin));
		switch (i) {
		case 1: e.eh.e_ident[EI_CLASS] = ELFCLASS32; break;
		case 2: e.eh.e_phoff = 0xffff00; break;
		case 3: e.ph.p_filesz = e.ph.p_memsz = 0x100000; break;
		case 4: e.ph.p_paddr = 0x7000; break;
		case 5: e.ph.p_paddr = 0x7f00000; e.ph.p_memsz = 0x200000; break;
		case 6: e.eh.e_entry = 0x9000000; break;
		case 7: e.ph.p_memsz = 1; break;
		case 8: e.ph.p_type = PT_NOTE; e.ph.p_filesz = 0; break;
		default: break;
		}
		path = test_write_file("bad.elf", &e, cases[i].len);
		boot(path, "x", NULL, 1, 128, NULL, NULL, 30, 0, 0);
		expect(78, NULL, cases[i].expect);
		free(path);
	}
}

static void test_memory_too_small_for_images(void **state)
{
	static uint8_t big[7 << 20];
	char *initrd;

	(void)state;
	memcpy(big, "FLINTRD\n", 8);
	initrd = test_write_file("big-initrd.img", big, sizeof(big));
	boot(payload("elf64.elf"), "x", initrd, 1, 8, NULL, NULL, 30, 0, 0);
	expect(78, NULL, "big-initrd.img: initrd of 7340032 bytes does not fit between the kernel");
	boot(payload("elf64.elf"), "x", NULL, 1, 1, NULL, NULL, 30, 0, 0);
	expect(78, NULL, "machine-config.mem_size_mib: 1 MiB is too small to boot a kernel");
	/* 512 GiB of huge pages are not there: a clear error, not a SIGBUS on first touch. */
	json_huge = true;
	boot(payload("elf64.elf"), "x", NULL, 1, 512 * 1024, NULL, NULL, 30, 0, 0);
	json_huge = false;
	expect(70, NULL, "from 2M hugetlb pages (see /proc/sys/vm/nr_hugepages)");
	free(initrd);
}

static int setup(void **state)
{
	const char *b = getenv("FLINT_BUILD");

	(void)state;
	snprintf(guest_dir, sizeof(guest_dir), "%s/guest", b ? b : "build");
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_boot_pvh),
		cmocka_unit_test(test_boot_elf64),
		cmocka_unit_test(test_boot_bzimage),
		cmocka_unit_test(test_smp_and_high_memory),
		cmocka_unit_test(test_payload_sees_wrong_memory),
		cmocka_unit_test(test_triple_fault),
		cmocka_unit_test(test_unmapped_mmio),
		cmocka_unit_test(test_timeout),
		cmocka_unit_test(test_sigterm),
		cmocka_unit_test(test_i8042_reset),
		cmocka_unit_test(test_exit_port_config),
		cmocka_unit_test(test_serial_input),
		cmocka_unit_test(test_vfio_setup_errors),
		cmocka_unit_test(test_serial_log),
		cmocka_unit_test(test_bad_bzimages),
		cmocka_unit_test(test_bad_elves),
		cmocka_unit_test(test_memory_too_small_for_images),
	};
	return cmocka_run_group_tests(tests, setup, test_group_teardown);
}
