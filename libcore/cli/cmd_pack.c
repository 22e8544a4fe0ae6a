/*
 * cmd_pack.c — `lim export` and `lim import`: changes as a pack file,
 * byte for byte what the sync protocol would carry. Both stream: export
 * writes through a callback to stdout, import pulls through a callback
 * from the file, and the library applies the pack all-or-nothing.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* A version vector has one short line per author; 64 MiB is far more
 * than any real one and keeps a wrong --since file from eating memory. */
#define CLI_MAX_VV_BYTES ((size_t)64 << 20)

int cli_cmd_export(struct cli *c)
{
	char *since = NULL;
	size_t since_len = 0;
	int rc;

	if (c->since && cli_read_file(c->since, CLI_MAX_VV_BYTES, &since, &since_len) != 0)
		return cli_fail(c, errno == EFBIG ? CLI_EXIT_INVALID
		                   : errno == ENOENT ? CLI_EXIT_NOTFOUND : CLI_EXIT_FAILURE,
		                "--since %s: %s", c->since,
		                errno == EFBIG ? "too large for a version vector" : strerror(errno));
	rc = lim_db_export(c->db, since, since_len, cli_write_stdout, NULL);
	free(since);
	if (rc != 0) {
		if (ferror(stdout))
			return cli_fail(c, CLI_EXIT_FAILURE, "writing standard output: %s",
			                strerror(errno));
		return cli_fail_lim(c, rc);
	}
	return CLI_EXIT_OK;
}

int cli_cmd_import(struct cli *c)
{
	const char *path = c->args[0];
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	lim_apply_stats stats = { 0, 0 };
	int rc;

	if (!f)
		return cli_fail(c, errno == ENOENT ? CLI_EXIT_NOTFOUND : CLI_EXIT_FAILURE, "%s: %s",
		                path, strerror(errno));
	rc = lim_db_import(c->db, cli_read_stream, f, &stats);
	if (rc != 0 && ferror(f)) {
		int err = errno;
		if (f != stdin)
			fclose(f);
		return cli_fail(c, CLI_EXIT_FAILURE, "reading %s: %s", path, strerror(err));
	}
	if (f != stdin)
		fclose(f);
	if (rc != 0)
		return cli_fail_lim(c, rc);
	printf("imported %zu changes (%zu already present)\n", stats.applied, stats.duplicates);
	return CLI_EXIT_OK;
}
