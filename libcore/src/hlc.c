/* See hlc.h. */
#include <time.h>
#include "hlc.h"

uint64_t lim_hlc__tick(uint64_t last, int64_t now_ms)
{
	uint64_t wall = now_ms > 0 ? (uint64_t)now_ms & 0xFFFFFFFFFFFFull : 0;
	if (wall > (last >> 16))
		return wall << 16;
	if ((last & 0xFFFF) != 0xFFFF)
		return last + 1;
	if ((last >> 16) == 0xFFFFFFFFFFFFull)
		return last; /* the year 10889: saturate rather than wrap to 1970 */
	/* Counter exhausted within one millisecond: borrow the next one. */
	return ((last >> 16) + 1) << 16;
}

uint64_t lim_hlc__observe(uint64_t last, uint64_t remote)
{
	return remote > last ? remote : last;
}

int64_t lim_hlc__wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
