/* The i8042: Linux's probe answers, reset, and Ctrl-Alt-Del through IRQ 1. */
#include "devices/legacy/i8042.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <cmocka.h>

struct kb {
	struct i8042 k;
	int irq;
	int resets;
};

static void on_reset(void *ctx)
{
	((struct kb *)ctx)->resets++;
}

static void kb_init(struct kb *b)
{
	b->irq = eventfd(0, EFD_NONBLOCK);
	assert_true(b->irq >= 0);
	b->resets = 0;
	i8042_init(&b->k, on_reset, b, b->irq);
}

static void kb_free(struct kb *b)
{
	i8042_destroy(&b->k);
	close(b->irq);
}

static uint8_t in(struct kb *b, unsigned port)
{
	uint8_t v;

	i8042_ops.read(&b->k, port, &v, 1);
	return v;
}

static void out(struct kb *b, unsigned port, uint8_t v)
{
	i8042_ops.write(&b->k, port, &v, 1);
}

/* Interrupts raised since the last call. */
static uint64_t irqs(struct kb *b)
{
	uint64_t n = 0;

	return read(b->irq, &n, sizeof(n)) == sizeof(n) ? n : 0;
}

static void test_probe_and_reset(void **state)
{
	struct kb b;

	(void)state;
	kb_init(&b);
	out(&b, 4, 0xaa); /* self test */
	assert_int_equal(in(&b, 4) & 1, 1);
	assert_int_equal(in(&b, 0), 0x55);
	out(&b, 4, 0x20); /* read the configuration byte */
	assert_int_equal(in(&b, 0), 0x45);
	assert_int_equal(irqs(&b), 0); /* controller answers are polled, never interrupt */
	out(&b, 4, 0xfe);
	assert_int_equal(b.resets, 1);
	kb_free(&b);
}

static void test_ctrl_alt_del(void **state)
{
	static const uint8_t set1[] = { 0x1d, 0x38, 0xe0, 0x53 };
	struct kb b;

	(void)state;
	kb_init(&b);
	assert_int_equal(i8042_ctrl_alt_del(&b.k), 0);
	assert_int_equal(i8042_ctrl_alt_del(&b.k), -EBUSY); /* not read yet */
	/* One interrupt per byte: raised for the first, then as each is read. */
	for (unsigned i = 0; i < sizeof(set1); i++) {
		assert_int_equal(irqs(&b), 1);
		assert_int_equal(in(&b, 4) & 1, 1);
		assert_int_equal(in(&b, 0), set1[i]);
	}
	assert_int_equal(irqs(&b), 0);
	assert_int_equal(in(&b, 4) & 1, 0);
	kb_free(&b);
}

/* Translation off: scan code set 2; keyboard interrupts off: no IRQ, the bytes polled. */
static void test_ctrl_alt_del_set2_polled(void **state)
{
	static const uint8_t set2[] = { 0x14, 0x11, 0xe0, 0x71 };
	struct kb b;

	(void)state;
	kb_init(&b);
	out(&b, 4, 0x60);
	out(&b, 0, 0x04); /* system flag only */
	assert_int_equal(i8042_ctrl_alt_del(&b.k), 0);
	for (unsigned i = 0; i < sizeof(set2); i++)
		assert_int_equal(in(&b, 0), set2[i]);
	assert_int_equal(irqs(&b), 0);
	assert_int_equal(i8042_ctrl_alt_del(&b.k), 0); /* all read: presses again */
	kb_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_probe_and_reset),
		cmocka_unit_test(test_ctrl_alt_del),
		cmocka_unit_test(test_ctrl_alt_del_set2_polled),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
