/* ELF64 kernels: vmlinux entered in long mode, or PVH via the Xen PHYS32_ENTRY note. */
#include "boot/boot.h"
#include "vmm/x86/layout.h"

#include <elf.h>
#include <string.h>

#define XEN_ELFNOTE_PHYS32_ENTRY 18

static int check_ehdr(struct boot_ctx *c, const Elf64_Ehdr *eh, size_t len)
{
	if (len < sizeof(*eh))
		return boot_fail(c, "ELF file of %zu bytes is shorter than its header", len);
	if (eh->e_ident[EI_CLASS] != ELFCLASS64)
		return boot_fail(c, "ELF class %u: only 64-bit ELF kernels are supported",
		                 eh->e_ident[EI_CLASS]);
	if (eh->e_ident[EI_DATA] != ELFDATA2LSB || eh->e_machine != EM_X86_64)
		return boot_fail(c, "e_machine %u: not a little-endian x86_64 ELF", eh->e_machine);
	if (eh->e_type != ET_EXEC)
		return boot_fail(c, "e_type %u: not an executable", eh->e_type);
	if (eh->e_phentsize != sizeof(Elf64_Phdr) || eh->e_phnum == 0 || eh->e_phnum > 64)
		return boot_fail(c, "e_phentsize %u / e_phnum %u are not valid", eh->e_phentsize,
		                 eh->e_phnum);
	if (eh->e_phoff > len || (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr) > len - eh->e_phoff)
		return boot_fail(c, "program headers (e_phoff 0x%llx) run past the end of the file",
		                 (unsigned long long)eh->e_phoff);
	return 0;
}

static int load_segment(struct boot_ctx *c, struct guest_memory *mem, const uint8_t *d, size_t len,
                        const Elf64_Phdr *ph, unsigned i, uint64_t *end)
{
	uint8_t *dst;

	if (ph->p_offset > len || ph->p_filesz > len - ph->p_offset)
		return boot_fail(c,
		                 "segment %u: p_offset 0x%llx + p_filesz 0x%llx run past the end "
		                 "of the file",
		                 i, (unsigned long long)ph->p_offset,
		                 (unsigned long long)ph->p_filesz);
	if (ph->p_filesz > ph->p_memsz)
		return boot_fail(c, "segment %u: p_filesz is larger than p_memsz", i);
	if (ph->p_paddr < LAYOUT_KERNEL)
		return boot_fail(c,
		                 "segment %u: p_paddr 0x%llx is below 1 MiB, where flint keeps "
		                 "boot structures",
		                 i, (unsigned long long)ph->p_paddr);
	dst = guest_memory_hva(mem, ph->p_paddr, ph->p_memsz);
	if (!dst)
		return boot_fail(c, "segment %u: [0x%llx, +0x%llx) is not inside guest RAM", i,
		                 (unsigned long long)ph->p_paddr, (unsigned long long)ph->p_memsz);
	memcpy(dst, d + ph->p_offset, ph->p_filesz);
	memset(dst + ph->p_filesz, 0, ph->p_memsz - ph->p_filesz);
	if (ph->p_paddr + ph->p_memsz > *end)
		*end = ph->p_paddr + ph->p_memsz;
	return 0;
}

/* Looks for the PVH entry note in one PT_NOTE segment. 1 = found, 0 = none, <0 = bad. */
static int find_pvh_note(struct boot_ctx *c, const uint8_t *d, size_t len, const Elf64_Phdr *ph,
                         uint64_t *entry)
{
	uint64_t off = ph->p_offset, end;

	if (off > len || ph->p_filesz > len - off)
		return boot_fail(c, "PT_NOTE at 0x%llx runs past the end of the file",
		                 (unsigned long long)off);
	end = off + ph->p_filesz;
	while (end - off >= sizeof(Elf64_Nhdr)) {
		Elf64_Nhdr nh;
		memcpy(&nh, d + off, sizeof(nh));
		uint64_t name = off + sizeof(nh);
		uint64_t desc = name + ((nh.n_namesz + 3ULL) & ~3ULL);
		uint64_t next = desc + ((nh.n_descsz + 3ULL) & ~3ULL);
		if (next > end)
			return boot_fail(c, "ELF note at 0x%llx runs past its PT_NOTE segment",
			                 (unsigned long long)off);
		if (nh.n_type == XEN_ELFNOTE_PHYS32_ENTRY && nh.n_namesz == 4 &&
		    memcmp(d + name, "Xen", 4) == 0) {
			if (nh.n_descsz != 4 && nh.n_descsz != 8)
				return boot_fail(c, "Xen PHYS32_ENTRY note has a %u-byte value",
				                 nh.n_descsz);
			uint32_t e;
			memcpy(&e, d + desc, 4);
			*entry = e;
			return 1;
		}
		off = next;
	}
	return 0;
}

int elf_load(struct boot_ctx *c, struct guest_memory *mem, struct boot_image *img,
             struct boot_info *info)
{
	const uint8_t *d = img->data;
	Elf64_Ehdr eh;
	uint64_t end = 0, pvh_entry = 0;
	int pvh = 0, r;

	memcpy(&eh, d, img->len < sizeof(eh) ? img->len : sizeof(eh));
	r = check_ehdr(c, &eh, img->len);
	for (unsigned i = 0; !r && i < eh.e_phnum; i++) {
		Elf64_Phdr ph;
		memcpy(&ph, d + eh.e_phoff + i * sizeof(ph), sizeof(ph));
		if (ph.p_type == PT_LOAD)
			r = load_segment(c, mem, d, img->len, &ph, i, &end);
		else if (ph.p_type == PT_NOTE && !pvh)
			r = pvh = find_pvh_note(c, d, img->len, &ph, &pvh_entry);
		if (r > 0)
			r = 0;
	}
	if (r)
		return r;
	if (end == 0)
		return boot_fail(c, "no PT_LOAD segment");
	info->entry = pvh ? pvh_entry : eh.e_entry;
	if (!guest_memory_hva(mem, info->entry, 1) || info->entry < LAYOUT_KERNEL ||
	    info->entry >= end)
		return boot_fail(c, "%s 0x%llx is not inside a loaded segment",
		                 pvh ? "PVH entry" : "e_entry", (unsigned long long)info->entry);
	info->mode = pvh ? BOOT_MODE_PVH : BOOT_MODE_64BIT;
	info->format = pvh ? "PVH" : "ELF";
	img->kernel_end = end;
	img->cmdline_max = 2047; /* Linux's COMMAND_LINE_SIZE on x86, NUL excluded */
	return 0;
}
