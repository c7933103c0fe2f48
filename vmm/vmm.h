/* Building and running one VM from a validated config. */
#ifndef FLINT_VMM_H
#define FLINT_VMM_H

#include "vmm/caps.h"
#include "vmm/sandbox.h"
#include "vmm/jail.h"
#include "vmm/vm_config.h"

struct metrics;
struct phases;
struct vm_early;
struct resolver_stats;

struct run_opts {
	double timeout_s;          /* 0: none */
	const char *serial_log;    /* also (or only) write the console here */
	bool console_stdout;       /* write the console to stdout */
	long long start_ns;        /* CLOCK_MONOTONIC at process start, for the boot timer */
	const char *metrics_path;  /* --metrics-path: metrics configured when the process starts */
	const char *id;            /* the instance id (--id), for metrics' emit_id */
	struct caps_id run_as;     /* --uid/--gid: who flint becomes once the VM is built */
	enum sandbox_mode seccomp; /* --seccomp: each thread's filter (sandbox.h); 0 is on */
	/*
	 * The process's MMDS store (main.c makes it, the API fills it): what a net device
	 * named in cfg->mmds answers the guest's MMDS requests from (mmds_net()). NULL when
	 * nothing needed one: no API, no --metadata, no mmds-config (so no net device uses it).
	 */
	struct mmds *mmds;
	struct jail *jail;     /* --chroot: entered just before the drop; NULL: none */
	struct phases *phases; /* start-up phase marks (base/phases.h); NULL: none */
	/*
	 * The process ends as soon as the VM is freed (main sets it; tests do not): what the
	 * kernel releases at exit anyway (the VM's and vCPUs' fds, their kvm_run pages, guest
	 * RAM; and the event loop, with its fds and signal handlers, except in the sanitizer
	 * build, vmm.c) is left to it, as a process that just exits leaves it (issue #16:
	 * closing them first cost more, and nothing in them is lost). Everything else is still
	 * torn down.
	 */
	bool process_exits;
	/* The KVM VM and the loop, made while the config is read (vm_early.h); NULL: none. */
	struct vm_early *early;
};

/*
 * For --dry-run: everything a run does before it opens /dev/kvm (guest memory, the images
 * through the real loaders, an inherited iommufd). Returns 0 or flint's exit code.
 */
int vmm_check(const struct vm_config *cfg);
/* Runs the VM to its end. Returns flint's exit code (see exitcode.h). */
int vmm_run(const struct vm_config *cfg, const struct run_opts *opts);

/*
 * vmm_run() in steps, for the API, which serves requests on the loop before the VM exists.
 * Main thread only.
 *
 * vmm_new: the process around a VM: the loop (with SIGINT/SIGTERM), the console, the
 * metrics (opts->metrics_path opened now, as Firecracker opens --metrics-path: a bad one is
 * FLINT_EXIT_USAGE). Returns 0, or an exit code with *out NULL.
 * vmm_start: builds and starts the VM of @cfg, which must outlive @m. Returns 0 when the
 * vCPUs run, else an exit code (the reason logged): what had started is stopped, and the
 * process cannot start a VM again (as one that ran cannot). Once the VM's files and
 * devices are open, before any of its threads starts, flint drops its privileges
 * (caps.h) and becomes opts->run_as: until then (an API waiting for InstanceStart) it
 * keeps them. cfg->metrics_path is
 * configured first (metrics are configured once: when they are already, it is
 * FLINT_EXIT_CONFIG); once the vCPUs run, a metrics line is written and then every 60 s.
 * vmm_wait: runs the loop until the VM ends or, before a start, a signal or loop_stop();
 * after a VM ran, writes the last metrics line.
 * vmm_free: stops and releases everything (safe with NULL).
 */
struct vmm;
int vmm_new(struct vmm **out, const struct run_opts *opts);
struct loop *vmm_loop(struct vmm *m);
int vmm_start(struct vmm *m, const struct vm_config *cfg);
int vmm_wait(struct vmm *m);
void vmm_free(struct vmm *m);

/*
 * A running VM, from the loop thread (the API). vmm_pause returns once no vCPU runs guest
 * code (-ETIMEDOUT, logged, when they did not stop; -ESRCH: no VM runs); devices finish
 * what they hold, and the guest, stopped, gives them no more. vmm_resume lets the vCPUs
 * run on; interrupts raised meanwhile are delivered then. vmm_ctrl_alt_del presses
 * Ctrl-Alt-Del on the i8042 keyboard (-EBUSY: the last presses are not read yet).
 */
int vmm_pause(struct vmm *m);
void vmm_resume(struct vmm *m);
int vmm_ctrl_alt_del(struct vmm *m);

/* The process's metrics writer (vmm/metrics.h), for the API: PUT /metrics, FlushMetrics. */
struct metrics *vmm_metrics(struct vmm *m);
/* The fault resolver's counters; NULL when no VM runs or no device is in fault mode. */
const struct resolver_stats *vmm_iommu_stats(struct vmm *m);

/*
 * The running VM's devices changed from the loop thread (the API's PATCH), each by its
 * config id; -ESRCH when no VM runs, -ENOENT when it has no such device.
 * vmm_drive_find: the drive is there, *read_only says how a new file for it is opened.
 * vmm_drive_update: @fd (opened so, checked by the caller; -1: none) backs the drive from
 * now on and the VM owns it (but for an error: the caller closes it then); @limiter
 * (NULL: none) updates its rate limiter's buckets (ratelimit_update()).
 * vmm_net_update: the same for an interface's RX and TX limiters.
 */
int vmm_drive_find(struct vmm *m, const char *id, bool *read_only);
int vmm_drive_update(struct vmm *m, const char *id, int fd, const struct rate_limiter *limiter);
int vmm_net_update(struct vmm *m, const char *id, const struct rate_limiter *rx,
                   const struct rate_limiter *tx);

#endif
