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
	LIM_ST_COUNT
} lim_stmt_id;

typedef struct {
	sqlite3 *sql;
	sqlite3_stmt *stmts[LIM_ST_COUNT];
	int failed; /* an I/O error hit a commit: refuse further writes */
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
/* Turn an SQLite result code into a liblim error with context. */
int lim_store__error(lim_store *st, int sqlite_rc, const char *doing);
/* Step a statement that returns no rows; 0 or an error. */
int lim_store__step_done(lim_store *st, sqlite3_stmt *stmt, const char *doing);

int lim_store__begin(lim_store *st);
int lim_store__commit(lim_store *st);
void lim_store__rollback(lim_store *st);

#endif
