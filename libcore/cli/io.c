/*
 * io.c — files and streams for the CLI: reading a small file whole (a
 * version vector, a JSON object) with a size bound, and the callbacks that
 * lim_db_export / lim_db_import stream a pack through. A pack is never
 * held in memory whole: the library pulls and pushes it in pieces.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int cli_read_file(const char *path, size_t max, char **out, size_t *len)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	size_t cap = 4096, n = 0;
	char *buf = NULL;
	int err = 0;

	*out = NULL;
	*len = 0;
	if (!f)
		return -1;
	for (;;) {
		size_t got;

		if (!buf || n == cap) {
			char *nb;
			if (buf)
				cap *= 2;
			nb = realloc(buf, cap + 1);
			if (!nb) {
				err = ENOMEM;
				break;
			}
			buf = nb;
		}
		got = fread(buf + n, 1, cap - n, f);
		n += got;
		if (n > max) {
			err = EFBIG;
			break;
		}
		if (got == 0) {
			if (ferror(f))
				err = errno ? errno : EIO;
			break;
		}
	}
	if (f != stdin)
		fclose(f);
	if (err) {
		free(buf);
		errno = err;
		return -1;
	}
	buf[n] = '\0';
	*out = buf;
	*len = n;
	return 0;
}

/* lim_db_export's write callback: ctx is unused, bytes go to stdout. */
int cli_write_stdout(void *ctx, const char *bytes, size_t len)
{
	(void)ctx;
	if (len && fwrite(bytes, 1, len, stdout) != len)
		return -1;
	return 0;
}

/* lim_db_import's read callback: ctx is a FILE *; 0 at end, -1 on error. */
long cli_read_stream(void *ctx, char *buf, size_t cap)
{
	FILE *f = ctx;
	size_t got = fread(buf, 1, cap, f);

	if (got == 0 && ferror(f))
		return -1;
	return (long)got;
}
