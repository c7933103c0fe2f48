/*
 * The VM description. Read from a Firecracker --config-file JSON (the same schema, so
 * existing configs work unchanged) plus flint's own keys under the top-level "flint"
 * object. Everything here is validated; later code may trust it.
 */
#ifndef FLINT_CONFIG_H
#define FLINT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONFIG_MAX_VCPUS   32
#define CONFIG_MAX_MEM_MIB (1024ULL * 1024) /* 1 TiB */
#define CONFIG_MAX_DEVICES 64               /* drives, network interfaces */
/* Assigned devices: what one iommufd context in iommu/ holds. */
#define CONFIG_MAX_VFIO_DEVICES 16
/* Limits that keep a hostile config from costing memory and time without end. */
#define CONFIG_MAX_FILE_BYTES   (1ULL << 20) /* the config file itself */
#define CONFIG_MAX_KERNEL_BYTES (512ULL << 20)
#define CONFIG_MAX_INITRD_BYTES (2ULL << 30)
/*
 * boot_args, NUL excluded: a ceiling above what kernels take (x86 Linux: 2047, its
 * COMMAND_LINE_SIZE less the NUL), so it only stops the absurd before anything is loaded;
 * the loaders then check the kernel's own cmdline_size.
 */
#define CONFIG_MAX_BOOT_ARGS 4096

/* Firecracker's default kernel command line, used when boot_args is absent. */
#define CONFIG_DEFAULT_BOOT_ARGS                                                                   \
	"reboot=k panic=1 pci=off nomodule 8250.nr_uarts=0 i8042.noaux i8042.nomux "               \
	"i8042.nopnp i8042.dumbkbd"

enum huge_pages { HUGE_PAGES_NONE, HUGE_PAGES_2M };
enum cache_type { CACHE_UNSAFE, CACHE_WRITEBACK };
enum io_engine { IO_ENGINE_SYNC, IO_ENGINE_ASYNC };

/* The JSON spellings of the enums above and of dma_mode, indexed by value, NULL-terminated. */
extern const char *const config_huge_pages_names[];
extern const char *const config_cache_names[];
extern const char *const config_io_engine_names[];
extern const char *const config_dma_mode_names[];

struct token_bucket {
	bool present;
	uint64_t size;
	uint64_t one_time_burst;
	uint64_t refill_time_ms;
};

struct rate_limiter {
	struct token_bucket bandwidth;
	struct token_bucket ops;
};

struct drive_config {
	char *id;
	char *path;     /* path_on_host */
	int fd;         /* path, opened (read-write unless read_only) and checked */
	char *partuuid; /* NULL when absent */
	bool root;
	bool read_only;
	enum cache_type cache;
	enum io_engine engine;
	struct rate_limiter limiter;
};

struct net_config {
	char *id;
	char *host_dev; /* TAP name, <= 15 bytes */
	bool has_mac;
	uint8_t mac[6];
	struct rate_limiter rx, tx;
};

struct vsock_config {
	bool present;
	uint32_t guest_cid;
	char *uds_path;
};

struct logger_config {
	bool present;
	char *path;  /* NULL: keep the CLI's choice */
	char *level; /* Firecracker level name as given, NULL when absent */
	bool show_level;
	bool show_origin;
};

#define CONFIG_EXIT_PORT_DEFAULT 0xf4 /* QEMU's isa-debug-exit as CI jobs configure it */

/* NULL when ports [@port, @port + @size) are free for the exit port, else what holds them. */
const char *config_exit_port_clash(uint64_t port, uint64_t size);

struct flint_ci_config {
	/*
	 * isa-debug-exit compatible: off unless asked for, since it lets the guest choose
	 * flint's exit status (143 would read as SIGTERM to an orchestrator).
	 */
	bool exit_port_enabled;
	uint16_t exit_port;      /* first port of the range */
	uint8_t exit_port_size;  /* 1, 2 or 4 ports; a write to any of them exits */
};

enum dma_mode {
	DMA_MODE_AUTO,  /* fault when the device has PRI and the kernel takes a fault queue */
	DMA_MODE_PIN,   /* map all guest RAM up front */
	DMA_MODE_FAULT, /* map on the device's page requests; an error when impossible */
};

struct vfio_config {
	char *id;
	char *spec; /* a /dev/vfio/devices path or a PCI address */
	enum dma_mode mode;
};

struct flint_iommu_config {
	char *path;           /* default /dev/iommu */
	int fd;               /* an inherited iommufd, or -1 */
	uint64_t chunk_bytes; /* mapped per page request, default 2 MiB */
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

/*
 * Parses and validates @path. On failure returns -EINVAL (or -errno for an unreadable
 * file) and writes one message naming the file and the JSON path into @err. The files the
 * config names are opened and stay open until config_free().
 */
int config_load(const char *path, struct vm_config *cfg, char *err, size_t errlen);
/* The same, from a string; @name is used in messages in place of a file name. */
int config_parse(const char *json, const char *name, struct vm_config *cfg, char *err,
                 size_t errlen);
void config_free(struct vm_config *cfg);
/* The resolved description --dry-run prints, as JSON text (caller frees). */
char *config_describe(const struct vm_config *cfg);

#endif
