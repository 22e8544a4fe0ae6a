/*
 * Reconnect backoff of a node's dialers (PROTOCOL.md §12): the wait before
 * the next attempt starts at the minimum, doubles after each further
 * failure up to the maximum, and each wait is spread by ±20% so that the
 * peers of a restarted node do not all call back at the same moment.
 *
 * Pure functions (the random source is a parameter) so that the doubling,
 * the cap and the jitter bounds can be tested without a clock or a socket.
 * Defined in node.c, their only user.
 */
#ifndef LIM_BACKOFF_H
#define LIM_BACKOFF_H

#include <stdint.h>

/* The backoff after an attempt that failed: min_ms when `reset` (the last
 * session authenticated and ended cleanly) or when there was none yet
 * (prev_ms <= 0), else twice prev_ms, never above max_ms. Requires
 * 1 <= min_ms <= max_ms. */
int64_t lim_backoff__next(int64_t prev_ms, int64_t min_ms, int64_t max_ms, int reset);

/* The wait for a backoff of base_ms: uniform in [base - 20%, base + 20%]
 * (integer milliseconds, bounds included). `uniform(n)` must return a
 * uniform value in [0, n); node.c passes randombytes_uniform. */
int64_t lim_backoff__jittered(int64_t base_ms, uint32_t (*uniform)(uint32_t upper_bound));

#endif
