/*
 * liblim — a local-first, multi-master replicated document store.
 *
 * This is the whole public C API. Conventions (see README.md):
 *
 *  - Every function returns 0 on success or a negative LIM_E* code. The
 *    message of the last failure on the calling thread is lim_error_last().
 *  - Handles are opaque. What comes back through an `out` parameter belongs
 *    to the caller and goes back through the matching lim_*_free() (which
 *    accepts NULL); byte strings come back in a lim_buf released with
 *    lim_buf_dispose().
 *  - Option structs start with `version`; initialise them with
 *    lim_*_options_init() (or the LIM_*_OPTIONS_INIT macro). A NULL options
 *    pointer means the defaults.
 *  - Threading: a lim_db may be used from several threads; calls on one
 *    handle are serialised by an internal mutex. An iterator belongs to the
 *    thread that uses it and must be freed before its lim_db.
 */
#ifndef LIM_H
#define LIM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#  define LIM_EXTERN __declspec(dllexport)
#else
#  define LIM_EXTERN __attribute__((visibility("default")))
#endif

#define LIM_VERSION_MAJOR 0
#define LIM_VERSION_MINOR 1
#define LIM_VERSION_PATCH 0
#define LIM_VERSION "0.1.0"

/** Return the library version string, e.g. "0.1.0". */
LIM_EXTERN const char *lim_version(void);

/* ---------------------------------------------------------------- errors */

typedef enum {
	LIM_OK = 0,
	LIM_ERROR = -1,          /* generic failure */
	LIM_ENOTFOUND = -3,      /* no such store, document or field */
	LIM_EEXISTS = -4,        /* the thing to create already exists */
	LIM_EINVALID = -5,       /* bad argument: JSON, UTF-8, limits, types */
	LIM_EMALFORMED = -6,     /* an encoded change or pack is not well formed */
	LIM_EHASH = -7,          /* a change's hash chain does not match */
	LIM_ESIGNATURE = -8,     /* a signature does not verify */
	LIM_EGAP = -9,           /* a change's predecessor is missing */
	LIM_EEQUIVOCATION = -10, /* two different changes for one author and seq, or a
	                          * signed change continuing another fork of its chain */
	LIM_ECLOCK = -11,        /* a timestamp beyond the allowed clock drift */
	LIM_ENOTSTORE = -12,     /* the file is not a liblim store */
	LIM_EVERSION = -13,      /* the store was written by a newer liblim */
	LIM_ECORRUPT = -14,      /* the store's contents fail verification */
	LIM_EIO = -15,           /* the storage layer failed (disk, SQLite) */
	LIM_EFAILED = -16,       /* the store is in a failed state; reopen it */
	LIM_ETXN = -17,          /* transaction misuse (nested begin, commit without begin) */
	LIM_ENOMEM = -18,        /* out of memory */
	LIM_EAUTH = -19,         /* authentication failed (sync) */
	LIM_EPROTOCOL = -20,     /* protocol violation (sync) */
	LIM_ECLOSED = -21,       /* the handle is closed */
	LIM_EITEROVER = -31      /* an iterator has no more items (not a failure) */
} lim_error_code;

/** The code and message of the last failure on this thread ("" if none). */
LIM_EXTERN int lim_error_last_code(void);
LIM_EXTERN const char *lim_error_last(void);
/** A short stable name for an error code, e.g. "LIM_ENOTFOUND". */
LIM_EXTERN const char *lim_error_name(int code);

/* ---------------------------------------------------------------- buffers */

/** Bytes owned by the caller; `ptr` is NUL-terminated for convenience. */
typedef struct {
	char *ptr;
	size_t size;
} lim_buf;

#define LIM_BUF_INIT { NULL, 0 }

/** Release a buffer's memory and reset it to empty; accepts NULL. */
LIM_EXTERN void lim_buf_dispose(lim_buf *buf);

/* ---------------------------------------------------------------- limits */

#define LIM_MAX_COLLECTION_BYTES 256
#define LIM_MAX_DOC_BYTES 1024
#define LIM_MAX_PATH_BYTES 1024
#define LIM_MAX_PATH_DEPTH 32
#define LIM_MAX_VALUE_BYTES (1024 * 1024)
#define LIM_MAX_OPS_PER_CHANGE 10000
#define LIM_MAX_CHANGE_BYTES (4 * 1024 * 1024)
#define LIM_MAX_JSON_BYTES (4 * 1024 * 1024)

#define LIM_ID_BYTES 32          /* replica id = Ed25519 public key */
#define LIM_NETWORK_KEY_BYTES 32
#define LIM_HASH_BYTES 32        /* BLAKE2b-256 */

/* ---------------------------------------------------------------- values */

typedef enum {
	LIM_NULL = 0,
	LIM_BOOL = 1,
	LIM_INT = 2,
	LIM_FLOAT = 3,
	LIM_STRING = 4,
	LIM_BYTES = 5
} lim_type;

/**
 * A scalar value. Strings must be valid UTF-8 (`str`, `len`, no NUL needed);
 * bytes are arbitrary (`str`, `len`). Floats must be finite.
 * Values handed out by the library borrow memory from their owner.
 */
typedef struct {
	lim_type type;
	int boolean;
	int64_t integer;
	double real;
	const char *str;
	size_t len;
} lim_value;

/* ---------------------------------------------------------------- store */

typedef struct lim_db lim_db;

typedef enum {
	LIM_SYNC_NORMAL = 1, /* durable across process crashes (default) */
	LIM_SYNC_FULL = 2    /* durable across power loss */
} lim_synchronous;

/** Milliseconds since the Unix epoch; tests inject their own clock. */
typedef int64_t (*lim_clock_fn)(void *ctx);

typedef struct {
	unsigned int version;
	/* Create the store if the file does not exist (default 1). */
	int create;
	lim_synchronous synchronous;
	/* Changes stamped further than this in the future are refused (ms). */
	int64_t max_drift_ms;
	lim_clock_fn clock;
	void *clock_ctx;
	/* Network key for a new store (NULL: 32 random bytes). For an existing
	 * store a non-NULL key must match the stored one. */
	const unsigned char *network_key;
	/* Name of a registered SQLite VFS to open the file with (NULL: the
	 * default), e.g. an encrypting or fault-injecting one. */
	const char *vfs;
} lim_db_options;

#define LIM_DB_OPTIONS_VERSION 1
#define LIM_DB_OPTIONS_INIT { LIM_DB_OPTIONS_VERSION, 1, LIM_SYNC_NORMAL, 60000, NULL, NULL, NULL, NULL }

LIM_EXTERN int lim_db_options_init(lim_db_options *opts, unsigned int version);

/**
 * Open (or create) the store at `path`, or an in-memory store for
 * ":memory:". A new store gets a fresh Ed25519 identity. On failure *out is
 * NULL and nothing on disk was changed except, when creating, a new file.
 */
LIM_EXTERN int lim_db_open(lim_db **out, const char *path, const lim_db_options *opts);

/** Close the store; rolls back an open transaction. Accepts NULL. */
LIM_EXTERN void lim_db_free(lim_db *db);

/** Copy the 32-byte replica id / network key into `out`. */
LIM_EXTERN int lim_db_replica_id(lim_db *db, unsigned char out[LIM_ID_BYTES]);
LIM_EXTERN int lim_db_network_key(lim_db *db, unsigned char out[LIM_NETWORK_KEY_BYTES]);

/* ---------------------------------------------------------------- writes
 *
 * A path names a field: dot-separated segments ("addr.city"), each segment
 * non-empty. Every write outside lim_db_begin()/lim_db_commit() is a change
 * of its own, committed and durable when the call returns 0.
 */

/** Merge a JSON object into a document: each leaf becomes a field. */
LIM_EXTERN int lim_db_put_json(lim_db *db, const char *coll, const char *doc,
                               const char *json, size_t json_len);
/** Set one field to a scalar (LWW register). */
LIM_EXTERN int lim_db_set(lim_db *db, const char *coll, const char *doc,
                          const char *path, const lim_value *value);
/** Delete one field (and everything below it), or the document if path is NULL. */
LIM_EXTERN int lim_db_delete(lim_db *db, const char *coll, const char *doc, const char *path);
/** Add a signed delta to a counter field. */
LIM_EXTERN int lim_db_incr(lim_db *db, const char *coll, const char *doc,
                           const char *path, int64_t delta);
/** Add an element to / remove an element from a set field. */
LIM_EXTERN int lim_db_set_add(lim_db *db, const char *coll, const char *doc,
                              const char *path, const lim_value *elem);
LIM_EXTERN int lim_db_set_remove(lim_db *db, const char *coll, const char *doc,
                                 const char *path, const lim_value *elem);

/** Transactions: everything between begin and commit is one change. */
LIM_EXTERN int lim_db_begin(lim_db *db);
LIM_EXTERN int lim_db_commit(lim_db *db);
LIM_EXTERN int lim_db_rollback(lim_db *db);

/* ---------------------------------------------------------------- reads */

typedef enum {
	LIM_KIND_REGISTER = 1,
	LIM_KIND_COUNTER = 2,
	LIM_KIND_SET = 3
} lim_kind;

typedef struct lim_field lim_field;

/** Read one field; LIM_ENOTFOUND if the document or field does not exist. */
LIM_EXTERN int lim_db_get_field(lim_field **out, lim_db *db, const char *coll,
                                const char *doc, const char *path);
LIM_EXTERN lim_kind lim_field_kind(const lim_field *field);
/** The value of a register, or a counter's sum as LIM_INT. */
LIM_EXTERN int lim_field_value(const lim_field *field, lim_value *out);
/** The elements of a set, in canonical order. */
LIM_EXTERN size_t lim_field_count(const lim_field *field);
LIM_EXTERN int lim_field_element(const lim_field *field, size_t i, lim_value *out);
LIM_EXTERN void lim_field_free(lim_field *field);

/**
 * The document (path NULL) or one field as JSON. Bytes are written as
 * {"$base64": "..."}, counters as numbers, sets as arrays.
 */
LIM_EXTERN int lim_db_get_json(lim_buf *out, lim_db *db, const char *coll,
                               const char *doc, const char *path);

/** Document keys of a collection in key order, streamed. */
typedef struct lim_doc_iter lim_doc_iter;
/** `after`: start after this key (NULL: from the start); `prefix` may be NULL. */
LIM_EXTERN int lim_db_docs(lim_doc_iter **out, lim_db *db, const char *coll,
                           const char *prefix, const char *after);
/** Next key (valid until the next call) or LIM_EITEROVER. */
LIM_EXTERN int lim_doc_iter_next(lim_doc_iter *it, const char **key);
LIM_EXTERN void lim_doc_iter_free(lim_doc_iter *it);

/* ---------------------------------------------------------------- replication */

/**
 * The version vector as text: one line "<author hex> <seq>\n" per author, in
 * author order. The same text is what lim_db_changes_since() accepts.
 */
LIM_EXTERN int lim_db_version_vector(lim_buf *out, lim_db *db);

/** Encoded changes that `since` (NULL or empty: nothing) lacks, per author in seq order. */
typedef struct lim_change_iter lim_change_iter;
LIM_EXTERN int lim_db_changes_since(lim_change_iter **out, lim_db *db,
                                    const char *since, size_t since_len);
/** Next change's canonical bytes (no trailing LF; valid until the next call). */
LIM_EXTERN int lim_change_iter_next(lim_change_iter *it, const char **bytes, size_t *len);
LIM_EXTERN void lim_change_iter_free(lim_change_iter *it);

typedef struct {
	size_t applied;     /* new changes stored */
	size_t duplicates;  /* changes already held, ignored */
} lim_apply_stats;

/**
 * Apply one encoded change. Every check of DESIGN.md runs first (form,
 * limits, hash chain, signature, seq continuity, clock drift); a refused
 * change leaves the store untouched. A change already held is a no-op.
 */
LIM_EXTERN int lim_db_apply(lim_db *db, const char *bytes, size_t len, lim_apply_stats *stats);

/** Export every change `since` lacks as a pack (see protocol-spec/changes.md). */
LIM_EXTERN int lim_db_export(lim_db *db, const char *since, size_t since_len,
                             int (*write)(void *ctx, const char *bytes, size_t len), void *ctx);
/** Import a pack all-or-nothing: on any error the store is unchanged.
 *  `stats` (may be NULL) is added to, not reset, so it can sum several calls. */
LIM_EXTERN int lim_db_import(lim_db *db,
                             long (*read)(void *ctx, char *buf, size_t cap), void *ctx,
                             lim_apply_stats *stats);

/** The state digest: BLAKE2b-256 of the canonical materialized state, as 64 hex chars. */
LIM_EXTERN int lim_db_digest(lim_db *db, char out[65]);

/**
 * Check every change's hash, signature and chain link, and that the
 * materialized state equals a rebuild from the log. LIM_ECORRUPT names the
 * first problem found.
 */
LIM_EXTERN int lim_db_verify(lim_db *db);

/** Rebuild the materialized state from the change log. */
LIM_EXTERN int lim_db_rebuild(lim_db *db);

/* ---------------------------------------------------------------- change log */

typedef struct lim_log_iter lim_log_iter;

typedef struct {
	char author[2 * LIM_ID_BYTES + 1]; /* hex */
	uint64_t seq;
	uint64_t hlc;          /* 48-bit ms << 16 | 16-bit counter */
	const char *bytes;     /* the change's canonical encoding */
	size_t len;
} lim_change_info;

/** The change log in local arrival order; `limit` 0 means all, else the newest `limit`. */
LIM_EXTERN int lim_db_log(lim_log_iter **out, lim_db *db, size_t limit);
LIM_EXTERN int lim_log_iter_next(lim_log_iter *it, lim_change_info *out);
LIM_EXTERN void lim_log_iter_free(lim_log_iter *it);

/* ---------------------------------------------------------------- sync node
 *
 * A node syncs a store with peers over TCP (protocol-spec/PROTOCOL.md): it
 * listens, dials its peers (reconnecting with exponential backoff), and
 * pushes every change committed to the store, local or relayed, to every
 * connected peer. It runs on a thread of its own and applies remote changes
 * through the same lim_db the application uses; the db's mutex serialises
 * them with the application's calls, and a remote batch waits while another
 * thread holds an explicit transaction. One node per lim_db; free the node
 * before the db.
 */

typedef struct lim_node lim_node;

typedef struct {
	unsigned int version;
	/* "HOST:PORT" to listen on (port 0 picks a free one), or NULL. */
	const char *listen;
	/* Peers to dial and keep connected, "HOST:PORT" each. */
	const char *const *peers;
	size_t npeers;
	/* If non-NULL, only these replica ids (64 hex) may connect or be
	 * connected to; otherwise any member of the network may. */
	const char *const *allow;
	size_t nallow;
	int max_connections;    /* default 64 */
	int idle_timeout_ms;    /* default 30000 */
	int keepalive_ms;       /* default 10000 */
	int reconnect_min_ms;   /* first retry delay, default 100 */
	int reconnect_max_ms;   /* backoff ceiling, default 30000 */
	/* Connection events and applied batches, one line each (no LF). Called
	 * on the node's thread. */
	void (*log)(void *ctx, const char *line);
	void *log_ctx;
} lim_node_options;

#define LIM_NODE_OPTIONS_VERSION 1
#define LIM_NODE_OPTIONS_INIT { LIM_NODE_OPTIONS_VERSION, NULL, NULL, 0, NULL, 0, 64, 30000, 10000, 100, 30000, NULL, NULL }

LIM_EXTERN int lim_node_options_init(lim_node_options *opts, unsigned int version);

/** Start syncing `db`. Binding the listen address happens before return. */
LIM_EXTERN int lim_node_start(lim_node **out, lim_db *db, const lim_node_options *opts);
/** Stop the node (closing connections politely) and free it. Accepts NULL. */
LIM_EXTERN void lim_node_free(lim_node *node);

/** The address actually listened on ("127.0.0.1:40123"); LIM_ENOTFOUND if none. */
LIM_EXTERN int lim_node_address(lim_buf *out, lim_node *node);
LIM_EXTERN int lim_node_add_peer(lim_node *node, const char *addr);
LIM_EXTERN int lim_node_remove_peer(lim_node *node, const char *addr);

/**
 * Status as a JSON object: {"id":..., "listen":..., "peers":[{"address",
 * "id", "connected", "direction", "changes_in", "changes_out", "bytes_in",
 * "bytes_out", "behind", "last_error"}...]}.
 */
LIM_EXTERN int lim_node_status(lim_buf *out, lim_node *node);

/** A remote change applied to the store. */
typedef struct {
	char author[2 * LIM_ID_BYTES + 1];
	uint64_t seq;
} lim_node_event;

/**
 * Wait up to `timeout_ms` (0: don't wait, -1: forever) for the next applied
 * remote change. LIM_EITEROVER on timeout, LIM_ECLOSED if lim_node_free()
 * is called meanwhile (it waits for such callers to return). Events are
 * queued (up to 65536; beyond that the oldest are dropped and
 * lim_node_events_dropped() counts them). Any thread.
 */
LIM_EXTERN int lim_node_next_event(lim_node *node, lim_node_event *out, int timeout_ms);
/** A descriptor that is readable while events are queued (for poll/select). */
LIM_EXTERN int lim_node_event_fd(lim_node *node);
LIM_EXTERN uint64_t lim_node_events_dropped(lim_node *node);

typedef struct {
	uint64_t changes_in, changes_out;
} lim_sync_stats;

/**
 * Connect once to `addr`, exchange changes until both sides hold the same
 * changes, and disconnect. Blocks up to `timeout_ms` (-1: no limit).
 */
LIM_EXTERN int lim_sync_once(lim_db *db, const char *addr, int timeout_ms, lim_sync_stats *stats);
/** Ask a running node at `addr` for its status JSON (as lim_node_status). */
LIM_EXTERN int lim_remote_status(lim_buf *out, lim_db *db, const char *addr, int timeout_ms);

#ifdef __cplusplus
}
#endif

#endif
