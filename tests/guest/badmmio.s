# badmmio.elf: negative test.  64-bit ELF entry (same state as elf64.elf).
# Writes and reads an MMIO address in the 32-bit hole where no device
# sits (0xE0001000).  flint logs a warning and ignores the write; reads
# return all-ones.  Exit 7 if the read gave 0xffffffff, 8 otherwise.
        .include "guest.inc"
        .set BAD_MMIO, 0xE0001000
        .code64
        .section .text.head, "ax"
        .globl _start
_start:
        cli
        cld
        mov $stack_top, %esp
        mov $s_start, %esi
        call puts
        mov $BAD_MMIO, %edi             # via a register (no sign-extension)
        movl $0x5aa5f00d, (%edi)
        mov (%edi), %ebp
        mov $s_read, %esi
        call puts
        mov %ebp, %eax
        call puthex
        cmp $0xffffffff, %ebp
        jne 1f
        mov $s_ones, %esi
        call puts
        mov $7, %al
        jmp exit_vm
1:      mov $s_not_ones, %esi
        call puts
        mov $8, %al
        jmp exit_vm

        .section .rodata
s_start:    .asciz "flint-guest: badmmio start\n"
s_read:     .asciz "flint-guest: badmmio read of 0xe0001000 = "
s_ones:     .asciz " (all-ones, ok)\nflint-guest: done\n"
s_not_ones: .asciz " (NOT all-ones)\nflint-guest: done\n"
