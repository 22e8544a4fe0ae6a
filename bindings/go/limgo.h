/*
 * C shims for the Go binding (limgo.c).
 *
 * Every shim makes one liblim call and, when it fails, copies the error code
 * and lim_error_last() into a caller-owned limgo_err *in the same C call*.
 * The message is thread-local in C and a goroutine may move to another OS
 * thread between two cgo calls, so fetching it with a second call would read
 * another thread's (or another goroutine's) message.
 *
 * Callbacks into Go (pack writer/reader, clock, node log) receive a
 * runtime/cgo.Handle as a uintptr_t and go through the trampolines here; no
 * Go pointer is ever stored by C.
 *
 * Only lim.h is used, so the shims work the same against the bundled sources
 * and against an installed liblim (build tag liblim_system).
 */
#ifndef LIMGO_H
#define LIMGO_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include "lim.h"

/* Compile-time version guard (matters for -tags liblim_system). */
#if !defined(LIM_VERSION_MAJOR) || LIM_VERSION_MAJOR != 0 || LIM_VERSION_MINOR < 1
#error "the liblim Go binding needs liblim 0.x with x >= 1 (check lim.h / pkg-config liblim)"
#endif

#define LIMGO_MSG_MAX 1024

typedef struct {
	int code;
	char msg[LIMGO_MSG_MAX];
} limgo_err;

/* Bytes allocated by the shims (not by liblim); release with limgo_bytes_free. */
typedef struct {
	char *ptr;
	size_t len;
} limgo_bytes;

void limgo_bytes_free(limgo_bytes *b);

/* ---------------------------------------------------------------- store */
int limgo_open(lim_db **out, const char *path, int create, int sync_full, int64_t max_drift_ms,
               const unsigned char *network_key, uintptr_t clock_handle, limgo_err *e);
int limgo_ids(lim_db *db, unsigned char *id, unsigned char *key, limgo_err *e);

/* op: 0 = lim_db_set, 1 = lim_db_set_add, 2 = lim_db_set_remove */
int limgo_set(lim_db *db, const char *coll, const char *doc, const char *path, int op, int type, int boolean,
              int64_t integer, double real, const char *str, size_t len, limgo_err *e);
int limgo_put_json(lim_db *db, const char *coll, const char *doc, const char *json, size_t len, limgo_err *e);
int limgo_delete(lim_db *db, const char *coll, const char *doc, const char *path, limgo_err *e);
int limgo_incr(lim_db *db, const char *coll, const char *doc, const char *path, int64_t delta, limgo_err *e);
/* what: 0 = begin, 1 = commit, 2 = rollback */
int limgo_txn(lim_db *db, int what, limgo_err *e);

int limgo_get_json(lim_db *db, const char *coll, const char *doc, const char *path, lim_buf *out, limgo_err *e);
int limgo_get_field(lim_field **out, lim_db *db, const char *coll, const char *doc, const char *path, limgo_err *e);
int limgo_field_element(const lim_field *f, size_t i, lim_value *out, limgo_err *e);
int limgo_field_value(const lim_field *f, lim_value *out, limgo_err *e);

/* Up to `max` document keys after `after` (NULL: from the start), each
 * followed by a NUL, in one call: the iterator never outlives the call. */
int limgo_docs(lim_db *db, const char *coll, const char *prefix, const char *after, int max,
               limgo_bytes *out, int *count, limgo_err *e);

/* ---------------------------------------------------------------- replication */
int limgo_version_vector(lim_db *db, lim_buf *out, limgo_err *e);
int limgo_digest(lim_db *db, char *out65, limgo_err *e);
int limgo_verify(lim_db *db, limgo_err *e);
int limgo_rebuild(lim_db *db, limgo_err *e);
int limgo_apply(lim_db *db, const char *bytes, size_t len, uint64_t *applied, uint64_t *duplicates, limgo_err *e);
int limgo_export(lim_db *db, const char *since, size_t since_len, uintptr_t writer, limgo_err *e);
int limgo_import(lim_db *db, uintptr_t reader, uint64_t *applied, uint64_t *duplicates, limgo_err *e);
/* The log as records: 64 hex author, u64 seq, u64 hlc, u64 len, bytes
 * (integers in host byte order). */
int limgo_log(lim_db *db, size_t limit, limgo_bytes *out, limgo_err *e);

/* ---------------------------------------------------------------- node */
typedef struct {
	const char *listen;
	const char *const *peers;
	size_t npeers;
	const char *const *allow;
	size_t nallow;
	int allow_given; /* allow list given (even if empty: nobody) */
	int max_connections, idle_timeout_ms, keepalive_ms, reconnect_min_ms, reconnect_max_ms; /* 0: default */
	uintptr_t log_handle;                                                                   /* 0: no log */
} limgo_node_config;

int limgo_node_start(lim_node **out, lim_db *db, const limgo_node_config *cfg, limgo_err *e);
int limgo_node_address(lim_node *node, lim_buf *out, limgo_err *e);
int limgo_node_peer(lim_node *node, const char *addr, int remove, limgo_err *e);
int limgo_node_status(lim_node *node, lim_buf *out, limgo_err *e);
/* 0 and an event, LIM_EITEROVER on timeout, or an error. */
int limgo_node_next_event(lim_node *node, char *author65, uint64_t *seq, int timeout_ms, limgo_err *e);
int limgo_sync_once(lim_db *db, const char *addr, int timeout_ms, uint64_t *in, uint64_t *out, limgo_err *e);
int limgo_remote_status(lim_db *db, const char *addr, int timeout_ms, lim_buf *out, limgo_err *e);

#endif
