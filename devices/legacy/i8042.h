/*
 * i8042 keyboard controller: enough for Linux to probe it, for reboot=k, and to press
 * Ctrl-Alt-Del (the API's SendCtrlAltDel) through the keyboard's IRQ 1.
 */
#ifndef FLINT_I8042_H
#define FLINT_I8042_H

#include "vmm/base/bus.h"
#include "vmm/x86/layout.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define I8042_DATA_PORT LAYOUT_PIO_I8042
#define I8042_CMD_PORT  0x64
#define I8042_KBD_IRQ   1

struct i8042 {
	pthread_mutex_t lock;
	/* The guest pulsed the CPU reset line (reboot=k); the device knows no VM. */
	void (*on_reset)(void *ctx);
	void *reset_ctx;
	int irq_fd; /* written to raise IRQ 1 (an irqfd), -1: none */
	uint8_t ctr;         /* controller configuration byte */
	uint8_t outp;        /* output port */
	uint8_t pending_cmd; /* command waiting for its data byte, 0 when none */
	uint8_t out[16];     /* bytes for the guest to read from the data port */
	unsigned out_len;
	bool keys; /* out holds key presses: each byte read raises IRQ 1 for the next */
};

/* Data port 0x60 and status/command port 0x64 share one device; offsets 0 and 4. */
extern const struct bus_ops i8042_ops;

void i8042_init(struct i8042 *k, void (*on_reset)(void *ctx), void *reset_ctx, int irq_fd);
/*
 * Queues Ctrl, Alt and Del presses from the keyboard and raises IRQ 1. -EBUSY while the
 * guest has not read what is queued already.
 */
int i8042_ctrl_alt_del(struct i8042 *k);
void i8042_destroy(struct i8042 *k);

#endif
