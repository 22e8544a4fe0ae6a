/*
 * cmd_log.c — `lim log`: the change log, oldest first, one line each:
 *
 *   AUTHOR16 SEQ MS.COUNTER OPS
 *
 * AUTHOR16 is the first 16 hex characters of the author id (enough to tell
 * replicas apart at a glance; `lim vv` has the full ids), MS.COUNTER the
 * change's hybrid logical clock, and OPS the ops of the change as they
 * appear in its canonical encoding (protocol-spec/changes.md):
 *
 *   lim1 AUTHOR SEQ HLC PREV NOPS OP... SIGNATURE
 *
 * i.e. without the header fields already shown and without the prev link
 * and signature, which are noise to a reader. With --raw the whole
 * canonical line is printed instead, exactly as stored and exported. A
 * line that does not have the expected shape is printed whole.
 * Streams from the library's iterator; nothing is held in memory.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

/* The OPS part of an encoded change, or the whole bytes if the shape is
 * not the one above. */
static void ops_of(const char *p, size_t n, const char **ops, size_t *len)
{
	const char *end = p + n, *q = p, *last;
	int fields = 0;

	*ops = p;
	*len = n;
	if (n < 5 || memcmp(p, "lim1 ", 5) != 0)
		return;
	while (fields < 6) { /* skip lim1 AUTHOR SEQ HLC PREV NOPS */
		q = memchr(q, ' ', (size_t)(end - q));
		if (!q)
			return;
		q++;
		fields++;
	}
	for (last = end; last > q && last[-1] != ' '; last--)
		;
	if (last <= q) /* no ops before the signature */
		return;
	*ops = q;
	*len = (size_t)(last - 1 - q);
}

int cli_cmd_log(struct cli *c)
{
	lim_log_iter *it = NULL;
	lim_change_info info;
	int status, rc = lim_db_log(&it, c->db, c->limit);

	if (rc != 0)
		return cli_fail_lim(c, rc);
	while ((rc = lim_log_iter_next(it, &info)) == 0) {
		const char *ops = info.bytes;
		size_t len = info.len;

		if (!c->raw)
			ops_of(info.bytes, info.len, &ops, &len);
		printf("%.16s %" PRIu64 " %" PRIu64 ".%" PRIu64 " %.*s\n", info.author, info.seq,
		       info.hlc >> 16, info.hlc & 0xffff, (int)len, ops);
	}
	status = rc != LIM_EITEROVER ? cli_fail_lim(c, rc) : CLI_EXIT_OK;
	lim_log_iter_free(it);
	return status;
}
