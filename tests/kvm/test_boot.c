/*
 * Booting on KVM (the host's /dev/kvm, or the rig's nested KVM): the payloads in tests/guest
 * in every format flint loads, crashes, exits, signals and the console.
 */
#include "tests/lib/flintrun.h"

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

static void boot_format(const char *file, const char *banner)
{
	char *initrd = flint_payload("test-initrd.img");

	flint_boot(flint_payload(file), "flint.test_exit=42 flint.test_mem_mib=128 flint.test_initrd=1", initrd,
	     1, 128, NULL, NULL, 30, 0, 0);
	flint_expect(PORT_EXIT(42), banner, "guest boot time: ");
	assert_non_null(strstr(flint_res.out, "e820 ok"));
	assert_non_null(strstr(flint_res.out, "initrd ok"));
	assert_non_null(strstr(flint_res.out, "flint-guest: done"));
}

static void test_boot_pvh(void **state)
{
	(void)state;
	boot_format("pvh.elf", "flint-guest: pvh start");
}

/* The same payload as an ELF32 i386 image (as `gcc -m32` kernels are): PVH is its way in. */
static void test_boot_pvh32(void **state)
{
	(void)state;
	boot_format("pvh32.elf", "flint-guest: pvh32 start");
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
	flint_boot(flint_payload("pvh.elf"), "flint.test_exit=3 flint.test_mem_mib=256", NULL, 2, 256, NULL,
	     NULL, 30, 0, 0);
	flint_expect(PORT_EXIT(3), "e820 ok", "2 vCPU");
	flint_boot(flint_payload("elf64.elf"), "flint.test_exit=5 flint.test_mem_mib=3200", NULL, 1, 3200, NULL,
	     NULL, 30, 0, 0);
	flint_expect(PORT_EXIT(5), "e820 ok", NULL);
}

/* A payload that finds something wrong exits with its own code >= 100. */
static void test_payload_sees_wrong_memory(void **state)
{
	(void)state;
	flint_boot(flint_payload("elf64.elf"), "flint.test_exit=1 flint.test_mem_mib=64", NULL, 1, 128, NULL,
	     NULL, 30, 0, 0);
	flint_expect(PORT_EXIT(101), NULL, NULL);
}

static void test_triple_fault(void **state)
{
	(void)state;
	flint_boot(flint_payload("triple.elf"), "x", NULL, 1, 32, NULL, NULL, 30, 0, 0);
	flint_expect(80, NULL, "triple fault");
	assert_non_null(strstr(flint_res.err, "rip="));
	assert_non_null(strstr(flint_res.err, "cr0="));
}

static void test_unmapped_mmio(void **state)
{
	(void)state;
	flint_boot(flint_payload("badmmio.elf"), "x", NULL, 1, 32, NULL, NULL, 30, 0, 0);
	flint_expect(PORT_EXIT(7), NULL, "write of 4 bytes at guest address 0xe0001000: no device there");
	assert_non_null(strstr(flint_res.err, "read of 4 bytes at guest address 0xe0001000"));
}

static const uint8_t spin[] = {0xeb, 0xfe}; /* jmp . */

static void test_timeout(void **state)
{
	char *k = tiny_elf_file("spin.elf", spin, sizeof(spin));
	char *argv[] = {"--timeout", "0.5", NULL};

	(void)state;
	flint_boot(k, "x", NULL, 2, 32, NULL, argv, 30, 0, 0);
	flint_expect(124, NULL, "timeout");
	/* Where the guest hung: vCPU 0 on its jmp at the entry, vCPU 1 never started. */
	assert_non_null(strstr(flint_res.err, "vcpu 0: stopped after 0 port and 0 MMIO exits"));
	assert_non_null(strstr(flint_res.err, "vcpu 0: rip=0x100000 "));
	assert_non_null(strstr(flint_res.err, "vcpu 1: stopped after"));
	free(k);
}

static void test_sigterm(void **state)
{
	char *k = tiny_elf_file("spin.elf", spin, sizeof(spin));

	(void)state;
	flint_boot(k, "x", NULL, 2, 32, NULL, NULL, 30, SIGTERM, 600);
	flint_expect(143, NULL, "received SIGTERM, shutting down");
	flint_boot(k, "x", NULL, 1, 32, NULL, NULL, 30, SIGINT, 600);
	flint_expect(130, NULL, "received SIGINT");
	free(k);
}

/* mov al, 0xfe; out 0x64, al: the keyboard controller's CPU reset, as reboot=k does. */
static void test_i8042_reset(void **state)
{
	static const uint8_t code[] = {0xb0, 0xfe, 0xe6, 0x64, 0xeb, 0xfe};
	char *k = tiny_elf_file("reset.elf", code, sizeof(code));

	(void)state;
	flint_boot(k, "x", NULL, 1, 32, NULL, NULL, 30, 0, 0);
	flint_expect(0, NULL, "reset through the i8042");
	free(k);
}

/*
 * The exit port is where flint.ci.exit_port puts it, off when that is null or absent, and
 * a write to any port of its range exits, as with isa-debug-exit.
 */
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
	flint_boot(k, "x", NULL, 1, 32, ",\"flint\":{\"ci\":{\"exit_port\":1281}}", NULL, 30, 0, 0);
	flint_expect(PORT_EXIT(9), NULL, "guest wrote 9 to the CI exit port");
	flint_boot(k2, "x", NULL, 1, 32, ",\"flint\":{\"ci\":{\"exit_port\":null}}", NULL, 30, 0, 0);
	flint_expect(0, NULL, "reset through the i8042");
	flint_boot(k2, "x", NULL, 1, 32, ",\"flint\":{\"ci\":{}}", NULL, 30, 0, 0);
	flint_expect(0, NULL, "reset through the i8042");
	/* Port 0xf4 is the last of the range 0xf1-0xf4. */
	flint_boot(k2, "x", NULL, 1, 32, ",\"flint\":{\"ci\":{\"exit_port\":241}}", NULL, 30, 0, 0);
	flint_expect(PORT_EXIT(9), NULL, "guest wrote 9 to the CI exit port");
	flint_boot(k2, "x", NULL, 1, 32, ",\"flint\":{\"ci\":{\"exit_port\":241,\"exit_port_size\":2}}",
		   NULL, 30, 0, 0);
	flint_expect(0, NULL, "reset through the i8042");
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
	char *argv[] = {(char *)test_flint_bin(), "--config-file", NULL, "--exit-port", "0xf4", NULL};

	(void)state;
	snprintf(json, sizeof(json),
		 "{\"boot-source\":{\"kernel_image_path\":\"%s\"},\"drives\":[],"
		 "\"machine-config\":{\"vcpu_count\":1,\"mem_size_mib\":32}}", k);
	argv[2] = test_write_file("echo.json", json, strlen(json));
	assert_int_equal(test_run_input(argv, "\x05\x02", 30, 0, 0, &flint_res), 0);
	flint_expect(PORT_EXIT(7), NULL, NULL);
	free(argv[2]);
	free(k);
}

/* Device assignment that cannot start is a clean error (and, under ASan, leak-free). */
static void test_vfio_setup_errors(void **state)
{
	(void)state;
	flint_boot(flint_payload("pvh.elf"), "x", NULL, 1, 32,
	     ",\"flint\":{\"iommu\":{\"path\":\"/nonexistent/iommu\"},"
	     "\"vfio-devices\":[{\"id\":\"d\",\"bdf\":\"0000:00:1f.7\"}]}",
	     NULL, 30, 0, 0);
	flint_expect(70, NULL, "cannot open /nonexistent/iommu: No such file or directory");
	/* An inherited fd that is not an iommufd (here: whatever flint has as fd 3) is refused. */
	flint_boot(flint_payload("pvh.elf"), "x", NULL, 1, 32,
	     ",\"flint\":{\"iommu\":{\"fd\":3},\"vfio-devices\":[{\"id\":\"d\",\"bdf\":\"0000:00:1f.7\"}]}",
	     NULL, 30, 0, 0);
	flint_expect(70, NULL, "inherited fd 3 is not a usable iommufd");
}

static void test_serial_log(void **state)
{
	char log[600];
	char *argv[] = {"--serial-log", log, "--no-console", NULL};
	char buf[4096] = "";
	FILE *f;

	(void)state;
	snprintf(log, sizeof(log), "%s/console.log", test_tmpdir());
	flint_boot(flint_payload("pvh.elf"), "flint.test_exit=0 flint.test_mem_mib=64", NULL, 1, 64, NULL, argv,
	     30, 0, 0);
	flint_expect(PORT_EXIT(0), NULL, NULL);
	assert_string_equal(flint_res.out, "");
	f = fopen(log, "r");
	assert_non_null(f);
	assert_true(fread(buf, 1, sizeof(buf) - 1, f) > 0);
	fclose(f);
	assert_non_null(strstr(buf, "flint-guest: done"));
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_boot_pvh),
		cmocka_unit_test(test_boot_pvh32),
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
	};
	return TEST_MAIN(tests, NULL, test_group_teardown);
}
