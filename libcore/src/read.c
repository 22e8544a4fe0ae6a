/*
 * Reads: one field (typed), a document or subtree as JSON, and the keys of
 * a collection. A point read is one cached SELECT on the fields table's
 * primary key (plus one for a set's elements).
 */
#include <stdlib.h>
#include "db.h"
#include "value.h"

struct lim_field {
	lim_kind kind;
	lim_value value;      /* register, or counter sum */
	size_t count;         /* set elements */
	lim_value *elems;
	lim_sb storage;       /* payloads of value and elems */
	size_t *offsets;      /* payload offset per element (fixed up at the end) */
};

static int check_key(const char *coll, const char *doc, const char *path)
{
	int rc;
	if (!coll || !doc)
		return lim__error(LIM_EINVALID, "collection and document must not be NULL");
	if ((rc = lim_name__check_coll(coll, strlen(coll))) < 0 || (rc = lim_name__check_doc(doc, strlen(doc))) < 0)
		return rc;
	return path ? lim_name__check_path(path, strlen(path)) : 0;
}

/* Decode a token, copying any payload into f->storage; returns the payload's
 * offset through *off (payload pointers are set once storage stops moving). */
static int decode_into(lim_field *f, const char *tok, size_t n, lim_value *v, size_t *off)
{
	lim_sb scratch = LIM_SB_INIT;
	int rc = lim_value__decode(tok, n, v, &scratch);
	if (rc < 0) {
		lim_sb__free(&scratch);
		return lim__error(LIM_ECORRUPT, "a stored value is not in canonical form");
	}
	*off = f->storage.len;
	if (v->type == LIM_STRING || v->type == LIM_BYTES)
		lim_sb__put(&f->storage, v->str, v->len + 1);
	lim_sb__free(&scratch);
	return lim_sb__check(&f->storage);
}

static int read_set(lim_db *db, lim_field *f, const char *coll, const char *doc, const char *path)
{
	sqlite3_stmt *q = lim_store__stmt(&db->st, LIM_ST_SET_ELEMS);
	size_t cap = 0;
	int rc;
	if (!q)
		return LIM_EIO;
	sqlite3_bind_text(q, 1, coll, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, doc, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 3, path, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		if (f->count == cap) {
			cap = cap ? 2 * cap : 8;
			lim_value *ev = realloc(f->elems, cap * sizeof(*ev));
			size_t *eo = ev ? realloc(f->offsets, cap * sizeof(*eo)) : NULL;
			if (ev)
				f->elems = ev;
			if (eo)
				f->offsets = eo;
			if (!ev || !eo) {
				sqlite3_reset(q);
				return lim__error(LIM_ENOMEM, "out of memory");
			}
		}
		if (decode_into(f, (const char *)sqlite3_column_text(q, 0), (size_t)sqlite3_column_bytes(q, 0),
		                &f->elems[f->count], &f->offsets[f->count]) < 0) {
			sqlite3_reset(q);
			return lim_error_last_code();
		}
		f->count++;
	}
	sqlite3_reset(q);
	if (rc != SQLITE_DONE)
		return lim_store__error(&db->st, rc, "reading a set");
	for (size_t i = 0; i < f->count; i++)
		if (f->elems[i].type == LIM_STRING || f->elems[i].type == LIM_BYTES)
			f->elems[i].str = f->storage.ptr + f->offsets[i];
	return 0;
}

int lim_db_get_field(lim_field **out, lim_db *db, const char *coll, const char *doc, const char *path)
{
	lim_field *f;
	sqlite3_stmt *q;
	int rc;
	size_t off = 0;

	if (!out || !db)
		return lim__error(LIM_EINVALID, "NULL argument");
	*out = NULL;
	if ((rc = check_key(coll, doc, path)) < 0)
		return rc;
	if (!path)
		return lim__error(LIM_EINVALID, "field path must not be NULL");
	if (!(f = calloc(1, sizeof(*f))))
		return lim__error(LIM_ENOMEM, "out of memory");
	LIM_DB_LOCK(db);
	if (!(q = lim_store__stmt(&db->st, LIM_ST_FIELD_READ))) {
		rc = LIM_EIO;
		goto out;
	}
	sqlite3_bind_text(q, 1, coll, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, doc, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 3, path, -1, SQLITE_STATIC);
	rc = sqlite3_step(q);
	if (rc == SQLITE_DONE) {
		sqlite3_reset(q);
		rc = lim__error(LIM_ENOTFOUND, "no field %s in %s/%s", path, coll, doc);
		goto out;
	}
	if (rc != SQLITE_ROW) {
		sqlite3_reset(q);
		rc = lim_store__error(&db->st, rc, "reading a field");
		goto out;
	}
	f->kind = (lim_kind)sqlite3_column_int(q, 0);
	rc = 0;
	if (f->kind == LIM_KIND_REGISTER)
		rc = decode_into(f, (const char *)sqlite3_column_text(q, 1), (size_t)sqlite3_column_bytes(q, 1),
		                 &f->value, &off);
	else if (f->kind == LIM_KIND_COUNTER)
		f->value = (lim_value){ .type = LIM_INT, .integer = sqlite3_column_int64(q, 2) };
	sqlite3_reset(q);
	if (rc == 0 && f->kind == LIM_KIND_SET)
		rc = read_set(db, f, coll, doc, path);
	if (rc == 0 && (f->value.type == LIM_STRING || f->value.type == LIM_BYTES))
		f->value.str = f->storage.ptr + off;
out:
	LIM_DB_UNLOCK(db);
	if (rc < 0) {
		lim_field_free(f);
		return rc;
	}
	*out = f;
	return 0;
}

lim_kind lim_field_kind(const lim_field *f)
{
	return f ? f->kind : (lim_kind)0;
}

int lim_field_value(const lim_field *f, lim_value *out)
{
	if (!f || !out)
		return lim__error(LIM_EINVALID, "NULL argument");
	if (f->kind == LIM_KIND_SET)
		return lim__error(LIM_EINVALID, "the field is a set; read its elements");
	*out = f->value;
	return 0;
}

size_t lim_field_count(const lim_field *f)
{
	return f ? f->count : 0;
}

int lim_field_element(const lim_field *f, size_t i, lim_value *out)
{
	if (!f || !out)
		return lim__error(LIM_EINVALID, "NULL argument");
	if (i >= f->count)
		return lim__error(LIM_EINVALID, "element %zu is out of range (the set has %zu)", i, f->count);
	*out = f->elems[i];
	return 0;
}

void lim_field_free(lim_field *f)
{
	if (!f)
		return;
	free(f->elems);
	free(f->offsets);
	lim_sb__free(&f->storage);
	free(f);
}

int lim_db_get_json(lim_buf *out, lim_db *db, const char *coll, const char *doc, const char *path)
{
	lim_sb sb = LIM_SB_INIT;
	int rc;
	if (!out || !db)
		return lim__error(LIM_EINVALID, "NULL argument");
	out->ptr = NULL;
	out->size = 0;
	if ((rc = check_key(coll, doc, path)) < 0)
		return rc;
	LIM_DB_LOCK(db);
	rc = lim_merge__render(&db->merge, coll, doc, path, &sb);
	LIM_DB_UNLOCK(db);
	if (rc < 0) {
		lim_sb__free(&sb);
		return rc;
	}
	return lim_sb__to_buf(&sb, out);
}

/* ------------------------------------------------------------ documents */

struct lim_doc_iter {
	lim_db *db;
	sqlite3_stmt *q;
	char *prefix;
	size_t prefix_len;
	char *after; /* exclusive lower bound, or NULL */
	lim_sb key;
	int done;
};

int lim_db_docs(lim_doc_iter **out, lim_db *db, const char *coll, const char *prefix, const char *after)
{
	static const char SQL[] = "SELECT DISTINCT doc FROM fields WHERE coll = ?1 AND doc >= ?2 AND kind != 0 ORDER BY doc";
	lim_doc_iter *it;
	int rc;
	const char *start;

	if (!out || !db || !coll)
		return lim__error(LIM_EINVALID, "NULL argument");
	*out = NULL;
	if ((rc = lim_name__check_coll(coll, strlen(coll))) < 0)
		return rc;
	if (!(it = calloc(1, sizeof(*it))))
		return lim__error(LIM_ENOMEM, "out of memory");
	it->db = db;
	it->prefix = strdup(prefix ? prefix : "");
	it->prefix_len = prefix ? strlen(prefix) : 0;
	/* Start at whichever is later: the prefix or just after `after`. */
	start = after && strcmp(after, it->prefix) >= 0 ? after : it->prefix;
	lim_sb__puts(&it->key, start);
	if (!it->prefix || lim_sb__check(&it->key) < 0) {
		lim_doc_iter_free(it);
		return lim__error(LIM_ENOMEM, "out of memory");
	}
	LIM_DB_LOCK(db);
	rc = sqlite3_prepare_v2(db->st.sql, SQL, -1, &it->q, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_text(it->q, 1, coll, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(it->q, 2, it->key.ptr, (int)it->key.len, SQLITE_TRANSIENT);
		rc = 0;
	} else {
		rc = lim_store__error(&db->st, rc, "listing documents");
	}
	LIM_DB_UNLOCK(db);
	if (rc < 0) {
		lim_doc_iter_free(it);
		return rc;
	}
	if (after && start == after && !(it->after = strdup(after))) {
		lim_doc_iter_free(it);
		return lim__error(LIM_ENOMEM, "out of memory");
	}
	*out = it;
	return 0;
}

int lim_doc_iter_next(lim_doc_iter *it, const char **key)
{
	int rc;
	if (!it || !key)
		return lim__error(LIM_EINVALID, "NULL argument");
	for (;;) {
		if (it->done == 1)
			return LIM_EITEROVER;
		LIM_DB_LOCK(it->db);
		rc = sqlite3_step(it->q);
		if (rc == SQLITE_ROW) {
			lim_sb__clear(&it->key);
			lim_sb__put(&it->key, sqlite3_column_text(it->q, 0), (size_t)sqlite3_column_bytes(it->q, 0));
		}
		LIM_DB_UNLOCK(it->db);
		if (rc == SQLITE_DONE) {
			it->done = 1;
			return LIM_EITEROVER;
		}
		if (rc != SQLITE_ROW)
			return lim_store__error(&it->db->st, rc, "listing documents");
		if (lim_sb__check(&it->key) < 0)
			return LIM_ENOMEM;
		if (strncmp(it->key.ptr, it->prefix, it->prefix_len) != 0) {
			it->done = 1;
			return LIM_EITEROVER;
		}
		if (it->after && strcmp(it->key.ptr, it->after) <= 0)
			continue;
		*key = it->key.ptr;
		return 0;
	}
}

void lim_doc_iter_free(lim_doc_iter *it)
{
	if (!it)
		return;
	if (it->q) {
		LIM_DB_LOCK(it->db);
		sqlite3_finalize(it->q);
		LIM_DB_UNLOCK(it->db);
	}
	free(it->prefix);
	free(it->after);
	lim_sb__free(&it->key);
	free(it);
}
