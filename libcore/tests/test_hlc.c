/*
 * The hybrid logical clock: 48 bits of milliseconds over 16 bits of
 * counter, local ticks strictly increasing whatever the wall clock does,
 * remote stamps observed by taking the maximum.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <cmocka.h>
#include "hlc.h"

#define H(ms, ctr) ((((uint64_t)(ms)) << 16) | (uint64_t)(ctr))
#define CTR(h) ((unsigned)((h) & 0xFFFF))

static const int64_t T0 = 1700000000000; /* 2023-11-14 */

static void test_hlc__first_tick_takes_wall_clock(void **state)
{
	(void)state;
	uint64_t h = lim_hlc__tick(0, T0);
	assert_true(h == H(T0, 0));
	assert_true(LIM_HLC_MS(h) == T0);
	assert_int_equal(CTR(h), 0);
}

static void test_hlc__tick_strictly_increases(void **state)
{
	(void)state;
	uint64_t last = 0, h;
	int64_t now = T0;
	uint64_t x = 88172645463325252ull;
	/* A wall clock that stalls, jumps ahead and goes back, at random. */
	for (int i = 0; i < 300000; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		switch (x % 8) {
		case 0: case 1: case 2: /* stall */
			break;
		case 3: case 4:
			now += (int64_t)(x >> 40 & 7);
			break;
		case 5:
			now -= (int64_t)(x >> 40 & 1023);
			break;
		case 6:
			now += (int64_t)(x >> 40 & 0xFFFFF);
			break;
		case 7:
			now -= (int64_t)(x >> 40 & 0xFFFFF);
			break;
		}
		h = lim_hlc__tick(last, now);
		if (h <= last) {
			print_error("tick(%llx, %lld) = %llx\n", (unsigned long long)last, (long long)now,
			            (unsigned long long)h);
			fail();
		}
		/* Never behind the wall clock. */
		assert_true(LIM_HLC_MS(h) >= now);
		last = h;
	}
	/* A stalled clock for more than 65536 ticks keeps going up. */
	last = H(T0, 0);
	for (int i = 0; i < 200000; i++) {
		h = lim_hlc__tick(last, T0);
		assert_true(h > last);
		last = h;
	}
}

static void test_hlc__wall_ahead_resets_counter(void **state)
{
	(void)state;
	assert_true(lim_hlc__tick(H(T0, 5), T0 + 1) == H(T0 + 1, 0));
	assert_true(lim_hlc__tick(H(T0, 0xFFFE), T0 + 1000) == H(T0 + 1000, 0));
	assert_true(lim_hlc__tick(H(T0, 0xFFFF), T0 + 2) == H(T0 + 2, 0));
}

static void test_hlc__wall_behind_keeps_ms_and_increments(void **state)
{
	(void)state;
	/* Equal wall time. */
	assert_true(lim_hlc__tick(H(T0, 5), T0) == H(T0, 6));
	assert_true(lim_hlc__tick(H(T0, 0), T0) == H(T0, 1));
	/* Wall clock set back. */
	assert_true(lim_hlc__tick(H(T0, 5), T0 - 1) == H(T0, 6));
	assert_true(lim_hlc__tick(H(T0, 7), T0 - 3600000) == H(T0, 8));
	assert_true(lim_hlc__tick(H(T0, 7), 0) == H(T0, 8));
	assert_true(lim_hlc__tick(H(T0, 7), -5) == H(T0, 8));
	assert_true(lim_hlc__tick(H(T0, 7), INT64_MIN) == H(T0, 8));
	/* A clock before the epoch still yields increasing stamps. */
	assert_true(lim_hlc__tick(0, -1) == 1);
	assert_true(lim_hlc__tick(1, 0) == 2);
}

static void test_hlc__counter_overflow_moves_to_next_ms(void **state)
{
	(void)state;
	assert_true(lim_hlc__tick(H(T0, 0xFFFE), T0) == H(T0, 0xFFFF));
	assert_true(lim_hlc__tick(H(T0, 0xFFFF), T0) == H(T0 + 1, 0));
	assert_true(lim_hlc__tick(H(T0, 0xFFFF), T0 - 50) == H(T0 + 1, 0));
	assert_true(lim_hlc__tick(H(T0, 0xFFFF), T0 + 1) == H(T0 + 1, 0));
	/* Exhausting 65536 stamps in one millisecond moves exactly one ms on. */
	uint64_t h = H(T0, 0);
	for (int i = 0; i < 0xFFFF; i++)
		h = lim_hlc__tick(h, T0);
	assert_true(h == H(T0, 0xFFFF));
	h = lim_hlc__tick(h, T0);
	assert_true(h == H(T0 + 1, 0));
	h = lim_hlc__tick(h, T0);
	assert_true(h == H(T0 + 1, 1));
}

static void test_hlc__observe_takes_max(void **state)
{
	(void)state;
	uint64_t a = H(T0, 3), b = H(T0, 9), c = H(T0 + 1, 0);
	assert_true(lim_hlc__observe(a, b) == b);
	assert_true(lim_hlc__observe(b, a) == b);
	assert_true(lim_hlc__observe(a, a) == a);
	assert_true(lim_hlc__observe(b, c) == c);
	assert_true(lim_hlc__observe(c, b) == c);
	assert_true(lim_hlc__observe(0, a) == a);
	assert_true(lim_hlc__observe(a, 0) == a);
	/* A tick after observing a remote stamp ahead of the wall clock is
	 * after that stamp; the local clock never goes back below it. */
	uint64_t remote = H(T0 + 500, 42);
	uint64_t last = lim_hlc__observe(H(T0, 1), remote);
	uint64_t h = lim_hlc__tick(last, T0 + 10);
	assert_true(h > remote);
	assert_true(h == H(T0 + 500, 43));
	/* Observing an older stamp changes nothing. */
	assert_true(lim_hlc__observe(h, H(T0 - 1, 0xFFFF)) == h);
}

static void test_hlc__stamps_ordered_as_integers(void **state)
{
	(void)state;
	/* (ms, counter) in lexicographic order is the integer order. */
	static const int64_t ms[] = { 0, 1, 2, 1000, T0, T0 + 1, 0xFFFFFFFFFFFEll, 0xFFFFFFFFFFFFll };
	static const unsigned ctr[] = { 0, 1, 2, 0x7FFF, 0x8000, 0xFFFE, 0xFFFF };
	const size_t nm = sizeof(ms) / sizeof(ms[0]), nc = sizeof(ctr) / sizeof(ctr[0]);
	for (size_t i = 0; i < nm * nc; i++)
		for (size_t j = 0; j < nm * nc; j++) {
			int64_t mi = ms[i / nc], mj = ms[j / nc];
			unsigned ci = ctr[i % nc], cj = ctr[j % nc];
			uint64_t hi = H(mi, ci), hj = H(mj, cj);
			int lex = mi != mj ? (mi < mj ? -1 : 1) : (ci != cj ? (ci < cj ? -1 : 1) : 0);
			int num = hi != hj ? (hi < hj ? -1 : 1) : 0;
			assert_int_equal(lex, num);
			assert_true(LIM_HLC_MS(hi) == mi);
			assert_int_equal(CTR(hi), ci);
		}
}

static void test_hlc__wall_clock_is_plausible(void **state)
{
	(void)state;
	int64_t a = lim_hlc__wall_ms();
	int64_t b = lim_hlc__wall_ms();
	assert_true(a > 1577836800000); /* after 2020-01-01 */
	assert_true(a < (int64_t)1 << 48); /* fits the 48-bit field */
	assert_true(b >= a - 1000);
	assert_true(b - a < 60000);
	uint64_t h = lim_hlc__tick(0, a);
	assert_true(LIM_HLC_MS(h) == a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hlc__first_tick_takes_wall_clock),
		cmocka_unit_test(test_hlc__tick_strictly_increases),
		cmocka_unit_test(test_hlc__wall_ahead_resets_counter),
		cmocka_unit_test(test_hlc__wall_behind_keeps_ms_and_increments),
		cmocka_unit_test(test_hlc__counter_overflow_moves_to_next_ms),
		cmocka_unit_test(test_hlc__observe_takes_max),
		cmocka_unit_test(test_hlc__stamps_ordered_as_integers),
		cmocka_unit_test(test_hlc__wall_clock_is_plausible),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
