/*
 * Small helpers shared by the store and merge test suites: temporary
 * directories, an injectable clock, and moving changes between replicas
 * through the public API only.
 */
#ifndef LIM_TEST_SUPPORT_H
#define LIM_TEST_SUPPORT_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include "lim.h"

typedef struct {
	int64_t now;
} test_clock;

static inline int64_t test_clock_fn(void *ctx)
{
	return ((test_clock *)ctx)->now;
}

static inline lim_db *open_with_clock(const char *path, test_clock *clk, const unsigned char *netkey)
{
	lim_db_options o;
	lim_db *db = NULL;
	assert_int_equal(lim_db_options_init(&o, LIM_DB_OPTIONS_VERSION), 0);
	o.clock = test_clock_fn;
	o.clock_ctx = clk;
	o.network_key = netkey;
	int rc = lim_db_open(&db, path, &o);
	if (rc != 0)
		print_error("open %s: %s\n", path, lim_error_last());
	assert_int_equal(rc, 0);
	return db;
}

static inline char *make_tmpdir(void)
{
	char *dir = strdup("/tmp/limtest.XXXXXX");
	assert_non_null(mkdtemp(dir));
	return dir;
}

static inline void remove_tree(const char *dir)
{
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

static inline char *path_in(const char *dir, const char *name)
{
	size_t n = strlen(dir) + strlen(name) + 2;
	char *p = malloc(n);
	snprintf(p, n, "%s/%s", dir, name);
	return p;
}

/* Apply every change of `from` that `to` lacks. */
static inline void sync_into(lim_db *to, lim_db *from)
{
	lim_buf vv = LIM_BUF_INIT;
	lim_change_iter *it;
	const char *bytes;
	size_t len;
	int rc;
	assert_int_equal(lim_db_version_vector(&vv, to), 0);
	assert_int_equal(lim_db_changes_since(&it, from, vv.ptr, vv.size), 0);
	while ((rc = lim_change_iter_next(it, &bytes, &len)) == 0) {
		char *copy = malloc(len);
		memcpy(copy, bytes, len);
		rc = lim_db_apply(to, copy, len, NULL);
		if (rc != 0)
			print_error("apply: %s\n", lim_error_last());
		assert_int_equal(rc, 0);
		free(copy);
	}
	assert_int_equal(rc, LIM_EITEROVER);
	lim_change_iter_free(it);
	lim_buf_dispose(&vv);
}

/* The newest change of `db` (its own bytes, caller frees). */
static inline char *last_change(lim_db *db, size_t *len)
{
	lim_log_iter *it;
	lim_change_info info;
	char *out = NULL;
	assert_int_equal(lim_db_log(&it, db, 1), 0);
	assert_int_equal(lim_log_iter_next(it, &info), 0);
	out = malloc(info.len + 1);
	memcpy(out, info.bytes, info.len);
	out[info.len] = '\0';
	*len = info.len;
	lim_log_iter_free(it);
	return out;
}

static inline char *json_of(lim_db *db, const char *coll, const char *doc, const char *path)
{
	lim_buf b = LIM_BUF_INIT;
	int rc = lim_db_get_json(&b, db, coll, doc, path);
	if (rc != 0)
		return NULL;
	return b.ptr; /* malloc'd; free() */
}

static inline void assert_json(lim_db *db, const char *coll, const char *doc, const char *path, const char *want)
{
	char *got = json_of(db, coll, doc, path);
	if (!got)
		print_error("get %s/%s: %s\n", coll, doc, lim_error_last());
	assert_non_null(got);
	assert_string_equal(got, want);
	free(got);
}

static inline void digest_of(lim_db *db, char out[65])
{
	assert_int_equal(lim_db_digest(db, out), 0);
}

static inline lim_value str_value(const char *s)
{
	lim_value v = { LIM_STRING, 0, 0, 0, s, strlen(s) };
	return v;
}

static inline lim_value int_value(int64_t i)
{
	lim_value v = { LIM_INT, 0, i, 0, NULL, 0 };
	return v;
}

/* A pack in memory: lim_db_export writes it through membuf_write and
 * lim_db_import reads it back through membuf_read, in pieces of at most
 * `chunk` bytes (0: as many as asked), so that lines can be made to
 * straddle reads. `data` is kept NUL-terminated for strstr. */
typedef struct {
	char *data;
	size_t len, pos, chunk;
} membuf;

static inline int membuf_write(void *ctx, const char *bytes, size_t len)
{
	membuf *m = ctx;
	m->data = realloc(m->data, m->len + len + 1);
	assert_non_null(m->data);
	memcpy(m->data + m->len, bytes, len);
	m->len += len;
	m->data[m->len] = 0;
	return 0;
}

static inline long membuf_read(void *ctx, char *buf, size_t cap)
{
	membuf *m = ctx;
	size_t n = m->len - m->pos < cap ? m->len - m->pos : cap;
	if (m->chunk && n > m->chunk)
		n = m->chunk;
	memcpy(buf, m->data + m->pos, n);
	m->pos += n;
	return (long)n;
}

#endif
