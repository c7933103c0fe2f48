/* Kernel format detection, initrd and command line placement, the memory map. */
#include "boot/boot.h"
#include "boot/bootparam.h"
#include "boot/loader.h"
#include "vmm/base/file.h"
#include "vmm/base/log.h"
#include "vmm/x86/layout.h"
#include "vmm/x86/regs.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * The whole image from @fd, which the config opened and checked (a regular file within
 * @max): reading the fd, not the name again, leaves no gap for a swap.
 */
static int read_image(struct boot_ctx *c, int fd, size_t max, uint8_t **buf, size_t *len)
{
	int r = file_read_all(fd, max, buf, len);

	if (r == -EFBIG)
		return boot_fail(c, "grew past the limit of %zu MiB after it was checked",
		                 max >> 20);
	if (r)
		boot_fail(c, "cannot read: %s", strerror(-r));
	return r;
}

static int load_initrd(struct boot_ctx *c, struct guest_memory *mem, const struct boot_image *img,
                       int fd, uint64_t *addr, uint64_t *size)
{
	uint64_t top = guest_memory_low_end(mem); /* exclusive */
	uint8_t *data;
	size_t len;
	int r;

	r = read_image(c, fd, BOOT_MAX_INITRD_BYTES, &data, &len);
	if (r)
		return r;
	if (img->initrd_max < top - 1)
		top = img->initrd_max + 1;
	if (len == 0 || len > top) {
		free(data);
		return boot_fail(
		        c, len ? "initrd of %zu bytes is larger than guest RAM" : "initrd is empty",
		        len);
	}
	*addr = (top - len) & ~4095ULL;
	*size = len;
	if (*addr < img->kernel_end) {
		free(data);
		return boot_fail(c,
		                 "initrd of %zu bytes does not fit between the kernel (ends at "
		                 "0x%llx) and 0x%llx: give the VM more memory",
		                 len, (unsigned long long)img->kernel_end, (unsigned long long)top);
	}
	r = guest_memory_write(mem, *addr, data, len);
	free(data);
	return r;
}

static int load_cmdline(struct boot_ctx *c, struct guest_memory *mem, const char *args, size_t max)
{
	size_t len = strlen(args);

	if (max >= LAYOUT_CMDLINE_MAX)
		max = LAYOUT_CMDLINE_MAX - 1;
	if (len > max) {
		snprintf(
		        c->err, c->errlen,
		        "boot-source.boot_args: %zu bytes, but %s takes at most %zu (cmdline_size)",
		        len, MSG_ESC(c->path), max);
		return -EINVAL;
	}
	return guest_memory_write(mem, LAYOUT_CMDLINE, args, len + 1);
}

static bool is_elf(const uint8_t *d, size_t len)
{
	return len >= 4 && memcmp(d, "\177ELF", 4) == 0;
}

static bool is_bzimage(const uint8_t *d, size_t len)
{
	uint32_t magic;

	if (len < SETUP_OFFSET(header) + sizeof(magic))
		return false;
	memcpy(&magic, d + SETUP_OFFSET(header), sizeof(magic));
	return magic == SETUP_HDR_MAGIC;
}

/*
 * The boot vCPU at entry. PVH: 32-bit, %ebx = hvm_start_info. The 64-bit Linux boot
 * protocol: long mode, %rsi = boot_params.
 */
static void entry_cpu(struct boot_info *info)
{
	bool pvh = info->mode == BOOT_MODE_PVH;

	x86_boot_cpu_init(&info->cpu, pvh ? X86_MODE_PROTECTED : X86_MODE_LONG, info->entry);
	if (pvh)
		info->cpu.regs.rbx = info->params;
	else
		info->cpu.regs.rsi = info->params;
}

/* Start info or zero page, then the GDT and page tables the entry mode needs. */
static int write_boot_structures(struct guest_memory *mem, struct boot_info *info,
                                 const struct boot_image *img, uint64_t initrd,
                                 uint64_t initrd_size)
{
	int r;

	if (info->mode == BOOT_MODE_PVH) {
		info->params = LAYOUT_PVH_INFO;
		r = pvh_write(mem, LAYOUT_CMDLINE, initrd, initrd_size);
	} else {
		info->params = LAYOUT_ZERO_PAGE;
		r = zeropage_write(mem, img, LAYOUT_CMDLINE, initrd, initrd_size);
	}
	entry_cpu(info);
	return r ? r : x86_boot_tables_write(mem, info->cpu.mode);
}

int boot_load(const struct boot_source *src, struct guest_memory *mem, struct boot_info *info,
              char *err, size_t errlen)
{
	struct boot_ctx c = { src->kernel_path, err, errlen };
	struct boot_image img = { 0 };
	uint64_t initrd = 0, initrd_size = 0;
	uint8_t *data;
	int r;

	memset(info, 0, sizeof(*info));
	if (guest_memory_low_end(mem) <= LAYOUT_KERNEL) {
		snprintf(err, errlen,
		         "machine-config.mem_size_mib: %llu MiB is too small to boot a kernel",
		         (unsigned long long)(mem->size >> 20));
		return -EINVAL;
	}
	r = read_image(&c, src->kernel_fd, BOOT_MAX_KERNEL_BYTES, &data, &img.len);
	if (r)
		return r;
	img.data = data;
	img.initrd_max = UINT32_MAX;
	if (is_elf(data, img.len))
		r = elf_load(&c, mem, &img, info);
	else if (is_bzimage(data, img.len))
		r = bzimage_load(&c, mem, &img, info);
	else
		r = boot_fail(&c, "not a kernel flint can boot: no ELF magic and no bzImage "
		                  "\"HdrS\" signature at offset 0x202");
	free(data);
	if (!r)
		r = load_cmdline(&c, mem, src->cmdline, img.cmdline_max);
	if (!r && src->initrd_path) {
		c.path = src->initrd_path;
		r = load_initrd(&c, mem, &img, src->initrd_fd, &initrd, &initrd_size);
	}
	if (r)
		return r;
	r = write_boot_structures(mem, info, &img, initrd, initrd_size);
	if (r)
		snprintf(err, errlen, "%s: cannot write boot structures: %s",
		         MSG_ESC(src->kernel_path), strerror(-r));
	return r;
}
