/*
 * The Linux x86 boot protocol's struct boot_params ("zero page") and struct setup_header,
 * from <asm/bootparam.h>, with the constants flint needs beside them. The offsets
 * Documentation/arch/x86/boot.rst gives are checked against the header here.
 */
#ifndef FLINT_BOOT_BOOTPARAM_H
#define FLINT_BOOT_BOOTPARAM_H

#include "boot/loader.h"

#include <asm/bootparam.h>
#include <stddef.h>

/* Where a setup header field sits, in a bzImage file and in the zero page alike. */
#define SETUP_OFFSET(field) offsetof(struct boot_params, hdr.field)

#define SETUP_BOOT_FLAG      0xaa55
#define SETUP_HDR_MAGIC      0x53726448 /* "HdrS" */
#define SETUP_ENTRY64_OFFSET 0x200 /* startup_64, from the start of the protected-mode kernel */
/* hdr.jump is a short jmp (0xeb, offset) from 0x202: its offset byte ends the header. */
#define SETUP_HEADER_END(hdr)  (SETUP_OFFSET(header) + (size_t)((hdr)->jump >> 8))
#define SETUP_LOADER_UNDEFINED 0xff /* type_of_loader of a loader without an assigned id */

_Static_assert(sizeof(struct boot_params) == 4096, "the zero page is one page");
_Static_assert(offsetof(struct boot_params, hdr) == BOOT_SETUP_HEADER_START, "hdr at 0x1f1");
_Static_assert(offsetof(struct boot_params, edd_mbr_sig_buffer) == BOOT_SETUP_HEADER_END,
               "the setup header may grow up to 0x290");
_Static_assert(SETUP_OFFSET(boot_flag) == 0x1fe && SETUP_OFFSET(jump) == 0x200 &&
                       SETUP_OFFSET(header) == 0x202 && SETUP_OFFSET(version) == 0x206 &&
                       SETUP_OFFSET(type_of_loader) == 0x210 && SETUP_OFFSET(loadflags) == 0x211 &&
                       SETUP_OFFSET(ramdisk_image) == 0x218 &&
                       SETUP_OFFSET(ramdisk_size) == 0x21c && SETUP_OFFSET(cmd_line_ptr) == 0x228 &&
                       SETUP_OFFSET(initrd_addr_max) == 0x22c &&
                       SETUP_OFFSET(kernel_alignment) == 0x230 &&
                       SETUP_OFFSET(relocatable_kernel) == 0x234 &&
                       SETUP_OFFSET(xloadflags) == 0x236 && SETUP_OFFSET(cmdline_size) == 0x238 &&
                       SETUP_OFFSET(pref_address) == 0x258 && SETUP_OFFSET(init_size) == 0x260,
               "setup header fields at the offsets of boot.rst");
_Static_assert(offsetof(struct boot_params, ext_ramdisk_image) == 0x0c0 &&
                       offsetof(struct boot_params, ext_ramdisk_size) == 0x0c4 &&
                       offsetof(struct boot_params, ext_cmd_line_ptr) == 0x0c8 &&
                       offsetof(struct boot_params, e820_entries) == 0x1e8 &&
                       offsetof(struct boot_params, e820_table) == 0x2d0 &&
                       sizeof(struct boot_e820_entry) == 20,
               "zero page fields at the offsets of zero-page.rst");

#endif
