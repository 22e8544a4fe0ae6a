/*
 * The kill test grown to sync: a node that writes locally and applies a
 * peer's changes at the same time is killed with SIGKILL at random moments
 * (100 times by default; LIM_CRASH_ITERATIONS for the long mode). After
 * each kill its store must verify and hold every write it acknowledged,
 * and the peer's entry in its version vector must never shrink (and must
 * grow across the loop: the victim really applies remote changes between
 * kills). After the loop every acknowledged write is checked, then one
 * sync must make it converge with its peer, and every acknowledged write
 * is checked again, on the converged store. Also: a store on a filesystem
 * that fills up (RLIMIT_FSIZE) refuses writes cleanly and recovers.
 */
#include <errno.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include "support.h"

static const unsigned char NETKEY[LIM_NETWORK_KEY_BYTES] = { 0x5a, 0x11 };

static uint64_t rng_state;
static uint64_t rnd(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static lim_db *open_store(const char *path)
{
	lim_db_options o;
	lim_db *db = NULL;
	lim_db_options_init(&o, LIM_DB_OPTIONS_VERSION);
	o.network_key = NETKEY;
	if (lim_db_open(&db, path, &o) != 0)
		return NULL;
	return db;
}

/* The peer: serves its store and writes to it until told to stop (SIGUSR1),
 * then keeps serving. Reports its address on `fd`. */
static volatile sig_atomic_t peer_stop_writing;
static void on_usr1(int sig)
{
	(void)sig;
	peer_stop_writing = 1;
}

static void run_peer(const char *path, int fd)
{
	lim_db *db = open_store(path);
	lim_node *node;
	lim_node_options o;
	lim_buf addr = LIM_BUF_INIT;
	char doc[32];
	signal(SIGUSR1, on_usr1);
	lim_node_options_init(&o, LIM_NODE_OPTIONS_VERSION);
	o.listen = "127.0.0.1:0";
	if (!db || lim_node_start(&node, db, &o) != 0 || lim_node_address(&addr, node) != 0)
		_exit(2);
	if (write(fd, addr.ptr, addr.size + 1) < 0)
		_exit(2);
	close(fd);
	for (int64_t i = 0;; i++) {
		if (!peer_stop_writing) {
			snprintf(doc, sizeof(doc), "p%lld", (long long)(i % 200));
			if (lim_db_incr(db, "peer", doc, "n", 1) != 0)
				_exit(3);
		}
		usleep(20000);
	}
}

/* The victim: syncs with the peer and writes; acknowledges each write. */
static void run_victim(const char *path, const char *peer_addr, int fd, int64_t first)
{
	lim_db *db = open_store(path);
	lim_node *node;
	lim_node_options o;
	const char *peers[] = { peer_addr };
	char doc[32], json[64];
	lim_node_options_init(&o, LIM_NODE_OPTIONS_VERSION);
	o.peers = peers;
	o.npeers = 1;
	o.reconnect_min_ms = 5;
	if (!db || lim_node_start(&node, db, &o) != 0)
		_exit(2);
	for (int64_t i = first;; i++) {
		snprintf(doc, sizeof(doc), "v%lld", (long long)i);
		snprintf(json, sizeof(json), "{\"i\":%lld}", (long long)i);
		if (lim_db_put_json(db, "victim", doc, json, strlen(json)) != 0)
			_exit(3);
		if (write(fd, &i, sizeof(i)) != (ssize_t)sizeof(i))
			_exit(4);
		/* Paced so the log stays small enough to verify after every
		 * kill: the point is the kill landing mid-write, not volume. */
		usleep(1000);
	}
}

/* The seq of `author_hex` in the store's version vector (0 if absent). */
static uint64_t vv_seq(lim_db *db, const char *author_hex)
{
	lim_buf vv = LIM_BUF_INIT;
	uint64_t seq = 0;
	assert_int_equal(lim_db_version_vector(&vv, db), 0);
	for (const char *line = vv.ptr; line && *line;) {
		const char *nl = strchr(line, '\n');
		if (strncmp(line, author_hex, 2 * LIM_ID_BYTES) == 0 && line[2 * LIM_ID_BYTES] == ' ')
			seq = strtoull(line + 2 * LIM_ID_BYTES + 1, NULL, 10);
		line = nl ? nl + 1 : NULL;
	}
	lim_buf_dispose(&vv);
	return seq;
}

/* Every write 0..acked is in the store with the value it was written with. */
static void check_every_acked_write(lim_db *db, int64_t acked, const char *when)
{
	for (int64_t k = 0; k <= acked; k++) {
		char doc[32], want[64];
		snprintf(doc, sizeof(doc), "v%lld", (long long)k);
		snprintf(want, sizeof(want), "{\"i\":%lld}", (long long)k);
		char *got = json_of(db, "victim", doc, NULL);
		if (!got || strcmp(got, want) != 0)
			fail_msg("%s: acknowledged write %lld is missing (%s)", when, (long long)k, got ? got : "absent");
		free(got);
	}
}

static char *peer_digest(const char *path)
{
	lim_db *db = open_store(path);
	char *d = calloc(1, 65);
	assert_non_null(db);
	assert_int_equal(lim_db_digest(db, d), 0);
	lim_db_free(db);
	return d;
}

static void test_crashloop__sync_node_killed_at_random(void **state)
{
	char *dir = make_tmpdir(), *ppath = path_in(dir, "peer.db"), *vpath = path_in(dir, "victim.db");
	const char *env = getenv("LIM_CRASH_ITERATIONS");
	int iterations = env ? atoi(env) : 100, p[2];
	char addr[128] = "";
	int64_t acked = -1; /* highest acknowledged write so far */
	pid_t peer;
	(void)state;
	rng_state = getenv("LIM_CRASH_SEED") ? strtoull(getenv("LIM_CRASH_SEED"), NULL, 10) : (uint64_t)time(NULL);
	print_message("crashloop seed %llu (rerun with LIM_CRASH_SEED), %d kills\n", (unsigned long long)rng_state,
	              iterations);

	/* The peer's store exists before it runs, so its author id is known. */
	char peer_hex[2 * LIM_ID_BYTES + 1];
	{
		unsigned char id[LIM_ID_BYTES];
		lim_db *pdb = open_store(ppath);
		assert_non_null(pdb);
		assert_int_equal(lim_db_replica_id(pdb, id), 0);
		for (int b = 0; b < LIM_ID_BYTES; b++)
			snprintf(peer_hex + 2 * b, 3, "%02x", id[b]);
		lim_db_free(pdb);
	}
	uint64_t peer_seq = 0, peer_seq_first = 0;
	int kills_with_remote = 0; /* kills after which the victim held more of the peer */

	assert_int_equal(pipe(p), 0);
	peer = fork();
	assert_true(peer >= 0);
	if (peer == 0) {
		close(p[0]);
		run_peer(ppath, p[1]);
	}
	close(p[1]);
	assert_true(read(p[0], addr, sizeof(addr) - 1) > 0);
	close(p[0]);

	for (int it = 0; it < iterations; it++) {
		int q[2];
		assert_int_equal(pipe(q), 0);
		pid_t v = fork();
		assert_true(v >= 0);
		if (v == 0) {
			close(q[0]);
			run_victim(vpath, addr, q[1], acked + 1);
		}
		close(q[1]);
		usleep((useconds_t)(10000 + rnd() % 90000)); /* 10..100 ms */
		kill(v, SIGKILL);
		int status;
		assert_int_equal(waitpid(v, &status, 0), v);
		int64_t i;
		while (read(q[0], &i, sizeof(i)) == (ssize_t)sizeof(i))
			acked = i;
		close(q[0]);
		if (WIFEXITED(status))
			fail_msg("kill %d: the victim exited by itself with %d", it, WEXITSTATUS(status));

		/* Recovery: verify, and every acknowledged write is there. */
		lim_db *db = open_store(vpath);
		if (!db)
			fail_msg("kill %d: reopening failed: %s", it, lim_error_last());
		if (lim_db_verify(db) != 0)
			fail_msg("kill %d: verify: %s", it, lim_error_last());
		for (int64_t k = acked; k >= 0 && k > acked - 20; k--) {
			char doc[32], want[64];
			snprintf(doc, sizeof(doc), "v%lld", (long long)k);
			snprintf(want, sizeof(want), "{\"i\":%lld}", (long long)k);
			char *got = json_of(db, "victim", doc, NULL);
			if (!got || strcmp(got, want) != 0)
				fail_msg("kill %d: acknowledged write %lld is missing", it, (long long)k);
			free(got);
		}
		/* What it applied from the peer is durable too: never less. */
		uint64_t seq = vv_seq(db, peer_hex);
		if (seq < peer_seq)
			fail_msg("kill %d: the peer's entry in the victim's VV went back from %llu to %llu", it,
			         (unsigned long long)peer_seq, (unsigned long long)seq);
		kills_with_remote += seq > peer_seq;
		if (it == 0)
			peer_seq_first = seq;
		peer_seq = seq;
		lim_db_free(db);
	}
	assert_true(acked > 0);
	print_message("crashloop: the peer's seq in the victim's VV went %llu -> %llu, growing across %d of %d kills\n",
	              (unsigned long long)peer_seq_first, (unsigned long long)peer_seq, kills_with_remote, iterations);
	/* The victim applied remote changes throughout, not once at the start:
	 * the peer writes every 20 ms and the victim lives 10..100 ms a time.
	 * Seen: in 99 of 100 lives (release), 85 (ASan); a tenth leaves room
	 * for a loaded machine while still failing a victim that stopped
	 * syncing after its first few lives. */
	if (peer_seq <= peer_seq_first || kills_with_remote < iterations / 10)
		fail_msg("the victim applied remote changes in only %d of %d lives", kills_with_remote, iterations);

	/* Every acknowledged write survived the kills, before any sync could
	 * bring one back from the peer. */
	{
		lim_db *pre = open_store(vpath);
		assert_non_null(pre);
		assert_int_equal(lim_db_verify(pre), 0);
		check_every_acked_write(pre, acked, "before the last sync");
		lim_db_free(pre);
	}

	/* Quiesce the peer, then one last sync must bring both to one state. */
	kill(peer, SIGUSR1);
	usleep(50000);
	lim_db *db = open_store(vpath);
	assert_non_null(db);
	lim_sync_stats st;
	if (lim_sync_once(db, addr, 30000, &st) != 0)
		fail_msg("final sync: %s", lim_error_last());
	char vd[65];
	assert_int_equal(lim_db_digest(db, vd), 0);
	char *pd = peer_digest(ppath);
	assert_string_equal(vd, pd);
	free(pd);
	/* And on the converged store (the same digest as the peer's). */
	check_every_acked_write(db, acked, "after the last sync");
	assert_int_equal(lim_db_verify(db), 0);
	lim_db_free(db);
	kill(peer, SIGKILL);
	waitpid(peer, NULL, 0);
	print_message("crashloop: %d kills, %lld acknowledged writes, none lost\n", iterations, (long long)acked + 1);
	remove_tree(dir);
	free(dir);
	free(ppath);
	free(vpath);
}

/* A full filesystem: writes fail cleanly, and work again with space. */
static void test_crashloop__disk_full_refuses_cleanly_and_recovers(void **state)
{
	char *dir = make_tmpdir(), *path = path_in(dir, "full.db");
	int p[2];
	(void)state;
	lim_db *db = open_store(path);
	assert_non_null(db);
	lim_db_free(db);
	assert_int_equal(pipe(p), 0);
	pid_t c = fork();
	assert_true(c >= 0);
	if (c == 0) {
		/* 1 MiB of file size is all this process may write. */
		struct rlimit rl = { 1 << 20, 1 << 20 };
		signal(SIGXFSZ, SIG_IGN);
		close(p[0]);
		setrlimit(RLIMIT_FSIZE, &rl);
		lim_db *d = open_store(path);
		char doc[32], big[2048];
		memset(big, 'x', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		if (!d)
			_exit(2);
		for (int64_t i = 0;; i++) {
			lim_value v = { LIM_STRING, 0, 0, 0, big, sizeof(big) - 1 };
			snprintf(doc, sizeof(doc), "d%lld", (long long)i);
			int rc = lim_db_set(d, "fill", doc, "blob", &v);
			if (rc != 0) {
				/* Report the code, then prove the handle still answers. */
				int64_t msg[2] = { -1, rc };
				if (write(p[1], msg, sizeof(msg)) < 0)
					_exit(4);
				char digest[65];
				_exit(lim_db_digest(d, digest) == 0 ? 0 : 5);
			}
			int64_t msg[2] = { i, 0 };
			if (write(p[1], msg, sizeof(msg)) < 0)
				_exit(4);
		}
	}
	close(p[1]);
	int64_t msg[2], acked = -1, code = 0;
	while (read(p[0], msg, sizeof(msg)) == (ssize_t)sizeof(msg)) {
		if (msg[0] < 0)
			code = msg[1];
		else
			acked = msg[0];
	}
	close(p[0]);
	int status;
	assert_int_equal(waitpid(c, &status, 0), c);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail_msg("the writer did not stop cleanly on a full disk (status %d)", status);
	assert_true(acked > 10);
	if (code != LIM_EIO && code != LIM_EFAILED)
		fail_msg("a full disk gave %s, not LIM_EIO/LIM_EFAILED", lim_error_name((int)code));
	/* Space is back (no limit here): the store verifies, holds every
	 * acknowledged write, and takes writes again. */
	db = open_store(path);
	assert_non_null(db);
	assert_int_equal(lim_db_verify(db), 0);
	for (int64_t k = 0; k <= acked; k++) {
		char doc[32];
		lim_field *f;
		snprintf(doc, sizeof(doc), "d%lld", (long long)k);
		if (lim_db_get_field(&f, db, "fill", doc, "blob") != 0)
			fail_msg("acknowledged write %lld is missing after the disk filled", (long long)k);
		lim_field_free(f);
	}
	lim_value v = int_value(1);
	assert_int_equal(lim_db_set(db, "after", "space", "back", &v), 0);
	lim_db_free(db);
	print_message("disk full after %lld writes: %s; recovered\n", (long long)acked + 1, lim_error_name((int)code));
	remove_tree(dir);
	free(dir);
	free(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crashloop__sync_node_killed_at_random),
		cmocka_unit_test(test_crashloop__disk_full_refuses_cleanly_and_recovers),
	};
	return cmocka_run_group_tests_name("crashloop", tests, NULL, NULL);
}
