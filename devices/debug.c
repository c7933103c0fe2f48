#include "devices/debug.h"
#include "vmm/log.h"
#include "vmm/vm.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static void boot_timer_write(void *dev, uint64_t offset, const uint8_t *data, uint32_t len)
{
	struct boot_timer *t = dev;
	struct timespec ts;

	(void)len;
	/* Once: a guest writing it in a loop must not fill flint's log. */
	if (offset != 0 || data[0] != BOOT_TIMER_MAGIC || t->boot_ns)
		return;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	t->boot_ns = (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
	log_info("guest boot time: %lld us since flint started", (t->boot_ns - t->start_ns) / 1000);
}

const struct bus_ops boot_timer_ops = { NULL, boot_timer_write };

int exit_port_code(uint32_t value)
{
	return (int)(((value << 1) | 1) & 0xff);
}

static void exit_port_write(void *dev, uint64_t offset, const uint8_t *data, uint32_t len)
{
	struct exit_port *p = dev;
	uint32_t v = 0;
	char why[96];

	(void)offset; /* like isa-debug-exit: any port of the range, any width */
	memcpy(&v, data, len > 4 ? 4 : len);
	snprintf(why, sizeof(why), "guest wrote %u to the CI exit port: exit code %d", v,
	         exit_port_code(v));
	vm_request_exit(p->vm, exit_port_code(v), why);
}

const struct bus_ops exit_port_ops = { NULL, exit_port_write };
