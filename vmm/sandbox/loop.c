/*
 * The loop thread's allow-list: after InstanceStart (or the config's start) this thread
 * runs libevent's loop with the API, the console, the devices' queue work (virtio, TAP,
 * vsock's Unix sockets, the iommufd fault queue), the metrics and the teardown at the end.
 * It makes no thread and runs no program: clone and execve are not here.
 */
#include "iommu/uapi_compat.h"
#include "vmm/sandbox/rules.h"

#include <linux/fs.h>
#include <linux/if_tun.h>
#include <sys/socket.h>
#include <termios.h>

static const int calls[] = {
	/* libevent's loop */
	SCMP_SYS(epoll_wait),    /* the loop waits here */
	SCMP_SYS(epoll_pwait),   /* what glibc may make of epoll_wait */
	SCMP_SYS(epoll_ctl),     /* watches added and removed as devices and clients come and go */
	SCMP_SYS(clock_gettime), /* timers and log stamps, when the vDSO cannot answer */
	SCMP_SYS(gettimeofday),  /* libevent's cached wall time, the same */
	/* file descriptors: devices, clients, drives, logs */
	SCMP_SYS(read),       /* eventfds, TAP frames, the fault queue, stdin, API clients */
	SCMP_SYS(readv),      /* the same, into several buffers (libevent, TAP) */
	SCMP_SYS(write),      /* eventfds, TAP, fault answers, the console, logs, metrics */
	SCMP_SYS(writev),     /* the same, from several buffers */
	SCMP_SYS(pread64),    /* an assigned device's config space and regions (VFIO) */
	SCMP_SYS(pwrite64),   /* the same */
	SCMP_SYS(close),      /* closed clients, connections, swapped drives, the teardown */
	SCMP_SYS(openat),     /* PATCH /drives opens a drive's new file, PUT /logger its log */
	SCMP_SYS(open),       /* the same, on any libc */
	SCMP_SYS(fstat),      /* a file opened is checked before it is used (vmm/base/file.c) */
	SCMP_SYS(newfstatat), /* what glibc makes of stat, lstat and fstat */
	SCMP_SYS(statx),      /* the same on other libcs */
	SCMP_SYS(lseek),      /* a drive's size */
	SCMP_SYS(fcntl),      /* O_NONBLOCK and FD_CLOEXEC on new descriptors */
	SCMP_SYS(unlink),     /* the API and vsock sockets flint bound are removed at the end */
	SCMP_SYS(unlinkat),   /* the same */
	SCMP_SYS(eventfd2),   /* posts and kicks made after the start (a drive swapped) */
	SCMP_SYS(poll),       /* the console's last flush waits at most a second */
	SCMP_SYS(ppoll),      /* the same */
	SCMP_SYS(getrandom),  /* virtio-rng's entropy */
	/* sockets: the API's clients, vsock's host side, logs to a socket */
	SCMP_SYS(accept4),     /* a new API client or vsock host connection */
	SCMP_SYS(connect),     /* the guest connects to a host port: vsock's Unix socket */
	SCMP_SYS(bind),        /* vsock's listening socket, set up again after a reset */
	SCMP_SYS(listen),      /* the same */
	SCMP_SYS(sendto),      /* send(): vsock, the console and the log on a socket */
	SCMP_SYS(sendmsg),     /* vsock frames to the host */
	SCMP_SYS(recvfrom),    /* recv(): vsock's CONNECT line, libevent */
	SCMP_SYS(recvmsg),     /* the same */
	SCMP_SYS(shutdown),    /* a half-closed vsock stream */
	SCMP_SYS(getsockopt),  /* a connect's outcome, libevent */
	SCMP_SYS(setsockopt),  /* libevent's listeners and clients */
	SCMP_SYS(getsockname), /* the same */
	SCMP_SYS(getpeername), /* the same */
	/* threads and signals */
	SCMP_SYS(futex),           /* locks shared with vCPUs and I/O workers, joins */
	SCMP_SYS(tgkill),          /* kicking a vCPU out of KVM_RUN (pause, stop) */
	SCMP_SYS(getpid),          /* pthread_kill() asks it first */
	SCMP_SYS(gettid),          /* the same */
	SCMP_SYS(rt_sigprocmask),  /* pthread_kill() blocks signals around its kill */
	SCMP_SYS(rt_sigaction),    /* libevent restores SIGINT/SIGTERM at the end */
	SCMP_SYS(rt_sigreturn),    /* back from a signal handler */
	SCMP_SYS(restart_syscall), /* a call interrupted by a signal goes on */
	SCMP_SYS(nanosleep),       /* short waits (teardown) */
	SCMP_SYS(clock_nanosleep), /* the same */
	SCMP_SYS(sched_yield),     /* the same */
	/* memory */
	SCMP_SYS(mmap),     /* malloc */
	SCMP_SYS(munmap),   /* free, the teardown's guest memory and regions */
	SCMP_SYS(mprotect), /* malloc's arenas */
	SCMP_SYS(madvise),  /* free gives pages back */
	SCMP_SYS(brk),      /* malloc on the main thread */
	SCMP_SYS(mremap),   /* realloc of large blocks */
	/* the end */
	SCMP_SYS(exit_group), /* flint exits (and the SIGSYS handler's _exit) */
	SCMP_SYS(exit),       /* the same, from a thread */
};

/* ioctl by request number, grouped by the kind of descriptor they go to. */
static const unsigned long ioctls[] = {
	/* the terminal: stdin and stdout are checked (isatty), restored at the end */
	TCGETS, /* isatty(), tcgetattr() */
	TCSETS, /* tcsetattr(TCSANOW): the terminal as it was */
	/* sockets and pipes */
	FIONREAD, /* libevent sizes its reads */
	FIONBIO,  /* non-blocking descriptors */
	/* block devices: a drive swapped by PATCH /drives is measured */
	BLKGETSIZE64,
	/* iommufd: fault mode maps guest memory as the device faults, the teardown frees */
	IOMMU_IOAS_MAP,
	IOMMU_IOAS_UNMAP,
	IOMMU_DESTROY,
	/* VFIO device: interrupts off and a reset at the teardown */
	VFIO_DEVICE_SET_IRQS,
	VFIO_DEVICE_RESET,
	/* KVM VM: MSI routes and irqfds of an assigned device as it is torn down */
	KVM_SET_GSI_ROUTING,
	KVM_IRQFD,
	KVM_IOEVENTFD,
	KVM_SET_USER_MEMORY_REGION,
	/* TAP: offloads changed when the guest renegotiates */
	TUNSETOFFLOAD,
};

int sandbox_loop_rules(scmp_filter_ctx ctx)
{
	int r = sandbox_allow(ctx, calls, SANDBOX_COUNT(calls));

	/* Sockets made after the start are Unix ones (vsock's host side): no network. */
	if (!r)
		r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1,
		                     SCMP_A0_32(SCMP_CMP_EQ, AF_UNIX));
	if (!r)
		r = sandbox_allow_ioctls(ctx, ioctls, SANDBOX_COUNT(ioctls));
	return r;
}
