/*
 * The CI exit port, compatible with QEMU's isa-debug-exit: a write of any width to any port
 * of its range hands the value to whoever set the port up (the VM turns it into flint's
 * exit status). The device knows no VM.
 */
#ifndef FLINT_EXIT_PORT_H
#define FLINT_EXIT_PORT_H

#include "vmm/base/bus.h"

struct exit_port {
	void (*on_write)(void *ctx, uint32_t value);
	void *ctx;
};

extern const struct bus_ops exit_port_ops;

#endif
