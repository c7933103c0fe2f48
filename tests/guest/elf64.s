# elf64.elf: ELF64 vmlinux-style payload (no PVH note).  flint loads the
# PT_LOAD segments at p_paddr and enters e_entry in 64-bit long mode
# (first 4 GiB identity-mapped) with %rsi = struct boot_params.
        .include "guest.inc"
        .code64
        .section .text.head, "ax"
        .globl _start
_start:
        ENTRY64_BOOT_PARAMS s_start

        .section .rodata
s_start: .asciz "flint-guest: elf64 start\n"
