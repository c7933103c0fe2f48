/*
 * The config's sections, one file each: Firecracker's (boot_source.c, machine.c, drives.c,
 * net.c, vsock.c, logger.c, entropy.c, mmds.c; unsupported.c for those flint checks and
 * refuses)
 * and flint's own (flint.c). The
 * config file (config.c) and the coming REST API (PUT /boot-source, PUT /machine-config,
 * PUT /logger, ...) call the same function, so both get one parser and one set of
 * messages.
 *
 * A section function reads @v, the section's JSON value (NULL when absent or null), into
 * its part of @cfg. @path is where @v sits and prefixes every key path in a message:
 * "boot-source" for the config file's section, "" for an API body, whose messages then
 * name the body's own keys ("kernel_image_path: required key is missing") after
 * @c->name. Whatever it fills in, config_free() frees, also after a failure.
 */
#ifndef FLINT_CFGSECTIONS_H
#define FLINT_CFGSECTIONS_H

#include "vmm/config/parse.h"
#include "vmm/vm_config.h"

#include <jansson.h>

typedef int cfg_section_fn(struct cfg_ctx *c, json_t *v, const char *path, struct vm_config *cfg);

cfg_section_fn cfg_boot_source; /* boot-source */
cfg_section_fn cfg_machine;     /* machine-config */
cfg_section_fn cfg_drives;      /* drives: the array */
cfg_section_fn cfg_net;         /* network-interfaces: the array */
cfg_section_fn cfg_vsock;       /* vsock */
cfg_section_fn cfg_logger;      /* logger */
cfg_section_fn cfg_metrics;     /* metrics */
cfg_section_fn cfg_entropy;     /* entropy */
cfg_section_fn cfg_mmds;        /* mmds-config: after network-interfaces, whose ids it names */
/* Checked as Firecracker reads them, then refused if they ask for anything (unsupported.c). */
cfg_section_fn cfg_balloon;        /* balloon */
cfg_section_fn cfg_cpu_config;     /* cpu-config */
cfg_section_fn cfg_pmem;           /* pmem: the array */
cfg_section_fn cfg_memory_hotplug; /* memory-hotplug */
cfg_section_fn cfg_flint;          /* flint: after machine-config, whose huge_pages it checks */

/*
 * A drives[] or network-interfaces[] list is taken entry by entry as Firecracker's
 * builders take them, so an id given again replaces the earlier entry (see drives.c,
 * net.c): an API can append each PUT's body to the list and get Firecracker's order.
 */
void cfg_drive_release(struct drive_config *d); /* closes and frees what @d holds */
void cfg_net_release(struct net_config *n);
void cfg_mmds_release(struct mmds_config *m);

/* Firecracker's RateLimiter, the optional object @key of @obj (drives, net, entropy). */
int cfg_rate_limiter(struct cfg_ctx *c, json_t *obj, const char *path, const char *key,
                     struct rate_limiter *l);

#endif
