/*
 * Replication figures (issue 7, items 4, 5 and 6).
 *
 *   bench_sync [--quick] [--changes N] [--reps R] [--only catchup,pack,propagation]
 *              --dir DIR --lim PATH/TO/lim
 *
 * Data: AUTHORS stores (separate identities, one network key) each write
 * N/AUTHORS field changes, in parallel child processes, as changes of 1 op
 * (one lim_db_set per change) and, in a second data set, of 100 ops (one
 * transaction of 100 lim_db_set). Node A's store receives every author's
 * changes with lim_sync_once, so A holds N field changes from AUTHORS authors.
 *
 * Catch-up (4): two real `lim serve` processes: A on its store, then B on a
 * fresh store dialling A. The clock runs from B's spawn until B's version
 * vector (polled every 10 ms through a separate lim_db handle on B's file)
 * equals A's. Peak RSS of each process is its VmHWM just before it is
 * stopped. A digest check confirms B converged to A's state (first rep).
 *
 * Packs (6): lim_db_export of A's whole log to a file, then lim_db_import of
 * that file into a fresh store, each in a child process (its peak RSS).
 *
 * Propagation (5): two stores and two lim_node in this process over
 * loopback; a lim_db_set on A, then lim_node_next_event on B until A's
 * change arrives, then a lim_db_get_field on B that sees the new value.
 *
 * Baselines, measured in the same run: for catch-up and pack import, raw
 * SQLite storing the same pack lines (each line into a log table, each
 * op's value upserted into a kv table, 1000 lines per transaction: the
 * write floor, without verifying, merging or the network); for pack export,
 * raw SQLite reading those lines back to a file; for propagation, half the
 * round trip of a line of the same size through a TCP loopback echo thread.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <sodium.h>
#include <sqlite3.h>
#include "lim.h"
#include "bench_common.h"

#define AUTHORS 4
#define DOCS_PER_MILLION 100000
#define NFIELDS 10

static int quick, keep;
static const char *dir, *lim_bin;
static unsigned char netkey[LIM_NETWORK_KEY_BYTES];

static void check(int rc, const char *what)
{
	if (rc < 0)
		die("%s: %s (%s)", what, lim_error_name(rc), lim_error_last());
}

static lim_db *open_store(const char *path, int fresh)
{
	lim_db_options o;
	lim_db *db;
	lim_db_options_init(&o, LIM_DB_OPTIONS_VERSION);
	o.network_key = netkey;
	if (fresh)
		remove_store(path);
	check(lim_db_open(&db, path, &o), path);
	return db;
}

static uint64_t vv_total(lim_db *db)
{
	lim_buf b = LIM_BUF_INIT;
	uint64_t total = 0;
	check(lim_db_version_vector(&b, db), "version vector");
	for (char *p = b.ptr; p && *p;) {
		char *nl = strchr(p, '\n');
		char *sp = memchr(p, ' ', nl ? (size_t)(nl - p) : strlen(p));
		if (sp)
			total += strtoull(sp + 1, NULL, 10);
		if (!nl)
			break;
		p = nl + 1;
	}
	lim_buf_dispose(&b);
	return total;
}

static double wait_child(pid_t pid, const char *what)
{
	int status;
	struct rusage ru;
	if (wait4(pid, &status, 0, &ru) < 0)
		die("wait %s: %s", what, strerror(errno));
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		die("%s failed (status %d)", what, status);
	return (double)ru.ru_maxrss / 1024.0;
}

/* ------------------------------------------------------------ data */

static void author_path(char *out, size_t cap, const char *set, int k)
{
	snprintf(out, cap, "%s/%s-author%d.db", dir, set, k);
}

/* Child: author k writes `nfields` field changes as changes of `ops` ops. */
static void author_write(const char *path, int k, long nfields, int ops, long ndocs)
{
	lim_db *db = open_store(path, 1);
	char key[32];
	long j = 0;
	while (j < nfields) {
		if (ops > 1)
			check(lim_db_begin(db), "begin");
		for (int o = 0; o < ops && j < nfields; o++, j++) {
			/* Authors overlap on documents so merges have work to do. */
			long d = (j * 7 + (long)k * 13) % ndocs;
			lim_value v;
			memset(&v, 0, sizeof(v));
			v.type = LIM_INT;
			v.integer = j * AUTHORS + k;
			snprintf(key, sizeof(key), "d%07ld", d);
			check(lim_db_set(db, "sync", key, (const char *[]){ "f0", "f1", "f2", "f3", "f4", "f5", "f6", "f7",
			                                                     "f8", "f9" }[(j + k) % NFIELDS], &v),
			      "set");
		}
		if (ops > 1)
			check(lim_db_commit(db), "commit");
	}
	lim_db_free(db);
}

/* Builds DIR/<set>-A.db holding `nfields` field changes from AUTHORS authors.
 * Returns the number of changes (entries in A's log). */
static uint64_t build_source(const char *set, long nfields, int ops)
{
	char path[4096], apath[4096];
	long ndocs = nfields / NFIELDS;
	pid_t pids[AUTHORS];
	double t = now_s();
	if (ndocs < 100)
		ndocs = 100;
	progress("sync: %s: %d authors write %ld field changes in changes of %d op(s)", set, AUTHORS, nfields, ops);
	for (int k = 0; k < AUTHORS; k++) {
		author_path(path, sizeof(path), set, k);
		fflush(NULL);
		if ((pids[k] = fork()) == 0) {
			author_write(path, k, nfields / AUTHORS, ops, ndocs);
			_exit(0);
		}
		if (pids[k] < 0)
			die("fork: %s", strerror(errno));
	}
	for (int k = 0; k < AUTHORS; k++)
		wait_child(pids[k], "an author");
	progress("sync: %s: authors done in %.1f s; gathering them into A", set, now_s() - t);
	t = now_s();
	snprintf(apath, sizeof(apath), "%s/%s-A.db", dir, set);
	lim_db *a = open_store(apath, 1);
	for (int k = 0; k < AUTHORS; k++) {
		lim_node_options no;
		lim_node *node;
		lim_db *au;
		lim_buf addr = LIM_BUF_INIT;
		lim_sync_stats st;
		author_path(path, sizeof(path), set, k);
		au = open_store(path, 0);
		lim_node_options_init(&no, LIM_NODE_OPTIONS_VERSION);
		no.listen = "127.0.0.1:0";
		check(lim_node_start(&node, au, &no), "node start");
		check(lim_node_address(&addr, node), "node address");
		check(lim_sync_once(a, addr.ptr, -1, &st), "sync_once");
		lim_buf_dispose(&addr);
		lim_node_free(node);
		lim_db_free(au);
		remove_store(path);
	}
	uint64_t n = vv_total(a);
	lim_db_free(a);
	progress("sync: %s: A holds %llu changes (%.1f s)", set, (unsigned long long)n, now_s() - t);
	return n;
}

/* ------------------------------------------------------------ raw baselines */

static void raw_exec(sqlite3 *db, const char *sql)
{
	char *err = NULL;
	if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
		die("sqlite: %s: %s", sql, err);
}

typedef struct {
	double store_rate, read_rate; /* pack lines per second */
} raw_rates;

/* Stores every line of the pack at `ppath` the way a replica minimally
 * must (the line in a log, each set op's value in a kv row), then reads
 * the log back out to a file. */
static raw_rates raw_store(const char *ppath)
{
	char rpath[4200], opath[4200];
	sqlite3 *db;
	sqlite3_stmt *log, *kv, *scan;
	raw_rates r = { NAN, NAN };
	size_t cap = 0;
	char *line = NULL;
	ssize_t len;
	long n = 0;
	FILE *f = fopen(ppath, "r"), *o;
	if (!f)
		die("open %s", ppath);
	snprintf(rpath, sizeof(rpath), "%s.raw.db", ppath);
	snprintf(opath, sizeof(opath), "%s.raw.out", ppath);
	remove_store(rpath);
	if (sqlite3_open(rpath, &db) != SQLITE_OK)
		die("sqlite open %s", rpath);
	raw_exec(db, "PRAGMA journal_mode = WAL");
	raw_exec(db, "PRAGMA synchronous = NORMAL");
	raw_exec(db, "CREATE TABLE log(id INTEGER PRIMARY KEY, author BLOB NOT NULL, seq INTEGER NOT NULL,"
	             " body BLOB NOT NULL, UNIQUE(author, seq));"
	             "CREATE TABLE kv(coll TEXT NOT NULL, doc TEXT NOT NULL, path TEXT NOT NULL, value,"
	             " PRIMARY KEY(coll, doc, path)) WITHOUT ROWID");
	if (sqlite3_prepare_v2(db, "INSERT INTO log(author, seq, body) VALUES (?1, ?2, ?3)", -1, &log, NULL) ||
	    sqlite3_prepare_v2(db, "INSERT INTO kv VALUES (?1, ?2, ?3, ?4) ON CONFLICT(coll, doc, path)"
	                           " DO UPDATE SET value = excluded.value", -1, &kv, NULL) ||
	    sqlite3_prepare_v2(db, "SELECT body FROM log ORDER BY id", -1, &scan, NULL))
		die("sqlite prepare: %s", sqlite3_errmsg(db));
	double t = now_s();
	raw_exec(db, "BEGIN");
	while ((len = getline(&line, &cap, f)) > 0) {
		/* lim1 AUTHOR SEQ HLC PREV NOPS (KIND COLL DOC PATH VALUE)... SIG */
		char *tok[1024];
		int nt = 0;
		if (strncmp(line, "lim1 ", 5) != 0)
			continue; /* the pack header */
		sqlite3_bind_text(log, 3, line, (int)len, SQLITE_TRANSIENT);
		for (char *save = NULL, *w = strtok_r(line, " \n", &save); w && nt < 1024; w = strtok_r(NULL, " \n", &save))
			tok[nt++] = w;
		if (nt < 7)
			die("raw baseline: short pack line");
		sqlite3_bind_text(log, 1, tok[1], -1, SQLITE_STATIC);
		sqlite3_bind_int64(log, 2, atoll(tok[2]));
		if (sqlite3_step(log) != SQLITE_DONE)
			die("raw log insert: %s", sqlite3_errmsg(db));
		sqlite3_reset(log);
		for (int i = 6; i + 4 < nt; i += 5) {
			if (strcmp(tok[i], "S") != 0)
				die("raw baseline: the pack holds an op other than a set");
			for (int k = 1; k <= 4; k++)
				sqlite3_bind_text(kv, k, tok[i + k], -1, SQLITE_STATIC);
			if (sqlite3_step(kv) != SQLITE_DONE)
				die("raw kv upsert: %s", sqlite3_errmsg(db));
			sqlite3_reset(kv);
		}
		if (++n % 1000 == 0) {
			raw_exec(db, "COMMIT");
			raw_exec(db, "BEGIN");
		}
	}
	raw_exec(db, "COMMIT");
	r.store_rate = (double)n / (now_s() - t);
	fclose(f);
	free(line);

	t = now_s();
	if (!(o = fopen(opath, "w")))
		die("open %s", opath);
	while (sqlite3_step(scan) == SQLITE_ROW)
		fwrite(sqlite3_column_blob(scan, 0), 1, (size_t)sqlite3_column_bytes(scan, 0), o);
	if (fclose(o) != 0)
		die("write %s", opath);
	r.read_rate = (double)n / (now_s() - t);
	sqlite3_finalize(log);
	sqlite3_finalize(kv);
	sqlite3_finalize(scan);
	sqlite3_close(db);
	remove_store(rpath);
	unlink(opath);
	return r;
}

/* Exports set's A store to DIR/<set>.pack (untimed), for the baselines. */
static void export_untimed(const char *set);

static double median_of(double *v, int n)
{
	return summarize(v, (size_t)n).med;
}

/* Raw store/read rates of set's changes: median of `reps` runs. */
static raw_rates raw_baseline(const char *set, int reps)
{
	char ppath[4096];
	double st[16], rd[16];
	raw_rates r;
	snprintf(ppath, sizeof(ppath), "%s/%s.pack", dir, set);
	export_untimed(set);
	for (int k = 0; k < reps; k++) {
		progress("sync: %s: raw SQLite baseline, rep %d", set, k + 1);
		r = raw_store(ppath);
		st[k] = r.store_rate;
		rd[k] = r.read_rate;
	}
	unlink(ppath);
	r.store_rate = median_of(st, reps);
	r.read_rate = median_of(rd, reps);
	return r;
}

/* ------------------------------------------------------------ processes */

typedef struct {
	pid_t pid;
	char addr[128];
} server;

/* Spawn `lim --db DB serve --listen 127.0.0.1:0 [--peer PEER]`; wait for
 * its "listening on" line. Its log goes to DB.log. */
static void serve_start(server *s, const char *db, const char *peer)
{
	int pfd[2];
	char logpath[4096], line[256];
	FILE *f;
	if (pipe(pfd) < 0)
		die("pipe");
	snprintf(logpath, sizeof(logpath), "%s.log", db);
	fflush(NULL);
	s->pid = fork();
	if (s->pid < 0)
		die("fork: %s", strerror(errno));
	if (s->pid == 0) {
		int lf = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		dup2(pfd[1], 1);
		if (lf >= 0)
			dup2(lf, 2);
		close(pfd[0]);
		close(pfd[1]);
		if (peer)
			execl(lim_bin, "lim", "--db", db, "serve", "--listen", "127.0.0.1:0", "--peer", peer, (char *)NULL);
		else
			execl(lim_bin, "lim", "--db", db, "serve", "--listen", "127.0.0.1:0", (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	f = fdopen(pfd[0], "r");
	s->addr[0] = 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "listening on %127s", s->addr) == 1)
			break;
	fclose(f);
	if (!s->addr[0])
		die("%s serve on %s did not report its address (see %s)", lim_bin, db, logpath);
}

static void serve_stop(server *s)
{
	int status;
	kill(s->pid, SIGTERM);
	waitpid(s->pid, &status, 0);
}

/* ------------------------------------------------------------ 4. catch-up */

typedef struct {
	double secs, rate, first_s, rss_a, rss_b, cpu_a, cpu_b, wait_a, wait_b;
} catchup_result;

static catchup_result catchup_once(const char *set, uint64_t changes, int check_digest)
{
	char apath[4096], bpath[4096];
	server a, b;
	catchup_result r;
	lim_db *pb;
	snprintf(apath, sizeof(apath), "%s/%s-A.db", dir, set);
	snprintf(bpath, sizeof(bpath), "%s/%s-B.db", dir, set);
	lim_db_free(open_store(bpath, 1));

	serve_start(&a, apath, NULL);
	pb = open_store(bpath, 0);
	double t0 = now_s();
	serve_start(&b, bpath, a.addr);
	double deadline = t0 + (quick ? 60 : 1800);
	uint64_t have = 0;
	r.first_s = NAN;
	while ((have = vv_total(pb)) < changes) {
		if (have > 0 && isnan(r.first_s))
			r.first_s = now_s() - t0;
		if (now_s() > deadline)
			die("catch-up %s: B holds %llu of %llu changes after the deadline", set, (unsigned long long)have,
			    (unsigned long long)changes);
		usleep(10000);
	}
	r.secs = now_s() - t0;
	if (isnan(r.first_s)) /* done before the first poll saw a partial log */
		r.first_s = r.secs;
	r.rate = (double)changes / r.secs;
	r.rss_a = proc_hwm_mb(a.pid);
	r.rss_b = proc_hwm_mb(b.pid);
	r.cpu_a = proc_cpu_s(a.pid);
	r.cpu_b = proc_cpu_s(b.pid);
	r.wait_a = proc_runq_wait_s(a.pid);
	r.wait_b = proc_runq_wait_s(b.pid);
	serve_stop(&b);
	serve_stop(&a);
	if (check_digest) {
		char da[65], db[65];
		lim_db *pa = open_store(apath, 0);
		check(lim_db_digest(pa, da), "digest A");
		check(lim_db_digest(pb, db), "digest B");
		lim_db_free(pa);
		if (strcmp(da, db) != 0)
			die("catch-up %s: B's digest differs from A's", set);
	}
	lim_db_free(pb);
	remove_store(bpath);
	return r;
}

static double maxd(double a, double b)
{
	return isnan(a) ? b : isnan(b) ? a : a > b ? a : b;
}

static double peak_rss;

/* `raw` is the raw SQLite store rate of the same changes (changes/s). */
static void bench_catchup(const char *set, uint64_t changes, long nfields, int ops, int reps, double raw)
{
	double rate[16], secs[16], ra = 0, rb = 0, first[16], ca[16], cb[16], wb[16];
	char name[128], note[256];
	progress("sync: %s: catch-up of %llu changes, %d repetition(s)", set, (unsigned long long)changes, reps);
	for (int k = 0; k < reps; k++) {
		catchup_result r = catchup_once(set, changes, k == 0);
		rate[k] = r.rate;
		secs[k] = r.secs;
		first[k] = r.first_s;
		ca[k] = r.cpu_a;
		cb[k] = r.cpu_b;
		wb[k] = 100 * r.wait_b / r.secs;
		ra = maxd(ra, r.rss_a);
		rb = maxd(rb, r.rss_b);
		progress("sync: %s: rep %d: %.2f s, %.0f changes/s, RSS A %.1f MB, B %.1f MB, CPU A %.2f s, B %.2f s,"
		         " waiting for a CPU A %.2f s, B %.2f s", set, k + 1, r.secs, r.rate, r.rss_a, r.rss_b, r.cpu_a,
		         r.cpu_b, r.wait_a, r.wait_b);
	}
	summary s = summarize(rate, (size_t)reps), st = summarize(secs, (size_t)reps), sf = summarize(first, (size_t)reps);
	double fields_rate = s.med * (double)nfields / (double)changes;
	if (ops == 1) {
		snprintf(note, sizeof(note),
		         "%ld field changes in 1-op changes from %d authors, A -> fresh B, two `lim serve` over loopback",
		         nfields, AUTHORS);
		emit("sync_catchup_per_s", s.med, "changes/s", raw, s.med / raw, T_MIN, 100000, 'v', s.spread, note);
		emit("sync_catchup_s", st.med, "s", NAN, NAN, T_NONE, 0, 'v', st.spread, "B spawn to B's version vector = A's");
	} else {
		snprintf(name, sizeof(name), "sync_catchup_%dop_per_s", ops);
		snprintf(note, sizeof(note), "field changes/s: %ld field changes in %llu changes of %d ops from %d authors",
		         nfields, (unsigned long long)changes, ops, AUTHORS);
		emit(name, fields_rate, "fields/s", raw * ops, s.med / raw, T_MIN, 100000, 'v', s.spread, note);
		snprintf(name, sizeof(name), "sync_catchup_%dop_changes_per_s", ops);
		emit(name, s.med, "changes/s", raw, s.med / raw, T_NONE, 0, 'v', s.spread, "signed changes per second");
		snprintf(name, sizeof(name), "sync_catchup_%dop_s", ops);
		emit(name, st.med, "s", NAN, NAN, T_NONE, 0, 'v', st.spread, NULL);
	}
	snprintf(name, sizeof(name), "sync_catchup_%dop_first_change_s", ops);
	emit(name, sf.med, "s", NAN, NAN, T_NONE, 0, 'v', NAN, "B spawn to its first change stored (connect + handshake)");
	snprintf(name, sizeof(name), "sync_catchup_%dop_cpu_a_us", ops);
	emit(name, 1e6 * summarize(ca, (size_t)reps).med / (double)changes, "us/change", NAN, NAN, T_NONE, 0, 'v', NAN,
	     "CPU time (user + system) of A's lim serve per change sent");
	snprintf(name, sizeof(name), "sync_catchup_%dop_cpu_b_us", ops);
	emit(name, 1e6 * summarize(cb, (size_t)reps).med / (double)changes, "us/change", NAN, NAN, T_NONE, 0, 'v', NAN,
	     "CPU time (user + system) of B's lim serve per change applied; 1e6 / this = B's CPU-bound rate");
	snprintf(name, sizeof(name), "sync_catchup_%dop_cpu_wait_b_pct", ops);
	emit(name, summarize(wb, (size_t)reps).med, "%", NAN, NAN, T_NONE, 0, 'v', NAN,
	     "share of the catch-up time B's threads were runnable but waiting for a CPU taken by other work");
	snprintf(name, sizeof(name), "sync_catchup_%dop_rss_a_mb", ops);
	emit(name, ra, "MB", NAN, NAN, T_MAX, 64, 'v', NAN, "VmHWM of A's lim serve (max over repetitions)");
	snprintf(name, sizeof(name), "sync_catchup_%dop_rss_b_mb", ops);
	emit(name, rb, "MB", NAN, NAN, T_MAX, 64, 'v', NAN, "VmHWM of B's lim serve (max over repetitions)");
	peak_rss = maxd(peak_rss, maxd(ra, rb));
}

/* ------------------------------------------------------------ 6. packs */

static int write_file(void *ctx, const char *bytes, size_t len)
{
	return fwrite(bytes, 1, len, (FILE *)ctx) == len ? 0 : -1;
}

static long read_file(void *ctx, char *buf, size_t cap)
{
	size_t n = fread(buf, 1, cap, (FILE *)ctx);
	return n == 0 && ferror((FILE *)ctx) ? -1 : (long)n;
}

static void export_untimed(const char *set)
{
	char apath[4096], ppath[4096];
	snprintf(apath, sizeof(apath), "%s/%s-A.db", dir, set);
	snprintf(ppath, sizeof(ppath), "%s/%s.pack", dir, set);
	lim_db *a = open_store(apath, 0);
	FILE *f = fopen(ppath, "wb");
	if (!f)
		die("open %s", ppath);
	check(lim_db_export(a, NULL, 0, write_file, f), "export");
	if (fclose(f) != 0)
		die("write %s", ppath);
	lim_db_free(a);
}

/* `raw` holds the raw SQLite rates of the same changes. */
static void bench_pack(const char *set, uint64_t changes, int reps, raw_rates raw)
{
	char apath[4096], ppath[4096], cpath[4096], note[256];
	double exp_s[16], imp_s[16], exp_rss = 0, imp_rss = 0;
	long long bytes = 0;
	snprintf(apath, sizeof(apath), "%s/%s-A.db", dir, set);
	snprintf(ppath, sizeof(ppath), "%s/%s.pack", dir, set);
	snprintf(cpath, sizeof(cpath), "%s/%s-C.db", dir, set);
	for (int k = 0; k < reps; k++) {
		pid_t pid;
		double t;
		progress("pack: %s: export + import of %llu changes, rep %d", set, (unsigned long long)changes, k + 1);
		t = now_s();
		fflush(NULL);
		if ((pid = fork()) == 0) {
			lim_db *a = open_store(apath, 0);
			FILE *f = fopen(ppath, "wb");
			if (!f)
				die("open %s", ppath);
			check(lim_db_export(a, NULL, 0, write_file, f), "export");
			if (fclose(f) != 0)
				die("write %s", ppath);
			lim_db_free(a);
			_exit(0);
		}
		exp_rss = maxd(exp_rss, wait_child(pid, "export"));
		exp_s[k] = now_s() - t;
		bytes = file_size(ppath);
		t = now_s();
		fflush(NULL);
		if ((pid = fork()) == 0) {
			lim_db *c = open_store(cpath, 1);
			lim_apply_stats st = { 0, 0 };
			FILE *f = fopen(ppath, "rb");
			if (!f)
				die("open %s", ppath);
			check(lim_db_import(c, read_file, f, &st), "import");
			fclose(f);
			if (st.applied != changes)
				die("import applied %zu of %llu changes", st.applied, (unsigned long long)changes);
			lim_db_free(c);
			_exit(0);
		}
		imp_rss = maxd(imp_rss, wait_child(pid, "import"));
		imp_s[k] = now_s() - t;
		remove_store(cpath);
		unlink(ppath);
	}
	summary se = summarize(exp_s, (size_t)reps), si = summarize(imp_s, (size_t)reps);
	snprintf(note, sizeof(note), "lim_db_export of %llu 1-op changes to a file (peak RSS %.1f MB)",
	         (unsigned long long)changes, exp_rss);
	emit("pack_export_s", se.med, "s", NAN, NAN, T_NONE, 0, 'v', se.spread, note);
	emit("pack_export_per_s", (double)changes / se.med, "changes/s", raw.read_rate,
	     (double)changes / se.med / raw.read_rate, T_NONE, 0, 'v', se.spread,
	     "baseline: raw SQLite reading the same lines from a log table to a file");
	snprintf(note, sizeof(note), "lim_db_import of that pack into a fresh store (peak RSS %.1f MB)", imp_rss);
	emit("pack_import_s", si.med, "s", NAN, NAN, T_NONE, 0, 'v', si.spread, note);
	emit("pack_import_per_s", (double)changes / si.med, "changes/s", raw.store_rate,
	     (double)changes / si.med / raw.store_rate, T_NONE, 0, 'v', si.spread,
	     "baseline: raw SQLite storing the same lines (log + kv upsert, 1000 per txn)");
	emit("pack_bytes_per_change", (double)bytes / (double)changes, "bytes", NAN, NAN, T_NONE, 0, 'v', NAN,
	     "pack size / changes (1-op changes)");
	emit("pack_import_rss_mb", imp_rss, "MB", NAN, NAN, T_NONE, 0, 'v', NAN, "peak RSS of the importing process");
}

/* ------------------------------------------------------------ 5. propagation */

/* The baseline's far end: echoes every byte back until the peer closes. */
static void *echo_thread(void *arg)
{
	int fd = *(int *)arg, one = 1;
	char buf[4096];
	ssize_t n;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		if (write(fd, buf, (size_t)n) != n)
			break;
	close(fd);
	return NULL;
}

typedef struct {
	int fd, peer;
	pthread_t th;
} echo_pair;

static void echo_open(echo_pair *e)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	int ls = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (ls < 0 || bind(ls, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(ls, 1) < 0 ||
	    getsockname(ls, (struct sockaddr *)&sa, &sl) < 0)
		die("loopback baseline: %s", strerror(errno));
	e->fd = socket(AF_INET, SOCK_STREAM, 0);
	if (e->fd < 0 || connect(e->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || (e->peer = accept(ls, NULL, NULL)) < 0)
		die("loopback baseline: %s", strerror(errno));
	close(ls);
	setsockopt(e->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (pthread_create(&e->th, NULL, echo_thread, &e->peer) != 0)
		die("loopback baseline: pthread_create");
}

/* Half the round trip, in ms, of a line of `len` bytes. */
static double echo_half_rtt_ms(echo_pair *e, size_t len)
{
	char out[1024], in[1024];
	size_t got = 0;
	memset(out, 'x', sizeof(out));
	out[len - 1] = '\n';
	uint64_t t0 = now_ns();
	if (write(e->fd, out, len) != (ssize_t)len)
		die("loopback baseline: write: %s", strerror(errno));
	while (got < len) {
		ssize_t n = read(e->fd, in, len - got);
		if (n <= 0)
			die("loopback baseline: read");
		got += (size_t)n;
	}
	return (double)(now_ns() - t0) / 2e6;
}

static void echo_close(echo_pair *e)
{
	close(e->fd);
	pthread_join(e->th, NULL);
}

static void bench_propagation(void)
{
	char apath[4096], bpath[4096], ahex[2 * LIM_ID_BYTES + 1];
	unsigned char aid[LIM_ID_BYTES];
	lim_node_options oa, ob;
	lim_node *na, *nb;
	lim_buf baddr = LIM_BUF_INIT;
	lim_node_event ev;
	echo_pair echo;
	int reps = quick ? 3 : 5, per = quick ? 100 : 400, warm = 50;
	double p50[16], p99[16], b50[16], b99[16];
	static double samples[16 * 1000], base[16 * 1000];
	uint64_t seq = 0;
	const char *peers[1];

	snprintf(apath, sizeof(apath), "%s/prop-A.db", dir);
	snprintf(bpath, sizeof(bpath), "%s/prop-B.db", dir);
	lim_db *a = open_store(apath, 1), *b = open_store(bpath, 1);
	lim_db_replica_id(a, aid);
	for (int i = 0; i < LIM_ID_BYTES; i++)
		sprintf(ahex + 2 * i, "%02x", aid[i]);
	lim_node_options_init(&ob, LIM_NODE_OPTIONS_VERSION);
	ob.listen = "127.0.0.1:0";
	check(lim_node_start(&nb, b, &ob), "node B");
	check(lim_node_address(&baddr, nb), "node B address");
	peers[0] = baddr.ptr;
	lim_node_options_init(&oa, LIM_NODE_OPTIONS_VERSION);
	oa.peers = peers;
	oa.npeers = 1;
	check(lim_node_start(&na, a, &oa), "node A");
	echo_open(&echo);
	progress("propagation: %d repetitions of %d writes on A read on B", reps, per);
	double t_start = now_s(), w_start = proc_runq_wait_s(getpid());

	for (int i = -warm; i < reps * per; i++) {
		lim_value v;
		lim_field *f;
		lim_value got;
		memset(&v, 0, sizeof(v));
		v.type = LIM_INT;
		v.integer = 1000000 + i;
		/* Drain stale events. */
		while (lim_node_next_event(nb, &ev, 0) == 0)
			;
		uint64_t t0 = now_ns();
		check(lim_db_set(a, "prop", "doc", "value", &v), "set on A");
		seq++;
		for (;;) {
			int rc = lim_node_next_event(nb, &ev, 10000);
			if (rc == LIM_EITEROVER)
				die("propagation: no event on B within 10 s (write %d)", i);
			check(rc, "next_event");
			if (strcmp(ev.author, ahex) == 0 && ev.seq >= seq)
				break;
		}
		check(lim_db_get_field(&f, b, "prop", "doc", "value"), "get on B");
		check(lim_field_value(f, &got), "field value");
		if (got.integer != v.integer)
			die("propagation: B reads %lld after the event, expected %lld", (long long)got.integer,
			    (long long)v.integer);
		lim_field_free(f);
		uint64_t t1 = now_ns();
		/* Writes 1-3 ms apart, each pushed on its own; the baseline's
		 * line (the size of a pushed 1-op change) between them. */
		usleep(1000 + (useconds_t)(rnd() % 2000));
		double bl = echo_half_rtt_ms(&echo, 320);
		usleep(1000 + (useconds_t)(rnd() % 2000));
		if (i < 0)
			continue;
		samples[i] = (double)(t1 - t0) / 1e6;
		base[i] = bl;
		if ((i + 1) % per == 0) {
			int k = i / per;
			double *s = samples + k * per, *bs = base + k * per;
			qsort(s, (size_t)per, sizeof(double), cmp_double);
			qsort(bs, (size_t)per, sizeof(double), cmp_double);
			p50[k] = pct_sorted(s, (size_t)per, 50);
			p99[k] = pct_sorted(s, (size_t)per, 99);
			b50[k] = pct_sorted(bs, (size_t)per, 50);
			b99[k] = pct_sorted(bs, (size_t)per, 99);
		}
	}
	summary s50 = summarize(p50, (size_t)reps), s99 = summarize(p99, (size_t)reps);
	double m50 = summarize(b50, (size_t)reps).med, m99 = summarize(b99, (size_t)reps).med;
	emit("propagation_p50_ms", s50.med, "ms", m50, s50.med / m50, T_MAX, 2, 'v', s50.spread,
	     "lim_db_set on A until lim_node_next_event + lim_db_get_field on B (two nodes, one process, loopback);"
	     " baseline: half the round trip of a 320-byte line through a TCP loopback echo thread");
	emit("propagation_p99_ms", s99.med, "ms", m99, s99.med / m99, T_NONE, 0, 'v', s99.spread, NULL);
	emit("propagation_cpu_wait_pct", 100 * (proc_runq_wait_s(getpid()) - w_start) / (now_s() - t_start), "%", NAN, NAN,
	     T_NONE, 0, 'v', NAN, "share of the time the two nodes' threads were runnable but waiting for a CPU");
	echo_close(&echo);
	lim_node_free(na);
	lim_node_free(nb);
	lim_buf_dispose(&baddr);
	lim_db_free(a);
	lim_db_free(b);
	remove_store(apath);
	remove_store(bpath);
}

/* ------------------------------------------------------------ main */

int main(int argc, char **argv)
{
	long nfields = 0;
	int reps = 0, do_catchup = 1, do_pack = 1, do_prop = 1, set1 = 1, set100 = 1;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--quick") == 0)
			quick = 1;
		else if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
			dir = argv[++i];
		else if (strcmp(argv[i], "--lim") == 0 && i + 1 < argc)
			lim_bin = argv[++i];
		else if (strcmp(argv[i], "--sets") == 0 && i + 1 < argc) {
			/* which data sets, by ops per change: "1", "100" or "1,100" */
			char w[64], *save = NULL;
			snprintf(w, sizeof(w), "%s", argv[++i]);
			set1 = set100 = 0;
			for (char *t = strtok_r(w, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
				set1 |= strcmp(t, "1") == 0;
				set100 |= strcmp(t, "100") == 0;
			}
		} else if (strcmp(argv[i], "--keep") == 0)
			keep = 1;
		else if (strcmp(argv[i], "--changes") == 0 && i + 1 < argc)
			nfields = atol(argv[++i]);
		else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc)
			reps = atoi(argv[++i]);
		else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc) {
			const char *w = argv[++i];
			do_catchup = strstr(w, "catchup") != NULL;
			do_pack = strstr(w, "pack") != NULL;
			do_prop = strstr(w, "propagation") != NULL;
		} else
			die("usage: bench_sync [--quick] [--keep] [--sets 1,100] [--changes N] [--reps R] [--only catchup,pack,propagation] "
			    "--dir DIR --lim LIM");
	}
	if (!dir || !lim_bin)
		die("--dir and --lim are required");
	if (sodium_init() < 0)
		die("sodium_init failed");
	signal(SIGPIPE, SIG_IGN);
	if (nfields <= 0)
		nfields = quick ? 20000 : 1000000;
	nfields -= nfields % (AUTHORS * 100);
	if (reps <= 0 || reps > 16)
		reps = 3;
	memset(netkey, 0x42, sizeof(netkey));
	info("sqlite_version", "%s", sqlite3_libversion());
	info("sodium_version", "%s", sodium_version_string());
	info("lim_version", "%s", lim_version());
	info("sync_field_changes", "%ld", nfields);
	info("sync_authors", "%d", AUTHORS);

	if (do_prop)
		bench_propagation();
	if ((do_catchup || do_pack) && set1) {
		uint64_t n1 = build_source("ops1", nfields, 1);
		raw_rates raw = raw_baseline("ops1", quick ? 1 : 2);
		if (do_catchup)
			bench_catchup("ops1", n1, nfields, 1, reps, raw.store_rate);
		if (do_pack)
			bench_pack("ops1", n1, quick ? 1 : (reps < 2 ? reps : 2), raw);
		char p[4096];
		snprintf(p, sizeof(p), "%s/ops1-A.db", dir);
		if (!keep)
			remove_store(p);
	}
	if (do_catchup && set100) {
		uint64_t n100 = build_source("ops100", nfields, 100);
		raw_rates raw = raw_baseline("ops100", quick ? 1 : 2);
		bench_catchup("ops100", n100, nfields, 100, reps, raw.store_rate);
		char p[4096];
		snprintf(p, sizeof(p), "%s/ops100-A.db", dir);
		if (!keep)
			remove_store(p);
	}
	if (do_catchup && (set1 || set100))
		emit("sync_peak_rss_mb", peak_rss, "MB", NAN, NAN, T_MAX, 64, 'v', NAN,
		     "largest VmHWM of either lim serve process in any catch-up run");
	info("bench_sync_peak_rss_mb", "%.1f", self_peak_rss_mb());
	return 0;
}
