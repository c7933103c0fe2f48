/* Model-specific registers a vCPU starts with. */
#ifndef FLINT_X86_MSR_H
#define FLINT_X86_MSR_H

/* Indexes (Intel SDM vol. 4, AMD APM vol. 2). */
#define MSR_IA32_TSC          0x00000010
#define MSR_IA32_SYSENTER_CS  0x00000174
#define MSR_IA32_SYSENTER_ESP 0x00000175
#define MSR_IA32_SYSENTER_EIP 0x00000176
#define MSR_IA32_MISC_ENABLE  0x000001a0
#define MSR_MTRR_DEF_TYPE     0x000002ff
#define MSR_STAR              0xc0000081
#define MSR_LSTAR             0xc0000082
#define MSR_CSTAR             0xc0000083
#define MSR_SYSCALL_MASK      0xc0000084
#define MSR_KERNEL_GS_BASE    0xc0000102

#define MSR_IA32_MISC_ENABLE_FAST_STRING (1ULL << 0)
#define MSR_MTRR_DEF_TYPE_ENABLE         (1ULL << 11)
#define MTRR_TYPE_WRBACK                 6ULL

/* Sets the MSRs a CPU has after reset as firmware leaves them (KVM_SET_MSRS). -errno. */
int x86_msrs_set_boot(int vcpu_fd);

#endif
