/*
 * Opening a store, its identity, and local writes.
 *
 * A local write is built as op text, parsed back and applied through the
 * merge layer exactly as a remote op would be, so local and remote writes
 * cannot disagree. Outside an explicit transaction each write is its own
 * change: BEGIN IMMEDIATE, apply, seal (hash + one signature), insert into
 * the log, COMMIT. Acknowledged means committed.
 */
#include <sodium.h>
#include <stdlib.h>
#include <time.h>
#include "db.h"
#include "hlc.h"
#include "text.h"
#include "value.h"

static pthread_once_t sodium_once = PTHREAD_ONCE_INIT;
static int sodium_ok;

static void init_sodium(void)
{
	sodium_ok = sodium_init() >= 0;
}

int lim_db_options_init(lim_db_options *opts, unsigned int version)
{
	lim_db_options defaults = LIM_DB_OPTIONS_INIT;
	if (!opts)
		return lim__error(LIM_EINVALID, "options pointer is NULL");
	if (version != LIM_DB_OPTIONS_VERSION)
		return lim__error(LIM_EINVALID, "unsupported lim_db_options version %u", version);
	*opts = defaults;
	return 0;
}

int64_t lim_db__now_ms(const lim_db *db)
{
	return db->opts.clock ? db->opts.clock(db->opts.clock_ctx) : lim_hlc__wall_ms();
}

int lim_db__check_writable(lim_db *db)
{
	if (lim_store__failed(&db->st))
		return lim__error(LIM_EFAILED, "the store is in a failed state after an I/O error; reopen it");
	return 0;
}

int lim_db__author(lim_db *db, const unsigned char key[LIM_ID_BYTES], int64_t *id, uint64_t *max_seq,
                   unsigned char head[LIM_HASH_BYTES], uint64_t *head_hlc)
{
	sqlite3_stmt *q = lim_store__stmt(&db->st, LIM_ST_AUTHOR_GET);
	int rc;
	*id = 0;
	*max_seq = 0;
	*head_hlc = 0;
	memset(head, 0, LIM_HASH_BYTES);
	if (!q)
		return LIM_EIO;
	sqlite3_bind_blob(q, 1, key, LIM_ID_BYTES, SQLITE_STATIC);
	rc = sqlite3_step(q);
	if (rc == SQLITE_ROW) {
		*id = sqlite3_column_int64(q, 0);
		*max_seq = (uint64_t)sqlite3_column_int64(q, 1);
		if (sqlite3_column_bytes(q, 2) == LIM_HASH_BYTES)
			memcpy(head, sqlite3_column_blob(q, 2), LIM_HASH_BYTES);
		*head_hlc = (uint64_t)sqlite3_column_int64(q, 3);
		rc = SQLITE_DONE;
	}
	sqlite3_reset(q);
	return rc == SQLITE_DONE ? 0 : lim_store__error(&db->st, rc, "reading an author");
}

/* ------------------------------------------------------------ open */

static int meta_put(lim_db *db, const char *key, const void *val, size_t n)
{
	sqlite3_stmt *q = lim_store__stmt(&db->st, LIM_ST_META_PUT);
	if (!q)
		return LIM_EIO;
	sqlite3_bind_text(q, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_blob(q, 2, val, (int)n, SQLITE_STATIC);
	return lim_store__step_done(&db->st, q, "writing store metadata");
}

static int meta_get(lim_db *db, const char *key, void *out, size_t n)
{
	sqlite3_stmt *q = lim_store__stmt(&db->st, LIM_ST_META_GET);
	int rc;
	if (!q)
		return LIM_EIO;
	sqlite3_bind_text(q, 1, key, -1, SQLITE_STATIC);
	rc = sqlite3_step(q);
	if (rc == SQLITE_ROW && (size_t)sqlite3_column_bytes(q, 0) == n) {
		memcpy(out, sqlite3_column_blob(q, 0), n);
		sqlite3_reset(q);
		return 0;
	}
	sqlite3_reset(q);
	if (rc == SQLITE_ROW || rc == SQLITE_DONE)
		return lim__error(LIM_ECORRUPT, "the store's %s is missing or has the wrong size", key);
	return lim_store__error(&db->st, rc, "reading store metadata");
}

static int create_identity(lim_db *db, const unsigned char *network_key)
{
	sqlite3_stmt *q;
	int rc;
	crypto_sign_keypair(db->public_key, db->secret_key);
	if (network_key)
		memcpy(db->network_key, network_key, LIM_NETWORK_KEY_BYTES);
	else
		randombytes_buf(db->network_key, LIM_NETWORK_KEY_BYTES);
	if ((rc = meta_put(db, "public_key", db->public_key, LIM_ID_BYTES)) < 0 ||
	    (rc = meta_put(db, "secret_key", db->secret_key, LIM_SECRET_KEY_BYTES)) < 0 ||
	    (rc = meta_put(db, "network_key", db->network_key, LIM_NETWORK_KEY_BYTES)) < 0)
		return rc;
	if (!(q = lim_store__stmt(&db->st, LIM_ST_AUTHOR_INSERT)))
		return LIM_EIO;
	sqlite3_bind_blob(q, 1, db->public_key, LIM_ID_BYTES, SQLITE_STATIC);
	return lim_store__step_done(&db->st, q, "registering the local author");
}

static int load_identity(lim_db *db, const unsigned char *network_key)
{
	unsigned char derived[LIM_ID_BYTES];
	int rc;
	if ((rc = meta_get(db, "public_key", db->public_key, LIM_ID_BYTES)) < 0 ||
	    (rc = meta_get(db, "secret_key", db->secret_key, LIM_SECRET_KEY_BYTES)) < 0 ||
	    (rc = meta_get(db, "network_key", db->network_key, LIM_NETWORK_KEY_BYTES)) < 0)
		return rc;
	if (crypto_sign_ed25519_sk_to_pk(derived, db->secret_key) != 0 ||
	    sodium_memcmp(derived, db->public_key, LIM_ID_BYTES) != 0)
		return lim__error(LIM_ECORRUPT, "the store's secret key does not match its public key");
	if (network_key && sodium_memcmp(network_key, db->network_key, LIM_NETWORK_KEY_BYTES) != 0)
		return lim__error(LIM_EINVALID, "the given network key does not match the store's network key");
	return 0;
}

static int load_clock(lim_db *db)
{
	sqlite3_stmt *q = lim_store__stmt(&db->st, LIM_ST_MAX_HLC);
	int rc;
	if (!q)
		return LIM_EIO;
	rc = sqlite3_step(q);
	if (rc == SQLITE_ROW)
		db->clock_last = (uint64_t)sqlite3_column_int64(q, 0);
	sqlite3_reset(q);
	return rc == SQLITE_ROW ? 0 : lim_store__error(&db->st, rc, "reading the clock");
}

int lim_db_open(lim_db **out, const char *path, const lim_db_options *opts)
{
	lim_db_options defaults = LIM_DB_OPTIONS_INIT;
	lim_db *db;
	int fresh = 0, rc;

	if (!out)
		return lim__error(LIM_EINVALID, "out pointer is NULL");
	*out = NULL;
	if (!path || !*path)
		return lim__error(LIM_EINVALID, "store path is empty");
	if (opts && opts->version != LIM_DB_OPTIONS_VERSION)
		return lim__error(LIM_EINVALID, "unsupported lim_db_options version %u", opts->version);
	if (!opts)
		opts = &defaults;
	if (opts->synchronous != LIM_SYNC_NORMAL && opts->synchronous != LIM_SYNC_FULL)
		return lim__error(LIM_EINVALID, "synchronous must be LIM_SYNC_NORMAL or LIM_SYNC_FULL");
	if (opts->max_drift_ms < 0)
		return lim__error(LIM_EINVALID, "max_drift_ms must not be negative");
	pthread_once(&sodium_once, init_sodium);
	if (!sodium_ok)
		return lim__error(LIM_ERROR, "libsodium failed to initialise");
	if (!(db = calloc(1, sizeof(*db))))
		return lim__error(LIM_ENOMEM, "out of memory");
	db->opts = *opts;
	db->opts.network_key = NULL;
	db->opts.vfs = NULL;
	pthread_mutex_init(&db->mu, NULL);
	pthread_cond_init(&db->txn_done, NULL);
	if ((rc = lim_store__open(&db->st, path, opts->create, opts->synchronous, opts->vfs, &fresh)) < 0) {
		pthread_cond_destroy(&db->txn_done);
		pthread_mutex_destroy(&db->mu);
		free(db);
		return rc;
	}
	lim_merge__init(&db->merge, &db->st);
	if (fresh) {
		if ((rc = create_identity(db, opts->network_key)) < 0 || (rc = lim_store__commit(&db->st)) < 0) {
			lim_store__rollback(&db->st);
			lim__error_prefix(rc, "creating %s", path);
			goto fail;
		}
	} else if ((rc = load_identity(db, opts->network_key)) < 0) {
		lim__error_prefix(rc, "%s", path);
		goto fail;
	}
	if ((rc = load_clock(db)) < 0)
		goto fail;
	*out = db;
	return 0;
fail:
	lim_db_free(db);
	return rc;
}

void lim_db_free(lim_db *db)
{
	if (!db)
		return;
	if (db->txn_open)
		lim_store__rollback(&db->st);
	lim_merge__dispose(&db->merge);
	lim_store__close(&db->st);
	lim_sb__free(&db->txn_ops.ops);
	lim_sb__free(&db->op_text);
	lim_sb__free(&db->sealed);
	lim_sb__free(&db->scratch);
	sodium_memzero(db->secret_key, sizeof(db->secret_key));
	pthread_cond_destroy(&db->txn_done);
	pthread_mutex_destroy(&db->mu);
	free(db);
}

int lim_db_replica_id(lim_db *db, unsigned char out[LIM_ID_BYTES])
{
	if (!db || !out)
		return lim__error(LIM_EINVALID, "NULL argument");
	memcpy(out, db->public_key, LIM_ID_BYTES);
	return 0;
}

int lim_db_network_key(lim_db *db, unsigned char out[LIM_NETWORK_KEY_BYTES])
{
	if (!db || !out)
		return lim__error(LIM_EINVALID, "NULL argument");
	memcpy(out, db->network_key, LIM_NETWORK_KEY_BYTES);
	return 0;
}

/* ------------------------------------------------------------ transactions */

static int txn_start(lim_db *db, int explicit_txn)
{
	uint64_t max_seq, head_hlc;
	int rc;
	if ((rc = lim_db__check_writable(db)) < 0 || (rc = lim_store__begin(&db->st)) < 0)
		return rc;
	/* Re-read our own head inside the write lock: another process may
	 * have written with the same identity since we last looked. */
	if ((rc = lim_db__author(db, db->public_key, &db->txn_author_id, &max_seq, db->txn_prev, &head_hlc)) < 0) {
		lim_store__rollback(&db->st);
		return rc;
	}
	if (db->txn_author_id == 0) {
		lim_store__rollback(&db->st);
		return lim__error(LIM_ECORRUPT, "the store has no entry for its own author");
	}
	db->txn_seq = max_seq + 1;
	db->txn_hlc = lim_hlc__tick(db->clock_last > head_hlc ? db->clock_last : head_hlc, lim_db__now_ms(db));
	db->clock_last = db->txn_hlc;
	db->txn_open = 1;
	db->txn_explicit = explicit_txn;
	db->txn_owner = pthread_self();
	lim_sb__clear(&db->txn_ops.ops);
	db->txn_ops.nops = 0;
	return 0;
}

static void txn_abort(lim_db *db)
{
	lim_store__rollback(&db->st);
	db->txn_open = 0;
	db->txn_explicit = 0;
	pthread_cond_broadcast(&db->txn_done);
}

void lim_db__notify_commit(lim_db *db)
{
	if (db->on_commit)
		db->on_commit(db->on_commit_ctx);
}

int64_t lim_db__data_version(lim_db *db)
{
	sqlite3_stmt *q;
	int64_t v = -1;
	LIM_DB_LOCK(db);
	if ((q = lim_store__stmt(&db->st, LIM_ST_DATA_VERSION)) && sqlite3_step(q) == SQLITE_ROW)
		v = sqlite3_column_int64(q, 0);
	if (q)
		sqlite3_reset(q);
	LIM_DB_UNLOCK(db);
	return v;
}

int lim_db__wait_txn(lim_db *db)
{
	struct timespec deadline;
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += 10;
	while (db->txn_explicit && !pthread_equal(db->txn_owner, pthread_self()))
		if (pthread_cond_timedwait(&db->txn_done, &db->mu, &deadline) != 0)
			return lim__error(LIM_ETXN, "another thread kept a transaction open for more than 10 s");
	return 0;
}

static int txn_finish(lim_db *db)
{
	unsigned char hash[LIM_HASH_BYTES], link[LIM_HASH_BYTES];
	sqlite3_stmt *q;
	int rc;

	if (db->txn_ops.nops == 0) {
		db->txn_open = db->txn_explicit = 0;
		pthread_cond_broadcast(&db->txn_done);
		return lim_store__commit(&db->st);
	}
	if ((rc = lim_change__seal(&db->sealed, hash, &db->txn_ops, db->public_key, db->secret_key,
	                           db->txn_seq, db->txn_hlc, db->txn_prev)) < 0)
		goto fail;
	lim_change__sealed_link(link, hash, &db->sealed);
	if (!(q = lim_store__stmt(&db->st, LIM_ST_CHANGE_INSERT))) {
		rc = LIM_EIO;
		goto fail;
	}
	sqlite3_bind_int64(q, 1, db->txn_author_id);
	sqlite3_bind_int64(q, 2, (sqlite3_int64)db->txn_seq);
	sqlite3_bind_int64(q, 3, (sqlite3_int64)db->txn_hlc);
	sqlite3_bind_blob(q, 4, hash, LIM_HASH_BYTES, SQLITE_STATIC);
	sqlite3_bind_blob(q, 5, db->sealed.ptr, (int)db->sealed.len, SQLITE_STATIC);
	if ((rc = lim_store__step_done(&db->st, q, "writing the change log")) < 0)
		goto fail;
	if (!(q = lim_store__stmt(&db->st, LIM_ST_AUTHOR_ADVANCE))) {
		rc = LIM_EIO;
		goto fail;
	}
	sqlite3_bind_int64(q, 1, db->txn_author_id);
	sqlite3_bind_int64(q, 2, (sqlite3_int64)db->txn_seq);
	sqlite3_bind_blob(q, 3, link, LIM_HASH_BYTES, SQLITE_STATIC);
	sqlite3_bind_int64(q, 4, (sqlite3_int64)db->txn_hlc);
	if ((rc = lim_store__step_done(&db->st, q, "advancing the author")) < 0)
		goto fail;
	db->txn_open = db->txn_explicit = 0;
	pthread_cond_broadcast(&db->txn_done);
	if ((rc = lim_store__commit(&db->st)) == 0)
		lim_db__notify_commit(db);
	return rc;
fail:
	txn_abort(db);
	return rc;
}

int lim_db_begin(lim_db *db)
{
	int rc;
	if (!db)
		return lim__error(LIM_EINVALID, "db is NULL");
	LIM_DB_LOCK(db);
	if (db->txn_explicit && pthread_equal(db->txn_owner, pthread_self()))
		rc = lim__error(LIM_ETXN, "a transaction is already open on this store");
	else if ((rc = lim_db__wait_txn(db)) == 0)
		rc = txn_start(db, 1);
	LIM_DB_UNLOCK(db);
	return rc;
}

int lim_db_commit(lim_db *db)
{
	int rc;
	if (!db)
		return lim__error(LIM_EINVALID, "db is NULL");
	LIM_DB_LOCK(db);
	rc = db->txn_explicit && pthread_equal(db->txn_owner, pthread_self())
	         ? txn_finish(db) : lim__error(LIM_ETXN, "no transaction is open on this thread");
	LIM_DB_UNLOCK(db);
	return rc;
}

int lim_db_rollback(lim_db *db)
{
	int rc = 0;
	if (!db)
		return lim__error(LIM_EINVALID, "db is NULL");
	LIM_DB_LOCK(db);
	if (db->txn_explicit && pthread_equal(db->txn_owner, pthread_self()))
		txn_abort(db);
	else
		rc = lim__error(LIM_ETXN, "no transaction is open on this thread");
	LIM_DB_UNLOCK(db);
	return rc;
}

/* ------------------------------------------------------------ writes */

typedef struct {
	const char *coll, *doc, *path;
} target;

static int check_target(const target *t, int need_path)
{
	int rc;
	if (!t->coll || !t->doc)
		return lim__error(LIM_EINVALID, "collection and document must not be NULL");
	if ((rc = lim_name__check_coll(t->coll, strlen(t->coll))) < 0 ||
	    (rc = lim_name__check_doc(t->doc, strlen(t->doc))) < 0)
		return rc;
	if (!t->path)
		return need_path ? lim__error(LIM_EINVALID, "field path must not be NULL") : 0;
	return lim_name__check_path(t->path, strlen(t->path));
}

/* Append one op (already printed in db->op_text) to the open change and
 * apply it. */
static int emit_op(lim_db *db)
{
	lim_op op;
	int rc;
	if (db->txn_ops.nops >= LIM_MAX_OPS_PER_CHANGE)
		return lim__error(LIM_EINVALID, "a transaction may hold at most %d ops", LIM_MAX_OPS_PER_CHANGE);
	if ((rc = lim_sb__check(&db->op_text)) < 0)
		return rc;
	if ((rc = lim_op__parse(&op, db->op_text.ptr, db->op_text.len)) < 0)
		return rc;
	if ((rc = lim_merge__apply(&db->merge, &op, db->txn_hlc, db->public_key, db->txn_seq,
	                           (uint32_t)db->txn_ops.nops)) < 0)
		return rc;
	lim_sb__putc(&db->txn_ops.ops, ' ');
	lim_sb__put(&db->txn_ops.ops, db->op_text.ptr, db->op_text.len);
	db->txn_ops.nops++;
	return lim_sb__check(&db->txn_ops.ops);
}

static void op_begin(lim_db *db, lim_op_kind kind, const target *t)
{
	lim_sb *s = &db->op_text;
	lim_sb__clear(s);
	lim_sb__putc(s, (char)kind);
	lim_sb__putc(s, ' ');
	lim_text__escape(s, t->coll, strlen(t->coll));
	lim_sb__putc(s, ' ');
	lim_text__escape(s, t->doc, strlen(t->doc));
	if (kind != LIM_OP_DELDOC) {
		lim_sb__putc(s, ' ');
		lim_text__escape(s, t->path, strlen(t->path));
	}
}

static int emit_delete(lim_db *db, const target *t)
{
	op_begin(db, t->path ? LIM_OP_DEL : LIM_OP_DELDOC, t);
	return emit_op(db);
}

/*
 * Writing a value at p replaces what the document showed there: a live
 * object below p, or a live scalar at an ancestor of p, is deleted first in
 * the same change. Concurrent writers still converge (objects win when
 * rendering), but a single writer sees plain last-write-wins.
 */
static int clear_conflicts(lim_db *db, const target *t)
{
	int rc;
	char *path = (char *)t->path; /* we cut it temporarily at each '.' */
	if ((rc = lim_merge__live_below(&db->merge, t->coll, t->doc, t->path)) < 0)
		return rc;
	if (rc && (rc = emit_delete(db, t)) < 0)
		return rc;
	for (char *dot = strchr(path, '.'); dot; dot = strchr(dot + 1, '.')) {
		*dot = '\0';
		rc = lim_merge__kind_at(&db->merge, t->coll, t->doc, path);
		if (rc > 0) {
			target anc = { t->coll, t->doc, path };
			rc = lim_merge__live_below(&db->merge, t->coll, t->doc, path);
			if (rc == 0)
				rc = emit_delete(db, &anc);
		}
		*dot = '.';
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int emit_value_op(lim_db *db, lim_op_kind kind, const target *t, const lim_value *v)
{
	int rc = clear_conflicts(db, t);
	if (rc < 0)
		return rc;
	op_begin(db, kind, t);
	lim_sb__putc(&db->op_text, ' ');
	lim_value__encode(&db->op_text, v);
	return emit_op(db);
}

typedef int (*write_fn)(lim_db *db, const target *t, const void *arg);

/* Run one write inside the open transaction (as a savepoint, so a failed
 * write leaves the transaction as it was) or as a change of its own. */
static int run_write(lim_db *db, const target *t, int need_path, write_fn fn, const void *arg)
{
	int rc, implicit;
	char path_copy[LIM_MAX_PATH_BYTES + 1];
	target local = *t;

	if (!db)
		return lim__error(LIM_EINVALID, "db is NULL");
	if ((rc = check_target(t, need_path)) < 0)
		return rc;
	if (t->path) {
		memcpy(path_copy, t->path, strlen(t->path) + 1);
		local.path = path_copy;
	}
	LIM_DB_LOCK(db);
	if ((rc = lim_db__wait_txn(db)) < 0)
		goto out;
	implicit = !db->txn_open;
	if (implicit && (rc = txn_start(db, 0)) < 0)
		goto out;
	if (!implicit && (rc = lim_store__run(&db->st, LIM_ST_SAVEPOINT_OP, "starting a savepoint")) < 0)
		goto out;
	size_t ops_len = db->txn_ops.ops.len, nops = db->txn_ops.nops;
	rc = fn(db, &local, arg);
	if (implicit) {
		rc = rc < 0 ? (txn_abort(db), rc) : txn_finish(db);
	} else if (rc < 0) {
		int keep = rc;
		if (lim_store__run(&db->st, LIM_ST_ROLLBACK_TO_OP, "undoing a write") == 0)
			lim_store__run(&db->st, LIM_ST_RELEASE_OP, "undoing a write");
		db->txn_ops.ops.len = ops_len;
		db->txn_ops.nops = nops;
		rc = keep;
	} else {
		rc = lim_store__run(&db->st, LIM_ST_RELEASE_OP, "releasing a savepoint");
	}
out:
	LIM_DB_UNLOCK(db);
	return rc;
}

static int do_set(lim_db *db, const target *t, const void *arg)
{
	return emit_value_op(db, LIM_OP_SET, t, arg);
}

int lim_db_set(lim_db *db, const char *coll, const char *doc, const char *path, const lim_value *value)
{
	target t = { coll, doc, path };
	int rc = lim_value__check(value);
	return rc < 0 ? rc : run_write(db, &t, 1, do_set, value);
}

typedef struct {
	size_t n;
	const char *const *paths;
	const lim_value *values;
} multi_set;

static int do_multi_set(lim_db *db, const target *t, const void *arg)
{
	const multi_set *ms = arg;
	char path[LIM_MAX_PATH_BYTES + 1];
	int rc = 0;
	for (size_t i = 0; i < ms->n && rc == 0; i++) {
		target leaf = { t->coll, t->doc, path };
		memcpy(path, ms->paths[i], strlen(ms->paths[i]) + 1);
		rc = emit_value_op(db, LIM_OP_SET, &leaf, &ms->values[i]);
	}
	return rc;
}

int lim_db__put_values(lim_db *db, const char *coll, const char *doc, size_t n,
                       const char *const *paths, const lim_value *values)
{
	target t = { coll, doc, NULL };
	multi_set ms = { n, paths, values };
	int rc;
	if (n > LIM_MAX_OPS_PER_CHANGE)
		return lim__error(LIM_EINVALID, "the object has %zu fields; one change holds at most %d", n, LIM_MAX_OPS_PER_CHANGE);
	for (size_t i = 0; i < n; i++)
		if ((rc = lim_value__check(&values[i])) < 0 || (rc = lim_name__check_path(paths[i], strlen(paths[i]))) < 0)
			return rc;
	return run_write(db, &t, 0, do_multi_set, &ms);
}

static int do_delete(lim_db *db, const target *t, const void *arg)
{
	LIM_UNUSED(arg);
	return emit_delete(db, t);
}

int lim_db_delete(lim_db *db, const char *coll, const char *doc, const char *path)
{
	target t = { coll, doc, path };
	return run_write(db, &t, 0, do_delete, NULL);
}

static int do_incr(lim_db *db, const target *t, const void *arg)
{
	int rc = clear_conflicts(db, t);
	if (rc < 0)
		return rc;
	op_begin(db, LIM_OP_INCR, t);
	lim_sb__printf(&db->op_text, " %lld", (long long)*(const int64_t *)arg);
	return emit_op(db);
}

int lim_db_incr(lim_db *db, const char *coll, const char *doc, const char *path, int64_t delta)
{
	target t = { coll, doc, path };
	return run_write(db, &t, 1, do_incr, &delta);
}

static int do_sadd(lim_db *db, const target *t, const void *arg)
{
	return emit_value_op(db, LIM_OP_SADD, t, arg);
}

int lim_db_set_add(lim_db *db, const char *coll, const char *doc, const char *path, const lim_value *elem)
{
	target t = { coll, doc, path };
	int rc = lim_value__check(elem);
	return rc < 0 ? rc : run_write(db, &t, 1, do_sadd, elem);
}

static int do_srem(lim_db *db, const target *t, const void *arg)
{
	lim_sb *tok = &db->scratch;
	int n;
	lim_sb__clear(tok);
	lim_value__encode(tok, arg);
	if (lim_sb__check(tok) < 0)
		return LIM_ENOMEM;
	op_begin(db, LIM_OP_SREM, t);
	lim_sb__putc(&db->op_text, ' ');
	lim_sb__put(&db->op_text, tok->ptr, tok->len);
	lim_sb__putc(&db->op_text, ' ');
	n = lim_merge__observed_tags(&db->merge, t->coll, t->doc, t->path, tok->ptr, tok->len, &db->op_text);
	if (n <= 0)
		return n; /* not a member: removing it records nothing */
	return emit_op(db);
}

int lim_db_set_remove(lim_db *db, const char *coll, const char *doc, const char *path, const lim_value *elem)
{
	target t = { coll, doc, path };
	int rc = lim_value__check(elem);
	return rc < 0 ? rc : run_write(db, &t, 1, do_srem, elem);
}
