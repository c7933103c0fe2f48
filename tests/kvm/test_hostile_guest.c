/*
 * What a guest can do to flint through its devices, on KVM: it must never block flint,
 * flood its log, or keep it from stopping.
 */
#include "tests/lib/flintrun.h"

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

/* mov dx, 0x3f8; mov al, 'x'; 1: out dx, al; jmp 1b: the UART, as fast as it goes. */
static const uint8_t uart_flood[] = {0x66, 0xba, 0xf8, 0x03, 0xb0, 0x78, 0xee, 0xeb, 0xfd};

/* Runs flint on @kernel with stdout a full pipe nobody reads. */
static void run_unread(const char *kernel, char *extra_arg, int sig, int sig_ms)
{
	char json[1024];
	char *argv[8] = {(char *)test_flint_bin(), "--config-file", NULL, extra_arg, NULL};

	snprintf(json, sizeof(json),
		 "{\"boot-source\":{\"kernel_image_path\":\"%s\"},\"drives\":[],"
		 "\"machine-config\":{\"vcpu_count\":1,\"mem_size_mib\":32}}",
		 kernel);
	argv[2] = test_write_file("unread.json", json, strlen(json));
	if (extra_arg && strcmp(extra_arg, "--timeout") == 0)
		argv[4] = "2", argv[5] = NULL;
	/* Far longer than the stop needs: a flint blocked on its console is killed at 60 s. */
	test_run_signal_when(sig ? "booting " : NULL); /* its handlers are in place by then */
	assert_int_equal(test_run_unread(argv, 60, sig, sig_ms, &flint_res), 0);
	free(argv[2]);
}

/* A console nobody drains: --timeout still stops the VM (it blocked for good before). */
static void test_unread_console_timeout(void **state)
{
	char *k = tiny_elf_file("flood.elf", uart_flood, sizeof(uart_flood));

	(void)state;
	run_unread(k, "--timeout", 0, 0);
	flint_expect(124, NULL, "timeout");
	assert_non_null(strstr(flint_res.err, "guest output"));
	free(k);
}

/* The same, stopped by SIGTERM. */
static void test_unread_console_sigterm(void **state)
{
	char *k = tiny_elf_file("flood.elf", uart_flood, sizeof(uart_flood));

	(void)state;
	run_unread(k, NULL, SIGTERM, 2000);
	flint_expect(143, NULL, "received SIGTERM");
	free(k);
}

/*
 * The boot timer written 1000 times (as a guest can in a loop): one log line, not 1000.
 *   mov ecx, 1000; mov edi, 0xc0000000; 1: mov byte [rdi], 123; loop 1b;
 *   mov al, 0; out 0xf4, al; jmp .
 */
static void test_boot_timer_logged_once(void **state)
{
	static const uint8_t code[] = {0xb9, 0xe8, 0x03, 0x00, 0x00, 0xbf, 0x00, 0x00, 0x00, 0xc0,
				       0xc6, 0x07, 0x7b, 0xe2, 0xfb, 0xb0, 0x00, 0xe6, 0xf4, 0xeb,
				       0xfe};
	char *k = tiny_elf_file("timer.elf", code, sizeof(code));
	const char *p;
	int lines = 0;

	(void)state;
	flint_boot(k, "x", NULL, 1, 32, NULL, NULL, 60, 0, 0);
	flint_expect(PORT_EXIT(0), NULL, "guest boot time: ");
	for (p = flint_res.err; (p = strstr(p, "guest boot time: ")); p++)
		lines++;
	assert_int_equal(lines, 1);
	free(k);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unread_console_timeout),
		cmocka_unit_test(test_unread_console_sigterm),
		cmocka_unit_test(test_boot_timer_logged_once),
	};
	return TEST_MAIN(tests, NULL, test_group_teardown);
}
