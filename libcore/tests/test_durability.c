/*
 * Durability: "acknowledged means durable" (DESIGN.md invariant 5).
 *
 * test_durability__kill_loop forks a child that writes to a store file and
 * reports each acknowledged write (a call that returned 0) through a pipe,
 * one fixed-size record per write(). The parent SIGKILLs it after a random,
 * seeded delay, then reopens the store and checks that lim_db_verify()
 * passes, that every acknowledged write is there with its value, and that
 * nothing beyond the single write in flight appeared. Every iteration works
 * on the same file, so each one also recovers from all earlier kills.
 *
 *   LIM_KILL_ITERATIONS=n   iterations (default 20)
 *   LIM_SEED=s              seed of the kill delays (printed on failure)
 *
 * test_durability__synchronous_full reopens one store alternately with
 * synchronous NORMAL and FULL and checks the data and digest carry over.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lim.h"

/* ------------------------------------------------------------ reporting */

static unsigned long long g_seed;
static int g_have_seed;
static int g_iteration = -1;

static void report_failure(const char *file, int line, const char *expr,
                           const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	print_error("%s:%d: check failed: %s\n", file, line, expr);
	if (msg[0])
		print_error("  %s\n", msg);
	print_error("  last library error: %s: %s\n",
	            lim_error_name(lim_error_last_code()), lim_error_last());
	if (g_iteration >= 0)
		print_error("  kill-loop iteration %d\n", g_iteration);
	if (g_have_seed)
		print_error("seed %llu (rerun with LIM_SEED=%llu)\n", g_seed, g_seed);
}

#define REQUIRE(cond, ...) do { \
	if (!(cond)) { \
		report_failure(__FILE__, __LINE__, #cond, __VA_ARGS__); \
		fail(); \
	} \
} while (0)

#define RC_OK(call) do { \
	int rc_ok_ = (call); \
	REQUIRE(rc_ok_ == 0, "%s returned %d (%s)", #call, rc_ok_, lim_error_name(rc_ok_)); \
} while (0)

/* ------------------------------------------------------------ helpers */

static uint64_t rng_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const unsigned char k_network_key[LIM_NETWORK_KEY_BYTES] = {
	'l', 'i', 'm', '-', 'd', 'u', 'r', 'a', 'b', 'i', 'l', 'i', 't', 'y', 0, 1,
	2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17
};

static void make_options(lim_db_options *o, lim_synchronous sync, int create)
{
	lim_db_options_init(o, LIM_DB_OPTIONS_VERSION);
	o->synchronous = sync;
	o->create = create;
	o->network_key = k_network_key;
}

static void make_tempdir(char *dir, size_t cap)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(dir, cap, "%s/lim-durability-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	REQUIRE(mkdtemp(dir) != NULL, "mkdtemp(%s): %s", dir, strerror(errno));
}

static void remove_tree(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char p[4096];

	if (!d)
		return;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
		unlink(p);
	}
	closedir(d);
	rmdir(dir);
}

static void hex_id(lim_db *db, char out[2 * LIM_ID_BYTES + 1])
{
	unsigned char id[LIM_ID_BYTES];
	static const char hexd[] = "0123456789abcdef";

	RC_OK(lim_db_replica_id(db, id));
	for (size_t i = 0; i < LIM_ID_BYTES; i++) {
		out[2 * i] = hexd[id[i] >> 4];
		out[2 * i + 1] = hexd[id[i] & 15];
	}
	out[2 * LIM_ID_BYTES] = '\0';
}

/* This store's own seq in its version vector (0 if absent). */
static uint64_t own_seq(lim_db *db)
{
	char hex[2 * LIM_ID_BYTES + 1];
	lim_buf vv = LIM_BUF_INIT;
	uint64_t seq = 0;
	const char *p, *end;

	hex_id(db, hex);
	RC_OK(lim_db_version_vector(&vv, db));
	p = vv.ptr;
	end = vv.ptr + vv.size;
	while (p && p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		REQUIRE(nl != NULL, "%s", "version vector line without LF");
		if ((size_t)(nl - p) > 2 * LIM_ID_BYTES && p[2 * LIM_ID_BYTES] == ' ' &&
		    strncasecmp(p, hex, 2 * LIM_ID_BYTES) == 0)
			seq = strtoull(p + 2 * LIM_ID_BYTES + 1, NULL, 10);
		p = nl + 1;
	}
	lim_buf_dispose(&vv);
	return seq;
}

/* Field `path` of kv/doc reads as JSON text `want` (NULL: doc must not exist). */
static void require_json(lim_db *db, const char *doc, const char *path, const char *want)
{
	lim_buf j = LIM_BUF_INIT;
	int rc = lim_db_get_json(&j, db, "kv", doc, path);

	if (!want) {
		REQUIRE(rc == LIM_ENOTFOUND, "kv/%s: never acknowledged nor in flight, but get_json gave %d '%s'",
		        doc, rc, rc == 0 && j.ptr ? j.ptr : "");
		lim_buf_dispose(&j);
		return;
	}
	REQUIRE(rc == 0, "kv/%s/%s: acknowledged but get_json returned %d (%s)", doc,
	        path ? path : "", rc, lim_error_name(rc));
	REQUIRE(j.size == strlen(want) && memcmp(j.ptr, want, j.size) == 0,
	        "kv/%s/%s: expected %s, got %s", doc, path ? path : "", want, j.ptr);
	lim_buf_dispose(&j);
}

static int64_t counter_value(lim_db *db)
{
	lim_field *f = NULL;
	lim_value v;
	int64_t n;
	int rc = lim_db_get_field(&f, db, "kv", "counter", "c");

	if (rc == LIM_ENOTFOUND)
		return 0;
	REQUIRE(rc == 0, "counter: get_field returned %d (%s)", rc, lim_error_name(rc));
	REQUIRE(lim_field_kind(f) == LIM_KIND_COUNTER, "counter has kind %d", (int)lim_field_kind(f));
	RC_OK(lim_field_value(f, &v));
	REQUIRE(v.type == LIM_INT, "counter value has type %d", (int)v.type);
	n = v.integer;
	lim_field_free(f);
	return n;
}

/* ------------------------------------------------------------ the child */

enum { REC_OPENED = 1, REC_DOC = 2, REC_INCR = 3, REC_TXN = 4, REC_ERROR = 5 };

typedef struct {
	uint32_t kind;
	uint32_t iter;
	int64_t value;
} ack_rec;

static void child_send(int fd, uint32_t kind, uint32_t iter, int64_t value)
{
	ack_rec r;

	memset(&r, 0, sizeof(r));
	r.kind = kind;
	r.iter = iter;
	r.value = value;
	/* One write() of 16 bytes: atomic on a pipe (< PIPE_BUF). */
	if (write(fd, &r, sizeof(r)) != (ssize_t)sizeof(r))
		_exit(4);
}

/* Runs in the forked child only: never returns, never touches cmocka. */
static void child_main(int fd, const char *path, uint32_t iter, lim_synchronous sync)
{
	lim_db_options o;
	lim_db *db = NULL;
	char doc[64], json[128];
	int rc;

	make_options(&o, sync, 1);
	rc = lim_db_open(&db, path, &o);
	if (rc != 0) {
		child_send(fd, REC_ERROR, iter, rc);
		_exit(3);
	}
	child_send(fd, REC_OPENED, iter, 0);
	for (int64_t i = 0; i < 1000000; i++) {
		snprintf(doc, sizeof(doc), "k%" PRIu32 "_%" PRId64, iter, i);
		snprintf(json, sizeof(json), "{\"n\": %" PRId64 ", \"iter\": %" PRIu32 "}", i, iter);
		rc = lim_db_put_json(db, "kv", doc, json, strlen(json));
		if (rc != 0) {
			child_send(fd, REC_ERROR, iter, rc);
			_exit(3);
		}
		child_send(fd, REC_DOC, iter, i);
		if (i % 4 == 3) {
			rc = lim_db_incr(db, "kv", "counter", "c", 1);
			if (rc != 0) {
				child_send(fd, REC_ERROR, iter, rc);
				_exit(3);
			}
			child_send(fd, REC_INCR, iter, i);
		}
		if (i % 8 == 5) {
			lim_value va, vb;
			memset(&va, 0, sizeof(va));
			memset(&vb, 0, sizeof(vb));
			va.type = vb.type = LIM_INT;
			va.integer = i;
			vb.integer = -i;
			snprintf(doc, sizeof(doc), "t%" PRIu32 "_%" PRId64, iter, i);
			if ((rc = lim_db_begin(db)) != 0 ||
			    (rc = lim_db_set(db, "kv", doc, "a", &va)) != 0 ||
			    (rc = lim_db_set(db, "kv", doc, "b", &vb)) != 0 ||
			    (rc = lim_db_commit(db)) != 0) {
				child_send(fd, REC_ERROR, iter, rc);
				_exit(3);
			}
			child_send(fd, REC_TXN, iter, i);
		}
	}
	lim_db_free(db);
	_exit(0);
}

/* ------------------------------------------------------------ the parent */

typedef struct {
	int64_t docs;      /* docs k<iter>_0 .. k<iter>_<docs-1> acknowledged */
	int64_t incrs;     /* acknowledged increments */
	int64_t *txns;     /* acknowledged transactions (their i) */
	size_t ntxns, cap;
	int opened;
	int error;         /* REC_ERROR's code, 0 if none */
	int bad_order;     /* a record out of sequence (a test bug or a torn pipe) */
	size_t changes;    /* acknowledged changes in total */
} iter_acks;

static void take_record(iter_acks *a, const ack_rec *r, uint32_t iter)
{
	if (r->iter != iter) {
		a->bad_order = 1;
		return;
	}
	switch (r->kind) {
	case REC_OPENED:
		a->opened = 1;
		break;
	case REC_DOC:
		if (r->value != a->docs)
			a->bad_order = 1;
		a->docs = r->value + 1;
		a->changes++;
		break;
	case REC_INCR:
		a->incrs++;
		a->changes++;
		break;
	case REC_TXN:
		if (a->ntxns == a->cap) {
			a->cap = a->cap ? 2 * a->cap : 64;
			a->txns = realloc(a->txns, a->cap * sizeof(*a->txns));
			if (!a->txns)
				abort();
		}
		a->txns[a->ntxns++] = r->value;
		a->changes++;
		break;
	case REC_ERROR:
		a->error = (int)r->value;
		break;
	default:
		a->bad_order = 1;
		break;
	}
}

/* Read what is in the pipe (waiting at most timeout_ms): 0 at EOF or on an
 * error, 2 if nothing came within the timeout, else 1. */
static int pump(int fd, char *buf, size_t *have, iter_acks *a, uint32_t iter, int timeout_ms)
{
	struct pollfd pfd = { fd, POLLIN, 0 };
	ssize_t got;
	int pr = poll(&pfd, 1, timeout_ms < 0 ? 0 : timeout_ms);

	if (pr < 0)
		return errno == EINTR ? 1 : 0;
	if (pr == 0)
		return 2;
	got = read(fd, buf + *have, 4096 - *have);
	if (got < 0)
		return errno == EINTR || errno == EAGAIN ? 1 : 0;
	if (got == 0)
		return 0;
	*have += (size_t)got;
	while (*have >= sizeof(ack_rec)) {
		ack_rec r;
		memcpy(&r, buf, sizeof(r));
		take_record(a, &r, iter);
		memmove(buf, buf + sizeof(r), *have - sizeof(r));
		*have -= sizeof(r);
	}
	return 1;
}

typedef struct {
	int64_t docs;
	int64_t *txns;
	size_t ntxns;
} iter_result;

static void test_durability__kill_loop(void **state)
{
	const char *env_iters = getenv("LIM_KILL_ITERATIONS");
	const char *env_seed = getenv("LIM_SEED");
	int iterations = env_iters && *env_iters ? atoi(env_iters) : 20;
	uint64_t rs;
	char dir[1024], path[1100], first_id[2 * LIM_ID_BYTES + 1] = "";
	iter_result *results;
	int64_t counter = 0;
	uint64_t seq = 0;
	unsigned long total_acked = 0, killed_before_open = 0;
	int64_t t_start = now_ms();

	(void)state;
	g_seed = env_seed && *env_seed ? strtoull(env_seed, NULL, 10) : 1;
	g_have_seed = 1;
	rs = g_seed * 0x2545F4914F6CDD1Dull + 7;
	make_tempdir(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/store.lim", dir);
	results = calloc((size_t)(iterations > 0 ? iterations : 1), sizeof(*results));
	REQUIRE(results != NULL, "%s", "out of memory");

	for (int it = 0; it < iterations; it++) {
		iter_acks acks;
		int p[2], status = 0;
		pid_t pid;
		char buf[4096];
		size_t have = 0;
		int from_open = rng_next(&rs) % 4 != 0;
		/* From the child's first record: a few to a few tens of ms. From
		 * fork: 0-3 ms, so the kill may land inside lim_db_open. */
		int64_t delay = from_open ? 3 + (int64_t)(rng_next(&rs) % 45) : (int64_t)(rng_next(&rs) % 4);
		lim_synchronous sync = it % 3 == 2 ? LIM_SYNC_FULL : LIM_SYNC_NORMAL;
		int64_t deadline;
		int open_eof = 1;
		lim_db_options o;
		lim_db *db = NULL;
		int rc;

		g_iteration = it;
		memset(&acks, 0, sizeof(acks));
		REQUIRE(pipe(p) == 0, "pipe: %s", strerror(errno));
		fflush(NULL);
		pid = fork();
		REQUIRE(pid >= 0, "fork: %s", strerror(errno));
		if (pid == 0) {
			close(p[0]);
			child_main(p[1], path, (uint32_t)it, sync);
			_exit(0);
		}
		close(p[1]);

		/* Let it run: the delay counts from fork (so some kills land
		 * inside lim_db_open) or from the child's first record. Nothing
		 * here may fail the test while the child lives. */
		deadline = now_ms() + delay;
		if (from_open) {
			int64_t give_up = now_ms() + 60000;
			while (!acks.opened && !acks.error && now_ms() < give_up &&
			       (open_eof = pump(p[0], buf, &have, &acks, (uint32_t)it, 50)))
				;
			deadline = now_ms() + delay;
		}
		while (open_eof && now_ms() < deadline &&
		       pump(p[0], buf, &have, &acks, (uint32_t)it, (int)(deadline - now_ms())))
			;
		kill(pid, SIGKILL);
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		/* Everything still in the pipe was acknowledged before the kill. */
		while (pump(p[0], buf, &have, &acks, (uint32_t)it, 1000) == 1)
			;
		close(p[0]);

		REQUIRE(acks.error == 0, "the child's write failed with %d (%s)", acks.error,
		        lim_error_name(acks.error));
		REQUIRE(!acks.bad_order && have == 0, "%s", "acknowledgement records out of sequence");
		REQUIRE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
		        "the child was not killed by SIGKILL (status 0x%x)", status);
		if (!acks.opened)
			killed_before_open++;
		total_acked += acks.changes;

		/* Reopen and check. */
		make_options(&o, sync, 0);
		rc = lim_db_open(&db, path, &o);
		if (rc != 0 && it == 0 && !acks.opened) {
			/* Killed while creating the store: nothing was acknowledged,
			 * so creating it afresh must work. */
			make_options(&o, sync, 1);
			rc = lim_db_open(&db, path, &o);
		}
		REQUIRE(rc == 0, "reopen after kill returned %d (%s)", rc, lim_error_name(rc));
		rc = lim_db_verify(db);
		REQUIRE(rc == 0, "lim_db_verify after kill returned %d (%s)", rc, lim_error_name(rc));
		{
			char id[2 * LIM_ID_BYTES + 1];
			hex_id(db, id);
			if (first_id[0])
				REQUIRE(strcmp(id, first_id) == 0, "the store's identity changed: %s -> %s",
				        first_id, id);
			else
				memcpy(first_id, id, sizeof(id));
		}

		results[it].docs = acks.docs;
		results[it].txns = acks.txns;
		results[it].ntxns = acks.ntxns;
		for (int j = 0; j <= it; j++) {
			char doc[64], want[32];
			for (int64_t i = 0; i < results[j].docs; i++) {
				snprintf(doc, sizeof(doc), "k%d_%" PRId64, j, i);
				snprintf(want, sizeof(want), "%" PRId64, i);
				require_json(db, doc, "n", want);
			}
			/* The one write that may have been in flight may or may not be
			 * there; the one after it never started. */
			snprintf(doc, sizeof(doc), "k%d_%" PRId64, j, results[j].docs + 1);
			require_json(db, doc, NULL, NULL);
			for (size_t t = 0; t < results[j].ntxns; t++) {
				snprintf(doc, sizeof(doc), "t%d_%" PRId64, j, results[j].txns[t]);
				snprintf(want, sizeof(want), "%" PRId64, results[j].txns[t]);
				require_json(db, doc, "a", want);
				snprintf(want, sizeof(want), "%" PRId64, -results[j].txns[t]);
				require_json(db, doc, "b", want);
			}
			snprintf(doc, sizeof(doc), "parent%d", j);
			if (j < it)
				require_json(db, doc, "ok", "true");
		}
		{
			int64_t c = counter_value(db);
			REQUIRE(c >= counter + acks.incrs && c <= counter + acks.incrs + 1,
			        "counter %" PRId64 " after %" PRId64 " + %" PRId64 " acknowledged increments",
			        c, counter, acks.incrs);
			counter = c;
		}
		{
			uint64_t s = own_seq(db);
			REQUIRE(s >= seq + acks.changes && s <= seq + acks.changes + 1,
			        "own seq %" PRIu64 " after %" PRIu64 " + %zu acknowledged changes",
			        s, seq, acks.changes);
			seq = s;
		}
		/* The recovered store takes new writes (the seq chain continues). */
		{
			char doc[64];
			static const char ok[] = "{\"ok\": true}";
			snprintf(doc, sizeof(doc), "parent%d", it);
			RC_OK(lim_db_put_json(db, "kv", doc, ok, strlen(ok)));
			seq++;
			REQUIRE(own_seq(db) == seq, "%s", "a write after recovery did not take the next seq");
			RC_OK(lim_db_verify(db));
		}
		lim_db_free(db);
	}
	g_iteration = -1;
	print_message("kill loop: %d iterations, %lu acknowledged changes (%lu kills before the "
	              "child's store was open), %" PRId64 " ms\n",
	              iterations, total_acked, killed_before_open, now_ms() - t_start);
	REQUIRE(iterations <= 0 || total_acked > 0, "%s", "no write was ever acknowledged");
	for (int j = 0; j < iterations; j++)
		free(results[j].txns);
	free(results);
	remove_tree(dir);
	g_have_seed = 0;
}

/* One store, reopened alternately with synchronous NORMAL and FULL. */
static void test_durability__synchronous_full(void **state)
{
	static const lim_synchronous modes[] = {
		LIM_SYNC_NORMAL, LIM_SYNC_FULL, LIM_SYNC_NORMAL, LIM_SYNC_FULL
	};
	char dir[1024], path[1100], missing[1100], digest[65] = "", d[65];
	char id0[2 * LIM_ID_BYTES + 1] = "", id[2 * LIM_ID_BYTES + 1];
	lim_db_options o;
	lim_db *db = NULL;
	struct stat st;
	int rc;

	(void)state;
	make_tempdir(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/store.lim", dir);

	for (size_t m = 0; m < sizeof(modes) / sizeof(modes[0]); m++) {
		make_options(&o, modes[m], m == 0);
		RC_OK(lim_db_open(&db, path, &o));
		RC_OK(lim_db_verify(db));
		hex_id(db, id);
		if (m == 0) {
			memcpy(id0, id, sizeof(id));
		} else {
			REQUIRE(strcmp(id, id0) == 0, "%s", "identity changed on reopen");
			RC_OK(lim_db_digest(db, d));
			REQUIRE(strcmp(d, digest) == 0, "digest changed across reopen: %s -> %s", digest, d);
		}
		/* Everything written under earlier modes is there. */
		for (size_t k = 0; k < m; k++)
			for (int i = 0; i < 40; i++) {
				char doc[32], want[32];
				snprintf(doc, sizeof(doc), "m%zu_%d", k, i);
				snprintf(want, sizeof(want), "%d", i);
				require_json(db, doc, "n", want);
			}
		REQUIRE(counter_value(db) == (int64_t)(10 * m), "%s", "counter lost increments");
		/* Write under this mode: single writes, a transaction, a counter. */
		for (int i = 0; i < 30; i++) {
			char doc[32], json[64];
			snprintf(doc, sizeof(doc), "m%zu_%d", m, i);
			snprintf(json, sizeof(json), "{\"n\": %d}", i);
			RC_OK(lim_db_put_json(db, "kv", doc, json, strlen(json)));
		}
		RC_OK(lim_db_begin(db));
		for (int i = 30; i < 40; i++) {
			char doc[32], json[64];
			snprintf(doc, sizeof(doc), "m%zu_%d", m, i);
			snprintf(json, sizeof(json), "{\"n\": %d}", i);
			RC_OK(lim_db_put_json(db, "kv", doc, json, strlen(json)));
		}
		RC_OK(lim_db_commit(db));
		RC_OK(lim_db_incr(db, "kv", "counter", "c", 10));
		RC_OK(lim_db_verify(db));
		RC_OK(lim_db_digest(db, digest));
		lim_db_free(db);
		db = NULL;
	}

	/* A wrong network key is refused and the store still opens after. */
	{
		static const unsigned char other[LIM_NETWORK_KEY_BYTES] = { 1, 2, 3 };
		make_options(&o, LIM_SYNC_FULL, 0);
		o.network_key = other;
		db = (lim_db *)&o; /* must be reset to NULL on failure */
		rc = lim_db_open(&db, path, &o);
		REQUIRE(rc < 0, "%s", "a store opened with another network key");
		REQUIRE(db == NULL, "%s", "failed open left *out set");
		make_options(&o, LIM_SYNC_FULL, 0);
		RC_OK(lim_db_open(&db, path, &o));
		RC_OK(lim_db_digest(db, d));
		REQUIRE(strcmp(d, digest) == 0, "digest changed: %s -> %s", digest, d);
		lim_db_free(db);
		db = NULL;
	}

	/* create = 0 on a missing file fails and creates nothing. */
	snprintf(missing, sizeof(missing), "%s/missing.lim", dir);
	make_options(&o, LIM_SYNC_FULL, 0);
	rc = lim_db_open(&db, missing, &o);
	REQUIRE(rc < 0, "%s", "create=0 opened a missing store");
	REQUIRE(db == NULL, "%s", "failed open left *out set");
	REQUIRE(stat(missing, &st) != 0 && errno == ENOENT, "%s", "create=0 left a file behind");

	remove_tree(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_durability__synchronous_full),
		cmocka_unit_test(test_durability__kill_loop),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
