/*
 * Deterministic network simulation of the sync protocol (DESIGN.md
 * invariant 6: the session is a state machine with no I/O, so a test can be
 * its network).
 *
 * Every node is a real lim_db on a real SQLite file in a mkdtemp directory,
 * opened with an injected clock that returns simulated time (plus a small
 * per-node skew) and one shared network key. A connection is a pair of
 * lim_session objects (initiator 1 on the dialing node, 0 on the other),
 * driven exactly as node.c drives them:
 *
 *  - output is "sent" by moving it onto a simulated wire (sometimes only
 *    part of it, like a full socket buffer) and consuming it;
 *  - the wire delivers it after a random delay, split at random points
 *    (sometimes byte by byte); bytes of one direction of one connection stay
 *    in order (TCP), but deliveries of different connections interleave in
 *    any order (an event queue ordered by delivery time);
 *  - delivered bytes go to lim_session__feed; a negative result flushes
 *    what the session still has to say and closes that side, and the peer
 *    sees end-of-file after the bytes in flight;
 *  - the store's on_commit hook (db.h) only sets a "wake" flag, as node.c's
 *    writes to its wake pipe; the node's next loop iteration then marks
 *    every session dirty, and every iteration ticks, pumps and flushes every
 *    session. Loop iterations also run periodically for the timers.
 *
 * The random phase mixes local writes of every kind (at least 20% on keys
 * shared by all nodes; single ops and transactions, some rolled back) with
 * connects, hard drops, polite closes (BYE), partitions (links either reset
 * or black-holed until the heal, so idle timeouts and keep-alives fire),
 * heals and restarts (every session of the node dropped, lim_db_free, the
 * file reopened). Topologies are random: lines and stars where some pairs
 * never connect, so changes must be relayed, and random connected graphs.
 * Session settings are the defaults with idle timeouts and keep-alives
 * scaled to the simulated time, and often a tiny batch (1..7), window and
 * output high-water mark, chosen per session.
 *
 * Then every partition heals, a spanning tree of the topology is kept
 * connected (as dialers would), and the network runs until quiescent: no
 * bytes in flight, nothing waiting in any session, every session
 * authenticated and reporting synced. All digests and version vectors must
 * be equal and lim_db_verify() must pass on every node. A session closed
 * with any ERR other than the idle timeout, or a received batch with
 * skipped changes, fails the test. The exception: in about 15% of the seeds
 * a node's clock jumps beyond the drift bound and back, so peers skip its
 * changes (and those stuck behind them) and must fetch them again on the
 * same connections once the clocks are right; there the final phase also
 * waits for equal version vectors.
 *
 * Library randomness (Ed25519 keys, handshake nonces) comes from a
 * deterministic randombytes implementation seeded per case, so a seed
 * replays exactly.
 *
 * Focused cases: relay along a line A-B-C (catch-up and live push); a
 * receiver, then a sender, restarted from its file in the middle of a
 * catch-up; batch 1 / window 1 / high-water 1 with tiny socket buffers; a
 * polite close (BYE) during the handshake.
 *
 * The stores live in a mkdtemp directory under $TMPDIR, else /dev/shm, else
 * /tmp (fsync is not what this test is about).
 *
 *   LIM_SEEDS=n      number of seeds to run (default 200, seeds 1..n)
 *   LIM_SEED=s       run only seed s (each seed is printed to stderr before
 *                    it runs, so a crash or timeout still names it)
 *   LIM_SIM_TRACE=1  print every action and delivered chunk
 */
#define _POSIX_C_SOURCE 200809L

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <float.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sodium.h>

#include "lim.h"
#include "session.h"

/* ------------------------------------------------------------ reporting */

static unsigned long long g_seed;
static int g_have_seed;
static const char *g_case = "";
static const char *g_simdir; /* stores of the running case, kept on failure */

static void report_failure(const char *file, int line, const char *expr, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void report_failure(const char *file, int line, const char *expr, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	print_error("%s:%d: check failed: %s\n", file, line, expr);
	if (msg[0])
		print_error("  %s\n", msg);
	print_error("  last library error: %s: %s\n", lim_error_name(lim_error_last_code()), lim_error_last());
	if (g_have_seed)
		print_error("case %s, seed %llu (rerun with LIM_SEED=%llu)\n", g_case, g_seed, g_seed);
	else
		print_error("case %s\n", g_case);
	if (g_simdir)
		print_error("the stores are kept in %s\n", g_simdir);
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

/* LIM_SIM_TRACE=1: print every action and every delivered chunk (with LIM_SEED). */
static int g_trace = -1;

static int tracing(void)
{
	if (g_trace < 0) {
		const char *t = getenv("LIM_SIM_TRACE");
		g_trace = t && *t && *t != '0';
	}
	return g_trace;
}

#define TRACE(...) do { if (tracing()) print_message(__VA_ARGS__); } while (0)

/* ------------------------------------------------------------ PRNG (splitmix64) */

typedef struct {
	uint64_t s;
} rng;

static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static uint64_t rng_next(rng *g)
{
	return splitmix(&g->s);
}

static uint64_t rng_below(rng *g, uint64_t n)
{
	return n ? rng_next(g) % n : 0;
}

static int rng_chance(rng *g, unsigned pct)
{
	return rng_below(g, 100) < pct;
}

#define PICK(g, arr) ((arr)[rng_below((g), sizeof(arr) / sizeof((arr)[0]))])

/* ------------------------------------------------------------ deterministic libsodium randomness */

static uint64_t g_det_state = 1;

static const char *det_name(void)
{
	return "lim-test-sim";
}

static uint32_t det_random(void)
{
	return (uint32_t)(splitmix(&g_det_state) >> 32);
}

static void det_buf(void *const buf, const size_t size)
{
	unsigned char *p = buf;
	for (size_t i = 0; i < size; i += 8) {
		uint64_t v = splitmix(&g_det_state);
		for (size_t j = 0; j < 8 && i + j < size; j++)
			p[i + j] = (unsigned char)(v >> (8 * j));
	}
}

static randombytes_implementation g_det_impl = { det_name, det_random, NULL, NULL, det_buf, NULL };

static void det_reseed(uint64_t seed)
{
	g_det_state = seed * 0xD1B54A32D192ED03ull + 0x1234567ull;
}

/* ------------------------------------------------------------ the simulation */

#define MAX_NODES 8
#define MAX_CONNS 48
#define BASE_TIME_MS INT64_C(1700000000000)

static const unsigned char k_network_key[LIM_NETWORK_KEY_BYTES] = {
	's', 'i', 'm', '-', 'n', 'e', 't', 'w', 'o', 'r', 'k', '-', 'k', 'e', 'y', 0,
	1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16
};

typedef struct chunk {
	struct chunk *next;
	int64_t t;
	int fin; /* end of file: the writing side closed */
	size_t n;
	char data[];
} chunk;

typedef struct {
	chunk *head, *tail;
	int64_t last_t;
} wire;

struct sim;

typedef struct {
	struct sim *sim;
	int conn, side;
} side_ctx;

typedef struct {
	int used;
	unsigned gen;
	int node[2];          /* node[0] dialed (initiator), node[1] accepted */
	lim_session *s[2];    /* NULL once that side closed */
	wire w[2];            /* w[k]: written by side k, read by side 1-k */
	size_t sndbuf;        /* bytes taken per flush (0: everything) */
	side_ctx ctx[2];
} sconn;

typedef struct {
	struct sim *sim;
	int idx;
	lim_db *db;
	char *path;
	int64_t skew;
	int wake;             /* set by the commit hook */
	int wake_scheduled;
	int wrote;
	unsigned char id[LIM_ID_BYTES];
} snode;

enum { EV_DELIVER, EV_LOOP, EV_WAKE };

typedef struct {
	int64_t t;
	uint64_t seq;
	int kind, a, dir;
	unsigned gen;
} event;

typedef struct {
	unsigned long seeds, writes, hot, txns, rollbacks, connects, drops, byes, partitions, heals,
	    restarts, deliveries, byte_chunks, partial_flushes, timeouts, changes_in, small_batch_sessions,
	    deferred, skews, skipped_batches;
	int64_t sim_ms;
} sim_stats;

/* How a case drives the network. */
typedef struct {
	int nnodes;
	int topology;         /* TOPO_* */
	int nactions;         /* random actions before the final phase */
	unsigned p_write, p_connect, p_drop, p_bye, p_partition, p_heal, p_restart; /* weights */
	unsigned p_skew;      /* a node's clock jumps beyond the drift bound, or back */
	int cfg_mode;         /* CFG_* */
	int64_t idle_ms, keepalive_ms;
	int small_sndbuf;
} sim_params;

enum { TOPO_RANDOM, TOPO_LINE, TOPO_STAR, TOPO_RING, TOPO_FULL, TOPO_COUNT };
enum { CFG_MIXED, CFG_DEFAULT, CFG_TINY, CFG_SMALL };

typedef struct sim {
	rng g;
	int64_t now;
	int n;
	sim_params P;
	snode nodes[MAX_NODES];
	unsigned char edge[MAX_NODES][MAX_NODES];
	unsigned char down[MAX_NODES][MAX_NODES];
	unsigned char span[MAX_NODES][MAX_NODES];
	sconn conns[MAX_CONNS];
	event *heap;
	size_t nheap, capheap;
	uint64_t evseq;
	size_t in_flight;     /* chunks on wires */
	char *dir;
	int final_phase;
	char anomaly[512];    /* first problem reported through a callback */
	sim_stats *st;
} sim;

/* ------------------------------------------------------------ event queue */

static int ev_before(const event *a, const event *b)
{
	return a->t < b->t || (a->t == b->t && a->seq < b->seq);
}

static void ev_push(sim *S, int64_t t, int kind, int a, int dir, unsigned gen)
{
	event e = { t, S->evseq++, kind, a, dir, gen };
	size_t i;
	if (S->nheap == S->capheap) {
		S->capheap = S->capheap ? 2 * S->capheap : 256;
		S->heap = realloc(S->heap, S->capheap * sizeof(*S->heap));
		REQUIRE(S->heap != NULL, "%s", "out of memory");
	}
	i = S->nheap++;
	while (i > 0 && ev_before(&e, &S->heap[(i - 1) / 2])) {
		S->heap[i] = S->heap[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	S->heap[i] = e;
}

static event ev_pop(sim *S)
{
	event top = S->heap[0], last = S->heap[--S->nheap];
	size_t i = 0;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= S->nheap)
			break;
		if (c + 1 < S->nheap && ev_before(&S->heap[c + 1], &S->heap[c]))
			c++;
		if (!ev_before(&S->heap[c], &last))
			break;
		S->heap[i] = S->heap[c];
		i = c;
	}
	if (S->nheap)
		S->heap[i] = last;
	return top;
}

/* ------------------------------------------------------------ nodes */

static int64_t node_clock(void *ctx)
{
	const snode *nd = ctx;
	return BASE_TIME_MS + nd->sim->now + nd->skew;
}

/* The store's commit hook, as node.c installs it: only note the wake-up. */
static void node_on_commit(void *ctx)
{
	((snode *)ctx)->wake = 1;
}

static void node_open(sim *S, int i)
{
	snode *nd = &S->nodes[i];
	lim_db_options o;
	unsigned char key[LIM_NETWORK_KEY_BYTES];

	RC_OK(lim_db_options_init(&o, LIM_DB_OPTIONS_VERSION));
	o.clock = node_clock;
	o.clock_ctx = nd;
	o.network_key = k_network_key;
	nd->db = NULL;
	RC_OK(lim_db_open(&nd->db, nd->path, &o));
	REQUIRE(nd->db != NULL, "%s", "lim_db_open gave no handle");
	RC_OK(lim_db_network_key(nd->db, key));
	REQUIRE(memcmp(key, k_network_key, sizeof(key)) == 0, "node %d: network key differs", i);
	LIM_DB_LOCK(nd->db);
	nd->db->on_commit = node_on_commit;
	nd->db->on_commit_ctx = nd;
	LIM_DB_UNLOCK(nd->db);
}

static void node_close(sim *S, int i)
{
	snode *nd = &S->nodes[i];
	LIM_DB_LOCK(nd->db);
	nd->db->on_commit = NULL;
	nd->db->on_commit_ctx = NULL;
	LIM_DB_UNLOCK(nd->db);
	lim_db_free(nd->db);
	nd->db = NULL;
	nd->wake = 0;
}

/* After anything that may have committed on node i: wake its loop soon. */
static void schedule_wake(sim *S, int i)
{
	snode *nd = &S->nodes[i];
	if (nd->wake && !nd->wake_scheduled) {
		nd->wake_scheduled = 1;
		ev_push(S, S->now + (int64_t)rng_below(&S->g, 3), EV_WAKE, i, 0, 0);
	}
}

/* ------------------------------------------------------------ session callbacks */

static void side_log(void *ctx, const char *msg)
{
	side_ctx *sc = ctx;
	sim *S = sc->sim;
	/* A batch with skipped changes means the sender believed we held a
	 * predecessor we lack, or a clock or equivocation problem: only the
	 * clock jumps of skew seeds may cause one. */
	if (!strstr(msg, ": skipped "))
		return;
	S->st->skipped_batches++;
	if (!S->anomaly[0] && !S->P.p_skew)
		snprintf(S->anomaly, sizeof(S->anomaly), "node %d (conn %d side %d) %s",
		         S->conns[sc->conn].node[sc->side], sc->conn, sc->side, msg);
}

static void side_applied(void *ctx, const unsigned char author[LIM_ID_BYTES], uint64_t seq)
{
	side_ctx *sc = ctx;
	(void)author;
	(void)seq;
	sc->sim->st->changes_in++;
}

static void make_cfg(sim *S, sconn *c, int k, lim_session_config *cfg)
{
	lim_session_config__defaults(cfg);
	cfg->idle_timeout_ms = S->P.idle_ms;
	cfg->keepalive_ms = S->P.keepalive_ms;
	if (S->P.cfg_mode == CFG_TINY) {
		cfg->batch_changes = 1;
		cfg->window_changes = 1;
		cfg->output_high_water = 1;
	} else if (S->P.cfg_mode == CFG_SMALL || (S->P.cfg_mode == CFG_MIXED && rng_chance(&S->g, 50))) {
		cfg->batch_changes = 1 + (size_t)rng_below(&S->g, 7);
		cfg->window_changes = rng_chance(&S->g, 30) ? 0 : cfg->batch_changes * (1 + (size_t)rng_below(&S->g, 3));
		if (rng_chance(&S->g, 40))
			cfg->output_high_water = 1 + (size_t)rng_below(&S->g, 4096);
		S->st->small_batch_sessions++;
	}
	cfg->on_applied = side_applied;
	cfg->log = side_log;
	cfg->ctx = &c->ctx[k];
}

/* ------------------------------------------------------------ wires */

static int link_down(const sim *S, const sconn *c)
{
	return S->down[c->node[0]][c->node[1]];
}

static void wire_push(sim *S, int ci, int k, const char *p, size_t n, int fin, int64_t t)
{
	sconn *c = &S->conns[ci];
	wire *w = &c->w[k];
	chunk *ch = malloc(sizeof(*ch) + (n ? n : 1));
	REQUIRE(ch != NULL, "%s", "out of memory");
	if (t < w->last_t)
		t = w->last_t;
	w->last_t = t;
	ch->next = NULL;
	ch->t = t;
	ch->fin = fin;
	ch->n = n;
	if (n)
		memcpy(ch->data, p, n);
	if (w->tail)
		w->tail->next = ch;
	else
		w->head = ch;
	w->tail = ch;
	S->in_flight++;
	ev_push(S, t, EV_DELIVER, ci, k, c->gen);
}

static int64_t net_delay(sim *S)
{
	unsigned u = (unsigned)rng_below(&S->g, 100);
	if (u < 70)
		return 1 + (int64_t)rng_below(&S->g, 20);
	if (u < 95)
		return 20 + (int64_t)rng_below(&S->g, 80);
	return 100 + (int64_t)rng_below(&S->g, 300);
}

/* "send()": move (part of) side k's output to its wire, cut into pieces. */
static void flush_side(sim *S, int ci, int k, int all)
{
	sconn *c = &S->conns[ci];
	lim_session *s = c->s[k];
	size_t len, take, off = 0;
	const char *out;
	int64_t t;
	unsigned mode;

	if (!s)
		return;
	out = lim_session__output(s, &len);
	if (!len)
		return;
	take = len;
	if (!all && c->sndbuf && take > c->sndbuf) {
		take = c->sndbuf;
		S->st->partial_flushes++;
	}
	t = S->now + net_delay(S);
	mode = (unsigned)rng_below(&S->g, 10);
	while (off < take) {
		size_t rest = take - off, piece;
		switch (mode) {
		case 0: case 1: case 2: case 3:
			piece = rest;
			break;
		case 4: case 5: case 6:
			piece = 1 + (size_t)rng_below(&S->g, rest < 2 * take / 3 + 1 ? rest : 2 * take / 3 + 1);
			break;
		case 7:
			/* Byte by byte (the first 512 bytes of a long write). */
			piece = off < 512 ? 1 : rest;
			S->st->byte_chunks += off < 512;
			break;
		default:
			piece = 1 + (size_t)rng_below(&S->g, 300);
			break;
		}
		if (piece > rest)
			piece = rest;
		wire_push(S, ci, k, out + off, piece, 0, t);
		off += piece;
		t += (int64_t)rng_below(&S->g, 2);
	}
	lim_session__consume(s, take);
}

static void conn_free(sim *S, int ci)
{
	sconn *c = &S->conns[ci];
	for (int k = 0; k < 2; k++) {
		REQUIRE(c->s[k] == NULL, "%s", "conn_free with a live session");
		while (c->w[k].head) {
			chunk *ch = c->w[k].head;
			c->w[k].head = ch->next;
			free(ch);
			S->in_flight--;
		}
		c->w[k].tail = NULL;
		c->w[k].last_t = 0;
	}
	c->used = 0;
	c->gen++;
}

/* Why a session ended must be innocent: EOF, BYE, or the idle timeout. */
static void check_close(sim *S, int ci, int k, const lim_session_info *info, const char *why)
{
	sconn *c = &S->conns[ci];
	if (info->error_code == LIM_PERR_TIMEOUT) {
		S->st->timeouts += info->error_sent;
		return;
	}
	REQUIRE(info->error_code == 0,
	        "node %d's session with node %d (conn %d, %s) closed (%s) with ERR %d %s \"%s\" at t=%" PRId64 " ms",
	        c->node[k], c->node[1 - k], ci, k ? "accepted" : "dialed", why, info->error_code,
	        info->error_sent ? "sent" : "received", info->error, S->now);
}

/* Close side k (node.c close_conn): best-effort flush, free, EOF to the peer. */
static void close_side(sim *S, int ci, int k, const char *why, int flush)
{
	sconn *c = &S->conns[ci];
	lim_session_info info;
	if (!c->s[k])
		return;
	lim_session__info(c->s[k], &info);
	TRACE("t=%" PRId64 " conn %d: node %d closes (%s; ERR %d %s)\n", S->now, ci, c->node[k], why, info.error_code,
	      info.error);
	check_close(S, ci, k, &info, why);
	if (flush)
		flush_side(S, ci, k, 1);
	lim_session__free(c->s[k]);
	c->s[k] = NULL;
	if (c->s[1 - k])
		wire_push(S, ci, k, NULL, 0, 1, S->now + net_delay(S));
	else
		conn_free(S, ci);
}

/* The network resets the connection: both sides vanish, bytes in flight are lost. */
static void hard_drop(sim *S, int ci)
{
	sconn *c = &S->conns[ci];
	for (int k = 0; k < 2; k++) {
		if (c->s[k]) {
			lim_session_info info;
			lim_session__info(c->s[k], &info);
			check_close(S, ci, k, &info, "connection reset");
			lim_session__free(c->s[k]);
			c->s[k] = NULL;
		}
	}
	conn_free(S, ci);
	S->st->drops++;
}

static int conn_open(const sconn *c)
{
	return c->used && c->s[0] && c->s[1];
}

static int conns_between(const sim *S, int a, int b, int open_only)
{
	int n = 0;
	for (int i = 0; i < MAX_CONNS; i++) {
		const sconn *c = &S->conns[i];
		if (c->used && (!open_only || conn_open(c)) &&
		    ((c->node[0] == a && c->node[1] == b) || (c->node[0] == b && c->node[1] == a)))
			n++;
	}
	return n;
}

/* Node a dials node b. Returns the connection index, or -1 if no slot. */
static int sim_connect(sim *S, int a, int b)
{
	int ci;
	sconn *c;
	lim_session_config cfg;

	for (ci = 0; ci < MAX_CONNS && S->conns[ci].used; ci++)
		;
	if (ci == MAX_CONNS)
		return -1;
	c = &S->conns[ci];
	c->used = 1;
	c->node[0] = a;
	c->node[1] = b;
	c->sndbuf = 0;
	if (S->P.small_sndbuf || rng_chance(&S->g, 30))
		c->sndbuf = 16 + (size_t)rng_below(&S->g, S->P.small_sndbuf ? 256 : 8192);
	for (int k = 0; k < 2; k++) {
		c->ctx[k].sim = S;
		c->ctx[k].conn = ci;
		c->ctx[k].side = k;
		make_cfg(S, c, k, &cfg);
		c->s[k] = lim_session__new(S->nodes[c->node[k]].db, k == 0, &cfg, S->now);
		REQUIRE(c->s[k] != NULL, "%s", "lim_session__new failed");
	}
	TRACE("t=%" PRId64 " conn %d: node %d dials node %d\n", S->now, ci, a, b);
	flush_side(S, ci, 0, 0);
	flush_side(S, ci, 1, 0);
	S->st->connects++;
	return ci;
}

static void check_anomaly(sim *S)
{
	REQUIRE(!S->anomaly[0], "%s", S->anomaly);
}

/* One iteration of node.c's loop for node i: tick, pump and flush every session. */
static void node_loop(sim *S, int i)
{
	for (int ci = 0; ci < MAX_CONNS; ci++) {
		sconn *c = &S->conns[ci];
		for (int k = 0; k < 2; k++) {
			if (!c->used || !c->s[k] || c->node[k] != i)
				continue;
			if (lim_session__tick(c->s[k], S->now) < 0 || lim_session__pump(c->s[k], S->now) < 0) {
				close_side(S, ci, k, "tick/pump", 1);
				continue;
			}
			flush_side(S, ci, k, 0);
		}
	}
	check_anomaly(S);
	schedule_wake(S, i);
}

static void node_wake(sim *S, int i)
{
	snode *nd = &S->nodes[i];
	nd->wake_scheduled = 0;
	if (nd->wake) {
		nd->wake = 0;
		for (int ci = 0; ci < MAX_CONNS; ci++)
			for (int k = 0; k < 2; k++)
				if (S->conns[ci].used && S->conns[ci].s[k] && S->conns[ci].node[k] == i)
					lim_session__mark_dirty(S->conns[ci].s[k]);
	}
	node_loop(S, i);
}

/* Drop every session of node i (the process stops), then reopen its file. */
static void node_restart(sim *S, int i, int graceful)
{
	for (int ci = 0; ci < MAX_CONNS; ci++) {
		sconn *c = &S->conns[ci];
		for (int k = 0; k < 2; k++) {
			if (!c->used || !c->s[k] || c->node[k] != i)
				continue;
			if (graceful)
				lim_session__bye(c->s[k]);
			close_side(S, ci, k, "node restarted", graceful);
		}
	}
	node_close(S, i);
	node_open(S, i);
	S->st->restarts++;
}

static void on_deliver(sim *S, const event *ev)
{
	sconn *c = &S->conns[ev->a];
	wire *w;
	chunk *ch;
	int r, node;

	if (!c->used || c->gen != ev->gen)
		return;
	w = &c->w[ev->dir];
	REQUIRE(w->head != NULL, "conn %d: a delivery event with an empty wire", ev->a);
	if (link_down(S, c)) {
		/* Black-holed: TCP keeps retransmitting until the heal. */
		ev_push(S, S->now + 20 + (int64_t)rng_below(&S->g, 80), EV_DELIVER, ev->a, ev->dir, ev->gen);
		S->st->deferred++;
		return;
	}
	ch = w->head;
	w->head = ch->next;
	if (!w->head)
		w->tail = NULL;
	S->in_flight--;
	r = 1 - ev->dir;
	node = c->node[r];
	if (c->s[r]) {
		S->st->deliveries++;
		TRACE("t=%" PRId64 " conn %d: node %d -> node %d: %s%.*s\n", S->now, ev->a, c->node[ev->dir], node,
		      ch->fin ? "EOF" : "", ch->fin ? 0 : (int)(ch->n > 100 ? 100 : ch->n), ch->data);
		if (ch->fin) {
			close_side(S, ev->a, r, "peer closed the connection", 1);
		} else if (lim_session__feed(c->s[r], ch->data, ch->n, S->now) < 0) {
			check_anomaly(S);
			close_side(S, ev->a, r, "feed", 1);
		} else {
			check_anomaly(S);
			if (lim_session__pump(c->s[r], S->now) < 0)
				close_side(S, ev->a, r, "pump after feed", 1);
			else
				flush_side(S, ev->a, r, 0);
		}
		check_anomaly(S);
		schedule_wake(S, node);
	}
	free(ch);
}

static int can_dial(const sim *S, int a, int b)
{
	return a != b && S->edge[a][b] && !S->down[a][b];
}

/* Final phase: keep the spanning tree connected, as dialers would. */
static void dial_span(sim *S)
{
	for (int a = 0; a < S->n; a++)
		for (int b = a + 1; b < S->n; b++)
			if (S->span[a][b] && !S->down[a][b] && conns_between(S, a, b, 1) == 0) {
				int ci = rng_chance(&S->g, 50) ? sim_connect(S, a, b) : sim_connect(S, b, a);
				REQUIRE(ci >= 0, "%s", "no free connection slot for a spanning link");
			}
}

static void process_event(sim *S, const event *ev)
{
	REQUIRE(ev->t >= S->now, "time went backwards: %" PRId64 " < %" PRId64, ev->t, S->now);
	S->now = ev->t;
	switch (ev->kind) {
	case EV_DELIVER:
		on_deliver(S, ev);
		break;
	case EV_WAKE:
		node_wake(S, ev->a);
		break;
	case EV_LOOP:
		if (S->final_phase)
			dial_span(S);
		node_loop(S, ev->a);
		ev_push(S, S->now + 10 + (int64_t)rng_below(&S->g, 40), EV_LOOP, ev->a, 0, 0);
		break;
	}
}

static void sim_step(sim *S)
{
	event ev;
	REQUIRE(S->nheap > 0, "%s", "the event queue ran dry");
	ev = ev_pop(S);
	process_event(S, &ev);
}

/* ------------------------------------------------------------ random writes */

static const char *const k_strings[] = {
	"", "a", "h\xc3\xa9llo", "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e", "emoji \xf0\x9f\x98\x80!",
	"quote\" back\\slash\nnl\ttab", "ctl\x01\x1f", "  spaces  ", "line\nbreak\r\n", "CH lim1 END 1\nACK 9"
};
static const struct {
	const char *p;
	size_t n;
} k_bytes[] = { { "", 0 }, { "\0", 1 }, { "\0\0\x01\xff", 4 }, { "\n\r\n", 3 }, { "\x80\x81\xc0\xc1", 4 } };

static void random_value(rng *g, lim_value *v, char *scratch)
{
	memset(v, 0, sizeof(*v));
	switch (rng_below(g, 6)) {
	case 0:
		v->type = LIM_NULL;
		break;
	case 1:
		v->type = LIM_BOOL;
		v->boolean = (int)rng_below(g, 2);
		break;
	case 2:
		v->type = LIM_INT;
		switch (rng_below(g, 4)) {
		case 0: v->integer = INT64_MIN; break;
		case 1: v->integer = INT64_MAX; break;
		case 2: v->integer = (int64_t)rng_below(g, 1000) - 500; break;
		default: v->integer = (int64_t)rng_next(g); break;
		}
		break;
	case 3: {
		static const double k_doubles[] = { 0.0, -0.0, 1.5, -2.25, 0.1, DBL_MAX, -DBL_MAX, DBL_MIN,
		                                    4.9406564584124654e-324, 123456789.125 };
		v->type = LIM_FLOAT;
		v->real = rng_chance(g, 60) ? PICK(g, k_doubles) : (double)(int64_t)rng_next(g) / 1048576.0;
		break;
	}
	case 4:
		v->type = LIM_STRING;
		if (rng_chance(g, 60)) {
			v->str = PICK(g, k_strings);
			v->len = strlen(v->str);
		} else {
			size_t n = (size_t)rng_below(g, 48);
			for (size_t i = 0; i < n; i++)
				scratch[i] = (char)('a' + rng_below(g, 26));
			v->str = scratch;
			v->len = n;
		}
		break;
	default: {
		v->type = LIM_BYTES;
		if (rng_chance(g, 60)) {
			size_t k = (size_t)rng_below(g, sizeof(k_bytes) / sizeof(k_bytes[0]));
			v->str = k_bytes[k].p;
			v->len = k_bytes[k].n;
		} else {
			size_t n = (size_t)rng_below(g, 48);
			for (size_t i = 0; i < n; i++)
				scratch[i] = (char)rng_next(g);
			v->str = scratch;
			v->len = n;
		}
		break;
	}
	}
}

static void random_element(rng *g, lim_value *v)
{
	static const char zero[1] = { 0 };
	memset(v, 0, sizeof(*v));
	switch (rng_below(g, 7)) {
	case 0: v->type = LIM_STRING; v->str = "x"; v->len = 1; break;
	case 1: v->type = LIM_STRING; v->str = "y\n"; v->len = 2; break;
	case 2: v->type = LIM_INT; v->integer = 7; break;
	case 3: v->type = LIM_BYTES; v->str = zero; v->len = 1; break;
	case 4: v->type = LIM_BOOL; v->boolean = 1; break;
	case 5: v->type = LIM_FLOAT; v->real = 2.5; break;
	default: v->type = LIM_NULL; break;
	}
}

static const char *const k_json_values[] = {
	"null", "true", "false", "0", "-7", "123456789012", "1.5", "-0.0", "2.5e-7", "\"\"", "\"plain\"",
	"\"\\u00e9t\\u00e9 \\ud83d\\ude00\"", "\"tab\\tnl\\n\\\"q\\\"\"", "\"\xe6\x97\xa5\xe6\x9c\xac\""
};

static const char *const k_colls[] = { "c0", "c1" };
static const char *const k_docs[] = { "d0", "d1", "d\xc3\xa9 2" };
static const char *const k_hot_docs[] = { "h0", "h1" };
static const char *const k_regs[] = { "r0", "r1", "o.x", "o.y.z" };
static const char *const k_del_paths[] = { "r0", "r1", "o.x", "o.y.z", "o", "o.y" };
static const char *const k_hot_regs[] = { "f", "g", "o.p" };
static const char *const k_mix_paths[] = { "p", "p.q" };

static void require_rc(int rc, int ok2, int ok3, const char *what)
{
	REQUIRE(rc == 0 || (ok2 && rc == ok2) || (ok3 && rc == ok3), "%s returned %d (%s)", what, rc,
	        lim_error_name(rc));
}

/* One write on node nd: mostly per-node documents, >= 20% on keys every node writes. */
static void random_op(sim *S, snode *nd, int safe)
{
	rng *g = &S->g;
	char scratch[64], json[512];
	lim_value v;
	int hot = rng_chance(g, 35);
	/* Per-node documents so that most writes do not collide. */
	char mydoc[32];
	const char *coll = hot ? "hot" : PICK(g, k_colls);
	const char *doc;
	unsigned k = (unsigned)rng_below(g, safe ? 70 : 100);
	int rc;

	snprintf(mydoc, sizeof(mydoc), "%s.n%d", PICK(g, k_docs), nd->idx);
	doc = hot ? PICK(g, k_hot_docs) : (rng_chance(g, 70) ? mydoc : PICK(g, k_docs));
	S->st->writes++;
	S->st->hot += (unsigned long)hot;
	if (k < 30) {
		random_value(g, &v, scratch);
		rc = lim_db_set(nd->db, coll, doc, hot ? PICK(g, k_hot_regs) : PICK(g, k_regs), &v);
		require_rc(rc, 0, 0, "lim_db_set");
	} else if (k < 42) {
		snprintf(json, sizeof(json), "{\"r0\": %s, \"o\": {\"x\": %s, \"y\": {\"z\": %s}}, \"f\": %s}",
		         PICK(g, k_json_values), PICK(g, k_json_values), PICK(g, k_json_values), PICK(g, k_json_values));
		rc = lim_db_put_json(nd->db, coll, doc, json, strlen(json));
		REQUIRE(rc == 0, "lim_db_put_json(%s) returned %d (%s)", json, rc, lim_error_name(rc));
	} else if (k < 56) {
		int64_t delta = (int64_t)rng_below(g, 2000) - 1000;
		rc = lim_db_incr(nd->db, coll, doc, hot ? "n" : "n0", delta ? delta : 1);
		require_rc(rc, 0, 0, "lim_db_incr");
	} else if (k < 70) {
		random_element(g, &v);
		rc = lim_db_set_add(nd->db, coll, doc, "s", &v);
		require_rc(rc, 0, 0, "lim_db_set_add");
	} else if (k < 80) {
		random_element(g, &v);
		rc = lim_db_set_remove(nd->db, coll, doc, "s", &v);
		require_rc(rc, LIM_ENOTFOUND, 0, "lim_db_set_remove");
	} else if (k < 88) {
		rc = lim_db_delete(nd->db, coll, doc, hot ? PICK(g, k_hot_regs) : PICK(g, k_del_paths));
		require_rc(rc, LIM_ENOTFOUND, 0, "lim_db_delete(field)");
	} else if (k < 92) {
		rc = lim_db_delete(nd->db, coll, doc, NULL);
		require_rc(rc, LIM_ENOTFOUND, 0, "lim_db_delete(document)");
	} else {
		/* One shared document where every kind of op hits overlapping paths. */
		const char *path = PICK(g, k_mix_paths);
		S->st->hot++;
		switch (rng_below(g, 6)) {
		case 0:
			random_value(g, &v, scratch);
			rc = lim_db_set(nd->db, "mix", "m", path, &v);
			break;
		case 1:
			rc = lim_db_incr(nd->db, "mix", "m", path, (int64_t)rng_below(g, 9) - 4);
			break;
		case 2:
			random_element(g, &v);
			rc = lim_db_set_add(nd->db, "mix", "m", path, &v);
			break;
		case 3:
			random_element(g, &v);
			rc = lim_db_set_remove(nd->db, "mix", "m", path, &v);
			break;
		case 4:
			rc = lim_db_delete(nd->db, "mix", "m", rng_chance(g, 30) ? NULL : path);
			break;
		default:
			snprintf(json, sizeof(json), "{\"p\":{\"q\":%s}}", PICK(g, k_json_values));
			rc = lim_db_put_json(nd->db, "mix", "m", json, strlen(json));
			break;
		}
		require_rc(rc, LIM_ENOTFOUND, LIM_EINVALID, "mixed-kind op");
	}
}

/* A single op or a transaction (sometimes rolled back) on node i. */
static void random_write(sim *S, int i)
{
	snode *nd = &S->nodes[i];
	rng *g = &S->g;

	/* The node's clock wanders a little (skew actions aside, never near the
	 * drift bound). */
	if (rng_chance(g, 10) && nd->skew <= 3000 && nd->skew >= -3000) {
		nd->skew += (int64_t)rng_below(g, 101) - 50;
		if (nd->skew > 2000 || nd->skew < -2000)
			nd->skew /= 2;
	}
	nd->wrote = 1;
	if (rng_chance(g, 25)) {
		unsigned n = 2 + (unsigned)rng_below(g, 4);
		RC_OK(lim_db_begin(nd->db));
		random_op(S, nd, 1);
		for (unsigned j = 1; j < n; j++)
			random_op(S, nd, 0);
		S->st->txns++;
		if (rng_chance(g, 15)) {
			RC_OK(lim_db_rollback(nd->db));
			S->st->rollbacks++;
		} else {
			RC_OK(lim_db_commit(nd->db));
		}
	} else {
		random_op(S, nd, 0);
	}
	schedule_wake(S, i);
}

/* ------------------------------------------------------------ setup and teardown */

static void sim_init(sim *S, sim_stats *st, uint64_t seed, const sim_params *P)
{
	char tmpl[512];
	memset(S, 0, sizeof(*S));
	/* Real files; on tmpfs when there is one, since fsync is not under test
	 * here and the machine's disk is shared. */
	snprintf(tmpl, sizeof(tmpl), "%s/limsim.XXXXXX",
	         getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR")
	         : access("/dev/shm", W_OK) == 0   ? "/dev/shm"
	                                           : "/tmp");
	/* Before anything runs: a crash, an ASan abort or a ctest timeout kills
	 * the process before report_failure can name the seed, so the last
	 * line of this kind on stderr is the seed that was running. */
	if (strcmp(g_case, "random_seeds") == 0)
		fprintf(stderr, "sim: case %s, seed %llu (rerun with LIM_SEED=%llu)\n", g_case,
		        (unsigned long long)seed, (unsigned long long)seed);
	else
		fprintf(stderr, "sim: case %s, seed %llu\n", g_case, (unsigned long long)seed);
	fflush(stderr);
	S->g.s = seed * 0x9E3779B97F4A7C15ull ^ 0x5DEECE66Dull;
	det_reseed(seed);
	S->st = st;
	S->P = *P;
	S->n = P->nnodes;
	REQUIRE(S->n >= 2 && S->n <= MAX_NODES, "bad node count %d", S->n);
	REQUIRE(mkdtemp(tmpl) != NULL, "%s", "mkdtemp failed");
	S->dir = strdup(tmpl);
	g_simdir = S->dir;
	for (int i = 0; i < S->n; i++) {
		snode *nd = &S->nodes[i];
		size_t len = strlen(S->dir) + 32;
		nd->sim = S;
		nd->idx = i;
		nd->path = malloc(len);
		snprintf(nd->path, len, "%s/node%d.db", S->dir, i);
		nd->skew = (int64_t)rng_below(&S->g, 3001) - 1500;
		node_open(S, i);
		RC_OK(lim_db_replica_id(nd->db, nd->id));
	}
	/* Topology: which pairs may ever connect. Always connected. */
	{
		int perm[MAX_NODES];
		for (int i = 0; i < S->n; i++)
			perm[i] = i;
		for (int i = S->n - 1; i > 0; i--) {
			int j = (int)rng_below(&S->g, (uint64_t)i + 1), t = perm[i];
			perm[i] = perm[j];
			perm[j] = t;
		}
#define EDGE(a, b) (S->edge[(a)][(b)] = S->edge[(b)][(a)] = 1)
		switch (P->topology) {
		case TOPO_LINE:
			for (int i = 0; i + 1 < S->n; i++)
				EDGE(perm[i], perm[i + 1]);
			break;
		case TOPO_STAR:
			for (int i = 1; i < S->n; i++)
				EDGE(perm[0], perm[i]);
			break;
		case TOPO_RING:
			for (int i = 0; i < S->n; i++)
				EDGE(perm[i], perm[(i + 1) % S->n]);
			break;
		case TOPO_FULL:
			for (int a = 0; a < S->n; a++)
				for (int b = a + 1; b < S->n; b++)
					EDGE(a, b);
			break;
		default:
			/* A random tree plus a few random extra links. */
			for (int i = 1; i < S->n; i++)
				EDGE(perm[i], perm[rng_below(&S->g, (uint64_t)i)]);
			for (int e = (int)rng_below(&S->g, (uint64_t)S->n); e > 0; e--) {
				int a = (int)rng_below(&S->g, (uint64_t)S->n), b = (int)rng_below(&S->g, (uint64_t)S->n);
				if (a != b)
					EDGE(a, b);
			}
			break;
		}
#undef EDGE
	}
	/* A spanning tree of the topology (BFS from a random root). */
	{
		int seen[MAX_NODES] = { 0 }, queue[MAX_NODES], qh = 0, qt = 0;
		int root = (int)rng_below(&S->g, (uint64_t)S->n);
		seen[root] = 1;
		queue[qt++] = root;
		while (qh < qt) {
			int a = queue[qh++];
			for (int b = 0; b < S->n; b++)
				if (S->edge[a][b] && !seen[b]) {
					seen[b] = 1;
					S->span[a][b] = S->span[b][a] = 1;
					queue[qt++] = b;
				}
		}
		REQUIRE(qt == S->n, "topology %d is not connected", P->topology);
	}
	for (int i = 0; i < S->n; i++)
		ev_push(S, S->now + 1 + (int64_t)rng_below(&S->g, 30), EV_LOOP, i, 0, 0);
}

static void sim_free(sim *S)
{
	for (int ci = 0; ci < MAX_CONNS; ci++)
		if (S->conns[ci].used) {
			for (int k = 0; k < 2; k++) {
				lim_session__free(S->conns[ci].s[k]);
				S->conns[ci].s[k] = NULL;
			}
			conn_free(S, ci);
		}
	for (int i = 0; i < S->n; i++) {
		if (S->nodes[i].db)
			node_close(S, i);
		unlink(S->nodes[i].path);
		{
			size_t len = strlen(S->nodes[i].path) + 8;
			char *p = malloc(len);
			snprintf(p, len, "%s-wal", S->nodes[i].path);
			unlink(p);
			snprintf(p, len, "%s-shm", S->nodes[i].path);
			unlink(p);
			free(p);
		}
		free(S->nodes[i].path);
	}
	rmdir(S->dir);
	g_simdir = NULL;
	free(S->dir);
	free(S->heap);
	S->st->sim_ms += S->now;
}

/* ------------------------------------------------------------ random actions */

static int random_conn(sim *S)
{
	int idx[MAX_CONNS], n = 0;
	for (int i = 0; i < MAX_CONNS; i++)
		if (S->conns[i].used)
			idx[n++] = i;
	return n ? idx[rng_below(&S->g, (uint64_t)n)] : -1;
}

static void random_action(sim *S)
{
	const sim_params *P = &S->P;
	rng *g = &S->g;
	unsigned total = P->p_write + P->p_connect + P->p_drop + P->p_bye + P->p_partition + P->p_heal + P->p_restart +
	                 P->p_skew;
	unsigned x = (unsigned)rng_below(g, total);

	if (x < P->p_write) {
		int i = (int)rng_below(g, (uint64_t)S->n);
		TRACE("t=%" PRId64 " write on node %d\n", S->now, i);
		random_write(S, i);
		return;
	}
	x -= P->p_write;
	if (x < P->p_connect) {
		int a = (int)rng_below(g, (uint64_t)S->n), b = (int)rng_below(g, (uint64_t)S->n);
		if (can_dial(S, a, b) && conns_between(S, a, b, 0) < 2) {
			int ci = sim_connect(S, a, b);
			TRACE("t=%" PRId64 " node %d dials node %d: conn %d\n", S->now, a, b, ci);
		}
		return;
	}
	x -= P->p_connect;
	if (x < P->p_drop) {
		int ci = random_conn(S);
		if (ci >= 0) {
			TRACE("t=%" PRId64 " conn %d reset\n", S->now, ci);
			hard_drop(S, ci);
		}
		return;
	}
	x -= P->p_drop;
	if (x < P->p_bye) {
		int ci = random_conn(S);
		int k = (int)rng_below(g, 2);
		if (ci >= 0 && S->conns[ci].s[k]) {
			int node = S->conns[ci].node[k];
			TRACE("t=%" PRId64 " conn %d: node %d says BYE\n", S->now, ci, node);
			lim_session__bye(S->conns[ci].s[k]);
			close_side(S, ci, k, "closed politely", 1);
			S->st->byes++;
			schedule_wake(S, node);
		}
		return;
	}
	x -= P->p_bye;
	if (x < P->p_partition) {
		unsigned mask = (unsigned)(1 + rng_below(g, (1u << S->n) - 2));
		for (int a = 0; a < S->n; a++)
			for (int b = 0; b < S->n; b++)
				if (((mask >> a) & 1) && !((mask >> b) & 1))
					S->down[a][b] = S->down[b][a] = 1;
		/* Crossing connections: reset, or black-holed until the heal. */
		for (int ci = 0; ci < MAX_CONNS; ci++)
			if (S->conns[ci].used && link_down(S, &S->conns[ci]) && rng_chance(g, 50))
				hard_drop(S, ci);
		S->st->partitions++;
		TRACE("t=%" PRId64 " partition: nodes mask 0x%x cut off\n", S->now, mask);
		return;
	}
	x -= P->p_partition;
	if (x < P->p_heal) {
		if (rng_chance(g, 50)) {
			memset(S->down, 0, sizeof(S->down));
		} else {
			int a = (int)rng_below(g, (uint64_t)S->n), b = (int)rng_below(g, (uint64_t)S->n);
			S->down[a][b] = S->down[b][a] = 0;
		}
		S->st->heals++;
		TRACE("t=%" PRId64 " heal\n", S->now);
		return;
	}
	x -= P->p_heal;
	if (x < P->p_skew) {
		/* Beyond the drift bound (60 s): peers skip this node's new changes
		 * (and what depends on them) and ask again later. */
		snode *nd = &S->nodes[rng_below(g, (uint64_t)S->n)];
		if (nd->skew > 3000)
			nd->skew = (int64_t)rng_below(g, 3001) - 1500;
		else
			nd->skew = 61000 + (int64_t)rng_below(g, 30000);
		S->st->skews++;
		TRACE("t=%" PRId64 " node %d clock skew %" PRId64 " ms\n", S->now, nd->idx, nd->skew);
		return;
	}
	{
		int i = (int)rng_below(g, (uint64_t)S->n), graceful = rng_chance(g, 50);
		TRACE("t=%" PRId64 " node %d restarts%s\n", S->now, i, graceful ? " (BYE to its peers)" : "");
		node_restart(S, i, graceful);
	}
}

static void run_random_phase(sim *S)
{
	int64_t next_action = S->now + (int64_t)rng_below(&S->g, 50);
	for (int actions = 0; actions < S->P.nactions;) {
		if (S->nheap && S->heap[0].t <= next_action) {
			sim_step(S);
		} else {
			S->now = next_action;
			random_action(S);
			actions++;
			next_action = S->now + 1 + (int64_t)rng_below(&S->g, 60);
		}
	}
}

/* ------------------------------------------------------------ convergence */

static int quiescent(sim *S)
{
	if (S->in_flight)
		return 0;
	for (int i = 0; i < S->n; i++)
		if (S->nodes[i].wake || S->nodes[i].wake_scheduled)
			return 0;
	for (int a = 0; a < S->n; a++)
		for (int b = a + 1; b < S->n; b++)
			if (S->span[a][b] && conns_between(S, a, b, 1) == 0)
				return 0;
	for (int ci = 0; ci < MAX_CONNS; ci++) {
		sconn *c = &S->conns[ci];
		if (!c->used)
			continue;
		for (int k = 0; k < 2; k++) {
			lim_session_info info;
			size_t len;
			if (!c->s[k])
				return 0;
			lim_session__output(c->s[k], &len);
			if (len)
				return 0;
			lim_session__info(c->s[k], &info);
			if (!info.authenticated || info.closed || !info.synced || info.behind)
				return 0;
		}
	}
	return 1;
}

static void dump_state(sim *S)
{
	print_error("simulation state at t=%" PRId64 " ms: %zu chunks in flight, %zu events\n", S->now,
	            S->in_flight, S->nheap);
	for (int i = 0; i < S->n; i++) {
		lim_buf vv = LIM_BUF_INIT;
		char dg[65] = "";
		lim_db_version_vector(&vv, S->nodes[i].db);
		lim_db_digest(S->nodes[i].db, dg);
		print_error(" node %d digest %.16s wake %d/%d vv:\n%s", i, dg, S->nodes[i].wake,
		            S->nodes[i].wake_scheduled, vv.ptr ? vv.ptr : "");
		lim_buf_dispose(&vv);
	}
	for (int ci = 0; ci < MAX_CONNS; ci++) {
		sconn *c = &S->conns[ci];
		if (!c->used)
			continue;
		for (int k = 0; k < 2; k++) {
			lim_session_info info;
			size_t len = 0;
			if (!c->s[k]) {
				print_error(" conn %d side %d (node %d): closed\n", ci, k, c->node[k]);
				continue;
			}
			lim_session__output(c->s[k], &len);
			lim_session__info(c->s[k], &info);
			print_error(" conn %d side %d (node %d -> %d): auth %d closed %d synced %d behind %" PRIu64
			            " in %" PRIu64 " out %" PRIu64 " pending output %zu err %d\n",
			            ci, k, c->node[k], c->node[1 - k], info.authenticated, info.closed, info.synced,
			            info.behind, info.changes_in, info.changes_out, len, info.error_code);
		}
	}
}

/* Heal everything, keep a spanning tree connected, run until quiescent. */
/* All version vectors equal (skipped changes are asked for again later). */
static int same_vvs(sim *S)
{
	lim_buf vv0 = LIM_BUF_INIT, vv = LIM_BUF_INIT;
	int same = 1;
	RC_OK(lim_db_version_vector(&vv0, S->nodes[0].db));
	for (int i = 1; i < S->n && same; i++) {
		RC_OK(lim_db_version_vector(&vv, S->nodes[i].db));
		same = vv.size == vv0.size && memcmp(vv.ptr, vv0.ptr, vv.size) == 0;
		lim_buf_dispose(&vv);
	}
	lim_buf_dispose(&vv0);
	return same;
}

static void run_until_quiescent(sim *S, int64_t max_sim_ms)
{
	int64_t deadline = S->now + max_sim_ms;
	memset(S->down, 0, sizeof(S->down));
	S->final_phase = 1;
	/* Clocks are set right; changes stamped ahead become acceptable as
	 * simulated time passes. */
	if (S->P.p_skew)
		for (int i = 0; i < S->n; i++)
			if (S->nodes[i].skew > 3000)
				S->nodes[i].skew = (int64_t)rng_below(&S->g, 3001) - 1500;
	dial_span(S);
	while (!quiescent(S) || (S->P.p_skew && !same_vvs(S))) {
		if (S->now > deadline) {
			dump_state(S);
			REQUIRE(0, "the network did not become quiescent within %" PRId64 " simulated ms", max_sim_ms);
		}
		sim_step(S);
	}
	S->final_phase = 0;
}

static void require_converged(sim *S)
{
	char d0[65], d[65];
	lim_buf vv0 = LIM_BUF_INIT, vv = LIM_BUF_INIT;

	RC_OK(lim_db_digest(S->nodes[0].db, d0));
	RC_OK(lim_db_version_vector(&vv0, S->nodes[0].db));
	for (int i = 0; i < S->n; i++) {
		RC_OK(lim_db_digest(S->nodes[i].db, d));
		RC_OK(lim_db_version_vector(&vv, S->nodes[i].db));
		if (strcmp(d0, d) != 0 || vv.size != vv0.size || memcmp(vv.ptr, vv0.ptr, vv.size) != 0)
			dump_state(S);
		REQUIRE(strcmp(d0, d) == 0, "node 0 digest %s, node %d digest %s", d0, i, d);
		REQUIRE(vv.size == vv0.size && memcmp(vv.ptr, vv0.ptr, vv.size) == 0,
		        "version vectors differ: node 0\n%s node %d\n%s", vv0.ptr ? vv0.ptr : "", i,
		        vv.ptr ? vv.ptr : "");
		RC_OK(lim_db_verify(S->nodes[i].db));
		lim_buf_dispose(&vv);
	}
	/* Every node that wrote is an author everywhere. */
	for (int i = 0; i < S->n; i++) {
		char hex[2 * LIM_ID_BYTES + 1];
		static const char hexd[] = "0123456789abcdef";
		if (!S->nodes[i].wrote)
			continue;
		for (int j = 0; j < LIM_ID_BYTES; j++) {
			hex[2 * j] = hexd[S->nodes[i].id[j] >> 4];
			hex[2 * j + 1] = hexd[S->nodes[i].id[j] & 15];
		}
		hex[2 * LIM_ID_BYTES] = 0;
		REQUIRE(vv0.ptr && strstr(vv0.ptr, hex), "node %d wrote but is not in the version vector", i);
	}
	lim_buf_dispose(&vv0);
}

/* Seq of node `author`'s changes held by node `at`. */
static uint64_t held_seq(sim *S, int at, int author)
{
	lim_buf vv = LIM_BUF_INIT;
	char hex[2 * LIM_ID_BYTES + 1];
	static const char hexd[] = "0123456789abcdef";
	const char *p;
	uint64_t seq = 0;
	for (int j = 0; j < LIM_ID_BYTES; j++) {
		hex[2 * j] = hexd[S->nodes[author].id[j] >> 4];
		hex[2 * j + 1] = hexd[S->nodes[author].id[j] & 15];
	}
	hex[2 * LIM_ID_BYTES] = 0;
	RC_OK(lim_db_version_vector(&vv, S->nodes[at].db));
	if (vv.ptr && (p = strstr(vv.ptr, hex)) != NULL)
		seq = strtoull(p + 2 * LIM_ID_BYTES + 1, NULL, 10);
	lim_buf_dispose(&vv);
	return seq;
}

/* ------------------------------------------------------------ the random seeds */

static void run_seed(uint64_t seed, sim_stats *st)
{
	sim S;
	sim_params P;
	rng pg = { seed ^ 0xA5A5A5A5DEADBEEFull };

	g_seed = seed;
	g_have_seed = 1;
	memset(&P, 0, sizeof(P));
	P.nnodes = 5 + (int)rng_below(&pg, 3);
	P.topology = (int)rng_below(&pg, TOPO_COUNT);
	P.nactions = 250 + (int)rng_below(&pg, 200);
	P.p_write = 45;
	P.p_connect = 18;
	P.p_drop = 5;
	P.p_bye = 3;
	P.p_partition = 3;
	P.p_heal = 3;
	P.p_restart = 3;
	P.p_skew = rng_chance(&pg, 15) ? 2 : 0;
	P.cfg_mode = rng_chance(&pg, 25) ? CFG_DEFAULT : CFG_MIXED;
	P.idle_ms = 1500 + (int64_t)rng_below(&pg, 2500);
	P.keepalive_ms = P.idle_ms / (2 + (int64_t)rng_below(&pg, 3));
	P.small_sndbuf = rng_chance(&pg, 15);

	sim_init(&S, st, seed, &P);
	run_random_phase(&S);
	run_until_quiescent(&S, 600000);
	require_converged(&S);
	st->seeds++;
	sim_free(&S);
	g_have_seed = 0;
}

static void print_stats(const char *name, const sim_stats *st)
{
	print_message("%s: %lu seeds, %.1f simulated s, %lu writes (%lu on shared keys), %lu txns (%lu rolled back), "
	              "%lu connects, %lu resets, %lu BYEs, %lu partitions, %lu heals, %lu restarts, %lu idle timeouts, "
	              "%lu deliveries (%lu single bytes, %lu deferred by partitions), %lu partial flushes, "
	              "%lu changes applied, %lu small-batch sessions, %lu clock jumps, %lu batches with skipped changes\n",
	              name, st->seeds, (double)st->sim_ms / 1000.0, st->writes, st->hot, st->txns, st->rollbacks,
	              st->connects, st->drops, st->byes, st->partitions, st->heals, st->restarts, st->timeouts,
	              st->deliveries, st->byte_chunks, st->deferred, st->partial_flushes, st->changes_in,
	              st->small_batch_sessions, st->skews, st->skipped_batches);
}

static void test_sim__random_seeds(void **state)
{
	const char *one = getenv("LIM_SEED");
	const char *count = getenv("LIM_SEEDS");
	unsigned long long first = 1, nseeds = 200;
	sim_stats st;

	(void)state;
	g_case = "random_seeds";
	memset(&st, 0, sizeof(st));
	if (one && *one) {
		first = strtoull(one, NULL, 10);
		nseeds = 1;
	} else if (count && *count) {
		nseeds = strtoull(count, NULL, 10);
	}
	for (unsigned long long s = first; s < first + nseeds; s++)
		run_seed(s, &st);
	print_stats("sim", &st);
	REQUIRE(st.hot * 5 >= st.writes, "only %lu of %lu writes on shared keys", st.hot, st.writes);
	if (nseeds >= 20) {
		REQUIRE(st.restarts > 0 && st.partitions > 0 && st.timeouts > 0 && st.byte_chunks > 0 &&
		        st.deferred > 0 && st.small_batch_sessions > 0 && st.byes > 0,
		        "%s", "some kind of event was never exercised");
	}
}

/* ------------------------------------------------------------ focused cases */

static sim_params quiet_params(int n)
{
	sim_params P;
	memset(&P, 0, sizeof(P));
	P.nnodes = n;
	P.topology = TOPO_LINE;
	P.cfg_mode = CFG_DEFAULT;
	P.idle_ms = 3000;
	P.keepalive_ms = 1000;
	return P;
}

static void write_n(sim *S, int node, int n)
{
	for (int i = 0; i < n; i++)
		random_write(S, node);
}

/* Line A-B-C: A and C never connect; B relays catch-up and live pushes. */
static void test_sim__relay_line(void **state)
{
	sim S;
	sim_stats st;
	sim_params P = quiet_params(3);
	int a, b, c;

	(void)state;
	g_case = "relay_line";
	memset(&st, 0, sizeof(st));
	sim_init(&S, &st, 1001, &P);
	memset(S.edge, 0, sizeof(S.edge));
	memset(S.span, 0, sizeof(S.span));
	a = 0, b = 1, c = 2;
	S.edge[a][b] = S.edge[b][a] = S.edge[b][c] = S.edge[c][b] = 1;
	S.span[a][b] = S.span[b][a] = S.span[b][c] = S.span[c][b] = 1;

	write_n(&S, a, 30);
	write_n(&S, c, 30);
	run_until_quiescent(&S, 120000);
	require_converged(&S);
	REQUIRE(held_seq(&S, c, a) == held_seq(&S, a, a) && held_seq(&S, a, a) > 0, "%s", "C lacks A's changes");
	REQUIRE(held_seq(&S, a, c) == held_seq(&S, c, c) && held_seq(&S, c, c) > 0, "%s", "A lacks C's changes");

	/* Live push through the relay: connections stay up, A writes again. */
	{
		uint64_t before = held_seq(&S, a, a);
		write_n(&S, a, 10);
		while (held_seq(&S, a, a) == before)
			write_n(&S, a, 1);
		run_until_quiescent(&S, 120000);
		require_converged(&S);
		REQUIRE(held_seq(&S, c, a) == held_seq(&S, a, a), "%s", "a live write did not reach C through B");
	}
	for (int ci = 0; ci < MAX_CONNS; ci++)
		REQUIRE(!S.conns[ci].used || !((S.conns[ci].node[0] == a && S.conns[ci].node[1] == c) ||
		                               (S.conns[ci].node[0] == c && S.conns[ci].node[1] == a)),
		        "%s", "A and C were connected directly");
	sim_free(&S);
}

/* A node restarted from its file in the middle of a catch-up converges. */
static void test_sim__restart_mid_catchup(void **state)
{
	sim S;
	sim_stats st;
	sim_params P = quiet_params(3);
	int a = 0, b = 1, c = 2;
	uint64_t total, got, steps = 0;

	(void)state;
	g_case = "restart_mid_catchup";
	memset(&st, 0, sizeof(st));
	P.cfg_mode = CFG_SMALL;
	sim_init(&S, &st, 2002, &P);
	memset(S.edge, 0, sizeof(S.edge));
	memset(S.span, 0, sizeof(S.span));
	S.edge[a][b] = S.edge[b][a] = S.edge[a][c] = S.edge[c][a] = 1;
	S.span[a][b] = S.span[b][a] = 1;

	write_n(&S, a, 200);
	total = held_seq(&S, a, a);
	REQUIRE(total > 100, "only %" PRIu64 " changes written", total);

	/* Receiver B restarts after part of the catch-up. */
	{
		int ci = sim_connect(&S, a, b);
		sconn *cn = &S.conns[ci];
		/* Small batches and window so the catch-up takes many round trips. */
		REQUIRE(ci >= 0, "%s", "no slot");
		while ((got = held_seq(&S, b, a)) < total / 3) {
			sim_step(&S);
			REQUIRE(++steps < 1000000, "catch-up did not start (B holds %" PRIu64 ")", got);
		}
		REQUIRE(got < total, "catch-up finished before the restart (%" PRIu64 " of %" PRIu64 ")", got, total);
		(void)cn;
		node_restart(&S, b, 0);
		REQUIRE(held_seq(&S, b, a) == got, "B held %" PRIu64 " before the restart and %" PRIu64 " after",
		        got, held_seq(&S, b, a));
		RC_OK(lim_db_verify(S.nodes[b].db));
	}
	/* B writes too, then sender A restarts during C's catch-up. */
	write_n(&S, b, 20);
	run_until_quiescent(&S, 300000);
	{
		int ci = sim_connect(&S, c, a);
		REQUIRE(ci >= 0, "%s", "no slot");
		steps = 0;
		while ((got = held_seq(&S, c, a)) < total / 2) {
			sim_step(&S);
			REQUIRE(++steps < 1000000, "catch-up of C did not progress (C holds %" PRIu64 ")", got);
		}
		REQUIRE(got < total, "C's catch-up finished before the restart (%" PRIu64 ")", got);
		node_restart(&S, a, 1);
	}
	S.span[a][c] = S.span[c][a] = 1;
	run_until_quiescent(&S, 300000);
	require_converged(&S);
	REQUIRE(held_seq(&S, c, a) == total, "%s", "C did not get all of A's changes");
	REQUIRE(st.restarts == 2, "%lu restarts", st.restarts);
	sim_free(&S);
}

/* Batch 1, window 1, output high-water 1, tiny socket buffers: still converges. */
static void test_sim__tiny_batch(void **state)
{
	sim S;
	sim_stats st;
	sim_params P = quiet_params(5);

	(void)state;
	g_case = "tiny_batch";
	memset(&st, 0, sizeof(st));
	P.topology = TOPO_RING;
	P.cfg_mode = CFG_TINY;
	P.small_sndbuf = 1;
	P.nactions = 300;
	P.p_write = 70;
	P.p_connect = 25;
	P.p_drop = 2;
	P.p_bye = 1;
	P.p_heal = 2;
	sim_init(&S, &st, 3003, &P);
	for (int i = 0; i < S.n; i++)
		write_n(&S, i, 10);
	run_random_phase(&S);
	run_until_quiescent(&S, 600000);
	require_converged(&S);
	REQUIRE(st.changes_in > 0 && st.partial_flushes > 0, "%s", "nothing was exercised");
	sim_free(&S);
}

/*
 * A polite close while the handshake runs: node.c says BYE to every
 * connection that is not still connecting when the node stops or a peer is
 * removed, handshaking ones included. The peer must take it as a close, not
 * answer it with ERR 409.
 */
static void test_sim__bye_during_handshake(void **state)
{
	sim S;
	sim_stats st;
	sim_params P = quiet_params(2);
	int ci;

	(void)state;
	g_case = "bye_during_handshake";
	memset(&st, 0, sizeof(st));
	sim_init(&S, &st, 5005, &P);
	ci = sim_connect(&S, 0, 1); /* both HELLOs are on the wire */
	REQUIRE(ci >= 0, "%s", "no slot");
	/* Node 0 stops before node 1's HELLO reaches it: its stream is HELLO, BYE. */
	lim_session__bye(S.conns[ci].s[0]);
	close_side(&S, ci, 0, "node stopped", 1);
	while (S.in_flight)
		sim_step(&S); /* node 1 reads HELLO (answers AUTH), then BYE, then EOF */
	REQUIRE(!S.conns[ci].used, "%s", "node 1 did not close");
	sim_free(&S);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sim__relay_line),
		cmocka_unit_test(test_sim__restart_mid_catchup),
		cmocka_unit_test(test_sim__tiny_batch),
		cmocka_unit_test(test_sim__bye_during_handshake),
		cmocka_unit_test(test_sim__random_seeds),
	};

	/* Before libsodium is initialised (by the first lim_db_open). */
	if (randombytes_set_implementation(&g_det_impl) != 0) {
		fprintf(stderr, "cannot install the deterministic randombytes implementation\n");
		return 1;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
