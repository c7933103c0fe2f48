/* The 16550 model on its own, without a VM: what a guest can make it do. */
#include "tests/lib/util.h"
#include "devices/legacy/serial.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

enum { THR = 0, MCR = 4 };

static unsigned room_calls;

static void on_room(void *arg)
{
	(void)arg;
	room_calls++;
}

static void out8(struct serial *s, unsigned reg, uint8_t v)
{
	serial_ops.write(s, reg, &v, 1);
}

static uint8_t in8(struct serial *s, unsigned reg)
{
	uint8_t v;

	serial_ops.read(s, reg, &v, 1);
	return v;
}

/*
 * A guest in loopback mode cycling its RX buffer across the half-full mark: each crossing
 * would tell the loop "room for input" again; it is said once until the loop asks.
 */
static void test_loopback_room_said_once(void **state)
{
	struct serial s;

	(void)state;
	serial_init(&s, -1, NULL, NULL);
	s.on_rx_space = on_room;
	room_calls = 0;
	out8(&s, MCR, 0x10); /* loopback */
	for (int i = 0; i < SERIAL_RX_CAP / 2 + 1; i++)
		out8(&s, THR, (uint8_t)i);
	for (int i = 0; i < 100000; i++) {
		assert_int_equal(in8(&s, THR), (uint8_t)i);
		out8(&s, THR, (uint8_t)(i + SERIAL_RX_CAP / 2 + 1));
	}
	assert_int_equal(room_calls, 1);
	/* The loop took input (asked for room): the next crossing is said again. */
	assert_true(serial_rx_space(&s) > 0);
	in8(&s, THR);
	out8(&s, THR, 0);
	in8(&s, THR);
	assert_int_equal(room_calls, 2);
	serial_destroy(&s);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_loopback_room_said_once),
	};
	return TEST_MAIN(tests, NULL, NULL);
}
