/* C shims and callback trampolines for the Go binding; see limgo.h. */
#include <stdio.h>
#include <string.h>
#include "limgo.h"
#include "_cgo_export.h"

/* Copy this thread's last error into *e, in the same C call as the failure. */
static int capture(int rc, limgo_err *e)
{
	if (rc < 0 && rc != LIM_EITEROVER && e) {
		/* A code returned without a fresh message (e.g. a bare LIM_ENOMEM)
		 * must not pick up an older, unrelated message. */
		const char *m = lim_error_last_code() == rc ? lim_error_last() : "";
		if (!m || !m[0])
			m = lim_error_name(rc);
		e->code = rc;
		snprintf(e->msg, sizeof(e->msg), "%s", m);
	}
	return rc;
}

void limgo_bytes_free(limgo_bytes *b)
{
	if (b) {
		free(b->ptr);
		b->ptr = NULL;
		b->len = 0;
	}
}

typedef struct {
	char *ptr;
	size_t len, cap;
	int oom;
} growbuf;

static void gb_put(growbuf *g, const void *p, size_t n)
{
	if (g->oom)
		return;
	if (g->len + n > g->cap) {
		size_t cap = g->cap ? g->cap : 256;
		while (cap < g->len + n)
			cap *= 2;
		char *np = realloc(g->ptr, cap);
		if (!np) {
			g->oom = 1;
			return;
		}
		g->ptr = np;
		g->cap = cap;
	}
	memcpy(g->ptr + g->len, p, n);
	g->len += n;
}

/* ---------------------------------------------------------------- trampolines */

static int64_t clock_tramp(void *ctx)
{
	return (int64_t)limgoClock((uintptr_t)ctx);
}

static int write_tramp(void *ctx, const char *bytes, size_t len)
{
	return limgoWrite((uintptr_t)ctx, (char *)bytes, len);
}

static long read_tramp(void *ctx, char *buf, size_t cap)
{
	return limgoRead((uintptr_t)ctx, buf, cap);
}

static void log_tramp(void *ctx, const char *line)
{
	limgoLog((uintptr_t)ctx, (char *)line);
}

/* ---------------------------------------------------------------- store */

int limgo_open(lim_db **out, const char *path, int create, int sync_full, int64_t max_drift_ms,
               const unsigned char *network_key, uintptr_t clock_handle, limgo_err *e)
{
	lim_db_options o;
	int rc = lim_db_options_init(&o, LIM_DB_OPTIONS_VERSION);
	if (rc < 0)
		return capture(rc, e);
	o.create = create;
	o.synchronous = sync_full ? LIM_SYNC_FULL : LIM_SYNC_NORMAL;
	if (max_drift_ms >= 0)
		o.max_drift_ms = max_drift_ms;
	o.network_key = network_key;
	if (clock_handle) {
		o.clock = clock_tramp;
		o.clock_ctx = (void *)clock_handle;
	}
	return capture(lim_db_open(out, path, &o), e);
}

int limgo_ids(lim_db *db, unsigned char *id, unsigned char *key, limgo_err *e)
{
	int rc = lim_db_replica_id(db, id);
	if (rc == 0)
		rc = lim_db_network_key(db, key);
	return capture(rc, e);
}

int limgo_set(lim_db *db, const char *coll, const char *doc, const char *path, int op, int type, int boolean,
              int64_t integer, double real, const char *str, size_t len, limgo_err *e)
{
	lim_value v;
	memset(&v, 0, sizeof(v));
	v.type = (lim_type)type;
	v.boolean = boolean;
	v.integer = integer;
	v.real = real;
	v.str = str ? str : "";
	v.len = len;
	switch (op) {
	case 0: return capture(lim_db_set(db, coll, doc, path, &v), e);
	case 1: return capture(lim_db_set_add(db, coll, doc, path, &v), e);
	default: return capture(lim_db_set_remove(db, coll, doc, path, &v), e);
	}
}

int limgo_put_json(lim_db *db, const char *coll, const char *doc, const char *json, size_t len, limgo_err *e)
{
	return capture(lim_db_put_json(db, coll, doc, json ? json : "", len), e);
}

int limgo_delete(lim_db *db, const char *coll, const char *doc, const char *path, limgo_err *e)
{
	return capture(lim_db_delete(db, coll, doc, path), e);
}

int limgo_incr(lim_db *db, const char *coll, const char *doc, const char *path, int64_t delta, limgo_err *e)
{
	return capture(lim_db_incr(db, coll, doc, path, delta), e);
}

int limgo_txn(lim_db *db, int what, limgo_err *e)
{
	switch (what) {
	case 0: return capture(lim_db_begin(db), e);
	case 1: return capture(lim_db_commit(db), e);
	default: return capture(lim_db_rollback(db), e);
	}
}

int limgo_get_json(lim_db *db, const char *coll, const char *doc, const char *path, lim_buf *out, limgo_err *e)
{
	return capture(lim_db_get_json(out, db, coll, doc, path), e);
}

int limgo_get_field(lim_field **out, lim_db *db, const char *coll, const char *doc, const char *path, limgo_err *e)
{
	return capture(lim_db_get_field(out, db, coll, doc, path), e);
}

int limgo_field_element(const lim_field *f, size_t i, lim_value *out, limgo_err *e)
{
	return capture(lim_field_element(f, i, out), e);
}

int limgo_field_value(const lim_field *f, lim_value *out, limgo_err *e)
{
	return capture(lim_field_value(f, out), e);
}

int limgo_docs(lim_db *db, const char *coll, const char *prefix, const char *after, int max,
               limgo_bytes *out, int *count, limgo_err *e)
{
	lim_doc_iter *it = NULL;
	growbuf g = { NULL, 0, 0, 0 };
	const char *key;
	int rc, n = 0;

	out->ptr = NULL;
	out->len = 0;
	*count = 0;
	if ((rc = lim_db_docs(&it, db, coll, prefix, after)) < 0)
		return capture(rc, e);
	while (n < max && (rc = lim_doc_iter_next(it, &key)) == 0) {
		gb_put(&g, key, strlen(key) + 1);
		n++;
	}
	if (rc == LIM_EITEROVER || n == max)
		rc = 0;
	else
		capture(rc, e); /* before lim_doc_iter_free can touch the message */
	lim_doc_iter_free(it);
	if (rc == 0 && g.oom)
		rc = capture(LIM_ENOMEM, e);
	if (rc < 0) {
		free(g.ptr);
		return rc;
	}
	out->ptr = g.ptr;
	out->len = g.len;
	*count = n;
	return 0;
}

/* ---------------------------------------------------------------- replication */

int limgo_version_vector(lim_db *db, lim_buf *out, limgo_err *e)
{
	return capture(lim_db_version_vector(out, db), e);
}

int limgo_digest(lim_db *db, char *out65, limgo_err *e)
{
	return capture(lim_db_digest(db, out65), e);
}

int limgo_verify(lim_db *db, limgo_err *e)
{
	return capture(lim_db_verify(db), e);
}

int limgo_rebuild(lim_db *db, limgo_err *e)
{
	return capture(lim_db_rebuild(db), e);
}

int limgo_apply(lim_db *db, const char *bytes, size_t len, uint64_t *applied, uint64_t *duplicates, limgo_err *e)
{
	lim_apply_stats st = { 0, 0 };
	int rc = lim_db_apply(db, bytes ? bytes : "", len, &st);
	*applied = st.applied;
	*duplicates = st.duplicates;
	return capture(rc, e);
}

int limgo_export(lim_db *db, const char *since, size_t since_len, uintptr_t writer, limgo_err *e)
{
	return capture(lim_db_export(db, since, since_len, write_tramp, (void *)writer), e);
}

int limgo_import(lim_db *db, uintptr_t reader, uint64_t *applied, uint64_t *duplicates, limgo_err *e)
{
	lim_apply_stats st = { 0, 0 };
	int rc = lim_db_import(db, read_tramp, (void *)reader, &st);
	*applied = st.applied;
	*duplicates = st.duplicates;
	return capture(rc, e);
}

int limgo_log(lim_db *db, size_t limit, limgo_bytes *out, limgo_err *e)
{
	lim_log_iter *it = NULL;
	lim_change_info ci;
	growbuf g = { NULL, 0, 0, 0 };
	int rc;

	out->ptr = NULL;
	out->len = 0;
	if ((rc = lim_db_log(&it, db, limit)) < 0)
		return capture(rc, e);
	while ((rc = lim_log_iter_next(it, &ci)) == 0) {
		uint64_t len = ci.len;
		char author[2 * LIM_ID_BYTES];
		memset(author, '0', sizeof(author));
		memcpy(author, ci.author, strnlen(ci.author, sizeof(author)));
		gb_put(&g, author, sizeof(author));
		gb_put(&g, &ci.seq, 8);
		gb_put(&g, &ci.hlc, 8);
		gb_put(&g, &len, 8);
		gb_put(&g, ci.bytes, ci.len);
	}
	if (rc == LIM_EITEROVER)
		rc = 0;
	else
		capture(rc, e);
	lim_log_iter_free(it);
	if (rc == 0 && g.oom)
		rc = capture(LIM_ENOMEM, e);
	if (rc < 0) {
		free(g.ptr);
		return rc;
	}
	out->ptr = g.ptr;
	out->len = g.len;
	return 0;
}

/* ---------------------------------------------------------------- node */

int limgo_node_start(lim_node **out, lim_db *db, const limgo_node_config *cfg, limgo_err *e)
{
	static const char *const nobody[1] = { NULL };
	lim_node_options o;
	int rc = lim_node_options_init(&o, LIM_NODE_OPTIONS_VERSION);
	if (rc < 0)
		return capture(rc, e);
	o.listen = cfg->listen;
	o.peers = cfg->peers;
	o.npeers = cfg->npeers;
	if (cfg->allow_given) {
		o.allow = cfg->nallow ? cfg->allow : nobody;
		o.nallow = cfg->nallow;
	}
	if (cfg->max_connections > 0)
		o.max_connections = cfg->max_connections;
	if (cfg->idle_timeout_ms > 0)
		o.idle_timeout_ms = cfg->idle_timeout_ms;
	if (cfg->keepalive_ms > 0)
		o.keepalive_ms = cfg->keepalive_ms;
	if (cfg->reconnect_min_ms > 0)
		o.reconnect_min_ms = cfg->reconnect_min_ms;
	if (cfg->reconnect_max_ms > 0)
		o.reconnect_max_ms = cfg->reconnect_max_ms;
	if (cfg->log_handle) {
		o.log = log_tramp;
		o.log_ctx = (void *)cfg->log_handle;
	}
	return capture(lim_node_start(out, db, &o), e);
}

int limgo_node_address(lim_node *node, lim_buf *out, limgo_err *e)
{
	return capture(lim_node_address(out, node), e);
}

int limgo_node_peer(lim_node *node, const char *addr, int remove, limgo_err *e)
{
	return capture(remove ? lim_node_remove_peer(node, addr) : lim_node_add_peer(node, addr), e);
}

int limgo_node_status(lim_node *node, lim_buf *out, limgo_err *e)
{
	return capture(lim_node_status(out, node), e);
}

int limgo_node_next_event(lim_node *node, char *author65, uint64_t *seq, int timeout_ms, limgo_err *e)
{
	lim_node_event ev;
	int rc = lim_node_next_event(node, &ev, timeout_ms);
	if (rc == 0) {
		memcpy(author65, ev.author, sizeof(ev.author));
		*seq = ev.seq;
	}
	return capture(rc, e);
}

int limgo_sync_once(lim_db *db, const char *addr, int timeout_ms, uint64_t *in, uint64_t *out, limgo_err *e)
{
	lim_sync_stats st = { 0, 0 };
	int rc = lim_sync_once(db, addr, timeout_ms, &st);
	*in = st.changes_in;
	*out = st.changes_out;
	return capture(rc, e);
}

int limgo_remote_status(lim_db *db, const char *addr, int timeout_ms, lim_buf *out, limgo_err *e)
{
	return capture(lim_remote_status(out, db, addr, timeout_ms), e);
}
