/*
 * The state digest, rebuilding materialized state from the log, and
 * verification of a whole store. Verification streams the log in
 * (author, seq) order, so its memory does not grow with the log; the
 * rebuild it compares against runs inside a savepoint that is rolled back,
 * leaving the store exactly as it was.
 */
#include <stdlib.h>
#include <sodium.h>
#include "db.h"
#include "text.h"

int lim_db_digest(lim_db *db, char out[65])
{
	unsigned char d[LIM_HASH_BYTES];
	int rc;
	if (!db || !out)
		return lim__error(LIM_EINVALID, "NULL argument");
	LIM_DB_LOCK(db);
	rc = lim_merge__digest(&db->st, 0, d);
	LIM_DB_UNLOCK(db);
	if (rc == 0)
		lim_hex__encode(out, d, LIM_HASH_BYTES);
	return rc;
}

/* Replay every change's ops into the (emptied) materialized tables. */
static int replay_log(lim_db *db)
{
	static const char SQL[] = "SELECT body FROM changes ORDER BY author, seq";
	sqlite3_stmt *q;
	lim_change c;
	int rc;
	if ((rc = lim_merge__reset(&db->st)) < 0)
		return rc;
	if ((rc = sqlite3_prepare_v2(db->st.sql, SQL, -1, &q, NULL)) != SQLITE_OK)
		return lim_store__error(&db->st, rc, "reading the change log");
	rc = 0;
	while (rc == 0 && sqlite3_step(q) == SQLITE_ROW) {
		rc = lim_change__parse(&c, sqlite3_column_blob(q, 0), (size_t)sqlite3_column_bytes(q, 0));
		if (rc < 0)
			break;
		for (size_t i = 0; i < c.nops && rc == 0; i++)
			rc = lim_merge__apply(&db->merge, &c.ops[i], c.hlc, c.author, c.seq, (uint32_t)i);
		lim_change__dispose(&c);
	}
	sqlite3_finalize(q);
	return rc;
}

int lim_db_rebuild(lim_db *db)
{
	int rc;
	if (!db)
		return lim__error(LIM_EINVALID, "NULL argument");
	LIM_DB_LOCK(db);
	if (db->txn_open)
		rc = lim__error(LIM_ETXN, "cannot rebuild while a transaction is open");
	else if ((rc = lim_db__check_writable(db)) == 0 && (rc = lim_store__begin(&db->st)) == 0) {
		rc = replay_log(db);
		if (rc < 0)
			lim_store__rollback(&db->st);
		else
			rc = lim_store__commit(&db->st);
	}
	LIM_DB_UNLOCK(db);
	return rc;
}

static int corrupt_change(const unsigned char author[LIM_ID_BYTES], uint64_t seq, const char *what)
{
	char who[17];
	lim_hex__encode(who, author, 8);
	return lim__error(LIM_ECORRUPT, "change %s.../%llu: %s", who, (unsigned long long)seq, what);
}

/* Every change: canonical form, stored hash, chain link (prev = the link
 * of the change before, which covers its signature bytes), increasing HLC,
 * signature; every author entry: matches the end of its chain. */
static int verify_log(lim_db *db)
{
	static const char SQL[] =
		"SELECT a.pubkey, a.max_seq, a.head_link, a.head_hlc, c.seq, c.hlc, c.hash, c.body"
		" FROM authors a LEFT JOIN changes c ON c.author = a.id ORDER BY a.id, c.seq";
	sqlite3_stmt *q;
	unsigned char author[LIM_ID_BYTES], prev[LIM_HASH_BYTES], hash[LIM_HASH_BYTES];
	uint64_t expect_seq = 0, prev_hlc = 0, max_seq = 0, head_hlc = 0;
	unsigned char head[LIM_HASH_BYTES];
	int have_author = 0, rc, step;
	lim_change c;

#define CLOSE_AUTHOR()                                                                        \
	do {                                                                                      \
		if (have_author && (expect_seq - 1 != max_seq || memcmp(prev, head, LIM_HASH_BYTES) || \
		                    prev_hlc != head_hlc)) {                                          \
			rc = corrupt_change(author, max_seq, "the author entry does not match its chain"); \
			goto out;                                                                         \
		}                                                                                     \
	} while (0)

	if ((rc = sqlite3_prepare_v2(db->st.sql, SQL, -1, &q, NULL)) != SQLITE_OK)
		return lim_store__error(&db->st, rc, "reading the change log");
	rc = 0;
	while ((step = sqlite3_step(q)) == SQLITE_ROW) {
		const void *key = sqlite3_column_blob(q, 0);
		if (sqlite3_column_bytes(q, 0) != LIM_ID_BYTES || sqlite3_column_bytes(q, 2) != LIM_HASH_BYTES) {
			rc = lim__error(LIM_ECORRUPT, "an author entry is damaged");
			goto out;
		}
		if (!have_author || memcmp(key, author, LIM_ID_BYTES) != 0) {
			CLOSE_AUTHOR();
			memcpy(author, key, LIM_ID_BYTES);
			max_seq = (uint64_t)sqlite3_column_int64(q, 1);
			memcpy(head, sqlite3_column_blob(q, 2), LIM_HASH_BYTES);
			head_hlc = (uint64_t)sqlite3_column_int64(q, 3);
			memset(prev, 0, sizeof(prev));
			expect_seq = 1;
			prev_hlc = 0;
			have_author = 1;
		}
		if (sqlite3_column_type(q, 4) == SQLITE_NULL)
			continue; /* an author with no changes yet */
		uint64_t seq = (uint64_t)sqlite3_column_int64(q, 4);
		if ((rc = lim_change__parse(&c, sqlite3_column_blob(q, 7), (size_t)sqlite3_column_bytes(q, 7))) < 0) {
			rc = lim__error_prefix(LIM_ECORRUPT, "stored change of seq %llu", (unsigned long long)seq);
			goto out;
		}
		lim_change__hash(hash, c.bytes, c.body_len);
		if (memcmp(c.author, author, LIM_ID_BYTES) || c.seq != seq || c.seq != expect_seq)
			rc = corrupt_change(author, seq, "stored under the wrong author or seq, or the chain has a gap");
		else if (sqlite3_column_bytes(q, 6) != LIM_HASH_BYTES || memcmp(sqlite3_column_blob(q, 6), hash, LIM_HASH_BYTES))
			rc = corrupt_change(author, seq, "its stored hash does not match its bytes");
		else if (memcmp(c.prev, prev, LIM_HASH_BYTES))
			rc = corrupt_change(author, seq, "its prev does not match the link of the previous change");
		else if (c.hlc <= prev_hlc || (uint64_t)sqlite3_column_int64(q, 5) != c.hlc)
			rc = corrupt_change(author, seq, "its timestamp is out of order or does not match the log");
		else if (lim_change__verify(&c, hash) != 0)
			rc = corrupt_change(author, seq, "its signature does not verify");
		lim_change__link(prev, hash, c.sig);
		lim_change__dispose(&c);
		if (rc < 0)
			goto out;
		prev_hlc = c.hlc;
		expect_seq++;
	}
	if (step != SQLITE_DONE) {
		rc = lim_store__error(&db->st, step, "reading the change log");
		goto out;
	}
	CLOSE_AUTHOR();
out:
	sqlite3_finalize(q);
	return rc;
#undef CLOSE_AUTHOR
}

int lim_db_verify(lim_db *db)
{
	unsigned char before[LIM_HASH_BYTES], rebuilt[LIM_HASH_BYTES];
	int rc;
	if (!db)
		return lim__error(LIM_EINVALID, "NULL argument");
	LIM_DB_LOCK(db);
	if (db->txn_open) {
		rc = lim__error(LIM_ETXN, "cannot verify while a transaction is open");
		goto out;
	}
	if ((rc = lim_store__begin(&db->st)) < 0)
		goto out;
	rc = verify_log(db);
	if (rc == 0)
		rc = lim_merge__digest(&db->st, 1, before);
	if (rc == 0)
		rc = replay_log(db);
	if (rc == 0)
		rc = lim_merge__digest(&db->st, 1, rebuilt);
	/* The rebuild was only for comparison: undo it. */
	lim_store__rollback(&db->st);
	if (rc == 0 && memcmp(before, rebuilt, LIM_HASH_BYTES) != 0)
		rc = lim__error(LIM_ECORRUPT, "the materialized state differs from a rebuild from the change log");
out:
	LIM_DB_UNLOCK(db);
	return rc;
}
