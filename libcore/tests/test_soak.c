/*
 * Resource bounds under load. Soak: three nodes in a triangle write and
 * sync continuously for LIM_SOAK_SECONDS (default 40; the long mode sets
 * more) while their RSS, open descriptors and WAL size are sampled; none
 * may keep growing. Half-open connections: 1,000 connections that never
 * speak cannot take a node down, and it serves a real peer once they time
 * out. Big lines: a change just under the line limit syncs.
 */
#include <dirent.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <time.h>
#include "support.h"

static const unsigned char NETKEY[LIM_NETWORK_KEY_BYTES] = { 0x50, 0xa1 };

static lim_db *open_store(const char *path)
{
	lim_db_options o;
	lim_db *db = NULL;
	lim_db_options_init(&o, LIM_DB_OPTIONS_VERSION);
	o.network_key = NETKEY;
	return lim_db_open(&db, path, &o) == 0 ? db : NULL;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A node process: listens, dials `peer` (may be empty), writes every 5 ms
 * while it runs. Its address goes to fd. */
static void run_node(const char *path, const char *listen, const char *peer, int fd, int writer_id)
{
	lim_db *db = open_store(path);
	lim_node *node;
	lim_node_options o;
	lim_buf addr = LIM_BUF_INIT;
	const char *peers[1] = { peer };
	char doc[32], json[96];
	lim_node_options_init(&o, LIM_NODE_OPTIONS_VERSION);
	o.listen = listen;
	o.peers = peers;
	o.npeers = peer && *peer ? 1 : 0;
	if (!db || lim_node_start(&node, db, &o) != 0 || lim_node_address(&addr, node) != 0)
		_exit(2);
	if (write(fd, addr.ptr, addr.size + 1) < 0)
		_exit(2);
	close(fd);
	for (int64_t i = 0;; i++) {
		snprintf(doc, sizeof(doc), "w%d-%lld", writer_id, (long long)(i % 500));
		snprintf(json, sizeof(json), "{\"i\":%lld,\"s\":\"soak soak soak\"}", (long long)i);
		if (lim_db_put_json(db, "soak", doc, json, strlen(json)) != 0 ||
		    lim_db_incr(db, "soak", "shared", "n", 1) != 0)
			_exit(3);
		usleep(5000);
	}
}

static long proc_kb(pid_t pid, const char *field)
{
	char path[64], line[256];
	long v = -1;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, field, strlen(field)) == 0)
			v = atol(line + strlen(field) + 1);
	fclose(f);
	return v;
}

static int proc_fds(pid_t pid)
{
	char path[64];
	int n = 0;
	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	DIR *d = opendir(path);
	if (!d)
		return -1;
	for (struct dirent *e; (e = readdir(d));)
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

static long file_kb(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? (long)(st.st_size / 1024) : 0;
}

static pid_t spawn_node(const char *path, const char *peer, char *addr_out, int writer_id)
{
	int p[2];
	assert_int_equal(pipe(p), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(p[0]);
		run_node(path, "127.0.0.1:0", peer, p[1], writer_id);
	}
	close(p[1]);
	assert_true(read(p[0], addr_out, 127) > 0);
	close(p[0]);
	return pid;
}

static void test_soak__three_nodes_stay_bounded(void **state)
{
	char *dir = make_tmpdir(), *paths[3], addrs[3][128], wal[3][600];
	pid_t pids[3];
	const char *env = getenv("LIM_SOAK_SECONDS");
	int seconds = env ? atoi(env) : 40;
	enum { MAXS = 4096 };
	static long rss[3][MAXS], walkb[3][MAXS];
	static int fds[3][MAXS];
	int ns = 0;
	(void)state;
	for (int i = 0; i < 3; i++) {
		char name[16];
		snprintf(name, sizeof(name), "n%d.db", i);
		paths[i] = path_in(dir, name);
		snprintf(wal[i], sizeof(wal[i]), "%s-wal", paths[i]);
	}
	/* A triangle: 0 listens, 1 dials 0, 2 dials 1, and 0 ... dials 2 via 2's
	 * address once known: here 2 dials 1 and 1 dials 0; a line is enough
	 * to keep every node both writing and relaying. */
	pids[0] = spawn_node(paths[0], "", addrs[0], 0);
	pids[1] = spawn_node(paths[1], addrs[0], addrs[1], 1);
	pids[2] = spawn_node(paths[2], addrs[1], addrs[2], 2);
	int64_t end = now_ms() + (int64_t)seconds * 1000;
	while (now_ms() < end && ns < MAXS) {
		usleep(250000);
		for (int i = 0; i < 3; i++) {
			rss[i][ns] = proc_kb(pids[i], "VmRSS:");
			fds[i][ns] = proc_fds(pids[i]);
			walkb[i][ns] = file_kb(wal[i]);
			if (rss[i][ns] < 0)
				fail_msg("node %d died during the soak", i);
		}
		ns++;
	}
	for (int i = 0; i < 3; i++)
		kill(pids[i], SIGKILL);
	for (int i = 0; i < 3; i++)
		waitpid(pids[i], NULL, 0);
	assert_true(ns >= 8);
	/* Growth check: the last quarter against the second quarter, after
	 * warm-up. RSS may wobble (allocator, SQLite cache fill) but must not
	 * climb steadily; descriptors must not grow at all; the WAL is bounded
	 * by SQLite's auto-checkpoint. */
	for (int i = 0; i < 3; i++) {
		long r2 = 0, r4 = 0, wmax = 0;
		int f2 = 0, f4 = 0, q = ns / 4;
		for (int k = q; k < 2 * q; k++) {
			r2 = rss[i][k] > r2 ? rss[i][k] : r2;
			f2 = fds[i][k] > f2 ? fds[i][k] : f2;
		}
		for (int k = 3 * q; k < ns; k++) {
			r4 = rss[i][k] > r4 ? rss[i][k] : r4;
			f4 = fds[i][k] > f4 ? fds[i][k] : f4;
		}
		for (int k = 0; k < ns; k++)
			wmax = walkb[i][k] > wmax ? walkb[i][k] : wmax;
		print_message("soak node %d: %d samples, peak RSS %ld -> %ld KiB, fds %d -> %d, WAL max %ld KiB\n", i, ns,
		              r2, r4, f2, f4, wmax);
		if (r4 > r2 + r2 / 4 + 4096)
			fail_msg("node %d: RSS grew from %ld to %ld KiB", i, r2, r4);
		if (f4 > f2)
			fail_msg("node %d: open descriptors grew from %d to %d", i, f2, f4);
		if (wmax > 32 * 1024)
			fail_msg("node %d: WAL reached %ld KiB", i, wmax);
	}
	/* And they agree once quiet. */
	lim_db *d[3];
	char dig[3][65];
	for (int i = 0; i < 3; i++) {
		d[i] = open_store(paths[i]);
		assert_non_null(d[i]);
		assert_int_equal(lim_db_verify(d[i]), 0);
	}
	lim_sync_stats st;
	/* The nodes are gone; bring the stores together by packs-free one-shot
	 * syncs through a temporary node on store 1. */
	lim_node *hub;
	lim_node_options o;
	lim_buf a = LIM_BUF_INIT;
	lim_node_options_init(&o, LIM_NODE_OPTIONS_VERSION);
	o.listen = "127.0.0.1:0";
	assert_int_equal(lim_node_start(&hub, d[1], &o), 0);
	assert_int_equal(lim_node_address(&a, hub), 0);
	for (int round = 0; round < 2; round++) {
		assert_int_equal(lim_sync_once(d[0], a.ptr, 30000, &st), 0);
		assert_int_equal(lim_sync_once(d[2], a.ptr, 30000, &st), 0);
	}
	lim_node_free(hub);
	lim_buf_dispose(&a);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(lim_db_digest(d[i], dig[i]), 0);
		lim_db_free(d[i]);
		free(paths[i]);
	}
	assert_string_equal(dig[0], dig[1]);
	assert_string_equal(dig[1], dig[2]);
	remove_tree(dir);
	free(dir);
}

static void test_soak__half_open_connections(void **state)
{
	char *dir = make_tmpdir(), *path = path_in(dir, "node.db"), *other = path_in(dir, "other.db");
	lim_db *db = open_store(path), *peer = open_store(other);
	lim_node *node;
	lim_node_options o;
	lim_buf addr = LIM_BUF_INIT;
	struct rlimit rl;
	enum { N = 1000 };
	static int socks[N];
	(void)state;
	getrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_cur < 2 * N + 64) {
		rl.rlim_cur = rl.rlim_max < 4096 ? rl.rlim_max : 4096;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	assert_non_null(db);
	assert_non_null(peer);
	lim_value v = str_value("still here");
	assert_int_equal(lim_db_set(db, "c", "d", "f", &v), 0);
	lim_node_options_init(&o, LIM_NODE_OPTIONS_VERSION);
	o.listen = "127.0.0.1:0";
	o.idle_timeout_ms = 1000;
	o.keepalive_ms = 300;
	assert_int_equal(lim_node_start(&node, db, &o), 0);
	assert_int_equal(lim_node_address(&addr, node), 0);
	char host[64];
	int port;
	assert_int_equal(sscanf(addr.ptr, "%63[^:]:%d", host, &port), 2);
	struct sockaddr_in sa = { 0 };
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	inet_pton(AF_INET, host, &sa.sin_addr);
	int opened = 0;
	for (int i = 0; i < N; i++) {
		socks[i] = socket(AF_INET, SOCK_STREAM, 0);
		if (socks[i] < 0)
			break;
		if (connect(socks[i], (struct sockaddr *)&sa, sizeof(sa)) != 0) {
			close(socks[i]);
			socks[i] = -1;
			continue;
		}
		opened++;
	}
	assert_true(opened >= N / 2);
	/* Silence: within the idle timeout every slot is free again, and a
	 * real peer syncs. */
	int64_t deadline = now_ms() + 15000;
	int synced = 0;
	lim_sync_stats st;
	while (now_ms() < deadline && !synced) {
		usleep(200000);
		synced = lim_sync_once(peer, addr.ptr, 5000, &st) == 0;
	}
	if (!synced)
		fail_msg("the node did not serve a real peer after %d silent connections: %s", opened, lim_error_last());
	assert_json(peer, "c", "d", "f", "\"still here\"");
	for (int i = 0; i < N; i++)
		if (socks[i] >= 0)
			close(socks[i]);
	print_message("half-open: %d silent connections, then a real sync succeeded\n", opened);
	lim_node_free(node);
	lim_buf_dispose(&addr);
	lim_db_free(db);
	lim_db_free(peer);
	remove_tree(dir);
	free(dir);
	free(path);
	free(other);
}

static void test_soak__change_just_under_the_line_limit_syncs(void **state)
{
	lim_db *a, *b;
	lim_node *node;
	lim_node_options o;
	lim_buf addr = LIM_BUF_INIT;
	lim_sync_stats st;
	char *big = malloc(LIM_MAX_VALUE_BYTES);
	char da[65], db[65];
	(void)state;
	assert_non_null(a = open_store(":memory:"));
	assert_non_null(b = open_store(":memory:"));
	memset(big, 'y', LIM_MAX_VALUE_BYTES);
	/* Three 1 MiB strings in one change: about 3 MiB of line, near the
	 * 4 MiB change limit (four would not fit with their escapes). */
	assert_int_equal(lim_db_begin(a), 0);
	for (int i = 0; i < 3; i++) {
		char path[8];
		lim_value v = { LIM_STRING, 0, 0, 0, big, LIM_MAX_VALUE_BYTES };
		snprintf(path, sizeof(path), "f%d", i);
		assert_int_equal(lim_db_set(a, "big", "doc", path, &v), 0);
	}
	assert_int_equal(lim_db_commit(a), 0);
	lim_node_options_init(&o, LIM_NODE_OPTIONS_VERSION);
	o.listen = "127.0.0.1:0";
	assert_int_equal(lim_node_start(&node, a, &o), 0);
	assert_int_equal(lim_node_address(&addr, node), 0);
	if (lim_sync_once(b, addr.ptr, 30000, &st) != 0)
		fail_msg("sync of a large change: %s", lim_error_last());
	assert_int_equal(st.changes_in, 1);
	assert_int_equal(lim_db_digest(a, da), 0);
	assert_int_equal(lim_db_digest(b, db), 0);
	assert_string_equal(da, db);
	lim_node_free(node);
	lim_buf_dispose(&addr);
	lim_db_free(a);
	lim_db_free(b);
	free(big);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_soak__change_just_under_the_line_limit_syncs),
		cmocka_unit_test(test_soak__half_open_connections),
		cmocka_unit_test(test_soak__three_nodes_stay_bounded),
	};
	return cmocka_run_group_tests_name("soak", tests, NULL, NULL);
}
