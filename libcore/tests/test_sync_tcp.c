/*
 * test_sync_tcp.c — end-to-end sync over real TCP between real processes.
 *
 * Every node is a `lim serve` process (path in $LIM_BIN, set by CMake) on
 * its own SQLite file in a mkdtemp() directory, listening on 127.0.0.1 port
 * 0 (the address is read from its "listening on HOST:PORT" line). The tests
 * look at the stores only through `lim digest`, `lim vv`, `lim get`,
 * `lim verify` and `lim status`, and talk to nodes either with `lim sync`
 * or with a raw protocol client written here (using the internal message
 * and handshake helpers of proto.h and the change sealer of change.h).
 *
 * Nothing is timed: whatever happens asynchronously is polled every 50 ms
 * against a generous deadline (20 s). Every child process and socket is
 * killed/closed in the teardown, whether the test passed or not. A missing
 * $LIM_BIN fails the suite (it is never skipped). The temporary root is
 * removed when every test passed and kept (and named) otherwise.
 */
#define _GNU_SOURCE

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>
#include <sqlite3.h>

#include "lim.h"
#include "change.h"
#include "proto.h"
#include "value.h"

#define DEADLINE_MS 20000 /* for anything asynchronous: generous, never a speed claim */
#define POLL_MS 50

static const char *g_bin;
static char g_root[PATH_MAX];
static char g_dir[PATH_MAX]; /* the current test's directory */
static int g_case;
static int g_test_done; /* set by a test's last line; teardown dumps logs otherwise */

/* ------------------------------------------------------------ small utilities */

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static void hex(char *out, const unsigned char *bin, size_t n)
{
	sodium_bin2hex(out, 2 * n + 1, bin, n);
}

static char *in_dir(char *out, const char *name)
{
	snprintf(out, PATH_MAX, "%.3800s/%.200s", g_dir, name);
	return out;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	size_t cap = 4096, n = 0, got;
	char *buf = malloc(cap + 1);
	assert_non_null(buf);
	if (!f) {
		buf[0] = '\0';
		return buf;
	}
	while ((got = fread(buf + n, 1, cap - n, f)) > 0) {
		n += got;
		if (n == cap) {
			cap *= 2;
			buf = realloc(buf, cap + 1);
			assert_non_null(buf);
		}
	}
	fclose(f);
	buf[n] = '\0';
	return buf;
}

static void chomp(char *s)
{
	size_t n = strlen(s);
	while (n && (s[n - 1] == '\n' || s[n - 1] == '\r'))
		s[--n] = '\0';
}

/* ------------------------------------------------------------ child processes */

#define MAX_KIDS 64
static pid_t g_kids[MAX_KIDS];

static void track_pid(pid_t pid)
{
	for (int i = 0; i < MAX_KIDS; i++)
		if (g_kids[i] == 0) {
			g_kids[i] = pid;
			return;
		}
	fail_msg("too many child processes");
}

static void untrack_pid(pid_t pid)
{
	for (int i = 0; i < MAX_KIDS; i++)
		if (g_kids[i] == pid)
			g_kids[i] = 0;
}

static void kill_all_kids(void)
{
	for (int i = 0; i < MAX_KIDS; i++)
		if (g_kids[i] > 0) {
			kill(g_kids[i], SIGKILL);
			waitpid(g_kids[i], NULL, 0);
			g_kids[i] = 0;
		}
}

static pid_t spawn(const char *const *argv, const char *out, const char *err, int append_err)
{
	pid_t pid;
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int in = open("/dev/null", O_RDONLY);
		int o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		int e = open(err, O_WRONLY | O_CREAT | (append_err ? O_APPEND : O_TRUNC), 0644);
		if (in < 0 || o < 0 || e < 0)
			_exit(126);
		dup2(in, 0);
		dup2(o, 1);
		dup2(e, 2);
		execv(g_bin, (char *const *)argv);
		_exit(127);
	}
	track_pid(pid);
	return pid;
}

/* Wait for a child; 0 and its exit status, or -1 at the deadline. */
static int wait_child(pid_t pid, int64_t deadline, int *status)
{
	for (;;) {
		pid_t r = waitpid(pid, status, WNOHANG);
		if (r == pid) {
			untrack_pid(pid);
			return 0;
		}
		assert_true(r == 0);
		if (mono_ms() >= deadline)
			return -1;
		sleep_ms(5);
	}
}

static int exit_code(int status)
{
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* ------------------------------------------------------------ running `lim` */

typedef struct {
	int status;
	char *out, *err;
	char cmd[1024];
} run;

static void run_free(run *r)
{
	free(r->out);
	free(r->err);
	r->out = r->err = NULL;
}

static int lim_runv(run *r, const char *const *args)
{
	const char *argv[40];
	char out[PATH_MAX], err[PATH_MAX];
	size_t used = 0;
	int n = 0, status;
	pid_t pid;

	memset(r, 0, sizeof(*r));
	argv[n++] = g_bin;
	used += (size_t)snprintf(r->cmd, sizeof(r->cmd), "lim");
	for (; *args; args++) {
		assert_true(n < 39);
		argv[n++] = *args;
		if (used < sizeof(r->cmd))
			used += (size_t)snprintf(r->cmd + used, sizeof(r->cmd) - used, " %s", *args);
	}
	argv[n] = NULL;
	in_dir(out, ".run.out");
	in_dir(err, ".run.err");
	pid = spawn(argv, out, err, 0);
	if (wait_child(pid, mono_ms() + 60000, &status) < 0) {
		kill(pid, SIGKILL);
		fail_msg("`%s` did not finish within 60 s", r->cmd);
	}
	r->status = exit_code(status);
	r->out = slurp(out);
	r->err = slurp(err);
	return r->status;
}

static int lim_run(run *r, ...)
{
	const char *args[40];
	int n = 0;
	va_list ap;
	va_start(ap, r);
	for (const char *a; (a = va_arg(ap, const char *)) != NULL;) {
		assert_true(n < 39);
		args[n++] = a;
	}
	va_end(ap);
	args[n] = NULL;
	return lim_runv(r, args);
}

#define LIM(r, ...) lim_run((r), __VA_ARGS__, (const char *)NULL)

static void expect_ok(run *r, const char *file, int line)
{
	if (r->status != 0)
		fail_msg("%s:%d: `%s` exited %d\n--- stdout:\n%.2000s\n--- stderr:\n%.2000s", file, line, r->cmd,
		         r->status, r->out, r->err);
}

/* Run lim, require exit 0, return its stdout (malloc'd, caller frees). */
#define LIM_OK(...) lim_ok(__FILE__, __LINE__, __VA_ARGS__, (const char *)NULL)
static char *lim_ok(const char *file, int line, ...)
{
	const char *args[40];
	int n = 0;
	run r;
	va_list ap;
	va_start(ap, line);
	for (const char *a; (a = va_arg(ap, const char *)) != NULL;) {
		assert_true(n < 39);
		args[n++] = a;
	}
	va_end(ap);
	args[n] = NULL;
	lim_runv(&r, args);
	expect_ok(&r, file, line);
	free(r.err);
	return r.out;
}

/* ------------------------------------------------------------ stores */

typedef struct {
	char path[PATH_MAX];
	char id[2 * LIM_ID_BYTES + 1];
} store;

static void random_netkey(char out[2 * LIM_NETWORK_KEY_BYTES + 1])
{
	unsigned char k[LIM_NETWORK_KEY_BYTES];
	randombytes_buf(k, sizeof(k));
	hex(out, k, sizeof(k));
}

static void store_new(store *s, const char *name, const char *netkey)
{
	char *out, *p;
	in_dir(s->path, name);
	out = LIM_OK("--db", s->path, "init", "--network-key", netkey);
	p = strstr(out, "replica_id ");
	assert_non_null(p);
	memcpy(s->id, p + 11, 2 * LIM_ID_BYTES);
	s->id[2 * LIM_ID_BYTES] = '\0';
	assert_int_equal(strspn(s->id, "0123456789abcdef"), 2 * LIM_ID_BYTES);
	assert_non_null(strstr(out, netkey));
	free(out);
}

static void put(const store *s, const char *coll, const char *doc, const char *json)
{
	free(LIM_OK("--db", s->path, "put", coll, doc, json));
}

static void digest_of(const char *db, char out[65])
{
	char *d = LIM_OK("--db", db, "digest");
	chomp(d);
	assert_int_equal(strlen(d), 64);
	strcpy(out, d);
	free(d);
}

static char *vv_of(const char *db)
{
	return LIM_OK("--db", db, "vv");
}

static void expect_verify_ok(const char *db)
{
	char *out = LIM_OK("--db", db, "verify");
	assert_string_equal(out, "ok\n");
	free(out);
}

/* `lim get`: the exit status, and stdout in *out (caller frees) when 0. */
static int get(const char *db, const char *coll, const char *doc, const char *field, char **out)
{
	run r;
	int st = field ? LIM(&r, "--db", db, "get", coll, doc, field) : LIM(&r, "--db", db, "get", coll, doc);
	if (out) {
		chomp(r.out);
		*out = r.out;
		r.out = NULL;
	}
	run_free(&r);
	return st;
}

/*
 * Poll until every store holds the same digest and the same version
 * vector. Every store in these tests writes something of its own, so equal
 * vectors mean every store holds every write.
 */
static void wait_converged(const char *const *dbs, int n, const char *what)
{
	int64_t deadline = mono_ms() + DEADLINE_MS;
	char d[8][65];
	char *v[8] = { 0 };
	assert_true(n <= 8);
	for (;;) {
		int same = 1;
		for (int i = 0; i < n; i++) {
			free(v[i]);
			digest_of(dbs[i], d[i]);
			v[i] = vv_of(dbs[i]);
			if (i && (strcmp(d[i], d[0]) != 0 || strcmp(v[i], v[0]) != 0))
				same = 0;
		}
		if (same) {
			for (int i = 0; i < n; i++)
				free(v[i]);
			return;
		}
		if (mono_ms() >= deadline)
			break;
		sleep_ms(POLL_MS);
	}
	for (int i = 0; i < n; i++)
		print_error("%s: %s\n  digest %s\n  vv:\n%s", what, dbs[i], d[i], v[i]);
	for (int i = 0; i < n; i++)
		free(v[i]);
	fail_msg("%s: the stores did not converge within %d ms", what, DEADLINE_MS);
}

/* ------------------------------------------------------------ nodes (`lim serve`) */

#define MAX_NODE_ARGS 16
typedef struct {
	const store *st;
	char args[MAX_NODE_ARGS][160];
	int nargs;
	pid_t pid;
	char addr[64];
	char log[PATH_MAX];
	char out[PATH_MAX];
} node;

#define MAX_NODES 8
static node *g_nodes[MAX_NODES];

static void node_init(node *n, const store *st, ...)
{
	va_list ap;
	memset(n, 0, sizeof(*n));
	n->st = st;
	va_start(ap, st);
	for (const char *a; (a = va_arg(ap, const char *)) != NULL;) {
		assert_true(n->nargs < MAX_NODE_ARGS);
		snprintf(n->args[n->nargs++], sizeof(n->args[0]), "%s", a);
	}
	va_end(ap);
	assert_true(strlen(st->path) + 11 < sizeof(n->log));
	snprintf(n->log, sizeof(n->log), "%.4000s.serve.log", st->path);
	snprintf(n->out, sizeof(n->out), "%.4000s.serve.out", st->path);
	for (int i = 0; i < MAX_NODES; i++)
		if (!g_nodes[i]) {
			g_nodes[i] = n;
			return;
		}
	fail_msg("too many nodes");
}

#define NODE_INIT(n, st, ...) node_init((n), (st), __VA_ARGS__, (const char *)NULL)

static void node_start(node *n)
{
	const char *argv[MAX_NODE_ARGS + 8];
	int k = 0, status;
	int64_t deadline = mono_ms() + DEADLINE_MS;

	assert_int_equal(n->pid, 0);
	argv[k++] = g_bin;
	argv[k++] = "--db";
	argv[k++] = n->st->path;
	argv[k++] = "serve";
	for (int i = 0; i < n->nargs; i++)
		argv[k++] = n->args[i];
	argv[k] = NULL;
	n->pid = spawn(argv, n->out, n->log, 1);
	for (;;) {
		char *out = slurp(n->out);
		char *nl = strchr(out, '\n');
		if (nl) {
			*nl = '\0';
			if (strncmp(out, "listening on ", 13) != 0) {
				print_error("lim serve printed '%.200s'\n", out);
				free(out);
				fail_msg("lim serve did not print 'listening on HOST:PORT'");
			}
			snprintf(n->addr, sizeof(n->addr), "%s", out + 13);
			assert_true(strncmp(n->addr, "127.0.0.1:", 10) == 0);
			assert_true(atoi(n->addr + 10) > 0);
			free(out);
			return;
		}
		free(out);
		if (wait_child(n->pid, mono_ms(), &status) == 0) {
			char *log = slurp(n->log);
			n->pid = 0;
			print_error("--- log:\n%.3000s\n", log);
			free(log);
			fail_msg("lim serve exited %d before listening", exit_code(status));
		}
		if (mono_ms() >= deadline)
			fail_msg("lim serve printed no address within %d ms", DEADLINE_MS);
		sleep_ms(10);
	}
}

/* SIGTERM: the node must exit 0. */
static void node_stop(node *n)
{
	int status;
	assert_true(n->pid > 0);
	assert_int_equal(kill(n->pid, SIGTERM), 0);
	if (wait_child(n->pid, mono_ms() + DEADLINE_MS, &status) < 0)
		fail_msg("lim serve (pid %d) did not exit within %d ms of SIGTERM", (int)n->pid, DEADLINE_MS);
	n->pid = 0;
	if (exit_code(status) != 0) {
		char *log = slurp(n->log);
		print_error("--- log:\n%.3000s\n", log);
		free(log);
		fail_msg("lim serve exited %d on SIGTERM (wanted 0)", exit_code(status));
	}
}

static void dump_node_logs(void)
{
	for (int i = 0; i < MAX_NODES; i++)
		if (g_nodes[i]) {
			char *log = slurp(g_nodes[i]->log);
			size_t n = strlen(log);
			print_error("--- log of %s (last 4000 bytes):\n%s\n", g_nodes[i]->log, n > 4000 ? log + n - 4000 : log);
			free(log);
		}
}

/* ------------------------------------------------------------ status JSON (via SQLite's JSON functions) */

/* One text value from `sql` over ?1 = json, ?2 = arg (NULL if no row or SQL NULL). */
static char *json_query(const char *json, const char *sql, const char *arg)
{
	sqlite3 *db;
	sqlite3_stmt *q;
	char *res = NULL;
	assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &q, NULL), SQLITE_OK);
	sqlite3_bind_text(q, 1, json, -1, SQLITE_STATIC);
	if (arg)
		sqlite3_bind_text(q, 2, arg, -1, SQLITE_STATIC);
	if (sqlite3_step(q) == SQLITE_ROW && sqlite3_column_type(q, 0) != SQLITE_NULL)
		res = strdup((const char *)sqlite3_column_text(q, 0));
	sqlite3_finalize(q);
	sqlite3_close(db);
	return res;
}

static int json_int(const char *json, const char *sql, const char *arg)
{
	char *s = json_query(json, sql, arg);
	int v = s ? atoi(s) : -1;
	free(s);
	return v;
}

static const char SQL_CONNECTED_WITH_ID[] =
	"SELECT count(*) FROM json_each(?1, '$.peers') "
	"WHERE json_extract(value, '$.id') = ?2 AND json_extract(value, '$.connected') = 1";
static const char SQL_ANY_WITH_ID[] =
	"SELECT count(*) FROM json_each(?1, '$.peers') WHERE json_extract(value, '$.id') = ?2";
static const char SQL_DIRECTION_OF[] =
	"SELECT json_extract(value, '$.direction') FROM json_each(?1, '$.peers') "
	"WHERE json_extract(value, '$.id') = ?2 AND json_extract(value, '$.connected') = 1";
static const char SQL_ADDRESS_OF[] =
	"SELECT json_extract(value, '$.address') FROM json_each(?1, '$.peers') "
	"WHERE json_extract(value, '$.id') = ?2 AND json_extract(value, '$.connected') = 1";

/* `lim --db probe status --node addr`; checks it is a JSON object and returns it. */
static char *status_of(const store *probe, const char *addr)
{
	char *out = LIM_OK("--db", probe->path, "status", "--node", addr);
	chomp(out);
	if (json_int(out, "SELECT json_valid(?1) AND json_type(?1) = 'object'", NULL) != 1) {
		print_error("lim status printed: %.2000s\n", out);
		free(out);
		fail_msg("lim status printed something that is not a JSON object");
	}
	return out;
}

/* Poll the node's status until a connected peer with `id` shows up. */
static char *wait_status_peer(const store *probe, const char *addr, const char *id)
{
	int64_t deadline = mono_ms() + DEADLINE_MS;
	for (;;) {
		char *js = status_of(probe, addr);
		if (json_int(js, SQL_CONNECTED_WITH_ID, id) == 1)
			return js;
		if (mono_ms() >= deadline) {
			print_error("last status: %.3000s\n", js);
			free(js);
			fail_msg("node %s never listed peer %s as connected", addr, id);
		}
		free(js);
		sleep_ms(POLL_MS);
	}
}

/* ------------------------------------------------------------ raw protocol client */

#define MAX_FDS 64
static int g_fds[MAX_FDS];

typedef struct {
	int fd;
	char *buf;
	size_t len, cap, consumed; /* buf[0..consumed) is the line handed out last */
	unsigned char pk[LIM_ID_BYTES], sk[LIM_SECRET_KEY_BYTES];
	unsigned char netkey[LIM_NETWORK_KEY_BYTES];
	char idhex[2 * LIM_ID_BYTES + 1];
	char hello[256];        /* our HELLO line, without LF */
	char server_hello[256]; /* the node's HELLO line, without LF */
	unsigned char server_id[LIM_ID_BYTES];
	unsigned char transcript[LIM_HASH_BYTES];
	char auth[256]; /* our AUTH line, without LF */
} raw;

static void raw_identity(raw *r, const char *netkey_hex)
{
	memset(r, 0, sizeof(*r));
	r->fd = -1;
	crypto_sign_keypair(r->pk, r->sk);
	hex(r->idhex, r->pk, LIM_ID_BYTES);
	assert_int_equal(sodium_hex2bin(r->netkey, sizeof(r->netkey), netkey_hex, strlen(netkey_hex), NULL, NULL, NULL), 0);
}

/* Raw clients of a test live here (not on the test's stack), so the
 * teardown can release them after a failed assertion. */
#define MAX_RAWS 4
static raw g_raws[MAX_RAWS];
static int g_nraws;

static raw *raw_new(const char *netkey_hex)
{
	assert_true(g_nraws < MAX_RAWS);
	raw *r = &g_raws[g_nraws++];
	raw_identity(r, netkey_hex);
	return r;
}

static void raw_connect(raw *r, const char *addr)
{
	struct sockaddr_in sa;
	const char *colon = strrchr(addr, ':');
	char host[64];
	assert_non_null(colon);
	snprintf(host, sizeof(host), "%.*s", (int)(colon - addr), addr);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)atoi(colon + 1));
	assert_int_equal(inet_pton(AF_INET, host, &sa.sin_addr), 1);
	r->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(r->fd >= 0);
	for (int i = 0; i < MAX_FDS; i++)
		if (g_fds[i] < 0) {
			g_fds[i] = r->fd;
			break;
		}
	if (connect(r->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
		fail_msg("connect %s: %s", addr, strerror(errno));
	/* Lines go out as they are written, as the node's own do (no Nagle
	 * wait for the previous line's delayed ACK). */
	int one = 1;
	assert_int_equal(setsockopt(r->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)), 0);
	r->len = r->consumed = 0;
}

static void raw_close(raw *r)
{
	if (r->fd < 0)
		return;
	for (int i = 0; i < MAX_FDS; i++)
		if (g_fds[i] == r->fd)
			g_fds[i] = -1;
	close(r->fd);
	r->fd = -1;
}

static void raw_dispose(raw *r)
{
	raw_close(r);
	free(r->buf);
	r->buf = NULL;
	r->cap = r->len = r->consumed = 0;
}

/* Send everything; 0 or -errno (the node may already have closed). */
static int raw_send(raw *r, const void *p, size_t n)
{
	const char *c = p;
	while (n) {
		ssize_t w = send(r->fd, c, n, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

static void raw_sendf(raw *r, const char *fmt, ...) LIM_PRINTF(2, 3);
static void raw_sendf(raw *r, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	assert_true(n > 0 && (size_t)n < sizeof(line));
	int rc = raw_send(r, line, (size_t)n);
	if (rc < 0)
		fail_msg("send '%.60s': %s", line, strerror(-rc));
}

enum { LINE_OK = 1, LINE_EOF = 0, LINE_TIMEOUT = -1, LINE_ERROR = -2 };

/*
 * Next line from the node (LF replaced by NUL; valid until the next call).
 * Does not use cmocka asserts, so the keeper thread can call it.
 */
static int raw_line(raw *r, char **line, size_t *n, int timeout_ms)
{
	int64_t deadline = mono_ms() + timeout_ms;
	if (r->consumed) {
		memmove(r->buf, r->buf + r->consumed, r->len - r->consumed);
		r->len -= r->consumed;
		r->consumed = 0;
	}
	for (;;) {
		char *nl = r->len ? memchr(r->buf, '\n', r->len) : NULL;
		if (nl) {
			*nl = '\0';
			*line = r->buf;
			*n = (size_t)(nl - r->buf);
			r->consumed = *n + 1;
			return LINE_OK;
		}
		int64_t left = deadline - mono_ms();
		if (left <= 0)
			return LINE_TIMEOUT;
		struct pollfd p = { r->fd, POLLIN, 0 };
		int pr = poll(&p, 1, (int)left);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr < 0)
			return LINE_ERROR;
		if (pr == 0)
			continue;
		if (r->cap - r->len < 65536) {
			size_t cap = r->cap ? 2 * r->cap : 131072;
			char *g = realloc(r->buf, cap);
			if (!g)
				return LINE_ERROR;
			r->buf = g;
			r->cap = cap;
		}
		ssize_t got = recv(r->fd, r->buf + r->len, r->cap - r->len, 0);
		if (got == 0)
			return LINE_EOF;
		if (got < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return LINE_ERROR;
		}
		r->len += (size_t)got;
	}
}

/* Next line, which must come before the deadline. */
static char *raw_need_line(raw *r, size_t *n)
{
	char *line;
	size_t len;
	int rc = raw_line(r, &line, &len, DEADLINE_MS);
	if (rc == LINE_EOF)
		fail_msg("the node closed the connection unexpectedly");
	if (rc == LINE_TIMEOUT)
		fail_msg("no line from the node within %d ms", DEADLINE_MS);
	if (rc != LINE_OK)
		fail_msg("reading from the node: %s", strerror(errno));
	if (n)
		*n = len;
	return line;
}

/* Next message other than PING (answered) / PONG, parsed. */
static char *raw_msg(raw *r, lim_msg *m)
{
	for (;;) {
		size_t n;
		int perr;
		char *line = raw_need_line(r, &n);
		if (lim_msg__parse(m, line, n, &perr) != 0)
			fail_msg("the node sent a malformed line (ERR %d): %.200s", perr, line);
		if (m->type == LIM_MSG_PING) {
			raw_sendf(r, "PONG %.*s\n", (int)m->arg.n, m->arg.p);
			continue;
		}
		if (m->type == LIM_MSG_PONG)
			continue;
		return line;
	}
}

static void raw_send_hello_v(raw *r, unsigned version)
{
	unsigned char nonce[LIM_NONCE_BYTES];
	char nh[2 * LIM_NONCE_BYTES + 1];
	randombytes_buf(nonce, sizeof(nonce));
	if (version == LIM_PROTOCOL_VERSION) {
		lim_sb sb = LIM_SB_INIT;
		lim_msg__hello(&sb, r->pk, nonce);
		assert_true(sb.len > 1 && sb.len < sizeof(r->hello) && sb.ptr[sb.len - 1] == '\n');
		snprintf(r->hello, sizeof(r->hello), "%.*s", (int)sb.len - 1, sb.ptr);
		lim_sb__free(&sb);
	} else {
		hex(nh, nonce, sizeof(nonce));
		snprintf(r->hello, sizeof(r->hello), "HELLO %u %s %s", version, r->idhex, nh);
	}
	raw_sendf(r, "%s\n", r->hello);
}

static void raw_send_hello(raw *r)
{
	raw_send_hello_v(r, LIM_PROTOCOL_VERSION);
}

/* Read the node's HELLO (its first line) and compute the transcript. */
static void raw_read_server_hello(raw *r)
{
	lim_msg m;
	char *line = raw_msg(r, &m);
	if (m.type != LIM_MSG_HELLO)
		fail_msg("the node's first line is not HELLO: %.200s", line);
	assert_int_equal(m.version, LIM_PROTOCOL_VERSION);
	memcpy(r->server_id, m.id, LIM_ID_BYTES);
	snprintf(r->server_hello, sizeof(r->server_hello), "%s", line);
	lim_handshake__hash(r->transcript, r->hello, strlen(r->hello), r->server_hello, strlen(r->server_hello));
}

enum { AUTH_GOOD, AUTH_BAD_SIG, AUTH_WRONG_NETWORK };

static void raw_send_auth(raw *r, int how)
{
	unsigned char sig[64], proof[LIM_HASH_BYTES], other[LIM_NETWORK_KEY_BYTES];
	lim_sb sb = LIM_SB_INIT;
	memcpy(other, r->netkey, sizeof(other));
	if (how == AUTH_WRONG_NETWORK)
		other[0] ^= 0x01;
	lim_handshake__prove(sig, proof, 'C', r->transcript, r->sk, other);
	if (how == AUTH_BAD_SIG)
		sig[5] ^= 0x01;
	lim_msg__auth(&sb, sig, proof);
	assert_true(sb.len > 1 && sb.len < sizeof(r->auth));
	snprintf(r->auth, sizeof(r->auth), "%.*s", (int)sb.len - 1, sb.ptr);
	lim_sb__free(&sb);
	raw_sendf(r, "%s\n", r->auth);
}

/* The node's AUTH must prove its id and our network. */
static void raw_check_server_auth(raw *r)
{
	lim_msg m;
	char *line = raw_msg(r, &m);
	if (m.type != LIM_MSG_AUTH)
		fail_msg("expected the node's AUTH, got: %.200s", line);
	assert_int_equal(lim_handshake__check_sig(m.sig, 'S', r->transcript, r->server_id), 0);
	assert_int_equal(lim_handshake__check_proof(m.proof, 'S', r->transcript, r->netkey), 0);
}

/* After our VV: read CH/END (ACKed) up to SYNCED; returns the CH count.
 * The first `max` CH payloads (the node's changes, byte for byte) are
 * copied to keep[] if keep is not NULL. */
static int raw_drain_collect(raw *r, lim_sb *keep, int max)
{
	int nch = 0;
	for (;;) {
		lim_msg m;
		char *line = raw_msg(r, &m);
		if (m.type == LIM_MSG_CH && keep && nch < max) {
			lim_sb__clear(&keep[nch]);
			lim_sb__put(&keep[nch], m.arg.p, m.arg.n);
			lim_sb__putc(&keep[nch], '\0');
			keep[nch].len--; /* NUL-terminated for printf, not counted */
		}
		if (m.type == LIM_MSG_CH)
			nch++;
		else if (m.type == LIM_MSG_END)
			raw_sendf(r, "ACK %llu\n", (unsigned long long)m.count);
		else if (m.type == LIM_MSG_SYNCED)
			return nch;
		else
			fail_msg("unexpected line from the node during catch-up: %.200s", line);
	}
}

/* A complete good handshake as a dialing client, up to the node's SYNCED;
 * the node's catch-up changes go to keep[] as in raw_drain_collect. */
static int raw_handshake_collect(raw *r, const char *addr, lim_sb *keep, int max)
{
	lim_msg m;
	char *line;
	raw_connect(r, addr);
	raw_send_hello(r);
	raw_read_server_hello(r);
	raw_send_auth(r, AUTH_GOOD);
	raw_check_server_auth(r);
	line = raw_msg(r, &m);
	if (m.type != LIM_MSG_VV)
		fail_msg("expected the node's VV after the handshake, got: %.200s", line);
	raw_sendf(r, "VV\n");
	return raw_drain_collect(r, keep, max);
}

/* A complete good handshake as a dialing client, up to the node's SYNCED. */
static void raw_handshake(raw *r, const char *addr)
{
	raw_handshake_collect(r, addr, NULL, 0);
}

/*
 * The node must answer with ERR `code` (or `alt`, if nonzero), whose text
 * starts with `text` if that is not NULL, and close. Lines it sent before
 * (HELLO, AUTH, VV, ...) are skipped.
 */
static void raw_expect_err_text(raw *r, int code, int alt, const char *text)
{
	for (;;) {
		char *line;
		size_t n;
		int rc = raw_line(r, &line, &n, DEADLINE_MS);
		if (rc == LINE_EOF)
			fail_msg("the node closed the connection without ERR %d", code);
		if (rc == LINE_TIMEOUT)
			fail_msg("no ERR %d from the node within %d ms", code, DEADLINE_MS);
		if (rc != LINE_OK)
			fail_msg("reading the node's ERR %d: %s", code, strerror(errno));
		if (strncmp(line, "ACK ", 4) == 0)
			fail_msg("wanted ERR %d, but the node accepted the batch: %.200s", code, line);
		if (strncmp(line, "ERR ", 4) != 0)
			continue; /* HELLO, AUTH, VV, catch-up, PING sent before the bad line */
		lim_msg m;
		int perr;
		if (lim_msg__parse(&m, line, n, &perr) != 0 || m.type != LIM_MSG_ERR)
			fail_msg("malformed ERR line: %.200s", line);
		if ((int)m.count != code && !(alt && (int)m.count == alt))
			fail_msg("wanted ERR %d%s, the node sent: %.300s", code, alt ? " (or the alternative)" : "", line);
		assert_true(m.arg.n > 0); /* the text names what was wrong */
		if (text && (m.arg.n < strlen(text) || memcmp(m.arg.p, text, strlen(text)) != 0))
			fail_msg("wanted ERR %d %s..., the node sent: %.300s", code, text, line);
		break;
	}
	/* ... then close: nothing but EOF follows. */
	char *line;
	size_t n;
	int rc = raw_line(r, &line, &n, DEADLINE_MS);
	if (rc == LINE_OK)
		fail_msg("the node sent more after ERR: %.200s", line);
	if (rc == LINE_TIMEOUT)
		fail_msg("the node did not close the connection within %d ms after ERR", DEADLINE_MS);
	if (rc != LINE_OK && rc != LINE_EOF)
		fail_msg("the connection was reset instead of closed after ERR: %s", strerror(errno));
	raw_close(r);
}

static void raw_expect_err(raw *r, int code, int alt)
{
	raw_expect_err_text(r, code, alt, NULL);
}

enum { REPLY_ACK = 1, REPLY_ERR, REPLY_EOF };

/*
 * The node's answer to what we sent: ACK (its count in *n), ERR (its code
 * in *n, the whole line in why) or a close without either. Lines the node
 * may send meanwhile are passed over: PING (answered), PONG, SYNCED, STATE,
 * its VV (sent again about 1 s after a batch with skipped changes,
 * PROTOCOL.md 9.2) and CH/END of anything it pushes (END acknowledged).
 */
static int raw_reply(raw *r, uint64_t *n, char *why, size_t whycap)
{
	for (;;) {
		char *line, reply[128];
		size_t len;
		lim_msg m;
		int perr, rc = raw_line(r, &line, &len, DEADLINE_MS);
		if (rc == LINE_EOF || (rc == LINE_ERROR && errno == ECONNRESET))
			return REPLY_EOF;
		if (rc == LINE_TIMEOUT)
			fail_msg("no ACK or ERR from the node within %d ms", DEADLINE_MS);
		if (rc != LINE_OK)
			fail_msg("reading from the node: %s", strerror(errno));
		if (lim_msg__parse(&m, line, len, &perr) != 0)
			fail_msg("the node sent a malformed line (ERR %d): %.200s", perr, line);
		switch (m.type) {
		case LIM_MSG_ACK:
			*n = m.count;
			return REPLY_ACK;
		case LIM_MSG_ERR:
			*n = m.count;
			if (why)
				snprintf(why, whycap, "%s", line);
			return REPLY_ERR;
		case LIM_MSG_PING:
			snprintf(reply, sizeof(reply), "PONG %.*s\n", (int)m.arg.n, m.arg.p);
			(void)raw_send(r, reply, strlen(reply)); /* a close shows up on the next read */
			break;
		case LIM_MSG_END:
			snprintf(reply, sizeof(reply), "ACK %llu\n", (unsigned long long)m.count);
			(void)raw_send(r, reply, strlen(reply));
			break;
		default:
			break;
		}
	}
}

/* The node must acknowledge a batch of n changes. */
static void raw_expect_ack(raw *r, uint64_t want)
{
	uint64_t n;
	char why[512];
	int k = raw_reply(r, &n, why, sizeof(why));
	if (k == REPLY_ERR)
		fail_msg("wanted ACK %llu, the node sent: %.300s", (unsigned long long)want, why);
	if (k == REPLY_EOF)
		fail_msg("wanted ACK %llu, the node closed the connection", (unsigned long long)want);
	if (n != want)
		fail_msg("wanted ACK %llu, got ACK %llu", (unsigned long long)want, (unsigned long long)n);
}

/* This connection is still open and served: a PING gets its PONG, and
 * nothing else (no ERR, no close) comes first. Batches the node pushes
 * meanwhile are acknowledged. */
static void raw_expect_pong(raw *r)
{
	static int counter;
	char token[32];
	snprintf(token, sizeof(token), "same%d", ++counter);
	raw_sendf(r, "PING %s\n", token);
	for (;;) {
		char *line;
		size_t len;
		lim_msg m;
		int perr, rc = raw_line(r, &line, &len, DEADLINE_MS);
		if (rc == LINE_EOF)
			fail_msg("the node closed this connection; wanted PONG %s", token);
		if (rc != LINE_OK)
			fail_msg("no PONG %s from the node within %d ms (%s)", token, DEADLINE_MS,
			         rc == LINE_TIMEOUT ? "timeout" : strerror(errno));
		if (lim_msg__parse(&m, line, len, &perr) != 0)
			fail_msg("the node sent a malformed line (ERR %d): %.200s", perr, line);
		if (m.type == LIM_MSG_PONG && m.arg.n == strlen(token) && memcmp(m.arg.p, token, m.arg.n) == 0)
			return;
		if (m.type == LIM_MSG_ERR || m.type == LIM_MSG_ACK)
			fail_msg("wanted PONG %s, the node sent: %.300s", token, line);
		if (m.type == LIM_MSG_PING)
			raw_sendf(r, "PONG %.*s\n", (int)m.arg.n, m.arg.p);
		else if (m.type == LIM_MSG_END)
			raw_sendf(r, "ACK %llu\n", (unsigned long long)m.count);
	}
}

/* Read until the node closes (after an ERR it sent). */
static void raw_expect_close(raw *r)
{
	for (;;) {
		char *line;
		size_t len;
		int rc = raw_line(r, &line, &len, DEADLINE_MS);
		if (rc == LINE_EOF || (rc == LINE_ERROR && errno == ECONNRESET))
			break;
		if (rc == LINE_OK)
			fail_msg("the node sent more after ERR: %.200s", line);
		fail_msg("the node did not close the connection within %d ms after ERR", DEADLINE_MS);
	}
	raw_close(r);
}

/* Send "CH <change>\n" lines for every change, then "END n\n", at once. */
static void raw_send_batch(raw *r, const lim_sb *const *chs, int n)
{
	lim_sb b = LIM_SB_INIT;
	for (int i = 0; i < n; i++) {
		lim_sb__put(&b, "CH ", 3);
		lim_sb__put(&b, chs[i]->ptr, chs[i]->len);
		lim_sb__putc(&b, '\n');
	}
	lim_sb__printf(&b, "END %d\n", n);
	assert_int_equal(lim_sb__check(&b), 0);
	int rc = raw_send(r, b.ptr, b.len);
	lim_sb__free(&b);
	if (rc < 0)
		fail_msg("sending a batch: %s", strerror(-rc));
}

/* ------------------------------------------------------------ changes built by the test */

static uint64_t hlc_now(void)
{
	return (uint64_t)wall_ms() << 16;
}

/* Seal a one-op change "S coll doc field s<value>" by r's identity; `link`
 * gets its link, the prev of the next change. */
static void make_change_as(lim_sb *out, unsigned char link[LIM_HASH_BYTES], const unsigned char author[LIM_ID_BYTES],
                           const unsigned char sk[LIM_SECRET_KEY_BYTES], uint64_t seq,
                           const unsigned char prev[LIM_HASH_BYTES], uint64_t hlc, const char *coll, const char *doc,
                           const char *field, const char *value);

static void make_change(lim_sb *out, unsigned char link[LIM_HASH_BYTES], const raw *r, uint64_t seq,
                        const unsigned char prev[LIM_HASH_BYTES], uint64_t hlc, const char *coll, const char *doc,
                        const char *field, const char *value)
{
	make_change_as(out, link, r->pk, r->sk, seq, prev, hlc, coll, doc, field, value);
}

/* The same, with who the change names as its author and whose secret key
 * signs it given apart (a forger's change: A's body, B's signature). */
static void make_change_as(lim_sb *out, unsigned char link[LIM_HASH_BYTES], const unsigned char author[LIM_ID_BYTES],
                           const unsigned char sk[LIM_SECRET_KEY_BYTES], uint64_t seq,
                           const unsigned char prev[LIM_HASH_BYTES], uint64_t hlc, const char *coll, const char *doc,
                           const char *field, const char *value)
{
	lim_change_builder b = { LIM_SB_INIT, 0 };
	unsigned char hash[LIM_HASH_BYTES];
	lim_value v;
	memset(&v, 0, sizeof(v));
	v.type = LIM_STRING;
	v.str = value;
	v.len = strlen(value);
	lim_cb__begin_op(&b, LIM_OP_SET, coll, doc);
	lim_cb__name(&b, field);
	lim_sb__putc(&b.ops, ' ');
	lim_value__encode(&b.ops, &v);
	assert_int_equal(lim_change__seal(out, hash, &b, author, sk, seq, hlc, prev), 0);
	lim_change__sealed_link(link, hash, out);
	lim_sb__free(&b.ops);
	/* Sanity: the bytes parse as a change. */
	lim_change c;
	assert_int_equal(lim_change__parse(&c, out->ptr, out->len), 0);
	lim_change__dispose(&c);
}

/* Change one hex digit of the signature (the last 128 characters); `link`,
 * if not NULL, gets the link of the altered bytes. */
static void flip_signature(lim_sb *change, unsigned char link[LIM_HASH_BYTES])
{
	char *c = change->ptr + change->len - 2 * LIM_SIG_BYTES + 10;
	unsigned char hash[LIM_HASH_BYTES];
	*c = *c == '0' ? '1' : '0';
	lim_change ch;
	assert_int_equal(lim_change__parse(&ch, change->ptr, change->len), 0); /* still well formed */
	lim_change__hash(hash, ch.bytes, ch.body_len);
	if (link)
		lim_change__link(link, hash, ch.sig);
	lim_change__dispose(&ch);
}

/* ------------------------------------------------------------ keeper: a second, established connection */

typedef struct {
	raw r;
	pthread_t th;
	int running;
	pthread_mutex_t mu;
	int stop, dead;
	char last_pong[64];
	char dead_why[256];
	unsigned long nch;
	char ch_authors[8][2 * LIM_ID_BYTES + 1]; /* authors of the first CH lines seen live */
	int nch_authors;
} keeper;

static keeper g_keeper;

static void keeper_send(keeper *k, const char *line)
{
	pthread_mutex_lock(&k->mu);
	if (raw_send(&k->r, line, strlen(line)) < 0 && !k->dead) {
		k->dead = 1;
		snprintf(k->dead_why, sizeof(k->dead_why), "send failed: %s", strerror(errno));
	}
	pthread_mutex_unlock(&k->mu);
}

static void *keeper_main(void *arg)
{
	keeper *k = arg;
	for (;;) {
		char *line, reply[128];
		size_t n;
		pthread_mutex_lock(&k->mu);
		int stop = k->stop;
		pthread_mutex_unlock(&k->mu);
		if (stop)
			break;
		int rc = raw_line(&k->r, &line, &n, POLL_MS);
		if (rc == LINE_TIMEOUT)
			continue;
		if (rc != LINE_OK) {
			pthread_mutex_lock(&k->mu);
			k->dead = 1;
			snprintf(k->dead_why, sizeof(k->dead_why), "%s", rc == LINE_EOF ? "the node closed it" : "read error");
			pthread_mutex_unlock(&k->mu);
			break;
		}
		if (strncmp(line, "PING ", 5) == 0) {
			snprintf(reply, sizeof(reply), "PONG %.64s\n", line + 5);
			keeper_send(k, reply);
		} else if (strncmp(line, "END ", 4) == 0) {
			snprintf(reply, sizeof(reply), "ACK %.20s\n", line + 4);
			keeper_send(k, reply);
		} else if (strncmp(line, "PONG ", 5) == 0) {
			pthread_mutex_lock(&k->mu);
			snprintf(k->last_pong, sizeof(k->last_pong), "%s", line + 5);
			pthread_mutex_unlock(&k->mu);
		} else if (strncmp(line, "CH lim1 ", 8) == 0 && n > 8 + 2 * LIM_ID_BYTES) {
			pthread_mutex_lock(&k->mu);
			k->nch++;
			if (k->nch_authors < 8) {
				memcpy(k->ch_authors[k->nch_authors], line + 8, 2 * LIM_ID_BYTES);
				k->ch_authors[k->nch_authors++][2 * LIM_ID_BYTES] = '\0';
			}
			pthread_mutex_unlock(&k->mu);
		} else if (strncmp(line, "ERR ", 4) == 0 || strcmp(line, "BYE") == 0) {
			pthread_mutex_lock(&k->mu);
			k->dead = 1;
			snprintf(k->dead_why, sizeof(k->dead_why), "the node sent: %.200s", line);
			pthread_mutex_unlock(&k->mu);
			break;
		}
	}
	return NULL;
}

static void keeper_start(keeper *k, const char *addr)
{
	raw_handshake(&k->r, addr);
	pthread_mutex_init(&k->mu, NULL);
	assert_int_equal(pthread_create(&k->th, NULL, keeper_main, k), 0);
	k->running = 1;
}

static void keeper_stop(keeper *k)
{
	if (k->running) {
		pthread_mutex_lock(&k->mu);
		k->stop = 1;
		pthread_mutex_unlock(&k->mu);
		pthread_join(k->th, NULL);
		pthread_mutex_destroy(&k->mu);
		k->running = 0;
	}
	raw_dispose(&k->r);
}

/* The established connection still works: a PING gets its PONG. */
static void keeper_check_alive(keeper *k)
{
	static int counter;
	char token[32], line[64];
	int64_t deadline = mono_ms() + DEADLINE_MS;
	snprintf(token, sizeof(token), "t%d", ++counter);
	snprintf(line, sizeof(line), "PING %s\n", token);
	keeper_send(k, line);
	for (;;) {
		pthread_mutex_lock(&k->mu);
		int dead = k->dead, got = strcmp(k->last_pong, token) == 0;
		char why[256];
		snprintf(why, sizeof(why), "%s", k->dead_why);
		pthread_mutex_unlock(&k->mu);
		if (got)
			return;
		if (dead)
			fail_msg("the second, established connection died: %s", why);
		if (mono_ms() >= deadline)
			fail_msg("the established connection got no PONG within %d ms", DEADLINE_MS);
		sleep_ms(10);
	}
}

static void keeper_wait_change_from(keeper *k, const char *author)
{
	int64_t deadline = mono_ms() + DEADLINE_MS;
	for (;;) {
		int found = 0;
		pthread_mutex_lock(&k->mu);
		for (int i = 0; i < k->nch_authors; i++)
			found |= strcmp(k->ch_authors[i], author) == 0;
		int dead = k->dead;
		pthread_mutex_unlock(&k->mu);
		if (found)
			return;
		if (dead)
			fail_msg("the established connection died before the change was relayed: %s", k->dead_why);
		if (mono_ms() >= deadline)
			fail_msg("the node did not relay the change of %s to the established connection", author);
		sleep_ms(10);
	}
}

/* Sockets of the half-open test (more than g_fds holds); the teardown
 * closes whatever a failed test left open. */
#define MANY_FDS 1000
static int g_many[MANY_FDS];

static void close_many(void)
{
	for (int i = 0; i < MANY_FDS; i++)
		if (g_many[i] > 0) {
			close(g_many[i]);
			g_many[i] = 0;
		}
}

/* ------------------------------------------------------------ fixtures */

static int case_setup(void **state)
{
	(void)state;
	snprintf(g_dir, sizeof(g_dir), "%.3800s/case%02d", g_root, ++g_case % 100);
	if (mkdir(g_dir, 0700) != 0)
		return -1;
	memset(g_nodes, 0, sizeof(g_nodes));
	memset(&g_keeper, 0, sizeof(g_keeper));
	g_keeper.r.fd = -1;
	for (int i = 0; i < MAX_FDS; i++)
		g_fds[i] = -1;
	g_test_done = 0;
	return 0;
}

static int case_teardown(void **state)
{
	(void)state;
	keeper_stop(&g_keeper);
	for (int i = 0; i < g_nraws; i++)
		raw_dispose(&g_raws[i]);
	g_nraws = 0;
	for (int i = 0; i < MAX_FDS; i++)
		if (g_fds[i] >= 0) {
			close(g_fds[i]);
			g_fds[i] = -1;
		}
	close_many();
	kill_all_kids();
	if (!g_test_done)
		dump_node_logs();
	memset(g_nodes, 0, sizeof(g_nodes));
	return 0;
}

/* ------------------------------------------------------------ serve's log */

/*
 * Where `lim serve` logged a line containing `what` (an offset into its
 * stderr log), failing if it did not. Every log line is
 * "<UTC time>Z lim serve: <message>" (libcore/cli/cmd_sync.c); the
 * messages are node.c's and session.c's.
 */
static size_t log_at(const node *n, const char *what)
{
	char *log = slurp(n->log), needle[512];
	snprintf(needle, sizeof(needle), "Z lim serve: %s", what);
	char *p = strstr(log, needle);
	if (!p) {
		print_error("--- log of %s:\n%.4000s\n", n->log, log);
		free(log);
		fail_msg("lim serve did not log '%s'", what);
	}
	size_t at = (size_t)(p - log);
	free(log);
	return at;
}

/* The end of a node's log after SIGTERM: the signal, then `closed`
 * lines (if any) for its connections, then "stopped" as the last line. */
static void expect_shutdown_logged(const node *n, const char *closed)
{
	size_t sig = log_at(n, "SIGTERM: shutting down\n"), stop = log_at(n, "stopped\n");
	char *log = slurp(n->log);
	size_t len = strlen(log);
	free(log);
	assert_true(sig < stop);
	assert_true(stop + strlen("Z lim serve: stopped\n") == len); /* the last line */
	if (closed) {
		size_t at = log_at(n, closed);
		assert_true(sig < at && at < stop);
	}
}

/* ------------------------------------------------------------ 1. line topology */

static void test_sync_tcp__line_topology(void **state)
{
	char key[65], *out = NULL, *va, *vc;
	store a, b, c, probe;
	node na, nb, nc;
	(void)state;

	random_netkey(key);
	store_new(&a, "a.db", key);
	store_new(&b, "b.db", key);
	store_new(&c, "c.db", key);
	store_new(&probe, "probe.db", key);
	const char *dbs[] = { a.path, b.path, c.path };

	/* Concurrent writes to the same fields while nobody is connected. */
	put(&a, "shared", "k", "{\"f\":\"from a\",\"only_a\":1}");
	put(&b, "shared", "k", "{\"f\":\"from b\",\"only_b\":2}");
	put(&c, "shared", "k", "{\"f\":\"from c\",\"only_c\":3}");
	free(LIM_OK("--db", a.path, "incr", "shared", "k", "n", "1"));
	free(LIM_OK("--db", b.path, "incr", "shared", "k", "n", "10"));
	free(LIM_OK("--db", c.path, "incr", "shared", "k", "n", "100"));

	NODE_INIT(&na, &a, "--listen", "127.0.0.1:0");
	node_start(&na);
	NODE_INIT(&nb, &b, "--listen", "127.0.0.1:0", "--peer", na.addr);
	node_start(&nb);
	NODE_INIT(&nc, &c, "--listen", "127.0.0.1:0", "--peer", nb.addr);
	node_start(&nc);

	/* Different documents, written while the nodes run (live push). */
	put(&a, "docs", "a1", "{\"x\":\"a\"}");
	put(&b, "docs", "b1", "{\"x\":\"b\"}");
	put(&c, "docs", "c1", "{\"x\":\"c\"}");
	put(&c, "shared", "k", "{\"g\":\"c again\"}");

	wait_converged(dbs, 3, "line A-B-C");
	for (int i = 0; i < 3; i++) {
		char *f;
		assert_int_equal(get(dbs[i], "shared", "k", "n", &f), 0);
		assert_string_equal(f, "111");
		free(f);
		assert_int_equal(get(dbs[i], "docs", "a1", "x", &f), 0);
		free(f);
		assert_int_equal(get(dbs[i], "docs", "c1", "x", &f), 0);
		free(f);
	}
	/* One LWW winner everywhere. */
	assert_int_equal(get(a.path, "shared", "k", "f", &va), 0);
	assert_int_equal(get(c.path, "shared", "k", "f", &vc), 0);
	assert_string_equal(va, vc);
	free(va);
	free(vc);

	/* Relay: a write on C reaches A, which never talks to C. */
	put(&c, "relay", "r1", "{\"hop\":\"c to a\"}");
	int64_t deadline = mono_ms() + DEADLINE_MS;
	while (get(a.path, "relay", "r1", "hop", &out) != 0) {
		free(out);
		out = NULL;
		if (mono_ms() >= deadline)
			fail_msg("a write on C did not reach A through B within %d ms", DEADLINE_MS);
		sleep_ms(POLL_MS);
	}
	assert_string_equal(out, "\"c to a\"");
	free(out);
	wait_converged(dbs, 3, "line A-B-C after the relayed write");

	/* A and C never connected: A's peer table knows B but not C. */
	char *js = wait_status_peer(&probe, na.addr, b.id);
	assert_int_equal(json_int(js, SQL_ANY_WITH_ID, c.id), 0);
	free(js);
	js = wait_status_peer(&probe, nc.addr, b.id);
	assert_int_equal(json_int(js, SQL_ANY_WITH_ID, a.id), 0);
	free(js);

	for (int i = 0; i < 3; i++)
		expect_verify_ok(dbs[i]);
	node_stop(&nc);
	node_stop(&nb);
	node_stop(&na);

	/*
	 * What each lim serve logged: its address, the connections it
	 * accepted and dialed, each peer authenticated (by the first 16 hex
	 * of its id), the batches it applied, and on SIGTERM its dialed
	 * connections closed before "stopped". A stopping node says BYE, so
	 * the node it dialed logs that too.
	 */
	char msg[256], a16[17], b16[17], c16[17];
	snprintf(a16, sizeof(a16), "%.16s", a.id);
	snprintf(b16, sizeof(b16), "%.16s", b.id);
	snprintf(c16, sizeof(c16), "%.16s", c.id);
	const node *all[3] = { &na, &nb, &nc };
	for (int i = 0; i < 3; i++) {
		snprintf(msg, sizeof(msg), "listening on %s\n", all[i]->addr);
		log_at(all[i], msg);
	}
	log_at(&na, "connection from 127.0.0.1:"); /* B dialed A */
	log_at(&nb, "connection from 127.0.0.1:"); /* C dialed B */
	snprintf(msg, sizeof(msg), "connected to %s\n", na.addr);
	log_at(&nb, msg);
	snprintf(msg, sizeof(msg), "connected to %s\n", nb.addr);
	log_at(&nc, msg);
	snprintf(msg, sizeof(msg), "peer %s: authenticated\n", b16);
	log_at(&na, msg);
	snprintf(msg, sizeof(msg), "peer %s: authenticated\n", a16);
	log_at(&nb, msg);
	snprintf(msg, sizeof(msg), "peer %s: authenticated\n", c16);
	log_at(&nb, msg);
	snprintf(msg, sizeof(msg), "peer %s: authenticated\n", b16);
	log_at(&nc, msg);
	/* A got B's and (relayed) C's changes from B, C got A's from B. */
	snprintf(msg, sizeof(msg), "peer %s: applied a batch of ", b16);
	log_at(&na, msg);
	log_at(&nc, msg);
	snprintf(msg, sizeof(msg), "peer %s: applied a batch of ", c16);
	log_at(&nb, msg);
	snprintf(msg, sizeof(msg), "peer %s: peer said BYE\n", c16); /* C stopped first */
	log_at(&nb, msg);
	snprintf(msg, sizeof(msg), "peer %s: peer said BYE\n", b16);
	log_at(&na, msg);
	snprintf(msg, sizeof(msg), "connection to %s closed: node stopped\n", nb.addr);
	expect_shutdown_logged(&nc, msg);
	snprintf(msg, sizeof(msg), "connection to %s closed: node stopped\n", na.addr);
	expect_shutdown_logged(&nb, msg);
	expect_shutdown_logged(&na, NULL); /* nobody was left connected to A */
	g_test_done = 1;
}

/* ------------------------------------------------------------ 2. partition and heal */

static void test_sync_tcp__partition_heal(void **state)
{
	char key[65], bport[80], *out;
	store a, b, c;
	node na, nb, nc, tmp;
	(void)state;

	random_netkey(key);
	store_new(&a, "a.db", key);
	store_new(&b, "b.db", key);
	store_new(&c, "c.db", key);
	const char *dbs[] = { a.path, b.path, c.path };

	NODE_INIT(&na, &a, "--listen", "127.0.0.1:0");
	node_start(&na);
	/* B needs a fixed address so that C can find it again after the
	 * restart: learn a free port from a first, short-lived run. */
	NODE_INIT(&tmp, &b, "--listen", "127.0.0.1:0");
	node_start(&tmp);
	snprintf(bport, sizeof(bport), "%s", tmp.addr);
	node_stop(&tmp);
	NODE_INIT(&nb, &b, "--listen", bport, "--peer", na.addr);
	node_start(&nb);
	NODE_INIT(&nc, &c, "--listen", "127.0.0.1:0", "--peer", nb.addr);
	node_start(&nc);

	put(&a, "docs", "a0", "{\"v\":0}");
	put(&b, "docs", "b0", "{\"v\":0}");
	put(&c, "docs", "c0", "{\"v\":0}");
	wait_converged(dbs, 3, "before the partition");

	/* Partition: B goes away (SIGTERM, exit 0); A and C write. */
	node_stop(&nb);
	put(&a, "docs", "a1", "{\"v\":1}");
	put(&c, "docs", "c1", "{\"v\":1}");
	put(&a, "shared", "k", "{\"f\":\"a during the partition\"}");
	put(&c, "shared", "k", "{\"f\":\"c during the partition\"}");
	free(LIM_OK("--db", a.path, "incr", "shared", "k", "n", "2"));
	free(LIM_OK("--db", c.path, "incr", "shared", "k", "n", "3"));
	/* Nothing can carry C's write to A now. */
	assert_int_equal(get(a.path, "docs", "c1", NULL, NULL), 1);
	assert_int_equal(get(c.path, "docs", "a1", NULL, NULL), 1);

	/* Heal: B again, with the same arguments. */
	node_start(&nb);
	assert_string_equal(nb.addr, bport);
	wait_converged(dbs, 3, "after the heal");
	for (int i = 0; i < 3; i++) {
		assert_int_equal(get(dbs[i], "shared", "k", "n", &out), 0);
		assert_string_equal(out, "5");
		free(out);
		assert_int_equal(get(dbs[i], "docs", "a1", NULL, NULL), 0);
		assert_int_equal(get(dbs[i], "docs", "c1", NULL, NULL), 0);
	}
	node_stop(&nc);
	node_stop(&nb);
	node_stop(&na);
	for (int i = 0; i < 3; i++)
		expect_verify_ok(dbs[i]);
	g_test_done = 1;
}

/* ------------------------------------------------------------ 3. one-shot `lim sync` */

static void test_sync_tcp__sync_once(void **state)
{
	char key[65], da[65], df[65], dw[65];
	char *va, *vf, *vw, *out;
	store a, f, w;
	node na;
	run r;
	(void)state;

	random_netkey(key);
	store_new(&a, "a.db", key);
	store_new(&f, "fresh.db", key);
	store_new(&w, "writer.db", key);
	put(&a, "docs", "a1", "{\"x\":1,\"y\":\"a\"}");
	put(&a, "shared", "k", "{\"f\":\"a\"}");
	put(&w, "docs", "w1", "{\"x\":2}");
	put(&w, "shared", "k", "{\"f\":\"w\"}");
	free(LIM_OK("--db", w.path, "sadd", "shared", "k", "tags", "\"red\""));

	NODE_INIT(&na, &a, "--listen", "127.0.0.1:0");
	node_start(&na);

	/* A fresh store pulls everything. */
	LIM(&r, "--db", f.path, "sync", na.addr);
	expect_ok(&r, __FILE__, __LINE__);
	assert_non_null(strstr(r.out, "synced with"));
	run_free(&r);
	digest_of(a.path, da);
	digest_of(f.path, df);
	assert_string_equal(da, df);
	va = vv_of(a.path);
	vf = vv_of(f.path);
	assert_string_equal(va, vf);
	free(va);
	free(vf);

	/* A store with writes of its own pushes and pulls. */
	LIM(&r, "--db", w.path, "sync", na.addr);
	expect_ok(&r, __FILE__, __LINE__);
	run_free(&r);
	digest_of(a.path, da);
	digest_of(w.path, dw);
	assert_string_equal(da, dw);
	va = vv_of(a.path);
	vw = vv_of(w.path);
	assert_string_equal(va, vw);
	free(va);
	free(vw);
	assert_int_equal(get(a.path, "docs", "w1", "x", &out), 0);
	assert_string_equal(out, "2");
	free(out);
	assert_int_equal(get(w.path, "docs", "a1", "y", &out), 0);
	assert_string_equal(out, "\"a\"");
	free(out);

	/* Again: nothing left to move, still exit 0. */
	LIM(&r, "--db", w.path, "sync", na.addr);
	expect_ok(&r, __FILE__, __LINE__);
	assert_non_null(strstr(r.out, "received 0 changes, sent 0"));
	run_free(&r);

	node_stop(&na);
	expect_verify_ok(a.path);
	expect_verify_ok(f.path);
	expect_verify_ok(w.path);
	g_test_done = 1;
}

/* ------------------------------------------------------------ 4. `lim status --node` */

static void test_sync_tcp__status(void **state)
{
	char key[65], *js, *s;
	store a, b, probe;
	node na, nb;
	(void)state;

	random_netkey(key);
	store_new(&a, "a.db", key);
	store_new(&b, "b.db", key);
	store_new(&probe, "probe.db", key);
	NODE_INIT(&na, &a, "--listen", "127.0.0.1:0");
	node_start(&na);
	NODE_INIT(&nb, &b, "--listen", "127.0.0.1:0", "--peer", na.addr);
	node_start(&nb);
	/* A status probe is read-only in both directions. */
	char probe_before[65], probe_after[65];
	free(LIM_OK("--db", probe.path, "put", "probe", "only", "{\"mine\":true}"));
	free(LIM_OK("--db", a.path, "put", "node", "only", "{\"theirs\":true}"));
	digest_of(probe.path, probe_before);

	/* A names B (inbound), and itself. */
	js = wait_status_peer(&probe, na.addr, b.id);
	s = json_query(js, "SELECT json_extract(?1, '$.id')", NULL);
	assert_non_null(s);
	assert_string_equal(s, a.id);
	free(s);
	s = json_query(js, "SELECT json_extract(?1, '$.listen')", NULL);
	assert_non_null(s);
	assert_string_equal(s, na.addr);
	free(s);
	s = json_query(js, SQL_DIRECTION_OF, b.id);
	assert_non_null(s);
	assert_string_equal(s, "in");
	free(s);
	free(js);

	/* B names A (outbound, at the address it dials). */
	js = wait_status_peer(&probe, nb.addr, a.id);
	s = json_query(js, SQL_DIRECTION_OF, a.id);
	assert_non_null(s);
	assert_string_equal(s, "out");
	free(s);
	s = json_query(js, SQL_ADDRESS_OF, a.id);
	assert_non_null(s);
	assert_string_equal(s, na.addr);
	free(s);
	free(js);

	digest_of(probe.path, probe_after);
	assert_string_equal(probe_before, probe_after);
	assert_int_equal(get(a.path, "probe", "only", NULL, NULL), 1);
	assert_int_equal(get(b.path, "probe", "only", NULL, NULL), 1);

	node_stop(&nb);
	node_stop(&na);
	g_test_done = 1;
}

/* ------------------------------------------------------------ 5. rejections against a live node */

typedef struct {
	char key[65];
	store n;     /* the node's store */
	store fresh; /* a good client for `lim sync` afterwards */
	node node;
	char digest[65];
	char *vv;
} rj;

static rj g_rj;

enum { RJ_PLAIN = 0, RJ_ALLOW = 1, RJ_SHORT_IDLE = 2, RJ_HALF_OPEN = 4 };

/*
 * A node with some data, a second connection established and kept alive by
 * the keeper thread, and the store's digest and vv before the bad client.
 */
static rj *rj_setup(int flags)
{
	rj *t = &g_rj;
	memset(t, 0, sizeof(*t));
	random_netkey(t->key);
	store_new(&t->n, "node.db", t->key);
	store_new(&t->fresh, "fresh.db", t->key);
	put(&t->n, "docs", "d1", "{\"x\":1,\"s\":\"one\"}");
	free(LIM_OK("--db", t->n.path, "incr", "docs", "d1", "n", "7"));
	raw_identity(&g_keeper.r, t->key);
	if (flags & RJ_ALLOW)
		NODE_INIT(&t->node, &t->n, "--listen", "127.0.0.1:0", "--allow", g_keeper.r.idhex, "--allow", t->fresh.id);
	else if (flags & RJ_SHORT_IDLE)
		NODE_INIT(&t->node, &t->n, "--listen", "127.0.0.1:0", "--idle-timeout", "1000");
	else if (flags & RJ_HALF_OPEN)
		NODE_INIT(&t->node, &t->n, "--listen", "127.0.0.1:0", "--idle-timeout", "10000");
	else
		NODE_INIT(&t->node, &t->n, "--listen", "127.0.0.1:0");
	node_start(&t->node);
	keeper_start(&g_keeper, t->node.addr);
	digest_of(t->n.path, t->digest);
	t->vv = vv_of(t->n.path);
	return t;
}

/* The node's store is as it was, and the node still serves good clients. */
static void rj_check_unchanged_and_serving(rj *t)
{
	char d[65], df[65], *v;
	run r;
	digest_of(t->n.path, d);
	v = vv_of(t->n.path);
	assert_string_equal(d, t->digest);
	assert_string_equal(v, t->vv);
	free(v);
	keeper_check_alive(&g_keeper);
	LIM(&r, "--db", t->fresh.path, "sync", t->node.addr);
	expect_ok(&r, __FILE__, __LINE__);
	run_free(&r);
	digest_of(t->fresh.path, df);
	assert_string_equal(df, t->digest);
	keeper_check_alive(&g_keeper);
}

static void rj_done(rj *t)
{
	node_stop(&t->node);
	expect_verify_ok(t->n.path);
	free(t->vv);
	t->vv = NULL;
	g_test_done = 1;
}

static int rj_teardown(void **state)
{
	free(g_rj.vv);
	g_rj.vv = NULL;
	return case_teardown(state);
}

/* The node's digest and vv, through `lim`, are still the recorded ones
 * (without the "still serving" part of rj_check_unchanged_and_serving). */
static void rj_expect_unchanged(rj *t, const char *what)
{
	char d[65], *v;
	digest_of(t->n.path, d);
	v = vv_of(t->n.path);
	if (strcmp(d, t->digest) != 0 || strcmp(v, t->vv) != 0) {
		print_error("digest %s (was %s)\nvv:\n%s(was:\n%s)", d, t->digest, v, t->vv);
		free(v);
		fail_msg("%s: the node's store changed", what);
	}
	free(v);
}

/* Record the node's digest and vv as they are now (after a test has made
 * the node apply something on purpose). */
static void rj_rebaseline(rj *t)
{
	free(t->vv);
	digest_of(t->n.path, t->digest);
	t->vv = vv_of(t->n.path);
}

/* Open a store file read-only with SQLite itself (the node may be running:
 * WAL readers do not disturb it). */
static sqlite3 *sql_open_ro(const char *path)
{
	sqlite3 *db = NULL;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
		fail_msg("sqlite3_open_v2(%s, read-only): %s", path, db ? sqlite3_errmsg(db) : "out of memory");
	sqlite3_busy_timeout(db, DEADLINE_MS);
	return db;
}

/*
 * What a store holds, read from its file: every change's hash in order,
 * every author's head, and the counts of merged fields and equivocation
 * evidence. Cheap enough to take after each of hundreds of bad batches;
 * the tests also compare `lim digest` and `lim vv` at their end.
 */
static char *store_fingerprint(const char *path)
{
	sqlite3 *db = sql_open_ro(path);
	sqlite3_stmt *q;
	char *res;
	static const char sql[] =
		"SELECT (SELECT count(*) || ':' || coalesce(group_concat(h, ','), '')"
		"          FROM (SELECT hex(hash) AS h FROM changes ORDER BY id))"
		" || '|' || (SELECT coalesce(group_concat(a, ','), '')"
		"          FROM (SELECT hex(pubkey) || '/' || max_seq || '/' || hex(head_link) AS a FROM authors ORDER BY id))"
		" || '|' || (SELECT count(*) FROM fields) || '|' || (SELECT count(*) FROM equivocations)";
	if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) != SQLITE_OK)
		fail_msg("fingerprint of %s: %s", path, sqlite3_errmsg(db));
	if (sqlite3_step(q) != SQLITE_ROW)
		fail_msg("fingerprint of %s: %s", path, sqlite3_errmsg(db));
	res = strdup((const char *)sqlite3_column_text(q, 0));
	assert_non_null(res);
	sqlite3_finalize(q);
	sqlite3_close(db);
	return res;
}

/*
 * (a) a first line that is not a message. "GET" names no message, and
 * parse errors win over state errors in every state (PROTOCOL.md 4 and
 * 11.1), so the one right answer is `ERR 400 unknown message`, not 409.
 */
static void test_sync_tcp__reject_garbage_first_line(void **state)
{
	rj *t = rj_setup(RJ_PLAIN);
	raw *c;
	(void)state;
	c = raw_new(t->key);
	raw_connect(c, t->node.addr);
	raw_sendf(c, "GET / HTTP/1.1\n");
	/* Before authentication only the keyword is read (PROTOCOL.md §4). */
	raw_expect_err_text(c, LIM_PERR_STATE, 0, "the first line must be HELLO");
	raw_dispose(c);
	rj_check_unchanged_and_serving(t);
	rj_done(t);
}

/* (b) an unknown message after a valid handshake */
static void test_sync_tcp__reject_unknown_message(void **state)
{
	rj *t = rj_setup(RJ_PLAIN);
	raw *c;
	(void)state;
	c = raw_new(t->key);
	raw_handshake(c, t->node.addr);
	raw_sendf(c, "FROB 1 2 3\n");
	raw_expect_err(c, LIM_PERR_MALFORMED, 0);
	raw_dispose(c);
	rj_check_unchanged_and_serving(t);
	rj_done(t);
}

/* (c) HELLO with a protocol version the node does not speak */
static void test_sync_tcp__reject_version(void **state)
{
	rj *t = rj_setup(RJ_PLAIN);
	raw *c;
	(void)state;
	c = raw_new(t->key);
	raw_connect(c, t->node.addr);
	raw_send_hello_v(c, 2);
	raw_expect_err(c, LIM_PERR_VERSION, 0);
	raw_dispose(c);
	rj_check_unchanged_and_serving(t);
	rj_done(t);
}

/* (d) data before the handshake */
static void test_sync_tcp__reject_data_before_handshake(void **state)
{
	rj *t = rj_setup(RJ_PLAIN);
	raw *c;
	(void)state;
	c = raw_new(t->key);
	raw_connect(c, t->node.addr);
	raw_sendf(c, "VV %s:1\n", c->idhex);
	raw_expect_err(c, LIM_PERR_STATE, 0);
	raw_dispose(c);
	rj_check_unchanged_and_serving(t);
	rj_done(t);
}

/* (e) a second HELLO after authentication */
static void test_sync_tcp__reject_second_hello(void **state)
{
	rj *t = rj_setup(RJ_PLAIN);
	raw *c;
	(void)state;
	c = raw_new(t->key);
	raw_handshake(c, t->node.addr);
	raw_sendf(c, "%s\n", c->hello);
	raw_expect_err(c, LIM_PERR_STATE, 0);
	raw_dispose(c);
	rj_check_unchanged_and_serving(t);
	rj_done(t);
}

/* (f) AUTH whose signature does not verify */
static void test_sync_tcp__reject_bad_auth_signature(void **state)
{
	rj *t = rj_setup(RJ_PLAIN);
	raw *c;
	(void)state;
	c = raw_new(t->key);
	raw_connect(c, t->node.addr);
	raw_send_hello(c);
	raw_read_server_hello(c);
	raw_send_auth(c, AUTH_BAD_SIG);
	raw_expect_err(c, LIM_PERR_AUTH, 0);
	raw_dispose(c);
	rj_check_unchanged_and_serving(t);
	rj_done(t);
}

/* (g) a valid identity proving another network key */
static void test_sync_tcp__reject_wrong_network(void **state)
{
	rj *t = rj_setup(RJ_PLAIN);
	raw *c;
	(void)state;
	c = raw_new(t->key);
	raw_connect(c, t->node.addr);
	raw_send_hello(c);
	raw_read_server_hello(c);
	raw_send_auth(c, AUTH_WRONG_NETWORK);
	raw_expect_err(c, LIM_PERR_NETWORK, 0);
	raw_dispose(c);
	rj_check_unchanged_and_serving(t);
	rj_done(t);
}

/* (h) a peer id that is not on the node's --allow list */
static void test_sync_tcp__reject_not_allowed(void **state)
{
	rj *t = rj_setup(RJ_ALLOW);
	raw *c;
	(void)state;
	c = raw_new(t->key);
	raw_connect(c, t->node.addr);
	raw_send_hello(c);
	raw_expect_err(c, LIM_PERR_FORBIDDEN, 0);
	raw_dispose(c);
	/* The same id with a complete, correct handshake is refused too. */
	raw_connect(c, t->node.addr);
	raw_send_hello(c);
	raw_read_server_hello(c);
	raw_expect_err(c, LIM_PERR_FORBIDDEN, 0);
	raw_dispose(c);
	rj_check_unchanged_and_serving(t); /* the keeper and `fresh` are allowed */
	rj_done(t);
}

/* (i) a recorded good handshake replayed on a new connection */
static void test_sync_tcp__reject_replayed_handshake(void **state)
{
	rj *t = rj_setup(RJ_PLAIN);
	raw *c;
	char hello[256], auth[256];
	(void)state;
	c = raw_new(t->key);
	raw_handshake(c, t->node.addr);
	snprintf(hello, sizeof(hello), "%s", c->hello);
	snprintf(auth, sizeof(auth), "%s", c->auth);
	raw_sendf(c, "BYE\n");
	raw_close(c);

	raw_connect(c, t->node.addr);
	raw_sendf(c, "%s\n", hello);
	raw_need_line(c, NULL); /* the node's HELLO, with a fresh nonce */
	raw_sendf(c, "%s\n", auth);
	raw_expect_err(c, LIM_PERR_AUTH, 0);
	raw_dispose(c);
	rj_check_unchanged_and_serving(t);
	rj_done(t);
}

/* (j) a line one byte over the limit, without LF */
static void test_sync_tcp__reject_line_too_long(void **state)
{
	rj *t = rj_setup(RJ_PLAIN);
	raw *c;
	size_t n = (size_t)LIM_MAX_LINE_BYTES + 1;
	char *big = malloc(n);
	(void)state;
	assert_non_null(big);
	memset(big, 'A', n);
	c = raw_new(t->key);
	raw_connect(c, t->node.addr);
	int rc = raw_send(c, big, n);
	free(big);
	if (rc < 0 && rc != -EPIPE && rc != -ECONNRESET)
		fail_msg("sending the long line: %s", strerror(-rc));
	raw_expect_err(c, LIM_PERR_TOO_LARGE, 0);
	raw_dispose(c);
	rj_check_unchanged_and_serving(t);
	rj_done(t);
}

/* (k) a line that never completes: closed after the idle timeout */
static void test_sync_tcp__reject_idle_timeout(void **state)
{
	rj *t = rj_setup(RJ_SHORT_IDLE); /* lim serve --idle-timeout 1000 */
	raw *c;
	(void)state;
	c = raw_new(t->key);
	raw_connect(c, t->node.addr);
	raw_sendf(c, "HELLO 1 ");
	raw_expect_err(c, LIM_PERR_TIMEOUT, 0);
	raw_dispose(c);
	/* The keeper outlived the idle timeout: keep-alive works. */
	rj_check_unchanged_and_serving(t);
	rj_done(t);
}

/* (l) a batch with a change whose signature was altered */
static void test_sync_tcp__reject_bad_change_signature(void **state)
{
	rj *t = rj_setup(RJ_PLAIN);
	raw *c;
	lim_sb ch = LIM_SB_INIT;
	unsigned char h1[LIM_HASH_BYTES], zero[LIM_HASH_BYTES] = { 0 };
	(void)state;
	c = raw_new(t->key);
	make_change(&ch, h1, c, 1, zero, hlc_now(), "docs", "evil", "x", "forged");
	flip_signature(&ch, NULL);
	raw_handshake(c, t->node.addr);
	raw_sendf(c, "CH %s\nEND 1\n", ch.ptr);
	lim_sb__free(&ch);
	raw_expect_err(c, LIM_PERR_REJECTED, 0);
	raw_dispose(c);
	rj_check_unchanged_and_serving(t);
	assert_int_equal(get(t->n.path, "docs", "evil", NULL, NULL), 1);
	rj_done(t);
}

/*
 * (l') a run of one author's consecutive changes whose middle change
 * carries forged signature bytes. The node verifies only the run's last
 * signature (PROTOCOL.md 9.4), but seq 3 names the link of seq 2 as
 * signed, which covers its signature bytes: the whole batch is refused,
 * naming seq 2, and nothing of it is stored (seq 1 included).
 */
static void test_sync_tcp__reject_forged_signature_inside_a_run(void **state)
{
	rj *t = rj_setup(RJ_PLAIN);
	raw *c;
	lim_sb ch[3] = { LIM_SB_INIT, LIM_SB_INIT, LIM_SB_INIT };
	unsigned char prev[LIM_HASH_BYTES] = { 0 }, link[LIM_HASH_BYTES];
	uint64_t hlc = hlc_now();
	char want[128];
	(void)state;
	c = raw_new(t->key);
	for (int i = 0; i < 3; i++) {
		make_change(&ch[i], link, c, (uint64_t)i + 1, prev, hlc + (uint64_t)i, "docs", "evil", "x", "forged");
		memcpy(prev, link, LIM_HASH_BYTES);
	}
	flip_signature(&ch[1], NULL);
	raw_handshake(c, t->node.addr);
	raw_sendf(c, "CH %s\nCH %s\nCH %s\nEND 3\n", ch[0].ptr, ch[1].ptr, ch[2].ptr);
	snprintf(want, sizeof(want), "LIM_ESIGNATURE: change %.16s.../2: the signature does not verify", c->idhex);
	raw_expect_err_text(c, LIM_PERR_REJECTED, 0, want);
	raw_dispose(c);
	for (int i = 0; i < 3; i++)
		lim_sb__free(&ch[i]);
	rj_check_unchanged_and_serving(t);
	assert_int_equal(get(t->n.path, "docs", "evil", NULL, NULL), 1);
	rj_done(t);
}

/*
 * (l'') what only an author can do: seq 1 with signature bytes that do not
 * verify, and a valid seq 2 whose prev is the link of those very bytes. In
 * one run the author's valid signature vouches for them, so the node takes
 * the run (PROTOCOL.md 9.4/14.3). What must hold: the node never ends a
 * batch on them (a store syncing from it gets both), and `lim verify`
 * reports them.
 */
static void test_sync_tcp__author_linked_bad_signature_in_a_run(void **state)
{
	rj *t = rj_setup(RJ_PLAIN);
	raw *c;
	lim_sb c1 = LIM_SB_INIT, c2 = LIM_SB_INIT;
	unsigned char l1[LIM_HASH_BYTES], l2[LIM_HASH_BYTES], zero[LIM_HASH_BYTES] = { 0 };
	uint64_t hlc = hlc_now();
	char *out, d[65], df[65];
	lim_msg m;
	run r;
	(void)state;
	c = raw_new(t->key);
	make_change(&c1, l1, c, 1, zero, hlc, "docs", "evil", "x", "first");
	flip_signature(&c1, l1);
	make_change(&c2, l2, c, 2, l1, hlc + 1, "docs", "evil", "y", "second");
	raw_handshake(c, t->node.addr);
	raw_sendf(c, "CH %s\nCH %s\nEND 2\n", c1.ptr, c2.ptr);
	lim_sb__free(&c1);
	lim_sb__free(&c2);
	char *line = raw_msg(c, &m);
	if (m.type != LIM_MSG_ACK || m.count != 2)
		fail_msg("wanted ACK 2 (the author's seq 2 links to those bytes), got: %.300s", line);
	raw_sendf(c, "BYE\n");
	raw_dispose(c);
	assert_int_equal(get(t->n.path, "docs", "evil", "x", &out), 0);
	assert_string_equal(out, "\"first\"");
	free(out);

	LIM(&r, "--db", t->fresh.path, "sync", t->node.addr);
	expect_ok(&r, __FILE__, __LINE__);
	run_free(&r);
	digest_of(t->n.path, d);
	digest_of(t->fresh.path, df);
	assert_string_equal(d, df);

	/* The bytes are reported, not hidden (so no rj_done, which requires a
	 * clean verify). */
	node_stop(&t->node);
	LIM(&r, "--db", t->n.path, "verify");
	assert_int_equal(r.status, 4);
	assert_non_null(strstr(r.err, "signature does not verify"));
	run_free(&r);
	free(t->vv);
	t->vv = NULL;
	g_test_done = 1;
}

/* (m) positive control: a valid change signed by the client's own identity */
static void test_sync_tcp__accept_own_signed_change(void **state)
{
	rj *t = rj_setup(RJ_PLAIN);
	raw *c;
	lim_sb ch = LIM_SB_INIT;
	unsigned char h1[LIM_HASH_BYTES], zero[LIM_HASH_BYTES] = { 0 };
	char *out, *v, d[65], df[65], want[128];
	lim_msg m;
	run r;
	(void)state;
	c = raw_new(t->key);
	make_change(&ch, h1, c, 1, zero, hlc_now(), "docs", "mine", "x", "hello");
	raw_handshake(c, t->node.addr);
	raw_sendf(c, "CH %s\nEND 1\n", ch.ptr);
	lim_sb__free(&ch);
	char *line = raw_msg(c, &m);
	if (m.type != LIM_MSG_ACK || m.count != 1)
		fail_msg("wanted ACK 1 for a valid change, got: %.300s", line);

	/* Applied: in the store, relayed to the other connection. */
	assert_int_equal(get(t->n.path, "docs", "mine", "x", &out), 0);
	assert_string_equal(out, "\"hello\"");
	free(out);
	v = vv_of(t->n.path);
	snprintf(want, sizeof(want), "%s 1\n", c->idhex);
	assert_non_null(strstr(v, want));
	free(v);
	keeper_wait_change_from(&g_keeper, c->idhex);
	raw_sendf(c, "BYE\n");
	raw_dispose(c);

	keeper_check_alive(&g_keeper);
	LIM(&r, "--db", t->fresh.path, "sync", t->node.addr);
	expect_ok(&r, __FILE__, __LINE__);
	run_free(&r);
	digest_of(t->n.path, d);
	digest_of(t->fresh.path, df);
	assert_string_equal(d, df);
	assert_int_equal(get(t->fresh.path, "docs", "mine", "x", NULL), 0);
	rj_done(t);
}


/* ------------------------------------------------------------ 6. attacks with real changes */

/*
 * A change whose body names author A, signed with B's secret key; A and B
 * are both members of the network. Membership is no licence to write as
 * someone else: whether B relays it or A's own authenticated connection
 * carries it, the node refuses the batch with 422 LIM_ESIGNATURE and
 * stores nothing. The same bytes through lim_db_apply get LIM_ESIGNATURE;
 * the same body signed by A applies there (so only the key is wrong).
 */
static void test_sync_tcp__reject_change_signed_by_another_key(void **state)
{
	rj *t = rj_setup(RJ_PLAIN);
	raw *a, *b;
	lim_sb forged = LIM_SB_INIT, good = LIM_SB_INIT;
	unsigned char link[LIM_HASH_BYTES], zero[LIM_HASH_BYTES] = { 0 };
	uint64_t hlc = hlc_now();
	char want[128], before[65], after[65];
	const lim_sb *one[1];
	lim_db *db = NULL;
	lim_apply_stats st = { 0, 0 };
	(void)state;
	a = raw_new(t->key);
	b = raw_new(t->key);
	make_change_as(&forged, link, a->pk, b->sk, 1, zero, hlc, "docs", "evil", "x", "written by b");
	make_change_as(&good, link, a->pk, a->sk, 1, zero, hlc, "docs", "evil", "x", "written by b");
	/* One body, two signatures. */
	assert_int_equal(forged.len, good.len);
	assert_memory_equal(forged.ptr, good.ptr, good.len - 2 * LIM_SIG_BYTES);
	assert_memory_not_equal(forged.ptr + good.len - 2 * LIM_SIG_BYTES, good.ptr + good.len - 2 * LIM_SIG_BYTES,
	                        2 * LIM_SIG_BYTES);
	snprintf(want, sizeof(want), "LIM_ESIGNATURE: change %.16s.../1: the signature does not verify", a->idhex);
	one[0] = &forged;

	raw_handshake(b, t->node.addr); /* B relays it */
	raw_send_batch(b, one, 1);
	raw_expect_err_text(b, LIM_PERR_REJECTED, 0, want);
	raw_handshake(a, t->node.addr); /* A's own connection carries it */
	raw_send_batch(a, one, 1);
	raw_expect_err_text(a, LIM_PERR_REJECTED, 0, want);
	rj_check_unchanged_and_serving(t); /* syncs `fresh` to the node's state */
	assert_int_equal(get(t->n.path, "docs", "evil", NULL, NULL), 1);

	/* The library entry point, on a store of the same network. */
	assert_int_equal(lim_db_open(&db, t->fresh.path, NULL), 0);
	assert_int_equal(lim_db_digest(db, before), 0);
	assert_int_equal(lim_db_apply(db, forged.ptr, forged.len, &st), LIM_ESIGNATURE);
	assert_int_equal(st.applied, 0);
	assert_int_equal(lim_db_digest(db, after), 0);
	assert_string_equal(before, after);
	assert_int_equal(lim_db_apply(db, good.ptr, good.len, &st), 0);
	assert_int_equal(st.applied, 1);
	lim_db_free(db);
	lim_sb__free(&forged);
	lim_sb__free(&good);
	rj_done(t);
}

/*
 * An exact replay of changes the node already holds: its own two changes,
 * byte for byte as it sent them during catch-up, and a change of ours it
 * applied a moment ago, alone and twice in one batch. Duplicates are
 * no-ops (changes.md 8 step 2): each batch is acknowledged, nothing
 * changes, and the connection stays open (a PING on it gets its PONG).
 */
static void test_sync_tcp__replay_of_held_changes(void **state)
{
	rj *t = rj_setup(RJ_PLAIN);
	raw *c;
	lim_sb theirs[4] = { LIM_SB_INIT, LIM_SB_INIT, LIM_SB_INIT, LIM_SB_INIT }, mine = LIM_SB_INIT;
	unsigned char link[LIM_HASH_BYTES], zero[LIM_HASH_BYTES] = { 0 };
	const lim_sb *batch[4];
	(void)state;
	c = raw_new(t->key);
	assert_int_equal(raw_handshake_collect(c, t->node.addr, theirs, 4), 2); /* rj_setup's put and incr */
	for (int i = 0; i < 2; i++)
		assert_memory_equal(theirs[i].ptr + 5, t->n.id, 2 * LIM_ID_BYTES);

	batch[0] = &theirs[0];
	batch[1] = &theirs[1];
	raw_send_batch(c, batch, 2);
	raw_expect_ack(c, 2);
	rj_expect_unchanged(t, "after replaying the node's own changes");
	raw_expect_pong(c);

	/* One of ours, applied once ... */
	make_change(&mine, link, c, 1, zero, hlc_now(), "docs", "mine", "x", "once");
	batch[0] = &mine;
	raw_send_batch(c, batch, 1);
	raw_expect_ack(c, 1);
	assert_int_equal(get(t->n.path, "docs", "mine", NULL, NULL), 0);
	rj_rebaseline(t);
	/* ... then replayed, alone and twice in a row, and mixed with the
	 * node's own. */
	raw_send_batch(c, batch, 1);
	raw_expect_ack(c, 1);
	batch[1] = &mine;
	raw_send_batch(c, batch, 2);
	raw_expect_ack(c, 2);
	batch[0] = &theirs[1];
	batch[2] = &theirs[0];
	raw_send_batch(c, batch, 3);
	raw_expect_ack(c, 3);
	rj_expect_unchanged(t, "after replaying our own change");
	raw_expect_pong(c);
	raw_sendf(c, "BYE\n");
	raw_dispose(c);
	for (int i = 0; i < 4; i++)
		lim_sb__free(&theirs[i]);
	lim_sb__free(&mine);
	rj_check_unchanged_and_serving(t);
	rj_done(t);
}

/*
 * An author that signs two different changes with one seq (A1 and A1'),
 * and then a seq 2 that continues A1' (a forked chain). The node holds A1
 * first. Both A1' and the fork are authentic, so they are the author's
 * doing, not the sender's: skipped (PROTOCOL.md 9.2, changes.md 8 steps 2
 * and 4), the batch acknowledged, the connection not closed, A1 kept, and
 * A1' recorded in the `equivocations` table. The same fork with forged
 * signature bytes is a different matter: nobody signed it, so the sender
 * is refused (422).
 */
static void test_sync_tcp__equivocation_and_fork_skipped(void **state)
{
	rj *t = rj_setup(RJ_PLAIN);
	raw *c, *f;
	lim_sb a1 = LIM_SB_INIT, a1x = LIM_SB_INIT, a2x = LIM_SB_INIT, bad = LIM_SB_INIT;
	unsigned char l1[LIM_HASH_BYTES], l1x[LIM_HASH_BYTES], l2x[LIM_HASH_BYTES], zero[LIM_HASH_BYTES] = { 0 };
	uint64_t hlc = hlc_now();
	const lim_sb *batch[2];
	char *out, *log;
	(void)state;
	c = raw_new(t->key);
	f = raw_new(t->key);
	make_change(&a1, l1, c, 1, zero, hlc, "docs", "eq", "x", "honest");
	make_change(&a1x, l1x, c, 1, zero, hlc, "docs", "eq", "x", "second version");
	make_change(&a2x, l2x, c, 2, l1x, hlc + 1, "docs", "eq", "y", "fork");
	make_change(&bad, l2x, c, 2, l1x, hlc + 1, "docs", "eq", "y", "fork");
	flip_signature(&bad, NULL);

	raw_handshake(c, t->node.addr);
	batch[0] = &a1;
	raw_send_batch(c, batch, 1);
	raw_expect_ack(c, 1);
	rj_rebaseline(t);

	batch[0] = &a1x; /* the equivocation */
	raw_send_batch(c, batch, 1);
	raw_expect_ack(c, 1);
	raw_expect_pong(c);
	batch[0] = &a2x; /* the fork, alone */
	raw_send_batch(c, batch, 1);
	raw_expect_ack(c, 1);
	raw_expect_pong(c);
	batch[0] = &a1x; /* both, as one run */
	batch[1] = &a2x;
	raw_send_batch(c, batch, 2);
	raw_expect_ack(c, 2);
	raw_expect_pong(c);
	rj_expect_unchanged(t, "after the equivocation and the fork");
	assert_int_equal(get(t->n.path, "docs", "eq", "x", &out), 0);
	assert_string_equal(out, "\"honest\"");
	free(out);
	assert_int_equal(get(t->n.path, "docs", "eq", "y", NULL), 1);
	raw_sendf(c, "BYE\n");
	raw_dispose(c);

	/* The fork with forged signature bytes: 422, sender refused. */
	raw_handshake(f, t->node.addr);
	batch[0] = &bad;
	raw_send_batch(f, batch, 1);
	raw_expect_err_text(f, LIM_PERR_REJECTED, 0, "LIM_EHASH");
	raw_dispose(f);

	log = slurp(t->node.log);
	assert_non_null(strstr(log, "signed two different changes with seq 1"));
	assert_non_null(strstr(log, "forked its chain"));
	free(log);
	rj_check_unchanged_and_serving(t);
	rj_done(t);

	/* The evidence: A1' (and nothing else) in the stopped node's file. */
	sqlite3 *db = sql_open_ro(t->n.path);
	sqlite3_stmt *q;
	assert_int_equal(sqlite3_prepare_v2(db,
	                                    "SELECT e.seq, e.body FROM equivocations e JOIN authors a ON a.id = e.author "
	                                    "WHERE a.pubkey = ?1",
	                                    -1, &q, NULL),
	                 SQLITE_OK);
	sqlite3_bind_blob(q, 1, c->pk, LIM_ID_BYTES, SQLITE_STATIC);
	assert_int_equal(sqlite3_step(q), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int64(q, 0), 1);
	assert_int_equal(sqlite3_column_bytes(q, 1), (int)a1x.len);
	assert_memory_equal(sqlite3_column_blob(q, 1), a1x.ptr, a1x.len);
	assert_int_equal(sqlite3_step(q), SQLITE_DONE);
	sqlite3_finalize(q);
	sqlite3_close(db);
	lim_sb__free(&a1);
	lim_sb__free(&a1x);
	lim_sb__free(&a2x);
	lim_sb__free(&bad);
}


/*
 * A valid change (seq 2 of an author whose seq 1 the node holds, with a
 * multi-byte UTF-8 value) with one byte altered, at every byte position,
 * three ways: XOR 0x01 (a neighbouring digit, letter or op code), XOR 0x20
 * (letter case: uppercase hex must not decode to the same bytes, a space
 * becomes a non-space) and XOR 0x80 (invalid UTF-8, or a UTF-8 byte
 * turned ASCII). Each goes in its own batch after a proper handshake. None
 * may be applied: the node either refuses the batch (ERR, and closes; the
 * next position gets a new connection) or skips the change (a gap, a
 * future stamp, an author it does not know; ACK, and the connection is
 * reused). The store file is compared after every position; the digest,
 * vv and a fresh store's sync at the end.
 */
static void test_sync_tcp__reject_every_flipped_byte(void **state)
{
	rj *t = rj_setup(RJ_PLAIN);
	raw *c;
	lim_sb c1 = LIM_SB_INIT, c2 = LIM_SB_INIT, bad = LIM_SB_INIT;
	unsigned char l1[LIM_HASH_BYTES], l2[LIM_HASH_BYTES], zero[LIM_HASH_BYTES] = { 0 };
	static const unsigned char patterns[] = { 0x01, 0x20, 0x80 };
	const lim_sb *batch[1] = { &bad };
	uint64_t hlc = hlc_now();
	int nerr[600] = { 0 }, nack = 0, nconn = 0, total = 0;
	char *fp0, why[512];
	int64_t t0 = mono_ms();
	(void)state;
	c = raw_new(t->key);
	make_change(&c1, l1, c, 1, zero, hlc, "docs", "flip", "x", "first");
	make_change(&c2, l2, c, 2, l1, hlc + 1, "docs", "flip", "y", "caf\xc3\xa9 \xe2\x9c\x93 50%");
	raw_handshake(c, t->node.addr);
	nconn++;
	batch[0] = &c1;
	raw_send_batch(c, batch, 1);
	raw_expect_ack(c, 1);
	rj_rebaseline(t);
	fp0 = store_fingerprint(t->n.path);
	batch[0] = &bad;

	for (size_t p = 0; p < sizeof(patterns); p++)
		for (size_t i = 0; i < c2.len; i++) {
			uint64_t n;
			int k;
			lim_sb__clear(&bad);
			lim_sb__put(&bad, c2.ptr, c2.len);
			bad.ptr[i] ^= (char)patterns[p];
			if (c->fd < 0) {
				raw_handshake(c, t->node.addr);
				nconn++;
			}
			raw_send_batch(c, batch, 1);
			k = raw_reply(c, &n, why, sizeof(why));
			if (k == REPLY_EOF)
				fail_msg("byte %zu ^ 0x%02x: the node closed the connection without ERR", i, patterns[p]);
			if (k == REPLY_ERR) {
				if (n >= 600)
					fail_msg("byte %zu ^ 0x%02x: %s", i, patterns[p], why);
				nerr[n]++;
				raw_expect_close(c);
			} else {
				if (n != 1)
					fail_msg("byte %zu ^ 0x%02x: ACK %llu for a batch of 1", i, patterns[p], (unsigned long long)n);
				nack++;
			}
			char *fp = store_fingerprint(t->n.path);
			if (strcmp(fp, fp0) != 0) {
				print_error("change sent: %.*s\nreply: %s\n", (int)bad.len, bad.ptr, k == REPLY_ERR ? why : "ACK 1");
				fail_msg("byte %zu ^ 0x%02x: the node's store changed", i, patterns[p]);
			}
			free(fp);
			total++;
		}
	if (c->fd >= 0) {
		raw_expect_pong(c);
		raw_sendf(c, "BYE\n");
	}
	raw_dispose(c);
	/* Every reply was one of the refusals of PROTOCOL.md 11.1 or a skip. */
	assert_int_equal(nerr[400] + nerr[422] + nack, total);
	assert_true(nerr[422] > 0);
	assert_true(nack > 0);
	print_message("flipped bytes: %d changes (%zu positions x %zu patterns): %d ERR 422, %d ERR 400, %d skipped (ACK); "
	              "%d connections, %lld ms\n",
	              total, c2.len, sizeof(patterns), nerr[422], nerr[400], nack, nconn, (long long)(mono_ms() - t0));
	free(fp0);
	lim_sb__free(&c1);
	lim_sb__free(&c2);
	lim_sb__free(&bad);
	rj_check_unchanged_and_serving(t);
	rj_done(t);
}

/* The newest change of a store, from `lim log --limit 1`: author prefix
 * (16 hex) and the wall-clock part of its HLC. */
static void newest_change(const char *db, char author16[17], long long *hlc_ms)
{
	char *out = LIM_OK("--db", db, "log", "--limit", "1");
	unsigned long long seq, ms, logical;
	if (sscanf(out, "%16s %llu %llu.%llu", author16, &seq, &ms, &logical) != 4)
		fail_msg("lim log printed: %.300s", out);
	*hlc_ms = (long long)ms;
	free(out);
}

/*
 * A validly signed change stamped 10 minutes ahead, far beyond the 60 s
 * drift bound: skipped (LIM_ECLOCK, PROTOCOL.md 9.2), not applied, the
 * batch acknowledged. The node's clock must not have moved to it either:
 * a local write afterwards, while it runs and after it stopped, is stamped
 * within the bound of the wall clock (changes.md 8 step 6: the clock
 * advances only after that check).
 */
static void test_sync_tcp__future_change_not_applied(void **state)
{
	rj *t = rj_setup(RJ_PLAIN);
	raw *c;
	lim_sb ch = LIM_SB_INIT;
	unsigned char link[LIM_HASH_BYTES], zero[LIM_HASH_BYTES] = { 0 };
	const lim_sb *batch[1] = { &ch };
	const long long bound = 60000;
	char author[17], *log;
	long long hlc_ms, wall;
	(void)state;
	c = raw_new(t->key);
	make_change(&ch, link, c, 1, zero, (uint64_t)(wall_ms() + 600000) << 16, "docs", "future", "x", "too soon");
	raw_handshake(c, t->node.addr);
	raw_send_batch(c, batch, 1);
	raw_expect_ack(c, 1);
	raw_expect_pong(c);
	raw_sendf(c, "BYE\n");
	raw_dispose(c);
	rj_expect_unchanged(t, "after a change from the future");
	assert_int_equal(get(t->n.path, "docs", "future", NULL, NULL), 1);
	log = slurp(t->node.log);
	assert_non_null(strstr(log, "ahead of this node's clock"));
	free(log);
	rj_check_unchanged_and_serving(t);

	put(&t->n, "docs", "local", "{\"while\":\"running\"}");
	wall = wall_ms();
	newest_change(t->n.path, author, &hlc_ms);
	assert_memory_equal(author, t->n.id, 16);
	if (hlc_ms > wall + bound)
		fail_msg("a local write was stamped %lld ms ahead of the wall clock", hlc_ms - wall);
	rj_done(t);
	put(&t->n, "docs", "local", "{\"after\":\"stopping\"}");
	wall = wall_ms();
	newest_change(t->n.path, author, &hlc_ms);
	assert_memory_equal(author, t->n.id, 16);
	if (hlc_ms > wall + bound)
		fail_msg("a local write after the node stopped was stamped %lld ms ahead of the wall clock", hlc_ms - wall);
	lim_sb__free(&ch);
}


/* ------------------------------------------------------------ 7. limits, live */

/*
 * A line of exactly LIM_MAX_LINE_BYTES (4 194 368) bytes without its LF is
 * within the limit (PROTOCOL.md 3: "MUST NOT exceed"): a STATE line of that
 * size (free text, kept as the peer's state) is taken, and the same
 * connection is served on. One byte more earns ERR 413.
 */
static void test_sync_tcp__line_at_the_limit(void **state)
{
	rj *t = rj_setup(RJ_PLAIN);
	raw *c;
	size_t n = (size_t)LIM_MAX_LINE_BYTES;
	char *line = malloc(n + 2);
	int rc;
	(void)state;
	assert_non_null(line);
	memcpy(line, "STATE ", 6);
	memset(line + 6, 'x', n + 1 - 6);

	c = raw_new(t->key);
	raw_handshake(c, t->node.addr);
	line[n] = '\n';
	assert_int_equal(raw_send(c, line, n + 1), 0);
	raw_expect_pong(c); /* no ERR 413 came first */
	raw_sendf(c, "BYE\n");
	raw_dispose(c);
	rj_expect_unchanged(t, "after a line at the limit");

	raw_handshake(c, t->node.addr);
	line[n] = 'x';
	line[n + 1] = '\n';
	rc = raw_send(c, line, n + 2);
	if (rc < 0 && rc != -EPIPE && rc != -ECONNRESET)
		fail_msg("sending the long line: %s", strerror(-rc));
	raw_expect_err(c, LIM_PERR_TOO_LARGE, 0);
	raw_dispose(c);
	free(line);
	rj_check_unchanged_and_serving(t);
	rj_done(t);
}

/*
 * Send `line` (no LF) one byte every 200 ms, not answering the node's
 * PINGs (a PONG would be a complete line). Bytes of an unfinished line do
 * not reset the idle timer (PROTOCOL.md 10), so with --idle-timeout 1000
 * the node must send ERR 408 and close long before the line runs out.
 */
static void trickle_until_timeout(raw *r, const char *line)
{
	size_t n = strlen(line);
	int64_t t0 = mono_ms();
	for (size_t i = 0; i < n; i++) {
		int64_t until = mono_ms() + 200;
		(void)raw_send(r, line + i, 1); /* a close shows up below */
		for (;;) {
			char *l;
			size_t len;
			int64_t left = until - mono_ms();
			if (left <= 0)
				break;
			int rc = raw_line(r, &l, &len, (int)left);
			if (rc == LINE_TIMEOUT)
				break;
			if (rc != LINE_OK)
				fail_msg("the node closed the trickling connection without ERR 408");
			if (strncmp(l, "ERR ", 4) == 0) {
				if (strcmp(l, "ERR 408 nothing received for 1000 ms") != 0)
					fail_msg("wanted ERR 408 for the trickled line, got: %.200s", l);
				raw_expect_close(r);
				return;
			}
			/* HELLO, AUTH, VV, SYNCED, PING: not answered */
		}
	}
	fail_msg("no ERR 408 while %zu bytes of one line trickled in over %lld ms", n, (long long)(mono_ms() - t0));
}

/* A trickled line, during the handshake and in LIVE. */
static void test_sync_tcp__reject_trickled_line(void **state)
{
	rj *t = rj_setup(RJ_SHORT_IDLE); /* lim serve --idle-timeout 1000 */
	raw *c;
	unsigned char nonce[LIM_NONCE_BYTES];
	char nh[2 * LIM_NONCE_BYTES + 1], hello[256], ping[80];
	(void)state;
	c = raw_new(t->key);
	randombytes_buf(nonce, sizeof(nonce));
	hex(nh, nonce, sizeof(nonce));
	snprintf(hello, sizeof(hello), "HELLO 1 %s %s", c->idhex, nh); /* 28 s at 200 ms a byte */
	raw_connect(c, t->node.addr);
	trickle_until_timeout(c, hello);

	raw_handshake(c, t->node.addr);
	snprintf(ping, sizeof(ping), "PING %.59s", "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefgh"); /* 12.8 s */
	trickle_until_timeout(c, ping);
	raw_dispose(c);
	rj_check_unchanged_and_serving(t); /* the keeper answered its PINGs and lives */
	rj_done(t);
}

/* `len` bytes that pass the CH line's shape check (PROTOCOL.md 7.4:
 * "lim1 ", 64 more bytes, a SP at offset 70 or more) but are no change. */
static void fake_change(lim_sb *out, const raw *r, size_t len)
{
	char *fill;
	lim_sb__clear(out);
	lim_sb__printf(out, "lim1 %s 1 ", r->idhex);
	assert_true(len >= out->len);
	fill = malloc(len - out->len + 1);
	assert_non_null(fill);
	memset(fill, 'x', len - out->len);
	lim_sb__put(out, fill, len - out->len);
	free(fill);
	assert_int_equal(lim_sb__check(out), 0);
	assert_int_equal(out->len, len);
}

/* `count` CH lines of `ch`, then `tail` (NULL: nothing), in one send. */
static int send_chs(raw *r, const lim_sb *ch, int count, const lim_sb *last, const char *tail)
{
	lim_sb b = LIM_SB_INIT;
	int rc;
	for (int i = 0; i < count; i++) {
		lim_sb__put(&b, "CH ", 3);
		lim_sb__put(&b, ch->ptr, ch->len);
		lim_sb__putc(&b, '\n');
	}
	if (last) {
		lim_sb__put(&b, "CH ", 3);
		lim_sb__put(&b, last->ptr, last->len);
		lim_sb__putc(&b, '\n');
	}
	if (tail)
		lim_sb__put(&b, tail, strlen(tail));
	assert_int_equal(lim_sb__check(&b), 0);
	rc = raw_send(r, b.ptr, b.len);
	lim_sb__free(&b);
	if (rc < 0 && rc != -EPIPE && rc != -ECONNRESET)
		fail_msg("sending CH lines: %s", strerror(-rc));
	return rc;
}

/*
 * Batch bytes: four CH lines of 4 194 304 bytes each make exactly
 * LIM_MAX_BATCH_BYTES (16 777 216), which is not over: the batch reaches
 * its END and is refused there for what it is (422 LIM_EMALFORMED, no
 * change in it is real). One more CH of 72 bytes makes it over: ERR 413 at
 * that CH (PROTOCOL.md 3), "a batch over 16777216 bytes".
 */
static void test_sync_tcp__reject_batch_over_byte_limit(void **state)
{
	rj *t = rj_setup(RJ_PLAIN);
	raw *c;
	lim_sb big = LIM_SB_INIT, small = LIM_SB_INIT;
	char want[64];
	(void)state;
	c = raw_new(t->key);
	fake_change(&big, c, (size_t)LIM_MAX_CHANGE_BYTES);
	fake_change(&small, c, 72);
	assert_int_equal(4 * big.len, (size_t)LIM_MAX_BATCH_BYTES);

	raw_handshake(c, t->node.addr);
	send_chs(c, &big, 4, NULL, "END 4\n");
	raw_expect_err_text(c, LIM_PERR_REJECTED, 0, "LIM_EMALFORMED");
	raw_dispose(c);
	rj_expect_unchanged(t, "after a batch at the byte limit");

	raw_handshake(c, t->node.addr);
	send_chs(c, &big, 4, &small, "END 5\n");
	snprintf(want, sizeof(want), "a batch over %d bytes", LIM_MAX_BATCH_BYTES);
	raw_expect_err_text(c, LIM_PERR_TOO_LARGE, 0, want);
	raw_dispose(c);
	lim_sb__free(&big);
	lim_sb__free(&small);
	rj_check_unchanged_and_serving(t);
	rj_done(t);
}

/*
 * CH lines per batch: 1 000 (LIM_MAX_BATCH_CHANGES) reach END (and are
 * refused there, 422, being no changes); the 1 001st CH earns ERR 413
 * "more than 1000 changes before END" at once (PROTOCOL.md 3, 11.1).
 */
static void test_sync_tcp__reject_batch_over_change_count(void **state)
{
	rj *t = rj_setup(RJ_PLAIN);
	raw *c;
	lim_sb ch = LIM_SB_INIT;
	char want[64];
	(void)state;
	c = raw_new(t->key);
	fake_change(&ch, c, 100);

	raw_handshake(c, t->node.addr);
	send_chs(c, &ch, LIM_MAX_BATCH_CHANGES, NULL, "END 1000\n");
	raw_expect_err_text(c, LIM_PERR_REJECTED, 0, "LIM_EMALFORMED");
	raw_dispose(c);
	rj_expect_unchanged(t, "after a batch of 1000 CH lines");

	raw_handshake(c, t->node.addr);
	send_chs(c, &ch, LIM_MAX_BATCH_CHANGES + 1, NULL, NULL); /* no END: the 1001st CH alone must do it */
	snprintf(want, sizeof(want), "more than %d changes before END", LIM_MAX_BATCH_CHANGES);
	raw_expect_err_text(c, LIM_PERR_TOO_LARGE, 0, want);
	raw_dispose(c);
	lim_sb__free(&ch);
	rj_check_unchanged_and_serving(t);
	rj_done(t);
}

/* "VV" and `n` distinct entries <author>:1, and LF. */
static void send_big_vv(raw *r, int n)
{
	lim_sb b = LIM_SB_INIT;
	int rc;
	lim_sb__put(&b, "VV", 2);
	for (int i = 1; i <= n; i++)
		lim_sb__printf(&b, " %064x:1", i);
	lim_sb__putc(&b, '\n');
	assert_int_equal(lim_sb__check(&b), 0);
	rc = raw_send(r, b.ptr, b.len);
	lim_sb__free(&b);
	if (rc < 0 && rc != -EPIPE && rc != -ECONNRESET)
		fail_msg("sending a VV: %s", strerror(-rc));
}

/*
 * Authors per VV: a second VV in LIVE (allowed, PROTOCOL.md 7.3) naming
 * 48 000 (LIM_MAX_VV_AUTHORS) authors is taken and the connection served
 * on; 48 001 earn ERR 413 "VV names too many authors".
 */
static void test_sync_tcp__reject_vv_over_author_limit(void **state)
{
	rj *t = rj_setup(RJ_PLAIN);
	raw *c;
	(void)state;
	c = raw_new(t->key);
	raw_handshake(c, t->node.addr);
	send_big_vv(c, LIM_MAX_VV_AUTHORS);
	raw_expect_pong(c);
	raw_sendf(c, "BYE\n");
	raw_dispose(c);
	rj_expect_unchanged(t, "after a VV at the author limit");

	raw_handshake(c, t->node.addr);
	send_big_vv(c, LIM_MAX_VV_AUTHORS + 1);
	raw_expect_err_text(c, LIM_PERR_TOO_LARGE, 0, "VV names too many authors");
	raw_dispose(c);
	rj_check_unchanged_and_serving(t);
	rj_done(t);
}


/* ------------------------------------------------------------ 8. connections */

/* The rest of one line from a plain socket (byte by byte, so nothing after
 * the LF is consumed): 1 and the line without LF, or 0 at EOF/reset. */
static int fd_line(int fd, char *buf, size_t cap, int64_t deadline)
{
	size_t n = 0;
	for (;;) {
		struct pollfd p = { fd, POLLIN, 0 };
		int64_t left = deadline - mono_ms();
		char ch;
		if (left <= 0)
			fail_msg("no complete line within the deadline (have '%.*s')", (int)n, buf);
		int pr = poll(&p, 1, (int)left);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr <= 0)
			continue;
		ssize_t got = recv(fd, &ch, 1, 0);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0 && errno == ECONNRESET)
			return 0;
		if (got < 0)
			fail_msg("recv: %s", strerror(errno));
		if (got == 0)
			return 0;
		if (ch == '\n') {
			buf[n] = '\0';
			return 1;
		}
		if (n + 1 < cap)
			buf[n++] = ch;
	}
}

/*
 * 1 000 connections that connect and then say nothing (half-open: a
 * crashed peer, a slowloris), against a node with the default cap of 64
 * connections and --idle-timeout 10000. The keeper holds one slot, so 63
 * of ours get HELLO and every other one gets ERR 503 as its first line and
 * is closed (PROTOCOL.md 12). The silent 63 are reaped by the idle timeout
 * (ERR 408, handshake included, 10), the node then serves a real peer, and
 * the keeper, which answers PINGs, lives through all of it.
 */
static void test_sync_tcp__half_open_connections(void **state)
{
	rj *t = rj_setup(RJ_HALF_OPEN);
	struct rlimit rl;
	struct sockaddr_in sa;
	char line[256], want408[64];
	int accepted[MANY_FDS], nhello = 0, n503 = 0, n408 = 0;
	int64_t t0, opened_ms;
	(void)state;

	/* Our 1 000 sockets, the ones of the harness, and lim's: raise the
	 * soft limit if need be; a hard limit too low fails the test. */
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < MANY_FDS + 256) {
		if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < MANY_FDS + 256)
			fail_msg("RLIMIT_NOFILE hard limit %llu is below the %d this test needs", (unsigned long long)rl.rlim_max,
			         MANY_FDS + 256);
		rl.rlim_cur = MANY_FDS + 256;
		assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
	}

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)atoi(strrchr(t->node.addr, ':') + 1));
	assert_int_equal(inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr), 1);
	t0 = mono_ms();
	for (int i = 0; i < MANY_FDS; i++) {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			fail_msg("socket %d of %d: %s", i + 1, MANY_FDS, strerror(errno));
		g_many[i] = fd;
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
			fail_msg("connect %d of %d: %s", i + 1, MANY_FDS, strerror(errno));
	}
	for (int i = 0; i < MANY_FDS; i++) {
		accepted[i] = 0;
		if (!fd_line(g_many[i], line, sizeof(line), mono_ms() + DEADLINE_MS))
			fail_msg("connection %d was closed without a line", i + 1);
		if (strncmp(line, "HELLO 1 ", 8) == 0) {
			accepted[i] = 1;
			nhello++;
			continue;
		}
		if (strcmp(line, "ERR 503 this node has no room for another connection") != 0)
			fail_msg("connection %d: wanted HELLO or ERR 503 first, got: %.200s", i + 1, line);
		if (fd_line(g_many[i], line, sizeof(line), mono_ms() + DEADLINE_MS))
			fail_msg("connection %d: more after ERR 503: %.200s", i + 1, line);
		close(g_many[i]);
		g_many[i] = 0;
		n503++;
	}
	opened_ms = mono_ms() - t0;
	assert_int_equal(nhello + n503, MANY_FDS);
	if (opened_ms < 10000) {
		/* Nothing can have timed out yet: the cap is exact. */
		assert_int_equal(nhello, 63);
		assert_int_equal(n503, MANY_FDS - 63);
	} else {
		/* A very slow machine: silent slots were reaped (and reused)
		 * while we were still connecting; never fewer than the cap. */
		assert_true(nhello >= 63);
	}

	/* The silent ones are reaped: ERR 408, then close. */
	snprintf(want408, sizeof(want408), "ERR 408 nothing received for 10000 ms");
	for (int i = 0; i < MANY_FDS; i++) {
		if (!accepted[i])
			continue;
		if (!fd_line(g_many[i], line, sizeof(line), mono_ms() + 10000 + DEADLINE_MS))
			fail_msg("silent connection %d was closed without ERR 408", i + 1);
		if (strcmp(line, want408) != 0)
			fail_msg("silent connection %d: wanted '%s', got: %.200s", i + 1, want408, line);
		if (fd_line(g_many[i], line, sizeof(line), mono_ms() + DEADLINE_MS))
			fail_msg("silent connection %d: more after ERR 408: %.200s", i + 1, line);
		n408++;
	}
	assert_int_equal(n408, nhello);
	close_many();
	print_message("half-open: %d connections, %d HELLO, %d ERR 503, %d ERR 408 (opened and answered in %lld ms)\n",
	              MANY_FDS, nhello, n503, n408, (long long)opened_ms);
	rj_check_unchanged_and_serving(t);
	rj_done(t);
}

/*
 * SIGTERM: every authenticated connection gets BYE before the node closes
 * it (PROTOCOL.md 7.11, 12), and lim serve exits 0; a connection still in
 * its handshake is simply closed.
 */
static void test_sync_tcp__sigterm_sends_bye(void **state)
{
	rj *t = rj_setup(RJ_PLAIN);
	raw *h;
	char *line;
	size_t n;
	int64_t deadline;
	(void)state;
	h = raw_new(t->key);
	raw_connect(h, t->node.addr);
	raw_send_hello(h);
	raw_read_server_hello(h); /* and its AUTH, unread; we never send ours */
	keeper_check_alive(&g_keeper);
	node_stop(&t->node);
	deadline = mono_ms() + DEADLINE_MS;
	for (;;) {
		pthread_mutex_lock(&g_keeper.mu);
		int dead = g_keeper.dead;
		char why[256];
		snprintf(why, sizeof(why), "%s", g_keeper.dead_why);
		pthread_mutex_unlock(&g_keeper.mu);
		if (dead) {
			assert_string_equal(why, "the node sent: BYE");
			break;
		}
		if (mono_ms() >= deadline)
			fail_msg("the keeper's connection got no BYE within %d ms of SIGTERM", DEADLINE_MS);
		sleep_ms(10);
	}
	line = raw_need_line(h, &n);
	assert_true(strncmp(line, "AUTH ", 5) == 0);
	int rc = raw_line(h, &line, &n, DEADLINE_MS);
	if (rc == LINE_OK)
		fail_msg("a connection in its handshake got '%.100s' on SIGTERM; wanted a plain close", line);
	assert_int_equal(rc, LINE_EOF);
	raw_dispose(h);
	expect_verify_ok(t->n.path);
	free(t->vv);
	t->vv = NULL;
	g_test_done = 1;
}

static const char SQL_PEER_FIELD[] =
	"SELECT json_extract(value, '$.' || ?3) FROM json_each(?1, '$.peers') "
	"WHERE json_extract(value, '$.id') = ?2 AND json_extract(value, '$.connected') = 1";

/* One number of the connected peer `id` in a status JSON (-1 if absent). */
static long long peer_number(const char *js, const char *id, const char *field)
{
	sqlite3 *db;
	sqlite3_stmt *q;
	long long v = -1;
	assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, SQL_PEER_FIELD, -1, &q, NULL), SQLITE_OK);
	sqlite3_bind_text(q, 1, js, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 3, field, -1, SQLITE_STATIC);
	if (sqlite3_step(q) == SQLITE_ROW && sqlite3_column_type(q, 0) == SQLITE_INTEGER)
		v = sqlite3_column_int64(q, 0);
	sqlite3_finalize(q);
	sqlite3_close(db);
	return v;
}

/*
 * After a sync, each node's status shows its peer with traffic both ways:
 * changes_in/out and bytes_in/out positive (each side wrote one change the
 * other lacked), and behind 0 once the peer has acknowledged everything.
 */
static void test_sync_tcp__status_counters(void **state)
{
	char key[65], *js = NULL;
	store a, b, probe;
	node na, nb;
	static const char *const fields[] = { "changes_in", "changes_out", "bytes_in", "bytes_out" };
	(void)state;
	random_netkey(key);
	store_new(&a, "a.db", key);
	store_new(&b, "b.db", key);
	store_new(&probe, "probe.db", key);
	put(&a, "docs", "a1", "{\"x\":1}");
	put(&b, "docs", "b1", "{\"x\":2}");
	const char *dbs[] = { a.path, b.path };
	NODE_INIT(&na, &a, "--listen", "127.0.0.1:0");
	node_start(&na);
	NODE_INIT(&nb, &b, "--listen", "127.0.0.1:0", "--peer", na.addr);
	node_start(&nb);
	wait_converged(dbs, 2, "a and b");

	const node *ns[2] = { &na, &nb };
	const char *other[2] = { b.id, a.id };
	for (int k = 0; k < 2; k++) {
		int64_t deadline = mono_ms() + DEADLINE_MS;
		for (;;) {
			free(js);
			js = wait_status_peer(&probe, ns[k]->addr, other[k]);
			if (peer_number(js, other[k], "behind") == 0)
				break;
			if (mono_ms() >= deadline) {
				print_error("status: %.3000s\n", js);
				fail_msg("%s still shows its peer behind after %d ms", ns[k]->addr, DEADLINE_MS);
			}
			sleep_ms(POLL_MS);
		}
		for (size_t f = 0; f < sizeof(fields) / sizeof(fields[0]); f++)
			if (peer_number(js, other[k], fields[f]) <= 0) {
				print_error("status: %.3000s\n", js);
				fail_msg("%s: %s of its peer is not positive after a sync", ns[k]->addr, fields[f]);
			}
		free(js);
		js = NULL;
	}
	node_stop(&nb);
	node_stop(&na);
	g_test_done = 1;
}

/*
 * An allow list binds the dialing side too (PROTOCOL.md 6.4): a node told
 * to dial a peer whose id is not on its --allow list refuses that peer's
 * HELLO with ERR 403, before sending its own AUTH, and closes. The peer
 * is played by the test (a listening socket, a real identity of the
 * network). The node's store is untouched, the refusal shows in its status
 * as the dialed peer's last error, and it still serves an allowed store.
 */
static void test_sync_tcp__dialer_refuses_peer_not_allowed(void **state)
{
	char key[65], peer_addr[64], *js, *err, before[65], after[65];
	store n, fresh;
	node nn;
	raw *p;
	struct sockaddr_in sa;
	socklen_t salen = sizeof(sa);
	int lfd, one = 1;
	char *line;
	size_t len;
	run r;
	(void)state;
	random_netkey(key);
	store_new(&n, "node.db", key);
	store_new(&fresh, "fresh.db", key);
	put(&n, "docs", "d1", "{\"x\":1}");
	digest_of(n.path, before);

	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(lfd >= 0);
	for (int i = 0; i < MAX_FDS; i++)
		if (g_fds[i] < 0) {
			g_fds[i] = lfd;
			break;
		}
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	assert_int_equal(inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr), 1);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(lfd, 8), 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&sa, &salen), 0);
	snprintf(peer_addr, sizeof(peer_addr), "127.0.0.1:%d", ntohs(sa.sin_port));

	NODE_INIT(&nn, &n, "--listen", "127.0.0.1:0", "--peer", peer_addr, "--allow", fresh.id);
	node_start(&nn);

	p = raw_new(key); /* a member of the network, but not on the list */
	struct pollfd pf = { lfd, POLLIN, 0 };
	if (poll(&pf, 1, DEADLINE_MS) != 1)
		fail_msg("the node did not dial %s within %d ms", peer_addr, DEADLINE_MS);
	p->fd = accept(lfd, NULL, NULL);
	assert_true(p->fd >= 0);
	for (int i = 0; i < MAX_FDS; i++)
		if (g_fds[i] < 0) {
			g_fds[i] = p->fd;
			break;
		}
	line = raw_need_line(p, &len); /* the dialing node's HELLO */
	if (strncmp(line, "HELLO 1 ", 8) != 0 || strncmp(line + 8, n.id, 2 * LIM_ID_BYTES) != 0)
		fail_msg("wanted the node's HELLO, got: %.200s", line);
	raw_send_hello(p);
	line = raw_need_line(p, &len); /* no AUTH first: straight to the refusal */
	if (strcmp(line, "ERR 403 this node does not accept that peer id") != 0)
		fail_msg("wanted ERR 403 from the dialing node, got: %.200s", line);
	int rc = raw_line(p, &line, &len, DEADLINE_MS);
	if (rc != LINE_EOF)
		fail_msg("the dialing node did not close after ERR 403 (%d)", rc);
	raw_dispose(p);

	/* Its status names the refusal as the dialed peer's last error. */
	int64_t deadline = mono_ms() + DEADLINE_MS;
	for (;;) {
		js = status_of(&fresh, nn.addr);
		err = json_query(js,
		                 "SELECT json_extract(value, '$.last_error') FROM json_each(?1, '$.peers') "
		                 "WHERE json_extract(value, '$.address') = ?2",
		                 peer_addr);
		int found = err && strstr(err, "does not accept that peer id");
		free(err);
		if (found) {
			free(js);
			break;
		}
		if (mono_ms() >= deadline) {
			print_error("status: %.3000s\n", js);
			free(js);
			fail_msg("the node's status does not show the 403 for %s", peer_addr);
		}
		free(js);
		sleep_ms(POLL_MS);
	}

	digest_of(n.path, after);
	assert_string_equal(before, after);
	LIM(&r, "--db", fresh.path, "sync", nn.addr);
	expect_ok(&r, __FILE__, __LINE__);
	run_free(&r);
	digest_of(fresh.path, after);
	assert_string_equal(before, after);
	node_stop(&nn);
	expect_verify_ok(n.path);
	g_test_done = 1;
}

/* ------------------------------------------------------------ main */

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

#define CASE(f) cmocka_unit_test_setup_teardown(f, case_setup, case_teardown)
#define RJ_CASE(f) cmocka_unit_test_setup_teardown(f, case_setup, rj_teardown)

/* ------------------------------------------------------------ a dial nobody answers */

typedef struct {
	pthread_mutex_t mu;
	char lines[4096];
} log_sink;

static void sink_line(void *ctx, const char *line)
{
	log_sink *k = ctx;
	pthread_mutex_lock(&k->mu);
	size_t used = strlen(k->lines);
	snprintf(k->lines + used, sizeof(k->lines) - used, "%s\n", line);
	pthread_mutex_unlock(&k->mu);
}

/*
 * A peer whose host drops our SYNs (here: a listener whose accept queue is
 * full, which Linux answers by dropping SYNs) must not hold a dialer for
 * the kernel's two minutes of retries: the connect is given up after the
 * idle timeout, logged, and retried with backoff like any failed dial.
 */
static void test_sync_tcp__dial_that_is_never_answered_times_out(void **state)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	int lfd, filler[8];
	char addr[64], path[4096];
	lim_db *db;
	lim_node *node;
	lim_node_options o;
	log_sink sink = { PTHREAD_MUTEX_INITIALIZER, "" };
	(void)state;

	lfd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(lfd, 0), 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&sa, &sl), 0);
	/* Fill the accept queue; later SYNs to it are dropped. */
	for (int i = 0; i < 8; i++) {
		filler[i] = socket(AF_INET, SOCK_STREAM, 0);
		fcntl(filler[i], F_SETFL, O_NONBLOCK);
		connect(filler[i], (struct sockaddr *)&sa, sizeof(sa));
	}
	usleep(100 * 1000);
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", ntohs(sa.sin_port));

	snprintf(path, sizeof(path), "%.4000s/unanswered.db", g_dir);
	assert_int_equal(lim_db_open(&db, path, NULL), 0);
	lim_node_options_init(&o, LIM_NODE_OPTIONS_VERSION);
	const char *peers[] = { addr };
	o.peers = peers;
	o.npeers = 1;
	o.idle_timeout_ms = 500;
	o.reconnect_min_ms = 60000;
	o.reconnect_max_ms = 60000;
	o.log = sink_line;
	o.log_ctx = &sink;
	assert_int_equal(lim_node_start(&node, db, &o), 0);
	int seen = 0;
	for (int waited = 0; waited < 20000 && !seen; waited += 50) {
		usleep(50 * 1000);
		pthread_mutex_lock(&sink.mu);
		seen = strstr(sink.lines, "no answer within 500 ms") != NULL;
		pthread_mutex_unlock(&sink.mu);
	}
	if (!seen)
		fail_msg("the dial was not given up; the node logged:\n%s", sink.lines);
	lim_buf st = LIM_BUF_INIT;
	assert_int_equal(lim_node_status(&st, node), 0);
	assert_non_null(strstr((const char *)st.ptr, "no answer within 500 ms"));
	lim_buf_dispose(&st);
	lim_node_free(node);
	lim_db_free(db);
	for (int i = 0; i < 8; i++)
		close(filler[i]);
	close(lfd);
	g_test_done = 1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		CASE(test_sync_tcp__line_topology),
		CASE(test_sync_tcp__partition_heal),
		CASE(test_sync_tcp__sync_once),
		CASE(test_sync_tcp__status),
		CASE(test_sync_tcp__dial_that_is_never_answered_times_out),
		RJ_CASE(test_sync_tcp__reject_garbage_first_line),
		RJ_CASE(test_sync_tcp__reject_unknown_message),
		RJ_CASE(test_sync_tcp__reject_version),
		RJ_CASE(test_sync_tcp__reject_data_before_handshake),
		RJ_CASE(test_sync_tcp__reject_second_hello),
		RJ_CASE(test_sync_tcp__reject_bad_auth_signature),
		RJ_CASE(test_sync_tcp__reject_wrong_network),
		RJ_CASE(test_sync_tcp__reject_not_allowed),
		RJ_CASE(test_sync_tcp__reject_replayed_handshake),
		RJ_CASE(test_sync_tcp__reject_line_too_long),
		RJ_CASE(test_sync_tcp__reject_idle_timeout),
		RJ_CASE(test_sync_tcp__reject_bad_change_signature),
		RJ_CASE(test_sync_tcp__reject_forged_signature_inside_a_run),
		RJ_CASE(test_sync_tcp__author_linked_bad_signature_in_a_run),
		RJ_CASE(test_sync_tcp__accept_own_signed_change),
		RJ_CASE(test_sync_tcp__reject_change_signed_by_another_key),
		RJ_CASE(test_sync_tcp__replay_of_held_changes),
		RJ_CASE(test_sync_tcp__equivocation_and_fork_skipped),
		RJ_CASE(test_sync_tcp__future_change_not_applied),
		RJ_CASE(test_sync_tcp__reject_every_flipped_byte),
		RJ_CASE(test_sync_tcp__line_at_the_limit),
		RJ_CASE(test_sync_tcp__reject_trickled_line),
		RJ_CASE(test_sync_tcp__reject_batch_over_byte_limit),
		RJ_CASE(test_sync_tcp__reject_batch_over_change_count),
		RJ_CASE(test_sync_tcp__reject_vv_over_author_limit),
		RJ_CASE(test_sync_tcp__half_open_connections),
		RJ_CASE(test_sync_tcp__sigterm_sends_bye),
		CASE(test_sync_tcp__status_counters),
		CASE(test_sync_tcp__dialer_refuses_peer_not_allowed),
	};
	char cwd[PATH_MAX];
	int failed;

	g_bin = getenv("LIM_BIN");
	if (!g_bin || !*g_bin || access(g_bin, X_OK) != 0) {
		fprintf(stderr, "test_sync_tcp: LIM_BIN must name the built lim executable (got %s)\n",
		        g_bin && *g_bin ? g_bin : "nothing");
		return 1;
	}
	if (g_bin[0] != '/') {
		static char abs_bin[PATH_MAX * 2];
		if (!getcwd(cwd, sizeof(cwd)))
			return 1;
		snprintf(abs_bin, sizeof(abs_bin), "%s/%s", cwd, g_bin);
		g_bin = abs_bin;
	}
	if (sodium_init() < 0)
		return 1;
	signal(SIGPIPE, SIG_IGN);
	snprintf(g_root, sizeof(g_root), "/tmp/lim-test-sync-tcp-XXXXXX");
	if (!mkdtemp(g_root)) {
		perror("test_sync_tcp: mkdtemp");
		return 1;
	}
	failed = cmocka_run_group_tests_name("sync_tcp", tests, NULL, NULL);
	if (failed == 0)
		nftw(g_root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	else
		fprintf(stderr, "test_sync_tcp: files kept in %s\n", g_root);
	return failed ? 1 : 0;
}
