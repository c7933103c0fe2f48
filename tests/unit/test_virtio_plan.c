/*
 * The VM's virtio slots as the config describes them: Firecracker's order (root drive
 * first), one 4 KiB slot and one GSI each, and what the guest's command line gets.
 */
#include "tests/lib/util.h"
#include "vmm/base/log.h"
#include "vmm/virtio.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

static void test_entropy_only(void **state)
{
	struct vm_config cfg = { .entropy = true };
	struct vmm_virtio v;
	char cmd[256] = "console=ttyS0";

	(void)state;
	assert_int_equal(vmm_virtio_plan(&v, &cfg, cmd, sizeof(cmd)), 0);
	assert_int_equal(v.n, 1);
	assert_int_equal(v.slots[0].kind, VIRTIO_KIND_RNG);
	assert_string_equal(cmd, "console=ttyS0 virtio_mmio.device=4K@0xd0000000:5");
}

static void test_root_drive_first(void **state)
{
	struct drive_config drives[] = { { .id = "data" },
		                         { .id = "root", .root = true, .read_only = true } };
	struct vm_config cfg = { .drives = drives, .ndrives = 2, .entropy = true };
	struct vmm_virtio v;
	char cmd[512] = "x";

	(void)state;
	assert_int_equal(vmm_virtio_plan(&v, &cfg, cmd, sizeof(cmd)), 0);
	assert_int_equal(v.n, 3);
	assert_int_equal(v.slots[0].index, 1); /* the root drive is vda */
	assert_int_equal(v.slots[1].index, 0);
	assert_int_equal(v.slots[2].gsi, 7);
	assert_string_equal(cmd, "x root=/dev/vda ro virtio_mmio.device=4K@0xd0000000:5 "
	                         "virtio_mmio.device=4K@0xd0001000:6 "
	                         "virtio_mmio.device=4K@0xd0002000:7");
}

static void test_root_partuuid(void **state)
{
	struct drive_config drives[] = {
		{ .id = "root", .root = true, .partuuid = "0eaa91a0-01" }
	};
	struct vm_config cfg = { .drives = drives, .ndrives = 1 };
	struct vmm_virtio v;
	char cmd[512] = "";

	(void)state;
	assert_int_equal(vmm_virtio_plan(&v, &cfg, cmd, sizeof(cmd)), 0);
	assert_string_equal(cmd,
	                    " root=PARTUUID=0eaa91a0-01 rw virtio_mmio.device=4K@0xd0000000:5");
}

static void test_too_many(void **state)
{
	struct drive_config drives[LAYOUT_VIRTIO_SLOTS] = { { 0 } };
	struct vm_config cfg = { .drives = drives, .ndrives = LAYOUT_VIRTIO_SLOTS };
	struct vmm_virtio v;
	char cmd[4096] = "";

	(void)state;
	assert_int_equal(vmm_virtio_plan(&v, &cfg, cmd, sizeof(cmd)), 0);
	assert_int_equal(v.slots[LAYOUT_VIRTIO_SLOTS - 1].gsi, 23); /* the IOAPIC's last pin */
	cfg.entropy = true;
	cmd[0] = 0;
	assert_int_equal(vmm_virtio_plan(&v, &cfg, cmd, sizeof(cmd)), -E2BIG);
}

static void test_command_line_full(void **state)
{
	struct vm_config cfg = { .entropy = true };
	struct vmm_virtio v;
	char cmd[32] = "console=ttyS0";

	(void)state;
	assert_int_equal(vmm_virtio_plan(&v, &cfg, cmd, sizeof(cmd)), -ENOSPC);
	assert_string_equal(cmd, "console=ttyS0"); /* nothing half-written */
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_entropy_only),      cmocka_unit_test(test_root_drive_first),
		cmocka_unit_test(test_root_partuuid),     cmocka_unit_test(test_too_many),
		cmocka_unit_test(test_command_line_full),
	};
	log_set_level(LOG_ERROR);
	return TEST_MAIN(tests, NULL, test_group_teardown);
}
