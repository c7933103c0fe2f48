/* flint's own config: the top-level "flint" object (CI exit port, memory, iommu, VFIO). */
#include "vmm/config/parse.h"
#include "vmm/config/config.h"
#include "vmm/x86/layout.h"
#include "vmm/base/log.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * A VFIO cdev path must stay under /dev/vfio/devices/ as written and as resolved: no "."
 * or ".." component can walk it out, and a link there cannot point elsewhere.
 */
static bool vfio_path_ok(const char *path)
{
	static const char dir[] = "/dev/vfio/devices/";
	const char *rest = path + sizeof(dir) - 1;
	char *real;
	bool ok;

	if (strncmp(path, dir, sizeof(dir) - 1) != 0 || !*rest || strchr(rest, '/'))
		return false;
	if (!strcmp(rest, ".") || !strcmp(rest, ".."))
		return false;
	real = realpath(path, NULL); /* absent (no VFIO on this host): the name alone decides */
	ok = !real || strncmp(real, dir, sizeof(dir) - 1) == 0;
	free(real);
	return ok;
}

static int vfio_one(struct cfg_ctx *c, json_t *v, const char *p, void *out)
{
	struct vfio_config *d = out;
	char sub[CFG_PATH_MAX];
	char *bdf = NULL;
	int mode = 0, r;

	r = cfg_object(c, v, p, CFG_KEYS("id", "path", "bdf", "dma_mode"));
	if (!r)
		r = cfg_string(c, v, p, "id", true, &d->id);
	if (!r)
		r = cfg_string(c, v, p, "path", false, &d->spec);
	if (!r)
		r = cfg_string(c, v, p, "bdf", false, &bdf);
	if (!r && !!d->spec == !!bdf)
		r = cfg_fail(c, p, "needs exactly one of \"path\" and \"bdf\"");
	if (!r && d->spec && !vfio_path_ok(d->spec))
		r = cfg_fail(c, cfg_join(sub, p, "path"), "\"%s\" is not under /dev/vfio/devices/",
		             MSG_ESC(d->spec));
	if (!r && bdf) {
		unsigned dom, bus, dev, fn;
		char tail;
		if (sscanf(bdf, "%4x:%2x:%2x.%1x%c", &dom, &bus, &dev, &fn, &tail) != 4 ||
		    strlen(bdf) != 12 || dev > 0x1f || fn > 7)
			r = cfg_fail(c, cfg_join(sub, p, "bdf"),
			             "\"%s\" is not a PCI address like 0000:00:03.0", MSG_ESC(bdf));
		else
			d->spec = bdf, bdf = NULL;
	}
	free(bdf);
	if (!r)
		r = cfg_enum(c, v, p, "dma_mode", config_dma_mode_names, &mode);
	d->mode = (enum dma_mode)mode;
	return r;
}

static int parse_iommu(struct cfg_ctx *c, json_t *f, struct vm_config *cfg)
{
	json_t *io = cfg_member(f, "iommu");
	uint64_t fd = 0, chunk_kib = 2048;
	int r = 0;

	cfg->iommu.fd = -1;
	if (io) {
		r = cfg_object(c, io, "flint.iommu", CFG_KEYS("path", "fd", "fault_chunk_kib"));
		if (!r)
			r = cfg_string(c, io, "flint.iommu", "path", false, &cfg->iommu.path);
		if (!r && cfg_member(io, "fd")) {
			r = cfg_uint(c, io, "flint.iommu", "fd", false, 0, INT32_MAX, &fd);
			cfg->iommu.fd = (int)fd;
		}
		if (!r && cfg->iommu.fd >= 0 && cfg->iommu.fd <= 2)
			r = cfg_fail(c, "flint.iommu.fd", "%d is stdin, stdout or stderr, not an iommufd",
			             cfg->iommu.fd);
		if (!r && cfg->iommu.path && cfg->iommu.fd >= 0)
			r = cfg_fail(c, "flint.iommu", "give either \"path\" or \"fd\", not both");
		if (!r)
			r = cfg_uint(c, io, "flint.iommu", "fault_chunk_kib", false, 4, 1 << 20,
			             &chunk_kib);
		if (!r && (chunk_kib & (chunk_kib - 1)))
			r = cfg_fail(c, "flint.iommu.fault_chunk_kib", "%llu is not a power of two",
			             (unsigned long long)chunk_kib);
	}
	cfg->iommu.chunk_bytes = chunk_kib << 10;
	if (!r && !cfg->iommu.path)
		cfg->iommu.path = strdup("/dev/iommu");
	return r;
}

static int check_vfio(struct cfg_ctx *c, const struct vm_config *cfg)
{
	char sub[CFG_PATH_MAX], idx[CFG_PATH_MAX];

	for (size_t i = 0; i < cfg->nvfio; i++)
		for (size_t j = 0; j < i; j++) {
			cfg_index(idx, "flint.vfio-devices", i);
			if (strcmp(cfg->vfio[i].id, cfg->vfio[j].id) == 0)
				return cfg_fail(c, cfg_join(sub, idx, "id"), "duplicate id \"%s\"",
				                MSG_ESC(cfg->vfio[i].id));
			if (strcmp(cfg->vfio[i].spec, cfg->vfio[j].spec) == 0)
				return cfg_fail(c, idx, "\"%s\" is assigned twice",
				                MSG_ESC(cfg->vfio[i].spec));
		}
	return 0;
}

const char *config_exit_port_clash(uint64_t port, uint64_t size)
{
	static const struct {
		uint64_t base, size;
		const char *name;
	} fixed[] = {
		{ LAYOUT_PIO_I8042, LAYOUT_PIO_I8042_SIZE, "the i8042 at 0x60-0x64" },
		{ LAYOUT_PIO_COM1, LAYOUT_PIO_COM1_SIZE, "the serial port at 0x3f8-0x3ff" },
	};

	if (port + size - 1 > 0xffff)
		return "the end of port space (0xffff)";
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		if (port < fixed[i].base + fixed[i].size && fixed[i].base < port + size)
			return fixed[i].name;
	return NULL;
}

/* flint.ci: the exit port is on only when exit_port names a port (null or absent: off). */
static int parse_ci(struct cfg_ctx *c, json_t *ci, struct vm_config *cfg)
{
	uint64_t port = 0, size = cfg->ci.exit_port_size;
	const char *clash;
	json_t *p;
	int r;

	r = cfg_object(c, ci, "flint.ci", CFG_KEYS("exit_port", "exit_port_size"));
	p = json_object_get(ci, "exit_port");
	if (!r && p && !json_is_null(p)) {
		r = cfg_uint(c, ci, "flint.ci", "exit_port", false, 1, 0xffff, &port);
		cfg->ci.exit_port_enabled = !r;
		cfg->ci.exit_port = (uint16_t)port;
	}
	if (!r)
		r = cfg_uint(c, ci, "flint.ci", "exit_port_size", false, 1, 4, &size);
	if (!r && size == 3)
		r = cfg_fail(c, "flint.ci.exit_port_size", "3 is not 1, 2 or 4");
	if (!r && cfg->ci.exit_port_enabled && (clash = config_exit_port_clash(port, size)))
		r = cfg_fail(c, "flint.ci.exit_port", "ports %#llx-%#llx run into %s",
		             (unsigned long long)port, (unsigned long long)(port + size - 1), clash);
	cfg->ci.exit_port_size = (uint8_t)size;
	return r;
}

int cfg_parse_flint(struct cfg_ctx *c, json_t *root, struct vm_config *cfg)
{
	json_t *f = cfg_member(root, "flint"), *ci, *mem;
	int r;

	cfg->ci.exit_port = CONFIG_EXIT_PORT_DEFAULT;
	cfg->ci.exit_port_size = 4;
	if (!f)
		return parse_iommu(c, NULL, cfg);
	r = cfg_object(c, f, "flint", CFG_KEYS("ci", "memory", "iommu", "vfio-devices"));
	ci = cfg_member(f, "ci");
	if (!r && ci)
		r = parse_ci(c, ci, cfg);
	mem = cfg_member(f, "memory");
	if (!r && mem) {
		r = cfg_object(c, mem, "flint.memory", CFG_KEYS("thp"));
		if (!r)
			r = cfg_bool(c, mem, "flint.memory", "thp", false, &cfg->memory.thp);
	}
	if (!r && cfg->memory.thp && cfg->huge_pages != HUGE_PAGES_NONE)
		r = cfg_fail(c, "flint.memory.thp",
		             "cannot be combined with machine-config.huge_pages");
	if (!r)
		r = parse_iommu(c, f, cfg);
	if (!r)
		r = cfg_list(c, f, "vfio-devices", "flint.vfio-devices", CONFIG_MAX_VFIO_DEVICES,
		             sizeof(*cfg->vfio), (void **)&cfg->vfio, &cfg->nvfio, vfio_one);
	if (!r)
		r = check_vfio(c, cfg);
	return r;
}
