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
 * Every top-level key, in the order a config is checked: first what flint refuses, flint's
 * own last (it checks machine-config.huge_pages).
 */
static const struct {
	const char *key;
	cfg_section_fn *parse;
} sections[] = {
	{ "balloon", cfg_unsupported },
	{ "cpu-config", cfg_unsupported },
	{ "mmds-config", cfg_unsupported },
	{ "pmem", cfg_unsupported },
	{ "memory-hotplug", cfg_unsupported },
	{ "serial", cfg_unsupported },
	{ "boot-source", cfg_boot_source },
	{ "machine-config", cfg_machine },
	{ "drives", cfg_drives },
	{ "network-interfaces", cfg_net },
	{ "vsock", cfg_vsock },
	{ "logger", cfg_logger },
	{ "metrics", cfg_metrics },
	{ "entropy", cfg_entropy },
	{ "flint", cfg_flint },
};
#define NSECTIONS (sizeof(sections) / sizeof(sections[0]))

static int parse_root(struct cfg_ctx *c, json_t *root, struct vm_config *cfg)
{
	const char *keys[NSECTIONS + 1] = { NULL };
	int r;

	for (size_t i = 0; i < NSECTIONS; i++)
		keys[i] = sections[i].key;
	/* A top-level key's path is its name: "bogus", not "(top level).bogus". */
	r = cfg_object(c, root, json_is_object(root) ? "" : "(top level)", keys);
	for (size_t i = 0; !r && i < NSECTIONS; i++)
		r = sections[i].parse(c, cfg_member(root, sections[i].key), sections[i].key, cfg);
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
