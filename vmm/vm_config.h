/*
 * What one VM is made of, as the VM lifecycle builds it: the config (vmm/config/) fills
 * it in and validates it, vmm_run() trusts it.
 */
#ifndef FLINT_VM_CONFIG_H
#define FLINT_VM_CONFIG_H

#include "devices/virtio/config.h"
#include "iommu/iommu.h"
#include "vmm/base/log.h"
#include "vmm/mmds/mmds.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VM_MAX_VCPUS 32

/* Firecracker's HugePageConfig; TRANSPARENT is madvise(MADV_HUGEPAGE), as flint.memory.thp. */
enum huge_pages { HUGE_PAGES_NONE, HUGE_PAGES_TRANSPARENT, HUGE_PAGES_2M };

struct logger_config {
	char *path; /* NULL: keep the CLI's choice */
	bool has_level;
	enum log_level level; /* Firecracker's level, as flint's (Trace is Debug) */
};

/*
 * The keys a config had that flint ignored, as Firecracker ignores them (unknown keys at the
 * top level, in metrics and in token buckets): their JSON paths, for one warning each.
 */
#define CONFIG_MAX_IGNORED 16
struct config_ignored {
	char *paths[CONFIG_MAX_IGNORED];
	size_t n;
	size_t more; /* ignored keys beyond the ones kept */
};

struct flint_ci_config {
	/*
	 * isa-debug-exit compatible: off unless asked for, since it lets the guest choose
	 * flint's exit status (143 would read as SIGTERM to an orchestrator).
	 */
	bool exit_port_enabled;
	uint16_t exit_port;     /* first port of the range */
	uint8_t exit_port_size; /* 1, 2 or 4 ports; a write to any of them exits */
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
	char *metrics_path;       /* NULL when absent */
	bool metrics_emit_id;     /* metrics.emit_id: the instance id on every line */
	char *metrics_properties; /* metrics.properties as compact JSON, keys sorted; or NULL */
	struct config_ignored ignored;
	bool entropy;
	struct rate_limiter entropy_limiter;
	/*
	 * mmds-config: the MMDS address and the interfaces the net devices answer it on
	 * (vmm/mmds/mmds.h); the store itself is the process's, not the config's.
	 */
	struct mmds_config mmds;
	/* flint's own */
	struct flint_ci_config ci;
	struct flint_memory_config memory;
	struct flint_iommu_config iommu;
	struct vfio_config *vfio;
	size_t nvfio;
};

#endif
