/*
 * fuzz_pack: the pack reader (repl.c lim_db_import): the line reader, the
 * header/END/checksum handling and, for each change line, the whole apply
 * path (parse, duplicate/equivocation/gap/chain/clock/signature checks,
 * store, merge) on a fresh :memory: store.
 *
 * Input: the bytes of a pack file. It is imported twice into the same
 * store: first handed over in the reader's full buffer size, then in small
 * chunks whose sizes come from the input (so lines straddle reads and the
 * reader's buffer moves and grows). Checks beyond "no crash":
 *   - all or nothing: a refused import leaves the state digest unchanged;
 *   - the second import of a pack that was accepted applies nothing new;
 *     one that was refused is refused again with the same error (how the
 *     bytes are chunked must not matter);
 *   - after any import the store verifies (chains, signatures, and the
 *     materialized state equals a rebuild from the log).
 */
#include "fuzz_common.h"

typedef struct {
	const char *p;
	size_t n, off;
	size_t step; /* 0: as much as asked for */
	uint32_t x;
} pack_src;

static long pack_read(void *ctx, char *buf, size_t cap)
{
	pack_src *s = ctx;
	size_t k = s->n - s->off;
	if (k > cap)
		k = cap;
	if (s->step) {
		s->x = s->x * 1103515245u + 12345u;
		size_t want = 1 + (s->x >> 16) % s->step;
		if (k > want)
			k = want;
	}
	memcpy(buf, s->p + s->off, k);
	s->off += k;
	return (long)k;
}

static int pack_import(lim_db *db, const uint8_t *data, size_t size, size_t step, lim_apply_stats *st)
{
	pack_src src = { (const char *)data, size, 0, step, (uint32_t)size };
	char before[65], after[65];
	int rc;
	memset(st, 0, sizeof(*st));
	FUZZ_CHECK(lim_db_digest(db, before) == 0, "digest");
	rc = lim_db_import(db, pack_read, &src, st);
	FUZZ_CHECK(lim_db_digest(db, after) == 0, "digest");
	if (rc < 0)
		FUZZ_CHECK(strcmp(before, after) == 0, "a refused pack (%s) changed the state", lim_error_name(rc));
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	lim_db *db;
	lim_apply_stats st1, st2;
	int rc1, rc2;

	fuzz_begin();
	db = fuzz_open_db();
	rc1 = pack_import(db, data, size, 0, &st1);
	rc2 = pack_import(db, data, size, size % 61 + 1, &st2);
	if (rc1 == 0) {
		FUZZ_CHECK(rc2 == 0, "an accepted pack is refused the second time: %s", lim_error_name(rc2));
		FUZZ_CHECK(st2.applied == 0 && st2.duplicates == st1.applied + st1.duplicates,
		           "second import applied %zu, %zu duplicates (first: %zu + %zu)", st2.applied,
		           st2.duplicates, st1.applied, st1.duplicates);
	}
	else {
		/* Nothing changed, so the same bytes read in other chunks must be
		 * refused the same way. */
		FUZZ_CHECK(rc2 == rc1, "the pack is refused with %s, then with %s when read in small chunks",
		           lim_error_name(rc1), lim_error_name(rc2));
	}
	if (rc1 == 0)
		fuzz_check_store(db, "an import");
	lim_db_free(db);
	return 0;
}
