/*
 * lim_db_put_json: merge a JSON object into a document, one field per leaf.
 * Parsing is SQLite's json_tree(); this file only walks its rows. Rows come
 * in document order (a parent before its children), so the path of the
 * innermost open object is enough to name each leaf. The whole input is
 * checked before anything is written, so bad JSON never half-applies.
 */
#include <math.h>
#include <sodium.h>
#include <stdlib.h>
#include "db.h"
#include "text.h"

#define JSON_TREE_SQL                                                                \
	"SELECT id, parent, key, type, atom,"                                            \
	" CASE WHEN type = 'object' THEN (SELECT count(*) FROM json_each(t.value)) END," \
	" CASE WHEN type = 'object' THEN json_type(t.value, '$.\"$base64\"') END,"       \
	" CASE WHEN type = 'object' THEN json_extract(t.value, '$.\"$base64\"') END"     \
	" FROM json_tree(?1) AS t"

typedef struct {
	int64_t id;
	size_t path_len; /* this object's path is cur_path[0, path_len) */
	int is_bytes;    /* a {"$base64": ...} wrapper: its member is not a field */
} frame;

typedef struct {
	lim_value value;
	size_t path_off;
	size_t payload_off; /* strings and bytes live in the payload buffer */
} leaf;

static int bad_json(const char *what)
{
	return lim__error(LIM_EINVALID, "invalid JSON input: %s", what);
}

typedef struct {
	lim_sb cur_path;  /* path of the innermost open object */
	lim_sb paths;     /* NUL-separated leaf paths */
	lim_sb payload;   /* string and byte payloads */
	leaf *leaves;
	size_t n, cap;
} walk;

static int add_leaf(walk *w, const lim_value *v, const char *payload, size_t payload_len)
{
	if (w->n == w->cap) {
		size_t cap = w->cap ? 2 * w->cap : 16;
		leaf *g = realloc(w->leaves, cap * sizeof(*g));
		if (!g)
			return lim__error(LIM_ENOMEM, "out of memory");
		w->leaves = g;
		w->cap = cap;
	}
	w->leaves[w->n].value = *v;
	w->leaves[w->n].path_off = w->paths.len;
	w->leaves[w->n].payload_off = w->payload.len;
	lim_sb__put(&w->paths, w->cur_path.ptr, w->cur_path.len + 1);
	if (payload_len)
		lim_sb__put(&w->payload, payload, payload_len);
	w->n++;
	return lim_sb__check(&w->paths) < 0 || lim_sb__check(&w->payload) < 0 ? LIM_ENOMEM : 0;
}

static int decode_bytes(walk *w, lim_value *v, const char *b64, size_t b64_len)
{
	size_t bin_len = 0;
	unsigned char *bin = malloc(b64_len + 1);
	int rc;
	if (!bin)
		return lim__error(LIM_ENOMEM, "out of memory");
	if (sodium_base642bin(bin, b64_len + 1, b64, b64_len, NULL, &bin_len, NULL,
	                      sodium_base64_VARIANT_ORIGINAL) != 0) {
		free(bin);
		return bad_json("a {\"$base64\": ...} value is not valid base64");
	}
	v->type = LIM_BYTES;
	v->len = bin_len;
	rc = v->len > LIM_MAX_VALUE_BYTES ? lim__error(LIM_EINVALID, "a bytes value is over %d bytes", LIM_MAX_VALUE_BYTES)
	                                  : add_leaf(w, v, (const char *)bin, bin_len);
	free(bin);
	return rc;
}

static int scalar_leaf(walk *w, sqlite3_stmt *q, const char *type)
{
	lim_value v;
	memset(&v, 0, sizeof(v));
	if (strcmp(type, "null") == 0) {
		v.type = LIM_NULL;
	} else if (strcmp(type, "true") == 0 || strcmp(type, "false") == 0) {
		v.type = LIM_BOOL;
		v.boolean = type[0] == 't';
	} else if (strcmp(type, "integer") == 0) {
		/* SQLite types an integer literal beyond int64 as "integer" but
		 * hands back an approximate real: refuse rather than round. */
		if (sqlite3_column_type(q, 4) != SQLITE_INTEGER)
			return bad_json("an integer is outside the 64-bit range (store it as a string)");
		v.type = LIM_INT;
		v.integer = sqlite3_column_int64(q, 4);
	} else if (strcmp(type, "real") == 0) {
		v.type = LIM_FLOAT;
		v.real = sqlite3_column_double(q, 4);
		/* An integer literal beyond int64 arrives as type "integer" (refused
		 * above); a real is stored as the double it reads as, unless it
		 * overflows to infinity ("1e999"). */
		if (!isfinite(v.real))
			return bad_json("a number is out of range");
	} else if (strcmp(type, "text") == 0) {
		const char *s = (const char *)sqlite3_column_text(q, 4);
		v.type = LIM_STRING;
		v.len = (size_t)sqlite3_column_bytes(q, 4);
		if (v.len > LIM_MAX_VALUE_BYTES)
			return lim__error(LIM_EINVALID, "a string value is %zu bytes; the limit is %d", v.len, LIM_MAX_VALUE_BYTES);
		if (!lim_utf8__valid(s, v.len))
			return bad_json("a string is not valid UTF-8 after unescaping");
		return add_leaf(w, &v, s, v.len);
	} else if (strcmp(type, "array") == 0) {
		return bad_json("arrays are not supported (use a set field, or store the array as a string)");
	} else {
		return bad_json("unknown JSON type");
	}
	return add_leaf(w, &v, NULL, 0);
}

static int walk_tree(walk *w, sqlite3_stmt *q)
{
	frame stack[LIM_MAX_PATH_DEPTH + 2];
	size_t depth = 0;
	int rc;

	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		int64_t id = sqlite3_column_int64(q, 0), parent = sqlite3_column_int64(q, 1);
		const char *type = (const char *)sqlite3_column_text(q, 3);
		const char *key = (const char *)sqlite3_column_text(q, 2);
		size_t key_len = (size_t)sqlite3_column_bytes(q, 2);

		if (sqlite3_column_type(q, 1) == SQLITE_NULL) {
			if (strcmp(type, "object") != 0)
				return bad_json("the top level must be an object");
			stack[0] = (frame){ id, 0, 0 };
			depth = 1;
			continue;
		}
		while (depth > 0 && stack[depth - 1].id != parent)
			depth--;
		if (depth == 0)
			return bad_json("unexpected structure");
		if (stack[depth - 1].is_bytes)
			continue;
		if (sqlite3_column_type(q, 2) != SQLITE_TEXT)
			return bad_json("arrays are not supported (use a set field, or store the array as a string)");
		if (key_len == 0)
			return bad_json("an object key is empty");
		if (strlen(key) != key_len)
			return bad_json("an object key contains a NUL character");
		if (memchr(key, '.', key_len))
			return lim__error(LIM_EINVALID, "invalid JSON input: key \"%s\" contains '.', which separates path segments", key);

		w->cur_path.len = stack[depth - 1].path_len;
		if (w->cur_path.len)
			lim_sb__putc(&w->cur_path, '.');
		lim_sb__put(&w->cur_path, key, key_len);
		if ((rc = lim_sb__check(&w->cur_path)) < 0)
			return rc;
		if ((rc = lim_name__check_path(w->cur_path.ptr, w->cur_path.len)) < 0)
			return lim__error_prefix(LIM_EINVALID, "invalid JSON input");

		if (strcmp(type, "object") == 0) {
			const char *b64type = (const char *)sqlite3_column_text(q, 6);
			int is_bytes = sqlite3_column_int64(q, 5) == 1 && b64type && strcmp(b64type, "text") == 0;
			if (depth > LIM_MAX_PATH_DEPTH)
				return lim__error(LIM_EINVALID, "invalid JSON input: nested deeper than %d levels", LIM_MAX_PATH_DEPTH);
			stack[depth++] = (frame){ id, w->cur_path.len, is_bytes };
			if (is_bytes) {
				lim_value v;
				memset(&v, 0, sizeof(v));
				if ((rc = decode_bytes(w, &v, (const char *)sqlite3_column_text(q, 7),
				                       (size_t)sqlite3_column_bytes(q, 7))) < 0)
					return rc;
			}
			continue;
		}
		if ((rc = scalar_leaf(w, q, type)) < 0)
			return rc;
	}
	return rc == SQLITE_DONE ? 0 : bad_json("the text is not well-formed JSON");
}

/* \u0000 is an escape only when preceded by an odd run of backslashes
 * ("\\u0000" is a backslash followed by text). */
static int has_nul_escape(const char *p, size_t n)
{
	for (size_t i = 0; i + 6 <= n; i++) {
		size_t run = 0;
		if (p[i] != '\\' || memcmp(p + i + 1, "u0000", 5) != 0)
			continue;
		while (run <= i && p[i - run] == '\\')
			run++;
		if (run % 2 == 1)
			return 1;
	}
	return 0;
}

int lim_db_put_json(lim_db *db, const char *coll, const char *doc, const char *json, size_t json_len)
{
	walk w;
	sqlite3_stmt *q = NULL;
	const char **paths = NULL;
	lim_value *vals = NULL;
	int rc;

	if (!db || !json)
		return lim__error(LIM_EINVALID, "NULL argument");
	if (json_len > LIM_MAX_JSON_BYTES)
		return lim__error(LIM_EINVALID, "JSON input is %zu bytes; the limit is %d", json_len, LIM_MAX_JSON_BYTES);
	if (!lim_utf8__valid(json, json_len))
		return bad_json("not valid UTF-8");
	if (has_nul_escape(json, json_len))
		return bad_json("a string holds \\u0000, which SQLite's JSON functions cut short; "
		                "set such a value with lim_db_set instead");
	memset(&w, 0, sizeof(w));
	LIM_DB_LOCK(db);
	rc = sqlite3_prepare_v2(db->st.sql, "SELECT json_valid(?1)", -1, &q, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_text(q, 1, json, (int)json_len, SQLITE_STATIC);
		rc = sqlite3_step(q) == SQLITE_ROW && sqlite3_column_int(q, 0) ? 0 : bad_json("the text is not well-formed JSON");
		sqlite3_finalize(q);
		q = NULL;
	} else {
		rc = lim_store__error(&db->st, rc, "parsing JSON");
	}
	if (rc == 0 && (rc = sqlite3_prepare_v2(db->st.sql, JSON_TREE_SQL, -1, &q, NULL)) != SQLITE_OK)
		rc = lim_store__error(&db->st, rc, "parsing JSON");
	if (rc == 0) {
		sqlite3_bind_text(q, 1, json, (int)json_len, SQLITE_STATIC);
		rc = walk_tree(&w, q);
	}
	sqlite3_finalize(q);
	LIM_DB_UNLOCK(db);

	if (rc == 0 && w.n) {
		paths = calloc(w.n, sizeof(*paths));
		vals = calloc(w.n, sizeof(*vals));
		if (!paths || !vals)
			rc = lim__error(LIM_ENOMEM, "out of memory");
	}
	for (size_t i = 0; rc == 0 && i < w.n; i++) {
		paths[i] = w.paths.ptr + w.leaves[i].path_off;
		vals[i] = w.leaves[i].value;
		if (vals[i].type == LIM_STRING || vals[i].type == LIM_BYTES)
			vals[i].str = w.payload.ptr ? w.payload.ptr + w.leaves[i].payload_off : "";
	}
	if (rc == 0)
		rc = lim_db__put_values(db, coll, doc, w.n, paths, vals);
	free(paths);
	free(vals);
	free(w.leaves);
	lim_sb__free(&w.cur_path);
	lim_sb__free(&w.paths);
	lim_sb__free(&w.payload);
	return rc;
}
