/*
 * Intel MultiProcessor table (spec 1.4): how a guest without ACPI finds its CPUs,
 * the IOAPIC and the ISA interrupt routing. Placed in the EBDA, where Linux scans.
 */
#include "boot/boot.h"
#include "boot/bytes.h"
#include "vmm/x86/layout.h"

#include <errno.h>

#define MP_APIC_VERSION   0x14
#define MP_IOAPIC_VERSION 0x11
#define MP_ISA_IRQS       16

static uint8_t checksum(const uint8_t *p, size_t len)
{
	uint8_t sum = 0;

	while (len--)
		sum = (uint8_t)(sum + *p++);
	return (uint8_t)-sum;
}

int mptable_write(struct guest_memory *mem, unsigned ncpus)
{
	size_t size = 16 + 44 + ncpus * 20 + 8 + 8 + (MP_ISA_IRQS + 2) * 8;
	uint8_t *base = guest_memory_hva(mem, LAYOUT_EBDA, LAYOUT_LOW_RAM_END - LAYOUT_EBDA);
	uint8_t *fp = base, *hdr = base + 16, *p = hdr + 44;
	uint8_t ioapic_id = (uint8_t)ncpus;
	uint16_t count = 0;

	if (!base || size > LAYOUT_LOW_RAM_END - LAYOUT_EBDA || ncpus > 254)
		return -EINVAL;
	memset(base, 0, size);
	for (unsigned i = 0; i < ncpus; i++, p += 20, count++) {
		p[0] = 0; /* processor */
		p[1] = (uint8_t)i;
		p[2] = MP_APIC_VERSION;
		p[3] = 0x01 | (i == 0 ? 0x02 : 0); /* enabled, BSP */
		put32(p + 4, 0x600);               /* family 6 */
		put32(p + 8, 0x201);               /* FPU, APIC */
	}
	p[0] = 1; /* bus 0: ISA */
	memcpy(p + 2, "ISA   ", 6);
	p += 8, count++;
	p[0] = 2; /* IOAPIC */
	p[1] = ioapic_id;
	p[2] = MP_IOAPIC_VERSION;
	p[3] = 1;
	put32(p + 4, (uint32_t)LAYOUT_IOAPIC);
	p += 8, count++;
	for (unsigned irq = 0; irq < MP_ISA_IRQS; irq++, p += 8, count++) {
		p[0] = 3; /* I/O interrupt: ISA irq -> same IOAPIC pin, bus-default polarity */
		p[1] = 0; /* INT */
		p[4] = 0;
		p[5] = (uint8_t)irq;
		p[6] = ioapic_id;
		p[7] = (uint8_t)irq;
	}
	for (unsigned lint = 0; lint < 2; lint++, p += 8, count++) {
		p[0] = 4; /* local interrupt: ExtINT on LINT0, NMI on LINT1, to all CPUs */
		p[1] = lint == 0 ? 3 : 1;
		p[6] = 0xff;
		p[7] = (uint8_t)lint;
	}
	memcpy(hdr, "PCMP", 4);
	put16(hdr + 4, (uint16_t)(p - hdr));
	hdr[6] = 4; /* spec 1.4 */
	memcpy(hdr + 8, "FLINT   ", 8);
	memcpy(hdr + 16, "MICROVM     ", 12);
	put16(hdr + 34, count);
	put32(hdr + 36, (uint32_t)LAYOUT_LAPIC);
	hdr[7] = checksum(hdr, (size_t)(p - hdr));
	memcpy(fp, "_MP_", 4);
	put32(fp + 4, (uint32_t)(LAYOUT_EBDA + 16));
	fp[8] = 1; /* length in 16-byte units */
	fp[9] = 4;
	fp[10] = checksum(fp, 16);
	return 0;
}
