# bzimage.bin: a minimal bzImage (Linux boot protocol 2.15, 64-bit entry).
# File layout: (SETUP_SECTS + 1) * 512 bytes of setup with the real setup
# header at 0x1f1, then the protected-mode part, which flint loads at
# 0x100000.  Offset 0x200 of the protected-mode part is startup_64, entered
# in long mode with %rsi = struct boot_params.  The real-mode entry (jump
# at 0x200 of the file) and startup_32 (offset 0) just exit with a
# distinct code: they are not part of flint's boot contract.
        .include "guest.inc"
        .set SETUP_SECTS, 3     # deliberately neither 0 nor 4

        .section .setup, "ax"
        .code16
        .org 0x1f1
setup_sects:            .byte SETUP_SECTS
root_flags:             .word 0
syssize:                .long _syssize          # 16-byte units (linker)
ram_size:               .word 0
vid_mode:               .word 0xffff            # NORMAL_VGA
root_dev:               .word 0
boot_flag:              .word 0xAA55
# 0x200
jump:                   .byte 0xeb, rm_entry - 1f
1:                      .ascii "HdrS"
version:                .word 0x020f
realmode_swtch:         .long 0
start_sys_seg:          .word 0x1000
kernel_version:         .word kver - 0x200
type_of_loader:         .byte 0
loadflags:              .byte 0x01              # LOADED_HIGH
setup_move_size:        .word 0x8000
code32_start:           .long LOAD_ADDR
ramdisk_image:          .long 0
ramdisk_size:           .long 0
bootsect_kludge:        .long 0
heap_end_ptr:           .word 0
ext_loader_ver:         .byte 0
ext_loader_type:        .byte 0
cmd_line_ptr:           .long 0
initrd_addr_max:        .long 0x7fffffff
kernel_alignment:       .long 0x200000
relocatable_kernel:     .byte 0
min_alignment:          .byte 0
xloadflags:             .word 0x0001            # XLF_KERNEL_64
cmdline_size:           .long 2047
hardware_subarch:       .long 0
hardware_subarch_data:  .quad 0
payload_offset:         .long 0
payload_length:         .long 0
setup_data:             .quad 0
pref_address:           .quad LOAD_ADDR
init_size:              .long _init_size        # linker: _end - 0x100000
handover_offset:        .long 0
kernel_info_offset:     .long 0
# end of header (0x26c)
rm_entry:               EXIT_WITH EXIT_BZ_REALMODE
kver:                   .asciz "flint-guest bzimage"
        .org (SETUP_SECTS + 1) * 512

        .section .text.head, "ax"
        .code32
startup_32:                                     # load address + 0
        EXIT_WITH EXIT_BZ_STARTUP32
        .org 0x200
        .code64
        .globl startup_64
startup_64:                                     # load address + 0x200
        ENTRY64_BOOT_PARAMS s_start

        .section .rodata
s_start: .asciz "flint-guest: bzimage start\n"
