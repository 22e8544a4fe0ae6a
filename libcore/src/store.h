/*
 * The SQLite file under a replica: opening it (and refusing files that are
 * not ours), the schema and its migrations, pragmas, and a cache of prepared
 * statements so no write or read prepares SQL on the hot path.
 */
#ifndef LIM_STORE_H
#define LIM_STORE_H

#include <sqlite3.h>
#include "common.h"

#define LIM_APPLICATION_ID 0x6c696d31 /* "lim1" */
#define LIM_SCHEMA_VERSION 1

typedef enum {
	LIM_ST_META_GET,
	LIM_ST_META_PUT,
	LIM_ST_AUTHOR_GET,
	LIM_ST_AUTHOR_INSERT,
	LIM_ST_AUTHOR_ADVANCE,
	LIM_ST_MAX_HLC,
	LIM_ST_CHANGE_INSERT,
	LIM_ST_CHANGE_GET,
	LIM_ST_EQUIVOCATION_INSERT,
	LIM_ST_COVER,
	LIM_ST_TOMB_GET,
	LIM_ST_TOMB_PUT,
	LIM_ST_FIELD_GET,
	LIM_ST_FIELD_PUT,
	LIM_ST_FIELD_DELETE,
	LIM_ST_FIELDS_UNDER,
	LIM_ST_FIELDS_OF_DOC,
	LIM_ST_LIVE_UNDER,
	LIM_ST_COPS_INSERT,
	LIM_ST_COPS_PRUNE,
	LIM_ST_COPS_ALL,
	LIM_ST_STAGS_INSERT,
	LIM_ST_STAGS_PRUNE,
	LIM_ST_STAGS_REMOVE,
	LIM_ST_SREMOVED_INSERT,
	LIM_ST_SREMOVED_HAS,
	LIM_ST_SET_ELEMS,
	LIM_ST_SET_TAGS_OF,
	LIM_ST_FIELD_READ,
	LIM_ST_DOC_RENDER,
	LIM_ST_SUBTREE_RENDER,
	LIM_ST_DATA_VERSION,
	/* Transaction control, prepared once: SQLite parses an exec'd
	 * statement every time, which was 14% of a batched write. */
	LIM_ST_BEGIN,
	LIM_ST_COMMIT,
	LIM_ST_SAVEPOINT_OP,
	LIM_ST_RELEASE_OP,
	LIM_ST_ROLLBACK_TO_OP,
	LIM_ST_SAVEPOINT_RUN,
	LIM_ST_RELEASE_RUN,
	LIM_ST_ROLLBACK_TO_RUN,
	LIM_ST_COUNT
} lim_stmt_id;

typedef struct lim_ckpt lim_ckpt;

typedef struct {
	sqlite3 *sql;
	sqlite3_stmt *stmts[LIM_ST_COUNT];
	/* An I/O error hit a commit or a checkpoint: refuse further writes.
	 * The background checkpointer sets it from its own thread, so it is
	 * read and written with the lim_store__failed helpers. */
	int failed;
	int synchronous_full;
	lim_ckpt *ckpt;
} lim_store;

/* Open or create the database, check it is a liblim store of a schema we
 * understand, migrate an older one, and set the pragmas. `fresh` is set
 * when the schema was created now (the caller then creates an identity). */
int lim_store__open(lim_store *st, const char *path, int create, int synchronous, const char *vfs, int *fresh);
void lim_store__close(lim_store *st);

/* The cached statement, reset and with bindings cleared. NULL on failure
 * (the error is set). */
sqlite3_stmt *lim_store__stmt(lim_store *st, lim_stmt_id id);
int lim_store__exec(lim_store *st, const char *sql);
/* Run one of the prepared statements that return no rows; 0 or an error. */
int lim_store__run(lim_store *st, lim_stmt_id id, const char *doing);
/* Turn an SQLite result code into a liblim error with context. */
int lim_store__error(lim_store *st, int sqlite_rc, const char *doing);
/* Step a statement that returns no rows; 0 or an error. */
int lim_store__step_done(lim_store *st, sqlite3_stmt *stmt, const char *doing);

int lim_store__failed(lim_store *st);

/* Checkpoint the WAL from a thread of its own, on a second connection,
 * instead of inside whichever commit crosses the auto-checkpoint size: the
 * copy into the database file and its fsync then leave the writing thread
 * (a node applying a catch-up). Call both with the store's users locked
 * out (the db mutex held); start is a no-op for stores without a WAL file.
 * Stop joins the thread and restores SQLite's auto-checkpoint. */
int lim_store__bg_checkpoint_start(lim_store *st);
void lim_store__bg_checkpoint_stop(lim_store *st);

int lim_store__begin(lim_store *st);
int lim_store__commit(lim_store *st);
void lim_store__rollback(lim_store *st);

#endif
