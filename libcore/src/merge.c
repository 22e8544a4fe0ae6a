/*
 * See merge.h for the rules. A field row keeps the newest stamp of each op
 * kind that still counts; after every op the row is normalised (stamps that
 * no longer count are cleared, a row with nothing left is deleted), which is
 * what makes even the bookkeeping independent of arrival order.
 *
 * Workload: a local write touches one field: a cover lookup, a row read and
 * a row write, all through cached statements. Deletes of a subtree or a
 * document revisit each field below them.
 */
#include <stdlib.h>
#include <sodium.h>
#include "merge.h"
#include "text.h"
#include "value.h"

typedef struct {
	unsigned char b[LIM_STAMP_BYTES];
	int has;
} stamp;

typedef struct {
	stamp reg, ctr, set;
	int64_t ctr_sum;
} field_row;

static int stamp_gt(const stamp *a, const stamp *b)
{
	if (!a->has)
		return 0;
	return !b->has || memcmp(a->b, b->b, LIM_STAMP_BYTES) > 0;
}

static const stamp *stamp_max(const stamp *a, const stamp *b)
{
	return stamp_gt(b, a) ? b : a;
}

static void stamp_from_col(stamp *s, sqlite3_stmt *q, int col)
{
	s->has = sqlite3_column_type(q, col) == SQLITE_BLOB && sqlite3_column_bytes(q, col) == LIM_STAMP_BYTES;
	if (s->has)
		memcpy(s->b, sqlite3_column_blob(q, col), LIM_STAMP_BYTES);
}

static void bind_stamp(sqlite3_stmt *q, int col, const stamp *s)
{
	if (s->has)
		sqlite3_bind_blob(q, col, s->b, LIM_STAMP_BYTES, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(q, col);
}

static void bind_key(sqlite3_stmt *q, const char *coll, const char *doc, const char *path)
{
	sqlite3_bind_text(q, 1, coll, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, doc, -1, SQLITE_STATIC);
	if (path)
		sqlite3_bind_text(q, 3, path, -1, SQLITE_STATIC);
}

void lim_merge__init(lim_merge *m, lim_store *st)
{
	memset(m, 0, sizeof(*m));
	m->st = st;
}

void lim_merge__dispose(lim_merge *m)
{
	lim_sb__free(&m->coll);
	lim_sb__free(&m->doc);
	lim_sb__free(&m->path);
	lim_sb__free(&m->val);
	lim_sb__free(&m->json);
	lim_sb__free(&m->tmp);
}

static int get_cover(lim_merge *m, const char *coll, const char *doc, const char *path, stamp *out)
{
	sqlite3_stmt *q = lim_store__stmt(m->st, LIM_ST_COVER);
	int rc;
	if (!q)
		return LIM_EIO;
	bind_key(q, coll, doc, path);
	rc = sqlite3_step(q);
	if (rc != SQLITE_ROW)
		return lim_store__error(m->st, rc, "reading deletes");
	stamp_from_col(out, q, 0);
	sqlite3_reset(q);
	return 0;
}

/* Loads the row; the register's value token goes to m->val. */
static int load_row(lim_merge *m, const char *coll, const char *doc, const char *path, field_row *row)
{
	sqlite3_stmt *q = lim_store__stmt(m->st, LIM_ST_FIELD_GET);
	int rc;
	memset(row, 0, sizeof(*row));
	lim_sb__clear(&m->val);
	if (!q)
		return LIM_EIO;
	bind_key(q, coll, doc, path);
	rc = sqlite3_step(q);
	if (rc == SQLITE_ROW) {
		stamp_from_col(&row->reg, q, 0);
		if (row->reg.has)
			lim_sb__put(&m->val, sqlite3_column_text(q, 1), (size_t)sqlite3_column_bytes(q, 1));
		stamp_from_col(&row->ctr, q, 2);
		stamp_from_col(&row->set, q, 3);
		row->ctr_sum = sqlite3_column_int64(q, 4);
		rc = SQLITE_DONE;
	}
	sqlite3_reset(q);
	if (rc != SQLITE_DONE)
		return lim_store__error(m->st, rc, "reading a field");
	return lim_sb__check(&m->val);
}

/* A register holding an integer is where a counter above it starts: "set n
 * to 1, then add 41" reads 42. The register is base(p), so this is still a
 * function of the set of ops. (m->val holds the register's token.) */
static int64_t counter_start(const lim_merge *m, const field_row *row)
{
	int64_t v = 0;
	if (row->reg.has && m->val.len > 1 && m->val.ptr[0] == 'i')
		lim_dec__parse_i64(m->val.ptr + 1, m->val.len - 1, &v);
	return v;
}

/*
 * `had_ctr`/`had_set`: whether the stored row held a counter or set stamp.
 * A delta or tag is only ever stored with a stamp above base, which also
 * becomes the row's stamp of that kind, and clearing that stamp (here)
 * prunes everything at or below it; so a row without the stamp has no
 * deltas or tags to prune, and a plain register write skips two deletes.
 */
static int prune_and_resum(lim_merge *m, const char *coll, const char *doc, const char *path,
                           const stamp *base, field_row *row, int had_ctr, int had_set)
{
	sqlite3_stmt *q;
	int rc;
	if (base->has && had_ctr) {
		if (!(q = lim_store__stmt(m->st, LIM_ST_COPS_PRUNE)))
			return LIM_EIO;
		bind_key(q, coll, doc, path);
		bind_stamp(q, 4, base);
		if ((rc = lim_store__step_done(m->st, q, "pruning counter deltas")) < 0)
			return rc;
	}
	if (base->has && had_set) {
		if (!(q = lim_store__stmt(m->st, LIM_ST_STAGS_PRUNE)))
			return LIM_EIO;
		bind_key(q, coll, doc, path);
		bind_stamp(q, 4, base);
		if ((rc = lim_store__step_done(m->st, q, "pruning set tags")) < 0)
			return rc;
	}
	row->ctr_sum = 0;
	if (!row->ctr.has)
		return 0;
	if (!(q = lim_store__stmt(m->st, LIM_ST_COPS_ALL)))
		return LIM_EIO;
	bind_key(q, coll, doc, path);
	/* Counters wrap in two's complement rather than fail: a sum must be
	 * computable in any order and SQLite's SUM() raises on overflow. */
	uint64_t sum = (uint64_t)counter_start(m, row);
	while ((rc = sqlite3_step(q)) == SQLITE_ROW)
		sum += (uint64_t)sqlite3_column_int64(q, 0);
	sqlite3_reset(q);
	if (rc != SQLITE_DONE)
		return lim_store__error(m->st, rc, "summing a counter");
	row->ctr_sum = (int64_t)sum;
	return 0;
}

static int set_json(lim_merge *m, const char *coll, const char *doc, const char *path)
{
	sqlite3_stmt *q = lim_store__stmt(m->st, LIM_ST_SET_ELEMS);
	int rc, first = 1;
	if (!q)
		return LIM_EIO;
	bind_key(q, coll, doc, path);
	lim_sb__putc(&m->json, '[');
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		if (!first)
			lim_sb__putc(&m->json, ',');
		first = 0;
		if (lim_value__token_to_json(&m->json, (const char *)sqlite3_column_text(q, 0),
		                             (size_t)sqlite3_column_bytes(q, 0)) < 0) {
			sqlite3_reset(q);
			return lim__error(LIM_ECORRUPT, "a stored set element is not a valid value");
		}
	}
	sqlite3_reset(q);
	if (rc != SQLITE_DONE)
		return lim_store__error(m->st, rc, "reading a set");
	lim_sb__putc(&m->json, ']');
	return 0;
}

/*
 * Normalise the row against `cover` and store it. `full` re-derives the
 * counter sum and prunes deltas/tags at or below base; an op that cannot
 * move base (a counter delta, a set add or remove) skips that.
 */
static int save_row(lim_merge *m, const char *coll, const char *doc, const char *path,
                    field_row *row, const stamp *cover, int full)
{
	sqlite3_stmt *q;
	const stamp *base, *win;
	int kind = LIM_KIND_NONE, rc, had_ctr = row->ctr.has, had_set = row->set.has;

	if (row->reg.has && !stamp_gt(&row->reg, cover))
		row->reg.has = 0;
	base = stamp_max(cover, &row->reg);
	if (row->ctr.has && !stamp_gt(&row->ctr, base))
		row->ctr.has = 0;
	if (row->set.has && !stamp_gt(&row->set, base))
		row->set.has = 0;
	if (full && (rc = prune_and_resum(m, coll, doc, path, base, row, had_ctr, had_set)) < 0)
		return rc;
	if (!row->ctr.has)
		row->ctr_sum = 0;

	if (!row->reg.has && !row->ctr.has && !row->set.has) {
		if (!(q = lim_store__stmt(m->st, LIM_ST_FIELD_DELETE)))
			return LIM_EIO;
		bind_key(q, coll, doc, path);
		return lim_store__step_done(m->st, q, "deleting a field");
	}
	win = &row->reg;
	kind = row->reg.has ? LIM_KIND_REGISTER : LIM_KIND_NONE;
	if (stamp_gt(&row->ctr, win)) {
		win = &row->ctr;
		kind = LIM_KIND_COUNTER;
	}
	if (stamp_gt(&row->set, win))
		kind = LIM_KIND_SET;

	lim_sb__clear(&m->json);
	if (kind == LIM_KIND_REGISTER) {
		if (lim_value__token_to_json(&m->json, m->val.ptr, m->val.len) < 0)
			return lim__error(LIM_ECORRUPT, "a stored register holds an invalid value");
	} else if (kind == LIM_KIND_COUNTER) {
		lim_sb__printf(&m->json, "%lld", (long long)row->ctr_sum);
	} else if ((rc = set_json(m, coll, doc, path)) < 0) {
		return rc;
	}
	if ((rc = lim_sb__check(&m->json)) < 0)
		return rc;

	if (!(q = lim_store__stmt(m->st, LIM_ST_FIELD_PUT)))
		return LIM_EIO;
	bind_key(q, coll, doc, path);
	bind_stamp(q, 4, &row->reg);
	if (row->reg.has)
		sqlite3_bind_text(q, 5, m->val.ptr, (int)m->val.len, SQLITE_STATIC);
	bind_stamp(q, 6, &row->ctr);
	bind_stamp(q, 7, &row->set);
	sqlite3_bind_int64(q, 8, row->ctr_sum);
	sqlite3_bind_int(q, 9, kind);
	sqlite3_bind_text(q, 10, m->json.ptr, (int)m->json.len, SQLITE_STATIC);
	return lim_store__step_done(m->st, q, "writing a field");
}

static int refresh(lim_merge *m, const char *coll, const char *doc, const char *path)
{
	field_row row;
	stamp cover;
	int rc;
	if ((rc = get_cover(m, coll, doc, path, &cover)) < 0 || (rc = load_row(m, coll, doc, path, &row)) < 0)
		return rc;
	return save_row(m, coll, doc, path, &row, &cover, 1);
}

/* Refresh every field the delete reaches; paths are collected first
 * because refreshing rewrites (or deletes) the rows being listed. */
static int apply_delete(lim_merge *m, const char *coll, const char *doc, const char *path, const stamp *s)
{
	sqlite3_stmt *q = lim_store__stmt(m->st, LIM_ST_TOMB_PUT);
	lim_sb paths = LIM_SB_INIT;
	size_t off = 0;
	int rc;
	if (!q)
		return LIM_EIO;
	bind_key(q, coll, doc, path ? path : "");
	bind_stamp(q, 4, s);
	if ((rc = lim_store__step_done(m->st, q, "recording a delete")) < 0)
		return rc;
	if (!(q = lim_store__stmt(m->st, path ? LIM_ST_FIELDS_UNDER : LIM_ST_FIELDS_OF_DOC)))
		return LIM_EIO;
	bind_key(q, coll, doc, path);
	while ((rc = sqlite3_step(q)) == SQLITE_ROW)
		lim_sb__put(&paths, sqlite3_column_text(q, 0), (size_t)sqlite3_column_bytes(q, 0) + 1);
	sqlite3_reset(q);
	if (rc != SQLITE_DONE) {
		lim_sb__free(&paths);
		return lim_store__error(m->st, rc, "listing fields to delete");
	}
	if ((rc = lim_sb__check(&paths)) < 0)
		return rc;
	rc = 0;
	while (off < paths.len && rc == 0) {
		const char *p = paths.ptr + off;
		off += strlen(p) + 1;
		rc = refresh(m, coll, doc, p);
	}
	lim_sb__free(&paths);
	return rc;
}

static int tag_removed(lim_merge *m, const char *coll, const char *doc, const char *path,
                       const unsigned char tag[LIM_TAG_BYTES], int *removed)
{
	sqlite3_stmt *q = lim_store__stmt(m->st, LIM_ST_SREMOVED_HAS);
	int rc;
	if (!q)
		return LIM_EIO;
	bind_key(q, coll, doc, path);
	sqlite3_bind_blob(q, 4, tag, LIM_TAG_BYTES, SQLITE_STATIC);
	rc = sqlite3_step(q);
	sqlite3_reset(q);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return lim_store__error(m->st, rc, "reading removed set tags");
	*removed = rc == SQLITE_ROW;
	return 0;
}

static int record_removes(lim_merge *m, const char *coll, const char *doc, const char *path, const lim_span *tags)
{
	lim_span rest = *tags, t;
	unsigned char tag[LIM_TAG_BYTES];
	sqlite3_stmt *q;
	int rc;
	while (lim_tags__next(&rest, &t)) {
		if (lim_tag__parse(tag, t.p, t.n) < 0)
			return lim__error(LIM_EMALFORMED, "malformed set tag");
		if (!(q = lim_store__stmt(m->st, LIM_ST_SREMOVED_INSERT)))
			return LIM_EIO;
		bind_key(q, coll, doc, path);
		sqlite3_bind_blob(q, 4, tag, LIM_TAG_BYTES, SQLITE_STATIC);
		if ((rc = lim_store__step_done(m->st, q, "recording a set remove")) < 0)
			return rc;
		if (!(q = lim_store__stmt(m->st, LIM_ST_STAGS_REMOVE)))
			return LIM_EIO;
		bind_key(q, coll, doc, path);
		sqlite3_bind_blob(q, 4, tag, LIM_TAG_BYTES, SQLITE_STATIC);
		if ((rc = lim_store__step_done(m->st, q, "removing a set tag")) < 0)
			return rc;
	}
	return 0;
}

static int unescape_into(lim_sb *sb, const lim_span *s)
{
	lim_sb__clear(sb);
	if (lim_text__unescape(sb, s->p, s->n) < 0)
		return lim__error(LIM_EMALFORMED, "malformed name");
	lim_sb__grow(sb, 0);
	return lim_sb__check(sb);
}

int lim_merge__apply(lim_merge *m, const lim_op *op, uint64_t hlc,
                     const unsigned char author[LIM_ID_BYTES], uint64_t seq, uint32_t opidx)
{
	stamp s, cover;
	field_row row;
	const stamp *base;
	const char *coll, *doc, *path;
	sqlite3_stmt *q;
	int rc;

	lim_stamp__make(s.b, hlc, author, seq, opidx);
	s.has = 1;
	if ((rc = unescape_into(&m->coll, &op->coll)) < 0 || (rc = unescape_into(&m->doc, &op->doc)) < 0)
		return rc;
	coll = m->coll.ptr;
	doc = m->doc.ptr;
	if (op->kind == LIM_OP_DELDOC)
		return apply_delete(m, coll, doc, NULL, &s);
	if ((rc = unescape_into(&m->path, &op->path)) < 0)
		return rc;
	path = m->path.ptr;
	if (op->kind == LIM_OP_DEL)
		return apply_delete(m, coll, doc, path, &s);
	if (op->kind == LIM_OP_SREM && (rc = record_removes(m, coll, doc, path, &op->tags)) < 0)
		return rc;

	if ((rc = get_cover(m, coll, doc, path, &cover)) < 0)
		return rc;
	/* Deleted after it was written: it can never show. A remove still
	 * took tags away above, so its field must be rewritten regardless. */
	if (!stamp_gt(&s, &cover) && op->kind != LIM_OP_SREM)
		return 0;
	if ((rc = load_row(m, coll, doc, path, &row)) < 0)
		return rc;
	base = stamp_max(&cover, &row.reg);

	switch (op->kind) {
	case LIM_OP_SET:
		if (!stamp_gt(&s, &row.reg))
			return 0;
		row.reg = s;
		lim_sb__clear(&m->val);
		lim_sb__put(&m->val, op->value.p, op->value.n);
		return save_row(m, coll, doc, path, &row, &cover, 1);
	case LIM_OP_INCR:
		if (!stamp_gt(&s, base))
			return 0;
		if (!(q = lim_store__stmt(m->st, LIM_ST_COPS_INSERT)))
			return LIM_EIO;
		bind_key(q, coll, doc, path);
		bind_stamp(q, 4, &s);
		sqlite3_bind_int64(q, 5, op->delta);
		if ((rc = lim_store__step_done(m->st, q, "recording a counter delta")) < 0)
			return rc;
		row.ctr_sum = (int64_t)((uint64_t)(row.ctr.has ? row.ctr_sum : counter_start(m, &row)) + (uint64_t)op->delta);
		row.ctr = *stamp_max(&row.ctr, &s);
		return save_row(m, coll, doc, path, &row, &cover, 0);
	case LIM_OP_SADD: {
		unsigned char tag[LIM_TAG_BYTES];
		int removed = 0;
		if (!stamp_gt(&s, base))
			return 0;
		lim_tag__make(tag, author, seq, opidx);
		if ((rc = tag_removed(m, coll, doc, path, tag, &removed)) < 0)
			return rc;
		if (!removed) {
			if (!(q = lim_store__stmt(m->st, LIM_ST_STAGS_INSERT)))
				return LIM_EIO;
			bind_key(q, coll, doc, path);
			sqlite3_bind_blob(q, 4, tag, LIM_TAG_BYTES, SQLITE_STATIC);
			sqlite3_bind_text(q, 5, op->value.p, (int)op->value.n, SQLITE_STATIC);
			bind_stamp(q, 6, &s);
			if ((rc = lim_store__step_done(m->st, q, "recording a set add")) < 0)
				return rc;
		}
		row.set = *stamp_max(&row.set, &s);
		return save_row(m, coll, doc, path, &row, &cover, 0);
	}
	case LIM_OP_SREM:
		if (stamp_gt(&s, base))
			row.set = *stamp_max(&row.set, &s);
		/* Even an old remove changes the element list, so always rewrite. */
		return save_row(m, coll, doc, path, &row, &cover, 0);
	default:
		return lim__error(LIM_EMALFORMED, "unknown op");
	}
}

int lim_merge__live_below(lim_merge *m, const char *coll, const char *doc, const char *path)
{
	sqlite3_stmt *q = lim_store__stmt(m->st, LIM_ST_LIVE_UNDER);
	int rc;
	if (!q)
		return LIM_EIO;
	bind_key(q, coll, doc, path);
	rc = sqlite3_step(q);
	sqlite3_reset(q);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return lim_store__error(m->st, rc, "reading fields");
	return rc == SQLITE_ROW;
}

int lim_merge__kind_at(lim_merge *m, const char *coll, const char *doc, const char *path)
{
	sqlite3_stmt *q = lim_store__stmt(m->st, LIM_ST_FIELD_READ);
	int rc, kind = LIM_KIND_NONE;
	if (!q)
		return LIM_EIO;
	bind_key(q, coll, doc, path);
	rc = sqlite3_step(q);
	if (rc == SQLITE_ROW)
		kind = sqlite3_column_int(q, 0);
	sqlite3_reset(q);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return lim_store__error(m->st, rc, "reading a field");
	return kind;
}

int lim_merge__observed_tags(lim_merge *m, const char *coll, const char *doc, const char *path,
                             const char *elem_token, size_t elem_len, lim_sb *out)
{
	sqlite3_stmt *q = lim_store__stmt(m->st, LIM_ST_SET_TAGS_OF);
	int rc, n = 0;
	if (!q)
		return LIM_EIO;
	bind_key(q, coll, doc, path);
	sqlite3_bind_text(q, 4, elem_token, (int)elem_len, SQLITE_STATIC);
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		if (sqlite3_column_bytes(q, 0) != LIM_TAG_BYTES)
			continue;
		if (n++)
			lim_sb__putc(out, ',');
		lim_cb__tag(out, sqlite3_column_blob(q, 0));
	}
	sqlite3_reset(q);
	if (rc != SQLITE_DONE)
		return lim_store__error(m->st, rc, "reading set tags");
	return n;
}

/* ------------------------------------------------------------ rendering */

typedef struct {
	char *key; /* path with '.' mapped to '\0'-free sort key */
	const char *path;
	size_t path_len;
	const char *json;
	size_t json_len;
} render_row;

/* Sort by segments: '.' must order below every byte a name may hold, so
 * that a field's descendants follow it directly ("a", "a.b", "a-x"). */
static int seg_cmp(const void *pa, const void *pb)
{
	const render_row *a = pa, *b = pb;
	size_t n = a->path_len < b->path_len ? a->path_len : b->path_len;
	for (size_t i = 0; i < n; i++) {
		unsigned char x = (unsigned char)a->path[i], y = (unsigned char)b->path[i];
		if (x == y)
			continue;
		if (x == '.')
			return -1;
		if (y == '.')
			return 1;
		return x < y ? -1 : 1;
	}
	return a->path_len < b->path_len ? -1 : a->path_len > b->path_len;
}

static int is_below(const render_row *child, const render_row *parent)
{
	return child->path_len > parent->path_len && child->path[parent->path_len] == '.' &&
	       memcmp(child->path, parent->path, parent->path_len) == 0;
}

/* Count the leading whole segments two paths share. */
static size_t shared_segments(const char *a, size_t an, const char *b, size_t bn)
{
	size_t segs = 0, i = 0;
	for (;; i++) {
		int a_end = i == an || a[i] == '.';
		int b_end = i == bn || b[i] == '.';
		if (a_end && b_end) {
			segs++;
			if (i == an || i == bn)
				return segs;
			continue;
		}
		if (a_end || b_end || a[i] != b[i])
			return segs;
	}
}

static void emit_key(lim_sb *out, const char *seg, size_t n)
{
	lim_json__quote(out, seg, n);
	lim_sb__putc(out, ':');
}

/* Objects win: a value at p is hidden when live fields exist below p, so
 * concurrent "a = 1" and "a.b = 2" render the same on every replica. */
static void render_rows(render_row *rows, size_t n, size_t strip, lim_sb *out)
{
	const char *open = NULL; /* path of the last emitted field */
	size_t open_len = 0, depth = 0;
	lim_sb__putc(out, '{');
	for (size_t i = 0; i < n; i++) {
		const char *p = rows[i].path + strip;
		size_t pn = rows[i].path_len - strip, keep, segs = 1;
		if (i + 1 < n && is_below(&rows[i + 1], &rows[i]))
			continue;
		for (size_t k = 0; k < pn; k++)
			segs += p[k] == '.';
		keep = open ? shared_segments(open, open_len, p, pn) : 0;
		if (keep >= segs)
			keep = segs - 1;
		while (depth > keep) {
			lim_sb__putc(out, '}');
			depth--;
		}
		if (open)
			lim_sb__putc(out, ',');
		/* Walk to segment `keep`, then open objects for the rest. */
		size_t start = 0, seg = 0;
		while (seg < keep) {
			while (p[start] != '.')
				start++;
			start++;
			seg++;
		}
		for (;;) {
			size_t end = start;
			while (end < pn && p[end] != '.')
				end++;
			emit_key(out, p + start, end - start);
			if (end == pn)
				break;
			lim_sb__putc(out, '{');
			depth++;
			start = end + 1;
		}
		lim_sb__put(out, rows[i].json, rows[i].json_len);
		open = p;
		open_len = pn;
	}
	while (depth-- > 0)
		lim_sb__putc(out, '}');
	lim_sb__putc(out, '}');
}

int lim_merge__render(lim_merge *m, const char *coll, const char *doc, const char *path, lim_sb *out)
{
	sqlite3_stmt *q = lim_store__stmt(m->st, path ? LIM_ST_SUBTREE_RENDER : LIM_ST_DOC_RENDER);
	render_row *rows = NULL;
	size_t n = 0, cap = 0;
	lim_sb text = LIM_SB_INIT;
	int rc;

	if (!q)
		return LIM_EIO;
	bind_key(q, coll, doc, path);
	/* Rows point into one text buffer filled first: pointers are fixed up
	 * after, because the buffer moves as it grows. */
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		size_t pl = (size_t)sqlite3_column_bytes(q, 0), jl = (size_t)sqlite3_column_bytes(q, 1);
		if (n == cap) {
			render_row *g = realloc(rows, (cap = cap ? 2 * cap : 16) * sizeof(*rows));
			if (!g) {
				rc = SQLITE_NOMEM;
				break;
			}
			rows = g;
		}
		rows[n].path = (const char *)(uintptr_t)text.len;
		rows[n].path_len = pl;
		lim_sb__put(&text, sqlite3_column_text(q, 0), pl + 1);
		rows[n].json = (const char *)(uintptr_t)text.len;
		rows[n].json_len = jl;
		lim_sb__put(&text, sqlite3_column_text(q, 1), jl + 1);
		n++;
	}
	sqlite3_reset(q);
	if (rc != SQLITE_DONE || text.oom) {
		free(rows);
		lim_sb__free(&text);
		return rc == SQLITE_DONE || rc == SQLITE_NOMEM ? lim__error(LIM_ENOMEM, "out of memory")
		                                               : lim_store__error(m->st, rc, "reading a document");
	}
	for (size_t i = 0; i < n; i++) {
		rows[i].path = text.ptr + (uintptr_t)rows[i].path;
		rows[i].json = text.ptr + (uintptr_t)rows[i].json;
	}
	rc = 0;
	if (n == 0) {
		rc = path ? lim__error(LIM_ENOTFOUND, "no field %s in %s/%s", path, coll, doc)
		          : lim__error(LIM_ENOTFOUND, "no document %s in collection %s", doc, coll);
	} else {
		qsort(rows, n, sizeof(*rows), seg_cmp);
		if (path && n == 1 && rows[0].path_len == strlen(path))
			lim_sb__put(out, rows[0].json, rows[0].json_len);
		else if (path && rows[0].path_len == strlen(path))
			render_rows(rows + 1, n - 1, strlen(path) + 1, out);
		else
			render_rows(rows, n, path ? strlen(path) + 1 : 0, out);
		rc = lim_sb__check(out);
	}
	free(rows);
	lim_sb__free(&text);
	return rc;
}

/* ------------------------------------------------------------ digest */

static const char *const VISIBLE_SQL =
	"SELECT coll, doc, path, kind, json FROM fields WHERE kind != 0 ORDER BY coll, doc, path";
static const char *const INTERNAL_SQL[] = {
	"SELECT * FROM fields ORDER BY coll, doc, path",
	"SELECT * FROM tombs ORDER BY coll, doc, path",
	"SELECT * FROM cops ORDER BY coll, doc, path, stamp",
	"SELECT * FROM stags ORDER BY coll, doc, path, tag",
	"SELECT * FROM sremoved ORDER BY coll, doc, path, tag",
};

static int hash_query(lim_store *st, const char *sql, crypto_generichash_state *h)
{
	sqlite3_stmt *q;
	int rc = sqlite3_prepare_v2(st->sql, sql, -1, &q, NULL);
	if (rc != SQLITE_OK)
		return lim_store__error(st, rc, "computing the digest");
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		int cols = sqlite3_column_count(q);
		for (int c = 0; c < cols; c++) {
			unsigned char hdr[9];
			int type = sqlite3_column_type(q, c);
			const void *p = type == SQLITE_BLOB ? sqlite3_column_blob(q, c) : (const void *)sqlite3_column_text(q, c);
			uint64_t len = type == SQLITE_NULL ? 0 : (uint64_t)sqlite3_column_bytes(q, c);
			/* Type and length prefix every column, so no two different
			 * states hash the same bytes. */
			hdr[0] = (unsigned char)type;
			for (int i = 0; i < 8; i++)
				hdr[1 + i] = (unsigned char)(len >> (56 - 8 * i));
			crypto_generichash_update(h, hdr, sizeof(hdr));
			if (len)
				crypto_generichash_update(h, p, len);
		}
	}
	sqlite3_finalize(q);
	return rc == SQLITE_DONE ? 0 : lim_store__error(st, rc, "computing the digest");
}

int lim_merge__digest(lim_store *st, int internal, unsigned char out[LIM_HASH_BYTES])
{
	static const char CONTEXT[] = "liblim state v1";
	crypto_generichash_state h;
	int rc = 0;
	crypto_generichash_init(&h, NULL, 0, LIM_HASH_BYTES);
	crypto_generichash_update(&h, (const unsigned char *)CONTEXT, sizeof(CONTEXT));
	if (!internal)
		rc = hash_query(st, VISIBLE_SQL, &h);
	for (size_t i = 0; internal && rc == 0 && i < sizeof(INTERNAL_SQL) / sizeof(*INTERNAL_SQL); i++)
		rc = hash_query(st, INTERNAL_SQL[i], &h);
	crypto_generichash_final(&h, out, LIM_HASH_BYTES);
	return rc;
}

int lim_merge__reset(lim_store *st)
{
	return lim_store__exec(st, "DELETE FROM fields; DELETE FROM tombs; DELETE FROM cops;"
	                           " DELETE FROM stags; DELETE FROM sremoved;");
}
