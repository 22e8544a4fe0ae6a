/*
 * Header test: the public header must compile as C++11 with -Wall -Wextra
 * -pedantic -Werror (extern "C", no C-only constructs in declarations).
 */
#include "lim.h"
#include "lim.h"

int lim_headertest_cxx();

int lim_headertest_cxx()
{
	lim_buf buf = LIM_BUF_INIT;
#ifdef LIM_DB_OPTIONS_INIT
	lim_db_options opts = LIM_DB_OPTIONS_INIT;
	(void)opts;
#endif
	(void)buf;
	const char *(*fn)(void) = &lim_version;
	(void)fn;
	return LIM_OK;
}
