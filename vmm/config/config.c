/*
 * The config file: loading it, handing each top-level key to its section's function
 * (sections.h), and freeing what they filled in.
 */
#include "vmm/config/config.h"
#include "vmm/config/sections.h"
#include "vmm/base/file.h"
#include "vmm/base/log.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/*
 * Every top-level key, in the order a config is checked: Firecracker's sections flint
 * implements (mmds-config after network-interfaces, as Firecracker builds them), then those
 * it checks and refuses (so an error Firecracker would also give
 * comes before "not supported yet"), flint's own last (it checks machine-config.huge_pages).
 * Firecracker's VmmConfig has no "serial" key (its serial_config is serde(skip)): a
 * "serial" in a config file is an unknown key, ignored.
 */
static const struct {
	const char *key;
	cfg_section_fn *parse;
} sections[] = {
	{ "boot-source", cfg_boot_source },
	{ "machine-config", cfg_machine },
	{ "drives", cfg_drives },
	{ "network-interfaces", cfg_net },
	{ "vsock", cfg_vsock },
	{ "logger", cfg_logger },
	{ "metrics", cfg_metrics },
	{ "entropy", cfg_entropy },
	{ "mmds-config", cfg_mmds },
	{ "balloon", cfg_balloon },
	{ "cpu-config", cfg_cpu_config },
	{ "pmem", cfg_pmem },
	{ "memory-hotplug", cfg_memory_hotplug },
	{ "flint", cfg_flint },
};
#define NSECTIONS (sizeof(sections) / sizeof(sections[0]))

/*
 * The lists of VmmConfig: drives has no serde default, so a config file (@file) must have
 * it ("drives": [] for none), while the API's drives come one PUT at a time;
 * network-interfaces and pmem default to empty. None of them may be null, as for serde a
 * null is no list.
 */
static int check_lists(struct cfg_ctx *c, json_t *root, bool file)
{
	static const char *const lists[] = { "drives", "network-interfaces", "pmem" };

	if (file && !json_object_get(root, "drives"))
		return cfg_fail(c, "drives", "required key is missing (\"drives\": [] for none)");
	for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++)
		if (json_is_null(json_object_get(root, lists[i])))
			return cfg_fail(c, lists[i], "must be an array, not null");
	return 0;
}

/* Firecracker's VmmConfig does not deny unknown fields: unknown top-level keys are ignored. */
static int parse_root(struct cfg_ctx *c, json_t *root, struct vm_config *cfg, bool file)
{
	const char *keys[NSECTIONS + 1] = { NULL };
	int r;

	for (size_t i = 0; i < NSECTIONS; i++)
		keys[i] = sections[i].key;
	/* A top-level key's path is its name: "bogus", not "(top level).bogus". */
	r = cfg_object_open(c, root, json_is_object(root) ? "" : "(top level)", keys);
	for (size_t i = 0; !r && i < NSECTIONS; i++) {
		r = sections[i].parse(c, cfg_member(root, sections[i].key), sections[i].key, cfg);
		/* The kernel first, as flint always did; then the lists, before any is read. */
		if (!r && sections[i].parse == cfg_boot_source)
			r = check_lists(c, root, file);
	}
	return r;
}

void config_init(struct vm_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->kernel_fd = cfg->initrd_fd = -1;
}

static int parse_text(const char *json, const char *name, struct vm_config *cfg, char *err,
                      size_t errlen, bool file)
{
	struct cfg_ctx c = { name, err, errlen, &cfg->ignored };
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
	r = parse_root(&c, root, cfg, file);
	json_decref(root);
	if (r == -ENOMEM)
		snprintf(err, errlen, "%s: out of memory", MSG_ESC(name));
	if (r)
		config_free(cfg);
	return r;
}

int config_parse(const char *json, const char *name, struct vm_config *cfg, char *err,
                 size_t errlen)
{
	return parse_text(json, name, cfg, err, errlen, false);
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
		r = parse_text((char *)buf, path, cfg, err, errlen, true);
	free(buf);
	return r;
}

static void free_devices(struct vm_config *cfg)
{
	for (size_t i = 0; i < cfg->ndrives; i++)
		cfg_drive_release(&cfg->drives[i]);
	for (size_t i = 0; i < cfg->nnets; i++)
		cfg_net_release(&cfg->nets[i]);
	cfg_mmds_release(&cfg->mmds);
	for (size_t i = 0; i < cfg->ignored.n; i++)
		free(cfg->ignored.paths[i]);
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
	free(cfg->metrics_path);
	free(cfg->metrics_properties);
	config_init(cfg);
}
