/*
 * The fake transport shared by the session harnesses: a server-side
 * lim_session on a fresh :memory: store (seeded with a few local writes so
 * it has changes of its own to send), and a client that is not a session
 * but the harness itself, holding test identity 0: it performs the real
 * handshake by hand (HELLO, then AUTH signed over the transcript with the
 * network proof), so the fuzz bytes that follow reach the live phase.
 */
#ifndef LIM_FUZZ_SESSION_COMMON_H
#define LIM_FUZZ_SESSION_COMMON_H

#include "fuzz_common.h"
#include "session.h"

typedef struct {
	lim_db *db;
	lim_session *s;
	int64_t now;
	int over;        /* feed/tick/pump reported the end of the session */
	int saw_err;     /* an "ERR " line went out */
	int at_line_start;
	lim_sb scan;     /* the start of the current output line, for saw_err */
	size_t out_total;
} fuzz_peer;

static inline void fuzz_session_log(void *ctx, const char *msg)
{
	(void)ctx;
	(void)msg; /* formatted (that is what is exercised), then dropped */
}

/* A server session on a fresh store; with seed_writes, the store holds
 * three changes of its own to send in its catch-up. */
static inline void fuzz_peer_start_with(fuzz_peer *p, size_t batch, size_t window, int seed_writes)
{
	lim_session_config cfg;
	lim_value v = { LIM_STRING, 0, 0, 0, "server", 6 };
	lim_value e = { LIM_INT, 0, 7, 0, NULL, 0 };
	memset(p, 0, sizeof(*p));
	p->db = fuzz_open_db();
	if (seed_writes) {
		/* Three changes of the server's own, to be sent in its catch-up. */
		FUZZ_CHECK(lim_db_set(p->db, "notes", "n1", "title", &v) == 0, "seed write");
		FUZZ_CHECK(lim_db_incr(p->db, "notes", "n1", "views", 3) == 0, "seed write");
		FUZZ_CHECK(lim_db_set_add(p->db, "notes", "n1", "tags", &e) == 0, "seed write");
	}
	lim_session_config__defaults(&cfg);
	cfg.log = fuzz_session_log;
	cfg.idle_timeout_ms = 20000;
	cfg.keepalive_ms = 500;
	cfg.batch_changes = batch;
	cfg.window_changes = window;
	p->now = 1000;
	p->s = lim_session__new(p->db, 0, &cfg, p->now);
	FUZZ_CHECK(p->s != NULL, "lim_session__new");
	p->at_line_start = 1;
}

static inline void fuzz_peer_start(fuzz_peer *p, size_t batch, size_t window)
{
	fuzz_peer_start_with(p, batch, window, 1);
}

static inline void fuzz_peer_stop(fuzz_peer *p)
{
	lim_session__free(p->s);
	lim_db_free(p->db);
	lim_sb__free(&p->scan);
}

/* Read (and note) up to `max` bytes of the server's output. */
static inline void fuzz_peer_drain(fuzz_peer *p, size_t max)
{
	size_t len;
	const char *out = lim_session__output(p->s, &len);
	if (len > max)
		len = max;
	for (size_t i = 0; i < len; i++) {
		if (p->at_line_start)
			lim_sb__clear(&p->scan);
		p->at_line_start = out[i] == '\n';
		if (p->scan.len < 4) {
			lim_sb__putc(&p->scan, out[i]);
			if (p->scan.len == 4 && memcmp(p->scan.ptr, "ERR ", 4) == 0)
				p->saw_err = 1;
		}
	}
	p->out_total += len;
	lim_session__consume(p->s, len);
}

static inline int fuzz_peer_feed(fuzz_peer *p, const char *data, size_t n)
{
	int rc;
	if (p->over)
		return -1;
	rc = lim_session__feed(p->s, data, n, p->now);
	if (rc < 0)
		p->over = 1;
	return rc;
}

/* Time passes: timers, then the sending side, as the network layer does. */
static inline void fuzz_peer_step(fuzz_peer *p, int64_t ms)
{
	p->now += ms;
	if (p->over)
		return;
	if (lim_session__tick(p->s, p->now) < 0 || lim_session__pump(p->s, p->now) < 0)
		p->over = 1;
}

/* The client's half of the handshake, as identity 0 with the vectors'
 * client nonce. Afterwards the server has sent its VV and is live. */
static inline void fuzz_peer_handshake(fuzz_peer *p)
{
	static const unsigned char nonce[LIM_NONCE_BYTES] = {
		0xc0, 0xc1, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xcb, 0xcc, 0xcd, 0xce, 0xcf,
		0xd0, 0xd1, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xdb, 0xdc, 0xdd, 0xde, 0xdf
	};
	lim_sb hello = LIM_SB_INIT, auth = LIM_SB_INIT;
	unsigned char transcript[LIM_HASH_BYTES], sig[64], proof[LIM_HASH_BYTES];
	const char *out, *nl;
	size_t len;
	lim_msg m;
	int perr;
	lim_session_info info;

	lim_msg__hello(&hello, fuzz_pk[0], nonce);
	FUZZ_CHECK(fuzz_peer_feed(p, hello.ptr, hello.len) == 0, "server refused a good HELLO");
	out = lim_session__output(p->s, &len);
	nl = memchr(out, '\n', len);
	FUZZ_CHECK(nl != NULL, "no server HELLO");
	lim_handshake__hash(transcript, hello.ptr, hello.len - 1, out, (size_t)(nl - out));
	/* The server must prove itself correctly too. */
	{
		lim_msg sh;
		const char *a = nl + 1, *anl = memchr(a, '\n', len - (size_t)(a - out));
		FUZZ_CHECK(lim_msg__parse(&sh, out, (size_t)(nl - out), &perr) == 0 && sh.type == LIM_MSG_HELLO,
		           "bad server HELLO");
		FUZZ_CHECK(anl && lim_msg__parse(&m, a, (size_t)(anl - a), &perr) == 0 && m.type == LIM_MSG_AUTH,
		           "no server AUTH");
		FUZZ_CHECK(lim_handshake__check_sig(m.sig, 'S', transcript, sh.id) == 0 &&
		           lim_handshake__check_proof(m.proof, 'S', transcript, FUZZ_NETWORK_KEY) == 0,
		           "the server's AUTH does not verify");
	}
	fuzz_peer_drain(p, len);
	lim_handshake__prove(sig, proof, 'C', transcript, fuzz_sk[0], FUZZ_NETWORK_KEY);
	lim_msg__auth(&auth, sig, proof);
	FUZZ_CHECK(fuzz_peer_feed(p, auth.ptr, auth.len) == 0, "server refused a good AUTH");
	lim_session__info(p->s, &info);
	FUZZ_CHECK(info.authenticated, "not authenticated after a good handshake");
	fuzz_peer_drain(p, SIZE_MAX);
	lim_sb__free(&hello);
	lim_sb__free(&auth);
}

/* End of input: flush, and check what the session reported.
 *
 * info.error_code is the ERR of either side: the one the server sent
 * (info.error_sent) or the one it received, which is the fuzz input's own
 * text. An ERR 500 received is legitimate and common: the seeds
 * seed-peer-error-mode* are protocol-spec/transcripts/peer-error.txt, a
 * client that closes with "ERR 500 the client's store failed" after the
 * handshake; the server records it and closes without a reply.
 *
 * An ERR 500 sent is a finding. The server sends it (LIM_PERR_INTERNAL in
 * session.c) only when its own store fails (on_end: LIM_EIO, LIM_EFAILED,
 * LIM_ENOMEM, LIM_ETXN; pump_log, pump_extension: reading the log) or it
 * runs out of memory. Nothing here can make that happen but the input:
 * the store is a fresh :memory: one on a fixed clock, no fault is
 * injected, and the harness holds no transaction (one held would turn
 * every batch into ERR 500 "cannot apply remote changes while a local
 * transaction is open"; test_fuzz_corpus checks this oracle catches that).
 * Remote bytes must earn a 4xx refusal, never make the node's store fail,
 * and a session's input is all remote bytes. */
static inline void fuzz_peer_finish(fuzz_peer *p)
{
	lim_session_info info;
	fuzz_peer_step(p, 1);
	fuzz_peer_drain(p, SIZE_MAX);
	lim_session__info(p->s, &info);
	if (getenv("LIM_FUZZ_VERBOSE"))
		fprintf(stderr, "session: authenticated %d closed %d changes in %llu out %llu, ERR %d%s %s\n",
		        info.authenticated, info.closed, (unsigned long long)info.changes_in,
		        (unsigned long long)info.changes_out, info.error_code,
		        !info.error_code ? "" : info.error_sent ? " sent:" : " received from the peer:", info.error);
	if (info.error_sent) {
		FUZZ_CHECK(info.closed, "ERR sent but the session is open");
		FUZZ_CHECK(p->saw_err, "ERR %d recorded but no ERR line went out", info.error_code);
		FUZZ_CHECK(info.error_code >= 400 && info.error_code <= 599, "ERR code %d", info.error_code);
		FUZZ_CHECK(info.error_code != LIM_PERR_INTERNAL,
		           "the input made the server's own store fail: it sent ERR 500 %s", info.error);
	} else {
		FUZZ_CHECK(!p->saw_err, "an ERR line went out but none is recorded");
	}
	if (p->over)
		FUZZ_CHECK(info.closed, "feed reported the end but the session is open");
	/* Once over, it stays over. */
	if (info.closed)
		FUZZ_CHECK(lim_session__feed(p->s, "PING x\n", 7, p->now) < 0, "a closed session accepts input");
	fuzz_check_store(p->db, "a session");
}

#endif
