#include "devices/legacy/serial.h"

#include <string.h>
#include <unistd.h>

/* Register offsets and bits (16550A). */
enum {
	UART_RBR_THR = 0,
	UART_IER = 1,
	UART_IIR_FCR = 2,
	UART_LCR = 3,
	UART_MCR = 4,
	UART_LSR = 5,
	UART_MSR = 6,
	UART_SCR = 7
};
#define IER_RDI  0x01
#define IER_THRI 0x02
#define IIR_NONE 0x01
#define IIR_THRI 0x02
#define IIR_RDI  0x04
#define IIR_FIFO 0xc0
#define LCR_DLAB 0x80
#define MCR_DTR  0x01
#define MCR_RTS  0x02
#define MCR_OUT1 0x04
#define MCR_OUT2 0x08
#define MCR_LOOP 0x10
#define LSR_DR   0x01
#define LSR_THRE 0x20
#define LSR_TEMT 0x40
#define MSR_CTS  0x10
#define MSR_DSR  0x20
#define MSR_RI   0x40
#define MSR_DCD  0x80

void serial_init(struct serial *s, int irq_fd, void (*out)(void *ctx, uint8_t byte), void *out_ctx)
{
	memset(s, 0, sizeof(*s));
	pthread_mutex_init(&s->lock, NULL);
	s->irq_fd = irq_fd;
	s->out = out;
	s->out_ctx = out_ctx;
	s->mcr = MCR_OUT2;
	s->dll = 12; /* 9600 baud, as firmware would leave it */
}

void serial_destroy(struct serial *s)
{
	pthread_mutex_destroy(&s->lock);
}

static uint8_t serial_iir(const struct serial *s)
{
	uint8_t fifo = (s->fcr & 1) ? IIR_FIFO : 0;

	if ((s->ier & IER_RDI) && s->rx_len)
		return IIR_RDI | fifo;
	if ((s->ier & IER_THRI) && s->thre_pending)
		return IIR_THRI | fifo;
	return IIR_NONE | fifo;
}

/* Pulses the IRQ when an interrupt condition is pending (the line is edge-triggered). */
static void serial_update_irq(struct serial *s)
{
	uint64_t one = 1;

	if (s->irq_fd >= 0 && serial_iir(s) != (IIR_NONE | ((s->fcr & 1) ? IIR_FIFO : 0)) &&
	    write(s->irq_fd, &one, sizeof(one)) < 0) {
		/* An eventfd write only fails on counter overflow: the IRQ is pending anyway. */
	}
}

static bool rx_push(struct serial *s, uint8_t byte)
{
	if (s->rx_len == SERIAL_RX_CAP)
		return false;
	s->rx[(s->rx_head + s->rx_len++) % SERIAL_RX_CAP] = byte;
	return true;
}

static uint8_t serial_reg_read(struct serial *s, unsigned reg, bool *drained)
{
	switch (reg) {
	case UART_RBR_THR: {
		if (s->lcr & LCR_DLAB)
			return s->dll;
		if (!s->rx_len)
			return 0;
		uint8_t b = s->rx[s->rx_head];
		s->rx_head = (s->rx_head + 1) % SERIAL_RX_CAP;
		*drained = --s->rx_len == SERIAL_RX_CAP / 2;
		return b;
	}
	case UART_IER:
		return (s->lcr & LCR_DLAB) ? s->dlm : s->ier;
	case UART_IIR_FCR: {
		uint8_t iir = serial_iir(s);
		/* Reading IIR acknowledges a THR-empty interrupt. */
		if ((iir & 0x0f) == IIR_THRI)
			s->thre_pending = false;
		return iir;
	}
	case UART_LCR:
		return s->lcr;
	case UART_MCR:
		return s->mcr;
	case UART_LSR:
		return LSR_THRE | LSR_TEMT | (s->rx_len ? LSR_DR : 0);
	case UART_MSR:
		if (s->mcr & MCR_LOOP)
			return (uint8_t)(((s->mcr & MCR_DTR) ? MSR_DSR : 0) |
			                 ((s->mcr & MCR_RTS) ? MSR_CTS : 0) |
			                 ((s->mcr & MCR_OUT1) ? MSR_RI : 0) |
			                 ((s->mcr & MCR_OUT2) ? MSR_DCD : 0));
		return MSR_DCD | MSR_DSR | MSR_CTS;
	default:
		return s->scr;
	}
}

static void serial_reg_write(struct serial *s, unsigned reg, uint8_t v)
{
	switch (reg) {
	case UART_RBR_THR:
		if (s->lcr & LCR_DLAB) {
			s->dll = v;
			return;
		}
		if (s->mcr & MCR_LOOP)
			rx_push(s, v);
		else if (s->out)
			s->out(s->out_ctx, v);
		/* The byte left at once, so THR is empty again. */
		s->thre_pending = true;
		break;
	case UART_IER:
		if (s->lcr & LCR_DLAB) {
			s->dlm = v;
			return;
		}
		/* Enabling THRI while THR is empty raises the interrupt, as on hardware. */
		if ((v & IER_THRI) && !(s->ier & IER_THRI))
			s->thre_pending = true;
		s->ier = v & 0x0f;
		break;
	case UART_IIR_FCR:
		s->fcr = v & 0xc9;
		if (v & 0x02) /* clear RX FIFO */
			s->rx_len = 0;
		break;
	case UART_LCR:
		s->lcr = v;
		return;
	case UART_MCR:
		s->mcr = v & 0x1f;
		return;
	case UART_SCR:
		s->scr = v;
		return;
	default: /* LSR and MSR are read-only */
		return;
	}
	serial_update_irq(s);
}

static void serial_read(void *dev, uint64_t offset, uint8_t *data, uint32_t len)
{
	struct serial *s = dev;
	bool drained = false;

	pthread_mutex_lock(&s->lock);
	data[0] = serial_reg_read(s, (unsigned)offset, &drained);
	pthread_mutex_unlock(&s->lock);
	memset(data + 1, 0, len - 1);
	if (drained && s->on_rx_space && !atomic_exchange(&s->rx_space_said, true))
		s->on_rx_space(s->rx_arg);
}

static void serial_write(void *dev, uint64_t offset, const uint8_t *data, uint32_t len)
{
	struct serial *s = dev;

	(void)len;
	pthread_mutex_lock(&s->lock);
	serial_reg_write(s, (unsigned)offset, data[0]);
	pthread_mutex_unlock(&s->lock);
}

const struct bus_ops serial_ops = { serial_read, serial_write };

size_t serial_input(struct serial *s, const uint8_t *data, size_t len)
{
	size_t n = 0;

	pthread_mutex_lock(&s->lock);
	while (n < len && rx_push(s, data[n]))
		n++;
	if (n)
		serial_update_irq(s);
	pthread_mutex_unlock(&s->lock);
	return n;
}

size_t serial_rx_space(struct serial *s)
{
	size_t space;

	atomic_store(&s->rx_space_said, false);
	pthread_mutex_lock(&s->lock);
	space = SERIAL_RX_CAP - s->rx_len;
	pthread_mutex_unlock(&s->lock);
	return space;
}
