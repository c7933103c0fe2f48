/*
 * The guest's PCI bus 0: configuration mechanism #1 (ports 0xCF8/0xCFC), a host bridge at
 * 00:00.0, up to 31 functions (one per slot, function 0), and the MMIO windows their BARs
 * live in: one below 4 GiB, and one above RAM for 64-bit BARs (large ones do not fit
 * below). No firmware: flint assigns every BAR before the guest starts, as a BIOS would,
 * and Linux keeps those addresses (they are neither RAM nor reserved in the e820 map).
 *
 * A function is a struct with an ops table; the bus dispatches config accesses to it by
 * slot, and guest accesses to an MMIO window to the function whose trapped BAR holds the
 * address (BARs the host maps straight into the guest never reach flint).
 *
 * Threading: config and window accesses come from vCPU threads, under the bus lock; the
 * functions' ops run under it.
 */
#ifndef FLINT_PCI_H
#define FLINT_PCI_H

#include "vmm/base/bus.h"
#include "vmm/base/log.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define PCI_SLOTS       32
#define PCI_CONFIG_SIZE 256 /* mechanism #1 reaches the first 256 bytes */
#define PCI_BARS        6

#define PCI_CF8_PORT 0xcf8
#define PCI_CFC_PORT 0xcfc

struct pci_func;

struct pci_func_ops {
	/* @off is aligned to @len (1, 2 or 4) and below PCI_CONFIG_SIZE. */
	uint32_t (*config_read)(struct pci_func *f, uint32_t off, uint32_t len);
	void (*config_write)(struct pci_func *f, uint32_t off, uint32_t len, uint32_t value);
	/* An access inside trapped BAR @bar at @off (NULL: the function traps none). */
	void (*bar_read)(struct pci_func *f, unsigned bar, uint64_t off, uint8_t *data,
	                 uint32_t len);
	void (*bar_write)(struct pci_func *f, unsigned bar, uint64_t off, const uint8_t *data,
	                  uint32_t len);
};

/* A trapped BAR where the guest put it: the bus routes window accesses by these. */
struct pci_bar_trap {
	bool on;
	uint64_t gpa, size;
};

struct pci_func {
	const struct pci_func_ops *ops;
	char name[48];
	struct pci_bar_trap traps[PCI_BARS]; /* kept by the function, read by the bus */
};

/*
 * Emulated config space: the bytes, and per byte which bits the guest may write. Writes
 * outside the mask keep the old value, so read-only registers stay read-only.
 */
struct pci_config {
	uint8_t bytes[PCI_CONFIG_SIZE];
	uint8_t wmask[PCI_CONFIG_SIZE];
};
uint32_t pci_config_read(const struct pci_config *c, uint32_t off, uint32_t len);
void pci_config_write(struct pci_config *c, uint32_t off, uint32_t len, uint32_t value);

/* A window BARs are allocated from, upwards: [start, end), next free at @next. */
struct pci_window {
	struct pci_bus *bus;
	uint64_t start, end, next;
};

struct pci_bus {
	pthread_mutex_t lock;
	uint32_t address; /* the last value written to 0xCF8 */
	struct pci_func *slots[PCI_SLOTS];
	struct pci_func host; /* 00:00.0 */
	struct pci_config host_config;
	struct pci_window win32; /* below 4 GiB: every BAR that fits */
	struct pci_window win64; /* above RAM: 64-bit BARs first; empty when not set */
	struct log_ratelimit rl;
};

/* The bus with its host bridge, BARs allocated from [@start32, @end32) below 4 GiB. */
void pci_bus_init(struct pci_bus *b, uint64_t start32, uint64_t end32);
/* The window above RAM for 64-bit BARs: [@start, @end). */
void pci_bus_set_window64(struct pci_bus *b, uint64_t start, uint64_t end);
void pci_bus_destroy(struct pci_bus *b);
/* Puts @f in @slot (1..31), or the first free one when @slot < 0. Returns the slot or -errno. */
int pci_bus_add(struct pci_bus *b, struct pci_func *f, int slot);
/*
 * Guest address for a BAR of @size bytes (a power of two, naturally aligned); 0 when it
 * fits nowhere. A 64-bit BAR goes above RAM when that window holds it, else below 4 GiB;
 * a 32-bit BAR only below 4 GiB.
 */
uint64_t pci_bus_alloc_bar(struct pci_bus *b, uint64_t size, bool is64);

/* Port I/O: 0xCF8 (4 bytes: the address) and 0xCFC (4 bytes: the data). */
extern const struct bus_ops pci_address_ops, pci_data_ops;
/* MMIO: a BAR window (the device is its struct pci_window), for trapped BARs. */
extern const struct bus_ops pci_window_ops;

/* Standard header offsets flint uses. */
#define PCI_VENDOR_ID       0x00
#define PCI_COMMAND         0x04
#define PCI_STATUS          0x06
#define PCI_CLASS_REVISION  0x08
#define PCI_HEADER_TYPE     0x0e
#define PCI_BAR0            0x10
#define PCI_CAPABILITY_LIST 0x34
#define PCI_INTERRUPT_LINE  0x3c
#define PCI_INTERRUPT_PIN   0x3d

#define PCI_STATUS_CAP_LIST 0x10
#define PCI_COMMAND_IO      0x1
#define PCI_COMMAND_MEMORY  0x2
#define PCI_COMMAND_MASTER  0x4

#endif
