/*
 * ELF kernels: a 64-bit vmlinux entered in long mode at e_entry, or PVH through the Xen
 * PHYS32_ENTRY note, from a 64-bit or a 32-bit (i386) ELF. A 32-bit ELF has no other way
 * in: without the note it is refused.
 */
#include "boot/loader.h"
#include "vmm/x86/layout.h"

#include <elf.h>
#include <stdbool.h>
#include <string.h>

#define XEN_ELFNOTE_PHYS32_ENTRY 18

/* What differs between the ELF classes flint takes; both are read into the Elf64 types. */
struct elf_class {
	uint16_t machine;
	const char *machine_name;
	size_t ehsize;
	size_t phentsize;
};
static const struct elf_class elf64 = { EM_X86_64, "x86_64", sizeof(Elf64_Ehdr),
	                                sizeof(Elf64_Phdr) };
static const struct elf_class elf32 = { EM_386, "i386", sizeof(Elf32_Ehdr), sizeof(Elf32_Phdr) };

/* The file header at @d (at least k->ehsize bytes), widened to Elf64. */
static void read_ehdr(const struct elf_class *k, const uint8_t *d, Elf64_Ehdr *eh)
{
	Elf32_Ehdr e;

	if (k == &elf64) {
		memcpy(eh, d, sizeof(*eh));
		return;
	}
	memcpy(&e, d, sizeof(e));
	*eh = (Elf64_Ehdr){ .e_type = e.e_type,
		            .e_machine = e.e_machine,
		            .e_version = e.e_version,
		            .e_entry = e.e_entry,
		            .e_phoff = e.e_phoff,
		            .e_shoff = e.e_shoff,
		            .e_flags = e.e_flags,
		            .e_ehsize = e.e_ehsize,
		            .e_phentsize = e.e_phentsize,
		            .e_phnum = e.e_phnum,
		            .e_shentsize = e.e_shentsize,
		            .e_shnum = e.e_shnum,
		            .e_shstrndx = e.e_shstrndx };
	memcpy(eh->e_ident, e.e_ident, EI_NIDENT);
}

/* Program header @i (check_ehdr made sure all of them are in the file), widened to Elf64. */
static void read_phdr(const struct elf_class *k, const uint8_t *d, const Elf64_Ehdr *eh, unsigned i,
                      Elf64_Phdr *ph)
{
	const uint8_t *p = d + eh->e_phoff + (size_t)i * k->phentsize;
	Elf32_Phdr p32;

	if (k == &elf64) {
		memcpy(ph, p, sizeof(*ph));
		return;
	}
	memcpy(&p32, p, sizeof(p32));
	*ph = (Elf64_Phdr){ .p_type = p32.p_type,
		            .p_flags = p32.p_flags,
		            .p_offset = p32.p_offset,
		            .p_vaddr = p32.p_vaddr,
		            .p_paddr = p32.p_paddr,
		            .p_filesz = p32.p_filesz,
		            .p_memsz = p32.p_memsz,
		            .p_align = p32.p_align };
}

static int check_ehdr(struct boot_ctx *c, const uint8_t *d, size_t len, const struct elf_class **kp,
                      Elf64_Ehdr *eh)
{
	unsigned cls = len > EI_CLASS ? d[EI_CLASS] : ELFCLASSNONE;
	const struct elf_class *k = cls == ELFCLASS32 ? &elf32 : &elf64;

	if (len < k->ehsize)
		return boot_fail(c, "ELF file of %zu bytes is shorter than its header", len);
	if (cls != ELFCLASS64 && cls != ELFCLASS32)
		return boot_fail(c,
		                 "ELF class %u: only 64-bit ELF kernels are supported (and 32-bit "
		                 "ones with a Xen PHYS32_ENTRY note)",
		                 cls);
	read_ehdr(k, d, eh);
	*kp = k;
	if (eh->e_ident[EI_DATA] != ELFDATA2LSB || eh->e_machine != k->machine)
		return boot_fail(c, "e_machine %u: not a little-endian %s ELF", eh->e_machine,
		                 k->machine_name);
	if (eh->e_type != ET_EXEC)
		return boot_fail(c, "e_type %u: not an executable", eh->e_type);
	if (eh->e_phentsize != k->phentsize || eh->e_phnum == 0 || eh->e_phnum > 64)
		return boot_fail(c, "e_phentsize %u / e_phnum %u are not valid", eh->e_phentsize,
		                 eh->e_phnum);
	if (eh->e_phoff > len || (uint64_t)eh->e_phnum * k->phentsize > len - eh->e_phoff)
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

/*
 * Looks for the PVH entry note in one PT_NOTE segment (notes have the same layout in both
 * classes). 1 = found, 0 = none, <0 = bad.
 */
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
			/* 4 bytes from a 32-bit kernel, 8 from a 64-bit one (_ASM_PTR). */
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

/* Loads the PT_LOAD segments and looks for the PVH note. -errno, or 0 with *end set. */
static int load_segments(struct boot_ctx *c, struct guest_memory *mem, const struct boot_image *img,
                         const struct elf_class *k, const Elf64_Ehdr *eh, uint64_t *end, bool *pvh,
                         uint64_t *pvh_entry)
{
	int r = 0;

	for (unsigned i = 0; !r && i < eh->e_phnum; i++) {
		Elf64_Phdr ph;
		read_phdr(k, img->data, eh, i, &ph);
		if (ph.p_type == PT_LOAD) {
			r = load_segment(c, mem, img->data, img->len, &ph, i, end);
		} else if (ph.p_type == PT_NOTE && !*pvh) {
			r = find_pvh_note(c, img->data, img->len, &ph, pvh_entry);
			*pvh = r > 0;
			if (r > 0)
				r = 0;
		}
	}
	return r;
}

int elf_load(struct boot_ctx *c, struct guest_memory *mem, struct boot_image *img,
             struct boot_info *info)
{
	const struct elf_class *k = NULL;
	Elf64_Ehdr eh;
	uint64_t end = 0, pvh_entry = 0;
	bool pvh = false;
	int r = check_ehdr(c, img->data, img->len, &k, &eh);

	if (!r)
		r = load_segments(c, mem, img, k, &eh, &end, &pvh, &pvh_entry);
	if (r)
		return r;
	if (k == &elf32 && !pvh)
		return boot_fail(c, "32-bit ELF without a Xen PHYS32_ENTRY note: a 32-bit kernel "
		                    "boots only through PVH");
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
