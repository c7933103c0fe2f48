/*
 * The config: a Firecracker --config-file JSON (the same schema, so existing configs work
 * unchanged) plus flint's own keys under the top-level "flint" object, read into the VM
 * description of vmm/vm_config.h. Everything it fills in is validated; later code may
 * trust it.
 */
#ifndef FLINT_CONFIG_H
#define FLINT_CONFIG_H

#include "boot/boot.h"
#include "iommu/iommu.h"
#include "vmm/vm_config.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONFIG_MAX_VCPUS   VM_MAX_VCPUS
#define CONFIG_MAX_MEM_MIB (1024ULL * 1024) /* 1 TiB */
#define CONFIG_MAX_DEVICES 64               /* drives, network interfaces */
/* Assigned devices: what one iommufd context in iommu/ holds. */
#define CONFIG_MAX_VFIO_DEVICES IOMMU_MAX_DEVICES
/* Limits that keep a hostile config from costing memory and time without end. */
#define CONFIG_MAX_FILE_BYTES   (1ULL << 20) /* the config file itself */
#define CONFIG_MAX_KERNEL_BYTES BOOT_MAX_KERNEL_BYTES
#define CONFIG_MAX_INITRD_BYTES BOOT_MAX_INITRD_BYTES
/*
 * boot_args, NUL excluded: a ceiling above what kernels take (x86 Linux: 2047, its
 * COMMAND_LINE_SIZE less the NUL), so it only stops the absurd before anything is loaded;
 * the loaders then check the kernel's own cmdline_size.
 */
#define CONFIG_MAX_BOOT_ARGS 4096

/*
 * Firecracker's default kernel command line, used when boot_args is absent: its
 * DEFAULT_KERNEL_CMDLINE since v1.13 (src/vmm/src/vmm_config/boot_source.rs), which no longer says
 * pci=off or i8042.nopnp.
 */
#define CONFIG_DEFAULT_BOOT_ARGS                                                                   \
	"reboot=k panic=1 nomodule 8250.nr_uarts=0 i8042.noaux i8042.nomux i8042.dumbkbd "         \
	"swiotlb=noforce"

/* The JSON spellings of the enums above and of dma_mode, indexed by value, NULL-terminated. */
extern const char *const config_huge_pages_names[];
extern const char *const config_cache_names[];
extern const char *const config_io_engine_names[];
extern const char *const config_dma_mode_names[];
extern const char *const config_mmds_version_names[];

#define CONFIG_EXIT_PORT_DEFAULT 0xf4 /* QEMU's isa-debug-exit as CI jobs configure it */

/* NULL when ports [@port, @port + @size) are free for the exit port, else what holds them. */
const char *config_exit_port_clash(uint64_t port, uint64_t size);

/*
 * Parses and validates @path. On failure returns -EINVAL (or -errno for an unreadable
 * file) and writes one message naming the file and the JSON path into @err. The files the
 * config names are opened and stay open until config_free().
 */
int config_load(const char *path, struct vm_config *cfg, char *err, size_t errlen);
/*
 * The same, from a string; @name is used in messages in place of a file name. For the
 * API's document: unlike a config file it needs no "drives" key.
 */
int config_parse(const char *json, const char *name, struct vm_config *cfg, char *err,
                 size_t errlen);
void config_free(struct vm_config *cfg);
/* Empty, with no file open: what config_free() may always be called on. */
void config_init(struct vm_config *cfg);
/*
 * mmds-config as Firecracker's GET /vm/config shows it: every key, the default address
 * filled in; JSON null when absent. A new reference, NULL when out of memory.
 */
json_t *config_mmds_json(const struct mmds_config *m);
/* The resolved description --dry-run prints, as JSON text (caller frees). */
char *config_describe(const struct vm_config *cfg);

#endif
