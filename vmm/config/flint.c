/* flint's own config: the top-level "flint" object (CI exit port, memory, iommu, VFIO). */
#include "vmm/config/config.h"
#include "vmm/config/sections.h"
#include "vmm/x86/layout.h"
#include "vmm/base/log.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const config_dma_mode_names[] = { "auto", "pin", "fault", NULL };

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

/*
 * A PCI address as iommu/vfio.c reads it, stored in its one spelling: a device assigned
 * twice under two spellings is caught.
 */
static bool bdf_ok(char *s)
{
	char canon[VFIO_BDF_LEN];

	if (!vfio_bdf_parse(s, canon))
		return false;
	memcpy(s, canon, sizeof(canon));
	return true;
}

/* Exactly one of "path" and "bdf" names the device, into d->spec. */
static int vfio_spec(struct cfg_ctx *c, json_t *v, const char *p, struct vfio_config *d)
{
	char sub[CFG_PATH_MAX];
	char *bdf = NULL;
	int r = cfg_string(c, v, p, "path", false, &d->spec);

	if (!r)
		r = cfg_string(c, v, p, "bdf", false, &bdf);
	if (!r && !!d->spec == !!bdf)
		r = cfg_fail(c, p, "needs exactly one of \"path\" and \"bdf\"");
	if (!r && d->spec && !vfio_path_ok(d->spec))
		r = cfg_fail(c, cfg_join(sub, p, "path"), "\"%s\" is not under /dev/vfio/devices/",
		             MSG_ESC(d->spec));
	if (!r && bdf && !bdf_ok(bdf))
		r = cfg_fail(c, cfg_join(sub, p, "bdf"),
		             "\"%s\" is not a PCI address like 0000:00:03.0", MSG_ESC(bdf));
	if (!r && bdf)
		d->spec = bdf, bdf = NULL;
	free(bdf);
	return r;
}

static int vfio_one(struct cfg_ctx *c, json_t *v, const char *p, void *out)
{
	struct vfio_config *d = out;
	int mode = 0, r;

	uint64_t slot = 0;

	r = cfg_object(c, v, p, CFG_KEYS("id", "path", "bdf", "dma_mode", "guest_slot"));
	if (!r)
		r = cfg_string(c, v, p, "id", true, &d->id);
	if (!r)
		r = vfio_spec(c, v, p, d);
	if (!r)
		r = cfg_enum(c, v, p, "dma_mode", config_dma_mode_names, &mode);
	/* Slot 0 is the host bridge's. */
	if (!r)
		r = cfg_uint(c, v, p, "guest_slot", false, 1, 31, &slot);
	d->mode = (enum dma_mode)mode;
	d->guest_slot = slot ? (int)slot : -1;
	return r;
}

/* Two devices cannot ask for one slot. */
static int unique_slots(struct cfg_ctx *c, const char *path, const struct vm_config *cfg)
{
	char idx[CFG_PATH_MAX], sub[CFG_PATH_MAX];

	for (size_t i = 0; i < cfg->nvfio; i++)
		for (size_t j = 0; j < i; j++)
			if (cfg->vfio[i].guest_slot > 0 &&
			    cfg->vfio[i].guest_slot == cfg->vfio[j].guest_slot) {
				cfg_index(idx, path, i);
				return cfg_fail(c, cfg_join(sub, idx, "guest_slot"),
				                "slot %d is taken by \"%s\"", cfg->vfio[i].guest_slot,
				                MSG_ESC(cfg->vfio[j].id));
			}
	return 0;
}

static int vfio_devices(struct cfg_ctx *c, json_t *f, const char *path, struct vm_config *cfg)
{
	const size_t size = sizeof(*cfg->vfio);
	char p[CFG_PATH_MAX];
	int r;

	cfg_join(p, path, "vfio-devices");
	r = cfg_list(c, cfg_member(f, "vfio-devices"), p, CONFIG_MAX_VFIO_DEVICES, size,
	             (void **)&cfg->vfio, &cfg->nvfio, vfio_one);
	if (!r)
		r = cfg_unique(c, p, cfg->vfio, cfg->nvfio, size, offsetof(struct vfio_config, id),
		               "id", "id");
	/* The item, not its "path" or "bdf": either key may name the device. */
	if (!r)
		r = cfg_unique(c, p, cfg->vfio, cfg->nvfio, size,
		               offsetof(struct vfio_config, spec), NULL, "device");
	if (!r)
		r = unique_slots(c, p, cfg);
	return r;
}

/*
 * flint.iommu.max_mapped_mib, the cap on what fault mode keeps mapped: absent, no cap.
 * Less than one chunk could never map a chunk; the upper bound only keeps the bytes in 64
 * bits (a cap beyond guest RAM is no cap).
 */
static int iommu_cap(struct cfg_ctx *c, json_t *io, const char *p, struct vm_config *cfg,
                     uint64_t chunk_kib)
{
	char sub[CFG_PATH_MAX];
	uint64_t mib = 0;
	int r = cfg_uint(c, io, p, "max_mapped_mib", false, 1, 1ULL << 40, &mib);

	if (!r && mib && (mib << 10) < chunk_kib)
		r = cfg_fail(c, cfg_join(sub, p, "max_mapped_mib"),
		             "%llu MiB is less than one fault chunk (fault_chunk_kib %llu)",
		             (unsigned long long)mib, (unsigned long long)chunk_kib);
	cfg->iommu.max_mapped_bytes = mib << 20;
	return r;
}

/* flint.iommu's keys, once it is an object: an fd or a path, the fault chunk and cap. */
static int iommu_keys(struct cfg_ctx *c, json_t *io, const char *p, struct vm_config *cfg,
                      uint64_t *chunk_kib)
{
	char sub[CFG_PATH_MAX];
	uint64_t fd = 0;
	int r = cfg_string(c, io, p, "path", false, &cfg->iommu.path);

	if (!r && cfg_member(io, "fd")) {
		r = cfg_uint(c, io, p, "fd", false, 0, INT32_MAX, &fd);
		cfg->iommu.fd = (int)fd;
	}
	if (!r && cfg->iommu.fd >= 0 && cfg->iommu.fd <= 2)
		r = cfg_fail(c, cfg_join(sub, p, "fd"),
		             "%d is stdin, stdout or stderr, not an iommufd", cfg->iommu.fd);
	if (!r && cfg->iommu.path && cfg->iommu.fd >= 0)
		r = cfg_fail(c, p, "give either \"path\" or \"fd\", not both");
	if (!r)
		r = cfg_uint(c, io, p, "fault_chunk_kib", false, 4, 1 << 20, chunk_kib);
	if (!r && (*chunk_kib & (*chunk_kib - 1)))
		r = cfg_fail(c, cfg_join(sub, p, "fault_chunk_kib"), "%llu is not a power of two",
		             (unsigned long long)*chunk_kib);
	if (!r)
		r = iommu_cap(c, io, p, cfg, *chunk_kib);
	return r;
}

/* flint.iommu, absent or not: its defaults are what a VM with VFIO devices opens. */
static int parse_iommu(struct cfg_ctx *c, json_t *f, const char *path, struct vm_config *cfg)
{
	char p[CFG_PATH_MAX];
	uint64_t chunk_kib = 2048;
	json_t *io;
	int r;

	cfg->iommu.fd = -1;
	r = cfg_sub(c, f, path, "iommu",
	            CFG_KEYS("path", "fd", "fault_chunk_kib", "max_mapped_mib"), &io, p);
	if (r > 0)
		r = iommu_keys(c, io, p, cfg, &chunk_kib);
	cfg->iommu.chunk_bytes = chunk_kib << 10;
	if (r || cfg->iommu.path)
		return r;
	cfg->iommu.path = strdup("/dev/iommu");
	return cfg->iommu.path ? 0 : -ENOMEM;
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
static int parse_ci(struct cfg_ctx *c, json_t *f, const char *path, struct vm_config *cfg)
{
	char p[CFG_PATH_MAX], sub[CFG_PATH_MAX];
	uint64_t port = 0, size = cfg->ci.exit_port_size;
	const char *clash;
	json_t *ci;
	int r = cfg_sub(c, f, path, "ci", CFG_KEYS("exit_port", "exit_port_size"), &ci, p);

	if (r <= 0)
		return r;
	r = cfg_uint(c, ci, p, "exit_port", false, 1, 0xffff, &port);
	if (!r && cfg_member(ci, "exit_port")) {
		cfg->ci.exit_port_enabled = true;
		cfg->ci.exit_port = (uint16_t)port;
	}
	if (!r)
		r = cfg_uint(c, ci, p, "exit_port_size", false, 1, 4, &size);
	if (!r && size == 3)
		r = cfg_fail(c, cfg_join(sub, p, "exit_port_size"), "3 is not 1, 2 or 4");
	if (!r && cfg->ci.exit_port_enabled && (clash = config_exit_port_clash(port, size)))
		r = cfg_fail(c, cfg_join(sub, p, "exit_port"), "ports %#llx-%#llx run into %s",
		             (unsigned long long)port, (unsigned long long)(port + size - 1),
		             clash);
	cfg->ci.exit_port_size = (uint8_t)size;
	return r;
}

/*
 * flint.memory.thp is what Firecracker's huge_pages "Transparent" asks for (madvise
 * MADV_HUGEPAGE): either turns it on; only hugetlbfs ("2M") excludes it.
 */
static int parse_memory(struct cfg_ctx *c, json_t *f, const char *path, struct vm_config *cfg)
{
	char p[CFG_PATH_MAX];
	json_t *mem;
	int r = cfg_sub(c, f, path, "memory", CFG_KEYS("thp"), &mem, p);

	if (r > 0)
		r = cfg_bool(c, mem, p, "thp", false, &cfg->memory.thp);
	if (!r && cfg->memory.thp && cfg->huge_pages == HUGE_PAGES_2M)
		r = cfg_fail(c, cfg_join(p, path, "memory.thp"),
		             "cannot be combined with machine-config.huge_pages \"2M\"");
	if (cfg->huge_pages == HUGE_PAGES_TRANSPARENT)
		cfg->memory.thp = true;
	return r;
}

int cfg_flint(struct cfg_ctx *c, json_t *v, const char *path, struct vm_config *cfg)
{
	int r = 0;

	cfg->ci.exit_port = CONFIG_EXIT_PORT_DEFAULT;
	cfg->ci.exit_port_size = 4;
	if (v)
		r = cfg_object(c, v, path, CFG_KEYS("ci", "memory", "iommu", "vfio-devices"));
	if (!r)
		r = parse_ci(c, v, path, cfg);
	if (!r)
		r = parse_memory(c, v, path, cfg);
	if (!r)
		r = parse_iommu(c, v, path, cfg);
	if (!r)
		r = vfio_devices(c, v, path, cfg);
	return r;
}
