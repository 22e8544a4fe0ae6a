/*
 * cmd_store.c — commands about the store as a whole: init, id, digest,
 * verify, vv.
 */
#include <sys/stat.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

static int print_identity(struct cli *c, lim_db *db)
{
	unsigned char id[LIM_ID_BYTES], key[LIM_NETWORK_KEY_BYTES];
	char hex[2 * LIM_ID_BYTES + 1];
	int rc;

	if ((rc = lim_db_replica_id(db, id)) != 0 || (rc = lim_db_network_key(db, key)) != 0)
		return cli_fail_lim(c, rc);
	cli_hex(hex, id, sizeof id);
	printf("replica_id %s\n", hex);
	cli_hex(hex, key, sizeof key);
	printf("network_key %s\n", hex);
	return CLI_EXIT_OK;
}

/*
 * init: refuse an existing store (probe with create = 0 first, so that an
 * existing store is never reopened with a different key), then create.
 */
static int cli_file_is_empty(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 0;
}

int cli_cmd_init(struct cli *c)
{
	unsigned char key[LIM_NETWORK_KEY_BYTES];
	lim_db_options opts;
	lim_db *db = NULL;
	int rc, status;

	if (c->network_key && cli_unhex(key, sizeof key, c->network_key) != 0)
		return cli_usage_error(c, "--network-key wants %d hex characters, got '%.80s'",
		                       2 * LIM_NETWORK_KEY_BYTES, c->network_key);
	if ((rc = lim_db_options_init(&opts, LIM_DB_OPTIONS_VERSION)) != 0)
		return cli_fail_lim(c, rc);

	opts.create = 0;
	rc = lim_db_open(&db, c->db_path, &opts);
	if (rc == 0) {
		lim_db_free(db);
		return cli_fail(c, CLI_EXIT_FAILURE, "%s: already a liblim store", c->db_path);
	}
	/* A missing file, or an empty one (from touch or mktemp), is where a
	 * new store may go; anything else is somebody's data. */
	if (rc != LIM_ENOTFOUND && !(rc == LIM_ENOTSTORE && cli_file_is_empty(c->db_path)))
		return cli_fail_lim(c, rc);

	opts.create = 1;
	opts.network_key = c->network_key ? key : NULL;
	if ((rc = lim_db_open(&db, c->db_path, &opts)) != 0)
		return cli_fail_lim(c, rc);
	status = print_identity(c, db);
	lim_db_free(db);
	return status;
}

int cli_cmd_id(struct cli *c)
{
	return print_identity(c, c->db);
}

int cli_cmd_digest(struct cli *c)
{
	char digest[65];
	int rc = lim_db_digest(c->db, digest);

	if (rc != 0)
		return cli_fail_lim(c, rc);
	digest[64] = '\0';
	printf("%s\n", digest);
	return CLI_EXIT_OK;
}

int cli_cmd_verify(struct cli *c)
{
	int rc = lim_db_verify(c->db);

	if (rc != 0)
		return cli_fail_lim(c, rc);
	printf("ok\n");
	return CLI_EXIT_OK;
}

int cli_cmd_vv(struct cli *c)
{
	lim_buf vv = LIM_BUF_INIT;
	int rc = lim_db_version_vector(&vv, c->db);

	if (rc != 0)
		return cli_fail_lim(c, rc);
	if (vv.size)
		fwrite(vv.ptr, 1, vv.size, stdout);
	lim_buf_dispose(&vv);
	return CLI_EXIT_OK;
}
