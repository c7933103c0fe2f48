/*
 * Images and memory that flint must refuse before it opens /dev/kvm: every field named, exit
 * 78 (70 for host memory). These run the flint binary but need no KVM on any machine.
 */
#include "tests/lib/flintrun.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

static const uint8_t spin[] = {0xeb, 0xfe}; /* jmp . */

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
/* Just long enough for the "HdrS" signature: the version at 0x206 is past the end. */
static void truncate_hdrs(uint8_t *d, size_t *len)
{
	(void)d;
	*len = 0x206;
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
		{"bz-hdrs", truncate_hdrs, "bzImage of 518 bytes is too small for a setup header"},
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
	FILE *f = fopen(flint_payload("bzimage.bin"), "r");
	size_t full;

	assert_non_null(f); /* the payloads come from make guest-payloads */
	full = fread(img, 1, sizeof(img), f);

	(void)state;
	fclose(f);
	assert_true(full > 0x400);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		static uint8_t copy[1 << 20];
		size_t len = full;
		memcpy(copy, img, full);
		cases[i].mutate(copy, &len);
		char *path = test_write_file(cases[i].name, copy, len);
		flint_boot(path, "flint.test=1", NULL, 1, 64, NULL, NULL, 30, 0, 0);
		char want[700];
		if (cases[i].expect)
			snprintf(want, sizeof(want), "%s: %s", path, cases[i].expect);
		else /* the command line is the config's fault, not the image's */
			snprintf(want, sizeof(want), "boot-source.boot_args: 12 bytes, but %s takes at "
				 "most 4 (cmdline_size)", path);
		flint_expect(78, NULL, want);
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
		/* Read as a 32-bit ELF, which must be i386. */
		{"e_machine 62: not a little-endian i386 ELF", sizeof(e)},
		{"program headers (e_phoff 0xffff00) run past the end", sizeof(e)},
		{"segment 0: p_offset 0x78 + p_filesz 0x100000 run past the end", sizeof(e)},
		{"segment 0: p_paddr 0x7000 is below 1 MiB", sizeof(e)},
		{"segment 0: [0x7f00000, +0x200000) is not inside guest RAM", sizeof(e)},
		{"e_entry 0x9000000 is not inside a loaded segment", sizeof(e)},
		{"segment 0: p_filesz is larger than p_memsz", sizeof(e)},
		{"no PT_LOAD segment", sizeof(e)},
		{"ELF class 5: only 64-bit ELF kernels are supported (and 32-bit ones with a Xen "
		 "PHYS32_ENTRY note)", sizeof(e)},
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
		case 9: e.eh.e_ident[EI_CLASS] = 5; break;
		default: break;
		}
		path = test_write_file("bad.elf", &e, cases[i].len);
		flint_boot(path, "x", NULL, 1, 128, NULL, NULL, 30, 0, 0);
		flint_expect(78, NULL, cases[i].expect);
		free(path);
	}
}

/* A minimal ELF32 i386 kernel: @code at 1 MiB, and the Xen PHYS32_ENTRY note when @note. */
struct tiny_elf32 {
	Elf32_Ehdr eh;
	Elf32_Phdr ph[2];
	struct {
		Elf32_Nhdr nh;
		char name[4];
		uint32_t entry;
	} note;
	uint8_t code[64];
};

static void tiny_elf32(struct tiny_elf32 *e, bool note)
{
	memset(e, 0, sizeof(*e));
	memcpy(e->eh.e_ident, ELFMAG, SELFMAG);
	e->eh.e_ident[EI_CLASS] = ELFCLASS32;
	e->eh.e_ident[EI_DATA] = ELFDATA2LSB;
	e->eh.e_ident[EI_VERSION] = EV_CURRENT;
	e->eh.e_type = ET_EXEC;
	e->eh.e_machine = EM_386;
	e->eh.e_version = EV_CURRENT;
	e->eh.e_entry = 0x100000;
	e->eh.e_phoff = offsetof(struct tiny_elf32, ph);
	e->eh.e_ehsize = sizeof(Elf32_Ehdr);
	e->eh.e_phentsize = sizeof(Elf32_Phdr);
	e->eh.e_phnum = note ? 2 : 1;
	e->ph[0].p_type = PT_LOAD;
	e->ph[0].p_flags = PF_R | PF_X;
	e->ph[0].p_offset = offsetof(struct tiny_elf32, code);
	e->ph[0].p_paddr = e->ph[0].p_vaddr = 0x100000;
	e->ph[0].p_filesz = e->ph[0].p_memsz = sizeof(e->code);
	e->ph[1].p_type = PT_NOTE;
	e->ph[1].p_offset = offsetof(struct tiny_elf32, note);
	e->ph[1].p_filesz = sizeof(e->note);
	e->note.nh.n_namesz = 4;
	e->note.nh.n_descsz = 4;
	e->note.nh.n_type = 18; /* XEN_ELFNOTE_PHYS32_ENTRY */
	memcpy(e->note.name, "Xen", 4);
	e->note.entry = 0x100000;
	memcpy(e->code, spin, sizeof(spin));
}

/* A 32-bit ELF boots only through PVH: without the note, or with a bad one, it is refused. */
static void test_bad_elf32(void **state)
{
	struct tiny_elf32 e;
	char *path;

	(void)state;
	struct {
		const char *expect;
		size_t len;
	} cases[] = {
		{"32-bit ELF without a Xen PHYS32_ENTRY note: a 32-bit kernel boots only through PVH",
		 sizeof(e)},
		{"PVH entry 0x9000000 is not inside a loaded segment", sizeof(e)},
		{"Xen PHYS32_ENTRY note has a 2-byte value", sizeof(e)},
		{"e_machine 62: not a little-endian i386 ELF", sizeof(e)},
		{"e_phentsize 56 / e_phnum 2 are not valid", sizeof(e)},
		{"ELF file of 50 bytes is shorter than its header", 50},
		{"ELF note at 0x74 runs past its PT_NOTE segment", sizeof(e)},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		tiny_elf32(&e, i != 0);
		switch (i) {
		case 1: e.note.entry = 0x9000000; break;
		case 2: e.note.nh.n_descsz = 2; break;
		case 3: e.eh.e_machine = EM_X86_64; break;
		case 4: e.eh.e_phentsize = sizeof(Elf64_Phdr); break;
		case 6: e.note.nh.n_namesz = 0x100; break;
		default: break;
		}
		path = test_write_file("bad32.elf", &e, cases[i].len);
		flint_boot(path, "x", NULL, 1, 128, NULL, NULL, 30, 0, 0);
		flint_expect(78, NULL, cases[i].expect);
		free(path);
	}
}

/* With the note, a 32-bit ELF loads (--dry-run runs the loaders as a run does). */
static void test_elf32_pvh_loads(void **state)
{
	char *argv[] = {"--dry-run", NULL};
	struct tiny_elf32 e;
	char *path;

	(void)state;
	tiny_elf32(&e, true);
	path = test_write_file("good32.elf", &e, sizeof(e));
	flint_boot(path, "x", NULL, 1, 128, NULL, argv, 30, 0, 0);
	flint_expect(0, NULL, NULL);
	free(path);
	flint_boot(flint_payload("pvh32.elf"), "x", flint_payload("test-initrd.img"), 1, 128, NULL,
		   argv, 30, 0, 0);
	flint_expect(0, NULL, NULL);
}

static void test_memory_too_small_for_images(void **state)
{
	static uint8_t big[7 << 20];
	char *initrd;

	(void)state;
	memcpy(big, "FLINTRD\n", 8);
	initrd = test_write_file("big-initrd.img", big, sizeof(big));
	flint_boot(flint_payload("elf64.elf"), "x", initrd, 1, 8, NULL, NULL, 30, 0, 0);
	flint_expect(78, NULL, "big-initrd.img: initrd of 7340032 bytes does not fit between the kernel");
	flint_boot(flint_payload("elf64.elf"), "x", NULL, 1, 1, NULL, NULL, 30, 0, 0);
	flint_expect(78, NULL, "machine-config.mem_size_mib: 1 MiB is too small to boot a kernel");
	/* 512 GiB of huge pages are not there: a clear error, not a SIGBUS on first touch. */
	flint_boot_huge_pages = true;
	flint_boot(flint_payload("elf64.elf"), "x", NULL, 1, 512 * 1024, NULL, NULL, 30, 0, 0);
	flint_boot_huge_pages = false;
	flint_expect(70, NULL, "from 2M hugetlb pages (see /proc/sys/vm/nr_hugepages)");
	free(initrd);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_bzimages),
		cmocka_unit_test(test_bad_elves),
		cmocka_unit_test(test_bad_elf32),
		cmocka_unit_test(test_elf32_pvh_loads),
		cmocka_unit_test(test_memory_too_small_for_images),
	};
	return TEST_MAIN(tests, NULL, test_group_teardown);
}
