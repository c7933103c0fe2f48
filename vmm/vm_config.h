/*
 * What one VM is made of, as the VM lifecycle builds it: the config (vmm/config/) fills
 * it in and validates it, vmm_run() trusts it.
 */
#ifndef FLINT_VM_CONFIG_H
#define FLINT_VM_CONFIG_H

#include "devices/virtio/config.h"
#include "iommu/iommu.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VM_MAX_VCPUS 32

enum huge_pages { HUGE_PAGES_NONE, HUGE_PAGES_2M };

struct logger_config {
	char *path;  /* NULL: keep the CLI's choice */
	char *level; /* Firecracker level name as given, NULL when absent */
};

struct flint_ci_config {
	/*
	 * isa-debug-exit compatible: off unless asked for, since it lets the guest choose
	 * flint's exit status (143 would read as SIGTERM to an orchestrator).
	 */
	bool exit_port_enabled;
	uint16_t exit_port;      /* first port of the range */
	uint8_t exit_port_size;  /* 1, 2 or 4 ports; a write to any of them exits */
};

struct flint_memory_config {
	bool thp; /* madvise(MADV_HUGEPAGE) on guest RAM */
};

struct vm_config {
	/* boot-source; config_parse opens and checks the images, the loaders read these fds */
	char *kernel_path;
	char *initrd_path; /* NULL when absent */
	int kernel_fd;
	int initrd_fd;   /* -1 when absent */
	char *boot_args; /* never NULL: the default when absent */
	bool boot_args_default;
	/* machine-config */
	unsigned vcpus;
	uint64_t mem_mib;
	bool smt;
	bool track_dirty_pages;
	enum huge_pages huge_pages;
	/* devices */
	struct drive_config *drives;
	size_t ndrives;
	struct net_config *nets;
	size_t nnets;
	struct vsock_config vsock;
	struct logger_config logger;
	char *metrics_path; /* NULL when absent */
	bool entropy;
	struct rate_limiter entropy_limiter;
	/* flint's own */
	struct flint_ci_config ci;
	struct flint_memory_config memory;
	struct flint_iommu_config iommu;
	struct vfio_config *vfio;
	size_t nvfio;
};

#endif
