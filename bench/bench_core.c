/*
 * Local liblim figures beside raw SQLite baselines, measured in the same run
 * (issue 7, items 1, 2, 3 and 8), plus reference costs of the crypto every
 * signed change pays.
 *
 *   bench_core [--quick] --dir DIR
 *
 * The raw SQLite baseline uses the settings liblim uses (journal_mode=WAL,
 * synchronous=NORMAL), an equivalent table
 *   kv(coll, doc, path, value, PRIMARY KEY(coll, doc, path)) WITHOUT ROWID
 * and prepared statements. Records go to stdout (see bench_common.h).
 * DIR/core.db (10k documents of 10 fields) is left behind for the binding
 * benchmarks; bench/run removes DIR at the end.
 */
#include <sodium.h>
#include <sqlite3.h>
#include "lim.h"
#include "bench_common.h"

#define COLL "bench"
#define NFIELDS 10

static int quick;
static const char *dir;

/* ------------------------------------------------------------ raw SQLite */

typedef struct {
	sqlite3 *db;
	sqlite3_stmt *upsert, *get, *getdoc;
} raw_db;

static void raw_exec(raw_db *r, const char *sql)
{
	char *err = NULL;
	if (sqlite3_exec(r->db, sql, NULL, NULL, &err) != SQLITE_OK)
		die("sqlite: %s: %s", sql, err);
}

static sqlite3_stmt *raw_prepare(raw_db *r, const char *sql)
{
	sqlite3_stmt *s;
	if (sqlite3_prepare_v3(r->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, NULL) != SQLITE_OK)
		die("sqlite prepare: %s", sqlite3_errmsg(r->db));
	return s;
}

static void raw_open(raw_db *r, const char *path)
{
	if (sqlite3_open_v2(path, &r->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) !=
	    SQLITE_OK)
		die("sqlite open %s", path);
	raw_exec(r, "PRAGMA journal_mode = WAL");
	raw_exec(r, "PRAGMA synchronous = NORMAL");
	raw_exec(r, "CREATE TABLE IF NOT EXISTS kv(coll TEXT NOT NULL, doc TEXT NOT NULL, path TEXT NOT NULL,"
	            " value, PRIMARY KEY(coll, doc, path)) WITHOUT ROWID");
	r->upsert = raw_prepare(r, "INSERT INTO kv(coll, doc, path, value) VALUES (?1, ?2, ?3, ?4)"
	                           " ON CONFLICT(coll, doc, path) DO UPDATE SET value = excluded.value");
	r->get = raw_prepare(r, "SELECT value FROM kv WHERE coll = ?1 AND doc = ?2 AND path = ?3");
	r->getdoc = raw_prepare(r, "SELECT path, value FROM kv WHERE coll = ?1 AND doc = ?2");
}

static void raw_close(raw_db *r)
{
	sqlite3_finalize(r->upsert);
	sqlite3_finalize(r->get);
	sqlite3_finalize(r->getdoc);
	sqlite3_close(r->db);
	memset(r, 0, sizeof(*r));
}

static void raw_set(raw_db *r, const char *doc, const char *path, const lim_value *v)
{
	sqlite3_stmt *s = r->upsert;
	sqlite3_bind_text(s, 1, COLL, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, doc, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, path, -1, SQLITE_STATIC);
	if (v->type == LIM_INT)
		sqlite3_bind_int64(s, 4, v->integer);
	else
		sqlite3_bind_text(s, 4, v->str, (int)v->len, SQLITE_STATIC);
	if (sqlite3_step(s) != SQLITE_DONE)
		die("raw upsert: %s", sqlite3_errmsg(r->db));
	sqlite3_reset(s);
}

static volatile int64_t sink;

static void raw_get(raw_db *r, const char *doc, const char *path)
{
	sqlite3_stmt *s = r->get;
	sqlite3_bind_text(s, 1, COLL, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, doc, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, path, -1, SQLITE_STATIC);
	if (sqlite3_step(s) != SQLITE_ROW)
		die("raw get %s %s: no row", doc, path);
	if (sqlite3_column_type(s, 0) == SQLITE_INTEGER)
		sink += sqlite3_column_int64(s, 0);
	else
		sink += sqlite3_column_bytes(s, 0) + (sqlite3_column_text(s, 0) != NULL);
	sqlite3_reset(s);
}

static void raw_getdoc(raw_db *r, const char *doc)
{
	sqlite3_stmt *s = r->getdoc;
	int n = 0;
	sqlite3_bind_text(s, 1, COLL, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, doc, -1, SQLITE_STATIC);
	while (sqlite3_step(s) == SQLITE_ROW) {
		sink += sqlite3_column_bytes(s, 0) + (sqlite3_column_text(s, 0) != NULL);
		sink += sqlite3_column_bytes(s, 1) + (sqlite3_column_text(s, 1) != NULL);
		n++;
	}
	if (n == 0)
		die("raw getdoc %s: no rows", doc);
	sqlite3_reset(s);
}

/* ------------------------------------------------------------ liblim */

static void check(int rc, const char *what)
{
	if (rc < 0)
		die("%s: %s (%s)", what, lim_error_name(rc), lim_error_last());
}

static lim_db *lim_open_store(const char *path)
{
	lim_db *db;
	check(lim_db_open(&db, path, NULL), path);
	return db;
}

static void lim_get(lim_db *db, const char *doc, const char *path)
{
	lim_field *f;
	lim_value v;
	check(lim_db_get_field(&f, db, COLL, doc, path), "get_field");
	check(lim_field_value(f, &v), "field_value");
	sink += v.type == LIM_INT ? v.integer : (int64_t)v.len;
	lim_field_free(f);
}

static void lim_getdoc(lim_db *db, const char *doc)
{
	lim_buf b = LIM_BUF_INIT;
	check(lim_db_get_json(&b, db, COLL, doc, NULL), "get_json");
	sink += (int64_t)b.size;
	lim_buf_dispose(&b);
}

/* ------------------------------------------------------------ data */

static void doc_key(char *out, size_t cap, long i)
{
	snprintf(out, cap, "d%07ld", i);
}

static const char *field_name(int f)
{
	static const char *names[NFIELDS] = { "f0", "f1", "f2", "f3", "f4", "f5", "f6", "f7", "f8", "f9" };
	return names[f % NFIELDS];
}

/* Field values: even fields short strings, odd fields integers. */
static lim_value field_value(long doc, int f, char *buf, size_t cap)
{
	lim_value v;
	memset(&v, 0, sizeof(v));
	if (f % 2 == 0) {
		int n = snprintf(buf, cap, "value %ld/%d", doc, f);
		v.type = LIM_STRING;
		v.str = buf;
		v.len = (size_t)n;
	} else {
		v.type = LIM_INT;
		v.integer = doc * 16 + f;
	}
	return v;
}

/* Write documents [from, to) with `nfields` fields each, `per_txn`
 * documents per transaction (one change each), to both stores. */
static void fill(lim_db *db, raw_db *raw, long from, long to, int nfields, long per_txn)
{
	char key[32], buf[64];
	for (long d = from; d < to; d += per_txn) {
		long end = d + per_txn < to ? d + per_txn : to;
		if (db) {
			check(lim_db_begin(db), "begin");
			for (long i = d; i < end; i++) {
				doc_key(key, sizeof(key), i);
				for (int f = 0; f < nfields; f++) {
					lim_value v = field_value(i, f, buf, sizeof(buf));
					check(lim_db_set(db, COLL, key, field_name(f), &v), "set");
				}
			}
			check(lim_db_commit(db), "commit");
		}
		if (raw) {
			raw_exec(raw, "BEGIN");
			for (long i = d; i < end; i++) {
				doc_key(key, sizeof(key), i);
				for (int f = 0; f < nfields; f++) {
					lim_value v = field_value(i, f, buf, sizeof(buf));
					raw_set(raw, key, field_name(f), &v);
				}
			}
			raw_exec(raw, "COMMIT");
		}
	}
}

/* ------------------------------------------------------------ reference costs */

static void bench_crypto(void)
{
	unsigned char pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
	unsigned char sig[crypto_sign_BYTES], msg[200], h[32];
	static unsigned char big[1 << 20];
	int n = quick ? 2000 : 10000;
	double t, reps[3];
	crypto_sign_keypair(pk, sk);
	randombytes_buf(msg, sizeof(msg));
	randombytes_buf(big, sizeof(big));

	for (int r = 0; r < 3; r++) {
		t = now_s();
		for (int i = 0; i < n; i++) {
			msg[0] = (unsigned char)i;
			crypto_sign_detached(sig, NULL, msg, sizeof(msg), sk);
		}
		reps[r] = n / (now_s() - t);
	}
	summary s = summarize(reps, 3);
	emit("ref_ed25519_sign_per_s", s.med, "ops/s", NAN, NAN, T_NONE, 0, 'v', s.spread,
	     "libsodium crypto_sign_detached, 200-byte message (one per signed change)");

	crypto_sign_detached(sig, NULL, msg, sizeof(msg), sk);
	for (int r = 0; r < 3; r++) {
		t = now_s();
		for (int i = 0; i < n / 2; i++)
			if (crypto_sign_verify_detached(sig, msg, sizeof(msg), pk) != 0)
				die("verify failed");
		reps[r] = (n / 2) / (now_s() - t);
	}
	s = summarize(reps, 3);
	emit("ref_ed25519_verify_per_s", s.med, "ops/s", NAN, NAN, T_NONE, 0, 'v', s.spread,
	     "libsodium crypto_sign_verify_detached, 200-byte message");

	int mb = quick ? 64 : 256;
	for (int r = 0; r < 3; r++) {
		t = now_s();
		for (int i = 0; i < mb; i++)
			crypto_generichash(h, sizeof(h), big, sizeof(big), NULL, 0);
		reps[r] = mb / (now_s() - t);
	}
	s = summarize(reps, 3);
	emit("ref_blake2b_mb_per_s", s.med, "MB/s", NAN, NAN, T_NONE, 0, 'v', s.spread,
	     "libsodium crypto_generichash (BLAKE2b-256), 1 MiB buffers");
	sink += h[0] + sig[0];
}

/* ------------------------------------------------------------ latency loops */

typedef struct {
	double p50[16], p99[16];
	int reps;
} lat_reps;

enum { OP_LIM_WRITE, OP_RAW_WRITE, OP_LIM_READ, OP_RAW_READ, OP_LIM_DOC, OP_RAW_DOC };

static long write_counter;
static int lat_fields = NFIELDS; /* fields per document in the store under test */

/* One repetition of `n` timed ops on random documents in [0, ndocs);
 * appends its p50/p99 (µs) to `out`. */
static void lat_round(int op, lim_db *db, raw_db *raw, long ndocs, int n, int warm, lat_reps *out)
{
	double *samples = malloc(sizeof(double) * (size_t)n);
	char key[32], buf[64];
	if (!samples)
		die("out of memory");
	for (int i = -warm; i < n; i++) {
		long d = (long)(rnd() % (uint64_t)ndocs);
		int f = (int)(rnd() % (uint64_t)lat_fields);
		const char *path = field_name(f);
		lim_value v;
		doc_key(key, sizeof(key), d);
		if (op == OP_LIM_WRITE || op == OP_RAW_WRITE) {
			/* Odd fields are integers: write a new integer to one. */
			f |= 1;
			if (f >= lat_fields)
				f = 1;
			path = field_name(f);
			memset(&v, 0, sizeof(v));
			v.type = LIM_INT;
			v.integer = ++write_counter;
			(void)buf;
		}
		uint64_t t0 = now_ns();
		switch (op) {
		case OP_LIM_WRITE: check(lim_db_set(db, COLL, key, path, &v), "set"); break;
		case OP_RAW_WRITE: raw_set(raw, key, path, &v); break;
		case OP_LIM_READ: lim_get(db, key, path); break;
		case OP_RAW_READ: raw_get(raw, key, path); break;
		case OP_LIM_DOC: lim_getdoc(db, key); break;
		case OP_RAW_DOC: raw_getdoc(raw, key); break;
		}
		uint64_t t1 = now_ns();
		if (i >= 0)
			samples[i] = (double)(t1 - t0) / 1000.0;
	}
	qsort(samples, (size_t)n, sizeof(double), cmp_double);
	out->p50[out->reps] = pct_sorted(samples, (size_t)n, 50);
	out->p99[out->reps] = pct_sorted(samples, (size_t)n, 99);
	out->reps++;
	free(samples);
}

/* Run lim and raw rounds interleaved so both see the same machine load. */
static void lat_pair(int lim_op, int raw_op, lim_db *db, raw_db *raw, long ndocs, int reps, int n, int warm,
                     lat_reps *l, lat_reps *r)
{
	memset(l, 0, sizeof(*l));
	memset(r, 0, sizeof(*r));
	for (int k = 0; k < reps; k++) {
		lat_round(lim_op, db, NULL, ndocs, n, k == 0 ? warm : warm / 4, l);
		lat_round(raw_op, NULL, raw, ndocs, n, k == 0 ? warm : warm / 4, r);
	}
}

/* ------------------------------------------------------------ items 1-3 */

static void bench_local(void)
{
	char lpath[4096], rpath[4096], note[256];
	long ndocs = 10000;
	int reps = quick ? 3 : 7;
	lat_reps l, r;
	summary sl, sr, sl99, sr99;
	raw_db raw;
	lim_db *db;

	snprintf(lpath, sizeof(lpath), "%s/core.db", dir);
	snprintf(rpath, sizeof(rpath), "%s/core-raw.db", dir);
	remove_store(lpath);
	remove_store(rpath);
	db = lim_open_store(lpath);
	raw_open(&raw, rpath);
	progress("core: filling %ld documents x %d fields in both stores", ndocs, NFIELDS);
	fill(db, &raw, 0, ndocs, NFIELDS, 100);

	/* 1. committed single-field write */
	progress("core: single-field committed writes");
	lat_pair(OP_LIM_WRITE, OP_RAW_WRITE, db, &raw, ndocs, reps, quick ? 1000 : 3000, 300, &l, &r);
	sl = summarize(l.p50, (size_t)l.reps);
	sr = summarize(r.p50, (size_t)r.reps);
	sl99 = summarize(l.p99, (size_t)l.reps);
	sr99 = summarize(r.p99, (size_t)r.reps);
	snprintf(note, sizeof(note), "lim_db_set, one signed change per commit, %ld docs x %d fields; baseline raw upsert in its own txn", ndocs, NFIELDS);
	emit("write_commit_p50_us", sl.med, "us", sr.med, sl.med / sr.med, T_MAX, 50, 'v', sl.spread, note);
	emit("write_commit_p99_us", sl99.med, "us", sr99.med, sl99.med / sr99.med, T_NONE, 0, 'v', sl99.spread, NULL);

	/* 2. batched writes, N = 1000 per transaction, new rows */
	progress("core: batched writes (1000 per transaction)");
	{
		int txns = quick ? 10 : 40;
		double lr[16], rr[16];
		long next = ndocs;
		/* warm-up: one transaction each */
		fill(db, &raw, next, next + 200, NFIELDS, 100);
		next += 200;
		for (int k = 0; k < reps; k++) {
			/* 100 new docs x 10 fields = 1000 field writes per txn */
			double t = now_s();
			fill(db, NULL, next, next + 100L * txns, NFIELDS, 100);
			lr[k] = 1000.0 * txns / (now_s() - t);
			t = now_s();
			fill(NULL, &raw, next, next + 100L * txns, NFIELDS, 100);
			rr[k] = 1000.0 * txns / (now_s() - t);
			next += 100L * txns;
		}
		sl = summarize(lr, (size_t)reps);
		sr = summarize(rr, (size_t)reps);
		double ratios[16];
		for (int k = 0; k < reps; k++)
			ratios[k] = lr[k] / rr[k];
		summary sq = summarize(ratios, (size_t)reps);
		emit("write_batch_per_s", sl.med, "writes/s", sr.med, sl.med / sr.med, T_NONE, 0, 'v', sl.spread,
		     "lim_db_begin + 1000 lim_db_set (new fields) + lim_db_commit; baseline raw upserts in one txn");
		emit("write_batch_ratio", sq.med, "x", NAN, NAN, T_MIN, 0.5, 'v', sq.spread,
		     "liblim batched rate / raw SQLite rate (higher is better)");
	}

	/* 3. point reads */
	progress("core: point reads");
	lat_pair(OP_LIM_READ, OP_RAW_READ, db, &raw, ndocs, reps, quick ? 5000 : 20000, 1000, &l, &r);
	{
		double ratios[16];
		for (int k = 0; k < l.reps; k++)
			ratios[k] = l.p50[k] / r.p50[k];
		summary sq = summarize(ratios, (size_t)l.reps);
		sl = summarize(l.p50, (size_t)l.reps);
		sr = summarize(r.p50, (size_t)r.reps);
		emit("read_field_p50_us", sl.med, "us", sr.med, sl.med / sr.med, T_NONE, 0, 'v', sl.spread,
		     "lim_db_get_field + lim_field_value + lim_field_free; baseline prepared SELECT value");
		sl99 = summarize(l.p99, (size_t)l.reps);
		sr99 = summarize(r.p99, (size_t)r.reps);
		emit("read_field_p99_us", sl99.med, "us", sr99.med, sl99.med / sr99.med, T_NONE, 0, 'v', sl99.spread, NULL);
		emit("read_field_ratio", sq.med, "x", NAN, NAN, T_MAX, 1.5, 'v', sq.spread,
		     "liblim p50 / raw SQLite p50 (lower is better)");
	}
	lat_pair(OP_LIM_DOC, OP_RAW_DOC, db, &raw, ndocs, reps, quick ? 3000 : 10000, 500, &l, &r);
	{
		double ratios[16];
		for (int k = 0; k < l.reps; k++)
			ratios[k] = l.p50[k] / r.p50[k];
		summary sq = summarize(ratios, (size_t)l.reps);
		sl = summarize(l.p50, (size_t)l.reps);
		sr = summarize(r.p50, (size_t)r.reps);
		emit("read_doc_p50_us", sl.med, "us", sr.med, sl.med / sr.med, T_NONE, 0, 'v', sl.spread,
		     "lim_db_get_json of a 10-field document; baseline prepared SELECT path, value (10 rows)");
		emit("read_doc_ratio", sq.med, "x", NAN, NAN, T_MAX, 1.5, 'v', sq.spread,
		     "liblim p50 / raw SQLite p50 (lower is better)");
	}
	lim_db_free(db);
	raw_close(&raw);
	remove_store(rpath);
}

/* ------------------------------------------------------------ 8. growth */

static void size_label(char *out, size_t cap, long n)
{
	if (n >= 1000000 && n % 1000000 == 0)
		snprintf(out, cap, "%ldm", n / 1000000);
	else if (n >= 1000 && n % 1000 == 0)
		snprintf(out, cap, "%ldk", n / 1000);
	else
		snprintf(out, cap, "%ld", n);
}

static void bench_growth(void)
{
	static const long full_steps[] = { 10000, 100000, 1000000 };
	static const long quick_steps[] = { 10000, 50000 };
	const long *steps = quick ? quick_steps : full_steps;
	int nsteps = quick ? 2 : 3, reps = 3, gf = 2;
	char lpath[4096], rpath[4096], name[96], lab[32], note[200];
	long have = 0;
	lim_db *db;
	raw_db raw;

	snprintf(lpath, sizeof(lpath), "%s/growth.db", dir);
	snprintf(rpath, sizeof(rpath), "%s/growth-raw.db", dir);
	remove_store(lpath);
	remove_store(rpath);
	db = lim_open_store(lpath);
	raw_open(&raw, rpath);
	for (int s = 0; s < nsteps; s++) {
		lat_reps l, r;
		summary a, b;
		double t = now_s();
		size_label(lab, sizeof(lab), steps[s]);
		progress("growth: filling to %s documents", lab);
		/* Documents of 2 fields, 100 documents per change. */
		fill(db, NULL, have, steps[s], gf, 100);
		double fill_lim = now_s() - t;
		t = now_s();
		fill(NULL, &raw, have, steps[s], gf, 100);
		double fill_raw = now_s() - t;
		snprintf(name, sizeof(name), "growth_%s_fill_per_s", lab);
		emit(name, (double)(steps[s] - have) * gf / fill_lim, "writes/s", (double)(steps[s] - have) * gf / fill_raw,
		     fill_raw / fill_lim, T_NONE, 0, 'v', NAN, "filling: 200 field writes per transaction");
		have = steps[s];

		/* Close and reopen so the WAL is checkpointed and the size is the file's. */
		lim_db_free(db);
		raw_close(&raw);
		double lsz = (double)store_size(lpath), rsz = (double)store_size(rpath);
		db = lim_open_store(lpath);
		raw_open(&raw, rpath);
		snprintf(name, sizeof(name), "growth_%s_store_mb", lab);
		snprintf(note, sizeof(note), "%.0f bytes/document (raw %.0f); includes the change log", lsz / (double)have,
		         rsz / (double)have);
		emit(name, lsz / 1048576.0, "MB", rsz / 1048576.0, lsz / rsz, T_NONE, 0, 'v', NAN, note);

		lat_fields = gf;
		lat_pair(OP_LIM_WRITE, OP_RAW_WRITE, db, &raw, have, reps, quick ? 500 : 2000, 200, &l, &r);
		a = summarize(l.p50, (size_t)l.reps);
		b = summarize(r.p50, (size_t)r.reps);
		snprintf(name, sizeof(name), "growth_%s_write_p50_us", lab);
		emit(name, a.med, "us", b.med, a.med / b.med, T_NONE, 0, 'v', a.spread, NULL);
		a = summarize(l.p99, (size_t)l.reps);
		b = summarize(r.p99, (size_t)r.reps);
		snprintf(name, sizeof(name), "growth_%s_write_p99_us", lab);
		emit(name, a.med, "us", b.med, a.med / b.med, T_NONE, 0, 'v', a.spread, NULL);
		lat_pair(OP_LIM_READ, OP_RAW_READ, db, &raw, have, reps, quick ? 2000 : 10000, 500, &l, &r);
		a = summarize(l.p50, (size_t)l.reps);
		b = summarize(r.p50, (size_t)r.reps);
		snprintf(name, sizeof(name), "growth_%s_read_p50_us", lab);
		emit(name, a.med, "us", b.med, a.med / b.med, T_NONE, 0, 'v', a.spread, NULL);
	}
	lat_fields = NFIELDS;
	lim_db_free(db);
	raw_close(&raw);
	remove_store(lpath);
	remove_store(rpath);
}

/* ------------------------------------------------------------ 7. bindings */

/*
 * One round of the binding comparison, through C: the same calls, key
 * choice, counts and warm-up as bench/bench_python.py and bench/go/main.go,
 * in a fresh process on the same store, so that bench/run can alternate
 * C, Python and Go rounds and subtract figures taken seconds apart. A round
 * is SUBROUNDS slices; it reports the lowest slice p50, because on a shared
 * machine a slice that ran undisturbed exists in nearly every round while
 * the disturbed ones come and go (a whole-round p50 moved by 40% between
 * rounds of the same program). Prints "P c <read p50 us> <write p50 us>".
 */
#define SUBROUNDS 5

static double min_of(const double *v, int n)
{
	double m = v[0];
	for (int i = 1; i < n; i++)
		m = v[i] < m ? v[i] : m;
	return m;
}

static void binding_round(const char *path)
{
	lim_db *db = lim_open_store(path);
	lat_reps r, w;
	int nr = quick ? 5000 : 20000, nw = quick ? 1000 : 3000;
	memset(&r, 0, sizeof(r));
	memset(&w, 0, sizeof(w));
	rng_state ^= (uint64_t)getpid() << 32;
	for (int k = 0; k < SUBROUNDS; k++)
		lat_round(OP_LIM_READ, db, NULL, 10000, nr / SUBROUNDS, k == 0 ? 1000 : 0, &r);
	for (int k = 0; k < SUBROUNDS; k++)
		lat_round(OP_LIM_WRITE, db, NULL, 10000, nw / SUBROUNDS, k == 0 ? 300 : 0, &w);
	printf("P\tc\t%.4f\t%.4f\n", min_of(r.p50, SUBROUNDS), min_of(w.p50, SUBROUNDS));
	lim_db_free(db);
}

/*
 * Reads the "P <lang> <read> <write>" lines of the alternating rounds and
 * emits, per binding, its p50s beside C's and the overhead: the median over
 * rounds of (binding p50 - C p50 of the same round), so a change of machine
 * load between rounds cancels out instead of landing in the figure.
 */
static void binding_summary(const char *file)
{
	static const char *const langs[] = { "python", "go" };
	static const char *const calls[][2] = {
		{ "lim.Store.get_field through cffi", "lim.Store.set through cffi (one committed change)" },
		{ "DB.GetField through cgo", "DB.Set through cgo (one committed change)" },
	};
	double c[2][16], b[2][2][16];
	int nc = 0, nb[2] = { 0, 0 };
	char line[256], lang[32];
	FILE *f = fopen(file, "r");
	if (!f)
		die("open %s: %s", file, strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		double rd, wr;
		if (sscanf(line, "P\t%31s\t%lf\t%lf", lang, &rd, &wr) != 3)
			continue;
		if (strcmp(lang, "c") == 0 && nc < 16) {
			c[0][nc] = rd;
			c[1][nc++] = wr;
		}
		for (int l = 0; l < 2; l++)
			if (strcmp(lang, langs[l]) == 0 && nb[l] < 16 && nb[l] < nc) {
				/* paired with the C round just before it */
				b[l][0][nb[l]] = rd;
				b[l][1][nb[l]++] = wr;
			}
	}
	fclose(f);
	for (int l = 0; l < 2; l++) {
		char name[64], note[200];
		if (nb[l] == 0)
			continue;
		for (int op = 0; op < 2; op++) {
			double diff[16], cc[16];
			for (int k = 0; k < nb[l]; k++) {
				cc[k] = c[op][k];
				diff[k] = b[l][op][k] - c[op][k];
			}
			summary sb = summarize(b[l][op], (size_t)nb[l]), sc = summarize(cc, (size_t)nb[l]);
			summary sd = summarize(diff, (size_t)nb[l]);
			snprintf(name, sizeof(name), "%s_%s_p50_us", langs[l], op ? "write" : "read");
			snprintf(note, sizeof(note),
			         "%s; baseline: the same C call%s in a C round just before; %d rounds, each the lowest of %d"
			         " slice p50s", calls[l][op], op ? "s (lim_db_set)" : "s (lim_db_get_field + lim_field_value)",
			         nb[l], SUBROUNDS);
			emit(name, sb.med, "us", sc.med, sb.med / sc.med, T_NONE, 0, 'v', sb.spread, note);
			snprintf(name, sizeof(name), "%s_%s_overhead_us", langs[l], op ? "write" : "call");
			snprintf(note, sizeof(note), "median over rounds of (%s_%s_p50_us - C p50 of the same round)", langs[l],
			         op ? "write" : "read");
			/* The spread of a difference near zero is meaningless as a
			 * percentage: give the range in the note instead. */
			double lo = diff[0], hi = diff[0];
			for (int k = 1; k < nb[l]; k++) {
				lo = diff[k] < lo ? diff[k] : lo;
				hi = diff[k] > hi ? diff[k] : hi;
			}
			snprintf(note + strlen(note), sizeof(note) - strlen(note), "; range %.2f..%.2f us", lo, hi);
			emit(name, sd.med, "us", NAN, NAN, T_NONE, 0, 'v', NAN, note);
		}
	}
}

int main(int argc, char **argv)
{
	int do_crypto = 1, do_local = 1, do_growth = 1;
	const char *round_db = NULL, *summary_file = NULL;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--quick") == 0)
			quick = 1;
		else if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
			dir = argv[++i];
		else if (strcmp(argv[i], "--binding-round") == 0 && i + 1 < argc)
			round_db = argv[++i];
		else if (strcmp(argv[i], "--binding-summary") == 0 && i + 1 < argc)
			summary_file = argv[++i];
		else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc) {
			const char *w = argv[++i];
			do_crypto = strstr(w, "crypto") != NULL;
			do_local = strstr(w, "local") != NULL;
			do_growth = strstr(w, "growth") != NULL;
		} else
			die("usage: bench_core [--quick] [--only crypto,local,growth] --dir DIR\n"
			    "       bench_core [--quick] --binding-round STORE\n"
			    "       bench_core --binding-summary FILE");
	}
	if (sodium_init() < 0)
		die("sodium_init failed");
	if (summary_file) {
		binding_summary(summary_file);
		return 0;
	}
	if (round_db) {
		binding_round(round_db);
		return 0;
	}
	if (!dir)
		die("--dir is required");
	info("sqlite_version", "%s", sqlite3_libversion());
	info("sodium_version", "%s", sodium_version_string());
	info("lim_version", "%s", lim_version());
	double t0 = now_s(), w0 = proc_runq_wait_s(getpid());
	if (do_crypto)
		bench_crypto();
	if (do_local)
		bench_local();
	if (do_growth)
		bench_growth();
	emit("core_cpu_wait_pct", 100 * (proc_runq_wait_s(getpid()) - w0) / (now_s() - t0), "%", NAN, NAN, T_NONE, 0, 'v',
	     NAN, "share of this section's time bench_core was runnable but waiting for a CPU taken by other work");
	info("bench_core_peak_rss_mb", "%.1f", self_peak_rss_mb());
	return 0;
}
