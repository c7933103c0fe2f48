/* The generic vCPU: its thread, the KVM_RUN loop and exit dispatch; x86 set-up is vmm/x86/. */
#include "vmm/vcpu.h"
#include "vmm/base/exitcode.h"
#include "vmm/base/log.h"
#include "vmm/base/phases.h"
#include "vmm/base/sysfilter.h"
#include "vmm/vm.h"
#include "vmm/x86/regs.h"
#include "vmm/x86/vcpu_init.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define VCPU_KICK_SIGNAL SIGUSR1

static void on_kick(int sig)
{
	(void)sig; /* only there to interrupt KVM_RUN */
}

int vcpu_signals_init(void)
{
	struct sigaction sa = { .sa_handler = on_kick };

	sigemptyset(&sa.sa_mask);
	return sigaction(VCPU_KICK_SIGNAL, &sa, NULL) < 0 ? -errno : 0;
}

struct kvm_cpuid2 *vcpu_supported_cpuid(int kvm_fd)
{
	return x86_cpuid_supported(kvm_fd);
}

/* KVM_CREATE_VCPU and the shared kvm_run page. Returns -errno with @step set. */
static int open_vcpu(struct vcpu *v, const char **step)
{
	*step = "KVM_CREATE_VCPU";
	v->fd = ioctl(v->vm->vm_fd, KVM_CREATE_VCPU, v->id);
	if (v->fd < 0)
		return -errno;
	*step = "mmap of kvm_run";
	v->run = mmap(NULL, (size_t)v->vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
	if (v->run == MAP_FAILED) {
		v->run = NULL;
		return -errno;
	}
	return 0;
}

int vcpu_create(struct vcpu *v, struct vm *vm, unsigned id, const struct kvm_cpuid2 *cpuid,
                const struct x86_boot_cpu *boot)
{
	struct x86_vcpu_init init = {
		.cpuid = cpuid,
		.topo = { .id = id, .count = vm->vcpu_count, .smt = vm->smt },
		.boot = id == 0 ? boot : NULL,
	};
	const char *step = "";
	int r;

	memset(v, 0, sizeof(*v));
	v->vm = vm;
	v->id = id;
	r = open_vcpu(v, &step);
	if (!r)
		r = x86_vcpu_init(v->fd, &init, &step);
	if (!r)
		return 0;
	log_error("vcpu %u: %s failed: %s", id, step, strerror(-r));
	vcpu_destroy(v);
	return r;
}

/* One more, from the vCPU's own thread (the only writer: see struct vcpu_counters). */
static void count(_Atomic uint64_t *c)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1,
	                      memory_order_relaxed);
}

static void handle_io(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;

	for (uint32_t i = 0; i < run->io.count; i++, data += run->io.size) {
		bool ok = run->io.direction == KVM_EXIT_IO_OUT
		                  ? bus_write(&v->vm->pio, run->io.port, data, run->io.size)
		                  : bus_read(&v->vm->pio, run->io.port, data, run->io.size);
		/* Linux probes many legacy ports (0x80 delays, CMOS, ...): only debug level. */
		if (!ok && log_get_level() >= LOG_DEBUG && log_ratelimit_ok(&v->unhandled_rl))
			log_debug("vcpu %u: unhandled port I/O %s at port %#x (size %u)", v->id,
			          run->io.direction == KVM_EXIT_IO_OUT ? "write" : "read",
			          run->io.port, run->io.size);
	}
}

static void handle_mmio(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	uint32_t len = run->mmio.len;
	bool ok;

	if (len == 0 || len > 8)
		return;
	ok = run->mmio.is_write ? bus_write(&v->vm->mmio, run->mmio.phys_addr, run->mmio.data, len)
	                        : bus_read(&v->vm->mmio, run->mmio.phys_addr, run->mmio.data, len);
	if (!ok && log_ratelimit_ok(&v->unhandled_rl))
		log_warn("vcpu %u: %s of %u bytes at guest address %#llx: no device there (%s)",
		         v->id, run->mmio.is_write ? "write" : "read", len, run->mmio.phys_addr,
		         run->mmio.is_write ? "ignored" : "reads all-ones");
}

/* Where the vCPU stopped and what it had done: its exits so far, its registers. */
static void say_where(struct vcpu *v)
{
	struct vcpu_counters *c = &v->counters;

	log_error("vcpu %u: stopped after %llu port and %llu MMIO exits", v->id,
	          (unsigned long long)(atomic_load(&c->exit_io_in) + atomic_load(&c->exit_io_out)),
	          (unsigned long long)(atomic_load(&c->exit_mmio_read) +
	                               atomic_load(&c->exit_mmio_write)));
	x86_regs_dump(v->fd, v->id);
}

static void crash(struct vcpu *v, const char *what)
{
	char why[160];

	count(&v->counters.failures);
	log_error("vcpu %u: %s", v->id, what);
	x86_regs_dump(v->fd, v->id);
	snprintf(why, sizeof(why), "vcpu %u: %s", v->id, what);
	vm_stop(v->vm, FLINT_EXIT_GUEST_CRASH, why);
}

/* Handles one exit. Returns false when the vCPU must stop running. */
static bool vcpu_exit(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	char what[128];

	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		count(run->io.direction == KVM_EXIT_IO_OUT ? &v->counters.exit_io_out
		                                           : &v->counters.exit_io_in);
		handle_io(v);
		return true;
	case KVM_EXIT_MMIO:
		count(run->mmio.is_write ? &v->counters.exit_mmio_write
		                         : &v->counters.exit_mmio_read);
		handle_mmio(v);
		return true;
	case KVM_EXIT_SHUTDOWN:
		crash(v, "triple fault (KVM_EXIT_SHUTDOWN)");
		return false;
	case KVM_EXIT_SYSTEM_EVENT:
		if (run->system_event.type == KVM_SYSTEM_EVENT_CRASH) {
			crash(v, "guest reported a crash");
		} else {
			snprintf(what, sizeof(what), "guest system event %u (%s)",
			         run->system_event.type,
			         run->system_event.type == KVM_SYSTEM_EVENT_RESET ? "reset"
			                                                          : "shutdown");
			vm_stop(v->vm, FLINT_EXIT_OK, what);
		}
		return false;
	case KVM_EXIT_INTERNAL_ERROR:
		snprintf(what, sizeof(what), "KVM internal error, suberror %u",
		         run->internal.suberror);
		crash(v, what);
		return false;
	case KVM_EXIT_FAIL_ENTRY:
		snprintf(what, sizeof(what), "VM entry failed, hardware reason %#llx",
		         (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
		crash(v, what);
		return false;
	case KVM_EXIT_HLT:
		vm_stop(v->vm, FLINT_EXIT_OK, "guest halted with interrupts off");
		return false;
	default:
		snprintf(what, sizeof(what), "unexpected exit reason %u", run->exit_reason);
		crash(v, what);
		return false;
	}
}

/* Waits outside KVM_RUN while the VM is paused (and not stopping). */
static void park(struct vcpu *v)
{
	struct vm *vm = v->vm;

	pthread_mutex_lock(&vm->park_lock);
	vm->parked++;
	pthread_cond_broadcast(&vm->park_cond);
	while (atomic_load(&vm->pausing) && !atomic_load(&vm->stopping))
		pthread_cond_wait(&vm->park_cond, &vm->park_lock);
	vm->parked--;
	pthread_mutex_unlock(&vm->park_lock);
}

#define PAUSE_TIMEOUT_S 5

int vcpus_pause(struct vcpu *v, unsigned n)
{
	struct vm *vm = v[0].vm;
	struct timespec until;
	bool all;

	atomic_store(&vm->pausing, true);
	/* immediate_exit covers a vCPU between its check of @pausing and KVM_RUN. */
	for (unsigned i = 0; i < n; i++)
		vcpu_kick(&v[i]);
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += PAUSE_TIMEOUT_S;
	pthread_mutex_lock(&vm->park_lock);
	while (vm->parked < n && !atomic_load(&vm->stopping) &&
	       pthread_cond_timedwait(&vm->park_cond, &vm->park_lock, &until) != ETIMEDOUT)
		;
	all = vm->parked >= n && !atomic_load(&vm->stopping);
	pthread_mutex_unlock(&vm->park_lock);
	if (all)
		return 0;
	vcpus_resume(v, n);
	return atomic_load(&vm->stopping) ? -ESRCH : -ETIMEDOUT;
}

void vcpus_resume(struct vcpu *v, unsigned n)
{
	struct vm *vm = v[0].vm;

	(void)n;
	pthread_mutex_lock(&vm->park_lock);
	atomic_store(&vm->pausing, false);
	pthread_cond_broadcast(&vm->park_cond);
	pthread_mutex_unlock(&vm->park_lock);
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *v = arg;
	char name[16];
	sigset_t set;

	snprintf(name, sizeof(name), "flint-vcpu%u", v->id);
	pthread_setname_np(pthread_self(), name);
	/* Only the kick signal may interrupt this thread; the loop thread handles the rest. */
	sigfillset(&set);
	sigdelset(&set, VCPU_KICK_SIGNAL);
	pthread_sigmask(SIG_SETMASK, &set, NULL);
	bool ran = false;
	/* Before anything a guest reaches: the first KVM_RUN is after this and the gate. */
	int r = sysfilter_enter(v->filter, (int)v->id);
	if (r) {
		log_error("vcpu %u: cannot install its seccomp filter: %s", v->id, strerror(-r));
		vm_stop(v->vm, FLINT_EXIT_INTERNAL, "a vCPU thread has no seccomp filter");
		return NULL;
	}
	while (!atomic_load(&v->vm->stopping)) {
		if (atomic_load(&v->vm->pausing)) {
			park(v);
			continue;
		}
		if (ioctl(v->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				v->run->immediate_exit = 0;
				continue;
			}
			char what[96];
			snprintf(what, sizeof(what), "KVM_RUN failed: %s", strerror(errno));
			crash(v, what);
			break;
		}
		if (!ran) {
			ran = true;
			phases_mark(v->vm->phases, PHASE_FIRST_RUN);
		}
		if (!vcpu_exit(v))
			break;
	}
	if (atomic_load(&v->vm->say_where))
		say_where(v);
	return NULL;
}

int vcpu_start(struct vcpu *v, const struct sysfilter *filter)
{
	sigset_t all, old;
	int r;

	/* Start with everything blocked so no signal lands before the thread sets its mask. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	v->filter = filter;
	r = pthread_create(&v->thread, NULL, vcpu_thread, v);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r)
		return -r;
	v->started = true;
	return 0;
}

void vcpu_kick(struct vcpu *v)
{
	if (!v->started)
		return;
	v->run->immediate_exit = 1;
	pthread_kill(v->thread, VCPU_KICK_SIGNAL);
}

void vcpu_join(struct vcpu *v)
{
	if (v->started)
		pthread_join(v->thread, NULL);
	v->started = false;
}

void vcpu_destroy(struct vcpu *v)
{
	if (v->run)
		munmap(v->run, (size_t)v->vm->run_size);
	if (v->fd >= 0)
		close(v->fd);
	v->run = NULL;
	v->fd = -1;
}
