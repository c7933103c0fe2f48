/*
 * Intel MultiProcessor table (spec 1.4): how a guest without ACPI finds its CPUs,
 * the IOAPIC and the ISA interrupt routing. Placed in the EBDA, where Linux scans.
 */
#include "boot/boot.h"
#include "vmm/x86/layout.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>

#define MP_SPEC_REV       4 /* 1.4 */
#define MP_APIC_VERSION   0x14
#define MP_IOAPIC_VERSION 0x11
#define MP_IRQS           24 /* every pin of KVM's IOAPIC: the legacy 16 and the virtio devices' 5..23 */
#define MP_MAX_CPUS       254 /* APIC ids 0..ncpus-1, then the IOAPIC's, all below 0xff */

/* Entry types of the configuration table. */
enum { MP_PROCESSOR = 0, MP_BUS = 1, MP_IOAPIC = 2, MP_IOINTR = 3, MP_LINTR = 4 };
/* Interrupt types of I/O and local interrupt entries. */
enum { MP_INT = 0, MP_NMI = 1, MP_EXTINT = 3 };
#define MP_CPU_ENABLED   0x01
#define MP_CPU_BSP       0x02
#define MP_CPU_SIGNATURE 0x600 /* family 6 */
#define MP_CPU_FEATURES  0x201 /* CPUID.1 EDX: FPU, APIC */
#define MP_IOAPIC_USABLE 0x01
#define MP_ALL_LAPICS    0xff

/* MP floating pointer structure: "_MP_", found by a scan of the EBDA. */
struct mp_floating {
	char signature[4];
	uint32_t config_paddr;
	uint8_t length; /* in 16-byte units */
	uint8_t spec_rev;
	uint8_t checksum;
	uint8_t features[5];
} __attribute__((packed));

/* MP configuration table header: "PCMP", then entry_count entries. */
struct mp_config {
	char signature[4];
	uint16_t length; /* header and entries */
	uint8_t spec_rev;
	uint8_t checksum;
	char oem_id[8];
	char product_id[12];
	uint32_t oem_table_paddr;
	uint16_t oem_table_size;
	uint16_t entry_count;
	uint32_t lapic_paddr;
	uint16_t ext_length;
	uint8_t ext_checksum;
	uint8_t reserved;
} __attribute__((packed));

struct mp_processor {
	uint8_t type;
	uint8_t lapic_id;
	uint8_t lapic_version;
	uint8_t flags;
	uint32_t signature;
	uint32_t features;
	uint32_t reserved[2];
} __attribute__((packed));

struct mp_bus {
	uint8_t type;
	uint8_t bus_id;
	char bus_type[6];
} __attribute__((packed));

struct mp_ioapic {
	uint8_t type;
	uint8_t id;
	uint8_t version;
	uint8_t flags;
	uint32_t paddr;
} __attribute__((packed));

/* An I/O (type 3) or local (type 4) interrupt assignment. */
struct mp_interrupt {
	uint8_t type;
	uint8_t irq_type;
	uint16_t irq_flags; /* 0: the bus's default polarity and trigger */
	uint8_t src_bus;
	uint8_t src_irq;
	uint8_t dst_apic;
	uint8_t dst_pin; /* IOAPIC input, or LINT0/1 */
} __attribute__((packed));

_Static_assert(sizeof(struct mp_floating) == 16 && sizeof(struct mp_config) == 44 &&
                       offsetof(struct mp_config, entry_count) == 34 &&
                       offsetof(struct mp_config, lapic_paddr) == 36 &&
                       sizeof(struct mp_processor) == 20 && sizeof(struct mp_bus) == 8 &&
                       sizeof(struct mp_ioapic) == 8 && sizeof(struct mp_interrupt) == 8,
               "MP table entries as in the MultiProcessor Specification 1.4");

static uint8_t checksum(const void *data, size_t len)
{
	const uint8_t *p = data;
	uint8_t sum = 0;

	while (len--)
		sum = (uint8_t)(sum + *p++);
	return (uint8_t)-sum;
}

static size_t table_size(unsigned ncpus)
{
	return sizeof(struct mp_floating) + sizeof(struct mp_config) +
	       ncpus * sizeof(struct mp_processor) + sizeof(struct mp_bus) +
	       sizeof(struct mp_ioapic) + (MP_IRQS + 2) * sizeof(struct mp_interrupt);
}

/* Reserves the next entry of @size bytes at *p and counts it. */
static void *next_entry(uint8_t **p, uint16_t *count, size_t size)
{
	void *e = *p;

	*p += size;
	(*count)++;
	return e;
}

/* The entries after the header; returns their count and moves *p past them. */
static uint16_t write_entries(uint8_t **p, unsigned ncpus)
{
	uint8_t ioapic_id = (uint8_t)ncpus;
	uint16_t count = 0;
	struct mp_processor *cpu;
	struct mp_bus *bus;
	struct mp_ioapic *ioapic;
	struct mp_interrupt *irq;

	for (unsigned i = 0; i < ncpus; i++) {
		cpu = next_entry(p, &count, sizeof(*cpu));
		*cpu = (struct mp_processor){ .type = MP_PROCESSOR,
			                      .lapic_id = (uint8_t)i,
			                      .lapic_version = MP_APIC_VERSION,
			                      .flags = MP_CPU_ENABLED | (i == 0 ? MP_CPU_BSP : 0),
			                      .signature = MP_CPU_SIGNATURE,
			                      .features = MP_CPU_FEATURES };
	}
	bus = next_entry(p, &count, sizeof(*bus));
	*bus = (struct mp_bus){ .type = MP_BUS, .bus_id = 0 };
	memcpy(bus->bus_type, "ISA   ", sizeof(bus->bus_type));
	ioapic = next_entry(p, &count, sizeof(*ioapic));
	*ioapic = (struct mp_ioapic){ .type = MP_IOAPIC,
		                      .id = ioapic_id,
		                      .version = MP_IOAPIC_VERSION,
		                      .flags = MP_IOAPIC_USABLE,
		                      .paddr = (uint32_t)LAYOUT_IOAPIC };
	/* irq n -> IOAPIC pin n, on the ISA bus (edge, active high: what an irqfd pulse is). */
	for (unsigned i = 0; i < MP_IRQS; i++) {
		irq = next_entry(p, &count, sizeof(*irq));
		*irq = (struct mp_interrupt){ .type = MP_IOINTR,
			                      .irq_type = MP_INT,
			                      .src_irq = (uint8_t)i,
			                      .dst_apic = ioapic_id,
			                      .dst_pin = (uint8_t)i };
	}
	/* ExtINT on LINT0, NMI on LINT1, to all CPUs. */
	for (unsigned lint = 0; lint < 2; lint++) {
		irq = next_entry(p, &count, sizeof(*irq));
		*irq = (struct mp_interrupt){ .type = MP_LINTR,
			                      .irq_type = lint == 0 ? MP_EXTINT : MP_NMI,
			                      .dst_apic = MP_ALL_LAPICS,
			                      .dst_pin = (uint8_t)lint };
	}
	return count;
}

int mptable_write(struct guest_memory *mem, unsigned ncpus)
{
	size_t size = table_size(ncpus);
	uint8_t *base = guest_memory_hva(mem, LAYOUT_EBDA, LAYOUT_LOW_RAM_END - LAYOUT_EBDA);
	struct mp_floating *fp = (struct mp_floating *)base;
	struct mp_config *cfg = (struct mp_config *)(fp + 1);
	uint8_t *p = (uint8_t *)(cfg + 1);

	if (!base || size > LAYOUT_LOW_RAM_END - LAYOUT_EBDA || ncpus > MP_MAX_CPUS)
		return -EINVAL;
	memset(base, 0, size);
	cfg->entry_count = write_entries(&p, ncpus);
	memcpy(cfg->signature, "PCMP", 4);
	cfg->length = (uint16_t)(p - (uint8_t *)cfg);
	cfg->spec_rev = MP_SPEC_REV;
	memcpy(cfg->oem_id, "FLINT   ", 8);
	memcpy(cfg->product_id, "MICROVM     ", 12);
	cfg->lapic_paddr = (uint32_t)LAYOUT_LAPIC;
	cfg->checksum = checksum(cfg, cfg->length);
	memcpy(fp->signature, "_MP_", 4);
	fp->config_paddr = (uint32_t)(LAYOUT_EBDA + sizeof(*fp));
	fp->length = 1;
	fp->spec_rev = MP_SPEC_REV;
	fp->checksum = checksum(fp, sizeof(*fp));
	return 0;
}
