# triple.elf: negative test.  64-bit ELF entry (same state as elf64.elf).
# Loads an empty IDT (limit 0) and executes ud2: the #UD cannot be
# delivered (-> #GP -> #DF -> triple fault), so the vCPU shuts down
# (KVM_EXIT_SHUTDOWN) and flint must report a triple fault / shutdown.
# ud2 comes first on purpose: on the software KVM of the dev machines
# (kvm-pvm), a software interrupt (int3 / int n) with an unusable IDT
# ends in KVM_EXIT_INTERNAL_ERROR (suberror 1, emulation failure) instead
# of a shutdown, while ud2, #DE and #PF give KVM_EXIT_SHUTDOWN.  The int3
# after it is only a fallback.  If execution ever gets past both, exit
# with EXIT_NO_TRIPLE (110).
        .include "guest.inc"
        .code64
        .section .text.head, "ax"
        .globl _start
_start:
        cli
        cld
        mov $stack_top, %esp
        mov $s_start, %esi
        call puts
        lidt idt_empty
        ud2
        int3
        mov $s_alive, %esi
        mov $EXIT_NO_TRIPLE, %al
        jmp fail

        .section .rodata
        .balign 16
idt_empty:      .word 0                 # limit 0: no usable vector
                .quad 0
s_start: .asciz "flint-guest: triple start (empty IDT + ud2, expect triple fault)\n"
s_alive: .asciz "triple: still running after ud2/int3 with an empty IDT"
