/* kvm-run: KVM works inside L1 (nested virtualization under QEMU TCG).
 * Runs a three-instruction real-mode guest (mov al,42; out 0xf4,al; hlt)
 * and checks the exits: KVM_EXIT_IO carrying 42, then KVM_EXIT_HLT. */
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "rig.h"

#define GUEST_ADDR 0x1000

int main(void)
{
    static const uint8_t code[] = {
        0xb0, 42,   /* mov al, 42 */
        0xe6, 0xf4, /* out 0xf4, al */
        0xf4,       /* hlt */
    };

    int kvm = CHECK_SYS(open("/dev/kvm", O_RDWR | O_CLOEXEC));
    int api = CHECK_SYS(ioctl(kvm, KVM_GET_API_VERSION, 0));
    CHECK(api == KVM_API_VERSION, "KVM_GET_API_VERSION %d", api);

    int vm = CHECK_SYS(ioctl(kvm, KVM_CREATE_VM, 0));
    uint8_t *mem = mmap(NULL, 0x1000, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(mem != MAP_FAILED, "mmap guest memory");
    memcpy(mem, code, sizeof(code));

    struct kvm_userspace_memory_region region = {
        .slot = 0,
        .guest_phys_addr = GUEST_ADDR,
        .memory_size = 0x1000,
        .userspace_addr = (uintptr_t)mem,
    };
    CHECK_SYS(ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region));

    int vcpu = CHECK_SYS(ioctl(vm, KVM_CREATE_VCPU, 0));
    int run_size = CHECK_SYS(ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0));
    struct kvm_run *run = mmap(NULL, run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
    CHECK(run != MAP_FAILED, "mmap kvm_run");

    /* Real mode, CS base 0: execution starts at GUEST_ADDR. */
    struct kvm_sregs sregs;
    CHECK_SYS(ioctl(vcpu, KVM_GET_SREGS, &sregs));
    sregs.cs.base = 0;
    sregs.cs.selector = 0;
    CHECK_SYS(ioctl(vcpu, KVM_SET_SREGS, &sregs));
    struct kvm_regs regs = { .rip = GUEST_ADDR, .rflags = 0x2 };
    CHECK_SYS(ioctl(vcpu, KVM_SET_REGS, &regs));

    CHECK_SYS(ioctl(vcpu, KVM_RUN, 0));
    CHECK(run->exit_reason == KVM_EXIT_IO, "first exit reason %u, want KVM_EXIT_IO", run->exit_reason);
    CHECK(run->io.direction == KVM_EXIT_IO_OUT && run->io.port == 0xf4 && run->io.size == 1 &&
              run->io.count == 1,
          "io exit dir %u port %#x size %u count %u", run->io.direction, run->io.port,
          run->io.size, run->io.count);
    uint8_t val = *((uint8_t *)run + run->io.data_offset);
    CHECK(val == 42, "guest wrote %u, want 42", val);

    CHECK_SYS(ioctl(vcpu, KVM_RUN, 0));
    CHECK(run->exit_reason == KVM_EXIT_HLT, "second exit reason %u, want KVM_EXIT_HLT",
          run->exit_reason);

    rig_info("guest wrote %u to port 0xf4, then halted", val);
    return 0;
}
