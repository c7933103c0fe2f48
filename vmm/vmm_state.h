/*
 * The inside of a struct vmm (vmm.h), for the files that make one up: vmm.c builds, runs
 * and tears down the VM; vmm_ctrl.c is what the API does to a running one. Nothing else
 * includes this.
 */
#ifndef FLINT_VMM_STATE_H
#define FLINT_VMM_STATE_H

#include "devices/legacy/i8042.h"
#include "devices/legacy/serial.h"
#include "devices/pseudo/boot_timer.h"
#include "devices/pseudo/exit_port.h"
#include "iommu/iommu.h"
#include "vmm/base/memory.h"
#include "vmm/console.h"
#include "vmm/pci.h"
#include "vmm/sandbox.h"
#include "vmm/term.h"
#include "vmm/vcpu.h"
#include "vmm/virtio.h"
#include "vmm/vm.h"
#include "vmm/vmm.h"

#include <stdbool.h>

/*
 * About 85 KiB, most of it for what few VMs have (assigned devices, many vCPUs): the
 * process's first is static (vmm_alloc), so only the pages written are ever in memory, and
 * what every VM writes comes first, then the VM (its own tables last, vm.h), then the rest.
 */
struct vmm {
	const struct vm_config *cfg;
	const struct run_opts *opts;
	struct loop *loop;
	struct guest_memory mem;
	char *cmdline; /* boot_args and what the devices add to them */
	int serial_irq;
	int kbd_irq; /* the i8042's IRQ 1 */
	struct metrics *metrics;
	bool console_up;
	bool iommu_used;
	bool started; /* the vCPUs ran: the last metrics line is written at the end */
	struct serial serial;
	struct term term; /* stdin into the UART */
	struct console console;
	struct i8042 i8042;
	struct boot_timer boot_timer;
	struct exit_port exit_port;
	struct sandbox sandbox; /* the threads' seccomp filters, taken after the drop */
	struct vcpu vcpus[VM_MAX_VCPUS];
	struct vm vm;
	struct vmm_virtio virtio;
	struct iommu iommu;
	struct vmm_pci pci; /* only with assigned devices */
};

#endif
