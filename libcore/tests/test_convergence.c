/*
 * Convergence: any replicas that have seen the same set of changes hold the
 * same state (DESIGN.md invariant 1), whatever the order, duplication or
 * delay of delivery, and the merge rules pick the documented winners.
 *
 * The main case is a seeded, deterministic simulation over the public API
 * only: several in-memory replicas sharing one network key, each with its own
 * simulated clock, make random writes of every kind (some in transactions,
 * some rolled back), exchange partial syncs while writing, and are finally
 * brought to the same set of changes by delivering every author's chain to
 * every replica in a different random interleaving, with duplicates and
 * out-of-order deliveries (which must be refused with LIM_EGAP and succeed
 * when retried later). Then digests, version vectors, documents, a rebuild
 * and lim_db_verify() must all agree.
 *
 *   LIM_SEEDS=n   number of seeds to run (default 200, seeds 1..n)
 *   LIM_SEED=s    run only seed s (printed on any failure)
 *
 * The smaller cases pin down the merge rules one at a time: LWW by
 * (HLC, author), document delete then re-create, counters summed exactly
 * once, add-wins sets.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <float.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lim.h"

/* ------------------------------------------------------------ reporting */

static unsigned long long g_seed;
static int g_have_seed;

static void report_failure(const char *file, int line, const char *expr,
                           const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	print_error("%s:%d: check failed: %s\n", file, line, expr);
	if (msg[0])
		print_error("  %s\n", msg);
	print_error("  last library error: %s: %s\n",
	            lim_error_name(lim_error_last_code()), lim_error_last());
	if (g_have_seed)
		print_error("seed %llu (rerun with LIM_SEED=%llu)\n", g_seed, g_seed);
}

#define REQUIRE(cond, ...) do { \
	if (!(cond)) { \
		report_failure(__FILE__, __LINE__, #cond, __VA_ARGS__); \
		fail(); \
	} \
} while (0)

#define RC_OK(call) do { \
	int rc_ok_ = (call); \
	REQUIRE(rc_ok_ == 0, "%s returned %d (%s)", #call, rc_ok_, lim_error_name(rc_ok_)); \
} while (0)

/* ------------------------------------------------------------ PRNG (splitmix64) */

typedef struct {
	uint64_t s;
} rng;

static uint64_t rng_next(rng *g)
{
	uint64_t z = (g->s += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static uint64_t rng_below(rng *g, uint64_t n)
{
	return n ? rng_next(g) % n : 0;
}

static int rng_chance(rng *g, unsigned pct)
{
	return rng_below(g, 100) < pct;
}

/* ------------------------------------------------------------ replicas */

#define MAX_REPLICAS 8
#define BASE_TIME_MS INT64_C(1700000000000)
/* Generous: nothing in these tests may be refused for drift. */
#define DRIFT_MS INT64_C(86400000)

typedef struct {
	lim_db *db;
	int64_t now; /* simulated wall clock, ms */
	unsigned char id[LIM_ID_BYTES];
	char hex[2 * LIM_ID_BYTES + 1];
} replica;

static int64_t sim_clock(void *ctx)
{
	return ((const replica *)ctx)->now;
}

static const unsigned char k_network_key[LIM_NETWORK_KEY_BYTES] = {
	0x6c, 0x69, 0x6d, 0x2d, 0x63, 0x6f, 0x6e, 0x76, 0x65, 0x72, 0x67, 0x65,
	0x6e, 0x63, 0x65, 0x2d, 0x74, 0x65, 0x73, 0x74, 0x00, 0x01, 0x02, 0x03,
	0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b
};

static void replica_open(replica *r, int64_t start_ms)
{
	lim_db_options o;
	unsigned char key[LIM_NETWORK_KEY_BYTES];
	static const char hexd[] = "0123456789abcdef";

	memset(r, 0, sizeof(*r));
	r->now = start_ms;
	RC_OK(lim_db_options_init(&o, LIM_DB_OPTIONS_VERSION));
	o.clock = sim_clock;
	o.clock_ctx = r;
	o.max_drift_ms = DRIFT_MS;
	o.network_key = k_network_key;
	RC_OK(lim_db_open(&r->db, ":memory:", &o));
	REQUIRE(r->db != NULL, "%s", "lim_db_open gave no handle");
	RC_OK(lim_db_replica_id(r->db, r->id));
	RC_OK(lim_db_network_key(r->db, key));
	REQUIRE(memcmp(key, k_network_key, sizeof(key)) == 0, "%s", "network key differs");
	for (size_t i = 0; i < LIM_ID_BYTES; i++) {
		r->hex[2 * i] = hexd[r->id[i] >> 4];
		r->hex[2 * i + 1] = hexd[r->id[i] & 15];
	}
	r->hex[2 * LIM_ID_BYTES] = '\0';
}

static void replica_close(replica *r)
{
	lim_db_free(r->db);
	r->db = NULL;
}

/* Case-insensitive match of an author hex string against the replicas. */
static int find_author(const replica *reps, size_t n, const char *hex, size_t len)
{
	if (len != 2 * LIM_ID_BYTES)
		return -1;
	for (size_t i = 0; i < n; i++) {
		size_t j;
		for (j = 0; j < len; j++)
			if (tolower((unsigned char)hex[j]) != reps[i].hex[j])
				break;
		if (j == len)
			return (int)i;
	}
	return -1;
}

/* ------------------------------------------------------------ byte vectors */

typedef struct {
	char *p;
	size_t n;
} blob;

typedef struct {
	blob *v;
	size_t n, cap;
} blobvec;

static void bv_push(blobvec *bv, const char *p, size_t n)
{
	if (bv->n == bv->cap) {
		bv->cap = bv->cap ? 2 * bv->cap : 16;
		bv->v = realloc(bv->v, bv->cap * sizeof(*bv->v));
		REQUIRE(bv->v != NULL, "%s", "out of memory");
	}
	bv->v[bv->n].p = malloc(n ? n : 1);
	REQUIRE(bv->v[bv->n].p != NULL, "%s", "out of memory");
	memcpy(bv->v[bv->n].p, p, n);
	bv->v[bv->n].n = n;
	bv->n++;
}

static void bv_free(blobvec *bv)
{
	for (size_t i = 0; i < bv->n; i++)
		free(bv->v[i].p);
	free(bv->v);
	memset(bv, 0, sizeof(*bv));
}

static int blob_eq(const blob *b, const char *p, size_t n)
{
	return b->n == n && memcmp(b->p, p, n) == 0;
}

/* ------------------------------------------------------------ small helpers */

static void get_digest(lim_db *db, char out[65])
{
	memset(out, 0, 65);
	RC_OK(lim_db_digest(db, out));
	REQUIRE(strlen(out) == 64, "digest '%s' is not 64 hex chars", out);
}

/* The version vector text (caller disposes). */
static void get_vv(lim_db *db, lim_buf *out)
{
	*out = (lim_buf)LIM_BUF_INIT;
	RC_OK(lim_db_version_vector(out, db));
}

static int buf_eq(const lim_buf *a, const lim_buf *b)
{
	return a->size == b->size && (a->size == 0 || memcmp(a->ptr, b->ptr, a->size) == 0);
}

/*
 * Parse version vector text into per-replica seqs (authors not among the
 * replicas fail the test). seqs[] must have n entries; missing authors are 0.
 */
static void parse_vv(const replica *reps, size_t n, const lim_buf *vv, uint64_t *seqs)
{
	const char *p = vv->ptr, *end = vv->ptr + vv->size;

	for (size_t i = 0; i < n; i++)
		seqs[i] = 0;
	while (p && p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *sp;
		char num[32];
		int a;

		REQUIRE(nl != NULL, "version vector line without LF: '%.*s'", (int)(end - p), p);
		sp = memchr(p, ' ', (size_t)(nl - p));
		REQUIRE(sp != NULL, "bad version vector line '%.*s'", (int)(nl - p), p);
		a = find_author(reps, n, p, (size_t)(sp - p));
		REQUIRE(a >= 0, "unknown author in version vector line '%.*s'", (int)(nl - p), p);
		REQUIRE((size_t)(nl - sp - 1) < sizeof(num) && nl - sp > 1,
		        "bad seq in '%.*s'", (int)(nl - p), p);
		memcpy(num, sp + 1, (size_t)(nl - sp - 1));
		num[nl - sp - 1] = '\0';
		seqs[a] = strtoull(num, NULL, 10);
		p = nl + 1;
	}
}

/* Apply everything `src` has that `dst` lacks (at most `limit` changes);
 * each must be new to dst. Returns how many were applied. */
static size_t sync_pair(replica *src, replica *dst, size_t limit)
{
	lim_buf vv;
	lim_change_iter *it = NULL;
	size_t n = 0;

	get_vv(dst->db, &vv);
	RC_OK(lim_db_changes_since(&it, src->db, vv.ptr, vv.size));
	while (n < limit) {
		const char *bytes;
		size_t len;
		lim_apply_stats st = { 0, 0 };
		int rc = lim_change_iter_next(it, &bytes, &len);

		if (rc == LIM_EITEROVER)
			break;
		REQUIRE(rc == 0, "lim_change_iter_next: %d", rc);
		rc = lim_db_apply(dst->db, bytes, len, &st);
		REQUIRE(rc == 0, "sync apply returned %d (%s)", rc, lim_error_name(rc));
		REQUIRE(st.applied == 1 && st.duplicates == 0,
		        "a change dst lacked: applied=%zu duplicates=%zu", st.applied, st.duplicates);
		n++;
	}
	lim_change_iter_free(it);
	lim_buf_dispose(&vv);
	return n;
}

/* Deliver every change of src to dst twice (duplicates must be no-ops). */
static void sync_dup(replica *src, replica *dst)
{
	lim_change_iter *it = NULL;
	const char *bytes;
	size_t len;
	int rc;

	RC_OK(lim_db_changes_since(&it, src->db, NULL, 0));
	while ((rc = lim_change_iter_next(it, &bytes, &len)) == 0) {
		for (int k = 0; k < 2; k++) {
			lim_apply_stats st = { 0, 0 };
			rc = lim_db_apply(dst->db, bytes, len, &st);
			REQUIRE(rc == 0, "apply returned %d (%s)", rc, lim_error_name(rc));
			REQUIRE(st.applied + st.duplicates == 1, "applied=%zu duplicates=%zu",
			        st.applied, st.duplicates);
			if (k == 1)
				REQUIRE(st.duplicates == 1, "%s", "second delivery was not a duplicate");
		}
	}
	REQUIRE(rc == LIM_EITEROVER, "lim_change_iter_next: %d", rc);
	lim_change_iter_free(it);
}

/* The newest log entry of db (its hlc and author). */
static void newest_change(lim_db *db, uint64_t *hlc, char author[2 * LIM_ID_BYTES + 1])
{
	lim_log_iter *it = NULL;
	lim_change_info ci;

	RC_OK(lim_db_log(&it, db, 1));
	RC_OK(lim_log_iter_next(it, &ci));
	*hlc = ci.hlc;
	memcpy(author, ci.author, 2 * LIM_ID_BYTES + 1);
	lim_log_iter_free(it);
}

/* ------------------------------------------------------------ random values */

static const char *const k_strings[] = {
	"", "a", "h\xc3\xa9llo", "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e",
	"emoji \xf0\x9f\x98\x80!", "quote\" back\\slash\nnl\ttab", "ctl\x01\x1f",
	"  spaces  ", "{\"not\":\"json\"}", "\xc3\x9f\xe2\x82\xac\xf0\x90\x8d\x88"
};
static const struct {
	const char *p;
	size_t n;
} k_bytes[] = {
	{ "", 0 }, { "\0", 1 }, { "\0\0\x01\xff", 4 }, { "\xff\xfe\x00z", 4 },
	{ "abc", 3 }, { "\x80\x81\xc0\xc1", 4 }
};

/* A random scalar; `scratch` (>= 32 bytes) backs random strings/bytes. */
static void random_value(rng *g, lim_value *v, char *scratch)
{
	memset(v, 0, sizeof(*v));
	switch (rng_below(g, 6)) {
	case 0:
		v->type = LIM_NULL;
		break;
	case 1:
		v->type = LIM_BOOL;
		v->boolean = (int)rng_below(g, 2);
		break;
	case 2:
		v->type = LIM_INT;
		switch (rng_below(g, 6)) {
		case 0: v->integer = INT64_MIN; break;
		case 1: v->integer = INT64_MAX; break;
		case 2: v->integer = 0; break;
		case 3: v->integer = -1; break;
		case 4: v->integer = (int64_t)rng_below(g, 1000) - 500; break;
		default: v->integer = (int64_t)rng_next(g); break;
		}
		break;
	case 3: {
		static const double k_doubles[] = {
			0.0, -0.0, 1.5, -2.25, 0.1, DBL_MAX, -DBL_MAX, DBL_MIN,
			4.9406564584124654e-324, 1e-300, 123456789.125, -1e15
		};
		v->type = LIM_FLOAT;
		if (rng_chance(g, 70))
			v->real = k_doubles[rng_below(g, sizeof(k_doubles) / sizeof(k_doubles[0]))];
		else
			v->real = (double)(int64_t)rng_next(g) / 1048576.0;
		break;
	}
	case 4:
		v->type = LIM_STRING;
		if (rng_chance(g, 60)) {
			const char *s = k_strings[rng_below(g, sizeof(k_strings) / sizeof(k_strings[0]))];
			v->str = s;
			v->len = strlen(s);
		} else {
			size_t n = (size_t)rng_below(g, 24);
			for (size_t i = 0; i < n; i++)
				scratch[i] = (char)('a' + rng_below(g, 26));
			v->str = scratch;
			v->len = n;
		}
		break;
	default:
		v->type = LIM_BYTES;
		if (rng_chance(g, 60)) {
			size_t k = (size_t)rng_below(g, sizeof(k_bytes) / sizeof(k_bytes[0]));
			v->str = k_bytes[k].p;
			v->len = k_bytes[k].n;
		} else {
			size_t n = (size_t)rng_below(g, 24);
			for (size_t i = 0; i < n; i++)
				scratch[i] = rng_chance(g, 30) ? '\0' : (char)rng_next(g);
			v->str = scratch;
			v->len = n;
		}
		break;
	}
}

/* A small pool of set elements, so removes hit present elements. */
static void random_element(rng *g, lim_value *v)
{
	static const char zero[1] = { 0 };

	memset(v, 0, sizeof(*v));
	switch (rng_below(g, 9)) {
	case 0: v->type = LIM_STRING; v->str = "x"; v->len = 1; break;
	case 1: v->type = LIM_STRING; v->str = "y"; v->len = 1; break;
	case 2: v->type = LIM_STRING; v->str = "\xc3\xa9"; v->len = 2; break;
	case 3: v->type = LIM_INT; v->integer = 1; break;
	case 4: v->type = LIM_INT; v->integer = INT64_MIN; break;
	case 5: v->type = LIM_BYTES; v->str = zero; v->len = 1; break;
	case 6: v->type = LIM_BOOL; v->boolean = 1; break;
	case 7: v->type = LIM_FLOAT; v->real = -0.0; break;
	default: v->type = LIM_NULL; break;
	}
}

static const char *const k_json_values[] = {
	"null", "true", "false", "0", "-7", "123456789012", "9007199254740993",
	"1.5", "-0.0", "2.5e-7", "-1.25e15", "1e-300", "\"\"", "\"plain\"",
	"\"\\u00e9t\\u00e9 \\ud83d\\ude00\"", "\"tab\\tnl\\n\\\"q\\\"\"",
	"\"\xe6\x97\xa5\xe6\x9c\xac\"", "\"ctl\\u0001\""
};

static const char *random_json_value(rng *g)
{
	return k_json_values[rng_below(g, sizeof(k_json_values) / sizeof(k_json_values[0]))];
}

/* ------------------------------------------------------------ random writes */

static const char *const k_colls[] = { "c0", "c1" };
static const char *const k_docs[] = { "d0", "d1", "d2", "d3", "d\xc3\xa9\xf0\x9f\x98\x80", "d 5" };
static const char *const k_hot_docs[] = { "h0", "h1" };
static const char *const k_regs[] = { "r0", "r1", "r2", "r3", "o.x", "o.y.z", "o.y.w" };
static const char *const k_del_paths[] = { "r0", "r1", "r2", "r3", "o.x", "o.y.z", "o.y.w", "o", "o.y" };
static const char *const k_hot_regs[] = { "f", "g" };
static const char *const k_counters[] = { "n0", "n1" };
static const char *const k_sets[] = { "s0", "s1" };
static const char *const k_mix_paths[] = { "p", "p.q", "p.q.r" };

#define PICK(g, arr) ((arr)[rng_below((g), sizeof(arr) / sizeof((arr)[0]))])

typedef struct {
	unsigned long writes, hot, egaps, dups, txns, rollbacks;
} sim_stats;

static void require_rc(int rc, int ok2, int ok3, const char *what)
{
	REQUIRE(rc == 0 || (ok2 && rc == ok2) || (ok3 && rc == ok3),
	        "%s returned %d (%s)", what, rc, lim_error_name(rc));
}

/*
 * One random write on r. With `safe`, only ops that must succeed (used to
 * make sure a transaction is not empty). Clock advances first.
 */
static void random_op(rng *g, replica *r, int safe, sim_stats *ss)
{
	char scratch[32];
	char json[512];
	lim_value v;
	int hot = rng_chance(g, 30);
	const char *coll = hot ? "hot" : PICK(g, k_colls);
	const char *doc = hot ? PICK(g, k_hot_docs) : PICK(g, k_docs);
	unsigned k = (unsigned)rng_below(g, safe ? 70 : 100);
	int rc;

	/* Simulated wall clock: small forward steps, some repeats, rare steps back. */
	if (rng_chance(g, 3))
		r->now -= (int64_t)rng_below(g, 10);
	else if (!rng_chance(g, 15))
		r->now += 1 + (int64_t)rng_below(g, 40);

	ss->writes++;
	ss->hot += (unsigned long)hot;

	if (k < 30) {
		random_value(g, &v, scratch);
		rc = lim_db_set(r->db, coll, doc, hot ? PICK(g, k_hot_regs) : PICK(g, k_regs), &v);
		require_rc(rc, 0, 0, "lim_db_set");
	} else if (k < 42) {
		if (hot) {
			if (rng_chance(g, 50))
				snprintf(json, sizeof(json), "{\"f\": %s}", random_json_value(g));
			else
				snprintf(json, sizeof(json), "{\"g\":%s,\"f\":%s}",
				         random_json_value(g), random_json_value(g));
		} else {
			switch (rng_below(g, 3)) {
			case 0:
				snprintf(json, sizeof(json), "{\"r0\": %s, \"o\": {\"x\": %s}}",
				         random_json_value(g), random_json_value(g));
				break;
			case 1:
				snprintf(json, sizeof(json), "{\"o\":{\"y\":{\"z\":%s,\"w\":%s}},\"r1\":%s}",
				         random_json_value(g), random_json_value(g), random_json_value(g));
				break;
			default:
				snprintf(json, sizeof(json),
				         "{ \"o\" : { \"x\" : %s , \"y\" : { \"w\" : %s } } ,\n \"r2\" : %s, \"r3\": %s }",
				         random_json_value(g), random_json_value(g),
				         random_json_value(g), random_json_value(g));
				break;
			}
		}
		rc = lim_db_put_json(r->db, coll, doc, json, strlen(json));
		REQUIRE(rc == 0, "lim_db_put_json(%s) returned %d (%s)", json, rc, lim_error_name(rc));
	} else if (k < 56) {
		int64_t delta = (int64_t)rng_below(g, 2000) - 1000;
		if (delta == 0)
			delta = 1;
		if (rng_chance(g, 5))
			delta = rng_chance(g, 50) ? 1000000000 : -1000000000;
		rc = lim_db_incr(r->db, coll, doc, hot ? "n" : PICK(g, k_counters), delta);
		require_rc(rc, 0, 0, "lim_db_incr");
	} else if (k < 70) {
		random_element(g, &v);
		rc = lim_db_set_add(r->db, coll, doc, hot ? "s" : PICK(g, k_sets), &v);
		require_rc(rc, 0, 0, "lim_db_set_add");
	} else if (k < 80) {
		random_element(g, &v);
		rc = lim_db_set_remove(r->db, coll, doc, hot ? "s" : PICK(g, k_sets), &v);
		require_rc(rc, LIM_ENOTFOUND, 0, "lim_db_set_remove");
	} else if (k < 89) {
		rc = lim_db_delete(r->db, coll, doc, hot ? PICK(g, k_hot_regs) : PICK(g, k_del_paths));
		require_rc(rc, LIM_ENOTFOUND, 0, "lim_db_delete(field)");
	} else if (k < 93) {
		rc = lim_db_delete(r->db, coll, doc, NULL);
		require_rc(rc, LIM_ENOTFOUND, 0, "lim_db_delete(document)");
	} else {
		/* One document where any kind of op may hit any path, including
		 * prefixes of each other: the library may refuse some locally, but
		 * whatever it accepts must still converge. */
		const char *path = PICK(g, k_mix_paths);
		ss->hot++;
		switch (rng_below(g, 7)) {
		case 0:
			random_value(g, &v, scratch);
			rc = lim_db_set(r->db, "mix", "m", path, &v);
			break;
		case 1:
			rc = lim_db_incr(r->db, "mix", "m", path, (int64_t)rng_below(g, 9) - 4);
			break;
		case 2:
			random_element(g, &v);
			rc = lim_db_set_add(r->db, "mix", "m", path, &v);
			break;
		case 3:
			random_element(g, &v);
			rc = lim_db_set_remove(r->db, "mix", "m", path, &v);
			break;
		case 4:
			rc = lim_db_delete(r->db, "mix", "m", path);
			break;
		case 5:
			rc = lim_db_delete(r->db, "mix", "m", NULL);
			break;
		default:
			if (rng_chance(g, 50))
				snprintf(json, sizeof(json), "{\"p\":{\"q\":%s}}", random_json_value(g));
			else
				snprintf(json, sizeof(json), "{\"p\":%s}", random_json_value(g));
			rc = lim_db_put_json(r->db, "mix", "m", json, strlen(json));
			break;
		}
		require_rc(rc, LIM_ENOTFOUND, LIM_EINVALID, "mixed-kind op");
	}
}

/* One write unit: a single op, or a transaction of several ops (sometimes
 * rolled back, which must leave no trace). */
static void random_unit(rng *g, replica *r, sim_stats *ss)
{
	if (rng_chance(g, 25)) {
		unsigned n = 2 + (unsigned)rng_below(g, 4);
		int rollback = rng_chance(g, 20);
		char before[65], after[65];
		lim_buf vv_before = LIM_BUF_INIT, vv_after = LIM_BUF_INIT;

		if (rollback) {
			get_digest(r->db, before);
			get_vv(r->db, &vv_before);
		}
		RC_OK(lim_db_begin(r->db));
		REQUIRE(lim_db_begin(r->db) == LIM_ETXN, "%s", "nested begin must fail with LIM_ETXN");
		random_op(g, r, 1, ss);
		for (unsigned i = 1; i < n; i++)
			random_op(g, r, 0, ss);
		ss->txns++;
		if (rollback) {
			RC_OK(lim_db_rollback(r->db));
			ss->rollbacks++;
			get_digest(r->db, after);
			get_vv(r->db, &vv_after);
			REQUIRE(strcmp(before, after) == 0, "%s", "rollback changed the digest");
			REQUIRE(buf_eq(&vv_before, &vv_after), "%s", "rollback changed the version vector");
			lim_buf_dispose(&vv_before);
			lim_buf_dispose(&vv_after);
		} else {
			RC_OK(lim_db_commit(r->db));
		}
		REQUIRE(lim_db_commit(r->db) == LIM_ETXN, "%s", "commit without begin must fail with LIM_ETXN");
	} else {
		random_op(g, r, 0, ss);
	}
}

/* ------------------------------------------------------------ collecting the logs */

/*
 * held[r][a]: the changes of author a that replica r holds, in seq order, as
 * lim_db_log() reports them. Also checks that lim_db_changes_since(r, NULL)
 * streams exactly those, per author in seq order, and that the version
 * vector agrees.
 */
static void collect_replica(replica *reps, size_t n, size_t r, blobvec *held)
{
	lim_log_iter *lit = NULL;
	lim_change_iter *cit = NULL;
	lim_change_info ci;
	size_t pos[MAX_REPLICAS] = { 0 };
	uint64_t seqs[MAX_REPLICAS];
	lim_buf vv;
	const char *bytes;
	size_t len, total = 0, streamed = 0;
	int rc;

	RC_OK(lim_db_log(&lit, reps[r].db, 0));
	while ((rc = lim_log_iter_next(lit, &ci)) == 0) {
		int a = find_author(reps, n, ci.author, strlen(ci.author));
		REQUIRE(a >= 0, "replica %zu: log names unknown author %s", r, ci.author);
		REQUIRE(ci.seq == held[a].n + 1,
		        "replica %zu: author %d arrived out of order: seq %" PRIu64 " after %zu",
		        r, a, ci.seq, held[a].n);
		REQUIRE(ci.len > 0 && ci.bytes != NULL, "%s", "empty change in log");
		bv_push(&held[a], ci.bytes, ci.len);
		total++;
	}
	REQUIRE(rc == LIM_EITEROVER, "lim_log_iter_next returned %d", rc);
	lim_log_iter_free(lit);

	RC_OK(lim_db_changes_since(&cit, reps[r].db, NULL, 0));
	while ((rc = lim_change_iter_next(cit, &bytes, &len)) == 0) {
		size_t a;
		for (a = 0; a < n; a++)
			if (pos[a] < held[a].n && blob_eq(&held[a].v[pos[a]], bytes, len))
				break;
		REQUIRE(a < n, "replica %zu: changes_since item %zu is not the next change of any author",
		        r, streamed);
		pos[a]++;
		streamed++;
	}
	REQUIRE(rc == LIM_EITEROVER, "lim_change_iter_next returned %d", rc);
	lim_change_iter_free(cit);
	REQUIRE(streamed == total, "replica %zu: changes_since gave %zu changes, log has %zu",
	        r, streamed, total);

	get_vv(reps[r].db, &vv);
	parse_vv(reps, n, &vv, seqs);
	for (size_t a = 0; a < n; a++)
		REQUIRE(seqs[a] == held[a].n, "replica %zu: vv says %" PRIu64 " for author %zu, log has %zu",
		        r, seqs[a], a, held[a].n);
	lim_buf_dispose(&vv);
}

/* ------------------------------------------------------------ final delivery */

typedef struct {
	size_t author, idx;
} pend;

enum { OUT_APPLIED, OUT_DUP, OUT_GAP };

static int deliver(rng *g, replica *t, size_t tn, const blobvec *chain, size_t a, size_t idx,
                   size_t *have, sim_stats *ss)
{
	lim_apply_stats st = { 0, 0 };
	int expect = idx < have[a] ? OUT_DUP : idx == have[a] ? OUT_APPLIED : OUT_GAP;
	int check_untouched = expect == OUT_GAP && rng_chance(g, 20);
	char before[65], after[65];
	int rc;

	if (check_untouched)
		get_digest(t->db, before);
	rc = lim_db_apply(t->db, chain[a].v[idx].p, chain[a].v[idx].n, &st);
	if (expect == OUT_GAP) {
		REQUIRE(rc == LIM_EGAP, "replica %zu: change %zu of author %zu while holding %zu: "
		        "expected LIM_EGAP, got %d (%s)", tn, idx + 1, a, have[a], rc, lim_error_name(rc));
		ss->egaps++;
		if (check_untouched) {
			get_digest(t->db, after);
			REQUIRE(strcmp(before, after) == 0, "%s", "a refused change altered the state");
		}
		return expect;
	}
	REQUIRE(rc == 0, "replica %zu: apply change %zu of author %zu (holding %zu) returned %d (%s)",
	        tn, idx + 1, a, have[a], rc, lim_error_name(rc));
	if (expect == OUT_APPLIED) {
		REQUIRE(st.applied == 1 && st.duplicates == 0, "new change: applied=%zu duplicates=%zu",
		        st.applied, st.duplicates);
		have[a]++;
	} else {
		REQUIRE(st.applied == 0 && st.duplicates == 1, "duplicate: applied=%zu duplicates=%zu",
		        st.applied, st.duplicates);
		ss->dups++;
	}
	return expect;
}

/* Bring replica t up to every author's full chain, in a random interleaving
 * with duplicates and out-of-order deliveries. */
static void deliver_all(rng *g, replica *reps, size_t n, size_t t, const blobvec *chain,
                        const blobvec *held_t, sim_stats *ss)
{
	size_t have[MAX_REPLICAS], next[MAX_REPLICAS];
	pend *pending = NULL;
	size_t npend = 0, cap = 0;

	for (size_t a = 0; a < n; a++) {
		have[a] = held_t[a].n;
		/* Start the in-order stream a little before what t holds. */
		next[a] = have[a] - (size_t)rng_below(g, (have[a] < 3 ? have[a] : 3) + 1);
		if (a == t)
			next[a] = chain[a].n;
	}
	for (;;) {
		size_t cand[MAX_REPLICAS], nc = 0;
		unsigned k;

		for (size_t a = 0; a < n; a++)
			if (next[a] < chain[a].n)
				cand[nc++] = a;
		if (nc == 0 && npend == 0)
			break;
		k = (unsigned)rng_below(g, 100);
		if (nc == 0 || (k < 10 && npend > 0)) {
			/* retry a refused change */
			size_t i = (size_t)rng_below(g, npend);
			int out = deliver(g, &reps[t], t, chain, pending[i].author, pending[i].idx, have, ss);
			if (out != OUT_GAP)
				pending[i] = pending[--npend];
		} else if (k < 17) {
			/* a duplicate of something held */
			size_t a = (size_t)rng_below(g, n);
			if (have[a] > 0)
				deliver(g, &reps[t], t, chain, a, (size_t)rng_below(g, have[a]), have, ss);
		} else if (k < 27) {
			/* a change ahead of its predecessor */
			size_t a = cand[rng_below(g, nc)];
			size_t idx = next[a] + 1 + (size_t)rng_below(g, 3);
			if (idx < chain[a].n &&
			    deliver(g, &reps[t], t, chain, a, idx, have, ss) == OUT_GAP) {
				size_t i;
				for (i = 0; i < npend; i++)
					if (pending[i].author == a && pending[i].idx == idx)
						break;
				if (i == npend) {
					if (npend == cap) {
						cap = cap ? 2 * cap : 16;
						pending = realloc(pending, cap * sizeof(*pending));
						REQUIRE(pending != NULL, "%s", "out of memory");
					}
					pending[npend].author = a;
					pending[npend].idx = idx;
					npend++;
				}
			}
		} else {
			size_t a = cand[rng_below(g, nc)];
			deliver(g, &reps[t], t, chain, a, next[a], have, ss);
			next[a]++;
		}
	}
	for (size_t a = 0; a < n; a++)
		REQUIRE(have[a] == chain[a].n, "replica %zu holds %zu of author %zu's %zu changes",
		        t, have[a], a, chain[a].n);
	free(pending);
}

/* ------------------------------------------------------------ final comparison */

static void compare_json(replica *reps, size_t n, const char *coll, const char *doc,
                         const char *path)
{
	lim_buf first = LIM_BUF_INIT;
	int rc0 = lim_db_get_json(&first, reps[0].db, coll, doc, path);

	REQUIRE(rc0 == 0 || rc0 == LIM_ENOTFOUND, "get_json(%s/%s/%s) returned %d (%s)",
	        coll, doc, path ? path : "", rc0, lim_error_name(rc0));
	for (size_t r = 1; r < n; r++) {
		lim_buf other = LIM_BUF_INIT;
		int rc = lim_db_get_json(&other, reps[r].db, coll, doc, path);
		REQUIRE(rc == rc0, "get_json(%s/%s/%s): replica 0 rc %d, replica %zu rc %d",
		        coll, doc, path ? path : "", rc0, r, rc);
		REQUIRE(rc != 0 || buf_eq(&first, &other),
		        "get_json(%s/%s/%s) differs:\n  replica 0:  %s\n  replica %zu: %s",
		        coll, doc, path ? path : "", first.ptr, r, other.ptr);
		lim_buf_dispose(&other);
	}
	lim_buf_dispose(&first);
}

/* Document keys of a collection, joined with '\n'. */
static void doc_keys(lim_db *db, const char *coll, lim_buf *out)
{
	lim_doc_iter *it = NULL;
	const char *key;
	size_t cap = 0;
	int rc;

	*out = (lim_buf)LIM_BUF_INIT;
	RC_OK(lim_db_docs(&it, db, coll, NULL, NULL));
	while ((rc = lim_doc_iter_next(it, &key)) == 0) {
		size_t kl = strlen(key);
		if (out->size + kl + 2 > cap) {
			cap = 2 * (out->size + kl + 2);
			out->ptr = realloc(out->ptr, cap);
			REQUIRE(out->ptr != NULL, "%s", "out of memory");
		}
		memcpy(out->ptr + out->size, key, kl);
		out->size += kl;
		out->ptr[out->size++] = '\n';
		out->ptr[out->size] = '\0';
	}
	REQUIRE(rc == LIM_EITEROVER, "lim_doc_iter_next returned %d", rc);
	lim_doc_iter_free(it);
}

static void compare_all(replica *reps, size_t n)
{
	static const char *const colls[] = { "c0", "c1", "hot", "mix" };
	char d0[65], d[65];
	lim_buf vv0, vv;

	get_digest(reps[0].db, d0);
	get_vv(reps[0].db, &vv0);
	for (size_t r = 1; r < n; r++) {
		get_digest(reps[r].db, d);
		get_vv(reps[r].db, &vv);
		REQUIRE(buf_eq(&vv0, &vv), "version vectors differ:\n--- replica 0\n%s--- replica %zu\n%s",
		        vv0.ptr ? vv0.ptr : "", r, vv.ptr ? vv.ptr : "");
		if (strcmp(d0, d) != 0) {
			/* Find a document that differs, to make the report useful. */
			for (size_t c = 0; c < 4; c++) {
				for (size_t i = 0; i < sizeof(k_docs) / sizeof(k_docs[0]); i++)
					compare_json(reps, n, colls[c], k_docs[i], NULL);
				compare_json(reps, n, colls[c], "h0", NULL);
				compare_json(reps, n, colls[c], "h1", NULL);
				compare_json(reps, n, colls[c], "m", NULL);
			}
		}
		REQUIRE(strcmp(d0, d) == 0, "digests differ: replica 0 %s, replica %zu %s", d0, r, d);
		lim_buf_dispose(&vv);
	}
	lim_buf_dispose(&vv0);

	for (size_t c = 0; c < 4; c++) {
		lim_buf k0, k;
		doc_keys(reps[0].db, colls[c], &k0);
		for (size_t r = 1; r < n; r++) {
			doc_keys(reps[r].db, colls[c], &k);
			REQUIRE(buf_eq(&k0, &k), "document keys of %s differ:\n--- replica 0\n%s--- replica %zu\n%s",
			        colls[c], k0.ptr ? k0.ptr : "", r, k.ptr ? k.ptr : "");
			lim_buf_dispose(&k);
		}
		lim_buf_dispose(&k0);
	}
	for (size_t i = 0; i < sizeof(k_docs) / sizeof(k_docs[0]); i++) {
		compare_json(reps, n, "c0", k_docs[i], NULL);
		compare_json(reps, n, "c1", k_docs[i], "o");
		compare_json(reps, n, "c1", k_docs[i], "n0");
		compare_json(reps, n, "c0", k_docs[i], "s1");
	}
	compare_json(reps, n, "hot", "h0", NULL);
	compare_json(reps, n, "hot", "h1", NULL);
	compare_json(reps, n, "hot", "h0", "s");
	compare_json(reps, n, "mix", "m", NULL);
}

/* ------------------------------------------------------------ the simulation */

static void run_seed(unsigned long long seed, sim_stats *ss)
{
	rng g = { seed * 0x2545F4914F6CDD1Dull + 1 };
	replica reps[MAX_REPLICAS];
	blobvec held[MAX_REPLICAS][MAX_REPLICAS];
	blobvec chain[MAX_REPLICAS];
	size_t n = 5 + (size_t)rng_below(&g, 2);
	char before[65], after[65];

	g_seed = seed;
	g_have_seed = 1;
	memset(held, 0, sizeof(held));
	memset(chain, 0, sizeof(chain));

	for (size_t r = 0; r < n; r++)
		replica_open(&reps[r], BASE_TIME_MS + (int64_t)rng_below(&g, 3000));

	/* Writing phase, with partial syncs between random pairs. */
	{
		size_t units[MAX_REPLICAS], left = 0;
		for (size_t r = 0; r < n; r++) {
			units[r] = 10 + (size_t)rng_below(&g, 25);
			left += units[r];
		}
		while (left > 0) {
			size_t r = (size_t)rng_below(&g, n);
			if (units[r] == 0)
				continue;
			random_unit(&g, &reps[r], ss);
			units[r]--;
			left--;
			if (rng_chance(&g, 12)) {
				size_t a = (size_t)rng_below(&g, n), b = (size_t)rng_below(&g, n);
				if (a != b) {
					reps[b].now += (int64_t)rng_below(&g, 5);
					sync_pair(&reps[a], &reps[b],
					          rng_chance(&g, 50) ? SIZE_MAX : (size_t)rng_below(&g, 12));
				}
			}
		}
	}

	/* Collect every replica's log; an author's chain is what it holds of itself. */
	for (size_t r = 0; r < n; r++)
		collect_replica(reps, n, r, held[r]);
	for (size_t a = 0; a < n; a++) {
		chain[a] = held[a][a];
		memset(&held[a][a], 0, sizeof(held[a][a]));
		held[a][a].n = chain[a].n;
	}
	/* A relayed change keeps its exact bytes (invariant 2). */
	for (size_t r = 0; r < n; r++)
		for (size_t a = 0; a < n; a++) {
			if (a == r)
				continue;
			REQUIRE(held[r][a].n <= chain[a].n, "replica %zu holds %zu changes of author %zu, "
			        "which made only %zu", r, held[r][a].n, a, chain[a].n);
			for (size_t i = 0; i < held[r][a].n; i++)
				REQUIRE(blob_eq(&chain[a].v[i], held[r][a].v[i].p, held[r][a].v[i].n),
				        "replica %zu holds different bytes for author %zu seq %zu", r, a, i + 1);
		}

	/* Everyone receives everything, each in its own interleaving. */
	for (size_t t = 0; t < n; t++)
		deliver_all(&g, reps, n, t, chain, held[t], ss);

	compare_all(reps, n);

	{
		size_t r = (size_t)rng_below(&g, n);
		get_digest(reps[r].db, before);
		RC_OK(lim_db_rebuild(reps[r].db));
		get_digest(reps[r].db, after);
		REQUIRE(strcmp(before, after) == 0, "rebuild of replica %zu changed the digest %s -> %s",
		        r, before, after);
	}
	for (size_t r = 0; r < n; r++) {
		int rc = lim_db_verify(reps[r].db);
		REQUIRE(rc == 0, "lim_db_verify(replica %zu) returned %d (%s)", r, rc, lim_error_name(rc));
	}

	for (size_t r = 0; r < n; r++) {
		for (size_t a = 0; a < n; a++)
			if (a != r)
				bv_free(&held[r][a]);
		bv_free(&chain[r]);
		replica_close(&reps[r]);
	}
	g_have_seed = 0;
}

static void test_convergence__random_seeds(void **state)
{
	const char *one = getenv("LIM_SEED");
	const char *count = getenv("LIM_SEEDS");
	unsigned long long first = 1, nseeds = 200;
	sim_stats ss;

	(void)state;
	memset(&ss, 0, sizeof(ss));
	if (one && *one) {
		first = strtoull(one, NULL, 10);
		nseeds = 1;
	} else if (count && *count) {
		nseeds = strtoull(count, NULL, 10);
	}
	for (unsigned long long s = first; s < first + nseeds; s++)
		run_seed(s, &ss);
	print_message("convergence: %llu seeds, %lu writes (%lu on shared keys), %lu transactions "
	              "(%lu rolled back), %lu LIM_EGAP refusals, %lu duplicates\n",
	              nseeds, ss.writes, ss.hot, ss.txns, ss.rollbacks, ss.egaps, ss.dups);
	REQUIRE(ss.hot * 5 >= ss.writes, "only %lu of %lu writes on shared keys", ss.hot, ss.writes);
	REQUIRE(nseeds == 0 || ss.egaps > 0, "%s", "no out-of-order delivery was exercised");
}

/* ------------------------------------------------------------ merge rules, one at a time */

static void open_n(replica *reps, size_t n)
{
	for (size_t i = 0; i < n; i++)
		replica_open(&reps[i], BASE_TIME_MS);
}

static void close_n(replica *reps, size_t n)
{
	for (size_t i = 0; i < n; i++)
		replica_close(&reps[i]);
}

static void require_same_digest(replica *reps, size_t n)
{
	char d0[65], d[65];

	get_digest(reps[0].db, d0);
	for (size_t i = 1; i < n; i++) {
		get_digest(reps[i].db, d);
		REQUIRE(strcmp(d0, d) == 0, "replica 0 digest %s, replica %zu digest %s", d0, i, d);
	}
}

static lim_value str_value(const char *s)
{
	lim_value v;
	memset(&v, 0, sizeof(v));
	v.type = LIM_STRING;
	v.str = s;
	v.len = strlen(s);
	return v;
}

/* Field is a register holding string `s` (NULL: field must not exist). */
static void require_string(lim_db *db, const char *coll, const char *doc, const char *path,
                           const char *s)
{
	lim_field *f = NULL;
	lim_value v;
	int rc = lim_db_get_field(&f, db, coll, doc, path);

	if (!s) {
		REQUIRE(rc == LIM_ENOTFOUND, "%s/%s/%s: expected LIM_ENOTFOUND, got %d", coll, doc, path, rc);
		return;
	}
	REQUIRE(rc == 0, "%s/%s/%s: get_field returned %d (%s)", coll, doc, path, rc, lim_error_name(rc));
	REQUIRE(lim_field_kind(f) == LIM_KIND_REGISTER, "%s", "not a register");
	RC_OK(lim_field_value(f, &v));
	REQUIRE(v.type == LIM_STRING && v.len == strlen(s) && memcmp(v.str, s, v.len) == 0,
	        "%s/%s/%s: expected \"%s\", got type %d \"%.*s\"", coll, doc, path, s, (int)v.type,
	        (int)(v.type == LIM_STRING ? v.len : 0), v.type == LIM_STRING ? v.str : "");
	lim_field_free(f);
}

static void require_int(lim_db *db, const char *coll, const char *doc, const char *path,
                        lim_kind kind, int64_t want)
{
	lim_field *f = NULL;
	lim_value v;
	int rc = lim_db_get_field(&f, db, coll, doc, path);

	REQUIRE(rc == 0, "%s/%s/%s: get_field returned %d (%s)", coll, doc, path, rc, lim_error_name(rc));
	REQUIRE(lim_field_kind(f) == kind, "%s/%s/%s: kind %d, expected %d", coll, doc, path,
	        (int)lim_field_kind(f), (int)kind);
	RC_OK(lim_field_value(f, &v));
	REQUIRE(v.type == LIM_INT && v.integer == want, "%s/%s/%s: expected %" PRId64 ", got type %d %" PRId64,
	        coll, doc, path, want, (int)v.type, v.integer);
	lim_field_free(f);
}

/* Two replicas write one field concurrently; whatever order the changes
 * reach anyone, the greater (HLC, author) wins. */
static void test_convergence__concurrent_set_lww(void **state)
{
	/* A's clock offset, B's clock offset, whether A deletes instead of setting. */
	static const struct {
		int64_t a_off, b_off;
		int a_deletes;
	} scenarios[] = {
		{ 1000, 0, 0 }, { 0, 1000, 0 }, { 0, 0, 0 }, { 5, 5, 0 },
		{ 1000, 0, 1 }, { 0, 1000, 1 }, { 0, 0, 1 },
	};

	(void)state;
	for (size_t s = 0; s < sizeof(scenarios) / sizeof(scenarios[0]); s++) {
		replica rp[5]; /* A, B, C (applies A then B), D (B then A), O (origin) */
		replica *A = &rp[0], *B = &rp[1], *C = &rp[2], *D = &rp[3], *O = &rp[4];
		lim_value va = str_value("from A \xc3\xa9"), vb = str_value("from B"), vo = str_value("origin");
		uint64_t ha, hb;
		char auth_a[65], auth_b[65];
		int a_wins;
		const char *want;

		open_n(rp, 5);
		/* A common ancestor value, seen by everyone. */
		RC_OK(lim_db_set(O->db, "k", "doc", "f", &vo));
		for (size_t i = 0; i < 4; i++)
			sync_pair(O, &rp[i], SIZE_MAX);

		A->now = BASE_TIME_MS + 100 + scenarios[s].a_off;
		B->now = BASE_TIME_MS + 100 + scenarios[s].b_off;
		if (scenarios[s].a_deletes)
			RC_OK(lim_db_delete(A->db, "k", "doc", "f"));
		else
			RC_OK(lim_db_set(A->db, "k", "doc", "f", &va));
		RC_OK(lim_db_set(B->db, "k", "doc", "f", &vb));
		newest_change(A->db, &ha, auth_a);
		newest_change(B->db, &hb, auth_b);
		REQUIRE(strcasecmp(auth_a, A->hex) == 0 && strcasecmp(auth_b, B->hex) == 0,
		        "%s", "log author is not the replica id");
		if (scenarios[s].a_off > scenarios[s].b_off)
			REQUIRE(ha > hb, "scenario %zu: A's clock is ahead but its HLC is not", s);
		else if (scenarios[s].a_off < scenarios[s].b_off)
			REQUIRE(hb > ha, "scenario %zu: B's clock is ahead but its HLC is not", s);
		else
			REQUIRE(ha == hb, "scenario %zu: equal clocks gave HLCs %" PRIx64 " and %" PRIx64,
			        s, ha, hb);
		a_wins = ha != hb ? ha > hb : memcmp(A->id, B->id, LIM_ID_BYTES) > 0;
		want = a_wins ? (scenarios[s].a_deletes ? NULL : "from A \xc3\xa9") : "from B";

		sync_pair(A, C, SIZE_MAX);
		sync_pair(B, C, SIZE_MAX);
		sync_pair(B, D, SIZE_MAX);
		sync_pair(A, D, SIZE_MAX);
		sync_pair(B, A, SIZE_MAX);
		sync_pair(A, B, SIZE_MAX);
		sync_pair(A, O, SIZE_MAX);
		for (size_t i = 0; i < 5; i++)
			require_string(rp[i].db, "k", "doc", "f", want);
		require_same_digest(rp, 5);
		close_n(rp, 5);
	}
}

/* Deleting a document tombstones it at an HLC: fields written before the
 * delete (by anyone) are gone, fields written after it survive. */
static void test_convergence__delete_document(void **state)
{
	replica rp[3];
	replica *A = &rp[0], *B = &rp[1], *C = &rp[2];
	lim_value v9 = str_value("b-before-delete"), v7 = str_value("f-after-delete");
	lim_value v5 = str_value("e-after-delete");
	lim_buf j0 = LIM_BUF_INIT, j = LIM_BUF_INIT;
	static const char doc_json[] = "{\"a\": 1, \"b\": \"two\", \"c\": {\"d\": 3, \"e\": [1,2]}}";
	static const char doc_json2[] = "{\"a\": 1, \"b\": \"two\", \"c\": {\"d\": 3}}";
	int rc;

	(void)state;
	open_n(rp, 3);
	A->now = BASE_TIME_MS + 1000;
	rc = lim_db_put_json(A->db, "k", "doc", doc_json, strlen(doc_json));
	if (rc != 0) /* arrays may not be supported as leaves; plain objects must be */
		RC_OK(lim_db_put_json(A->db, "k", "doc", doc_json2, strlen(doc_json2)));
	sync_pair(A, B, SIZE_MAX);

	B->now = BASE_TIME_MS + 1500;
	RC_OK(lim_db_set(B->db, "k", "doc", "b", &v9));   /* before A's delete */
	B->now = BASE_TIME_MS + 3000;
	RC_OK(lim_db_set(B->db, "k", "doc", "f", &v7));   /* after A's delete */

	A->now = BASE_TIME_MS + 2000;
	RC_OK(lim_db_delete(A->db, "k", "doc", NULL));
	require_string(A->db, "k", "doc", "a", NULL);
	REQUIRE(lim_db_get_json(&j, A->db, "k", "doc", NULL) == LIM_ENOTFOUND,
	        "deleted document still reads as %s", j.ptr ? j.ptr : "");
	lim_buf_dispose(&j);
	A->now = BASE_TIME_MS + 2500;
	RC_OK(lim_db_set(A->db, "k", "doc", "e", &v5));
	require_string(A->db, "k", "doc", "e", "e-after-delete");
	require_string(A->db, "k", "doc", "a", NULL);

	/* C sees B's changes first, then A's; A and B exchange. */
	sync_pair(B, C, SIZE_MAX);
	sync_pair(A, C, SIZE_MAX);
	sync_pair(B, A, SIZE_MAX);
	sync_pair(A, B, SIZE_MAX);

	for (size_t i = 0; i < 3; i++) {
		require_string(rp[i].db, "k", "doc", "a", NULL);
		require_string(rp[i].db, "k", "doc", "b", NULL);
		require_string(rp[i].db, "k", "doc", "c.d", NULL);
		require_string(rp[i].db, "k", "doc", "e", "e-after-delete");
		require_string(rp[i].db, "k", "doc", "f", "f-after-delete");
	}
	require_same_digest(rp, 3);
	RC_OK(lim_db_get_json(&j0, A->db, "k", "doc", NULL));
	for (size_t i = 1; i < 3; i++) {
		RC_OK(lim_db_get_json(&j, rp[i].db, "k", "doc", NULL));
		REQUIRE(buf_eq(&j0, &j), "document JSON differs: %s vs %s", j0.ptr, j.ptr);
		lim_buf_dispose(&j);
	}
	REQUIRE(strstr(j0.ptr, "before-delete") == NULL && strstr(j0.ptr, "\"a\"") == NULL,
	        "document after delete: %s", j0.ptr);
	lim_buf_dispose(&j0);
	for (size_t i = 0; i < 3; i++)
		RC_OK(lim_db_verify(rp[i].db));
	close_n(rp, 3);
}

/* A counter sums concurrent increments, each exactly once, however often and
 * by whatever path the changes arrive. */
static void test_convergence__counter_exactly_once(void **state)
{
	replica rp[4];
	replica *A = &rp[0], *B = &rp[1], *C = &rp[2], *D = &rp[3];
	lim_buf j = LIM_BUF_INIT;

	(void)state;
	open_n(rp, 4);
	RC_OK(lim_db_incr(A->db, "k", "cnt", "n", 5));
	RC_OK(lim_db_begin(A->db));
	RC_OK(lim_db_incr(A->db, "k", "cnt", "n", 1));
	RC_OK(lim_db_incr(A->db, "k", "cnt", "n", 1));
	RC_OK(lim_db_commit(A->db));
	RC_OK(lim_db_begin(A->db));
	RC_OK(lim_db_incr(A->db, "k", "cnt", "n", 1000));
	RC_OK(lim_db_rollback(A->db));
	RC_OK(lim_db_incr(B->db, "k", "cnt", "n", -3));
	RC_OK(lim_db_incr(C->db, "k", "cnt", "n", 10));
	RC_OK(lim_db_incr(C->db, "k", "cnt", "n", -2));
	require_int(A->db, "k", "cnt", "n", LIM_KIND_COUNTER, 7);

	/* B relays A's changes; D gets them directly and relayed, each twice. */
	sync_dup(A, B);
	require_int(B->db, "k", "cnt", "n", LIM_KIND_COUNTER, 4);
	sync_dup(A, D);
	sync_dup(B, D);
	sync_dup(C, D);
	sync_dup(B, D);
	for (size_t i = 0; i < 4; i++)
		for (size_t k = 0; k < 4; k++)
			if (i != k)
				sync_dup(&rp[k], &rp[i]);
	for (size_t i = 0; i < 4; i++)
		require_int(rp[i].db, "k", "cnt", "n", LIM_KIND_COUNTER, 12);
	RC_OK(lim_db_get_json(&j, D->db, "k", "cnt", "n"));
	REQUIRE(j.size == 2 && memcmp(j.ptr, "12", 2) == 0, "counter as JSON: '%s'", j.ptr);
	lim_buf_dispose(&j);
	require_same_digest(rp, 4);
	RC_OK(lim_db_rebuild(D->db));
	require_int(D->db, "k", "cnt", "n", LIM_KIND_COUNTER, 12);
	require_same_digest(rp, 4);
	close_n(rp, 4);
}

static int set_has(lim_db *db, const char *coll, const char *doc, const char *path, const char *s)
{
	lim_field *f = NULL;
	int rc = lim_db_get_field(&f, db, coll, doc, path);
	int found = 0;

	if (rc == LIM_ENOTFOUND)
		return 0;
	REQUIRE(rc == 0, "get_field(%s) returned %d (%s)", path, rc, lim_error_name(rc));
	REQUIRE(lim_field_kind(f) == LIM_KIND_SET, "%s is not a set", path);
	for (size_t i = 0; i < lim_field_count(f); i++) {
		lim_value v;
		RC_OK(lim_field_element(f, i, &v));
		if (v.type == LIM_STRING && v.len == strlen(s) && memcmp(v.str, s, v.len) == 0)
			found++;
	}
	REQUIRE(found <= 1, "element %s listed %d times", s, found);
	lim_field_free(f);
	return found;
}

/* Add-wins / observed-remove set. */
static void test_convergence__add_wins_set(void **state)
{
	replica rp[3];
	replica *A = &rp[0], *B = &rp[1], *C = &rp[2];
	lim_value x = str_value("x"), y = str_value("y"), z = str_value("z"), w = str_value("w");

	(void)state;
	open_n(rp, 3);
	RC_OK(lim_db_set_add(A->db, "k", "doc", "s", &x));
	RC_OK(lim_db_set_add(A->db, "k", "doc", "s", &y));
	RC_OK(lim_db_set_add(B->db, "k", "doc", "s", &w));
	sync_pair(A, B, SIZE_MAX);
	sync_pair(B, A, SIZE_MAX);

	/* Concurrently: A removes x, B adds x again -> x stays.
	 * B removes y having observed A's tag -> y goes.
	 * A removes w having observed B's tag -> w goes.
	 * A and B both add z; A then removes z (observing only its own tag) -> z stays. */
	RC_OK(lim_db_set_remove(A->db, "k", "doc", "s", &x));
	REQUIRE(!set_has(A->db, "k", "doc", "s", "x"), "%s", "x still present locally after remove");
	RC_OK(lim_db_set_add(B->db, "k", "doc", "s", &x));
	RC_OK(lim_db_set_remove(B->db, "k", "doc", "s", &y));
	RC_OK(lim_db_set_remove(A->db, "k", "doc", "s", &w));
	RC_OK(lim_db_set_add(A->db, "k", "doc", "s", &z));
	RC_OK(lim_db_set_add(B->db, "k", "doc", "s", &z));
	RC_OK(lim_db_set_remove(A->db, "k", "doc", "s", &z));

	sync_pair(B, C, SIZE_MAX);
	sync_pair(A, C, SIZE_MAX);
	sync_pair(A, B, SIZE_MAX);
	sync_pair(B, A, SIZE_MAX);
	for (size_t i = 0; i < 3; i++) {
		REQUIRE(set_has(rp[i].db, "k", "doc", "s", "x"), "replica %zu: concurrent add lost to remove", i);
		REQUIRE(!set_has(rp[i].db, "k", "doc", "s", "y"), "replica %zu: removed y is back", i);
		REQUIRE(!set_has(rp[i].db, "k", "doc", "s", "w"), "replica %zu: removed w is back", i);
		REQUIRE(set_has(rp[i].db, "k", "doc", "s", "z"), "replica %zu: unobserved add of z lost", i);
	}
	require_same_digest(rp, 3);

	/* Now C has observed every tag of x: its remove takes x away everywhere. */
	RC_OK(lim_db_set_remove(C->db, "k", "doc", "s", &x));
	sync_pair(C, A, SIZE_MAX);
	sync_pair(C, B, SIZE_MAX);
	for (size_t i = 0; i < 3; i++) {
		REQUIRE(!set_has(rp[i].db, "k", "doc", "s", "x"), "replica %zu: x survived a full remove", i);
		REQUIRE(set_has(rp[i].db, "k", "doc", "s", "z"), "replica %zu: z lost", i);
	}
	require_same_digest(rp, 3);
	for (size_t i = 0; i < 3; i++)
		RC_OK(lim_db_verify(rp[i].db));
	close_n(rp, 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_convergence__concurrent_set_lww),
		cmocka_unit_test(test_convergence__delete_document),
		cmocka_unit_test(test_convergence__counter_exactly_once),
		cmocka_unit_test(test_convergence__add_wins_set),
		cmocka_unit_test(test_convergence__random_seeds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
