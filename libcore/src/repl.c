/*
 * Replication primitives: version vectors, streaming the changes a peer
 * lacks, applying changes from elsewhere, and packs.
 *
 * Applying a change checks, in order: form and limits (EMALFORMED), whether
 * it is already held (a duplicate is a no-op; a different change for a held
 * seq is an equivocation, reported only once its signature verifies; a held
 * body with other signature bytes is a duplicate), seq continuity (EGAP names
 * the missing seq), the chain (EHASH: prev must be the link of the held
 * predecessor, which covers its signature bytes), an HLC that does not
 * increase along the chain (EMALFORMED), the clock bound (ECLOCK) and the
 * signature (ESIGNATURE). Only then is it stored and its ops merged, inside
 * the caller's transaction, and its link becomes the author's head.
 */
#include <stdlib.h>
#include <sodium.h>
#include "db.h"
#include "hlc.h"
#include "text.h"

#define MAX_VV_ENTRIES 1000000

/* ------------------------------------------------------------ version vectors */

int lim_db_version_vector(lim_buf *out, lim_db *db)
{
	static const char SQL[] = "SELECT pubkey, max_seq FROM authors WHERE max_seq > 0 ORDER BY pubkey";
	sqlite3_stmt *q;
	lim_sb sb = LIM_SB_INIT;
	char hex[2 * LIM_ID_BYTES + 1];
	int rc;
	if (!out || !db)
		return lim__error(LIM_EINVALID, "NULL argument");
	LIM_DB_LOCK(db);
	rc = sqlite3_prepare_v2(db->st.sql, SQL, -1, &q, NULL);
	if (rc != SQLITE_OK) {
		LIM_DB_UNLOCK(db);
		return lim_store__error(&db->st, rc, "reading the version vector");
	}
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		if (sqlite3_column_bytes(q, 0) != LIM_ID_BYTES)
			continue;
		lim_hex__encode(hex, sqlite3_column_blob(q, 0), LIM_ID_BYTES);
		lim_sb__printf(&sb, "%s %lld\n", hex, (long long)sqlite3_column_int64(q, 1));
	}
	sqlite3_finalize(q);
	LIM_DB_UNLOCK(db);
	if (rc != SQLITE_DONE) {
		lim_sb__free(&sb);
		return lim_store__error(&db->st, rc, "reading the version vector");
	}
	return lim_sb__to_buf(&sb, out);
}

typedef struct {
	unsigned char author[LIM_ID_BYTES];
	uint64_t seq;
} vv_entry;

static int vv_cmp(const void *a, const void *b)
{
	return memcmp(a, b, LIM_ID_BYTES);
}

/* Parse version vector text into a sorted array. Lines are
 * "<64 hex> <seq>"; an empty input is the empty vector. */
static int vv_parse(const char *text, size_t len, vv_entry **out, size_t *n_out)
{
	vv_entry *v = NULL;
	size_t n = 0, cap = 0, pos = 0, line = 0;
	*out = NULL;
	*n_out = 0;
	while (pos < len) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t end = nl ? (size_t)(nl - text) : len;
		const char *l = text + pos;
		size_t ln = end - pos;
		line++;
		pos = end + 1;
		if (ln == 0)
			continue;
		if (n == MAX_VV_ENTRIES) {
			free(v);
			return lim__error(LIM_EINVALID, "version vector has more than %d entries", MAX_VV_ENTRIES);
		}
		if (n == cap) {
			vv_entry *g = realloc(v, (cap = cap ? 2 * cap : 16) * sizeof(*v));
			if (!g) {
				free(v);
				return lim__error(LIM_ENOMEM, "out of memory");
			}
			v = g;
		}
		if (ln < 2 * LIM_ID_BYTES + 2 || l[2 * LIM_ID_BYTES] != ' ' ||
		    lim_hex__decode(v[n].author, LIM_ID_BYTES, l, 2 * LIM_ID_BYTES) < 0 ||
		    lim_dec__parse_u64(l + 2 * LIM_ID_BYTES + 1, ln - 2 * LIM_ID_BYTES - 1, &v[n].seq) < 0 ||
		    v[n].seq > INT64_MAX) {
			free(v);
			return lim__error(LIM_EINVALID, "version vector line %zu is not \"<64 hex author> <seq>\"", line);
		}
		n++;
	}
	if (n)
		qsort(v, n, sizeof(*v), vv_cmp);
	for (size_t i = 1; i < n; i++)
		if (memcmp(v[i - 1].author, v[i].author, LIM_ID_BYTES) == 0) {
			free(v);
			return lim__error(LIM_EINVALID, "version vector names an author twice");
		}
	*out = v;
	*n_out = n;
	return 0;
}

/* ------------------------------------------------------------ change streams */

struct lim_change_iter {
	lim_db *db;
	sqlite3_stmt *authors; /* (id, pubkey) in pubkey order */
	sqlite3_stmt *changes; /* bodies of the current author after its since-seq */
	vv_entry *since;
	size_t nsince;
	int author_bound; /* `changes` is bound to the current author */
	lim_sb current;
};

int lim_db_changes_since(lim_change_iter **out, lim_db *db, const char *since, size_t since_len)
{
	lim_change_iter *it;
	int rc;
	if (!out || !db)
		return lim__error(LIM_EINVALID, "NULL argument");
	*out = NULL;
	if (!(it = calloc(1, sizeof(*it))))
		return lim__error(LIM_ENOMEM, "out of memory");
	it->db = db;
	if (since && (rc = vv_parse(since, since_len, &it->since, &it->nsince)) < 0) {
		free(it);
		return rc;
	}
	LIM_DB_LOCK(db);
	rc = sqlite3_prepare_v2(db->st.sql, "SELECT id, pubkey, max_seq FROM authors ORDER BY pubkey", -1, &it->authors, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(db->st.sql, "SELECT body FROM changes WHERE author = ?1 AND seq > ?2 ORDER BY seq",
		                        -1, &it->changes, NULL);
	LIM_DB_UNLOCK(db);
	if (rc != SQLITE_OK) {
		rc = lim_store__error(&db->st, rc, "reading the change log");
		lim_change_iter_free(it);
		return rc;
	}
	*out = it;
	return 0;
}

static uint64_t since_seq(const lim_change_iter *it, const void *author)
{
	const vv_entry *e = it->nsince ? bsearch(author, it->since, it->nsince, sizeof(*it->since), vv_cmp) : NULL;
	return e ? e->seq : 0;
}

int lim_change_iter_next(lim_change_iter *it, const char **bytes, size_t *len)
{
	int rc;
	if (!it || !bytes || !len)
		return lim__error(LIM_EINVALID, "NULL argument");
	LIM_DB_LOCK(it->db);
	for (;;) {
		if (it->author_bound) {
			rc = sqlite3_step(it->changes);
			if (rc == SQLITE_ROW) {
				lim_sb__clear(&it->current);
				lim_sb__put(&it->current, sqlite3_column_blob(it->changes, 0),
				            (size_t)sqlite3_column_bytes(it->changes, 0));
				rc = lim_sb__check(&it->current);
				*bytes = it->current.ptr;
				*len = it->current.len;
				break;
			}
			sqlite3_reset(it->changes);
			it->author_bound = 0;
			if (rc != SQLITE_DONE) {
				rc = lim_store__error(&it->db->st, rc, "reading the change log");
				break;
			}
		}
		/* This author is done: move to the next one that has something new. */
		rc = sqlite3_step(it->authors);
		if (rc == SQLITE_DONE) {
			rc = LIM_EITEROVER;
			break;
		}
		if (rc != SQLITE_ROW) {
			rc = lim_store__error(&it->db->st, rc, "reading the change log");
			break;
		}
		if (sqlite3_column_bytes(it->authors, 1) != LIM_ID_BYTES)
			continue;
		uint64_t from = since_seq(it, sqlite3_column_blob(it->authors, 1));
		if ((uint64_t)sqlite3_column_int64(it->authors, 2) <= from)
			continue;
		sqlite3_bind_int64(it->changes, 1, sqlite3_column_int64(it->authors, 0));
		sqlite3_bind_int64(it->changes, 2, (sqlite3_int64)from);
		it->author_bound = 1;
	}
	LIM_DB_UNLOCK(it->db);
	return rc;
}

void lim_change_iter_free(lim_change_iter *it)
{
	if (!it)
		return;
	LIM_DB_LOCK(it->db);
	sqlite3_finalize(it->authors);
	sqlite3_finalize(it->changes);
	LIM_DB_UNLOCK(it->db);
	free(it->since);
	lim_sb__free(&it->current);
	free(it);
}

/* ------------------------------------------------------------ apply */

typedef struct {
	int pending;
	int64_t author_id;
	uint64_t seq;
	lim_sb body;
} evidence;

static void short_id(char out[17], const unsigned char author[LIM_ID_BYTES])
{
	lim_hex__encode(out, author, 8);
}

/*
 * The author row of the last change applied, as it stands after it: a
 * batch is mostly runs of one author, and looking the author up again for
 * every change was a measurable part of catch-up (BENCHMARKS.md). Valid
 * only within the transaction (and savepoint) that filled it; whoever
 * rolls back clears it.
 */
typedef struct {
	int valid;
	/* Within a run applied as a whole, the author's row is written once at
	 * the end (author_flush) instead of after every change: `defer` asks
	 * for that, `dirty` says the row lags behind this cache. */
	int defer, dirty;
	unsigned char key[LIM_ID_BYTES];
	int64_t id;
	uint64_t max_seq, head_hlc;
	unsigned char head[LIM_HASH_BYTES];
} author_cache;

static int advance_author(lim_db *db, int64_t author_id, uint64_t seq, const unsigned char link[LIM_HASH_BYTES],
                          uint64_t hlc)
{
	sqlite3_stmt *q = lim_store__stmt(&db->st, LIM_ST_AUTHOR_ADVANCE);
	if (!q)
		return LIM_EIO;
	sqlite3_bind_int64(q, 1, author_id);
	sqlite3_bind_int64(q, 2, (sqlite3_int64)seq);
	sqlite3_bind_blob(q, 3, link, LIM_HASH_BYTES, SQLITE_STATIC);
	sqlite3_bind_int64(q, 4, (sqlite3_int64)hlc);
	return lim_store__step_done(&db->st, q, "advancing an author");
}

static int author_flush(lim_db *db, author_cache *ac)
{
	if (!ac->dirty)
		return 0;
	ac->dirty = 0;
	return advance_author(db, ac->id, ac->max_seq, ac->head, ac->head_hlc);
}

static int author_state(lim_db *db, author_cache *ac, const unsigned char key[LIM_ID_BYTES], int64_t *id,
                        uint64_t *max_seq, unsigned char head[LIM_HASH_BYTES], uint64_t *head_hlc)
{
	if (ac && ac->valid && memcmp(ac->key, key, LIM_ID_BYTES) == 0) {
		*id = ac->id;
		*max_seq = ac->max_seq;
		*head_hlc = ac->head_hlc;
		memcpy(head, ac->head, LIM_HASH_BYTES);
		return 0;
	}
	return lim_db__author(db, key, id, max_seq, head, head_hlc);
}

static int store_change(lim_db *db, const lim_change *c, int64_t author_id, const unsigned char hash[LIM_HASH_BYTES],
                        author_cache *ac)
{
	unsigned char link[LIM_HASH_BYTES];
	sqlite3_stmt *q;
	int rc;
	if (ac && ac->dirty && memcmp(ac->key, c->author, LIM_ID_BYTES) != 0 && (rc = author_flush(db, ac)) < 0)
		return rc;
	if (ac)
		ac->valid = 0;
	if (author_id == 0) {
		if (!(q = lim_store__stmt(&db->st, LIM_ST_AUTHOR_INSERT)))
			return LIM_EIO;
		sqlite3_bind_blob(q, 1, c->author, LIM_ID_BYTES, SQLITE_STATIC);
		if ((rc = lim_store__step_done(&db->st, q, "registering an author")) < 0)
			return rc;
		author_id = sqlite3_last_insert_rowid(db->st.sql);
	}
	if (!(q = lim_store__stmt(&db->st, LIM_ST_CHANGE_INSERT)))
		return LIM_EIO;
	sqlite3_bind_int64(q, 1, author_id);
	sqlite3_bind_int64(q, 2, (sqlite3_int64)c->seq);
	sqlite3_bind_int64(q, 3, (sqlite3_int64)c->hlc);
	sqlite3_bind_blob(q, 4, hash, LIM_HASH_BYTES, SQLITE_STATIC);
	sqlite3_bind_blob(q, 5, c->bytes, (int)c->len, SQLITE_STATIC);
	if ((rc = lim_store__step_done(&db->st, q, "writing the change log")) < 0)
		return rc;
	lim_change__link(link, hash, c->sig);
	if (!(ac && ac->defer) && (rc = advance_author(db, author_id, c->seq, link, c->hlc)) < 0)
		return rc;
	if (!ac)
		return 0;
	ac->dirty = ac->defer;
	ac->valid = 1;
	memcpy(ac->key, c->author, LIM_ID_BYTES);
	ac->id = author_id;
	ac->max_seq = c->seq;
	ac->head_hlc = c->hlc;
	memcpy(ac->head, link, LIM_HASH_BYTES);
	return 0;
}

static int merge_ops(lim_db *db, const lim_change *c)
{
	int rc = 0;
	for (size_t i = 0; i < c->nops && rc == 0; i++)
		rc = lim_merge__apply(&db->merge, &c->ops[i], c->hlc, c->author, c->seq, (uint32_t)i);
	return rc;
}

static int held_hash(lim_db *db, int64_t author_id, uint64_t seq, unsigned char out[LIM_HASH_BYTES])
{
	sqlite3_stmt *q = lim_store__stmt(&db->st, LIM_ST_CHANGE_GET);
	int rc;
	if (!q)
		return LIM_EIO;
	sqlite3_bind_int64(q, 1, author_id);
	sqlite3_bind_int64(q, 2, (sqlite3_int64)seq);
	rc = sqlite3_step(q);
	if (rc == SQLITE_ROW && sqlite3_column_bytes(q, 0) == LIM_HASH_BYTES)
		memcpy(out, sqlite3_column_blob(q, 0), LIM_HASH_BYTES);
	sqlite3_reset(q);
	if (rc == SQLITE_ROW)
		return 0;
	return rc == SQLITE_DONE ? lim__error(LIM_ECORRUPT, "the log lacks a change its author entry counts")
	                         : lim_store__error(&db->st, rc, "reading the change log");
}

/* Validate and apply one change inside an open transaction. `ac` may be
 * NULL; a failure that is not skippable leaves it to the caller, who rolls
 * back, to clear it. */
static int apply_one(lim_db *db, const char *bytes, size_t len, lim_apply_stats *stats, evidence *ev,
                     int verify_sig, lim_change *out_parsed, author_cache *ac)
{
	lim_change c;
	unsigned char hash[LIM_HASH_BYTES], head[LIM_HASH_BYTES];
	char who[17];
	int64_t author_id;
	uint64_t max_seq, head_hlc;
	int rc;

	if ((rc = lim_change__parse(&c, bytes, len)) < 0)
		return rc;
	short_id(who, c.author);
	lim_change__hash(hash, bytes, c.body_len);
	if ((rc = author_state(db, ac, c.author, &author_id, &max_seq, head, &head_hlc)) < 0)
		goto out;
	if (c.seq <= max_seq) {
		unsigned char held[LIM_HASH_BYTES];
		if ((rc = held_hash(db, author_id, c.seq, held)) < 0)
			goto out;
		if (memcmp(held, hash, LIM_HASH_BYTES) == 0) {
			stats->duplicates++;
			goto out;
		}
		/* Blame the author only if the author really signed both. */
		if (lim_change__verify(&c, hash) != 0) {
			rc = lim__error(LIM_ESIGNATURE, "change %s.../%llu: bad signature (and it differs from the change held for that seq)",
			                who, (unsigned long long)c.seq);
			goto out;
		}
		ev->pending = 1;
		ev->author_id = author_id;
		ev->seq = c.seq;
		lim_sb__clear(&ev->body);
		lim_sb__put(&ev->body, bytes, len);
		rc = lim__error(LIM_EEQUIVOCATION, "author %s... signed two different changes with seq %llu; the first one is kept",
		                who, (unsigned long long)c.seq);
		goto out;
	}
	if (c.seq > max_seq + 1) {
		rc = lim__error(LIM_EGAP, "change %s.../%llu cannot be applied before seq %llu of that author, which is missing",
		                who, (unsigned long long)c.seq, (unsigned long long)max_seq + 1);
		goto out;
	}
	if (memcmp(c.prev, head, LIM_HASH_BYTES) != 0) {
		/* Signed by its author, it continues another version of the seq
		 * held here: the author forked its chain (two copies of one store,
		 * a restored backup). Like an equivocation, that is the author's
		 * doing, not the sender's, so it is skipped rather than failing the
		 * batch, which every reconnect would send again. (No evidence row:
		 * nothing held here has this seq.) */
		if (verify_sig && lim_change__verify(&c, hash) == 0) {
			rc = lim__error(LIM_EEQUIVOCATION,
			                "author %s... forked its chain: its seq %llu follows a seq %llu other than the one held here; "
			                "not applied",
			                who, (unsigned long long)c.seq, (unsigned long long)max_seq);
			goto out;
		}
		rc = lim__error(LIM_EHASH, "change %s.../%llu names a predecessor link that does not match seq %llu as held here",
		                who, (unsigned long long)c.seq, (unsigned long long)max_seq);
		goto out;
	}
	if (c.hlc <= head_hlc) {
		rc = lim__error(LIM_EMALFORMED, "change %s.../%llu: its timestamp does not increase along the author's chain",
		                who, (unsigned long long)c.seq);
		goto out;
	}
	int64_t now = lim_db__now_ms(db);
	if (LIM_HLC_MS(c.hlc) > now + db->opts.max_drift_ms) {
		rc = lim__error(LIM_ECLOCK, "change %s.../%llu is stamped %lld ms ahead of this node's clock; the limit is %lld ms",
		                who, (unsigned long long)c.seq, (long long)(LIM_HLC_MS(c.hlc) - now),
		                (long long)db->opts.max_drift_ms);
		goto out;
	}
	if (verify_sig && lim_change__verify(&c, hash) != 0) {
		rc = lim__error(LIM_ESIGNATURE, "change %s.../%llu: the signature does not verify", who, (unsigned long long)c.seq);
		goto out;
	}
	if ((rc = store_change(db, &c, author_id, hash, ac)) < 0 || (rc = merge_ops(db, &c)) < 0)
		goto out;
	db->clock_last = lim_hlc__observe(db->clock_last, c.hlc);
	stats->applied++;
	if (out_parsed) {
		memcpy(out_parsed->author, c.author, LIM_ID_BYTES);
		out_parsed->seq = c.seq;
	}
out:
	lim_change__dispose(&c);
	return rc;
}

static void record_evidence(lim_db *db, evidence *ev)
{
	sqlite3_stmt *q;
	if (!ev->pending)
		return;
	ev->pending = 0;
	/* Best effort: the evidence is a report, not state; failing to keep
	 * it must not turn the caller's error into a different one. */
	if (lim_store__begin(&db->st) < 0)
		return;
	if ((q = lim_store__stmt(&db->st, LIM_ST_EQUIVOCATION_INSERT))) {
		sqlite3_bind_int64(q, 1, ev->author_id);
		sqlite3_bind_int64(q, 2, (sqlite3_int64)ev->seq);
		sqlite3_bind_blob(q, 3, ev->body.ptr, (int)ev->body.len, SQLITE_STATIC);
		sqlite3_step(q);
		sqlite3_reset(q);
	}
	if (sqlite3_exec(db->st.sql, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		lim_store__rollback(&db->st);
}

static int check_can_apply(lim_db *db)
{
	int rc;
	if (db->txn_explicit && pthread_equal(db->txn_owner, pthread_self()))
		return lim__error(LIM_ETXN, "cannot apply remote changes while a local transaction is open");
	if ((rc = lim_db__wait_txn(db)) < 0)
		return rc;
	return lim_db__check_writable(db);
}

int lim_db_apply(lim_db *db, const char *bytes, size_t len, lim_apply_stats *stats)
{
	lim_apply_stats local = { 0, 0 };
	evidence ev;
	int rc;
	if (!db || !bytes)
		return lim__error(LIM_EINVALID, "NULL argument");
	memset(&ev, 0, sizeof(ev));
	LIM_DB_LOCK(db);
	if ((rc = check_can_apply(db)) < 0 || (rc = lim_store__begin(&db->st)) < 0)
		goto out;
	rc = apply_one(db, bytes, len, &local, &ev, 1, NULL, NULL);
	if (rc < 0) {
		int code = rc;
		lim_store__rollback(&db->st);
		record_evidence(db, &ev);
		rc = code;
	} else if ((rc = lim_store__commit(&db->st)) == 0 && local.applied) {
		lim_db__notify_commit(db);
	}
out:
	LIM_DB_UNLOCK(db);
	lim_sb__free(&ev.body);
	if (rc == 0 && stats) {
		stats->applied += local.applied;
		stats->duplicates += local.duplicates;
	}
	return rc;
}

/* ------------------------------------------------------------ batches from peers */

/* Not the sender's fault: the change is authentic but cannot apply here now. */
static int is_skippable(int rc)
{
	return rc == LIM_EEQUIVOCATION || rc == LIM_ECLOCK || rc == LIM_EGAP;
}

/* Author and seq straight from a change's bytes, to find runs cheaply;
 * the full parse happens in apply_one. */
static int peek_author_seq(const lim_span *c, unsigned char author[LIM_ID_BYTES], uint64_t *seq)
{
	return lim_change__peek(c->p, c->n, author, seq);
}

/* Was `author` skipped as an equivocation or a fork lately? The gaps that
 * follow such a change on its fork never close (in this batch or the
 * next ones of its tail), so asking for them again would resend the same
 * tail every second, forever. */
static int is_forked(const lim_db *db, const unsigned char author[LIM_ID_BYTES])
{
	for (unsigned i = 0; i < db->nforked; i++)
		if (memcmp(db->forked[i], author, LIM_ID_BYTES) == 0)
			return 1;
	return 0;
}

static void note_forked(lim_db *db, const unsigned char author[LIM_ID_BYTES])
{
	unsigned cap = sizeof(db->forked) / sizeof(db->forked[0]);
	if (is_forked(db, author))
		return;
	memcpy(db->forked[db->forked_next], author, LIM_ID_BYTES);
	db->forked_next = (db->forked_next + 1) % cap;
	if (db->nforked < cap)
		db->nforked++;
}

static void note_skip(lim_db *db, lim_batch_result *res, int rc, const lim_span *change)
{
	unsigned char author[LIM_ID_BYTES];
	uint64_t seq;
	int known = peek_author_seq(change, author, &seq) == 0;
	res->skipped++;
	if (rc == LIM_EEQUIVOCATION && known)
		note_forked(db, author);
	if (rc != LIM_EEQUIVOCATION && !(rc == LIM_EGAP && known && is_forked(db, author)))
		res->retry_later++;
	if (!res->skip_code) {
		res->skip_code = rc;
		snprintf(res->skip_message, sizeof(res->skip_message), "%s", lim_error_last());
	}
}

typedef struct {
	unsigned char author[LIM_ID_BYTES];
	uint64_t seq;
} applied_change;

int lim_db__apply_batch(lim_db *db, const lim_span *changes, size_t n, lim_batch_result *res,
                        void (*applied_cb)(void *ctx, const unsigned char author[LIM_ID_BYTES], uint64_t seq),
                        void *cb_ctx)
{
	lim_apply_stats st = { 0, 0 };
	evidence ev;
	lim_change who;
	applied_change *applied = NULL;
	author_cache ac = { 0 };
	int rc;
	size_t i = 0;

	memset(res, 0, sizeof(*res));
	memset(&ev, 0, sizeof(ev));
	/* Reported only once the batch is committed: a change applied before a
	 * later one fails the batch is rolled back with it. */
	if (applied_cb && n && !(applied = malloc(n * sizeof(*applied))))
		return lim__error(LIM_ENOMEM, "out of memory");
	LIM_DB_LOCK(db);
	if ((rc = check_can_apply(db)) < 0 || (rc = lim_store__begin(&db->st)) < 0)
		goto out;
	while (i < n && rc == 0) {
		unsigned char a0[LIM_ID_BYTES], a[LIM_ID_BYTES];
		uint64_t s0, s;
		size_t end = i + 1, before = st.applied, before_dup = st.duplicates;
		int fast_ok = 1;
		/* A run: consecutive changes of one author with consecutive seqs. */
		if (peek_author_seq(&changes[i], a0, &s0) == 0)
			while (end < n && peek_author_seq(&changes[end], a, &s) == 0 &&
			       memcmp(a, a0, LIM_ID_BYTES) == 0 && s == s0 + (end - i))
				end++;
		if (end - i > 1) {
			/* Fast path: hash-check the run, verify only its last signature. */
			if ((rc = lim_store__run(&db->st, LIM_ST_SAVEPOINT_RUN, "starting a savepoint")) < 0)
				break;
			ac.defer = 1;
			for (size_t k = i; k < end && fast_ok; k++)
				fast_ok = apply_one(db, changes[k].p, changes[k].n, &st, &ev, k + 1 == end, &who, &ac) == 0;
			ac.defer = 0;
			if (fast_ok && (rc = author_flush(db, &ac)) < 0)
				break;
			if (fast_ok) {
				rc = lim_store__run(&db->st, LIM_ST_RELEASE_RUN, "releasing a savepoint");
				/* The run's duplicates come first: its applied changes are its last ones. */
				for (uint64_t q = st.applied - before; applied && q > 0; q--) {
					memcpy(applied[st.applied - q].author, a0, LIM_ID_BYTES);
					applied[st.applied - q].seq = s0 + (end - i) - q;
				}
				i = end;
				continue;
			}
			/* Something in the run is off: undo it and go change by change
			 * with every signature checked, to know exactly what to keep. */
			ev.pending = 0;
			ac.valid = 0;
			ac.dirty = 0;
			st.applied = before;
			st.duplicates = before_dup;
			if (((rc = lim_store__run(&db->st, LIM_ST_ROLLBACK_TO_RUN, "undoing a run")) < 0 ||
			    (rc = lim_store__run(&db->st, LIM_ST_RELEASE_RUN, "undoing a run")) < 0))
				break;
		}
		for (size_t k = i; k < end && rc == 0; k++) {
			size_t had = st.applied;
			int r = apply_one(db, changes[k].p, changes[k].n, &st, &ev, 1, &who, &ac);
			if (r == 0 && st.applied > had && applied) {
				memcpy(applied[had].author, who.author, LIM_ID_BYTES);
				applied[had].seq = who.seq;
			} else if (r < 0 && is_skippable(r))
				note_skip(db, res, r, &changes[k]);
			else if (r < 0)
				rc = r;
		}
		i = end;
	}
	if (rc < 0) {
		int code = rc;
		lim_store__rollback(&db->st);
		rc = code;
	} else if ((rc = lim_store__commit(&db->st)) == 0 && st.applied) {
		for (size_t k = 0; applied && k < st.applied; k++)
			applied_cb(cb_ctx, applied[k].author, applied[k].seq);
		lim_db__notify_commit(db);
	}
	record_evidence(db, &ev);
out:
	LIM_DB_UNLOCK(db);
	lim_sb__free(&ev.body);
	free(applied);
	res->applied = st.applied;
	res->duplicates = st.duplicates;
	return rc;
}

/* ------------------------------------------------------------ packs */

static const char PACK_HEADER[] = "LIMPACK 1";
static const char PACK_CONTEXT[] = "liblim pack v1";

static void pack_hash_init(crypto_generichash_state *h)
{
	crypto_generichash_init(h, NULL, 0, LIM_HASH_BYTES);
	crypto_generichash_update(h, (const unsigned char *)PACK_CONTEXT, sizeof(PACK_CONTEXT));
}

int lim_db_export(lim_db *db, const char *since, size_t since_len,
                  int (*write)(void *ctx, const char *bytes, size_t len), void *ctx)
{
	lim_change_iter *it;
	crypto_generichash_state h;
	unsigned char digest[LIM_HASH_BYTES];
	char hex[2 * LIM_HASH_BYTES + 1], trailer[128];
	const char *bytes;
	size_t len, count = 0;
	int rc;

	if (!db || !write)
		return lim__error(LIM_EINVALID, "NULL argument");
	if ((rc = lim_db_changes_since(&it, db, since, since_len)) < 0)
		return rc;
	pack_hash_init(&h);
	if (write(ctx, PACK_HEADER, sizeof(PACK_HEADER) - 1) < 0 || write(ctx, "\n", 1) < 0) {
		rc = lim__error(LIM_EIO, "writing the pack failed");
		goto out;
	}
	while ((rc = lim_change_iter_next(it, &bytes, &len)) == 0) {
		crypto_generichash_update(&h, (const unsigned char *)bytes, len);
		crypto_generichash_update(&h, (const unsigned char *)"\n", 1);
		if (write(ctx, bytes, len) < 0 || write(ctx, "\n", 1) < 0) {
			rc = lim__error(LIM_EIO, "writing the pack failed");
			goto out;
		}
		count++;
	}
	if (rc != LIM_EITEROVER)
		goto out;
	crypto_generichash_final(&h, digest, LIM_HASH_BYTES);
	lim_hex__encode(hex, digest, LIM_HASH_BYTES);
	snprintf(trailer, sizeof(trailer), "END %zu %s\n", count, hex);
	rc = write(ctx, trailer, strlen(trailer)) < 0 ? lim__error(LIM_EIO, "writing the pack failed") : 0;
out:
	lim_change_iter_free(it);
	return rc;
}

/* Reads LF-terminated lines of at most `max` bytes from the callback. */
typedef struct {
	long (*read)(void *ctx, char *buf, size_t cap);
	void *ctx;
	char *buf;
	size_t cap, start, end;
	int eof;
} line_reader;

/* 1 = a line, 0 = end of input, <0 = error. The line excludes the LF;
 * *terminated says whether it had one. */
static int next_line(line_reader *r, const char **line, size_t *len, int *terminated, size_t max)
{
	for (;;) {
		char *nl = memchr(r->buf + r->start, '\n', r->end - r->start);
		if (nl) {
			*line = r->buf + r->start;
			*len = (size_t)(nl - *line);
			*terminated = 1;
			r->start += *len + 1;
			return 1;
		}
		if (r->end - r->start > max)
			return lim__error(LIM_EMALFORMED, "a pack line is longer than %zu bytes", max);
		if (r->eof) {
			if (r->start == r->end)
				return 0;
			*line = r->buf + r->start;
			*len = r->end - r->start;
			*terminated = 0;
			r->start = r->end;
			return 1;
		}
		if (r->start > 0) {
			memmove(r->buf, r->buf + r->start, r->end - r->start);
			r->end -= r->start;
			r->start = 0;
		}
		if (r->end == r->cap) {
			size_t cap = r->cap * 2;
			char *g = realloc(r->buf, cap);
			if (!g)
				return lim__error(LIM_ENOMEM, "out of memory");
			r->buf = g;
			r->cap = cap;
		}
		long n = r->read(r->ctx, r->buf + r->end, r->cap - r->end);
		if (n < 0)
			return lim__error(LIM_EIO, "reading the pack failed");
		if (n == 0)
			r->eof = 1;
		r->end += (size_t)n;
	}
}

/*
 * A pack's signatures are checked as the network checks a batch's
 * (PROTOCOL.md §9.4, changes.md §12): a change applied without its
 * signature checked waits here; if the next line continues its author's
 * chain, that line's link covers it (signature bytes included) and takes
 * its place; otherwise its own signature is checked before anything else
 * happens, so the first failing change is still the one reported.
 */
typedef struct {
	int active;
	unsigned char author[LIM_ID_BYTES];
	uint64_t seq;
	size_t lineno;
	lim_sb line;
} unverified;

static int check_unverified(unverified *u)
{
	lim_change c;
	unsigned char hash[LIM_HASH_BYTES];
	char who[17];
	int rc;
	if (!u->active)
		return 0;
	u->active = 0;
	if ((rc = lim_change__parse(&c, u->line.ptr, u->line.len)) < 0)
		return lim__error_prefix(rc, "pack line %zu", u->lineno);
	lim_change__hash(hash, c.bytes, c.body_len);
	if (lim_change__verify(&c, hash) != 0) {
		short_id(who, c.author);
		rc = lim__error(LIM_ESIGNATURE, "pack line %zu: change %s.../%llu: the signature does not verify", u->lineno,
		                who, (unsigned long long)c.seq);
	}
	lim_change__dispose(&c);
	return rc;
}

static int import_line(lim_db *db, const char *line, size_t len, size_t lineno, lim_apply_stats *stats, evidence *ev,
                       author_cache *ac, unverified *u)
{
	lim_span span = { line, len };
	lim_change who;
	unsigned char author[LIM_ID_BYTES];
	uint64_t seq;
	size_t had = stats->applied;
	int rc, continues;

	continues = u->active && peek_author_seq(&span, author, &seq) == 0 &&
	            memcmp(author, u->author, LIM_ID_BYTES) == 0 && seq == u->seq + 1;
	if (!continues && (rc = check_unverified(u)) < 0)
		return rc;
	/* Any failure rolls the whole pack back, the author cache with it. */
	if ((rc = apply_one(db, line, len, stats, ev, 0, &who, ac)) < 0) {
		/* The unchecked change before it may be the one at fault. */
		if (continues && check_unverified(u) < 0)
			return lim_error_last_code();
		/* Only a signature tells a forked chain from a broken one; the
		 * check failed before anything was written, so it can be redone. */
		if (rc == LIM_EHASH)
			rc = apply_one(db, line, len, stats, ev, 1, &who, ac);
		return lim__error_prefix(rc, "pack line %zu", lineno);
	}
	if (stats->applied > had) {
		u->active = 1;
		memcpy(u->author, who.author, LIM_ID_BYTES);
		u->seq = who.seq;
		u->lineno = lineno;
		lim_sb__clear(&u->line);
		lim_sb__put(&u->line, line, len);
		if (u->line.oom)
			return lim__error(LIM_ENOMEM, "out of memory");
	}
	return 0;
}

static int import_lines(lim_db *db, line_reader *r, lim_apply_stats *stats, evidence *ev, unverified *u)
{
	author_cache ac = { 0 };
	crypto_generichash_state h;
	const char *line;
	size_t len, count = 0, lineno = 1;
	int terminated, rc;

	rc = next_line(r, &line, &len, &terminated, LIM_MAX_CHANGE_BYTES);
	if (rc <= 0)
		return rc < 0 ? rc : lim__error(LIM_EMALFORMED, "the pack is empty");
	if (!terminated || len != sizeof(PACK_HEADER) - 1 || memcmp(line, PACK_HEADER, len) != 0)
		return lim__error(LIM_EMALFORMED, "not a liblim pack (the first line must be \"%s\")", PACK_HEADER);
	pack_hash_init(&h);
	for (;;) {
		lineno++;
		rc = next_line(r, &line, &len, &terminated, LIM_MAX_CHANGE_BYTES);
		/* Whatever ends the changes, a change read before it comes first. */
		if ((rc <= 0 || !terminated || (len >= 4 && memcmp(line, "END ", 4) == 0)) && check_unverified(u) < 0)
			return lim_error_last_code();
		if (rc < 0)
			return lim__error_prefix(rc, "pack line %zu", lineno);
		if (rc == 0)
			return lim__error(LIM_EMALFORMED, "the pack is truncated: no END line after %zu changes", count);
		if (!terminated)
			return lim__error(LIM_EMALFORMED, "pack line %zu: the pack is truncated (no final line feed)", lineno);
		if (len >= 4 && memcmp(line, "END ", 4) == 0) {
			unsigned char want[LIM_HASH_BYTES], got[LIM_HASH_BYTES];
			const char *sp = memchr(line + 4, ' ', len - 4);
			uint64_t n;
			if (!sp || lim_dec__parse_u64(line + 4, (size_t)(sp - line - 4), &n) < 0 ||
			    lim_hex__decode(want, LIM_HASH_BYTES, sp + 1, (size_t)(line + len - sp - 1)) < 0)
				return lim__error(LIM_EMALFORMED, "pack line %zu: the END line is not \"END <count> <hash>\"", lineno);
			if (n != count)
				return lim__error(LIM_EMALFORMED, "the pack says it holds %llu changes but %zu were read",
				                  (unsigned long long)n, count);
			crypto_generichash_final(&h, got, LIM_HASH_BYTES);
			if (sodium_memcmp(want, got, LIM_HASH_BYTES) != 0)
				return lim__error(LIM_EMALFORMED, "the pack's checksum does not match its contents");
			rc = next_line(r, &line, &len, &terminated, 0);
			if (rc != 0)
				return lim__error(LIM_EMALFORMED, "the pack has data after its END line");
			return 0;
		}
		crypto_generichash_update(&h, (const unsigned char *)line, len);
		crypto_generichash_update(&h, (const unsigned char *)"\n", 1);
		if ((rc = import_line(db, line, len, lineno, stats, ev, &ac, u)) < 0)
			return rc;
		count++;
	}
}

int lim_db_import(lim_db *db, long (*read)(void *ctx, char *buf, size_t cap), void *ctx, lim_apply_stats *stats)
{
	line_reader r;
	lim_apply_stats local = { 0, 0 };
	evidence ev;
	unverified u = { 0, { 0 }, 0, 0, LIM_SB_INIT };
	int rc;

	if (!db || !read)
		return lim__error(LIM_EINVALID, "NULL argument");
	memset(&r, 0, sizeof(r));
	memset(&ev, 0, sizeof(ev));
	r.read = read;
	r.ctx = ctx;
	r.cap = 64 * 1024;
	if (!(r.buf = malloc(r.cap)))
		return lim__error(LIM_ENOMEM, "out of memory");
	LIM_DB_LOCK(db);
	if ((rc = check_can_apply(db)) == 0 && (rc = lim_store__begin(&db->st)) == 0) {
		rc = import_lines(db, &r, &local, &ev, &u);
		if (rc < 0) {
			int code = rc;
			/* All or nothing: a pack that fails anywhere changes nothing. */
			lim_store__rollback(&db->st);
			record_evidence(db, &ev);
			rc = code;
		} else if ((rc = lim_store__commit(&db->st)) == 0 && local.applied) {
			lim_db__notify_commit(db);
		}
	}
	LIM_DB_UNLOCK(db);
	free(r.buf);
	lim_sb__free(&ev.body);
	lim_sb__free(&u.line);
	if (rc == 0 && stats) {
		stats->applied += local.applied;
		stats->duplicates += local.duplicates;
	}
	return rc;
}
