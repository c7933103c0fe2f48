/* i8042 keyboard controller: just enough for Linux to probe it and for reboot=k. */
#ifndef FLINT_I8042_H
#define FLINT_I8042_H

#include "vmm/bus.h"
#include "vmm/layout.h"

#include <pthread.h>
#include <stdint.h>

#define I8042_DATA_PORT LAYOUT_PIO_I8042
#define I8042_CMD_PORT  0x64

struct vm;

struct i8042 {
	pthread_mutex_t lock;
	struct vm *vm;
	uint8_t ctr;         /* controller configuration byte */
	uint8_t outp;        /* output port */
	uint8_t pending_cmd; /* command waiting for its data byte, 0 when none */
	uint8_t out[4];      /* bytes for the guest to read from the data port */
	unsigned out_len;
};

/* Data port 0x60 and status/command port 0x64 share one device; offsets 0 and 4. */
extern const struct bus_ops i8042_ops;

void i8042_init(struct i8042 *k, struct vm *vm);
void i8042_destroy(struct i8042 *k);

#endif
