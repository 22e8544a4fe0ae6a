/*
 * store.c — opening an existing store for a command.
 *
 * Every command but `init` works on a store that must already exist, so
 * it opens with create = 0: a typo in --db must never leave a fresh empty
 * store behind. A missing file is "not found" (exit 1) with a hint.
 */
#include "cli.h"

int cli_open(const struct cli *c, lim_db **out)
{
	lim_db_options opts;
	int rc;

	*out = NULL;
	rc = lim_db_options_init(&opts, LIM_DB_OPTIONS_VERSION);
	if (rc != 0)
		return cli_fail_lim(c, rc);
	opts.create = 0;
	rc = lim_db_open(out, c->db_path, &opts);
	if (rc == LIM_ENOTFOUND)
		return cli_fail(c, CLI_EXIT_NOTFOUND, "no store at %s (create one with lim init)",
		                c->db_path);
	if (rc != 0)
		return cli_fail_lim(c, rc);
	return CLI_EXIT_OK;
}
