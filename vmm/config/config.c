/* Firecracker-compatible config file: schema walk and validation, one section a function. */
#include "vmm/config/config.h"
#include "vmm/config/parse.h"
#include "vmm/base/file.h"
#include "vmm/base/log.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *const config_huge_pages_names[] = { "None", "2M", NULL };
const char *const config_cache_names[] = { "Unsafe", "Writeback", NULL };
const char *const config_io_engine_names[] = { "Sync", "Async", NULL };
const char *const config_dma_mode_names[] = { "auto", "pin", "fault", NULL };

static int parse_bucket(struct cfg_ctx *c, json_t *obj, const char *path, const char *key,
                        struct token_bucket *b)
{
	char sub[CFG_PATH_MAX];
	json_t *v = cfg_member(obj, key);
	int r;

	if (!v)
		return 0;
	cfg_join(sub, path, key);
	r = cfg_object(c, v, sub, CFG_KEYS("size", "one_time_burst", "refill_time"));
	if (!r)
		r = cfg_uint(c, v, sub, "size", true, 0, UINT64_MAX >> 1, &b->size);
	if (!r)
		r = cfg_uint(c, v, sub, "one_time_burst", false, 0, UINT64_MAX >> 1,
		             &b->one_time_burst);
	if (!r)
		r = cfg_uint(c, v, sub, "refill_time", true, 0, UINT64_MAX >> 1,
		             &b->refill_time_ms);
	b->present = r == 0;
	return r;
}

static int parse_limiter(struct cfg_ctx *c, json_t *obj, const char *path, const char *key,
                         struct rate_limiter *l)
{
	char sub[CFG_PATH_MAX];
	json_t *v = cfg_member(obj, key);
	int r;

	if (!v)
		return 0;
	cfg_join(sub, path, key);
	r = cfg_object(c, v, sub, CFG_KEYS("bandwidth", "ops"));
	if (!r)
		r = parse_bucket(c, v, sub, "bandwidth", &l->bandwidth);
	if (!r)
		r = parse_bucket(c, v, sub, "ops", &l->ops);
	return r;
}

static int parse_boot_source(struct cfg_ctx *c, json_t *root, struct vm_config *cfg)
{
	json_t *bs = cfg_member(root, "boot-source");
	int r;

	if (!bs)
		return cfg_fail(c, "boot-source", "required section is missing");
	r = cfg_object(c, bs, "boot-source",
	               CFG_KEYS("kernel_image_path", "initrd_path", "boot_args"));
	if (!r)
		r = cfg_string(c, bs, "boot-source", "kernel_image_path", true, &cfg->kernel_path);
	if (!r)
		r = cfg_file(c, "boot-source.kernel_image_path", cfg->kernel_path, O_RDONLY,
		             FILE_REG, CONFIG_MAX_KERNEL_BYTES, &cfg->kernel_fd);
	if (!r)
		r = cfg_string(c, bs, "boot-source", "initrd_path", false, &cfg->initrd_path);
	if (!r && cfg->initrd_path)
		r = cfg_file(c, "boot-source.initrd_path", cfg->initrd_path, O_RDONLY, FILE_REG,
		             CONFIG_MAX_INITRD_BYTES, &cfg->initrd_fd);
	if (!r)
		r = cfg_string(c, bs, "boot-source", "boot_args", false, &cfg->boot_args);
	if (!r && cfg->boot_args && strlen(cfg->boot_args) > CONFIG_MAX_BOOT_ARGS)
		r = cfg_fail(c, "boot-source.boot_args", "%zu bytes, more than the limit of %d",
		             strlen(cfg->boot_args), CONFIG_MAX_BOOT_ARGS);
	if (r)
		return r;
	if (!cfg->boot_args) {
		cfg->boot_args = strdup(CONFIG_DEFAULT_BOOT_ARGS);
		cfg->boot_args_default = true;
	}
	return cfg->boot_args ? 0 : -ENOMEM;
}

static int parse_machine(struct cfg_ctx *c, json_t *root, struct vm_config *cfg)
{
	static const char *const templates[] = { "None", NULL };
	const char *p = "machine-config";
	json_t *mc = cfg_member(root, p);
	uint64_t vcpus = 0, mem = 0;
	int tmpl = 0, hp = 0, r;

	if (!mc)
		return cfg_fail(c, p, "required section is missing");
	r = cfg_object(c, mc, p,
	               CFG_KEYS("vcpu_count", "mem_size_mib", "smt", "cpu_template",
	                        "track_dirty_pages", "huge_pages"));
	if (!r)
		r = cfg_uint(c, mc, p, "vcpu_count", true, 1, CONFIG_MAX_VCPUS, &vcpus);
	if (!r)
		r = cfg_uint(c, mc, p, "mem_size_mib", true, 1, CONFIG_MAX_MEM_MIB, &mem);
	if (!r)
		r = cfg_bool(c, mc, p, "smt", false, &cfg->smt);
	if (!r)
		r = cfg_bool(c, mc, p, "track_dirty_pages", false, &cfg->track_dirty_pages);
	if (!r && json_is_string(cfg_member(mc, "cpu_template")) &&
	    strcmp(json_string_value(cfg_member(mc, "cpu_template")), "None") != 0)
		return cfg_fail(c, "machine-config.cpu_template",
		                "CPU templates are not supported yet");
	if (!r)
		r = cfg_enum(c, mc, p, "cpu_template", templates, &tmpl);
	if (!r)
		r = cfg_enum(c, mc, p, "huge_pages", config_huge_pages_names, &hp);
	if (r)
		return r;
	cfg->vcpus = (unsigned)vcpus;
	cfg->mem_mib = mem;
	cfg->huge_pages = (enum huge_pages)hp;
	if (cfg->smt && vcpus > 1 && vcpus % 2)
		return cfg_fail(c, "machine-config.vcpu_count",
		                "must be 1 or even when smt is true (got %u)", cfg->vcpus);
	if (cfg->huge_pages == HUGE_PAGES_2M && mem % 2)
		return cfg_fail(c, "machine-config.mem_size_mib",
		                "must be a multiple of 2 with huge_pages \"2M\" (got %llu)",
		                (unsigned long long)mem);
	return 0;
}

static int parse_drive(struct cfg_ctx *c, json_t *d, const char *p, struct drive_config *drv)
{
	char sub[CFG_PATH_MAX];
	int cache = 0, engine = 0, r;

	drv->fd = -1;
	r = cfg_object(c, d, p,
	               CFG_KEYS("drive_id", "path_on_host", "is_root_device", "is_read_only",
	                        "partuuid", "cache_type", "io_engine", "rate_limiter", "socket"));
	if (!r && cfg_member(d, "socket"))
		return cfg_fail(c, cfg_join(sub, p, "socket"),
		                "vhost-user drives are not supported yet");
	if (!r)
		r = cfg_string(c, d, p, "drive_id", true, &drv->id);
	if (!r)
		r = cfg_bool(c, d, p, "is_root_device", true, &drv->root);
	if (!r)
		r = cfg_bool(c, d, p, "is_read_only", false, &drv->read_only);
	if (!r)
		r = cfg_string(c, d, p, "partuuid", false, &drv->partuuid);
	if (!r)
		r = cfg_enum(c, d, p, "cache_type", config_cache_names, &cache);
	if (!r)
		r = cfg_enum(c, d, p, "io_engine", config_io_engine_names, &engine);
	if (!r)
		r = parse_limiter(c, d, p, "rate_limiter", &drv->limiter);
	if (!r)
		r = cfg_string(c, d, p, "path_on_host", true, &drv->path);
	if (!r)
		r = cfg_file(c, cfg_join(sub, p, "path_on_host"), drv->path,
		             drv->read_only ? O_RDONLY : O_RDWR, FILE_REG | FILE_BLK, 0, &drv->fd);
	drv->cache = (enum cache_type)cache;
	drv->engine = (enum io_engine)engine;
	return r;
}

static int drive_one(struct cfg_ctx *c, json_t *v, const char *p, void *out)
{
	return parse_drive(c, v, p, out);
}

static int check_drives(struct cfg_ctx *c, const struct vm_config *cfg)
{
	char sub[CFG_PATH_MAX], idx[CFG_PATH_MAX];
	size_t roots = 0;

	for (size_t i = 0; i < cfg->ndrives; i++) {
		const struct drive_config *d = &cfg->drives[i];
		cfg_index(idx, "drives", i);
		for (size_t j = 0; j < i; j++)
			if (strcmp(d->id, cfg->drives[j].id) == 0)
				return cfg_fail(c, cfg_join(sub, idx, "drive_id"),
				                "duplicate id \"%s\" (also drives[%zu])",
				                MSG_ESC(d->id), j);
		if (d->root && ++roots > 1)
			return cfg_fail(c, cfg_join(sub, idx, "is_root_device"),
			                "only one drive can be the root device");
		if (d->partuuid && !d->root)
			return cfg_fail(c, cfg_join(sub, idx, "partuuid"),
			                "only the root device takes a partuuid");
	}
	return 0;
}

static int parse_mac(const char *s, uint8_t mac[6])
{
	unsigned b[6];
	char tail;

	if (strlen(s) != 17 || sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3],
	                              &b[4], &b[5], &tail) != 6)
		return -EINVAL;
	for (int i = 0; i < 6; i++) {
		if (s[i * 3 + 2] != ':' && i < 5)
			return -EINVAL;
		mac[i] = (uint8_t)b[i];
	}
	return 0;
}

static int net_one(struct cfg_ctx *c, json_t *v, const char *p, void *out)
{
	struct net_config *n = out;
	char sub[CFG_PATH_MAX];
	char *mac = NULL;
	int r;

	r = cfg_object(c, v, p,
	               CFG_KEYS("iface_id", "host_dev_name", "guest_mac", "rx_rate_limiter",
	                        "tx_rate_limiter"));
	if (!r)
		r = cfg_string(c, v, p, "iface_id", true, &n->id);
	if (!r)
		r = cfg_string(c, v, p, "host_dev_name", true, &n->host_dev);
	if (!r && strlen(n->host_dev) >= IFNAMSIZ)
		r = cfg_fail(c, cfg_join(sub, p, "host_dev_name"), "\"%s\" is longer than %d bytes",
		             MSG_ESC(n->host_dev), IFNAMSIZ - 1);
	if (!r)
		r = cfg_string(c, v, p, "guest_mac", false, &mac);
	if (!r && mac) {
		n->has_mac = true;
		if (parse_mac(mac, n->mac))
			r = cfg_fail(c, cfg_join(sub, p, "guest_mac"),
			             "\"%s\" is not a MAC address like 06:00:ac:10:00:02",
			             MSG_ESC(mac));
		else if (n->mac[0] & 1)
			r = cfg_fail(c, cfg_join(sub, p, "guest_mac"),
			             "\"%s\" is a multicast address", MSG_ESC(mac));
	}
	free(mac);
	if (!r)
		r = parse_limiter(c, v, p, "rx_rate_limiter", &n->rx);
	if (!r)
		r = parse_limiter(c, v, p, "tx_rate_limiter", &n->tx);
	return r;
}

static int check_nets(struct cfg_ctx *c, const struct vm_config *cfg)
{
	char sub[CFG_PATH_MAX], idx[CFG_PATH_MAX];
	const struct net_config *a, *b;

	for (size_t i = 0; i < cfg->nnets; i++) {
		a = &cfg->nets[i];
		cfg_index(idx, "network-interfaces", i);
		for (size_t j = 0; j < i; j++) {
			b = &cfg->nets[j];
			if (strcmp(a->id, b->id) == 0)
				return cfg_fail(c, cfg_join(sub, idx, "iface_id"),
				                "duplicate id \"%s\"", MSG_ESC(a->id));
			if (strcmp(a->host_dev, b->host_dev) == 0)
				return cfg_fail(c, cfg_join(sub, idx, "host_dev_name"),
				                "\"%s\" is used twice", MSG_ESC(a->host_dev));
			if (a->has_mac && b->has_mac && memcmp(a->mac, b->mac, 6) == 0)
				return cfg_fail(c, cfg_join(sub, idx, "guest_mac"),
				                "same MAC as network-interfaces[%zu]", j);
		}
	}
	return 0;
}

static int parse_vsock(struct cfg_ctx *c, json_t *root, struct vm_config *cfg)
{
	json_t *v = cfg_member(root, "vsock");
	char *unused_id = NULL;
	uint64_t cid = 0;
	int r;

	if (!v)
		return 0;
	r = cfg_object(c, v, "vsock", CFG_KEYS("vsock_id", "guest_cid", "uds_path"));
	if (!r)
		r = cfg_string(c, v, "vsock", "vsock_id", false, &unused_id);
	free(unused_id);
	/* CIDs 0-2 are reserved (hypervisor, local, host); -1U is VMADDR_CID_ANY. */
	if (!r)
		r = cfg_uint(c, v, "vsock", "guest_cid", true, 3, UINT32_MAX - 1, &cid);
	if (!r)
		r = cfg_string(c, v, "vsock", "uds_path", true, &cfg->vsock.uds_path);
	cfg->vsock.guest_cid = (uint32_t)cid;
	cfg->vsock.present = r == 0;
	return r;
}

static int parse_logger(struct cfg_ctx *c, json_t *root, struct vm_config *cfg)
{
	static const char *const levels[] = { "Error", "Warning", "Info", "Debug",
		                              "Trace", "Off",     NULL };
	json_t *v = cfg_member(root, "logger");
	char *module = NULL;
	int level = 0, r;

	if (!v)
		return 0;
	r = cfg_object(c, v, "logger",
	               CFG_KEYS("log_path", "level", "show_level", "show_log_origin", "module"));
	if (!r)
		r = cfg_string(c, v, "logger", "log_path", false, &cfg->logger.path);
	if (!r)
		r = cfg_enum(c, v, "logger", "level", levels, &level);
	if (!r && cfg_member(v, "level"))
		cfg->logger.level = strdup(levels[level]);
	if (!r)
		r = cfg_bool(c, v, "logger", "show_level", false, &cfg->logger.show_level);
	if (!r)
		r = cfg_bool(c, v, "logger", "show_log_origin", false, &cfg->logger.show_origin);
	if (!r)
		r = cfg_string(c, v, "logger", "module", false, &module);
	free(module);
	cfg->logger.present = r == 0;
	return r;
}

static int parse_metrics_entropy(struct cfg_ctx *c, json_t *root, struct vm_config *cfg)
{
	json_t *m = cfg_member(root, "metrics"), *e = cfg_member(root, "entropy");
	int r = 0;

	if (m) {
		r = cfg_object(c, m, "metrics", CFG_KEYS("metrics_path"));
		if (!r)
			r = cfg_string(c, m, "metrics", "metrics_path", true, &cfg->metrics_path);
	}
	if (!r && e) {
		r = cfg_object(c, e, "entropy", CFG_KEYS("rate_limiter"));
		if (!r)
			r = parse_limiter(c, e, "entropy", "rate_limiter", &cfg->entropy_limiter);
		cfg->entropy = r == 0;
	}
	return r;
}

static int parse_root(struct cfg_ctx *c, json_t *root, struct vm_config *cfg)
{
	static const char *const unsupported[] = { "balloon", "cpu-config",     "mmds-config",
		                                   "pmem",    "memory-hotplug", "serial",
		                                   NULL };
	int r = cfg_object(c, root, "(top level)",
	                   CFG_KEYS("boot-source", "machine-config", "drives", "network-interfaces",
	                            "vsock", "logger", "metrics", "entropy", "balloon",
	                            "cpu-config", "mmds-config", "pmem", "memory-hotplug", "serial",
	                            "flint"));

	for (int i = 0; !r && unsupported[i]; i++)
		r = cfg_unsupported(c, root, unsupported[i]);
	if (!r)
		r = parse_boot_source(c, root, cfg);
	if (!r)
		r = parse_machine(c, root, cfg);
	if (!r)
		r = cfg_list(c, root, "drives", "drives", CONFIG_MAX_DEVICES, sizeof(*cfg->drives),
		             (void **)&cfg->drives, &cfg->ndrives, drive_one);
	if (!r)
		r = check_drives(c, cfg);
	if (!r)
		r = cfg_list(c, root, "network-interfaces", "network-interfaces",
		             CONFIG_MAX_DEVICES, sizeof(*cfg->nets), (void **)&cfg->nets,
		             &cfg->nnets, net_one);
	if (!r)
		r = check_nets(c, cfg);
	if (!r)
		r = parse_vsock(c, root, cfg);
	if (!r)
		r = parse_logger(c, root, cfg);
	if (!r)
		r = parse_metrics_entropy(c, root, cfg);
	if (!r)
		r = cfg_parse_flint(c, root, cfg);
	return r;
}

/* Empty, with no fd open: what config_free() may always be called on. */
static void config_init(struct vm_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->kernel_fd = cfg->initrd_fd = -1;
}

int config_parse(const char *json, const char *name, struct vm_config *cfg, char *err,
                 size_t errlen)
{
	struct cfg_ctx c = { name, err, errlen };
	json_error_t jerr;
	json_t *root;
	int r;

	config_init(cfg);
	root = json_loads(json, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		snprintf(err, errlen, "%s: line %d, column %d: invalid JSON: %s", MSG_ESC(name),
		         jerr.line, jerr.column, MSG_ESC(jerr.text));
		return -EINVAL;
	}
	r = parse_root(&c, root, cfg);
	json_decref(root);
	if (r == -ENOMEM)
		snprintf(err, errlen, "%s: out of memory", MSG_ESC(name));
	if (r)
		config_free(cfg);
	return r;
}

int config_load(const char *path, struct vm_config *cfg, char *err, size_t errlen)
{
	char why[160];
	uint8_t *buf;
	size_t len;
	int fd, r;

	config_init(cfg);
	/* Checked before a byte is read: a FIFO would hang, /dev/zero never ends. */
	fd = file_open(path, O_RDONLY, FILE_REG, CONFIG_MAX_FILE_BYTES, why, sizeof(why));
	if (fd < 0) {
		snprintf(err, errlen, "%s: cannot open config file: %s", MSG_ESC(path), why);
		return fd;
	}
	r = file_read_all(fd, CONFIG_MAX_FILE_BYTES, &buf, &len);
	close(fd);
	if (r) {
		snprintf(err, errlen, "%s: cannot read config file: %s", MSG_ESC(path),
		         strerror(-r));
		return r;
	}
	if (strlen((char *)buf) != len)
		r = -EINVAL, snprintf(err, errlen, "%s: contains a NUL byte", MSG_ESC(path));
	else
		r = config_parse((char *)buf, path, cfg, err, errlen);
	free(buf);
	return r;
}

static void free_devices(struct vm_config *cfg)
{
	for (size_t i = 0; i < cfg->ndrives; i++) {
		if (cfg->drives[i].fd >= 0)
			close(cfg->drives[i].fd);
		free(cfg->drives[i].id);
		free(cfg->drives[i].path);
		free(cfg->drives[i].partuuid);
	}
	for (size_t i = 0; i < cfg->nnets; i++) {
		free(cfg->nets[i].id);
		free(cfg->nets[i].host_dev);
	}
	for (size_t i = 0; i < cfg->nvfio; i++) {
		free(cfg->vfio[i].id);
		free(cfg->vfio[i].spec);
	}
}

void config_free(struct vm_config *cfg)
{
	if (cfg->kernel_fd >= 0)
		close(cfg->kernel_fd);
	if (cfg->initrd_fd >= 0)
		close(cfg->initrd_fd);
	free_devices(cfg);
	free(cfg->drives);
	free(cfg->nets);
	free(cfg->vfio);
	free(cfg->iommu.path);
	free(cfg->kernel_path);
	free(cfg->initrd_path);
	free(cfg->boot_args);
	free(cfg->vsock.uds_path);
	free(cfg->logger.path);
	free(cfg->logger.level);
	free(cfg->metrics_path);
	config_init(cfg);
}
