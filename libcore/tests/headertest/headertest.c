/*
 * Header test: the public header must compile on its own, twice (include
 * guard), as strict C99 with -Wall -Wextra -pedantic -Werror. The build
 * compiles this file; nothing links or runs it.
 */
#include "lim.h"
#include "lim.h"

/* Use the static initialisers so missing or misordered fields warn. */
int lim_headertest_c(void);

int lim_headertest_c(void)
{
	lim_buf buf = LIM_BUF_INIT;
#ifdef LIM_DB_OPTIONS_INIT
	lim_db_options opts = LIM_DB_OPTIONS_INIT;
	(void)opts;
#endif
	(void)buf;
	return LIM_OK;
}
