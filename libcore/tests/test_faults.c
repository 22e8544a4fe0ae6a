/*
 * I/O faults: a SQLite VFS shim over the default one fails the N-th write,
 * sync or truncate (or reports a full disk). For N = 1, 2, ... through a
 * local write, an incoming change, an incoming pack of several authors'
 * changes, the opening of an existing store with a leftover WAL and the
 * creation of a store, every fault must give a documented error (never a
 * crash or a leak); after reopening without faults the store verifies, and
 * it holds either the whole operation or none of it — all of it whenever
 * the call returned 0. A sync that failed during a call must make that call
 * fail and leave the handle refusing writes (failed state).
 */
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sqlite3.h>
#include "support.h"

enum { OP_WRITE, OP_SYNC, OP_TRUNCATE, OP_FULL };
static const char *const OP_NAMES[] = { "write", "sync", "truncate", "disk-full write" };

static struct {
	int kind;       /* which operation to fail */
	int countdown;  /* fail when it reaches 0; <0: never */
	int fired;
} fault = { OP_WRITE, -1, 0 };

static sqlite3_vfs fault_vfs;
static sqlite3_vfs *base_vfs;

typedef struct {
	sqlite3_file base;
	sqlite3_file *real; /* follows this struct in the same allocation */
} fault_file;

static int should_fail(int kind)
{
	int k = kind == OP_WRITE && fault.kind == OP_FULL ? OP_FULL : kind;
	if (fault.countdown < 0 || k != fault.kind)
		return 0;
	if (fault.countdown-- == 0) {
		fault.fired = 1;
		return 1;
	}
	return 0;
}

#define REAL(f) (((fault_file *)(f))->real)

static int f_close(sqlite3_file *f) { return REAL(f)->pMethods->xClose(REAL(f)); }
static int f_read(sqlite3_file *f, void *b, int n, sqlite3_int64 o) { return REAL(f)->pMethods->xRead(REAL(f), b, n, o); }
static int f_write(sqlite3_file *f, const void *b, int n, sqlite3_int64 o)
{
	if (should_fail(OP_WRITE))
		return fault.kind == OP_FULL ? SQLITE_FULL : SQLITE_IOERR_WRITE;
	return REAL(f)->pMethods->xWrite(REAL(f), b, n, o);
}
static int f_truncate(sqlite3_file *f, sqlite3_int64 s)
{
	return should_fail(OP_TRUNCATE) ? SQLITE_IOERR_TRUNCATE : REAL(f)->pMethods->xTruncate(REAL(f), s);
}
static int f_sync(sqlite3_file *f, int fl)
{
	return should_fail(OP_SYNC) ? SQLITE_IOERR_FSYNC : REAL(f)->pMethods->xSync(REAL(f), fl);
}
static int f_size(sqlite3_file *f, sqlite3_int64 *s) { return REAL(f)->pMethods->xFileSize(REAL(f), s); }
static int f_lock(sqlite3_file *f, int l) { return REAL(f)->pMethods->xLock(REAL(f), l); }
static int f_unlock(sqlite3_file *f, int l) { return REAL(f)->pMethods->xUnlock(REAL(f), l); }
static int f_check(sqlite3_file *f, int *r) { return REAL(f)->pMethods->xCheckReservedLock(REAL(f), r); }
static int f_fcntl(sqlite3_file *f, int op, void *a) { return REAL(f)->pMethods->xFileControl(REAL(f), op, a); }
static int f_sector(sqlite3_file *f) { return REAL(f)->pMethods->xSectorSize(REAL(f)); }
static int f_dev(sqlite3_file *f) { return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f)); }
static int f_shmmap(sqlite3_file *f, int p, int s, int e, void volatile **pp) { return REAL(f)->pMethods->xShmMap(REAL(f), p, s, e, pp); }
static int f_shmlock(sqlite3_file *f, int o, int n, int fl) { return REAL(f)->pMethods->xShmLock(REAL(f), o, n, fl); }
static void f_shmbarrier(sqlite3_file *f) { REAL(f)->pMethods->xShmBarrier(REAL(f)); }
static int f_shmunmap(sqlite3_file *f, int d) { return REAL(f)->pMethods->xShmUnmap(REAL(f), d); }
static int f_fetch(sqlite3_file *f, sqlite3_int64 o, int n, void **pp) { return REAL(f)->pMethods->xFetch(REAL(f), o, n, pp); }
static int f_unfetch(sqlite3_file *f, sqlite3_int64 o, void *p) { return REAL(f)->pMethods->xUnfetch(REAL(f), o, p); }

static const sqlite3_io_methods FAULT_METHODS = {
	3, f_close, f_read, f_write, f_truncate, f_sync, f_size, f_lock, f_unlock, f_check,
	f_fcntl, f_sector, f_dev, f_shmmap, f_shmlock, f_shmbarrier, f_shmunmap, f_fetch, f_unfetch,
};

static int f_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *file, int flags, int *out_flags)
{
	fault_file *ff = (fault_file *)file;
	int rc;
	(void)vfs;
	ff->real = (sqlite3_file *)(ff + 1);
	rc = base_vfs->xOpen(base_vfs, name, ff->real, flags, out_flags);
	ff->base.pMethods = rc == SQLITE_OK ? &FAULT_METHODS : NULL;
	return rc;
}

static void register_fault_vfs(void)
{
	if (base_vfs)
		return;
	base_vfs = sqlite3_vfs_find(NULL);
	fault_vfs = *base_vfs;
	fault_vfs.zName = "lim-faults";
	fault_vfs.szOsFile = (int)sizeof(fault_file) + base_vfs->szOsFile;
	fault_vfs.xOpen = f_open;
	assert_int_equal(sqlite3_vfs_register(&fault_vfs, 0), SQLITE_OK);
}

static lim_db *open_faulty(const char *path, int create)
{
	lim_db_options o;
	lim_db *db = NULL;
	lim_db_options_init(&o, LIM_DB_OPTIONS_VERSION);
	o.vfs = "lim-faults";
	o.create = create;
	o.synchronous = LIM_SYNC_FULL; /* so commits sync, and syncs can fail */
	if (lim_db_open(&db, path, &o) != 0)
		return NULL;
	return db;
}

/* The codes RELIABILITY.md and lim.h promise for a storage failure. */
static int expected_code(int rc)
{
	return rc == LIM_EIO || rc == LIM_EFAILED;
}

/* Faults injected per path and kind, for the summary line and the doc. */
static int injected_total;

/* The state after recovery must be "before" or "after", never a third. */
static void check_recovered(const char *path, const char *before, const char *after, int acked, const char *what, int n)
{
	lim_db *db;
	char d[65];
	lim_db_options o;
	lim_db_options_init(&o, LIM_DB_OPTIONS_VERSION);
	o.create = 0;
	int rc = lim_db_open(&db, path, &o);
	if (rc != 0)
		fail_msg("%s, fault %d: reopening failed: %s", what, n, lim_error_last());
	rc = lim_db_verify(db);
	if (rc != 0)
		fail_msg("%s, fault %d: verify after recovery: %s", what, n, lim_error_last());
	digest_of(db, d);
	if (acked && strcmp(d, after) != 0)
		fail_msg("%s, fault %d: an acknowledged write is missing", what, n);
	if (strcmp(d, before) != 0 && strcmp(d, after) != 0)
		fail_msg("%s, fault %d: state is neither before nor after", what, n);
	/* And the recovered store takes writes again. */
	lim_value v = int_value(n);
	assert_int_equal(lim_db_set(db, "after", "fault", "n", &v), 0);
	lim_db_free(db);
}

/* Copy a store, with its WAL if it has one (the leftover-WAL case): the
 * copy's -shm is left out, so opening it rebuilds the WAL index. */
static void copy_file(const char *from, const char *to)
{
	char cmd[2048];
	snprintf(cmd, sizeof(cmd), "rm -f '%s' '%s-wal' '%s-shm' && cp '%s' '%s' && "
	         "if [ -f '%s-wal' ]; then cp '%s-wal' '%s-wal'; fi",
	         to, to, to, from, to, from, from, to);
	assert_int_equal(system(cmd), 0);
}

typedef int (*operation)(lim_db *db, void *arg);

static int op_local_write(lim_db *db, void *arg)
{
	(void)arg;
	const char *j = "{\"title\":\"written under faults\",\"n\":{\"x\":1,\"y\":2}}";
	return lim_db_put_json(db, "docs", "target", j, strlen(j));
}

typedef struct {
	char *bytes;
	size_t len;
} change_arg;

static int op_apply(lim_db *db, void *arg)
{
	change_arg *c = arg;
	return lim_db_apply(db, c->bytes, c->len, NULL);
}

/* Run `op` on a copy of `base` once per fault position and kind. With
 * op == NULL the operation is opening the store (faults start counting
 * before lim_db_open); then the whole state of the copy was acknowledged
 * by whoever wrote it, so it must come back exactly. */
static void fault_loop(const char *dir, const char *base, operation op, void *arg, const char *what)
{
	char *work = path_in(dir, "work.db");
	char before[65], after[65];
	int path_total = 0;
	lim_db *db;
	/* Reference digests without faults. */
	copy_file(base, work);
	fault.countdown = -1;
	db = open_faulty(work, 0);
	assert_non_null(db);
	digest_of(db, before);
	if (op) {
		assert_int_equal(op(db, arg), 0);
		digest_of(db, after);
	} else {
		memcpy(after, before, sizeof(after));
	}
	lim_db_free(db);
	if (op)
		assert_string_not_equal(before, after);

	for (int kind = OP_WRITE; kind <= OP_FULL; kind++) {
		int n;
		for (n = 0; n < 500; n++) {
			int rc;
			copy_file(base, work);
			fault.kind = kind;
			fault.fired = 0;
			if (op) {
				fault.countdown = -1;
				db = open_faulty(work, 0);
				assert_non_null(db);
				fault.countdown = n;
				rc = op(db, arg);
			} else {
				fault.countdown = n;
				db = open_faulty(work, 0);
				rc = db ? 0 : lim_error_last_code();
			}
			int fired_in_op = fault.fired;
			if (rc != 0 && !expected_code(rc))
				fail_msg("%s, %s fault %d: unexpected %s: %s", what, OP_NAMES[kind], n, lim_error_name(rc), lim_error_last());
			if (rc != 0)
				assert_true(strlen(lim_error_last()) > 0);
			/* A sync that failed inside the call may have lost what SQLite
			 * thinks it wrote: the call must not report success. */
			if (fired_in_op && kind == OP_SYNC && rc == 0)
				fail_msg("%s, sync fault %d: the call returned 0 although a sync failed in it", what, n);
			if (db && (rc == LIM_EFAILED || (fired_in_op && kind == OP_SYNC))) {
				/* The handle refuses writes from now on (failed state). */
				lim_value v = int_value(1);
				fault.countdown = -1;
				int again = lim_db_set(db, "x", "y", "z", &v);
				if (again != LIM_EFAILED)
					fail_msg("%s, %s fault %d: write after %s gave %s", what, OP_NAMES[kind], n,
					         lim_error_name(rc), lim_error_name(again));
				fault.countdown = n + 1000; /* keep counting through the close */
			}
			/* Closing checkpoints the WAL into the file: faults there too. */
			lim_db_free(db);
			int fired = fault.fired;
			fault.countdown = -1;
			check_recovered(work, before, after, rc == 0 || !op, what, n);
			if (!fired)
				break; /* the operation no longer reaches the n-th call */
		}
		print_message("%s: %d %s faults injected\n", what, n, OP_NAMES[kind]);
		path_total += n;
		assert_true(n < 500);
		if (kind != OP_TRUNCATE)
			assert_true(n > 0); /* the faults really reach the operation */
	}
	injected_total += path_total;
	print_message("%s: %d faults in all (running total %d)\n", what, path_total, injected_total);
	free(work);
}

static void test_faults__local_write(void **state)
{
	char *dir = make_tmpdir(), *base = path_in(dir, "base.db");
	lim_db *db;
	(void)state;
	register_fault_vfs();
	assert_int_equal(lim_db_open(&db, base, NULL), 0);
	const char *j = "{\"title\":\"old\",\"k\":1}";
	assert_int_equal(lim_db_put_json(db, "docs", "target", j, strlen(j)), 0);
	lim_db_free(db);
	fault_loop(dir, base, op_local_write, NULL, "local write");
	remove_tree(dir);
	free(dir);
	free(base);
}

static void test_faults__incoming_change(void **state)
{
	char *dir = make_tmpdir(), *base = path_in(dir, "base.db");
	lim_db *db, *peer;
	change_arg c;
	unsigned char key[LIM_NETWORK_KEY_BYTES];
	lim_db_options o;
	(void)state;
	register_fault_vfs();
	assert_int_equal(lim_db_open(&db, base, NULL), 0);
	lim_db_network_key(db, key);
	lim_db_options_init(&o, LIM_DB_OPTIONS_VERSION);
	o.network_key = key;
	assert_int_equal(lim_db_open(&peer, ":memory:", &o), 0);
	const char *j = "{\"from\":\"peer\",\"nested\":{\"a\":true}}";
	assert_int_equal(lim_db_put_json(peer, "docs", "remote", j, strlen(j)), 0);
	c.bytes = last_change(peer, &c.len);
	lim_db_free(peer);
	lim_db_free(db);
	fault_loop(dir, base, op_apply, &c, "incoming change");
	free(c.bytes);
	remove_tree(dir);
	free(dir);
	free(base);
}

/* The pack is read back in odd-sized pieces (its membuf's chunk) so lines
 * straddle reads. */
static int op_import(lim_db *db, void *arg)
{
	membuf *m = arg;
	m->pos = 0;
	return lim_db_import(db, membuf_read, m, NULL);
}

/* An incoming batch: one pack holding three other authors' changes, each
 * author several changes deep, some editing what another wrote (so the
 * batch applies chains of several authors that depend on each other). */
static void test_faults__incoming_multi_author_pack(void **state)
{
	char *dir = make_tmpdir(), *base = path_in(dir, "base.db");
	lim_db *db, *peer[3];
	unsigned char key[LIM_NETWORK_KEY_BYTES];
	lim_db_options o;
	lim_buf vv = LIM_BUF_INIT;
	membuf pack = { NULL, 0, 0, 97 };
	(void)state;
	register_fault_vfs();
	assert_int_equal(lim_db_open(&db, base, NULL), 0);
	const char *j = "{\"title\":\"local\",\"k\":1}";
	assert_int_equal(lim_db_put_json(db, "docs", "mine", j, strlen(j)), 0);
	lim_db_network_key(db, key);
	assert_int_equal(lim_db_version_vector(&vv, db), 0);
	lim_db_options_init(&o, LIM_DB_OPTIONS_VERSION);
	o.network_key = key;
	for (int a = 0; a < 3; a++) {
		assert_int_equal(lim_db_open(&peer[a], ":memory:", &o), 0);
		if (a > 0)
			sync_into(peer[a], peer[a - 1]); /* sees the earlier authors' work */
		for (int k = 0; k < 3; k++) {
			char doc[16], json[96];
			snprintf(doc, sizeof(doc), "d%d", k);
			snprintf(json, sizeof(json), "{\"by\":%d,\"k\":%d,\"o\":{\"a\":%d}}", a, k, a);
			assert_int_equal(lim_db_put_json(peer[a], "shared", doc, json, strlen(json)), 0);
			assert_int_equal(lim_db_incr(peer[a], "shared", "count", "n", 1), 0);
		}
	}
	/* The last peer holds all three authors' 18 changes. */
	assert_int_equal(lim_db_export(peer[2], vv.ptr, vv.size, membuf_write, &pack), 0);
	assert_non_null(strstr(pack.data, "END 18 "));
	for (int a = 0; a < 3; a++)
		lim_db_free(peer[a]);
	lim_buf_dispose(&vv);
	lim_db_free(db);
	fault_loop(dir, base, op_import, &pack, "incoming 3-author pack");
	free(pack.data);
	remove_tree(dir);
	free(dir);
	free(base);
}

/* Opening a store whose last writer died without checkpointing: a child
 * commits writes (each acknowledged through a pipe) and is SIGKILLed, which
 * leaves its commits in the -wal file only. Opening copies of that pair
 * under faults (WAL recovery, and the checkpoint when the handle closes)
 * must never lose one of those acknowledged writes. */
static void test_faults__opening_a_store_with_a_leftover_wal(void **state)
{
	char *dir = make_tmpdir(), *base = path_in(dir, "base.db"), wal[600];
	int p[2];
	int64_t acked = -1, i;
	struct stat st;
	lim_db *db;
	(void)state;
	register_fault_vfs();
	assert_int_equal(pipe(p), 0);
	pid_t c = fork();
	assert_true(c >= 0);
	if (c == 0) {
		close(p[0]);
		if (lim_db_open(&db, base, NULL) != 0)
			_exit(2);
		for (i = 0; i < 40; i++) {
			char doc[32], json[64];
			snprintf(doc, sizeof(doc), "w%lld", (long long)i);
			snprintf(json, sizeof(json), "{\"i\":%lld,\"t\":\"in the wal\"}", (long long)i);
			if (lim_db_put_json(db, "wal", doc, json, strlen(json)) != 0 || lim_db_incr(db, "wal", "n", "c", 1) != 0)
				_exit(3);
			if (write(p[1], &i, sizeof(i)) != (ssize_t)sizeof(i))
				_exit(4);
		}
		kill(getpid(), SIGKILL); /* no close, no checkpoint */
		_exit(5);
	}
	close(p[1]);
	while (read(p[0], &i, sizeof(i)) == (ssize_t)sizeof(i))
		acked = i;
	close(p[0]);
	int status;
	assert_int_equal(waitpid(c, &status, 0), c);
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	assert_int_equal(acked, 39);
	snprintf(wal, sizeof(wal), "%s-wal", base);
	assert_int_equal(stat(wal, &st), 0);
	assert_true(st.st_size > 0); /* the writes really are in the WAL only */

	/* Every acknowledged write is in the state the loop must keep (read
	 * from a copy: opening `base` itself would checkpoint its WAL away). */
	char *ref = path_in(dir, "ref.db");
	copy_file(base, ref);
	assert_int_equal(lim_db_open(&db, ref, NULL), 0);
	for (i = 0; i <= acked; i++) {
		char doc[32];
		lim_field *f;
		snprintf(doc, sizeof(doc), "w%lld", (long long)i);
		if (lim_db_get_field(&f, db, "wal", doc, "i") != 0)
			fail_msg("acknowledged write %lld is not in the leftover WAL", (long long)i);
		lim_field_free(f);
	}
	lim_db_free(db);
	fault_loop(dir, base, NULL, NULL, "opening with a leftover WAL");
	free(ref);
	remove_tree(dir);
	free(dir);
	free(base);
}

static void test_faults__creating_a_store(void **state)
{
	char *dir = make_tmpdir(), *p = path_in(dir, "new.db");
	(void)state;
	register_fault_vfs();
	for (int kind = OP_WRITE; kind <= OP_FULL; kind++) {
		int n;
		for (n = 0; n < 500; n++) {
			char cmd[600];
			snprintf(cmd, sizeof(cmd), "rm -f '%s' '%s-wal' '%s-shm'", p, p, p);
			assert_int_equal(system(cmd), 0);
			fault.kind = kind;
			fault.countdown = n;
			fault.fired = 0;
			lim_db *db = open_faulty(p, 1);
			int fired = fault.fired;
			fault.countdown = -1;
			if (!db && !expected_code(lim_error_last_code()))
				fail_msg("create, %s fault %d: unexpected %s: %s", OP_NAMES[kind], n,
				         lim_error_name(lim_error_last_code()), lim_error_last());
			if (db && fired && kind == OP_SYNC)
				fail_msg("create, sync fault %d: lim_db_open returned a store although a sync failed", n);
			lim_db_free(db);
			/* Whatever happened, opening again gives a working store: a
			 * half-created file never masquerades as one without identity. */
			lim_db_options o;
			lim_db_options_init(&o, LIM_DB_OPTIONS_VERSION);
			lim_db *again;
			int rc = lim_db_open(&again, p, &o);
			if (rc != 0)
				fail_msg("create, %s fault %d: reopening: %s", OP_NAMES[kind], n, lim_error_last());
			assert_int_equal(lim_db_verify(again), 0);
			lim_value v = int_value(1);
			assert_int_equal(lim_db_set(again, "c", "d", "f", &v), 0);
			lim_db_free(again);
			if (!fired)
				break;
		}
		print_message("create: %d %s faults injected\n", n, OP_NAMES[kind]);
		injected_total += n;
		assert_true(n < 500);
	}
	print_message("faults injected in all paths: %d\n", injected_total);
	remove_tree(dir);
	free(dir);
	free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_faults__local_write),
		cmocka_unit_test(test_faults__incoming_change),
		cmocka_unit_test(test_faults__incoming_multi_author_pack),
		cmocka_unit_test(test_faults__opening_a_store_with_a_leftover_wal),
		cmocka_unit_test(test_faults__creating_a_store),
	};
	return cmocka_run_group_tests_name("faults", tests, NULL, NULL);
}
