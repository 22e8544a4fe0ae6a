/*
 * See store.h. The schema (version 1):
 *
 *   meta          key/value: identity keys, network key
 *   authors       public key -> compact id, highest contiguous seq, and the
 *                 link and hlc of that seq's change (what its successor must
 *                 name and exceed), so applying a change reads no other row
 *   changes       the log: (author, seq) -> hlc, hash, canonical bytes; rowid = arrival
 *   equivocations evidence: a second, different, validly signed change for (author, seq)
 *   fields        materialized field state; `kind`/`json` is what reads return
 *   tombs         greatest delete stamp per (coll, doc, path); path '' = whole document
 *   cops          counter deltas newer than the field's base
 *   stags         live add-tags of set elements
 *   sremoved      tags a remove named, per field (a remove only ever acts on
 *                 its own field, whatever tags it names)
 *
 * Stamps are 52-byte big-endian blobs (hlc, author, seq, op index), so
 * SQLite's memcmp ordering of blobs is the merge order.
 */
#include <stdio.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/stat.h>
#include "store.h"

static const char *const SCHEMA_V1 =
	"CREATE TABLE meta(key TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;"
	"CREATE TABLE authors(id INTEGER PRIMARY KEY, pubkey BLOB NOT NULL UNIQUE,"
	" max_seq INTEGER NOT NULL, head_link BLOB NOT NULL, head_hlc INTEGER NOT NULL);"
	"CREATE TABLE changes(id INTEGER PRIMARY KEY, author INTEGER NOT NULL, seq INTEGER NOT NULL,"
	" hlc INTEGER NOT NULL, hash BLOB NOT NULL, body BLOB NOT NULL, UNIQUE(author, seq));"
	"CREATE TABLE equivocations(author INTEGER NOT NULL, seq INTEGER NOT NULL, body BLOB NOT NULL,"
	" PRIMARY KEY(author, seq, body)) WITHOUT ROWID;"
	"CREATE TABLE fields(coll TEXT NOT NULL, doc TEXT NOT NULL, path TEXT NOT NULL,"
	" reg_stamp BLOB, reg_val TEXT, ctr_stamp BLOB, set_stamp BLOB, ctr_sum INTEGER NOT NULL,"
	" kind INTEGER NOT NULL, json TEXT, PRIMARY KEY(coll, doc, path)) WITHOUT ROWID;"
	"CREATE TABLE tombs(coll TEXT NOT NULL, doc TEXT NOT NULL, path TEXT NOT NULL, stamp BLOB NOT NULL,"
	" PRIMARY KEY(coll, doc, path)) WITHOUT ROWID;"
	"CREATE TABLE cops(coll TEXT NOT NULL, doc TEXT NOT NULL, path TEXT NOT NULL, stamp BLOB NOT NULL,"
	" delta INTEGER NOT NULL, PRIMARY KEY(coll, doc, path, stamp)) WITHOUT ROWID;"
	"CREATE TABLE stags(coll TEXT NOT NULL, doc TEXT NOT NULL, path TEXT NOT NULL, tag BLOB NOT NULL,"
	" elem TEXT NOT NULL, stamp BLOB NOT NULL, PRIMARY KEY(coll, doc, path, tag)) WITHOUT ROWID;"
	"CREATE TABLE sremoved(coll TEXT NOT NULL, doc TEXT NOT NULL, path TEXT NOT NULL, tag BLOB NOT NULL,"
	" PRIMARY KEY(coll, doc, path, tag)) WITHOUT ROWID;";

/* Migrations from version N to N+1 go here, indexed by N; version 1 is the
 * first schema, so there is nothing to migrate yet. */
static const char *const MIGRATIONS[] = { NULL };

static const char *const SQL[LIM_ST_COUNT] = {
	[LIM_ST_META_GET] = "SELECT value FROM meta WHERE key = ?1",
	[LIM_ST_META_PUT] = "INSERT OR REPLACE INTO meta(key, value) VALUES (?1, ?2)",
	[LIM_ST_AUTHOR_GET] = "SELECT id, max_seq, head_link, head_hlc FROM authors WHERE pubkey = ?1",
	[LIM_ST_AUTHOR_INSERT] = "INSERT INTO authors(pubkey, max_seq, head_link, head_hlc) VALUES (?1, 0, zeroblob(32), 0)",
	[LIM_ST_AUTHOR_ADVANCE] = "UPDATE authors SET max_seq = ?2, head_link = ?3, head_hlc = ?4 WHERE id = ?1",
	[LIM_ST_MAX_HLC] = "SELECT coalesce(max(head_hlc), 0) FROM authors",
	[LIM_ST_CHANGE_INSERT] = "INSERT INTO changes(author, seq, hlc, hash, body) VALUES (?1, ?2, ?3, ?4, ?5)",
	[LIM_ST_CHANGE_GET] = "SELECT hash FROM changes WHERE author = ?1 AND seq = ?2",
	[LIM_ST_EQUIVOCATION_INSERT] = "INSERT OR IGNORE INTO equivocations(author, seq, body) VALUES (?1, ?2, ?3)",
	[LIM_ST_COVER] = "SELECT max(stamp) FROM tombs WHERE coll = ?1 AND doc = ?2 AND"
	                 " (path = '' OR path = ?3 OR substr(?3, 1, length(path) + 1) = path || '.')",
	[LIM_ST_TOMB_GET] = "SELECT stamp FROM tombs WHERE coll = ?1 AND doc = ?2 AND path = ?3",
	[LIM_ST_TOMB_PUT] = "INSERT INTO tombs(coll, doc, path, stamp) VALUES (?1, ?2, ?3, ?4)"
	                    " ON CONFLICT(coll, doc, path) DO UPDATE SET stamp = excluded.stamp"
	                    " WHERE excluded.stamp > tombs.stamp",
	[LIM_ST_FIELD_GET] = "SELECT reg_stamp, reg_val, ctr_stamp, set_stamp, ctr_sum, kind FROM fields"
	                     " WHERE coll = ?1 AND doc = ?2 AND path = ?3",
	[LIM_ST_FIELD_PUT] = "INSERT OR REPLACE INTO fields(coll, doc, path, reg_stamp, reg_val, ctr_stamp,"
	                     " set_stamp, ctr_sum, kind, json) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
	[LIM_ST_FIELD_DELETE] = "DELETE FROM fields WHERE coll = ?1 AND doc = ?2 AND path = ?3",
	[LIM_ST_FIELDS_UNDER] = "SELECT path FROM fields WHERE coll = ?1 AND doc = ?2 AND"
	                        " (path = ?3 OR (path > ?3 || '.' AND path < ?3 || '/'))",
	[LIM_ST_FIELDS_OF_DOC] = "SELECT path FROM fields WHERE coll = ?1 AND doc = ?2",
	[LIM_ST_LIVE_UNDER] = "SELECT 1 FROM fields WHERE coll = ?1 AND doc = ?2 AND path > ?3 || '.'"
	                      " AND path < ?3 || '/' AND kind != 0 LIMIT 1",
	[LIM_ST_COPS_INSERT] = "INSERT OR IGNORE INTO cops(coll, doc, path, stamp, delta) VALUES (?1, ?2, ?3, ?4, ?5)",
	[LIM_ST_COPS_PRUNE] = "DELETE FROM cops WHERE coll = ?1 AND doc = ?2 AND path = ?3 AND stamp <= ?4",
	[LIM_ST_COPS_ALL] = "SELECT delta FROM cops WHERE coll = ?1 AND doc = ?2 AND path = ?3",
	[LIM_ST_STAGS_INSERT] = "INSERT OR IGNORE INTO stags(coll, doc, path, tag, elem, stamp) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
	[LIM_ST_STAGS_PRUNE] = "DELETE FROM stags WHERE coll = ?1 AND doc = ?2 AND path = ?3 AND stamp <= ?4",
	[LIM_ST_STAGS_REMOVE] = "DELETE FROM stags WHERE coll = ?1 AND doc = ?2 AND path = ?3 AND tag = ?4",
	[LIM_ST_SREMOVED_INSERT] = "INSERT OR IGNORE INTO sremoved(coll, doc, path, tag) VALUES (?1, ?2, ?3, ?4)",
	[LIM_ST_SREMOVED_HAS] = "SELECT 1 FROM sremoved WHERE coll = ?1 AND doc = ?2 AND path = ?3 AND tag = ?4",
	[LIM_ST_SET_ELEMS] = "SELECT DISTINCT elem FROM stags WHERE coll = ?1 AND doc = ?2 AND path = ?3 ORDER BY elem",
	[LIM_ST_SET_TAGS_OF] = "SELECT tag FROM stags WHERE coll = ?1 AND doc = ?2 AND path = ?3 AND elem = ?4 ORDER BY tag",
	[LIM_ST_FIELD_READ] = "SELECT kind, reg_val, ctr_sum FROM fields WHERE coll = ?1 AND doc = ?2 AND path = ?3 AND kind != 0",
	[LIM_ST_DOC_RENDER] = "SELECT path, json FROM fields WHERE coll = ?1 AND doc = ?2 AND kind != 0",
	[LIM_ST_DATA_VERSION] = "PRAGMA data_version",
	[LIM_ST_SUBTREE_RENDER] = "SELECT path, json FROM fields WHERE coll = ?1 AND doc = ?2 AND kind != 0"
	                          " AND (path = ?3 OR (path > ?3 || '.' AND path < ?3 || '/'))",
	[LIM_ST_BEGIN] = "BEGIN IMMEDIATE",
	[LIM_ST_COMMIT] = "COMMIT",
	[LIM_ST_SAVEPOINT_OP] = "SAVEPOINT lim_op",
	[LIM_ST_RELEASE_OP] = "RELEASE lim_op",
	[LIM_ST_ROLLBACK_TO_OP] = "ROLLBACK TO lim_op",
	[LIM_ST_SAVEPOINT_RUN] = "SAVEPOINT lim_run",
	[LIM_ST_RELEASE_RUN] = "RELEASE lim_run",
	[LIM_ST_ROLLBACK_TO_RUN] = "ROLLBACK TO lim_run",
};

int lim_store__error(lim_store *st, int rc, const char *doing)
{
	int primary = rc & 0xff;
	const char *msg = st && st->sql ? sqlite3_errmsg(st->sql) : sqlite3_errstr(rc);
	switch (primary) {
	case SQLITE_NOMEM:
		return lim__error(LIM_ENOMEM, "%s: out of memory", doing);
	case SQLITE_NOTADB:
		return lim__error(LIM_ENOTSTORE, "%s: the file is not a liblim store (not an SQLite database)", doing);
	case SQLITE_CORRUPT:
		return lim__error(LIM_ECORRUPT, "%s: the database file is damaged: %s", doing, msg);
	default:
		return lim__error(LIM_EIO, "%s: %s", doing, msg);
	}
}

int lim_store__exec(lim_store *st, const char *sql)
{
	int rc = sqlite3_exec(st->sql, sql, NULL, NULL, NULL);
	return rc == SQLITE_OK ? 0 : lim_store__error(st, rc, "running SQL");
}

sqlite3_stmt *lim_store__stmt(lim_store *st, lim_stmt_id id)
{
	sqlite3_stmt *s = st->stmts[id];
	if (!s) {
		int rc = sqlite3_prepare_v3(st->sql, SQL[id], -1, SQLITE_PREPARE_PERSISTENT, &st->stmts[id], NULL);
		if (rc != SQLITE_OK) {
			lim_store__error(st, rc, "preparing a statement");
			return NULL;
		}
		return st->stmts[id];
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return s;
}

int lim_store__step_done(lim_store *st, sqlite3_stmt *stmt, const char *doing)
{
	int rc = sqlite3_step(stmt);
	sqlite3_reset(stmt);
	if (rc == SQLITE_DONE || rc == SQLITE_ROW)
		return 0;
	return lim_store__error(st, rc, doing);
}

int lim_store__run(lim_store *st, lim_stmt_id id, const char *doing)
{
	sqlite3_stmt *q = lim_store__stmt(st, id);
	return q ? lim_store__step_done(st, q, doing) : LIM_EIO;
}

int lim_store__begin(lim_store *st)
{
	return lim_store__run(st, LIM_ST_BEGIN, "starting a transaction");
}

/* A failed write or sync (in a commit or a checkpoint) may have lost data
 * that SQLite, or the kernel, now believes written; never retry into a
 * success that is not one (DESIGN.md, security rules): the store stays
 * failed until it is reopened. */
static void fail_on_io_error(lim_store *st, int rc)
{
	if ((rc & 0xff) == SQLITE_IOERR)
		__atomic_store_n(&st->failed, 1, __ATOMIC_SEQ_CST);
}

int lim_store__commit(lim_store *st)
{
	sqlite3_stmt *q = lim_store__stmt(st, LIM_ST_COMMIT);
	int rc = q ? sqlite3_step(q) : SQLITE_NOMEM;
	if (q)
		sqlite3_reset(q);
	if (rc == SQLITE_DONE)
		return 0;
	fail_on_io_error(st, rc);
	lim_store__error(st, rc, "committing");
	sqlite3_exec(st->sql, "ROLLBACK", NULL, NULL, NULL);
	return lim_store__failed(st) ? lim__error_prefix(LIM_EFAILED, "the store is now in a failed state; reopen it") : LIM_EIO;
}

void lim_store__rollback(lim_store *st)
{
	if (!sqlite3_get_autocommit(st->sql))
		sqlite3_exec(st->sql, "ROLLBACK", NULL, NULL, NULL);
}

static int query_int(lim_store *st, const char *sql, int64_t *out)
{
	sqlite3_stmt *s;
	int rc = sqlite3_prepare_v2(st->sql, sql, -1, &s, NULL);
	if (rc != SQLITE_OK)
		return lim_store__error(st, rc, "opening the store");
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	if (rc != SQLITE_ROW)
		return lim_store__error(st, rc, "opening the store");
	return 0;
}

static int setup_schema(lim_store *st, int *fresh)
{
	int64_t app_id, version, objects;
	int rc;
	char sql[128];

	if ((rc = query_int(st, "PRAGMA application_id", &app_id)) < 0)
		return rc;
	if ((rc = query_int(st, "PRAGMA user_version", &version)) < 0)
		return rc;
	if ((rc = query_int(st, "SELECT count(*) FROM sqlite_master", &objects)) < 0)
		return rc;
	*fresh = 0;
	if (app_id == 0 && version == 0 && objects == 0) {
		*fresh = 1;
		return 0;
	}
	if (app_id != LIM_APPLICATION_ID)
		return lim__error(LIM_ENOTSTORE, "the file is an SQLite database of another program, not a liblim store");
	if (version > LIM_SCHEMA_VERSION)
		return lim__error(LIM_EVERSION, "the store has schema version %lld, written by a newer liblim; this one reads up to %d",
		                  (long long)version, LIM_SCHEMA_VERSION);
	if (version < 1)
		return lim__error(LIM_ECORRUPT, "the store has no schema version");
	for (int64_t v = version; v < LIM_SCHEMA_VERSION; v++) {
		if ((rc = lim_store__begin(st)) < 0)
			return rc;
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %lld;", (long long)v + 1);
		if ((rc = lim_store__exec(st, MIGRATIONS[v - 1])) < 0 || (rc = lim_store__exec(st, sql)) < 0 ||
		    (rc = lim_store__commit(st)) < 0) {
			lim_store__rollback(st);
			return lim__error_prefix(rc, "migrating the store from schema %lld", (long long)v);
		}
	}
	return 0;
}

int lim_store__open(lim_store *st, const char *path, int create, int synchronous, const char *vfs, int *fresh)
{
	int memory = strcmp(path, ":memory:") == 0;
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (create ? SQLITE_OPEN_CREATE : 0);
	struct stat sb;
	int rc;

	memset(st, 0, sizeof(*st));
	if (!memory && !create && stat(path, &sb) != 0)
		return lim__error(LIM_ENOTFOUND, "no store at %s", path);
	if (vfs && !sqlite3_vfs_find(vfs))
		return lim__error(LIM_EINVALID, "no SQLite VFS named \"%s\" is registered", vfs);
	rc = sqlite3_open_v2(path, &st->sql, flags, vfs);
	if (rc != SQLITE_OK) {
		rc = lim_store__error(st, rc, "opening the store");
		lim__error_prefix(rc, "%s", path);
		lim_store__close(st);
		return rc;
	}
	sqlite3_extended_result_codes(st->sql, 1);
	sqlite3_busy_timeout(st->sql, 5000);
	if ((rc = setup_schema(st, fresh)) < 0) {
		lim__error_prefix(rc, "%s", path);
		lim_store__close(st);
		return rc;
	}
	/* SQLite sees an existing empty file as an empty database; without
	 * `create` that must not turn into a new store behind the caller's back. */
	if (*fresh && !create && !memory) {
		lim_store__close(st);
		return lim__error(LIM_ENOTSTORE, "%s is an empty file, not a liblim store", path);
	}
	/* Only now that the file is known to be ours (or empty) may it be changed. */
	if (!memory && (rc = lim_store__exec(st, "PRAGMA journal_mode = WAL")) < 0)
		goto fail;
	st->synchronous_full = synchronous == LIM_SYNC_FULL;
	if ((rc = lim_store__exec(st, synchronous == LIM_SYNC_FULL ? "PRAGMA synchronous = FULL"
	                                                           : "PRAGMA synchronous = NORMAL")) < 0)
		goto fail;
	if (*fresh) {
		char sql[128];
		/* The caller writes the identity and commits, so a store never
		 * exists without one. */
		snprintf(sql, sizeof(sql), "PRAGMA application_id = %d; PRAGMA user_version = %d;",
		         LIM_APPLICATION_ID, LIM_SCHEMA_VERSION);
		if ((rc = lim_store__begin(st)) < 0)
			goto fail;
		if ((rc = lim_store__exec(st, SCHEMA_V1)) < 0 || (rc = lim_store__exec(st, sql)) < 0)
			goto fail;
	}
	return 0;
fail:
	lim_store__close(st);
	return rc;
}

void lim_store__close(lim_store *st)
{
	lim_store__bg_checkpoint_stop(st);
	for (int i = 0; i < LIM_ST_COUNT; i++) {
		sqlite3_finalize(st->stmts[i]);
		st->stmts[i] = NULL;
	}
	if (st->sql)
		sqlite3_close_v2(st->sql);
	st->sql = NULL;
}

int lim_store__failed(lim_store *st)
{
	return __atomic_load_n(&st->failed, __ATOMIC_SEQ_CST);
}

/* ------------------------------------------------------------ background checkpoints */

/* SQLite's own default: checkpoint once the WAL holds this many frames. */
#define CKPT_FRAMES 1000
/* A PASSIVE checkpoint running beside a writer never catches up with the
 * frames committed meanwhile, and the WAL only starts over from its
 * beginning once everything in it has been copied; past this size the
 * writer copies the (short) remainder itself, as SQLite would, so the WAL
 * file stays bounded (32 MiB of 4 KiB pages). */
#define CKPT_WRITER_FRAMES 8000

struct lim_ckpt {
	lim_store *st;
	sqlite3 *conn;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int requested, stop;
};

static void *ckpt_loop(void *arg)
{
	lim_ckpt *c = arg;
	pthread_mutex_lock(&c->mu);
	for (;;) {
		while (!c->requested && !c->stop)
			pthread_cond_wait(&c->cv, &c->mu);
		if (c->stop)
			break;
		c->requested = 0;
		pthread_mutex_unlock(&c->mu);
		if (!lim_store__failed(c->st))
			fail_on_io_error(c->st, sqlite3_wal_checkpoint_v2(c->conn, "main", SQLITE_CHECKPOINT_PASSIVE, NULL, NULL));
		pthread_mutex_lock(&c->mu);
	}
	pthread_mutex_unlock(&c->mu);
	return NULL;
}

/* Runs in the committing thread, after each commit, with the WAL size. */
static int ckpt_wal_hook(void *arg, sqlite3 *db, const char *name, int frames)
{
	lim_ckpt *c = arg;
	if (frames >= CKPT_WRITER_FRAMES) {
		/* SQLITE_BUSY while the background one runs: try after the next commit. */
		if (!lim_store__failed(c->st))
			fail_on_io_error(c->st, sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL));
	} else if (frames >= CKPT_FRAMES) {
		pthread_mutex_lock(&c->mu);
		c->requested = 1;
		pthread_cond_signal(&c->cv);
		pthread_mutex_unlock(&c->mu);
	}
	return SQLITE_OK;
}

int lim_store__bg_checkpoint_start(lim_store *st)
{
	const char *path = sqlite3_db_filename(st->sql, "main");
	sqlite3_vfs *vfs = NULL;
	sqlite3_stmt *q;
	int wal = 0, rc;
	lim_ckpt *c;

	if (st->ckpt || !path || !*path)
		return 0;
	if (sqlite3_prepare_v2(st->sql, "PRAGMA journal_mode", -1, &q, NULL) == SQLITE_OK) {
		if (sqlite3_step(q) == SQLITE_ROW)
			wal = sqlite3_stricmp((const char *)sqlite3_column_text(q, 0), "wal") == 0;
		sqlite3_finalize(q);
	}
	if (!wal)
		return 0;
	sqlite3_file_control(st->sql, "main", SQLITE_FCNTL_VFS_POINTER, &vfs);
	if (!(c = calloc(1, sizeof(*c))))
		return lim__error(LIM_ENOMEM, "out of memory");
	c->st = st;
	/* Its own connection: a checkpoint on the writer's would take the
	 * writer's connection mutex for its whole duration. */
	rc = sqlite3_open_v2(path, &c->conn, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, vfs ? vfs->zName : NULL);
	if (rc != SQLITE_OK) {
		rc = lim__error(LIM_EIO, "opening the store for checkpoints: %s",
		                c->conn ? sqlite3_errmsg(c->conn) : sqlite3_errstr(rc));
		sqlite3_close_v2(c->conn);
		free(c);
		return rc;
	}
	/* The same durability as the writer's connection (its default is
	 * FULL), and a first read: a connection checkpoints nothing until it
	 * has opened the WAL. If that fails, SQLite's own auto-checkpoint,
	 * still in place, does the work as before. */
	sqlite3_busy_timeout(c->conn, 5000);
	if (sqlite3_exec(c->conn, st->synchronous_full ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL",
	                 NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_exec(c->conn, "SELECT count(*) FROM sqlite_master", NULL, NULL, NULL) != SQLITE_OK) {
		sqlite3_close_v2(c->conn);
		free(c);
		return 0;
	}
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cv, NULL);
	if (pthread_create(&c->thread, NULL, ckpt_loop, c) != 0) {
		pthread_mutex_destroy(&c->mu);
		pthread_cond_destroy(&c->cv);
		sqlite3_close_v2(c->conn);
		free(c);
		return lim__error(LIM_ERROR, "cannot start the checkpoint thread");
	}
	st->ckpt = c;
	/* Replaces SQLite's auto-checkpoint, which is itself a WAL hook. */
	sqlite3_wal_hook(st->sql, ckpt_wal_hook, c);
	return 0;
}

void lim_store__bg_checkpoint_stop(lim_store *st)
{
	lim_ckpt *c = st->ckpt;
	if (!c)
		return;
	pthread_mutex_lock(&c->mu);
	c->stop = 1;
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
	pthread_join(c->thread, NULL);
	sqlite3_close_v2(c->conn);
	pthread_mutex_destroy(&c->mu);
	pthread_cond_destroy(&c->cv);
	free(c);
	st->ckpt = NULL;
	if (st->sql)
		sqlite3_wal_autocheckpoint(st->sql, CKPT_FRAMES);
}
