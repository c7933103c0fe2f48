/* Inside boot/: the helpers the format loaders, the structure writers and boot.c share. */
#include "boot/loader.h"
#include "vmm/base/log.h"
#include "vmm/x86/layout.h"

#include <errno.h>
#include <stdarg.h>

int boot_fail(struct boot_ctx *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	msg_vformat(c->err, c->errlen, c->path, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

unsigned boot_e820(const struct guest_memory *mem, struct boot_e820 *out)
{
	uint64_t low = guest_memory_low_end(mem);
	unsigned n = 0;

	/* Base memory up to the EBDA, where the MP table sits; 640K-1M is the legacy hole. */
	out[n++] = (struct boot_e820){ 0, low < LAYOUT_EBDA ? low : LAYOUT_EBDA, E820_RAM };
	if (low > LAYOUT_EBDA)
		out[n++] = (struct boot_e820){ LAYOUT_EBDA, LAYOUT_LOW_RAM_END - LAYOUT_EBDA,
			                       E820_RESERVED };
	if (low > LAYOUT_KERNEL)
		out[n++] = (struct boot_e820){ LAYOUT_KERNEL, low - LAYOUT_KERNEL, E820_RAM };
	for (unsigned i = 1; i < mem->nregions; i++)
		out[n++] =
		        (struct boot_e820){ mem->regions[i].gpa, mem->regions[i].size, E820_RAM };
	return n;
}

/* Puts the initrd as high as allowed, page aligned, above what the kernel uses. */
