/* The resolved VM description that --dry-run prints: defaults filled in, as JSON. */
#include "vmm/config/config.h"

#include <jansson.h>
#include <stdio.h>

static json_t *str_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

static json_t *describe_limiter(const struct rate_limiter *l)
{
	json_t *o = json_object();
	const struct token_bucket *b[2] = { &l->bandwidth, &l->ops };
	const char *names[2] = { "bandwidth", "ops" };

	for (int i = 0; i < 2; i++) {
		if (!b[i]->present)
			continue;
		json_object_set_new(o, names[i],
		                    json_pack("{s:I,s:I,s:I}", "size", (json_int_t)b[i]->size,
		                              "one_time_burst", (json_int_t)b[i]->one_time_burst,
		                              "refill_time", (json_int_t)b[i]->refill_time_ms));
	}
	return o;
}

static json_t *describe_drives(const struct vm_config *cfg)
{
	json_t *a = json_array();

	for (size_t i = 0; i < cfg->ndrives; i++) {
		const struct drive_config *d = &cfg->drives[i];
		json_array_append_new(a, json_pack("{s:s,s:s,s:b,s:b,s:o,s:s,s:s,s:o}", "drive_id",
		                                   d->id, "path_on_host", d->path, "is_root_device",
		                                   d->root, "is_read_only", d->read_only,
		                                   "partuuid", str_or_null(d->partuuid),
		                                   "cache_type", config_cache_names[d->cache],
		                                   "io_engine", config_io_engine_names[d->engine],
		                                   "rate_limiter", describe_limiter(&d->limiter)));
	}
	return a;
}

static json_t *describe_nets(const struct vm_config *cfg)
{
	json_t *a = json_array();
	char mac[18];

	for (size_t i = 0; i < cfg->nnets; i++) {
		const struct net_config *n = &cfg->nets[i];
		const uint8_t *m = n->mac;
		snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3],
		         m[4], m[5]);
		json_array_append_new(a, json_pack("{s:s,s:s,s:o,s:o,s:o}", "iface_id", n->id,
		                                   "host_dev_name", n->host_dev, "guest_mac",
		                                   n->has_mac ? json_string(mac) : json_null(),
		                                   "rx_rate_limiter", describe_limiter(&n->rx),
		                                   "tx_rate_limiter", describe_limiter(&n->tx)));
	}
	return a;
}

static json_t *describe_vfio(const struct vm_config *cfg)
{
	json_t *a = json_array();

	for (size_t i = 0; i < cfg->nvfio; i++)
		json_array_append_new(a, json_pack("{s:s,s:s,s:s}", "id", cfg->vfio[i].id, "device",
		                                   cfg->vfio[i].spec, "dma_mode",
		                                   config_dma_mode_names[cfg->vfio[i].mode]));
	return a;
}

/* The keys ignored as Firecracker ignores them, and how many more there were. */
static json_t *describe_ignored(const struct config_ignored *ig)
{
	json_t *a = json_array();

	for (size_t i = 0; i < ig->n; i++)
		json_array_append_new(a, json_string(ig->paths[i]));
	if (ig->more)
		json_array_append_new(a, json_sprintf("... and %zu more", ig->more));
	return a;
}

static json_t *describe_metrics(const struct vm_config *cfg)
{
	json_t *props;

	if (!cfg->metrics_path)
		return json_null();
	props = cfg->metrics_properties ? json_loads(cfg->metrics_properties, 0, NULL) : NULL;
	return json_pack("{s:s,s:b,s:o?}", "metrics_path", cfg->metrics_path, "emit_id",
	                 cfg->metrics_emit_id, "properties", props);
}

char *config_describe(const struct vm_config *cfg)
{
	json_t *root = json_object();
	char *text;

	json_object_set_new(root, "boot-source",
	                    json_pack("{s:s,s:o,s:s,s:b}", "kernel_image_path", cfg->kernel_path,
	                              "initrd_path", str_or_null(cfg->initrd_path), "boot_args",
	                              cfg->boot_args, "boot_args_default", cfg->boot_args_default));
	json_object_set_new(root, "machine-config",
	                    json_pack("{s:i,s:I,s:b,s:b,s:s}", "vcpu_count", (int)cfg->vcpus,
	                              "mem_size_mib", (json_int_t)cfg->mem_mib, "smt", cfg->smt,
	                              "track_dirty_pages", cfg->track_dirty_pages, "huge_pages",
	                              config_huge_pages_names[cfg->huge_pages]));
	json_object_set_new(root, "drives", describe_drives(cfg));
	json_object_set_new(root, "network-interfaces", describe_nets(cfg));
	json_object_set_new(root, "vsock",
	                    cfg->vsock.present ? json_pack("{s:I,s:s}", "guest_cid",
	                                                   (json_int_t)cfg->vsock.guest_cid,
	                                                   "uds_path", cfg->vsock.uds_path)
	                                       : json_null());
	json_object_set_new(root, "metrics", describe_metrics(cfg));
	json_object_set_new(root, "entropy",
	                    cfg->entropy ? json_pack("{s:o}", "rate_limiter",
	                                             describe_limiter(&cfg->entropy_limiter))
	                                 : json_null());
	json_object_set_new(root, "mmds-config", config_mmds_json(&cfg->mmds));
	json_object_set_new(root, "ignored", describe_ignored(&cfg->ignored));
	json_object_set_new(
	        root, "flint",
	        json_pack("{s:{s:o,s:i},s:{s:b},s:{s:o,s:o,s:I,s:o},s:o}", "ci", "exit_port",
	                  cfg->ci.exit_port_enabled ? json_integer(cfg->ci.exit_port) : json_null(),
	                  "exit_port_size", (int)cfg->ci.exit_port_size,
	                  "memory", "thp", cfg->memory.thp, "iommu", "path",
	                  cfg->iommu.fd >= 0 ? json_null() : json_string(cfg->iommu.path), "fd",
	                  cfg->iommu.fd >= 0 ? json_integer(cfg->iommu.fd) : json_null(),
	                  "fault_chunk_kib", (json_int_t)(cfg->iommu.chunk_bytes >> 10),
	                  "max_mapped_mib",
	                  cfg->iommu.max_mapped_bytes
	                          ? json_integer((json_int_t)(cfg->iommu.max_mapped_bytes >> 20))
	                          : json_null(),
	                  "vfio-devices", describe_vfio(cfg)));
	/* ASCII only: no C1 control (U+0080-U+009F) from a config reaches the terminal raw. */
	text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
	json_decref(root);
	return text;
}
