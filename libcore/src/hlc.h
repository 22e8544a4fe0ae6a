/*
 * Hybrid logical clock: 48 bits of Unix milliseconds, 16 bits of counter.
 * Local stamps strictly increase; remote stamps push the clock forward only
 * after they passed the drift check, so a peer with a clock in the year 3000
 * cannot drag this node's clock along.
 */
#ifndef LIM_HLC_H
#define LIM_HLC_H

#include <stdint.h>

#define LIM_HLC_MS(h) ((int64_t)((h) >> 16))

/* Next local stamp after `last` at wall time `now_ms`. */
uint64_t lim_hlc__tick(uint64_t last, int64_t now_ms);
/* The clock after observing a remote stamp. */
uint64_t lim_hlc__observe(uint64_t last, uint64_t remote);
/* Wall clock in ms since the epoch. */
int64_t lim_hlc__wall_ms(void);

#endif
