/* 16550A UART at 0x3f8 / IRQ 4: enough for Linux's 8250 driver, polled or interrupt-driven. */
#ifndef FLINT_SERIAL_H
#define FLINT_SERIAL_H

#include "vmm/base/bus.h"
#include "vmm/x86/layout.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define SERIAL_COM1_BASE LAYOUT_PIO_COM1
#define SERIAL_COM1_IRQ  4
#define SERIAL_RX_CAP    1024

struct serial {
	pthread_mutex_t lock;
	uint8_t ier, lcr, mcr, scr, dll, dlm, fcr;
	bool thre_pending; /* THR-empty interrupt raised and not yet acknowledged */
	uint8_t rx[SERIAL_RX_CAP];
	unsigned rx_head, rx_len;
	int irq_fd; /* irqfd to raise IRQ 4; -1 for none (tests) */
	/* Where transmitted bytes go (under the UART's lock; must not block); NULL: nowhere. */
	void (*out)(void *ctx, uint8_t byte);
	void *out_ctx;
	/*
	 * Called (under no lock) when the guest drained the RX buffer to room for more; once
	 * until serial_rx_space() is next asked, so a guest cycling the buffer in loopback
	 * mode cannot queue work without end.
	 */
	void (*on_rx_space)(void *arg);
	void *rx_arg;
	atomic_bool rx_space_said;
};

extern const struct bus_ops serial_ops;

void serial_init(struct serial *s, int irq_fd, void (*out)(void *ctx, uint8_t byte), void *out_ctx);
void serial_destroy(struct serial *s);
/* Queues host input for the guest. Returns how many bytes fit. Any thread. */
size_t serial_input(struct serial *s, const uint8_t *data, size_t len);
/* Free space in the RX buffer. Re-arms on_rx_space. */
size_t serial_rx_space(struct serial *s);

#endif
