/*
 * The store: opening files (ours, foreign, newer, missing), transactions,
 * and every kind of bad input, each of which must return its own error code
 * with a message and leave the digest and the log exactly as they were.
 */
#include <sqlite3.h>
#include <sys/stat.h>
#include "support.h"

static const unsigned char NETKEY[LIM_NETWORK_KEY_BYTES] = { 1, 2, 3 };

typedef struct {
	char *dir;
	test_clock clk;
	lim_db *db;
} fixture;

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));
	f->dir = make_tmpdir();
	f->clk.now = 1700000000000;
	char *p = path_in(f->dir, "main.db");
	f->db = open_with_clock(p, &f->clk, NETKEY);
	free(p);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;
	lim_db_free(f->db);
	remove_tree(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

/* Snapshot of everything a rejected input must not change. */
typedef struct {
	char digest[65];
	lim_buf vv;
	size_t log_len;
} snapshot;

static size_t log_length(lim_db *db)
{
	lim_log_iter *it;
	lim_change_info info;
	size_t n = 0;
	assert_int_equal(lim_db_log(&it, db, 0), 0);
	while (lim_log_iter_next(it, &info) == 0)
		n++;
	lim_log_iter_free(it);
	return n;
}

static void take(lim_db *db, snapshot *s)
{
	digest_of(db, s->digest);
	assert_int_equal(lim_db_version_vector(&s->vv, db), 0);
	s->log_len = log_length(db);
}

static void assert_unchanged(lim_db *db, snapshot *s)
{
	snapshot now;
	memset(&now, 0, sizeof(now));
	take(db, &now);
	assert_string_equal(now.digest, s->digest);
	assert_int_equal(now.vv.size, s->vv.size);
	assert_memory_equal(now.vv.ptr, s->vv.ptr, s->vv.size);
	assert_int_equal(now.log_len, s->log_len);
	lim_buf_dispose(&now.vv);
	lim_buf_dispose(&s->vv);
}

static void expect_error(int rc, int code, const char *needle)
{
	if (rc != code)
		print_error("expected %s, got %s: %s\n", lim_error_name(code), lim_error_name(rc), lim_error_last());
	assert_int_equal(rc, code);
	assert_int_equal(lim_error_last_code(), code);
	assert_true(strlen(lim_error_last()) > 0);
	if (needle && !strstr(lim_error_last(), needle))
		print_error("message \"%s\" lacks \"%s\"\n", lim_error_last(), needle);
	if (needle)
		assert_non_null(strstr(lim_error_last(), needle));
}

static void seed_data(lim_db *db)
{
	const char *j = "{\"name\":\"Ada\",\"addr\":{\"city\":\"London\"}}";
	assert_int_equal(lim_db_put_json(db, "people", "ada", j, strlen(j)), 0);
	assert_int_equal(lim_db_incr(db, "people", "ada", "visits", 2), 0);
}

/* ------------------------------------------------------------ opening */

static void test_store__open_missing_without_create(void **state)
{
	fixture *f = *state;
	lim_db_options o;
	lim_db *db = (lim_db *)0x1;
	char *p = path_in(f->dir, "missing.db");
	struct stat sb;
	lim_db_options_init(&o, LIM_DB_OPTIONS_VERSION);
	o.create = 0;
	expect_error(lim_db_open(&db, p, &o), LIM_ENOTFOUND, "no store at");
	assert_null(db);
	assert_int_not_equal(stat(p, &sb), 0);
	free(p);
}

static void test_store__open_text_file_is_not_a_store(void **state)
{
	fixture *f = *state;
	lim_db *db;
	char *p = path_in(f->dir, "notes.txt");
	FILE *fp = fopen(p, "w");
	fputs("these are my notes, not a database, and they are long enough to matter\n", fp);
	fclose(fp);
	expect_error(lim_db_open(&db, p, NULL), LIM_ENOTSTORE, "not a liblim store");
	assert_null(db);
	free(p);
}

static void test_store__open_foreign_sqlite_is_refused_untouched(void **state)
{
	fixture *f = *state;
	lim_db *db;
	sqlite3 *s;
	char *p = path_in(f->dir, "other.db");
	struct stat before, after;
	assert_int_equal(sqlite3_open(p, &s), SQLITE_OK);
	assert_int_equal(sqlite3_exec(s, "CREATE TABLE t(x); INSERT INTO t VALUES (1);", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(s);
	assert_int_equal(stat(p, &before), 0);
	expect_error(lim_db_open(&db, p, NULL), LIM_ENOTSTORE, "another program");
	assert_int_equal(stat(p, &after), 0);
	assert_int_equal(before.st_size, after.st_size);
	/* Still a rollback-journal database: we did not switch it to WAL. */
	assert_int_equal(sqlite3_open(p, &s), SQLITE_OK);
	sqlite3_stmt *q;
	sqlite3_prepare_v2(s, "PRAGMA journal_mode", -1, &q, NULL);
	assert_int_equal(sqlite3_step(q), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(q, 0), "delete");
	sqlite3_finalize(q);
	sqlite3_close(s);
	free(p);
}

static void test_store__open_newer_schema_is_refused(void **state)
{
	fixture *f = *state;
	lim_db *db;
	sqlite3 *s;
	char *p = path_in(f->dir, "newer.db");
	assert_int_equal(lim_db_open(&db, p, NULL), 0);
	lim_db_free(db);
	assert_int_equal(sqlite3_open(p, &s), SQLITE_OK);
	assert_int_equal(sqlite3_exec(s, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(s);
	expect_error(lim_db_open(&db, p, NULL), LIM_EVERSION, "newer liblim");
	free(p);
}

static void test_store__open_with_wrong_network_key(void **state)
{
	fixture *f = *state;
	lim_db *db;
	lim_db_options o;
	unsigned char other[LIM_NETWORK_KEY_BYTES] = { 9 };
	char *p = path_in(f->dir, "main.db");
	lim_db_options_init(&o, LIM_DB_OPTIONS_VERSION);
	o.network_key = other;
	expect_error(lim_db_open(&db, p, &o), LIM_EINVALID, "network key");
	free(p);
}

static void test_store__open_bad_options(void **state)
{
	lim_db *db;
	lim_db_options o;
	(void)state;
	lim_db_options_init(&o, LIM_DB_OPTIONS_VERSION);
	o.version = 42;
	expect_error(lim_db_open(&db, ":memory:", &o), LIM_EINVALID, "version");
	lim_db_options_init(&o, LIM_DB_OPTIONS_VERSION);
	o.synchronous = 7;
	expect_error(lim_db_open(&db, ":memory:", &o), LIM_EINVALID, "synchronous");
	expect_error(lim_db_open(&db, "", NULL), LIM_EINVALID, "empty");
	expect_error(lim_db_options_init(&o, 99), LIM_EINVALID, "version");
}

static void test_store__identity_persists_and_network_key(void **state)
{
	fixture *f = *state;
	unsigned char id1[LIM_ID_BYTES], id2[LIM_ID_BYTES], nk[LIM_NETWORK_KEY_BYTES];
	char *p = path_in(f->dir, "main.db");
	seed_data(f->db);
	assert_int_equal(lim_db_replica_id(f->db, id1), 0);
	assert_int_equal(lim_db_network_key(f->db, nk), 0);
	assert_memory_equal(nk, NETKEY, sizeof(nk));
	lim_db_free(f->db);
	f->db = open_with_clock(p, &f->clk, NULL);
	assert_int_equal(lim_db_replica_id(f->db, id2), 0);
	assert_memory_equal(id1, id2, sizeof(id1));
	assert_json(f->db, "people", "ada", "addr.city", "\"London\"");
	assert_int_equal(lim_db_verify(f->db), 0);
	free(p);
}

static void test_store__clock_never_goes_back_after_reopen(void **state)
{
	fixture *f = *state;
	char *p = path_in(f->dir, "main.db");
	lim_log_iter *it;
	lim_change_info info;
	uint64_t first, second;
	lim_value v = int_value(1);
	assert_int_equal(lim_db_set(f->db, "c", "d", "f", &v), 0);
	assert_int_equal(lim_db_log(&it, f->db, 1), 0);
	assert_int_equal(lim_log_iter_next(it, &info), 0);
	first = info.hlc;
	lim_log_iter_free(it);
	lim_db_free(f->db);
	f->clk.now -= 3600 * 1000; /* the wall clock was set back an hour */
	f->db = open_with_clock(p, &f->clk, NULL);
	assert_int_equal(lim_db_set(f->db, "c", "d", "f", &v), 0);
	assert_int_equal(lim_db_log(&it, f->db, 1), 0);
	assert_int_equal(lim_log_iter_next(it, &info), 0);
	second = info.hlc;
	lim_log_iter_free(it);
	assert_true(second > first);
	free(p);
}

/* ------------------------------------------------------------ bad local input */

static void test_store__bad_json_changes_nothing(void **state)
{
	fixture *f = *state;
	snapshot s;
	static const char *const bad[] = {
		"{\"a\":", "[1,2]", "\"just a string\"", "{\"a\":[1,2]}", "{\"a.b\":1}", "{\"\":1}",
		"{\"a\":1e999}", "{\"a\":123456789012345678901234}", "nul", "{\"a\":{\"$base64\":\"!!!\"}}",
	};
	seed_data(f->db);
	take(f->db, &s);
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		int rc = lim_db_put_json(f->db, "people", "ada", bad[i], strlen(bad[i]));
		if (rc != LIM_EINVALID)
			print_error("input %s\n", bad[i]);
		expect_error(rc, LIM_EINVALID, NULL);
	}
	/* Invalid UTF-8 inside a string literal. */
	expect_error(lim_db_put_json(f->db, "people", "ada", "{\"a\":\"\xff\"}", 8), LIM_EINVALID, "UTF-8");
	/* SQLite cuts strings at \u0000: refused rather than truncated; an
	 * escaped backslash followed by "u0000" is ordinary text. */
	expect_error(lim_db_put_json(f->db, "people", "ada", "{\"a\":\"x\\u0000y\"}", 16), LIM_EINVALID, "u0000");
	assert_int_equal(lim_db_put_json(f->db, "people", "nul", "{\"a\":\"\\\\u0000\"}", 15), 0);
	assert_json(f->db, "people", "nul", "a", "\"\\\\u0000\"");
	assert_int_equal(lim_db_delete(f->db, "people", "nul", NULL), 0);
	/* Large reals are floats, not out-of-range integers. */
	assert_int_equal(lim_db_put_json(f->db, "people", "big", "{\"x\":1e300,\"y\":-2.5e19}", 23), 0);
	assert_json(f->db, "people", "big", NULL, "{\"x\":1.0e300,\"y\":-2.5e19}");
	assert_int_equal(lim_db_delete(f->db, "people", "big", NULL), 0);
	lim_buf_dispose(&s.vv);
	take(f->db, &s);
	/* A valid JSON prefix followed by garbage must not half-apply. */
	expect_error(lim_db_put_json(f->db, "people", "ada", "{\"ok\":1,\"bad\":[1]}", 18), LIM_EINVALID, "arrays");
	assert_unchanged(f->db, &s);
}

static void test_store__bad_names_and_values_change_nothing(void **state)
{
	fixture *f = *state;
	snapshot s;
	char big[LIM_MAX_DOC_BYTES + 2];
	lim_value v = int_value(1), nan = { LIM_FLOAT, 0, 0, 0.0 / 0.0, NULL, 0 };
	lim_value badutf = { LIM_STRING, 0, 0, 0, "\xc0\x80", 2 };
	lim_value huge = { LIM_BYTES, 0, 0, 0, NULL, LIM_MAX_VALUE_BYTES + 1 };
	char *hugebuf = calloc(1, LIM_MAX_VALUE_BYTES + 1);
	huge.str = hugebuf;
	memset(big, 'k', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	seed_data(f->db);
	take(f->db, &s);
	expect_error(lim_db_set(f->db, "", "d", "f", &v), LIM_EINVALID, "collection");
	expect_error(lim_db_set(f->db, "c", big, "f", &v), LIM_EINVALID, "document key");
	expect_error(lim_db_set(f->db, "c", "d", "a..b", &v), LIM_EINVALID, "empty segment");
	expect_error(lim_db_set(f->db, "c", "d", ".a", &v), LIM_EINVALID, "empty segment");
	expect_error(lim_db_set(f->db, "c", "\xff", "f", &v), LIM_EINVALID, "UTF-8");
	expect_error(lim_db_set(f->db, "c", "d", "f", &nan), LIM_EINVALID, "finite");
	expect_error(lim_db_set(f->db, "c", "d", "f", &badutf), LIM_EINVALID, "UTF-8");
	expect_error(lim_db_set(f->db, "c", "d", "f", &huge), LIM_EINVALID, "limit");
	expect_error(lim_db_set(f->db, "c", "d", "f", NULL), LIM_EINVALID, NULL);
	expect_error(lim_db_set(f->db, NULL, "d", "f", &v), LIM_EINVALID, NULL);
	expect_error(lim_db_incr(f->db, "c", "d", NULL, 1), LIM_EINVALID, NULL);
	expect_error(lim_db_set_add(f->db, "c", "d", "f", &nan), LIM_EINVALID, NULL);
	assert_unchanged(f->db, &s);
	free(hugebuf);
}

static void test_store__reads_of_missing_things(void **state)
{
	fixture *f = *state;
	lim_field *fl;
	lim_buf b = LIM_BUF_INIT;
	seed_data(f->db);
	expect_error(lim_db_get_field(&fl, f->db, "people", "bob", "name"), LIM_ENOTFOUND, "bob");
	expect_error(lim_db_get_field(&fl, f->db, "people", "ada", "nope"), LIM_ENOTFOUND, "nope");
	expect_error(lim_db_get_json(&b, f->db, "people", "bob", NULL), LIM_ENOTFOUND, "bob");
	expect_error(lim_db_get_json(&b, f->db, "people", "ada", "addr.zip"), LIM_ENOTFOUND, NULL);
	/* A path that is an object is not a field, but renders as JSON. */
	expect_error(lim_db_get_field(&fl, f->db, "people", "ada", "addr"), LIM_ENOTFOUND, NULL);
	assert_json(f->db, "people", "ada", "addr", "{\"city\":\"London\"}");
}

static void test_store__typed_round_trip(void **state)
{
	fixture *f = *state;
	static const char bytes[] = { 0, 1, 2, (char)0xff };
	lim_value vals[] = {
		{ LIM_NULL, 0, 0, 0, NULL, 0 },
		{ LIM_BOOL, 1, 0, 0, NULL, 0 },
		{ LIM_INT, 0, INT64_MIN, 0, NULL, 0 },
		{ LIM_FLOAT, 0, 0, -0.25, NULL, 0 },
		{ LIM_STRING, 0, 0, 0, "h\xc3\xa9 %,\n\"", 8 },
		{ LIM_STRING, 0, 0, 0, "", 0 },
		{ LIM_BYTES, 0, 0, 0, bytes, sizeof(bytes) },
	};
	const char *json[] = { "null", "true", "-9223372036854775808", "-0.25", "\"h\xc3\xa9 %,\\n\\\"\"", "\"\"",
		                   "{\"$base64\":\"AAEC/w==\"}" };
	char path[8];
	for (size_t i = 0; i < sizeof(vals) / sizeof(*vals); i++) {
		lim_field *fl;
		lim_value got;
		snprintf(path, sizeof(path), "f%zu", i);
		assert_int_equal(lim_db_set(f->db, "t", "d", path, &vals[i]), 0);
		assert_int_equal(lim_db_get_field(&fl, f->db, "t", "d", path), 0);
		assert_int_equal(lim_field_kind(fl), LIM_KIND_REGISTER);
		assert_int_equal(lim_field_value(fl, &got), 0);
		assert_int_equal(got.type, vals[i].type);
		assert_int_equal(got.boolean, vals[i].boolean);
		assert_true(got.integer == vals[i].integer);
		assert_true(got.real == vals[i].real);
		assert_int_equal(got.len, vals[i].len);
		if (got.len)
			assert_memory_equal(got.str, vals[i].str, got.len);
		lim_field_free(fl);
		assert_json(f->db, "t", "d", path, json[i]);
	}
	/* JSON bytes input round-trips to the same field. */
	const char *j = "{\"g\":{\"$base64\":\"AAEC/w==\"}}";
	assert_int_equal(lim_db_put_json(f->db, "t", "e", j, strlen(j)), 0);
	assert_json(f->db, "t", "e", NULL, j);
	assert_int_equal(lim_db_verify(f->db), 0);
}

/* ------------------------------------------------------------ transactions */

static void test_store__transaction_is_one_change(void **state)
{
	fixture *f = *state;
	lim_value v = int_value(1);
	size_t before = log_length(f->db);
	assert_int_equal(lim_db_begin(f->db), 0);
	assert_int_equal(lim_db_set(f->db, "c", "d", "a", &v), 0);
	assert_int_equal(lim_db_incr(f->db, "c", "d", "n", 3), 0);
	/* A failing write inside the transaction leaves the rest of it intact. */
	expect_error(lim_db_set(f->db, "c", "d", "a..", &v), LIM_EINVALID, NULL);
	assert_json(f->db, "c", "d", NULL, "{\"a\":1,\"n\":3}"); /* visible inside */
	assert_int_equal(lim_db_commit(f->db), 0);
	assert_int_equal(log_length(f->db), before + 1);
	assert_json(f->db, "c", "d", NULL, "{\"a\":1,\"n\":3}");
}

static void test_store__rollback_leaves_nothing(void **state)
{
	fixture *f = *state;
	snapshot s;
	lim_value v = int_value(1);
	seed_data(f->db);
	take(f->db, &s);
	assert_int_equal(lim_db_begin(f->db), 0);
	assert_int_equal(lim_db_set(f->db, "c", "d", "a", &v), 0);
	assert_int_equal(lim_db_delete(f->db, "people", "ada", NULL), 0);
	assert_int_equal(lim_db_rollback(f->db), 0);
	assert_unchanged(f->db, &s);
	/* The next change continues the chain without a gap. */
	assert_int_equal(lim_db_set(f->db, "c", "d", "a", &v), 0);
	assert_int_equal(lim_db_verify(f->db), 0);
}

static void test_store__transaction_misuse(void **state)
{
	fixture *f = *state;
	size_t len;
	lim_value v = int_value(1);
	assert_int_equal(lim_db_set(f->db, "c", "d", "a", &v), 0);
	char *change = last_change(f->db, &len);
	expect_error(lim_db_commit(f->db), LIM_ETXN, "no transaction");
	expect_error(lim_db_rollback(f->db), LIM_ETXN, "no transaction");
	assert_int_equal(lim_db_begin(f->db), 0);
	expect_error(lim_db_begin(f->db), LIM_ETXN, "already open");
	expect_error(lim_db_apply(f->db, change, len, NULL), LIM_ETXN, NULL);
	assert_int_equal(lim_db_commit(f->db), 0); /* empty: no change */
	free(change);
}

static void test_store__empty_transaction_makes_no_change(void **state)
{
	fixture *f = *state;
	size_t before = log_length(f->db);
	lim_value x = str_value("x");
	assert_int_equal(lim_db_begin(f->db), 0);
	assert_int_equal(lim_db_commit(f->db), 0);
	assert_int_equal(lim_db_put_json(f->db, "c", "d", "{}", 2), 0);
	assert_int_equal(lim_db_set_remove(f->db, "c", "d", "s", &x), 0); /* not a member */
	assert_int_equal(log_length(f->db), before);
}

/* ------------------------------------------------------------ remote changes */

typedef struct {
	test_clock clk;
	lim_db *db;
} peer;

static void peer_open(peer *p, int64_t now)
{
	p->clk.now = now;
	p->db = open_with_clock(":memory:", &p->clk, NETKEY);
}

static void test_store__apply_rejections_change_nothing(void **state)
{
	fixture *f = *state;
	peer a;
	snapshot s;
	size_t l1, l2;
	lim_value v = int_value(1);
	peer_open(&a, f->clk.now);
	assert_int_equal(lim_db_set(a.db, "c", "d", "f", &v), 0);
	char *c1 = last_change(a.db, &l1);
	assert_int_equal(lim_db_incr(a.db, "c", "d", "n", 1), 0);
	char *c2 = last_change(a.db, &l2);
	seed_data(f->db);
	take(f->db, &s);

	/* Seq 2 before seq 1: a gap that names the missing seq. */
	expect_error(lim_db_apply(f->db, c2, l2, NULL), LIM_EGAP, "seq 1");

	/* A flipped signature digit: well-formed but forged. */
	char *forged = strdup(c1);
	forged[l1 - 1] = forged[l1 - 1] == '0' ? '1' : '0';
	expect_error(lim_db_apply(f->db, forged, l1, NULL), LIM_ESIGNATURE, "signature");

	/* A changed op value: the signature no longer matches the body. */
	char *edited = strdup(c1);
	char *val = strstr(edited, " i1 ");
	assert_non_null(val);
	val[2] = '2';
	expect_error(lim_db_apply(f->db, edited, l1, NULL), LIM_ESIGNATURE, NULL);

	/* Structural damage. */
	expect_error(lim_db_apply(f->db, "lim1 nonsense", 13, NULL), LIM_EMALFORMED, NULL);
	expect_error(lim_db_apply(f->db, c1, l1 - 1, NULL), LIM_EMALFORMED, "signature");
	char *nl = strdup(c1);
	nl[10] = '\n';
	expect_error(lim_db_apply(f->db, nl, l1, NULL), LIM_EMALFORMED, NULL);

	/* Every single-byte flip of a valid change is refused. */
	for (size_t i = 0; i < l1; i++) {
		char *flip = strdup(c1);
		flip[i] ^= 0x01;
		int rc = lim_db_apply(f->db, flip, l1, NULL);
		if (rc == 0)
			print_error("flip at %zu accepted\n", i);
		assert_true(rc < 0);
		free(flip);
	}
	assert_unchanged(f->db, &s);

	/* The real ones apply, then seq 2 chains; a wrong prev link is EHASH. */
	assert_int_equal(lim_db_apply(f->db, c1, l1, NULL), 0);
	char *badprev = strdup(c2);
	char *prev = badprev + 5 + 64 + 1 + 1 + 1 + 16 + 1; /* "lim1 " author " 2 " hlc " " */
	prev[0] = prev[0] == 'a' ? 'b' : 'a';
	expect_error(lim_db_apply(f->db, badprev, l2, NULL), LIM_EHASH, "predecessor");
	assert_int_equal(lim_db_apply(f->db, c2, l2, NULL), 0);
	assert_json(f->db, "c", "d", NULL, "{\"f\":1,\"n\":1}");
	assert_int_equal(lim_db_verify(f->db), 0);
	free(c1);
	free(c2);
	free(forged);
	free(edited);
	free(nl);
	free(badprev);
	lim_db_free(a.db);
}

static void test_store__clock_drift_is_refused(void **state)
{
	fixture *f = *state;
	peer future;
	snapshot s;
	size_t len;
	lim_value v = int_value(1);
	peer_open(&future, f->clk.now + 3600 * 1000); /* an hour ahead; the bound is a minute */
	assert_int_equal(lim_db_set(future.db, "c", "d", "f", &v), 0);
	char *c = last_change(future.db, &len);
	take(f->db, &s);
	expect_error(lim_db_apply(f->db, c, len, NULL), LIM_ECLOCK, "ahead");
	assert_unchanged(f->db, &s);
	/* The local clock did not jump: our next write is stamped near now. */
	assert_int_equal(lim_db_set(f->db, "c", "d", "g", &v), 0);
	lim_log_iter *it;
	lim_change_info info;
	assert_int_equal(lim_db_log(&it, f->db, 1), 0);
	assert_int_equal(lim_log_iter_next(it, &info), 0);
	assert_true((int64_t)(info.hlc >> 16) <= f->clk.now);
	lim_log_iter_free(it);
	/* When our clock catches up the same change applies. */
	f->clk.now += 3600 * 1000;
	assert_int_equal(lim_db_apply(f->db, c, len, NULL), 0);
	free(c);
	lim_db_free(future.db);
}

static void test_store__equivocation_detected_first_kept(void **state)
{
	fixture *f = *state;
	char *pa = path_in(f->dir, "twin-a.db"), *pb = path_in(f->dir, "twin-b.db");
	char cmd[1024];
	lim_db *a, *b;
	size_t la, lb;
	snapshot s;
	lim_value va = str_value("first"), vb = str_value("second");
	/* Two copies of one identity write different changes with seq 1. */
	a = open_with_clock(pa, &f->clk, NETKEY);
	lim_db_free(a);
	snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", pa, pb);
	assert_int_equal(system(cmd), 0);
	a = open_with_clock(pa, &f->clk, NETKEY);
	b = open_with_clock(pb, &f->clk, NETKEY);
	assert_int_equal(lim_db_set(a, "c", "d", "f", &va), 0);
	assert_int_equal(lim_db_set(b, "c", "d", "f", &vb), 0);
	char *ca = last_change(a, &la), *cb = last_change(b, &lb);
	assert_int_equal(lim_db_apply(f->db, ca, la, NULL), 0);
	take(f->db, &s);
	expect_error(lim_db_apply(f->db, cb, lb, NULL), LIM_EEQUIVOCATION, "two different changes");
	assert_unchanged(f->db, &s);
	assert_json(f->db, "c", "d", "f", "\"first\"");
	/* b goes on writing on its fork: its seq 2 follows the other seq 1.
	 * It is the author's doing, so it is refused as such (a skip within
	 * a batch), not as a broken chain, which would fail a whole batch. */
	assert_int_equal(lim_db_set(b, "c", "d", "g", &vb), 0);
	size_t lb2;
	char *cb2 = last_change(b, &lb2);
	take(f->db, &s);
	expect_error(lim_db_apply(f->db, cb2, lb2, NULL), LIM_EEQUIVOCATION, "forked its chain");
	assert_unchanged(f->db, &s);
	/* With a bad signature it is no one's doing: a broken chain. */
	cb2[lb2 - 1] = cb2[lb2 - 1] == '0' ? '1' : '0';
	take(f->db, &s);
	expect_error(lim_db_apply(f->db, cb2, lb2, NULL), LIM_EHASH, NULL);
	assert_unchanged(f->db, &s);
	/* A forged "equivocation" is a signature failure, not blame. */
	cb[lb - 1] = cb[lb - 1] == '0' ? '1' : '0';
	expect_error(lim_db_apply(f->db, cb, lb, NULL), LIM_ESIGNATURE, NULL);
	free(ca);
	free(cb);
	free(cb2);
	lim_db_free(a);
	lim_db_free(b);
	free(pa);
	free(pb);
}

/* ------------------------------------------------------------ packs */

/* Odd chunks: lines straddle reads. */
#define PACK_CHUNK 7

static void test_store__pack_round_trip_and_damage(void **state)
{
	fixture *f = *state;
	peer a;
	membuf pack = { NULL, 0, 0, PACK_CHUNK };
	snapshot s;
	lim_apply_stats st = { 0, 0 };
	char da[65], df[65];
	peer_open(&a, f->clk.now);
	seed_data(a.db);
	lim_value x = str_value("x");
	assert_int_equal(lim_db_set_add(a.db, "c", "d", "s", &x), 0);
	assert_int_equal(lim_db_export(a.db, NULL, 0, membuf_write, &pack), 0);
	assert_true(pack.len > 0);
	assert_memory_equal(pack.data, "LIMPACK 1\n", 10);

	seed_data(f->db);
	take(f->db, &s);
	/* Damage anywhere leaves the store as it was: every byte position,
	 * signatures in the middle of a run included (their successor's link
	 * covers them, changes.md §12). */
	for (size_t i = 0; i < pack.len; i++) {
		membuf bad = { malloc(pack.len), pack.len, 0, PACK_CHUNK };
		memcpy(bad.data, pack.data, pack.len);
		bad.data[i] ^= 0x04;
		int rc = lim_db_import(f->db, membuf_read, &bad, NULL);
		if (rc == 0)
			print_error("flip at %zu accepted\n", i);
		assert_true(rc < 0);
		free(bad.data);
	}
	/* Truncated: every change present but no END line. */
	membuf cut = { pack.data, pack.len, 0, PACK_CHUNK };
	char *end_line = strstr(pack.data, "\nEND ");
	assert_non_null(end_line);
	cut.len = (size_t)(end_line + 1 - pack.data);
	expect_error(lim_db_import(f->db, membuf_read, &cut, NULL), LIM_EMALFORMED, "truncated");
	membuf notpack = { "hello\n", 6, 0, PACK_CHUNK };
	expect_error(lim_db_import(f->db, membuf_read, &notpack, NULL), LIM_EMALFORMED, "not a liblim pack");
	assert_unchanged(f->db, &s);

	assert_int_equal(lim_db_import(f->db, membuf_read, &pack, &st), 0);
	assert_int_equal(st.applied, 3);
	pack.pos = 0;
	memset(&st, 0, sizeof(st));
	assert_int_equal(lim_db_import(f->db, membuf_read, &pack, &st), 0);
	assert_int_equal(st.applied, 0);
	assert_int_equal(st.duplicates, 3);
	sync_into(a.db, f->db);
	digest_of(a.db, da);
	digest_of(f->db, df);
	assert_string_equal(da, df);

	/* Export since a's vector from f gives only what a lacks: nothing. */
	lim_buf vv = LIM_BUF_INIT;
	membuf empty = { 0 };
	assert_int_equal(lim_db_version_vector(&vv, a.db), 0);
	assert_int_equal(lim_db_export(f->db, vv.ptr, vv.size, membuf_write, &empty), 0);
	assert_non_null(strstr(empty.data, "END 0 "));
	expect_error(lim_db_export(f->db, "zz 1\n", 5, membuf_write, &empty), LIM_EINVALID, "version vector");
	lim_buf_dispose(&vv);
	free(empty.data);
	free(pack.data);
	lim_db_free(a.db);
}

/* ------------------------------------------------------------ tampering */

static void tamper(const char *path, const char *sql)
{
	sqlite3 *s;
	assert_int_equal(sqlite3_open(path, &s), SQLITE_OK);
	int rc = sqlite3_exec(s, sql, NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		print_error("%s\n", sqlite3_errmsg(s));
	assert_int_equal(rc, SQLITE_OK);
	sqlite3_close(s);
}

static void test_store__verify_detects_tampering(void **state)
{
	fixture *f = *state;
	char *p = path_in(f->dir, "main.db");
	static const char *const attacks[] = {
		"UPDATE fields SET json = '\"Eve\"' WHERE path = 'name'",
		"UPDATE changes SET body = replace(body, 'Ada', 'Eve') WHERE seq = 1",
		"UPDATE changes SET hash = zeroblob(32) WHERE seq = 2",
		"DELETE FROM changes WHERE seq = 1",
		"UPDATE authors SET max_seq = 5",
		"UPDATE authors SET head_link = (SELECT hash FROM changes ORDER BY seq DESC LIMIT 1)",
		"DELETE FROM cops",
	};
	seed_data(f->db);
	lim_db_free(f->db);
	f->db = NULL;
	for (size_t i = 0; i < sizeof(attacks) / sizeof(*attacks); i++) {
		char *copy = path_in(f->dir, "copy.db"), cmd[1024];
		snprintf(cmd, sizeof(cmd), "cp '%s' '%s' && rm -f '%s-wal' '%s-shm'", p, copy, copy, copy);
		assert_int_equal(system(cmd), 0);
		tamper(copy, attacks[i]);
		lim_db *db = open_with_clock(copy, &f->clk, NULL);
		int rc = lim_db_verify(db);
		if (rc != LIM_ECORRUPT)
			print_error("attack %zu (%s) not detected: %s\n", i, attacks[i], lim_error_last());
		assert_int_equal(rc, LIM_ECORRUPT);
		lim_db_free(db);
		free(copy);
	}
	/* Tampering with the identity is caught at open. */
	tamper(p, "UPDATE meta SET value = zeroblob(32) WHERE key = 'public_key'");
	lim_db *db;
	expect_error(lim_db_open(&db, p, NULL), LIM_ECORRUPT, "secret key");
	free(p);
}

/* ------------------------------------------------------------ listing */

static void test_store__docs_in_key_order_with_prefix_and_cursor(void **state)
{
	fixture *f = *state;
	static const char *const keys[] = { "user:3", "user:1", "admin:1", "user:2", "zed" };
	lim_value v = int_value(1);
	lim_doc_iter *it;
	const char *k;
	char got[256] = "";
	for (size_t i = 0; i < 5; i++)
		assert_int_equal(lim_db_set(f->db, "c", keys[i], "f", &v), 0);
	assert_int_equal(lim_db_delete(f->db, "c", "user:2", NULL), 0);
	assert_int_equal(lim_db_set(f->db, "other", "user:9", "f", &v), 0);
	assert_int_equal(lim_db_docs(&it, f->db, "c", "user:", NULL), 0);
	while (lim_doc_iter_next(it, &k) == 0) {
		strcat(got, k);
		strcat(got, ",");
	}
	lim_doc_iter_free(it);
	assert_string_equal(got, "user:1,user:3,");
	got[0] = '\0';
	assert_int_equal(lim_db_docs(&it, f->db, "c", NULL, "user:1"), 0);
	while (lim_doc_iter_next(it, &k) == 0) {
		strcat(got, k);
		strcat(got, ",");
	}
	assert_int_equal(lim_doc_iter_next(it, &k), LIM_EITEROVER);
	lim_doc_iter_free(it);
	assert_string_equal(got, "user:3,zed,");
	got[0] = '\0';
	assert_int_equal(lim_db_docs(&it, f->db, "c", NULL, "b"), 0); /* `after` need not exist */
	while (lim_doc_iter_next(it, &k) == 0) {
		strcat(got, k);
		strcat(got, ",");
	}
	lim_doc_iter_free(it);
	assert_string_equal(got, "user:1,user:3,zed,");
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_store__open_missing_without_create),
		T(test_store__open_text_file_is_not_a_store),
		T(test_store__open_foreign_sqlite_is_refused_untouched),
		T(test_store__open_newer_schema_is_refused),
		T(test_store__open_with_wrong_network_key),
		T(test_store__open_bad_options),
		T(test_store__identity_persists_and_network_key),
		T(test_store__clock_never_goes_back_after_reopen),
		T(test_store__bad_json_changes_nothing),
		T(test_store__bad_names_and_values_change_nothing),
		T(test_store__reads_of_missing_things),
		T(test_store__typed_round_trip),
		T(test_store__transaction_is_one_change),
		T(test_store__rollback_leaves_nothing),
		T(test_store__transaction_misuse),
		T(test_store__empty_transaction_makes_no_change),
		T(test_store__apply_rejections_change_nothing),
		T(test_store__clock_drift_is_refused),
		T(test_store__equivocation_detected_first_kept),
		T(test_store__pack_round_trip_and_damage),
		T(test_store__verify_detects_tampering),
		T(test_store__docs_in_key_order_with_prefix_and_cursor),
	};
	return cmocka_run_group_tests_name("store", tests, NULL, NULL);
}
