/*
 * The kernel loaders (boot/: format detection, bzImage, ELF64/ELF32, PVH, then the
 * command line, the initrd and the boot structures) on the input as the kernel image,
 * read from a memfd as flint reads the file the config opened, into guest RAM of 64 MiB
 * (and, when the input's length is odd, also into 4 MiB, where the initrd and the
 * kernel's end meet the top of RAM). No KVM: boot_load() only writes guest memory.
 *
 * Checked: an image is loaded or refused with -errno and one message naming the file; a
 * loaded one enters inside guest RAM, in the mode its format implies, with the boot
 * parameters where the registers say, and the initrd whole inside RAM.
 */
#include "boot/boot.h"
#include "boot/bootparam.h"
#include "boot/pvh.h"
#include "tests/fuzz/common.h"
#include "vmm/x86/layout.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define MIB         (1ULL << 20)
#define KERNEL_NAME "fuzz-kernel"
#define INITRD_LEN  4096

static struct guest_memory big, small;
static int kernel_fd = -1, initrd_fd = -1;
static uint64_t nonce; /* the initrd's first bytes this run: it is found where it was loaded */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	fuzz_setup();
	FUZZ_CHECK(guest_memory_init(&big, 64 * MIB, GUEST_BACKING_4K) == 0, "64 MiB of RAM");
	FUZZ_CHECK(guest_memory_init(&small, 4 * MIB, GUEST_BACKING_4K) == 0, "4 MiB of RAM");
	kernel_fd = memfd_create(KERNEL_NAME, MFD_CLOEXEC);
	initrd_fd = memfd_create("fuzz-initrd", MFD_CLOEXEC);
	FUZZ_CHECK(kernel_fd >= 0 && initrd_fd >= 0, "memfd_create()");
	FUZZ_CHECK(ftruncate(initrd_fd, INITRD_LEN) == 0, "sizing the initrd");
	return 0;
}

/* The initrd is whole inside RAM at [@addr, + @size), holding this run's bytes. */
static void check_initrd(struct guest_memory *mem, uint64_t addr, uint64_t size)
{
	const uint8_t *p = guest_memory_hva(mem, addr, size);

	FUZZ_CHECK(size == INITRD_LEN, "initrd of %llu bytes, not %u", (unsigned long long)size,
	           INITRD_LEN);
	FUZZ_CHECK(p && memcmp(p, &nonce, sizeof(nonce)) == 0, "no initrd at %#llx",
	           (unsigned long long)addr);
}

static void load(struct guest_memory *mem, size_t size)
{
	struct boot_source src = { .kernel_fd = kernel_fd,
		                   .kernel_path = KERNEL_NAME,
		                   .initrd_fd = initrd_fd,
		                   .initrd_path = "fuzz-initrd",
		                   .cmdline = "console=ttyS0 reboot=k panic=1" };
	struct boot_info info;
	char err[512] = "";
	int r;

	/* What a load must write, cleared first, so that the checks see this run's. */
	memset(guest_memory_hva(mem, LAYOUT_ZERO_PAGE, 4096), 0, 4096);
	memset(guest_memory_hva(mem, LAYOUT_PVH_INFO, 4096), 0, 4096);
	memset(guest_memory_hva(mem, LAYOUT_CMDLINE, 4096), 0, 4096);
	r = boot_load(&src, mem, &info, err, sizeof(err));
	if (r) {
		FUZZ_CHECK(r < 0, "boot_load() returned %d", r);
		/* The kernel's file, or the initrd's when that is what does not fit. */
		FUZZ_CHECK(strstr(err, KERNEL_NAME) || strstr(err, "fuzz-initrd") ||
		                   strstr(err, "boot_args") || strstr(err, "mem_size_mib"),
		           "the message names no file: %s (%zu-byte image)", err, size);
		return;
	}
	FUZZ_CHECK(info.format != NULL, "no format");
	FUZZ_CHECK(info.entry >= LAYOUT_KERNEL && guest_memory_hva(mem, info.entry, 1) != NULL,
	           "%s entered at %#llx, outside the kernel's RAM", info.format,
	           (unsigned long long)info.entry);
	FUZZ_CHECK(info.cpu.regs.rip == info.entry, "rip %#llx, entry %#llx",
	           (unsigned long long)info.cpu.regs.rip, (unsigned long long)info.entry);
	if (info.mode == BOOT_MODE_PVH) {
		struct hvm_start_info si;
		struct hvm_modlist_entry mod;
		FUZZ_CHECK(info.cpu.mode == X86_MODE_PROTECTED, "PVH not in protected mode");
		FUZZ_CHECK(info.cpu.regs.rbx == LAYOUT_PVH_INFO, "PVH %%rbx is not the start info");
		FUZZ_CHECK(guest_memory_read(mem, LAYOUT_PVH_INFO, &si, sizeof(si)) == 0 &&
		                   si.magic == HVM_START_MAGIC_VALUE && si.nr_modules == 1 &&
		                   si.cmdline_paddr == LAYOUT_CMDLINE,
		           "no PVH start info");
		FUZZ_CHECK(guest_memory_read(mem, si.modlist_paddr, &mod, sizeof(mod)) == 0,
		           "PVH module list at %#llx", (unsigned long long)si.modlist_paddr);
		check_initrd(mem, mod.paddr, mod.size);
	} else {
		struct boot_params bp;
		FUZZ_CHECK(info.mode == BOOT_MODE_64BIT && info.cpu.mode == X86_MODE_LONG,
		           "a 64-bit entry not in long mode");
		FUZZ_CHECK(info.cpu.regs.rsi == LAYOUT_ZERO_PAGE, "%%rsi is not the zero page");
		FUZZ_CHECK(guest_memory_read(mem, LAYOUT_ZERO_PAGE, &bp, sizeof(bp)) == 0 &&
		                   bp.hdr.boot_flag == SETUP_BOOT_FLAG &&
		                   bp.hdr.cmd_line_ptr == LAYOUT_CMDLINE,
		           "no zero page");
		check_initrd(mem, bp.hdr.ramdisk_image, bp.hdr.ramdisk_size);
	}
	/* The command line as given, NUL-terminated, where the boot structures point. */
	const char *cmdline = guest_memory_hva(mem, LAYOUT_CMDLINE, strlen(src.cmdline) + 1);
	FUZZ_CHECK(cmdline && strcmp(cmdline, src.cmdline) == 0, "the command line is not there");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (ftruncate(kernel_fd, 0) || (size && pwrite(kernel_fd, data, size, 0) != (ssize_t)size))
		FUZZ_CHECK(false, "writing the kernel image: %s", strerror(errno));
	nonce++;
	FUZZ_CHECK(pwrite(initrd_fd, &nonce, sizeof(nonce), 0) == sizeof(nonce), "the initrd");
	load(&big, size);
	if (size % 2)
		load(&small, size);
	return 0;
}
