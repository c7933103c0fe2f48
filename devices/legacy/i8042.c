#include "devices/legacy/i8042.h"

#include <string.h>

#define STS_OBF      0x01
#define STS_SYSFLAG  0x04
#define STS_CMD      0x08
#define STS_UNLOCKED 0x10 /* keyboard not inhibited (keylock off) */

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

void i8042_init(struct i8042 *k, void (*on_reset)(void *ctx), void *reset_ctx)
{
	memset(k, 0, sizeof(*k));
	pthread_mutex_init(&k->lock, NULL);
	k->on_reset = on_reset;
	k->reset_ctx = reset_ctx;
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
