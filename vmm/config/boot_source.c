/* boot-source (PUT /boot-source): the kernel, the initrd and the command line. */
#include "vmm/config/config.h"
#include "vmm/config/sections.h"
#include "vmm/base/file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

/*
 * Absent: Firecracker's default command line. "" is a command line too, an empty one, as
 * in Firecracker (its boot_args is an Option, and only None means the default).
 */
static int boot_args(struct cfg_ctx *c, json_t *v, const char *path, struct vm_config *cfg)
{
	char sub[CFG_PATH_MAX];
	int r = cfg_text(c, v, path, "boot_args", false, &cfg->boot_args);

	if (!r && cfg->boot_args && strlen(cfg->boot_args) > CONFIG_MAX_BOOT_ARGS)
		return cfg_fail(c, cfg_join(sub, path, "boot_args"),
		                "%zu bytes, more than the limit of %d", strlen(cfg->boot_args),
		                CONFIG_MAX_BOOT_ARGS);
	if (r || cfg->boot_args)
		return r;
	cfg->boot_args = strdup(CONFIG_DEFAULT_BOOT_ARGS);
	cfg->boot_args_default = true;
	return cfg->boot_args ? 0 : -ENOMEM;
}

int cfg_boot_source(struct cfg_ctx *c, json_t *v, const char *path, struct vm_config *cfg)
{
	int r;

	if (!v)
		return cfg_fail(c, path, "required section is missing");
	r = cfg_object(c, v, path, CFG_KEYS("kernel_image_path", "initrd_path", "boot_args"));
	if (!r)
		r = cfg_open(c, v, path, "kernel_image_path", true, O_RDONLY, FILE_REG,
		             CONFIG_MAX_KERNEL_BYTES, &cfg->kernel_path, &cfg->kernel_fd);
	if (!r)
		r = cfg_open(c, v, path, "initrd_path", false, O_RDONLY, FILE_REG,
		             CONFIG_MAX_INITRD_BYTES, &cfg->initrd_path, &cfg->initrd_fd);
	if (!r)
		r = boot_args(c, v, path, cfg);
	return r;
}
