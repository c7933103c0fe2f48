/* Assembles one VM from its config: memory, KVM, devices, kernel, vCPUs; runs the loop. */
#include "vmm/vmm.h"
#include "vmm/vmm_state.h"
#include "boot/boot.h"
#include "devices/pseudo/boot_timer.h"
#include "devices/pseudo/exit_port.h"
#include "devices/legacy/i8042.h"
#include "devices/legacy/serial.h"
#include "iommu/iommu.h"
#include "vmm/caps.h"
#include "vmm/sandbox.h"
#include "vmm/console.h"
#include "vmm/base/exitcode.h"
#include "vmm/base/file.h"
#include "vmm/x86/layout.h"
#include "vmm/base/log.h"
#include "vmm/base/loop.h"
#include "vmm/base/phases.h"
#include "vmm/metrics.h"
#include "vmm/term.h"
#include "vmm/vcpu.h"
#include "vmm/vm_metrics.h"
#include "vmm/pci.h"
#include "vmm/virtio.h"
#include "vmm/vm.h"
#include "vmm/vm_early.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/*
 * A zeroed struct vmm. The process's first (its only one, but for tests) is in .bss: zero
 * pages the kernel brings in only when written, and never unmapped. calloc() would clear
 * all of it at start (glibc clears a chunk carved from memory it had already: 21 page
 * faults here), and a mapping of its own would cost an munmap() at the end.
 */
static struct vmm first_vmm;
static bool first_vmm_taken;

/* The sanitizer build: every one from the heap, so that LSan does not take a static one's
 * stale pointers as roots and ASan sees a use after vmm_free(). */
#if defined(__SANITIZE_ADDRESS__)
#define VMM_HEAP_ONLY 1
#endif

static struct vmm *vmm_alloc(void)
{
#ifdef VMM_HEAP_ONLY
	first_vmm_taken = true;
#endif
	if (first_vmm_taken)
		return calloc(1, sizeof(struct vmm));
	first_vmm_taken = true;
	return &first_vmm;
}

/* The static one is not reused: it would need clearing. */
static void vmm_release(struct vmm *m)
{
	if (m != &first_vmm)
		free(m);
}

static void console_out(void *ctx, uint8_t byte)
{
	console_put(ctx, byte);
}

static void on_timeout(void *arg)
{
	struct vmm *m = arg;

	if (atomic_load(&m->vm.stopping))
		return; /* the VM ends already (its stop is queued): the timer came too late */
	fprintf(stderr, "flint: timeout: the guest was still running after %g s, stopped it\n",
	        m->opts->timeout_s);
	log_error("timeout after %g s", m->opts->timeout_s);
	atomic_store(&m->vm.say_where, true); /* a guest that hangs: where it hung */
	vm_stop(&m->vm, FLINT_EXIT_TIMEOUT, NULL);
}

/*
 * SIGINT/SIGTERM (the loop has said which): the VM ends as any other request ends it;
 * when none runs (the API waits for InstanceStart, or the start failed), the loop ends.
 */
static void on_signal(void *arg, int signo)
{
	struct vmm *m = arg;

	if (m->vm.nvcpus)
		vm_stop(&m->vm, 128 + signo, NULL);
	else
		loop_stop(m->loop, 128 + signo); /* no VM runs: none yet, or its start failed */
}

/* reboot=k: flint treats the guest's reset as the end of the VM. */
static void on_i8042_reset(void *ctx)
{
	vm_stop(ctx, FLINT_EXIT_OK, "guest requested a reset through the i8042");
}

/* What isa-debug-exit makes of a value: exit status (v << 1) | 1. */
static void on_exit_port(void *ctx, uint32_t value)
{
	int code = (int)(((value << 1) | 1) & 0xff);
	char why[96];

	snprintf(why, sizeof(why), "guest wrote %u to the CI exit port: exit code %d", value, code);
	vm_stop(ctx, code, why);
}

/* The end of a start-up phase; a dry run (vmm_check) has no options and marks nothing. */
static void mark(const struct vmm *m, enum phase ph)
{
	if (m->opts)
		phases_mark(m->opts->phases, ph);
}

static int add_devices(struct vmm *m)
{
	const struct vm_config *cfg = m->cfg;
	struct vm *vm = &m->vm;
	int r;

	m->serial_irq = vm_irqfd(vm, SERIAL_COM1_IRQ);
	if (m->serial_irq < 0)
		return m->serial_irq;
	serial_init(&m->serial, m->serial_irq, console_out, &m->console);
	term_init(&m->term, m->loop, &m->serial);
	m->kbd_irq = vm_irqfd(vm, I8042_KBD_IRQ);
	i8042_init(&m->i8042, on_i8042_reset, vm, m->kbd_irq);
	if (m->kbd_irq < 0)
		return m->kbd_irq;
	m->boot_timer.start_ns = m->opts->start_ns;
	m->exit_port = (struct exit_port){ on_exit_port, vm };
	r = bus_add(&vm->pio, SERIAL_COM1_BASE, 8, &serial_ops, &m->serial, "serial");
	if (!r)
		r = bus_add(&vm->pio, I8042_DATA_PORT, LAYOUT_PIO_I8042_SIZE, &i8042_ops, &m->i8042,
		            "i8042");
	if (!r)
		r = bus_add(&vm->mmio, LAYOUT_BOOT_TIMER, 1, &boot_timer_ops, &m->boot_timer,
		            "boot timer");
	if (!r && cfg->ci.exit_port_enabled) {
		r = bus_add(&vm->pio, cfg->ci.exit_port, cfg->ci.exit_port_size, &exit_port_ops,
		            &m->exit_port, "CI exit port");
		if (r == -EEXIST)
			log_error("flint.ci.exit_port: port %#x overlaps another device",
			          cfg->ci.exit_port);
	}
	if (r && r != -EEXIST)
		log_error("cannot register devices: %s", strerror(-r));
	return r;
}

static int start_vcpus(struct vmm *m, const struct boot_info *boot)
{
	struct kvm_cpuid2 *cpuid = vcpu_supported_cpuid(m->vm.kvm_fd);
	int r = 0;

	if (!cpuid) {
		r = -errno;
		log_error("KVM_GET_SUPPORTED_CPUID: %s", strerror(-r));
		return r;
	}
	m->vm.vcpu_count = m->cfg->vcpus;
	m->vm.smt = m->cfg->smt;
	/* nvcpus counts only what exists: a failed vCPU cleaned up after itself. */
	for (unsigned i = 0; i < m->cfg->vcpus && !r; i++) {
		r = vcpu_create(&m->vcpus[i], &m->vm, i, cpuid, &boot->cpu);
		if (!r)
			m->vm.nvcpus = i + 1;
	}
	free(cpuid);
	if (r)
		return r;
	r = vcpu_signals_init();
	/* The gate: each vCPU installs its filter, then parks until the loop has its own. */
	atomic_store(&m->vm.pausing, true);
	for (unsigned i = 0; i < m->vm.nvcpus && !r; i++)
		r = vcpu_start(&m->vcpus[i], sandbox_filter(&m->sandbox, SANDBOX_VCPU));
	if (r)
		log_error("cannot start vCPU threads: %s", strerror(-r));
	return r;
}

/*
 * The loop thread's filter, last: the I/O workers and the vCPUs were made without one
 * (a thread inherits its maker's), so every thread ends with exactly its own list. Then
 * the vCPUs leave the gate: the guest's first instruction runs with every filter in.
 */
static int enter_sandbox(struct vmm *m)
{
	const struct sysfilter *f = sandbox_filter(&m->sandbox, SANDBOX_LOOP);
	int r = sysfilter_enter(f, -1);

	if (r) {
		log_error("seccomp: cannot install the loop thread's filter: %s", strerror(-r));
		return FLINT_EXIT_INTERNAL;
	}
	if (f)
		log_info("seccomp: %s: every thread has its filter (loop, %u vcpu, I/O)%s",
		         sandbox_mode_name(m->sandbox.mode), m->vm.nvcpus,
		         m->sandbox.mode == SANDBOX_LOG ? "; refused calls go on, logged by the "
		                                          "kernel (audit, dmesg)"
		                                        : "");
	else
		log_info("seccomp: off: no filter (--seccomp off, --no-seccomp)");
	mark(m, PHASE_SANDBOX);
	vcpus_resume(m->vcpus, m->vm.nvcpus);
	return -1;
}

/* What the process's exit releases anyway is left to it (run_opts.process_exits). */
static bool leave_to_exit(const struct vmm *m)
{
	return m->opts && m->opts->process_exits;
}

/*
 * The loop too (its libevent base, epoll set, eventfd and signal pipe: 1.6 ms of a 120 ms
 * start in the rig), but only the static vmm's: it stays reachable from .bss, so a leak
 * check does not count it. The sanitizer build has no static vmm, and frees every loop.
 */
static bool leave_loop_to_exit(const struct vmm *m)
{
	return leave_to_exit(m) && m == &first_vmm;
}

static void stop_vcpus(struct vmm *m)
{
	atomic_store(&m->vm.stopping, true);
	if (m->vm.nvcpus)
		vcpus_resume(m->vcpus, m->vm.nvcpus); /* parked ones wake, see stopping, end */
	for (unsigned i = 0; i < m->vm.nvcpus; i++)
		vcpu_kick(&m->vcpus[i]);
	for (unsigned i = 0; i < m->vm.nvcpus; i++)
		vcpu_join(&m->vcpus[i]);
	for (unsigned i = 0; i < m->vm.nvcpus && !leave_to_exit(m); i++)
		vcpu_destroy(&m->vcpus[i]);
	m->vm.nvcpus = 0;
}

static enum guest_backing backing_of(const struct vm_config *cfg)
{
	if (cfg->huge_pages == HUGE_PAGES_2M)
		return GUEST_BACKING_HUGETLB_2M;
	return cfg->memory.thp ? GUEST_BACKING_THP : GUEST_BACKING_4K;
}

/* The guest's command line: the config's boot_args, then what the virtio devices need. */
static int build_cmdline(struct vmm *m)
{
	/* Room for every slot's virtio_mmio.device= and a root=; the loader checks the kernel's
	 * limit. */
	size_t cap = strlen(m->cfg->boot_args) + 64 * (LAYOUT_VIRTIO_SLOTS + 3);

	m->cmdline = malloc(cap);
	if (!m->cmdline) {
		log_error("out of memory building the kernel command line");
		return -ENOMEM;
	}
	memcpy(m->cmdline, m->cfg->boot_args, strlen(m->cfg->boot_args) + 1);
	return vmm_virtio_plan(&m->virtio, m->cfg, m->cmdline, cap);
}

/*
 * What needs no KVM: guest memory, the images loaded into it, the boot structures. A run
 * and --dry-run both do it, so a dry run refuses what a run would. Returns an exit code,
 * or -1 when all is well.
 */
static int vmm_prepare(struct vmm *m, struct boot_info *boot)
{
	const struct vm_config *cfg = m->cfg;
	char err[512] = "";
	int r;

	r = guest_memory_init(&m->mem, cfg->mem_mib << 20, backing_of(cfg));
	if (r) {
		log_error("cannot allocate %llu MiB of guest memory%s: %s",
		          (unsigned long long)cfg->mem_mib,
		          cfg->huge_pages == HUGE_PAGES_2M ? " from 2M hugetlb pages (see "
		                                             "/proc/sys/vm/nr_hugepages)"
		                                           : "",
		          strerror(-r));
		return FLINT_EXIT_INTERNAL;
	}
	mark(m, PHASE_MEMORY);
	r = build_cmdline(m);
	if (r)
		return r == -ENOMEM ? FLINT_EXIT_INTERNAL : FLINT_EXIT_CONFIG;
	/* Images load before /dev/kvm opens: a bad kernel is a config error on any host. */
	r = boot_load(&(struct boot_source){ cfg->kernel_fd, cfg->kernel_path, cfg->initrd_fd,
	                                     cfg->initrd_path, m->cmdline },
	              &m->mem, boot, err, sizeof(err));
	if (r == -ENOMEM) {
		log_error("out of memory loading %s", MSG_ESC(cfg->kernel_path));
		return FLINT_EXIT_INTERNAL;
	}
	if (r) {
		log_error("%s", err[0] ? err : "the kernel or initrd cannot be loaded");
		return FLINT_EXIT_CONFIG;
	}
	if (mptable_write(&m->mem, cfg->vcpus)) {
		log_error("cannot write the MP table for %u vCPUs", cfg->vcpus);
		return FLINT_EXIT_INTERNAL;
	}
	mark(m, PHASE_LOAD);
	return -1;
}

/*
 * An inherited iommufd is checked as a run checks it (an IOAS allocation), without
 * opening /dev/iommu or any device.
 */
static int check_inherited_iommufd(const struct vm_config *cfg)
{
	struct iommufd i;

	if (!cfg->nvfio || cfg->iommu.fd < 0)
		return -1;
	return iommufd_open(&i, NULL, cfg->iommu.fd) ? FLINT_EXIT_INTERNAL : -1;
}

int vmm_check(const struct vm_config *cfg)
{
	struct vmm *m = vmm_alloc();
	struct boot_info boot;
	int code;

	if (!m)
		return FLINT_EXIT_INTERNAL;
	m->cfg = cfg;
	m->mem.fd = -1;
	code = vmm_prepare(m, &boot);
	guest_memory_destroy(&m->mem);
	free(m->cmdline);
	vmm_release(m);
	if (code < 0)
		code = check_inherited_iommufd(cfg);
	return code < 0 ? FLINT_EXIT_OK : code;
}

/*
 * The config's metrics section, as Firecracker takes it: once only, so not when
 * --metrics-path or PUT /metrics configured them already. -1, or an exit code.
 */
static int config_metrics(struct vmm *m)
{
	const struct vm_config *cfg = m->cfg;
	struct metrics_params p = { cfg->metrics_path, cfg->metrics_emit_id, m->opts->id,
		                    cfg->metrics_properties };
	char why[160];
	int r;

	if (!cfg->metrics_path)
		return -1;
	r = metrics_configure(m->metrics, &p, why, sizeof(why));
	if (!r)
		return -1;
	if (r == -EALREADY)
		log_error("metrics: %s (--metrics-path configured them already)", why);
	else
		log_error("metrics.metrics_path: %s: %s", MSG_ESC(cfg->metrics_path), why);
	return r == -ENOMEM ? FLINT_EXIT_INTERNAL : FLINT_EXIT_CONFIG;
}

/*
 * Everything that needs privilege is open: /dev/kvm, the images, TAPs, sockets, /dev/iommu
 * and the VFIO devices, so with --chroot the jail's root can change to DIR now. No thread has
 * started yet (the drives' I/O threads and the vCPUs start next), and that matters: capabilities
 * are per thread, and a thread keeps those it was made with. -1, or an exit code.
 */
static int drop_privileges(struct vmm *m)
{
	bool fault_mode = m->iommu_used && m->iommu.resolver;
	const char *vsock = m->cfg->vsock.present ? m->cfg->vsock.uds_path : NULL;

	/* The jail (--chroot) needs the privileges the drop takes: it goes first. */
	if (m->opts->jail && jail_enter(m->opts->jail, fault_mode, vsock))
		return FLINT_EXIT_INTERNAL;
	return caps_drop(fault_mode, &m->opts->run_as) ? FLINT_EXIT_INTERNAL : -1;
}

/* The VM: its KVM part from the early thread when there is one (vm_early.h), else made now. */
static int make_vm(struct vmm *m)
{
	struct vm_kvm k;

	if (!vm_early_take(m->opts->early, &k))
		vm_kvm_open(&k, VM_KVM_PATH);
	return vm_create(&m->vm, &k, &m->mem, m->cfg->track_dirty_pages, m->loop);
}

/* Everything up to the first KVM_RUN. Returns an exit code, or -1 to run the loop. */
static int vmm_build(struct vmm *m)
{
	const struct vm_config *cfg = m->cfg;
	struct boot_info boot;
	int r;

	r = config_metrics(m);
	if (r < 0)
		r = vmm_prepare(m, &boot);
	if (r >= 0)
		return r;
	if (make_vm(m))
		return FLINT_EXIT_INTERNAL;
	m->vm.phases = m->opts->phases;
	mark(m, PHASE_VM);
	if (add_devices(m) || vmm_virtio_create(&m->virtio, cfg, m->opts->mmds, &m->vm, m->loop))
		return FLINT_EXIT_INTERNAL;
	if (cfg->nvfio) {
		m->iommu_used = true;
		if (iommu_setup(&m->iommu, &cfg->iommu, cfg->vfio, (unsigned)cfg->nvfio, &m->mem,
		                m->vm.vm_fd, m->loop) ||
		    vmm_pci_create(&m->pci, &m->iommu, &m->vm, m->cmdline))
			return FLINT_EXIT_INTERNAL;
	}
	mark(m, PHASE_DEVICES);
	log_info("booting %s kernel %s: %u vCPU, %llu MiB, entry %#llx", boot.format,
	         MSG_ESC(cfg->kernel_path), cfg->vcpus, (unsigned long long)cfg->mem_mib,
	         (unsigned long long)boot.entry);
	if (m->opts->timeout_s > 0 &&
	    !loop_add_timer(m->loop, (uint64_t)(m->opts->timeout_s * 1e6), false, on_timeout, m))
		return FLINT_EXIT_INTERNAL;
	r = drop_privileges(m);
	if (r >= 0)
		return r;
	if (sandbox_prepare(&m->sandbox, m->opts->seccomp))
		return FLINT_EXIT_INTERNAL;
	if (vmm_virtio_start(&m->virtio, sandbox_filter(&m->sandbox, SANDBOX_IO)) ||
	    start_vcpus(m, &boot))
		return FLINT_EXIT_INTERNAL;
	mark(m, PHASE_VCPU);
	/* Before the loop's filter; restoring the terminal at the end (TCSETS) is in its list. */
	term_raw();
	r = enter_sandbox(m);
	if (r >= 0)
		return r;
	term_watch(&m->term);
	return -1;
}

static void vmm_teardown(struct vmm *m)
{
	stop_vcpus(m);
	term_restore();
	if (m->console_up) {
		/* What the guest said last matters most (a panic, a test result): a second. */
		console_flush(&m->console, 1000);
		console_destroy(&m->console);
	}
	vmm_pci_destroy(&m->pci); /* before the iommu: it closes the devices */
	if (m->iommu_used)
		iommu_teardown(&m->iommu); /* before the loop: it answers open page requests */
	vmm_virtio_destroy(&m->virtio);    /* before the loop: it removes its watches */
	metrics_free(m->metrics);          /* before the loop: its timer and watch */
	if (!leave_loop_to_exit(m))
		loop_free(m->loop); /* removes the stdin, timer and post watches */
	if (m->serial_irq >= 0) {
		serial_destroy(&m->serial);
		i8042_destroy(&m->i8042);
		close(m->serial_irq);
	}
	if (m->kbd_irq >= 0)
		close(m->kbd_irq);
	if (!leave_to_exit(m)) {
		vm_destroy(&m->vm);
		guest_memory_destroy(&m->mem);
	}
	free(m->cmdline);
	sandbox_free(&m->sandbox); /* every thread that installed one has ended */
}

/* Never a wait: a FIFO with no reader is an error, as is anything not a log. */
static int open_serial_log(const char *path)
{
	char why[160];
	int fd = file_open(path, O_WRONLY | O_CREAT | O_TRUNC, FILE_REG | FILE_CHR | FILE_FIFO, 0,
	                   why, sizeof(why));

	if (fd < 0)
		log_error("--serial-log %s: %s", MSG_ESC(path), why);
	return fd;
}

/* The writer, and --metrics-path opened now, as Firecracker opens it at start-up. 0 or a code. */
static int open_metrics(struct vmm *m)
{
	struct metrics_params p = { .path = m->opts->metrics_path, .id = m->opts->id };
	char why[160];
	int r;

	m->metrics = metrics_new(m->loop);
	if (!m->metrics) {
		log_error("out of memory");
		return FLINT_EXIT_INTERNAL;
	}
	if (!p.path)
		return 0;
	r = metrics_configure(m->metrics, &p, why, sizeof(why));
	if (r)
		log_error("--metrics-path %s: %s", MSG_ESC(p.path), why);
	return !r ? 0 : r == -ENOMEM ? FLINT_EXIT_INTERNAL : FLINT_EXIT_USAGE;
}

int vmm_new(struct vmm **out, const struct run_opts *opts)
{
	struct vmm *m = vmm_alloc();
	int serial_log_fd = -1, code;

	*out = NULL;
	if (!m)
		return FLINT_EXIT_INTERNAL;
	m->opts = opts;
	m->serial_irq = m->kbd_irq = -1;
	m->vm.vm_fd = m->vm.kvm_fd = -1;
	m->mem.fd = -1;
	if (opts->serial_log && (serial_log_fd = open_serial_log(opts->serial_log)) < 0) {
		vmm_release(m);
		return FLINT_EXIT_USAGE;
	}
	m->loop = vm_early_take_loop(opts->early); /* made while the config was read */
	if (!m->loop)
		m->loop = loop_new();
	if (!m->loop || loop_handle_signals(m->loop, on_signal, m) < 0) {
		log_error("cannot set up the event loop");
		if (serial_log_fd >= 0)
			close(serial_log_fd);
		vmm_free(m);
		return FLINT_EXIT_INTERNAL;
	}
	if (console_init(&m->console, m->loop, opts->console_stdout ? STDOUT_FILENO : -1,
	                 serial_log_fd, opts->serial_log)) {
		log_error("cannot set up the console");
		console_destroy(&m->console);
		vmm_free(m);
		return FLINT_EXIT_INTERNAL;
	}
	m->console_up = true;
	code = open_metrics(m);
	if (code) {
		vmm_free(m);
		return code;
	}
	*out = m;
	return 0;
}

struct loop *vmm_loop(struct vmm *m)
{
	return m->loop;
}

static void vm_source(void *ctx, struct metrics_line *l)
{
	struct vmm *m = ctx;
	/* The store is made on first need (main.c): none made, none asked, the counters 0. */
	struct vm_metrics_parts p = { m->vcpus,           m->vm.nvcpus,  &m->virtio,         m->cfg,
		                      vmm_iommu_stats(m), m->opts->mmds, .mmds_unmade = true };

	vm_metrics_add(l, &p);
}

/* The VM runs: its counters join the lines, one now and one every 60 s (Firecracker's). */
static void metrics_running(struct vmm *m)
{
	m->started = true;
	if (metrics_add_source(m->metrics, vm_source, m) ||
	    metrics_start(m->metrics, METRICS_PERIOD_US))
		log_error("metrics: cannot write them: out of memory");
}

int vmm_start(struct vmm *m, const struct vm_config *cfg)
{
	int code;

	if (m->cfg)
		return FLINT_EXIT_USAGE; /* one VM per process, started once */
	m->cfg = cfg;
	code = vmm_build(m);
	if (code < 0) {
		metrics_running(m);
		return 0;
	}
	/* Nothing of a VM that failed to start runs on: what did start stops now. */
	stop_vcpus(m);
	return code;
}

int vmm_wait(struct vmm *m)
{
	int code = loop_run(m->loop);
	char why[160];

	/* Firecracker writes a last line as its VM goes: what the last minute counted. */
	if (m->started)
		metrics_flush(m->metrics, why, sizeof(why));
	return code < 0 ? FLINT_EXIT_INTERNAL : code;
}

void vmm_free(struct vmm *m)
{
	if (!m)
		return;
	vmm_teardown(m);
	vmm_release(m);
}

int vmm_run(const struct vm_config *cfg, const struct run_opts *opts)
{
	struct vmm *m;
	int code = vmm_new(&m, opts);

	if (code)
		return code;
	code = vmm_start(m, cfg);
	if (!code)
		code = vmm_wait(m);
	vmm_free(m);
	return code;
}
