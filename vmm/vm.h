/* The KVM VM: /dev/kvm, capabilities, irqchip, memory slots, buses, and its vCPUs. */
#ifndef FLINT_VM_H
#define FLINT_VM_H

#include "vmm/base/bus.h"
#include "vmm/base/loop.h"
#include "vmm/base/memory.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

struct phases;

/*
 * Enough for every assigned device at once (vmm/pci.c checks): 16 devices, each with up to
 * 64 vectors and 6 BARs of up to 3 mapped pieces, so no device ever finds them used up.
 */
#define VM_MSI_ROUTES    1024 /* MSI/MSI-X vectors of assigned devices, GSIs 24 and up */
#define VM_DEVICE_SLOTS  288  /* KVM memory slots for device BARs, after guest RAM's */
#define VM_MSI_GSI_FIRST 24   /* after the IOAPIC's pins */

struct vm_msi_route {
	bool used;
	uint64_t addr;
	uint32_t data;
};

struct vm {
	int kvm_fd;
	int vm_fd;
	int run_size; /* mmap size of struct kvm_run */
	struct guest_memory *mem;
	struct bus pio;
	struct bus mmio;
	struct loop *loop;
	unsigned nvcpus;     /* created so far (what teardown releases) */
	unsigned vcpu_count; /* configured: the topology the guest sees */
	bool smt;
	atomic_bool stopping; /* set once; vCPUs leave KVM_RUN and do not re-enter */
	atomic_int exit_code;
	atomic_bool say_where;      /* the vCPUs log where they were as they stop (a timeout's) */
	struct loop_post stop_post; /* vm_stop()'s, posted once: it never allocates */
	/* Pause: while @pausing the vCPU threads park outside KVM_RUN (vcpus_pause()). */
	atomic_bool pausing;
	pthread_mutex_t park_lock;
	pthread_cond_t park_cond; /* CLOCK_MONOTONIC */
	unsigned parked;
	struct phases *phases; /* first_run and guest_exit are marked here; may be NULL */
	/* Assigned devices' BARs and MSIs; changed from vCPU threads as the guest programs them. */
	pthread_mutex_t dev_lock;
	/*
	 * The tables last (vm_create() clears what comes before them): 24 KiB that a VM with
	 * no assigned device never writes, so never brings into memory.
	 */
	struct vm_msi_route msi[VM_MSI_ROUTES];
	bool device_slot_used[VM_DEVICE_SLOTS];
};

/*
 * The part of a VM that needs no config: @kvm_path opened, every capability flint needs
 * checked (one message lists all missing), the VM created with its TSS, identity map,
 * in-kernel irqchip and PIT. It logs nothing, so that it can run on a thread of its own
 * while the config is read (vm_early.h): a failure is kept in @why, with @err,
 * for vm_create() to log where a VM has always failed. Nothing is left open on failure.
 */
/* The KVM device a run opens, on the early thread (vm_early.h) or itself. */
#define VM_KVM_PATH "/dev/kvm"

struct vm_kvm {
	int kvm_fd, vm_fd, run_size;
	int err; /* 0 or -errno */
	char why[600];
};
void vm_kvm_open(struct vm_kvm *k, const char *kvm_path);
/* Closes what vm_kvm_open() opened (for one that vm_create() never took). */
void vm_kvm_close(struct vm_kvm *k);

/*
 * The VM of @k (which it takes over: vm_destroy() closes its fds), with @mem registered as
 * memory slots; @k's failure is logged here. @vm's msi and device_slot_used tables must
 * be zero (as calloc leaves them): vm_create clears the rest of @vm, not those.
 */
int vm_create(struct vm *vm, const struct vm_kvm *k, struct guest_memory *mem, bool track_dirty,
              struct loop *loop);
void vm_destroy(struct vm *vm);

/* An eventfd that raises @gsi when written (KVM irqfd). Returns the fd or -errno. */
int vm_irqfd(struct vm *vm, unsigned gsi);

/*
 * KVM ioeventfd: a guest write of @value (@len bytes) at MMIO address @addr signals @fd
 * in the kernel, without an exit to flint. Returns 0 or -errno (logged).
 */
int vm_ioeventfd(struct vm *vm, uint64_t addr, uint32_t len, uint64_t value, int fd);

/*
 * Device memory (a BAR flint mmapped) as guest memory at @gpa: a KVM slot of its own.
 * Returns a handle >= 0 for vm_unmap_device(), or -errno (logged). Any thread.
 */
int vm_map_device(struct vm *vm, uint64_t gpa, uint64_t size, void *hva);
void vm_unmap_device(struct vm *vm, int handle);
/*
 * An MSI message (@addr, @data) raised in the guest whenever @eventfd is written: a GSI
 * routing entry and a KVM irqfd. @route < 0 makes a new route, else changes that one's
 * message. Returns the route >= 0 or -errno (logged). Any thread.
 */
int vm_msi_route(struct vm *vm, int route, uint64_t addr, uint32_t data, int eventfd);
void vm_msi_unroute(struct vm *vm, int route, int eventfd);

/*
 * The one way a VM ends: a guest exit or reset, a vCPU error, the timeout, a signal.
 * Callable from any thread (vCPU or loop); the first request wins and its @code becomes
 * flint's exit status. @reason, when not NULL, is logged at info level. It lives with the
 * VM, not in vmm.c, because vCPU threads (a floor below vmm.c) call it too.
 */
void vm_stop(struct vm *vm, int code, const char *reason);

#endif
