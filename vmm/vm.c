#include "vmm/vm.h"
#include "vmm/x86/layout.h"
#include "vmm/base/log.h"
#include "vmm/base/phases.h"
#include "vmm/base/loop.h"

#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

static const struct {
	int cap;
	const char *name;
} required_caps[] = {
	{ KVM_CAP_IRQCHIP, "IRQCHIP" },
	{ KVM_CAP_HLT, "HLT" },
	{ KVM_CAP_USER_MEMORY, "USER_MEMORY" },
	{ KVM_CAP_SET_TSS_ADDR, "SET_TSS_ADDR" },
	{ KVM_CAP_SET_IDENTITY_MAP_ADDR, "SET_IDENTITY_MAP_ADDR" },
	{ KVM_CAP_EXT_CPUID, "EXT_CPUID" },
	{ KVM_CAP_PIT2, "PIT2" },
	{ KVM_CAP_PIT_STATE2, "PIT_STATE2" },
	{ KVM_CAP_IRQFD, "IRQFD" },
	{ KVM_CAP_IOEVENTFD, "IOEVENTFD" },
	{ KVM_CAP_IMMEDIATE_EXIT, "IMMEDIATE_EXIT" },
	{ KVM_CAP_MP_STATE, "MP_STATE" },
};

/* One message naming every missing capability, so the user fixes the host once. */
static int check_caps(int kvm_fd, char *why, size_t len)
{
	char missing[512] = "";

	for (size_t i = 0; i < sizeof(required_caps) / sizeof(required_caps[0]); i++) {
		if (ioctl(kvm_fd, KVM_CHECK_EXTENSION, required_caps[i].cap) > 0)
			continue;
		snprintf(missing + strlen(missing), sizeof(missing) - strlen(missing),
		         " KVM_CAP_%s", required_caps[i].name);
	}
	if (!missing[0])
		return 0;
	snprintf(why, len, "/dev/kvm lacks capabilities flint needs:%s", missing);
	return -ENOTSUP;
}

static int add_memslots(struct vm *vm, bool track_dirty)
{
	for (unsigned i = 0; i < vm->mem->nregions; i++) {
		const struct guest_region *r = &vm->mem->regions[i];
		struct kvm_userspace_memory_region slot = {
			.slot = i,
			.flags = track_dirty ? KVM_MEM_LOG_DIRTY_PAGES : 0,
			.guest_phys_addr = r->gpa,
			.memory_size = r->size,
			.userspace_addr = (uintptr_t)r->hva,
		};
		if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &slot) < 0) {
			int e = errno;
			log_error("KVM_SET_USER_MEMORY_REGION slot %u (guest %#llx, %llu MiB): %s",
			          i, (unsigned long long)r->gpa,
			          (unsigned long long)(r->size >> 20), strerror(e));
			return -e;
		}
	}
	return 0;
}

/* Issues @req on the VM fd; on failure says which step in @k->why. */
static int kvm_vm_ioctl(struct vm_kvm *k, unsigned long req, unsigned long arg, const char *name)
{
	if (ioctl(k->vm_fd, req, arg) >= 0)
		return 0;
	int e = errno;
	snprintf(k->why, sizeof(k->why), "%s: %s", name, strerror(e));
	return -e;
}

void vm_kvm_open(struct vm_kvm *k, const char *kvm_path)
{
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };
	uint64_t identity = LAYOUT_KVM_IDENTITY;
	int r, version;

	k->vm_fd = -1;
	k->why[0] = 0;
	k->kvm_fd = open(kvm_path, O_RDWR | O_CLOEXEC);
	if (k->kvm_fd < 0) {
		r = -errno;
		snprintf(k->why, sizeof(k->why), "cannot open %s: %s", kvm_path, strerror(-r));
		goto out;
	}
	version = ioctl(k->kvm_fd, KVM_GET_API_VERSION, 0);
	if (version != KVM_API_VERSION) {
		snprintf(k->why, sizeof(k->why), "%s: KVM API version %d, flint needs %d", kvm_path,
		         version, KVM_API_VERSION);
		r = -ENOTSUP;
		goto out;
	}
	r = check_caps(k->kvm_fd, k->why, sizeof(k->why));
	if (r)
		goto out;
	k->run_size = ioctl(k->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	k->vm_fd = ioctl(k->kvm_fd, KVM_CREATE_VM, 0);
	if (k->vm_fd < 0 || k->run_size <= 0) {
		r = -errno;
		snprintf(k->why, sizeof(k->why), "KVM_CREATE_VM: %s", strerror(-r));
		goto out;
	}
	r = kvm_vm_ioctl(k, KVM_SET_TSS_ADDR, LAYOUT_KVM_TSS, "KVM_SET_TSS_ADDR");
	if (!r)
		r = kvm_vm_ioctl(k, KVM_SET_IDENTITY_MAP_ADDR, (unsigned long)&identity,
		                 "KVM_SET_IDENTITY_MAP_ADDR");
	if (!r)
		r = kvm_vm_ioctl(k, KVM_CREATE_IRQCHIP, 0, "KVM_CREATE_IRQCHIP");
	if (!r)
		r = kvm_vm_ioctl(k, KVM_CREATE_PIT2, (unsigned long)&pit, "KVM_CREATE_PIT2");
out:
	k->err = r;
	if (r)
		vm_kvm_close(k);
}

/* The VM's fd, then /dev/kvm's: what vm_kvm_open() opened and vm_create() took over. */
static void close_fds(int *kvm_fd, int *vm_fd)
{
	if (*vm_fd >= 0)
		close(*vm_fd);
	if (*kvm_fd >= 0)
		close(*kvm_fd);
	*vm_fd = *kvm_fd = -1;
}

void vm_kvm_close(struct vm_kvm *k)
{
	close_fds(&k->kvm_fd, &k->vm_fd);
}

int vm_create(struct vm *vm, const struct vm_kvm *k, struct guest_memory *mem, bool track_dirty,
              struct loop *loop)
{
	pthread_condattr_t ca;
	int r;

	/* Not the tables (vm.h): zero already, and untouched pages cost nothing. */
	memset(vm, 0, offsetof(struct vm, msi));
	pthread_mutex_init(&vm->dev_lock, NULL);
	pthread_mutex_init(&vm->park_lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&vm->park_cond, &ca);
	pthread_condattr_destroy(&ca);
	vm->mem = mem;
	vm->loop = loop;
	bus_init(&vm->pio, "port I/O");
	bus_init(&vm->mmio, "MMIO");
	vm->kvm_fd = k->kvm_fd;
	vm->vm_fd = k->vm_fd;
	vm->run_size = k->run_size;
	if (k->err) {
		log_error("%s", k->why);
		return k->err;
	}
	r = add_memslots(vm, track_dirty);
	if (r)
		vm_destroy(vm);
	return r;
}

void vm_destroy(struct vm *vm)
{
	close_fds(&vm->kvm_fd, &vm->vm_fd);
}

int vm_irqfd(struct vm *vm, unsigned gsi)
{
	int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	struct kvm_irqfd irqfd = { .gsi = gsi };

	if (fd < 0)
		return -errno;
	irqfd.fd = (uint32_t)fd;
	if (ioctl(vm->vm_fd, KVM_IRQFD, &irqfd) < 0) {
		int e = errno;
		close(fd);
		log_error("KVM_IRQFD for GSI %u: %s", gsi, strerror(e));
		return -e;
	}
	return fd;
}

int vm_ioeventfd(struct vm *vm, uint64_t addr, uint32_t len, uint64_t value, int fd)
{
	struct kvm_ioeventfd io = { .datamatch = value,
		                    .addr = addr,
		                    .len = len,
		                    .fd = fd,
		                    .flags = KVM_IOEVENTFD_FLAG_DATAMATCH };

	if (ioctl(vm->vm_fd, KVM_IOEVENTFD, &io) < 0) {
		int e = errno;
		log_error("KVM_IOEVENTFD at %#llx (value %llu): %s", (unsigned long long)addr,
		          (unsigned long long)value, strerror(e));
		return -e;
	}
	return 0;
}

static void exit_on_loop(void *arg)
{
	struct vm *vm = arg;

	loop_stop(vm->loop, atomic_load(&vm->exit_code));
}

void vm_stop(struct vm *vm, int code, const char *reason)
{
	bool expected = false;

	if (!atomic_compare_exchange_strong(&vm->stopping, &expected, true))
		return;
	phases_mark(vm->phases, PHASE_GUEST_EXIT);
	atomic_store(&vm->exit_code, code);
	/* A pause waiting for this vCPU to park would wait in vain: it ends instead. */
	pthread_mutex_lock(&vm->park_lock);
	pthread_cond_broadcast(&vm->park_cond);
	pthread_mutex_unlock(&vm->park_lock);
	if (reason)
		log_info("%s", reason);
	loop_post_init(&vm->stop_post, exit_on_loop, vm);
	if (loop_post_node(vm->loop, &vm->stop_post) < 0)
		log_error("cannot wake the event loop to stop the VM (exit code %d)", code);
}
