/* The change log in arrival order, for `lim log` and bindings. */
#include <stdlib.h>
#include "db.h"
#include "text.h"

struct lim_log_iter {
	lim_db *db;
	sqlite3_stmt *q;
	lim_sb bytes;
};

int lim_db_log(lim_log_iter **out, lim_db *db, size_t limit)
{
	static const char SQL[] =
		"SELECT a.pubkey, c.seq, c.hlc, c.body FROM"
		" (SELECT * FROM changes ORDER BY id DESC LIMIT ?1) c JOIN authors a ON a.id = c.author ORDER BY c.id";
	lim_log_iter *it;
	int rc;
	if (!out || !db)
		return lim__error(LIM_EINVALID, "NULL argument");
	*out = NULL;
	if (!(it = calloc(1, sizeof(*it))))
		return lim__error(LIM_ENOMEM, "out of memory");
	it->db = db;
	LIM_DB_LOCK(db);
	rc = sqlite3_prepare_v2(db->st.sql, SQL, -1, &it->q, NULL);
	if (rc == SQLITE_OK)
		sqlite3_bind_int64(it->q, 1, limit ? (sqlite3_int64)limit : -1);
	LIM_DB_UNLOCK(db);
	if (rc != SQLITE_OK) {
		rc = lim_store__error(&db->st, rc, "reading the change log");
		free(it);
		return rc;
	}
	*out = it;
	return 0;
}

int lim_log_iter_next(lim_log_iter *it, lim_change_info *out)
{
	int rc;
	if (!it || !out)
		return lim__error(LIM_EINVALID, "NULL argument");
	LIM_DB_LOCK(it->db);
	rc = sqlite3_step(it->q);
	if (rc == SQLITE_ROW) {
		if (sqlite3_column_bytes(it->q, 0) == LIM_ID_BYTES)
			lim_hex__encode(out->author, sqlite3_column_blob(it->q, 0), LIM_ID_BYTES);
		else
			out->author[0] = '\0';
		out->seq = (uint64_t)sqlite3_column_int64(it->q, 1);
		out->hlc = (uint64_t)sqlite3_column_int64(it->q, 2);
		lim_sb__clear(&it->bytes);
		lim_sb__put(&it->bytes, sqlite3_column_blob(it->q, 3), (size_t)sqlite3_column_bytes(it->q, 3));
		out->bytes = it->bytes.ptr;
		out->len = it->bytes.len;
		rc = lim_sb__check(&it->bytes);
	} else if (rc == SQLITE_DONE) {
		rc = LIM_EITEROVER;
	} else {
		rc = lim_store__error(&it->db->st, rc, "reading the change log");
	}
	LIM_DB_UNLOCK(it->db);
	return rc;
}

void lim_log_iter_free(lim_log_iter *it)
{
	if (!it)
		return;
	LIM_DB_LOCK(it->db);
	sqlite3_finalize(it->q);
	LIM_DB_UNLOCK(it->db);
	lim_sb__free(&it->bytes);
	free(it);
}
