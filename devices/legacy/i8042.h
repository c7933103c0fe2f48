/* i8042 keyboard controller: just enough for Linux to probe it and for reboot=k. */
#ifndef FLINT_I8042_H
#define FLINT_I8042_H

#include "vmm/base/bus.h"
#include "vmm/x86/layout.h"

#include <pthread.h>
#include <stdint.h>

#define I8042_DATA_PORT LAYOUT_PIO_I8042
#define I8042_CMD_PORT  0x64

struct i8042 {
	pthread_mutex_t lock;
	/* The guest pulsed the CPU reset line (reboot=k); the device knows no VM. */
	void (*on_reset)(void *ctx);
	void *reset_ctx;
	uint8_t ctr;         /* controller configuration byte */
	uint8_t outp;        /* output port */
	uint8_t pending_cmd; /* command waiting for its data byte, 0 when none */
	uint8_t out[4];      /* bytes for the guest to read from the data port */
	unsigned out_len;
};

/* Data port 0x60 and status/command port 0x64 share one device; offsets 0 and 4. */
extern const struct bus_ops i8042_ops;

void i8042_init(struct i8042 *k, void (*on_reset)(void *ctx), void *reset_ctx);
void i8042_destroy(struct i8042 *k);

#endif
