/*
 * number.c — strict decimal parsing of command-line numbers.
 *
 * strtoll alone accepts leading blanks, a '+', trailing garbage and
 * silently clamps on overflow; a counter increment or a limit must be
 * exactly a decimal integer, so these check every character.
 */
#include <errno.h>
#include <stdlib.h>

#include "cli.h"

/* An optional '-', then one or more ASCII digits; nothing else. */
static int all_digits(const char *s)
{
	if (*s == '-')
		s++;
	if (!*s)
		return 0;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return 0;
	return 1;
}

int cli_parse_int64(const char *s, int64_t *out)
{
	long long v;
	char *end;

	if (!all_digits(s))
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno == ERANGE || *end)
		return -1;
	*out = (int64_t)v;
	return 0;
}

int cli_parse_size(const char *s, size_t *out)
{
	unsigned long long v;
	char *end;

	if (*s == '-' || !all_digits(s))
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno == ERANGE || *end || v > SIZE_MAX)
		return -1;
	*out = (size_t)v;
	return 0;
}
