/*
 * Ports for tests and measurement: the Firecracker-compatible boot timer (MMIO) and the
 * CI exit port, compatible with QEMU's isa-debug-exit.
 */
#ifndef FLINT_DEBUG_H
#define FLINT_DEBUG_H

#include "vmm/bus.h"

#define BOOT_TIMER_MAGIC 123

struct vm;

struct boot_timer {
	long long start_ns; /* CLOCK_MONOTONIC when flint started */
	long long boot_ns;  /* 0 until the guest reported */
};

struct exit_port {
	struct vm *vm;
};

extern const struct bus_ops boot_timer_ops;
extern const struct bus_ops exit_port_ops;

/* Exit code for a value written to the exit port: (v << 1) | 1, as isa-debug-exit. */
int exit_port_code(uint32_t value);

#endif
