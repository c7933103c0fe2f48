# hostile.elf: the malicious guest.  64-bit ELF entry (same state as elf64.elf).
# A pass is three phases, all driven by one xorshift64 generator seeded from
# flint.seed=N, so a failing seed replays exactly:
#   1. sweep: every port 0-0xffff read, then written, with a random size
#      (1, 2 or 4) and value;
#   2. hammer: flint.rounds=N random reads and writes (sizes 1, 2, 4, 8 on
#      MMIO) at random offsets of every device window flint has, from 8 bytes
#      before it to 8 bytes past it: the UART, the i8042, the PCI config
#      ports, the boot timer, all 19 virtio-mmio slots (present or not), the
#      start of the PCI BAR window;
#   2b. with flint.pci=1: flint.rounds/2 random configuration-space reads
#      and writes through 0xcf8/0xcfc, mostly on bus 0's slots 0-3; every
#      MMIO access is then a read (see mmio);
#   3. rings: every virtio device found is brought up and handed broken
#      virtqueues, one scenario at a time (descriptor loops, buffers outside
#      RAM or wrapping the address space, indirect tables that point at
#      themselves or loop, lengths that overflow, an available index far
#      ahead with heads out of range, rings outside RAM, a size that is no
#      power of two), each queue notified, then the device reset.
# After the last of flint.passes=P passes (default 1), the payload brings the
# entropy device (if any) up properly and checks that it still fills a
# buffer: the guest is still served.  Then it resets the UART, prints
# "flint-guest: hostile done" and exits through the exit port with 0.
# With flint.pause=1 it stops after the first and the last pass, prints
# "flint-guest: hostile pause N" and waits for a byte on the UART: the test
# reads flint's fd count and RSS while the guest waits, then sends the byte.
# What is left out, and why:
#   - writes to the exit port (0xf4-0xf7: they end the VM by design) and the
#     i8042's reset commands (0xfe, and 0xd1 which pulses reset on the next
#     byte): a guest asking for a reset gets one;
#   - writes to the ports of KVM's in-kernel PIC, PIT and ELCR (0x20, 0x21,
#     0x40-0x43, 0x61, 0xa0, 0xa1, 0x4d0, 0x4d1): they never reach flint;
#   - the IOAPIC and LAPIC: KVM's, not flint's, and an INIT sent to itself
#     would only stop the payload;
#   - mostly, random values in the queue address registers: the hammer
#     writes addresses inside its own ring area, and a random value only one
#     time in eight, so that a device writing a used ring over this code
#     (which would end the test for the wrong reason) stays out of reach.
# Exit codes: 0 done; 112 the entropy device did not fill a buffer after the
# abuse; 105 a malformed flint.* value.
        .include "guest.inc"

        .set VIRTIO_BASE,       0xD0000000
        .set VIRTIO_SLOTS,      19
        .set VIRTIO_SLOT_SIZE,  0x1000
        .set VIRTIO_MAGIC,      0x74726976      # "virt"
        .set VIRTIO_ID_RNG,     4
        .set PCI_WINDOW,        0xE0000000
        # virtio-mmio registers
        .set VM_MAGIC,          0x000
        .set VM_DEVICE_ID,      0x008
        .set VM_DEV_FEAT,       0x010
        .set VM_DEV_FEAT_SEL,   0x014
        .set VM_DRV_FEAT,       0x020
        .set VM_DRV_FEAT_SEL,   0x024
        .set VM_QUEUE_SEL,      0x030
        .set VM_QUEUE_NUM_MAX,  0x034
        .set VM_QUEUE_NUM,      0x038
        .set VM_QUEUE_READY,    0x044
        .set VM_QUEUE_NOTIFY,   0x050
        .set VM_INT_STATUS,     0x060
        .set VM_INT_ACK,        0x064
        .set VM_STATUS,         0x070
        .set VM_QUEUE_DESC,     0x080
        .set VM_QUEUE_AVAIL,    0x090
        .set VM_QUEUE_USED,     0x0a0
        .set ST_ACK_DRIVER,     3
        .set ST_FEATURES_OK,    8
        .set ST_DRIVER_OK,      4
        .set ST_NEEDS_RESET,    0x40
        .set F_INDIRECT,        1 << 28
        .set D_NEXT,            1
        .set D_WRITE,           2
        .set D_INDIRECT,        4
        # Guest RAM the payload's rings use (the tests give it 32 MiB): 16
        # ring sets of 8 KiB (descriptors at +0, up to 256 of them; available
        # ring at +0x1000; used ring at +0x1400), and the buffers apart, so
        # what a device writes into a used ring or a buffer never becomes
        # a descriptor and never lands on this code (at 1 MiB).
        .set RINGS,             0x400000
        .set RING_STRIDE,       0x2000
        .set R_AVAIL,           0x1000
        .set R_USED,            0x1400
        .set BUFS,              0x480000
        .set QSIZE,             8
        .set EXIT_NOT_SERVED,   112

        .code64
        .section .text.head, "ax"
        .globl _start
_start:
        cli
        cld
        mov $stack_top, %esp
        mov %esi, %ebp
        mov $s_start, %esi
        call puts
        mov %ebp, %esi
        call collect_boot_params
        call read_opts
        movl $0, pass
1:      call sweep
        call hammer
        call pci_config
        call rings
        incl pass
        mov pass, %eax
        cmp $1, %eax                    # a pause after the first pass...
        je 2f
        cmp passes, %eax                # ...and after the last
        jne 3f
2:      call pause
3:      mov pass, %eax
        cmp passes, %eax
        jb 1b
        call uart_reset
        call rng_served
        mov $s_done, %esi
        call puts
        xor %eax, %eax
        jmp exit_vm

# read_opts: flint.seed (default 1), flint.rounds (20000), flint.passes (1),
# flint.pause (0), flint.sweep (1), flint.pci (0).
read_opts:
        mov $k_seed, %ebx
        call get_opt
        cmp $-1, %eax
        jne 1f
        mov $1, %eax
1:      mov %eax, %eax
        movabs $0x9E3779B97F4A7C15, %rdx
        imul %rdx, %rax
        movabs $0x2545F4914F6CDD1D, %rdx
        add %rdx, %rax
        jnz 2f
        inc %rax                        # xorshift never leaves 0
2:      mov %rax, rng
        mov $k_rounds, %ebx
        mov $20000, %ebp
        call opt_or
        mov %eax, rounds
        mov $k_passes, %ebx
        mov $1, %ebp
        call opt_or
        test %eax, %eax
        jnz 3f
        inc %eax
3:      mov %eax, passes
        mov $k_pause, %ebx
        xor %ebp, %ebp
        call opt_or
        mov %eax, do_pause
        mov $k_sweep, %ebx
        mov $1, %ebp
        call opt_or
        mov %eax, do_sweep
        mov $k_pci, %ebx
        xor %ebp, %ebp
        call opt_or
        mov %eax, do_pci
        ret

# opt_or: %ebx = key, %ebp = default.  Out: %eax.
opt_or:
        call get_opt
        cmp $-1, %eax
        jne 1f
        mov %ebp, %eax
1:      ret

# rand: xorshift64.  Out: %rax.  Clobbers %rdx.
rand:
        mov rng, %rax
        mov %rax, %rdx
        shl $13, %rdx
        xor %rdx, %rax
        mov %rax, %rdx
        shr $7, %rdx
        xor %rdx, %rax
        mov %rax, %rdx
        shl $17, %rdx
        xor %rdx, %rax
        mov %rax, rng
        ret

# pio: %edx = port, %ecx = size code (0, 1, 2: 1, 2, 4 bytes), %r8d = 1
# to write %eax, 0 to read.  Writes flint (or KVM) must not see are dropped
# (see the top).  Clobbers %eax.
pio:
        and $0xffff, %edx
        test %r8d, %r8d
        jz 5f
        cmp $EXIT_PORT, %edx
        jb 1f
        cmp $EXIT_PORT + 3, %edx
        jbe 9f
1:      cmp $0x64, %edx
        jne 2f
        cmp $0xfe, %al
        je 11f
        cmp $0xd1, %al
        jne 2f
11:     xor $1, %al                     # 0xff, 0xd0: harmless commands
2:      cmp $0x20, %edx
        je 9f
        cmp $0x21, %edx
        je 9f
        cmp $0xa0, %edx
        je 9f
        cmp $0xa1, %edx
        je 9f
        cmp $0x61, %edx
        je 9f
        cmp $0x4d0, %edx
        je 9f
        cmp $0x4d1, %edx
        je 9f
        cmp $0x40, %edx
        jb 3f
        cmp $0x43, %edx
        jbe 9f
3:      cmp $1, %ecx
        jb 31f
        je 32f
        out %eax, %dx
        ret
31:     out %al, %dx
        ret
32:     out %ax, %dx
        ret
5:      cmp $1, %ecx
        jb 51f
        je 52f
        in %dx, %eax
        ret
51:     in %dx, %al
        ret
52:     in %dx, %ax
9:      ret

# mmio: %rdi = address, %ecx = size code (0-3: 1, 2, 4, 8 bytes), %r8d = 1
# to write %rax, 0 to read.  With flint.pci=1 every access is a read: the
# guest moves BARs at random, and a random write landing on QEMU's edu DMA
# registers can make QEMU itself abort.  Clobbers %rax.
mmio:
        cmpl $0, do_pci
        jne 5f
        test %r8d, %r8d
        jz 5f
        cmp $1, %ecx
        jb 1f
        je 2f
        cmp $2, %ecx
        je 4f
        mov %rax, (%rdi)
        ret
1:      mov %al, (%rdi)
        ret
2:      mov %ax, (%rdi)
        ret
4:      mov %eax, (%rdi)
        ret
5:      cmp $1, %ecx
        jb 1f
        je 2f
        cmp $2, %ecx
        je 4f
        mov (%rdi), %rax
        ret
1:      mov (%rdi), %al
        ret
2:      mov (%rdi), %ax
        ret
4:      mov (%rdi), %eax
        ret

# sweep: every port read, then written, each with a random size and value.
sweep:
        cmpl $0, do_sweep
        je 9f
        xor %r9d, %r9d                  # %r9d: port
1:      call rand
        mov %eax, %ecx
        shr $8, %ecx
        and $3, %ecx
        cmp $3, %ecx
        jne 2f
        mov $2, %ecx
2:      xor %r8d, %r8d
        mov %r9d, %edx
        call pio
        call rand
        mov %eax, %ecx
        shr $8, %ecx
        and $3, %ecx
        cmp $3, %ecx
        jne 3f
        xor %ecx, %ecx
3:      mov $1, %r8d
        mov %rax, %r10
        shr $32, %r10                   # the value: other bits than the size's
        mov %r9d, %edx
        mov %r10d, %eax
        call pio
        inc %r9d
        cmp $0x10000, %r9d
        jb 1b
9:      ret

# The windows the hammer picks from: start, length.  Ports first.
        .section .rodata
        .balign 8
pio_windows:
        .long 0x3f8, 8                  # COM1
        .long 0x2f8, 8                  # COM2: absent
        .long 0x60, 5                   # i8042
        .long 0xcf8, 8                  # PCI configuration mechanism #1
        .long 0x70, 2                   # CMOS: absent
        .long 0xf0, 4                   # just below the exit port
        .set N_PIO_WINDOWS, (. - pio_windows) / 8
mmio_windows:
        .long 0xC0000000, 0x1000        # boot timer page
        .long PCI_WINDOW, 0x1000        # PCI BAR window (nothing there without VFIO)
        .long 0xC0001000, 0x1000        # a hole above the boot timer
        .set N_MMIO_WINDOWS, (. - mmio_windows) / 8
        .text

# hammer: flint.rounds random accesses.  Half go to the virtio slots (plus
# the page past the last), mostly to the registers and the start of the
# config space; the rest to the other windows, from 8 bytes before to 8 past.
hammer:
        mov rounds, %r11d
        test %r11d, %r11d
        jz 9f
1:      call rand
        mov %rax, %r12                  # the choices
        call rand
        mov %rax, %r13                  # the value
        mov %r12d, %ecx
        and $3, %ecx                    # size code
        mov %r12, %r8
        shr $2, %r8
        and $1, %r8d                    # write?
        bt $3, %r12
        jc 5f
        # a virtio slot: slot = bits 16.. mod 20, offset bits 32..
        mov %r12, %rax
        shr $16, %rax
        and $0xffff, %eax
        xor %edx, %edx
        mov $VIRTIO_SLOTS + 1, %edi
        div %edi                        # %edx = slot
        shl $12, %edx
        mov %r12, %rax
        shr $32, %rax
        bt $4, %r12
        jc 2f
        and $0x1ff, %eax                # registers and the config space start
        jmp 3f
2:      and $0xfff, %eax
3:      add %edx, %eax
        mov %eax, %r14d                 # offset from VIRTIO_BASE
        mov $VIRTIO_BASE, %edi
        add %r14, %rdi
        mov %r13, %rax
        # The queue address registers only get ring addresses (see the top).
        mov %r14d, %edx
        and $0xfff, %edx
        cmp $VM_QUEUE_DESC, %edx
        jb 4f
        cmp $VM_QUEUE_USED + 8, %edx
        jae 4f
        call ring_value
4:      call mmio
        jmp 8f
5:      # another window: ports or MMIO
        mov %r12, %rax
        shr $32, %rax
        bt $5, %r12
        jc 6f
        xor %edx, %edx
        mov $N_PIO_WINDOWS, %edi
        div %edi
        mov pio_windows(,%rdx,8), %r14d
        mov pio_windows+4(,%rdx,8), %r15d
        call window_offset
        cmp $3, %ecx
        jne 51f
        mov $2, %ecx                    # no 8-byte port I/O
51:     mov %r14d, %edx
        mov %r13, %rax
        call pio
        jmp 8f
6:      xor %edx, %edx
        mov $N_MMIO_WINDOWS, %edi
        div %edi
        mov mmio_windows(,%rdx,8), %r14d
        mov mmio_windows+4(,%rdx,8), %r15d
        call window_offset
        mov %r14d, %edi
        mov %r13, %rax
        call mmio
8:      dec %r11d
        jnz 1b
9:      ret

# pci_config: with flint.pci=1, flint.rounds/2 random configuration-space
# accesses through 0xcf8/0xcfc: mostly bus 0's slots 0-3 (the host bridge and
# the assigned devices), one time in eight any bus, slot and function.
pci_config:
        cmpl $0, do_pci
        je 9f
        mov rounds, %r11d
        shr $1, %r11d
        jz 9f
1:      call rand
        mov %rax, %r12
        mov %r12d, %eax
        and $0xfc, %eax                 # the register
        mov %r12, %rdx
        shr $8, %rdx
        test $0x700, %edx
        jz 2f
        and $3, %edx                    # slot 0-3, function 0
        shl $11, %edx
        jmp 3f
2:      and $0xffff, %edx               # function, slot, bus
        shl $8, %edx
3:      or %edx, %eax
        or $0x80000000, %eax
        mov $0xcf8, %dx
        out %eax, %dx
        call rand
        mov %rax, %r13
        mov %r13d, %edx
        and $3, %edx
        add $0xcfc, %edx                # a byte of the data port
        mov %r13d, %ecx
        shr $2, %ecx
        and $3, %ecx
        cmp $3, %ecx
        jne 4f
        mov $2, %ecx
4:      mov %r13, %r8
        shr $4, %r8
        and $1, %r8d
        mov %r13, %rax
        shr $32, %rax
        call pio
        dec %r11d
        jnz 1b
9:      ret

# window_offset: %r14d = start, %r15d = length; picks start - 8 ..
# start + length + 8 from bits 48.. of %r12.  Out: %r14d.  Clobbers %eax, %edx.
window_offset:
        mov %r12, %rax
        shr $48, %rax
        lea 16(%r15), %edi
        xor %edx, %edx
        div %edi
        lea -8(%r14,%rdx), %r14d
        ret

# ring_value: a value for queue address register offset %edx (in the slot):
# low halves get a ring set's descriptor, available or used address (or,
# one time in eight, something outside RAM); high halves 0 (or random).
# In: %r13 random.  Out: %rax.
ring_value:
        mov %r13, %rax
        test $0x70000, %eax
        jz 9f                           # 1 in 8: as random as it came
        test $4, %edx
        jnz 3f                          # a high half
        shr $20, %rax
        and $15, %eax
        imul $RING_STRIDE, %eax
        add $RINGS, %eax
        and $0xf0, %edx
        cmp $VM_QUEUE_AVAIL, %edx
        jne 1f
        add $R_AVAIL, %eax
1:      cmp $VM_QUEUE_USED, %edx
        jne 9f
        add $R_USED, %eax
        ret
3:      xor %eax, %eax
9:      ret

# pause: prints "flint-guest: hostile pause <pass>" (with flint.pause=1) and
# waits for a byte on the UART (the test measures flint meanwhile).
pause:
        cmpl $0, do_pause
        je 9f
        call uart_reset
        mov $s_pause, %esi
        call puts
        mov pass, %eax
        add $'0', %al
        call putc
        mov $'\n', %al
        call putc
        mov $UART_LSR, %dx
1:      in %dx, %al
        test $1, %al
        jz 1b
        mov $UART_THR, %dx
        in %dx, %al
9:      ret

# uart_reset: the hammer left the UART in any state: 8N1, no divisor latch,
# no loopback, no interrupts, FIFOs cleared, input drained.
uart_reset:
        mov $UART_THR + 3, %dx
        mov $3, %al
        out %al, %dx                    # LCR
        mov $UART_THR + 1, %dx
        xor %al, %al
        out %al, %dx                    # IER
        mov $UART_THR + 4, %dx
        mov $8, %al
        out %al, %dx                    # MCR: OUT2 only
        mov $UART_THR + 2, %dx
        mov $7, %al
        out %al, %dx                    # FCR: enable, clear both FIFOs
        mov $64, %ecx
1:      mov $UART_LSR, %dx
        in %dx, %al
        test $1, %al
        jz 2f
        mov $UART_THR, %dx
        in %dx, %al
        dec %ecx
        jnz 1b
2:      ret

# --- virtqueues -------------------------------------------------------------

# dev_up: brings the device at %rbx up to FEATURES_OK (VERSION_1 and indirect
# descriptors accepted), then every queue (%r15d of them, at most 3) at
# ring set <queue> with size %r14d (QSIZE normally), then DRIVER_OK.
# Skips a queue flint reports no size for.  Clobbers %eax, %ecx, %edx.
dev_up:
        movl $0, VM_STATUS(%rbx)
        movl $ST_ACK_DRIVER, VM_STATUS(%rbx)
        movl $1, VM_DRV_FEAT_SEL(%rbx)
        movl $1, VM_DRV_FEAT(%rbx)      # VERSION_1 (bit 32)
        movl $0, VM_DRV_FEAT_SEL(%rbx)
        movl $F_INDIRECT, VM_DRV_FEAT(%rbx)
        movl $ST_ACK_DRIVER | ST_FEATURES_OK, VM_STATUS(%rbx)
        xor %ecx, %ecx
1:      cmp %r15d, %ecx
        jae 3f
        mov %ecx, VM_QUEUE_SEL(%rbx)
        mov VM_QUEUE_NUM_MAX(%rbx), %eax
        test %eax, %eax
        jz 3f
        mov %r14d, VM_QUEUE_NUM(%rbx)
        call ring_addr                  # %eax = ring set of queue %ecx
        mov ring_desc_override, %edx
        test %edx, %edx
        jz 2f
        mov %edx, %eax
2:      mov %eax, VM_QUEUE_DESC(%rbx)
        mov ring_desc_high, %edx
        mov %edx, VM_QUEUE_DESC + 4(%rbx)
        call ring_addr
        add $R_AVAIL, %eax
        mov %eax, VM_QUEUE_AVAIL(%rbx)
        movl $0, VM_QUEUE_AVAIL + 4(%rbx)
        call ring_addr
        add $R_USED, %eax
        mov %eax, VM_QUEUE_USED(%rbx)
        movl $0, VM_QUEUE_USED + 4(%rbx)
        movl $1, VM_QUEUE_READY(%rbx)
        inc %ecx
        jmp 1b
3:      movl $ST_ACK_DRIVER | ST_FEATURES_OK | ST_DRIVER_OK, VM_STATUS(%rbx)
        ret

# ring_addr: %ecx = queue.  Out: %eax = its ring set.
ring_addr:
        mov %ecx, %eax
        imul $RING_STRIDE, %eax
        add $RINGS, %eax
        ret

# ring_clear: zeroes ring sets 0-2.  Clobbers %eax, %ecx, %edi.
ring_clear:
        mov $RINGS, %edi
        mov $3 * RING_STRIDE / 4, %ecx
        xor %eax, %eax
        rep stosl
        ret

# desc: %edi = descriptor address, %rax = addr, %edx = len, %ecx = flags |
# next << 16.
desc:
        mov %rax, (%rdi)
        mov %edx, 8(%rdi)
        mov %ecx, 12(%rdi)
        ret

# avail: offers heads from the list at %esi (a 0xffff-ended list of u16) on
# ring sets 0-2 and sets each ring's index to their count (%r10d if it is not
# 0: an index far ahead).  Clobbers %eax, %ecx, %edx, %esi, %edi.
avail:
        xor %ecx, %ecx
1:      movzwl (%esi,%ecx,2), %eax
        cmp $0xffff, %eax
        je 2f
        mov %ax, RINGS + R_AVAIL + 4(,%rcx,2)
        mov %ax, RINGS + RING_STRIDE + R_AVAIL + 4(,%rcx,2)
        mov %ax, RINGS + 2 * RING_STRIDE + R_AVAIL + 4(,%rcx,2)
        inc %ecx
        jmp 1b
2:      test %r10d, %r10d
        jz 3f
        mov %r10d, %ecx
3:      mov %cx, RINGS + R_AVAIL + 2
        mov %cx, RINGS + RING_STRIDE + R_AVAIL + 2
        mov %cx, RINGS + 2 * RING_STRIDE + R_AVAIL + 2
        ret

# copy_desc: copies ring set 0's descriptors to sets 1 and 2.
copy_desc:
        mov $RINGS, %esi
        mov $RINGS + RING_STRIDE, %edi
        mov $64, %ecx
        rep movsl
        mov $RINGS, %esi
        mov $RINGS + 2 * RING_STRIDE, %edi
        mov $64, %ecx
        rep movsl
        ret

# The scenarios: each writes ring set 0's descriptors (copied to sets 1 and
# 2) and offers heads; %r10d = 0 unless the available index runs ahead.
sc_loop:                                # 0 -> 1 -> 0 -> ...
        mov $RINGS, %edi
        mov $BUFS, %eax
        mov $64, %edx
        mov $D_NEXT | D_WRITE | 1 << 16, %ecx
        call desc
        add $16, %edi
        mov $D_NEXT | 0 << 16, %ecx
        call desc
        mov $heads_0, %esi
        ret

sc_outside:                             # buffers outside RAM, and wrapping
        mov $RINGS, %edi
        mov $PCI_WINDOW, %eax
        mov $0x1000, %edx
        mov $D_WRITE, %ecx
        call desc
        add $16, %edi
        movabs $0xfffffffffffff000, %rax
        mov $0x2000, %edx
        mov $D_WRITE, %ecx
        call desc
        add $16, %edi
        movabs $0x0000100000000000, %rax
        mov $64, %edx
        xor %ecx, %ecx
        call desc
        add $16, %edi                   # a chain whose second half is outside
        mov $BUFS, %eax
        mov $16, %edx
        mov $D_NEXT | 4 << 16, %ecx
        call desc
        add $16, %edi
        mov $0x7ffff000, %eax
        mov $0x1000, %edx
        mov $D_WRITE, %ecx
        call desc
        mov $heads_0123, %esi
        ret

sc_indirect:                            # indirect tables: itself, a loop, out of range
        mov $RINGS, %edi
        mov $RINGS, %eax                # 0: the table is the descriptor table itself
        mov $16 * QSIZE, %edx
        mov $D_INDIRECT, %ecx
        call desc
        add $16, %edi
        mov $BUFS + 0x1000, %eax        # 1: a table whose two entries loop
        mov $32, %edx
        mov $D_INDIRECT, %ecx
        call desc
        add $16, %edi
        mov $BUFS, %eax                 # 2: a table of 0x10000 entries, odd length
        mov $0x100008, %edx
        mov $D_INDIRECT, %ecx
        call desc
        add $16, %edi
        mov $BUFS + 0x1000, %eax        # 3: indirect and NEXT at once
        mov $32, %edx
        mov $D_INDIRECT | D_NEXT | 2 << 16, %ecx
        call desc
        mov $BUFS + 0x1000, %edi
        mov $BUFS, %eax
        mov $16, %edx
        mov $D_NEXT | D_WRITE | 1 << 16, %ecx
        call desc
        add $16, %edi
        mov $D_NEXT | D_WRITE | 0 << 16, %ecx
        call desc
        mov $heads_0123, %esi
        ret

sc_huge:                                # lengths that overflow
        mov $RINGS, %edi
        mov $BUFS, %eax
        mov $0xffffffff, %edx
        mov $D_WRITE, %ecx
        call desc
        add $16, %edi
        mov $0xfffffff0, %edx
        xor %ecx, %ecx
        call desc
        add $16, %edi                   # 2..7: a chain of 2 GiB + 2 GiB + ...
        mov $2, %r9d
1:      mov $0x80000000, %edx
        lea 1(%r9), %ecx
        shl $16, %ecx
        or $D_NEXT | D_WRITE, %ecx
        cmp $7, %r9d
        jne 2f
        mov $D_WRITE, %ecx
2:      call desc
        add $16, %edi
        inc %r9d
        cmp $8, %r9d
        jb 1b
        mov $heads_012, %esi
        ret

sc_ahead:                               # 0x8000 heads offered, all out of range
        mov $heads_bad, %esi
        mov $0x8000, %r10d
        ret

        .section .rodata
        .balign 2
heads_0:        .short 0, 0xffff
heads_012:      .short 0, 1, 2, 0xffff
heads_0123:     .short 0, 1, 3, 2, 0xffff
heads_bad:      .short 8, 0xfffe, 9, 100, 7, 0xffff
        .balign 8
scenarios:
        .quad sc_loop, sc_outside, sc_indirect, sc_huge, sc_ahead
        .set N_SCENARIOS, (. - scenarios) / 8
        .text

# rings: for each scenario, each device: broken rings, notified; the device
# is given a moment to look, then reset.  Then two set-ups that cannot start:
# a descriptor table outside RAM, and a queue size that is no power of two.
rings:
        xor %r13d, %r13d                # scenario
1:      call ring_clear
        xor %r10d, %r10d
        call *scenarios(,%r13,8)
        call avail
        call copy_desc
        mov $VIRTIO_BASE, %ebx
        mov $VIRTIO_SLOTS, %r12d
2:      cmpl $VIRTIO_MAGIC, VM_MAGIC(%rbx)
        jne 3f
        cmpl $0, VM_DEVICE_ID(%rbx)
        je 3f
        mov $3, %r15d
        mov $QSIZE, %r14d
        call dev_up
        call notify_all
        call settle
        movl $0, VM_STATUS(%rbx)
3:      add $VIRTIO_SLOT_SIZE, %ebx
        dec %r12d
        jnz 2b
        inc %r13d
        cmp $N_SCENARIOS, %r13d
        jb 1b
        # rings that cannot be set up
        mov $VIRTIO_BASE, %ebx
        mov $VIRTIO_SLOTS, %r12d
4:      cmpl $VIRTIO_MAGIC, VM_MAGIC(%rbx)
        jne 5f
        cmpl $0, VM_DEVICE_ID(%rbx)
        je 5f
        mov $3, %r15d
        mov $QSIZE, %r14d
        movl $0xfec00000, ring_desc_override    # over the IOAPIC
        call dev_up
        call notify_all
        movl $0, ring_desc_override
        movl $0x10, ring_desc_high              # at 64 GiB
        call dev_up
        call notify_all
        movl $0, ring_desc_high
        mov $5, %r14d                           # size 5
        call dev_up
        call notify_all
        mov $0x10000, %r14d                     # size 65536
        call dev_up
        call notify_all
        call settle
        movl $0, VM_STATUS(%rbx)
5:      add $VIRTIO_SLOT_SIZE, %ebx
        dec %r12d
        jnz 4b
        ret

# notify_all: QueueNotify for queues 0-2 and one that does not exist.
notify_all:
        movl $0, VM_QUEUE_NOTIFY(%rbx)
        movl $1, VM_QUEUE_NOTIFY(%rbx)
        movl $2, VM_QUEUE_NOTIFY(%rbx)
        movl $0x1234, VM_QUEUE_NOTIFY(%rbx)
        ret

# settle: lets flint's loop see the queues: until the device says it needs a
# reset, or 200 status reads.  Acknowledges interrupts.
settle:
        mov $200, %ecx
1:      mov VM_STATUS(%rbx), %eax
        test $ST_NEEDS_RESET, %eax
        jnz 2f
        dec %ecx
        jnz 1b
2:      mov VM_INT_STATUS(%rbx), %eax
        mov %eax, VM_INT_ACK(%rbx)
        ret

# rng_served: the entropy device, brought up properly after all of that,
# fills a 64-byte buffer.  No entropy device: nothing to check.
rng_served:
        mov $VIRTIO_BASE, %ebx
        mov $VIRTIO_SLOTS, %r12d
1:      cmpl $VIRTIO_MAGIC, VM_MAGIC(%rbx)
        jne 2f
        cmpl $VIRTIO_ID_RNG, VM_DEVICE_ID(%rbx)
        je 3f
2:      add $VIRTIO_SLOT_SIZE, %ebx
        dec %r12d
        jnz 1b
        ret
3:      call ring_clear
        mov $RINGS, %edi
        mov $BUFS, %eax
        mov $64, %edx
        mov $D_WRITE, %ecx
        call desc
        movw $0, RINGS + R_AVAIL + 4
        movw $1, RINGS + R_AVAIL + 2
        mov $1, %r15d
        mov $QSIZE, %r14d
        call dev_up
        movl $0, VM_QUEUE_NOTIFY(%rbx)
        mov $100000, %ecx               # bounded: status reads give the loop time
4:      cmpw $1, RINGS + R_USED + 2
        je 5f
        mov VM_STATUS(%rbx), %eax
        dec %ecx
        jnz 4b
        mov $s_not_served, %esi
        mov $EXIT_NOT_SERVED, %al
        jmp fail
5:      cmpl $64, RINGS + R_USED + 8    # used.ring[0].len
        je 6f
        mov $s_not_served, %esi
        mov $EXIT_NOT_SERVED, %al
        jmp fail
6:      movl $0, VM_STATUS(%rbx)
        mov $s_served, %esi
        jmp puts

        .section .rodata
s_start:        .asciz "flint-guest: hostile start\n"
s_pause:        .asciz "flint-guest: hostile pause "
s_served:       .asciz "flint-guest: entropy device served after the abuse\n"
s_not_served:   .asciz "entropy device did not fill a buffer after the abuse"
s_done:         .asciz "flint-guest: hostile done\n"
k_seed:         .asciz "flint.seed="
k_rounds:       .asciz "flint.rounds="
k_passes:       .asciz "flint.passes="
k_pause:        .asciz "flint.pause="
k_sweep:        .asciz "flint.sweep="
k_pci:          .asciz "flint.pci="

        .bss
        .balign 8
rng:                    .quad 0
rounds:                 .long 0
passes:                 .long 0
pass:                   .long 0
do_pause:               .long 0
do_sweep:               .long 0
do_pci:                 .long 0
ring_desc_override:     .long 0
ring_desc_high:         .long 0
