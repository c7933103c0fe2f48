# pvh.elf: ELF64 whose entry is given by a Xen ELF note
# XEN_ELFNOTE_PHYS32_ENTRY (18), like Linux's vmlinux.  flint enters the
# note's address in 32-bit protected mode, paging off, flat CS/DS/SS,
# with %ebx = struct hvm_start_info.  The ELF e_entry points at a 64-bit
# stub that reports EXIT_PVH_E_ENTRY, so a loader that ignores the note
# fails loudly instead of running 32-bit code in long mode.
#
# pvh32.elf (assembled with `as --32 --defsym PVH32=1`, linked with
# `ld -m elf_i386`): the same as an ELF32 i386 image, as `gcc -m32` test
# kernels are built, with a 4-byte note descriptor (a 32-bit kernel's
# _ASM_PTR).  Its e_entry is a 32-bit stub that reports EXIT_PVH_E_ENTRY.
        .include "guest.inc"
        .set XEN_ELFNOTE_PHYS32_ENTRY, 18

        .section .text.head, "ax"
        .code32
        .globl pvh_start
pvh_start:
        cli
        cld
        mov $stack_top, %esp
        mov %ebx, %ebp                  # hvm_start_info
        mov $s_start, %esi
        call puts
        mov %ebp, %esi
        call collect_hvm_start_info
        jmp guest_main

        .ifdef PVH32
        .globl _start
_start:                                 # ELF e_entry: wrong entry for PVH
        cli
        mov $stack_top, %esp
        mov $s_wrong, %esi
        call puts
        EXIT_WITH EXIT_PVH_E_ENTRY
        .else
        .code64
        .globl _start
_start:                                 # ELF e_entry: wrong entry for PVH
        lea s_wrong(%rip), %rsi
        mov $UART_THR, %dx
1:      lodsb
        test %al, %al
        jz 2f
        out %al, %dx
        jmp 1b
2:      EXIT_WITH EXIT_PVH_E_ENTRY
        .endif

        .section .rodata
        .ifdef PVH32
s_start: .asciz "flint-guest: pvh32 start\n"
s_wrong: .asciz "flint-guest: FAIL: pvh32.elf entered at e_entry, PVH note ignored\n"
        .else
s_start: .asciz "flint-guest: pvh start\n"
s_wrong: .asciz "flint-guest: FAIL: pvh.elf entered at e_entry in 64-bit mode, PVH note ignored\n"
        .endif

# Xen ELF note, laid out as Linux's ELFNOTE(): 4-byte words, name "Xen",
# descriptor = the 32-bit entry as an _ASM_PTR: .quad in a 64-bit image,
# .long in a 32-bit one.
        .section .note.Xen, "a", @note
        .balign 4
        .long 2f - 1f                   # namesz = 4
        .long 4f - 3f                   # descsz = 8 (pvh32.elf: 4)
        .long XEN_ELFNOTE_PHYS32_ENTRY
1:      .asciz "Xen"
2:      .balign 4
        .ifdef PVH32
3:      .long pvh_start
        .else
3:      .quad pvh_start
        .endif
4:      .balign 4
