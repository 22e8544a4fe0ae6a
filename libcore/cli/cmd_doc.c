/*
 * cmd_doc.c — commands on documents and fields: put, get, del, incr,
 * sadd, srem, ls. Each write is one change, durable when lim exits 0.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* args: COLL DOC JSON_OBJECT ("-" reads standard input) */
int cli_cmd_put(struct cli *c)
{
	const char *json = c->args[2];
	char *owned = NULL;
	size_t len;
	int rc;

	if (strcmp(json, "-") == 0) {
		if (cli_read_file("-", LIM_MAX_JSON_BYTES, &owned, &len) != 0)
			return cli_fail(c, errno == EFBIG ? CLI_EXIT_INVALID : CLI_EXIT_FAILURE,
			                "reading standard input: %s",
			                errno == EFBIG ? "larger than LIM_MAX_JSON_BYTES" : strerror(errno));
		json = owned;
	} else {
		len = strlen(json);
	}
	rc = lim_db_put_json(c->db, c->args[0], c->args[1], json, len);
	free(owned);
	return rc ? cli_fail_lim(c, rc) : CLI_EXIT_OK;
}

/* args: COLL DOC [FIELD] */
int cli_cmd_get(struct cli *c)
{
	lim_buf out = LIM_BUF_INIT;
	int rc = lim_db_get_json(&out, c->db, c->args[0], c->args[1],
	                         c->nargs > 2 ? c->args[2] : NULL);

	if (rc != 0)
		return cli_fail_lim(c, rc);
	fwrite(out.ptr, 1, out.size, stdout);
	putchar('\n');
	lim_buf_dispose(&out);
	return CLI_EXIT_OK;
}

/* args: COLL DOC [FIELD] */
int cli_cmd_del(struct cli *c)
{
	int rc = lim_db_delete(c->db, c->args[0], c->args[1], c->nargs > 2 ? c->args[2] : NULL);

	return rc ? cli_fail_lim(c, rc) : CLI_EXIT_OK;
}

/* incr's check, before the store is opened: N is a decimal int64. */
int cli_check_incr(struct cli *c)
{
	if (cli_parse_int64(c->args[3], &c->delta) != 0)
		return cli_usage_error(c, "N must be a decimal 64-bit integer, not '%.40s'", c->args[3]);
	return CLI_EXIT_OK;
}

/* args: COLL DOC FIELD N */
int cli_cmd_incr(struct cli *c)
{
	int rc = lim_db_incr(c->db, c->args[0], c->args[1], c->args[2], c->delta);

	return rc ? cli_fail_lim(c, rc) : CLI_EXIT_OK;
}

/* sadd/srem's check: JSON_VALUE must be one of the forms of value.c. */
int cli_check_value(struct cli *c)
{
	char err[256];

	if (cli_value_parse(&c->value, c->args[3], err, sizeof err) != 0)
		return cli_fail(c, CLI_EXIT_INVALID, "JSON_VALUE: %s", err);
	return CLI_EXIT_OK;
}

/* args: COLL DOC FIELD JSON_VALUE (parsed into c->value); add != 0 for sadd. */
static int set_op(struct cli *c, int add)
{
	int rc = add ? lim_db_set_add(c->db, c->args[0], c->args[1], c->args[2], &c->value.v)
	             : lim_db_set_remove(c->db, c->args[0], c->args[1], c->args[2], &c->value.v);

	return rc ? cli_fail_lim(c, rc) : CLI_EXIT_OK;
}

int cli_cmd_sadd(struct cli *c)
{
	return set_op(c, 1);
}

int cli_cmd_srem(struct cli *c)
{
	return set_op(c, 0);
}

/* args: COLL; --prefix, --limit. Streams keys; never holds them all. */
int cli_cmd_ls(struct cli *c)
{
	lim_doc_iter *it = NULL;
	const char *key;
	size_t n = 0;
	int status, rc = lim_db_docs(&it, c->db, c->args[0], c->prefix, NULL);

	if (rc != 0)
		return cli_fail_lim(c, rc);
	while ((c->limit == 0 || n < c->limit) && (rc = lim_doc_iter_next(it, &key)) == 0) {
		puts(key);
		n++;
	}
	status = rc != 0 && rc != LIM_EITEROVER ? cli_fail_lim(c, rc) : CLI_EXIT_OK;
	lim_doc_iter_free(it);
	return status;
}
