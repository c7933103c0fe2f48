#include "devices/legacy/i8042.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#define STS_OBF      0x01
#define STS_SYSFLAG  0x04
#define STS_CMD      0x08
#define STS_UNLOCKED 0x10 /* keyboard not inhibited (keylock off) */
#define CTR_KBD_INT  0x01 /* raise IRQ 1 when a keyboard byte is there */
#define CTR_XLATE    0x40 /* the guest reads scan code set 1 (translated) */

enum {
	CMD_READ_CTR = 0x20,
	CMD_WRITE_CTR = 0x60,
	CMD_DISABLE_AUX = 0xa7,
	CMD_ENABLE_AUX = 0xa8,
	CMD_TEST_AUX = 0xa9,
	CMD_SELF_TEST = 0xaa,
	CMD_TEST_KBD = 0xab,
	CMD_DISABLE_KBD = 0xad,
	CMD_ENABLE_KBD = 0xae,
	CMD_READ_OUTP = 0xd0,
	CMD_WRITE_OUTP = 0xd1,
	CMD_RESET = 0xfe,
};

void i8042_init(struct i8042 *k, void (*on_reset)(void *ctx), void *reset_ctx, int irq_fd)
{
	memset(k, 0, sizeof(*k));
	pthread_mutex_init(&k->lock, NULL);
	k->on_reset = on_reset;
	k->reset_ctx = reset_ctx;
	k->irq_fd = irq_fd;
	k->ctr = 0x45;  /* kbd interrupt, system flag, translation */
	k->outp = 0x01; /* A20 off is never modelled: bit 0 is "not in reset" */
}

void i8042_destroy(struct i8042 *k)
{
	pthread_mutex_destroy(&k->lock);
}

static void push(struct i8042 *k, uint8_t v)
{
	if (k->out_len < sizeof(k->out))
		k->out[k->out_len++] = v;
}

/*
 * An edge on IRQ 1 while a key byte waits and the guest wants keyboard interrupts. Only
 * key presses interrupt: the controller's answers to the guest's commands are polled.
 */
static void raise_irq(struct i8042 *k)
{
	uint64_t one = 1;

	if (!k->out_len)
		k->keys = false;
	if (k->irq_fd >= 0 && k->keys && (k->ctr & CTR_KBD_INT) &&
	    write(k->irq_fd, &one, sizeof(one)) < 0) {
		/* an eventfd counter cannot overflow here: nothing to do */
	}
}

int i8042_ctrl_alt_del(struct i8042 *k)
{
	/* Make codes: set 1 when the controller translates (Linux's default), else set 2. */
	static const uint8_t set1[] = { 0x1d, 0x38, 0xe0, 0x53 };
	static const uint8_t set2[] = { 0x14, 0x11, 0xe0, 0x71 };
	int r = 0;

	pthread_mutex_lock(&k->lock);
	if (k->out_len) {
		r = -EBUSY;
	} else {
		for (unsigned i = 0; i < sizeof(set1); i++)
			push(k, k->ctr & CTR_XLATE ? set1[i] : set2[i]);
		k->keys = true;
		raise_irq(k);
	}
	pthread_mutex_unlock(&k->lock);
	return r;
}

static void i8042_command(struct i8042 *k, uint8_t cmd)
{
	switch (cmd) {
	case CMD_READ_CTR:
		push(k, k->ctr);
		break;
	case CMD_WRITE_CTR:
	case CMD_WRITE_OUTP:
		k->pending_cmd = cmd;
		break;
	case CMD_SELF_TEST:
		push(k, 0x55);
		break;
	case CMD_TEST_KBD:
	case CMD_TEST_AUX:
		push(k, 0x00);
		break;
	case CMD_READ_OUTP:
		push(k, k->outp);
		break;
	case CMD_RESET:
		k->on_reset(k->reset_ctx);
		break;
	default: /* enable/disable kbd/aux and the rest need no answer */
		break;
	}
}

static void i8042_data(struct i8042 *k, uint8_t v)
{
	uint8_t cmd = k->pending_cmd;

	k->pending_cmd = 0;
	if (cmd == CMD_WRITE_CTR) {
		k->ctr = v;
	} else if (cmd == CMD_WRITE_OUTP) {
		k->outp = v;
		if (!(v & 1)) /* clearing bit 0 pulses the CPU reset line */
			k->on_reset(k->reset_ctx);
	} else {
		/* A byte for the keyboard itself: acknowledge; reset also reports self-test ok. */
		push(k, 0xfa);
		if (v == 0xff)
			push(k, 0xaa);
	}
}

static void i8042_read(void *dev, uint64_t offset, uint8_t *data, uint32_t len)
{
	struct i8042 *k = dev;

	memset(data, 0, len);
	pthread_mutex_lock(&k->lock);
	if (offset == 0) {
		if (k->out_len) {
			data[0] = k->out[0];
			memmove(k->out, k->out + 1, --k->out_len);
			raise_irq(k); /* one byte per interrupt: the next one's */
		}
	} else if (offset == 4) {
		data[0] = STS_SYSFLAG | STS_UNLOCKED | (k->out_len ? STS_OBF : 0) |
		          (k->pending_cmd ? STS_CMD : 0);
	} else {
		data[0] = 0xff;
	}
	pthread_mutex_unlock(&k->lock);
}

static void i8042_write(void *dev, uint64_t offset, const uint8_t *data, uint32_t len)
{
	struct i8042 *k = dev;

	(void)len;
	pthread_mutex_lock(&k->lock);
	if (offset == 0)
		i8042_data(k, data[0]);
	else if (offset == 4)
		i8042_command(k, data[0]);
	pthread_mutex_unlock(&k->lock);
}

const struct bus_ops i8042_ops = { i8042_read, i8042_write };
