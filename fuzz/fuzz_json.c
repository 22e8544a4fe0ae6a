/*
 * fuzz_json: the JSON input path (json_put.c lim_db_put_json, then
 * lim_db__put_values, the local change builder and the merge layer) on a
 * fresh :memory: store, and the JSON output path that reads it back.
 *
 * Input: "<collection>\0<document>\0<json>"; without two NUL bytes the
 * whole input is the JSON and the names are "c" and "d" (so plain JSON
 * files are seeds as they are). Checks beyond "no crash":
 *   - a refused write changes nothing (state digest unchanged);
 *   - an accepted write leaves a store that verifies;
 *   - round trip: the document read back as JSON, written into another
 *     document, reads back identically (put/get agree on every value).
 */
#include "fuzz_common.h"

static void json_digest(lim_db *db, char out[65])
{
	FUZZ_CHECK(lim_db_digest(db, out) == 0, "digest");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	const char *z1 = memchr(p, '\0', size), *z2 = NULL;
	char *coll, *doc;
	const char *json;
	size_t json_len;
	lim_db *db;
	char before[65], after[65];
	int rc;

	fuzz_begin();
	if (z1)
		z2 = memchr(z1 + 1, '\0', size - (size_t)(z1 + 1 - p));
	if (z2) {
		coll = strndup(p, (size_t)(z1 - p));
		doc = strndup(z1 + 1, (size_t)(z2 - z1 - 1));
		json = z2 + 1;
		json_len = size - (size_t)(z2 + 1 - p);
	} else {
		coll = strdup("c");
		doc = strdup("d");
		json = p;
		json_len = size;
	}
	if (!coll || !doc)
		abort();

	db = fuzz_open_db();
	json_digest(db, before);
	rc = lim_db_put_json(db, coll, doc, json, json_len);
	json_digest(db, after);
	if (rc < 0) {
		FUZZ_CHECK(rc == LIM_EINVALID, "put_json failed with %s", lim_error_name(rc));
		FUZZ_CHECK(strcmp(before, after) == 0, "a refused write changed the state");
	} else {
		lim_buf got = LIM_BUF_INIT, again = LIM_BUF_INIT;
		fuzz_check_store(db, "put_json");
		rc = lim_db_get_json(&got, db, coll, doc, NULL);
		if (rc == 0) {
			/* The collection name may be at its length limit: copy into a
			 * sibling document of the same collection instead. */
			const char *copy = strcmp(doc, "copy") == 0 ? "copy2" : "copy";
			rc = lim_db_put_json(db, coll, copy, got.ptr, got.size);
			FUZZ_CHECK(rc == 0, "JSON read back does not write back: %s", got.ptr);
			FUZZ_CHECK(lim_db_get_json(&again, db, coll, copy, NULL) == 0, "copy does not read back");
			FUZZ_CHECK(got.size == again.size && memcmp(got.ptr, again.ptr, got.size) == 0,
			           "round trip differs:\n  first:  %s\n  second: %s", got.ptr, again.ptr);
		} else {
			/* Nothing visible: the JSON had no leaves ({} or only {}s). */
			FUZZ_CHECK(rc == LIM_ENOTFOUND, "get_json after put_json: %s", lim_error_name(rc));
		}
		lim_buf_dispose(&got);
		lim_buf_dispose(&again);
	}
	lim_db_free(db);
	free(coll);
	free(doc);
	return 0;
}
