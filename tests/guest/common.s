# Common routines of the flint test guests: UART output, command-line
# parsing, memory-map and initrd checks, exit.  Assembled three times:
#   as --64 --defsym BITS=32  -> common32.o  (PVH, paging off)
#   as --64 --defsym BITS=64  -> common64.o  (bzImage / ELF, long mode)
#   as --32 --defsym BITS=32  -> common32-i386.o  (pvh32.elf, ELF32)
# Only 32-bit registers and addresses are used (see guest.inc), so the
# same instructions are valid in both modes.  Routines keep no state in
# registers across calls unless stated; state lives in the variables
# below.  Exit codes are listed in guest.inc and README.md.

        .include "guest.inc"

        .if BITS == 64
        .code64
        .else
        .code32
        .endif

        .globl putc, puts, puthex, exit_vm, fail
        .globl collect_boot_params, collect_hvm_start_info, guest_main, get_opt
        .globl stack_top

        .text

# putc: print %al.  Preserves all registers.  Polls LSR.THRE (bounded, so
# a broken LSR cannot hang the guest).
putc:
        PUSHR ax
        PUSHR cx
        PUSHR dx
        mov %al, %ah
        mov $UART_LSR, %dx
        mov $256, %ecx
1:      in %dx, %al
        test $UART_LSR_THRE, %al
        jnz 2f
        dec %ecx
        jnz 1b
2:      mov %ah, %al
        mov $UART_THR, %dx
        out %al, %dx
        POPR dx
        POPR cx
        POPR ax
        ret

# puts: print NUL-terminated string at %esi.  Clobbers %eax, %esi.
puts:
1:      mov (%esi), %al
        test %al, %al
        jz 2f
        call putc
        inc %esi
        jmp 1b
2:      ret

# puthex: print %eax as 0xXXXXXXXX.  Clobbers %eax, %ebx, %ecx.
puthex:
        mov %eax, %ebx
        mov $'0', %al
        call putc
        mov $'x', %al
        call putc
        mov $8, %ecx
hexdigits:                              # %ebx value, %ecx digits left
        rol $4, %ebx
        mov %bl, %al
        and $0xf, %al
        add $'0', %al
        cmp $'9', %al
        jbe 2f
        add $('a' - '0' - 10), %al
2:      call putc
        dec %ecx
        jnz hexdigits
        ret

# puthex64: print the u64 at (%edi) as 0xHHHHHHHH_LLLLLLLL.
# Clobbers %eax, %ebx, %ecx.
puthex64:
        mov 4(%edi), %eax
        call puthex
        mov $'_', %al
        call putc
        mov (%edi), %ebx
        mov $8, %ecx
        jmp hexdigits

# exit_vm: exit with code %al through the isa-debug-exit port.
exit_vm:
        out %al, $EXIT_PORT
        cli
1:      hlt
        jmp 1b

# fail: print "flint-guest: FAIL: " + string at %esi + "\n", exit %al.
fail:
        mov %eax, %ebp
        mov %esi, %edi
        mov $s_fail, %esi
        call puts
        mov %edi, %esi
        call puts
        mov $'\n', %al
        call putc
        mov %ebp, %eax
        jmp exit_vm

# collect_boot_params: %esi = struct boot_params (bzImage, ELF entry).
collect_boot_params:
        mov %esi, %ebp
        mov $s_bp, %esi
        call puts
        mov %ebp, %eax
        call puthex
        mov $'\n', %al
        call putc
        mov BP_CMD_LINE_PTR(%ebp), %eax
        mov %eax, bi_cmdline
        lea BP_E820_TABLE(%ebp), %eax
        mov %eax, bi_mmap
        movzbl BP_E820_ENTRIES(%ebp), %eax
        mov %eax, bi_mmap_n
        movl $20, bi_mmap_stride
        mov BP_RAMDISK_IMAGE(%ebp), %eax
        mov %eax, bi_initrd
        mov BP_RAMDISK_SIZE(%ebp), %eax
        mov %eax, bi_initrd_size
        ret

# collect_hvm_start_info: %esi = struct hvm_start_info (PVH, from %ebx).
collect_hvm_start_info:
        mov %esi, %ebp
        mov $s_hvm, %esi
        call puts
        mov %ebp, %eax
        call puthex
        mov $s_version, %esi
        call puts
        mov HVM_SI_VERSION(%ebp), %eax
        call puthex
        mov $'\n', %al
        call putc
        cmpl $HVM_MAGIC, HVM_SI_MAGIC(%ebp)
        mov $s_hvm_magic, %esi
        mov $EXIT_PVH_MAGIC, %al
        jne fail
        # cmdline: a u64 address, must be below 4 GiB (0 = none)
        cmpl $0, HVM_SI_CMDLINE+4(%ebp)
        mov $s_cmdline_high, %esi
        mov $EXIT_CMDLINE_BAD, %al
        jne fail
        mov HVM_SI_CMDLINE(%ebp), %eax
        mov %eax, bi_cmdline
        # memory map (version >= 1 only); stride 24
        xor %eax, %eax
        mov %eax, bi_mmap
        mov %eax, bi_mmap_n
        movl $24, bi_mmap_stride
        cmpl $1, HVM_SI_VERSION(%ebp)
        jb 1f
        cmpl $0, HVM_SI_MEMMAP+4(%ebp)
        mov $s_memmap_high, %esi
        mov $EXIT_E820_BAD, %al
        jne fail
        mov HVM_SI_MEMMAP(%ebp), %eax
        mov %eax, bi_mmap
        mov HVM_SI_MEMMAP_N(%ebp), %eax
        mov %eax, bi_mmap_n
1:      # initrd = first module (address and size must fit in 32 bits)
        xor %eax, %eax
        mov %eax, bi_initrd
        mov %eax, bi_initrd_size
        cmpl $0, HVM_SI_NR_MODULES(%ebp)
        je 2f
        cmpl $0, HVM_SI_MODLIST+4(%ebp)
        jne 2f
        mov HVM_SI_MODLIST(%ebp), %edi
        test %edi, %edi
        jz 2f
        cmpl $0, 4(%edi)                # module paddr >= 4 GiB: unusable
        jne 2f
        cmpl $0, 12(%edi)
        jne 2f
        mov (%edi), %eax
        mov %eax, bi_initrd
        mov 8(%edi), %eax
        mov %eax, bi_initrd_size
2:      ret

# find_opt: find "key" (%ebx, NUL-terminated, ends in '=') at the start
# of a cmdline word.  Out: %edi = first char of the value, 0 if absent.
# Clobbers %eax, %ecx, %edx, %esi.
find_opt:
        mov bi_cmdline, %edi
        test %edi, %edi
        jz 4f
        mov $' ', %dl                   # char before %edi
1:      cmp $' ', %dl                   # at a word start?
        ja 3f
        mov %ebx, %esi
        mov %edi, %ecx
2:      mov (%esi), %al
        test %al, %al
        jz 5f                           # whole key matched
        cmp (%ecx), %al
        jne 3f
        inc %esi
        inc %ecx
        jmp 2b
3:      mov (%edi), %dl
        test %dl, %dl
        jz 4f
        inc %edi
        jmp 1b
4:      xor %edi, %edi
        ret
5:      mov %ecx, %edi
        ret

# parse_dec: decimal at %edi up to a blank/NUL.  Out: %eax, CF=1 if
# malformed (no digits or a non-digit).  Saturates near 1e9.
# Clobbers %ecx, %edx, %edi.
parse_dec:
        xor %eax, %eax
        xor %ecx, %ecx
1:      movzbl (%edi), %edx
        cmp $' ', %dl
        jbe 3f
        sub $'0', %edx
        cmp $9, %edx
        ja 4f
        cmp $100000000, %eax
        jae 2f
        imul $10, %eax, %eax
        add %edx, %eax
2:      inc %ecx
        inc %edi
        jmp 1b
3:      test %ecx, %ecx
        jz 4f
        clc
        ret
4:      stc
        ret

# get_opt: %ebx = key.  Out: %eax = value, or -1 if absent.  Fails with
# EXIT_CMDLINE_BAD on a malformed value.
get_opt:
        call find_opt
        mov $-1, %eax
        test %edi, %edi
        jz 1f
        call parse_dec
        jc bad_cmdline
1:      ret

bad_cmdline:
        mov $s_bad_cmdline, %esi
        mov $EXIT_CMDLINE_BAD, %al
        jmp fail

# guest_main: bi_* filled in; parse cmdline, check, report, exit.
guest_main:
        # --- command line ---
        mov $s_cmdline, %esi
        call puts
        mov bi_cmdline, %esi
        test %esi, %esi
        jz 1f
        call puts
1:      mov $s_quote_nl, %esi
        call puts

        mov $k_exit, %ebx
        call get_opt
        cmp $127, %eax
        jbe 1f
        cmp $-1, %eax
        jne bad_cmdline
1:      mov %eax, opt_exit
        mov $k_mem, %ebx
        call get_opt
        mov %eax, opt_mem
        mov $k_initrd, %ebx
        call get_opt
        mov %eax, opt_initrd

        # --- memory map ---
        mov bi_mmap_n, %ecx
        test %ecx, %ecx
        jz 1f
        cmp $128, %ecx
        ja 1f
        cmpl $0, bi_mmap
        jne 2f
1:      mov $s_mmap_bad, %esi
        mov $EXIT_E820_BAD, %al
        jmp fail
2:      xorl %eax, %eax
        mov %eax, mm_top
        mov %eax, mm_covered
        mov bi_mmap, %edi
3:      mov %ecx, mm_left
        mov %edi, mm_ent
        # print "flint-guest: mem 0x.._.. size 0x.._.. type 0x.."
        mov $s_mem, %esi
        call puts
        call puthex64
        mov $s_size, %esi
        call puts
        add $8, %edi
        call puthex64
        mov $s_type, %esi
        call puts
        mov 8(%edi), %eax
        call puthex
        mov $'\n', %al
        call putc
        mov mm_ent, %edi
        cmpl $1, 16(%edi)               # usable RAM only
        jne 5f
        cmpl $0, 4(%edi)                # starts at/above 4 GiB
        jne 5f
        mov (%edi), %eax                # start
        mov 8(%edi), %ebx               # end = start + size (64-bit)
        mov 12(%edi), %edx
        add %eax, %ebx
        adc $0, %edx
        jz 4f
        mov $0xffffffff, %ebx           # reaches 4 GiB: saturate
4:      cmp mm_top, %ebx
        jbe 4f
        mov %ebx, mm_top
4:      cmp $LOAD_ADDR, %eax            # covers [LOAD_ADDR, _end) ?
        ja 5f
        cmp $_end, %ebx
        jb 5f
        movl $1, mm_covered
5:      mov mm_ent, %edi
        add bi_mmap_stride, %edi
        mov mm_left, %ecx
        dec %ecx
        jnz 3b

        cmpl $0, mm_covered
        jne 1f
        mov $s_mmap_cover, %esi
        mov $EXIT_E820_COVER, %al
        jmp fail
1:      mov opt_mem, %eax
        cmp $-1, %eax
        jne 2f
        mov $s_mem_unchecked, %esi
        call puts
        jmp 3f
2:      cmp $(RAM_TOP_MAX >> 20), %eax
        jbe 2f
        mov $(RAM_TOP_MAX >> 20), %eax
2:      shl $20, %eax
        cmp mm_top, %eax
        je 3f
        mov %eax, %ebp
        mov $s_top_is, %esi
        call puts
        mov mm_top, %eax
        call puthex
        mov $s_top_want, %esi
        call puts
        mov %ebp, %eax
        call puthex
        mov $'\n', %al
        call putc
        mov $s_mmap_top, %esi
        mov $EXIT_E820_TOP, %al
        jmp fail
3:      mov $s_e820_ok, %esi
        call puts

        # --- initrd ---
        mov opt_initrd, %eax
        cmp $-1, %eax
        je 2f
        test %eax, %eax
        jz 2f
        mov $s_initrd, %esi
        call puts
        mov bi_initrd, %eax
        call puthex
        mov $s_size, %esi
        call puts
        mov bi_initrd_size, %eax
        call puthex
        mov $'\n', %al
        call putc
        mov bi_initrd, %edi
        test %edi, %edi
        jz 1f
        cmpl $8, bi_initrd_size
        jae 3f
1:      mov $s_initrd_none, %esi
        mov $EXIT_INITRD_NONE, %al
        jmp fail
3:      cmpl $0x4e494c46, (%edi)        # "FLIN"
        jne 4f
        cmpl $0x0a445254, 4(%edi)       # "TRD\n"
        je 5f
4:      mov $s_initrd_magic, %esi
        mov $EXIT_INITRD_MAGIC, %al
        jmp fail
5:      mov $s_initrd_ok, %esi
        call puts
2:
        # --- boot timer, done ---
        mov $BOOT_TIMER, %edi           # via a register: a disp32 would
        movb $BOOT_TIMER_VAL, (%edi)    # sign-extend in 64-bit mode
        mov opt_exit, %eax
        cmp $-1, %eax
        jne 1f
        mov $s_no_exit, %esi
        call puts
        mov $EXIT_NO_TEST_EXIT, %eax
1:      mov %eax, %ebp
        mov $s_done, %esi
        call puts
        mov %ebp, %eax
        jmp exit_vm

        .section .rodata
s_fail:         .asciz "flint-guest: FAIL: "
s_bp:           .asciz "flint-guest: boot_params at "
s_hvm:          .asciz "flint-guest: hvm_start_info at "
s_version:      .asciz " version "
s_hvm_magic:    .asciz "hvm_start_info magic is not 0x336ec578"
s_cmdline_high: .asciz "cmdline above 4 GiB"
s_memmap_high:  .asciz "memmap above 4 GiB"
s_bad_cmdline:  .asciz "malformed flint.test_* value on the cmdline"
s_cmdline:      .asciz "flint-guest: cmdline \""
s_quote_nl:     .asciz "\"\n"
k_exit:         .asciz "flint.test_exit="
k_mem:          .asciz "flint.test_mem_mib="
k_initrd:       .asciz "flint.test_initrd="
s_mmap_bad:     .asciz "e820: memory map missing or implausible entry count"
s_mem:          .asciz "flint-guest: mem "
s_size:         .asciz " size "
s_type:         .asciz " type "
s_mmap_cover:   .asciz "e820: no usable entry covers the load area 0x100000.._end"
s_mem_unchecked: .asciz "flint-guest: no flint.test_mem_mib=, RAM top not checked\n"
s_top_is:       .asciz "flint-guest: usable RAM below 4 GiB ends at "
s_top_want:     .asciz ", expected "
s_mmap_top:     .asciz "e820: usable RAM top below 4 GiB != min(test_mem_mib, 3 GiB)"
s_e820_ok:      .asciz "flint-guest: e820 ok\n"
s_initrd:       .asciz "flint-guest: initrd at "
s_initrd_none:  .asciz "initrd: missing (address 0 or size < 8)"
s_initrd_magic: .asciz "initrd: does not start with FLINTRD\\n"
s_initrd_ok:    .asciz "flint-guest: initrd ok\n"
s_no_exit:      .asciz "flint-guest: no flint.test_exit= on the cmdline, exit 99\n"
s_done:         .asciz "flint-guest: done\n"

        .bss
        .balign 16
bi_cmdline:     .long 0
bi_mmap:        .long 0
bi_mmap_n:      .long 0
bi_mmap_stride: .long 0
bi_initrd:      .long 0
bi_initrd_size: .long 0
opt_exit:       .long 0
opt_mem:        .long 0
opt_initrd:     .long 0
mm_top:         .long 0
mm_covered:     .long 0
mm_left:        .long 0
mm_ent:         .long 0
        .balign 16
stack:          .skip 1024
stack_top:
