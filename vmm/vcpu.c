#include "vmm/vcpu.h"
#include "boot/boot.h"
#include "vmm/exitcode.h"
#include "vmm/base/log.h"
#include "vmm/vm.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define VCPU_KICK_SIGNAL  SIGUSR1
#define CPUID_MAX_ENTRIES 256

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
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + CPUID_MAX_ENTRIES * sizeof(c->entries[0]));

	if (!c)
		return NULL;
	c->nent = CPUID_MAX_ENTRIES;
	if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, c) < 0) {
		free(c);
		return NULL;
	}
	return c;
}

static unsigned bits_for(unsigned n)
{
	unsigned b = 0;

	while ((1U << b) < n)
		b++;
	return b;
}

/* Per-vCPU CPUID: APIC ids and a topology that matches vcpu_count and smt. */
static void patch_cpuid(struct kvm_cpuid2 *c, unsigned id, unsigned n, bool smt)
{
	unsigned threads = smt && n > 1 ? 2 : 1;

	for (unsigned i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];
		switch (e->function) {
		case 1:
			e->ebx = (e->ebx & 0x0000ffff) | (id << 24) | (n << 16);
			e->ecx |= 1U << 31; /* running under a hypervisor */
			if (n > 1)
				e->edx |= 1U << 28; /* HTT: more than one logical CPU */
			break;
		case 4:
			e->eax = (e->eax & 0x3ff) | (((n / threads) - 1) << 26) |
			         ((threads - 1) << 14);
			break;
		case 0xb:
		case 0x1f:
			e->edx = id;
			if (e->index == 0) {
				e->eax = bits_for(threads);
				e->ebx = threads;
				e->ecx = 0 | (1 << 8); /* SMT level */
			} else if (e->index == 1) {
				e->eax = bits_for(n);
				e->ebx = n;
				e->ecx = 1 | (2 << 8); /* core level */
			} else {
				e->eax = e->ebx = 0;
				e->ecx = e->index;
			}
			break;
		default:
			break;
		}
	}
}

static int set_msrs(int fd)
{
	static const struct {
		uint32_t index;
		uint64_t value;
	} msrs[] = {
		{ 0x174, 0 },             /* SYSENTER_CS */
		{ 0x175, 0 },             /* SYSENTER_ESP */
		{ 0x176, 0 },             /* SYSENTER_EIP */
		{ 0xc0000081, 0 },        /* STAR */
		{ 0xc0000082, 0 },        /* LSTAR */
		{ 0xc0000083, 0 },        /* CSTAR */
		{ 0xc0000084, 0 },        /* SYSCALL_MASK */
		{ 0xc0000102, 0 },        /* KERNEL_GS_BASE */
		{ 0x10, 0 },              /* TSC */
		{ 0x1a0, 1 },             /* MISC_ENABLE: fast strings */
		{ 0x2ff, (1 << 11) | 6 }, /* MTRRdefType: enabled, write-back */
	};
	const unsigned n = sizeof(msrs) / sizeof(msrs[0]);
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e[sizeof(msrs) / sizeof(msrs[0])];
	} buf;

	memset(&buf, 0, sizeof(buf));
	buf.hdr.nmsrs = n;
	for (unsigned i = 0; i < n; i++) {
		buf.e[i].index = msrs[i].index;
		buf.e[i].data = msrs[i].value;
	}
	int r = ioctl(fd, KVM_SET_MSRS, &buf);
	if (r < 0)
		return -errno;
	return r == (int)n ? 0 : -EINVAL;
}

/* LINT0 delivers ExtINT (the PIC), LINT1 delivers NMI, as firmware leaves them. */
static int set_lapic(int fd)
{
	struct kvm_lapic_state l;
	uint32_t v;

	if (ioctl(fd, KVM_GET_LAPIC, &l) < 0)
		return -errno;
	memcpy(&v, l.regs + 0x350, 4);
	v = (v & ~0x700U) | (7U << 8);
	memcpy(l.regs + 0x350, &v, 4);
	memcpy(&v, l.regs + 0x360, 4);
	v = (v & ~0x700U) | (4U << 8);
	memcpy(l.regs + 0x360, &v, 4);
	return ioctl(fd, KVM_SET_LAPIC, &l) < 0 ? -errno : 0;
}

/*
 * XCR0 = every state component CPUID leaf 0xD offers. KVM refreshes the XSAVE area size
 * it reports (0xD.0 EBX) when XCR0 is set, so a kernel that enables those components
 * reads a size that matches; without this, some KVMs leave the x87+SSE size in place and
 * Linux sizes its FPU buffers wrongly.
 */
static int set_xcr0(int fd, const struct kvm_cpuid2 *c)
{
	struct kvm_xcrs xcrs = { .nr_xcrs = 1 };
	uint64_t mask = 0;

	for (unsigned i = 0; i < c->nent; i++)
		if (c->entries[i].function == 0xd && c->entries[i].index == 0)
			mask = c->entries[i].eax | ((uint64_t)c->entries[i].edx << 32);
	/* Only user state components belong in XCR0; x87 must always be set. */
	mask = (mask & 0x2ff) | 1;
	xcrs.xcrs[0].xcr = 0;
	xcrs.xcrs[0].value = mask;
	return ioctl(fd, KVM_SET_XCRS, &xcrs) < 0 ? -errno : 0;
}

static int set_boot_regs(int fd, const struct boot_info *boot)
{
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_fpu fpu = { .fcw = 0x37f, .mxcsr = 0x1f80 };

	if (ioctl(fd, KVM_SET_FPU, &fpu) < 0 || ioctl(fd, KVM_GET_SREGS, &sregs) < 0)
		return -errno;
	boot_cpu_regs(boot, &regs, &sregs);
	if (ioctl(fd, KVM_SET_SREGS, &sregs) < 0 || ioctl(fd, KVM_SET_REGS, &regs) < 0)
		return -errno;
	return 0;
}

int vcpu_create(struct vcpu *v, struct vm *vm, unsigned id, const struct kvm_cpuid2 *cpuid,
                const struct boot_info *boot)
{
	size_t csize = sizeof(*cpuid) + cpuid->nent * sizeof(cpuid->entries[0]);
	struct kvm_cpuid2 *mine = malloc(csize);
	const char *step = "KVM_CREATE_VCPU";
	int r;

	memset(v, 0, sizeof(*v));
	v->vm = vm;
	v->id = id;
	v->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, id);
	if (!mine || v->fd < 0) {
		r = mine ? -errno : -ENOMEM;
		goto fail;
	}
	step = "mmap of kvm_run";
	v->run = mmap(NULL, (size_t)vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
	if (v->run == MAP_FAILED) {
		v->run = NULL;
		r = -errno;
		goto fail;
	}
	memcpy(mine, cpuid, csize);
	patch_cpuid(mine, id, vm->vcpu_count, vm->smt);
	step = "KVM_SET_CPUID2";
	r = ioctl(v->fd, KVM_SET_CPUID2, mine) < 0 ? -errno : 0;
	if (!r) {
		step = "KVM_SET_MSRS";
		r = set_msrs(v->fd);
	}
	if (!r) {
		step = "KVM_SET_LAPIC";
		r = set_lapic(v->fd);
	}
	if (!r) {
		step = "KVM_SET_XCRS";
		r = set_xcr0(v->fd, mine);
	}
	/* Application processors wait for INIT/SIPI in the in-kernel LAPIC. */
	if (!r && id == 0) {
		step = "boot registers";
		r = set_boot_regs(v->fd, boot);
	}
	if (r)
		goto fail;
	free(mine);
	return 0;
fail:
	log_error("vcpu %u: %s failed: %s", id, step, strerror(-r));
	free(mine);
	vcpu_destroy(v);
	return r;
}

/* For crashes: what the vCPU was doing. */
static void vcpu_dump(struct vcpu *v)
{
	struct kvm_regs r;
	struct kvm_sregs s;

	if (ioctl(v->fd, KVM_GET_REGS, &r) < 0 || ioctl(v->fd, KVM_GET_SREGS, &s) < 0) {
		log_error("vcpu %u: cannot read registers: %s", v->id, strerror(errno));
		return;
	}
	log_error("vcpu %u: rip=%#llx rsp=%#llx rflags=%#llx rax=%#llx rbx=%#llx rcx=%#llx "
	          "rdx=%#llx rsi=%#llx rdi=%#llx rbp=%#llx",
	          v->id, r.rip, r.rsp, r.rflags, r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.rbp);
	log_error("vcpu %u: cs=%#x (base %#llx, l=%u db=%u) cr0=%#llx cr2=%#llx cr3=%#llx "
	          "cr4=%#llx efer=%#llx",
	          v->id, s.cs.selector, s.cs.base, s.cs.l, s.cs.db, s.cr0, s.cr2, s.cr3, s.cr4,
	          s.efer);
}

static struct log_ratelimit unhandled_rl;

static void handle_io(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;

	for (uint32_t i = 0; i < run->io.count; i++, data += run->io.size) {
		bool ok = run->io.direction == KVM_EXIT_IO_OUT
		                  ? bus_write(&v->vm->pio, run->io.port, data, run->io.size)
		                  : bus_read(&v->vm->pio, run->io.port, data, run->io.size);
		/* Linux probes many legacy ports (0x80 delays, CMOS, ...): only debug level. */
		if (!ok && log_get_level() >= LOG_DEBUG && log_ratelimit_ok(&unhandled_rl))
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
	if (!ok && log_ratelimit_ok(&unhandled_rl))
		log_warn("vcpu %u: %s of %u bytes at guest address %#llx: no device there (%s)",
		         v->id, run->mmio.is_write ? "write" : "read", len, run->mmio.phys_addr,
		         run->mmio.is_write ? "ignored" : "reads all-ones");
}

static void crash(struct vcpu *v, const char *what)
{
	char why[160];

	log_error("vcpu %u: %s", v->id, what);
	vcpu_dump(v);
	snprintf(why, sizeof(why), "vcpu %u: %s", v->id, what);
	vm_request_exit(v->vm, FLINT_EXIT_GUEST_CRASH, why);
}

/* Handles one exit. Returns false when the vCPU must stop running. */
static bool vcpu_exit(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	char what[128];

	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		handle_io(v);
		return true;
	case KVM_EXIT_MMIO:
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
			vm_request_exit(v->vm, FLINT_EXIT_OK, what);
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
		vm_request_exit(v->vm, FLINT_EXIT_OK, "guest halted with interrupts off");
		return false;
	default:
		snprintf(what, sizeof(what), "unexpected exit reason %u", run->exit_reason);
		crash(v, what);
		return false;
	}
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
	while (!atomic_load(&v->vm->stopping)) {
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
		if (!vcpu_exit(v))
			break;
	}
	return NULL;
}

int vcpu_start(struct vcpu *v)
{
	sigset_t all, old;
	int r;

	/* Start with everything blocked so no signal lands before the thread sets its mask. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
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
