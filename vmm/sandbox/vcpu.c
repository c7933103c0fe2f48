/*
 * A vCPU thread's allow-list: KVM_RUN, and what the exits it handles itself do (port and
 * MMIO accesses to the devices: registers, an assigned device's BARs and config space,
 * MSI routes; a crash's register dump). Work on queues goes to the loop (loop_post).
 */
#include "iommu/uapi_compat.h"
#include "vmm/sandbox/rules.h"

#include <linux/if_tun.h>

static const int calls[] = {
	SCMP_SYS(futex),           /* locks: the buses, the devices, the pause gate */
	SCMP_SYS(write),           /* eventfds (irqfds, loop posts, a drive's kick), log lines */
	SCMP_SYS(sendto),          /* a log line when stderr is a socket */
	SCMP_SYS(pread64),         /* an assigned device's config space and trapped BAR pieces */
	SCMP_SYS(pwrite64),        /* the same */
	SCMP_SYS(close),           /* an MSI's eventfd when the guest takes a vector away */
	SCMP_SYS(eventfd2),        /* an MSI's eventfd when the guest programs a vector */
	SCMP_SYS(mmap),            /* malloc (its arena, a loop post) */
	SCMP_SYS(munmap),          /* free */
	SCMP_SYS(mprotect),        /* malloc's arena grows */
	SCMP_SYS(madvise),         /* free gives pages back, and the thread's end its stack */
	SCMP_SYS(clock_gettime),   /* log stamps and rate limits when the vDSO cannot answer */
	SCMP_SYS(rt_sigprocmask),  /* glibc blocks signals as the thread ends */
	SCMP_SYS(rt_sigreturn),    /* back from the kick signal's handler */
	SCMP_SYS(restart_syscall), /* a wait interrupted by the kick goes on */
	SCMP_SYS(exit),            /* the thread ends */
	SCMP_SYS(exit_group),      /* the SIGSYS handler's _exit, and any fatal end */
};

static const unsigned long ioctls[] = {
	/* KVM vCPU */
	KVM_RUN,
	KVM_GET_REGS,  /* the register dump of a crash or a timeout */
	KVM_GET_SREGS, /* the same */
	/* KVM VM: an assigned device's BARs and MSIs as the guest programs them */
	KVM_SET_USER_MEMORY_REGION,
	KVM_SET_GSI_ROUTING,
	KVM_IRQFD,
	KVM_IOEVENTFD,
	/* VFIO device: MSI-X enabled, vectors set, function reset by the guest */
	VFIO_DEVICE_SET_IRQS,
	VFIO_DEVICE_RESET,
	/* TAP: the guest's negotiated offloads (virtio-net's activate) */
	TUNSETOFFLOAD,
};

int sandbox_vcpu_rules(scmp_filter_ctx ctx)
{
	int r = sandbox_allow(ctx, calls, SANDBOX_COUNT(calls));

	return r ? r : sandbox_allow_ioctls(ctx, ioctls, SANDBOX_COUNT(ioctls));
}
