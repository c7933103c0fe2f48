/*
 * The Firecracker-compatible boot timer: a guest writes BOOT_TIMER_MAGIC to its MMIO byte
 * when it has booted, and flint logs how long that took (once).
 */
#ifndef FLINT_BOOT_TIMER_H
#define FLINT_BOOT_TIMER_H

#include "vmm/base/bus.h"

#define BOOT_TIMER_MAGIC 123

struct boot_timer {
	long long start_ns; /* CLOCK_MONOTONIC when flint started */
	long long boot_ns;  /* 0 until the guest reported */
};

extern const struct bus_ops boot_timer_ops;

#endif
