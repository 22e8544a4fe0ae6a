/*
 * fuzz_session: the whole sync session state machine (session.c, and below
 * it proto.c, change.c, repl.c lim_db__apply_batch, merge.c, the log
 * reader that feeds catch-up) on the server side, through a fake transport.
 *
 * Input: one mode byte, then the bytes the client sends.
 *   mode & 3    delivery: 0 whole, 1 byte by byte, 2 in chunks of sizes
 *               drawn from (mode >> 4), 3 line by line
 *   mode & 4    no handshake: the bytes start at the first line (HELLO and
 *               AUTH parsing); otherwise the harness authenticates first as
 *               test identity 0 (the vectors' author) and the bytes are the
 *               live phase (VV, CH/END, ACK, PING, STATUS, ...)
 *   mode & 8    slow reader: only half of the server's output is read
 *               between deliveries (output back-pressure, ERR 429)
 * Between deliveries 7 ms pass: timers tick (keep-alive PING every 500 ms)
 * and the server pumps its catch-up in batches of 2 (window 4).
 * Changes must carry valid signatures to be applied (except in
 * fuzz_session_nv, this file built against liblim with LIM_FUZZ_NO_VERIFY);
 * see fuzz_session_signed for the harness that signs what it sends.
 * Checks beyond "no crash": see fuzz_peer_finish (ERR accounting, no ERR
 * 500 sent, closed stays closed, the store verifies afterwards). An ERR
 * 500 that LIM_FUZZ_VERBOSE marks "received from the peer" is the input's
 * own line (seed-peer-error-*), not a failure of the server.
 *
 * Then the same bytes go in again three times, whole, byte by byte and
 * split at random points (drawn from mode >> 4), each on a fresh server
 * whose store has no changes of its own, with the clock stopped, and the
 * three must end alike: same store digest and version vector, same ERR
 * code, same closed/authenticated state, same count of changes taken in.
 * Framing must not change what a session does. What legitimately depends
 * on framing is held still there: time (20 s without a complete line is
 * an idle timeout), the server's own catch-up (each feed call ends with a
 * pump, so whether an ACK acknowledges something already sent depends on
 * where the input was cut) and unread output (ERR 429 when one feed's
 * replies pass LIM_MAX_UNREAD_OUTPUT before the reader drains them: such a
 * run is not compared). The first run above keeps all three.
 */
#include "fuzz_session_common.h"
#include "change.h"
#include "proto.h"

#ifdef LIM_FUZZ_NO_VERIFY
/* fuzz_session_nv: if liblim stopped honouring the switch, this target
 * would silently fuzz the same thing as fuzz_session. */
static void session_nv_check(void)
{
	static int done;
	lim_change c;
	unsigned char hash[LIM_HASH_BYTES] = { 0 };
	if (done)
		return;
	done = 1;
	memset(&c, 0, sizeof(c));
	FUZZ_CHECK(lim_change__verify(&c, hash) == 0,
	           "built with LIM_FUZZ_NO_VERIFY but lim_change__verify still checks signatures");
}
#else
static void session_nv_check(void)
{
}
#endif

/* The size of the next piece to deliver, for delivery 0 (whole), 1 (byte
 * by byte), 2 (random sizes from *x) or 3 (line by line). */
static size_t session_piece(unsigned delivery, uint32_t *x, const char *in, size_t off, size_t n)
{
	size_t k = n - off;
	switch (delivery) {
	case 1:
		k = 1;
		break;
	case 2:
		*x = *x * 1103515245u + 12345u;
		k = 1 + (*x >> 16) % 97;
		break;
	case 3: {
		const char *nl = memchr(in + off, '\n', n - off);
		if (nl)
			k = (size_t)(nl - in - off) + 1;
		break;
	}
	default:
		break;
	}
	return k > n - off ? n - off : k;
}

typedef struct {
	char digest[65];
	lim_buf vv;
	int error_code, closed, authenticated;
	uint64_t changes_in;
} session_outcome;

/* One delivery of the input with the clock stopped and no pumping until
 * the end (see the top of this file); what it left behind goes to `o`. */
static void session_run_still(const char *in, size_t n, unsigned mode, unsigned delivery, session_outcome *o)
{
	fuzz_peer p;
	lim_session_info info;
	uint32_t x = mode >> 4;
	size_t off = 0;
	fuzz_begin();
	fuzz_peer_start_with(&p, 2, 4, 0);
	if (!(mode & 4))
		fuzz_peer_handshake(&p);
	while (off < n && !p.over) {
		size_t k = session_piece(delivery, &x, in, off, n);
		fuzz_peer_feed(&p, in + off, k);
		off += k;
		fuzz_peer_drain(&p, SIZE_MAX);
	}
	fuzz_peer_finish(&p);
	lim_session__info(p.s, &info);
	memset(o, 0, sizeof(*o));
	o->error_code = info.error_code;
	o->closed = info.closed;
	o->authenticated = info.authenticated;
	o->changes_in = info.changes_in;
	FUZZ_CHECK(lim_db_digest(p.db, o->digest) == 0, "digest");
	FUZZ_CHECK(lim_db_version_vector(&o->vv, p.db) == 0, "version vector");
	fuzz_peer_stop(&p);
}

static void session_same_outcome(const char *in, size_t n, unsigned mode)
{
	static const char *const names[] = { "whole", "byte by byte", "in random pieces" };
	session_outcome o[3];
	for (unsigned d = 0; d < 3; d++)
		session_run_still(in, n, mode, d, &o[d]);
	for (unsigned d = 1; d < 3; d++) {
		if (o[0].error_code == LIM_PERR_FLOW || o[d].error_code == LIM_PERR_FLOW)
			continue; /* back-pressure depends on how often the reader drains */
		FUZZ_CHECK(o[d].error_code == o[0].error_code, "ERR %d delivered whole, ERR %d delivered %s",
		           o[0].error_code, o[d].error_code, names[d]);
		FUZZ_CHECK(o[d].closed == o[0].closed && o[d].authenticated == o[0].authenticated,
		           "closed %d authenticated %d delivered whole, %d %d delivered %s", o[0].closed,
		           o[0].authenticated, o[d].closed, o[d].authenticated, names[d]);
		FUZZ_CHECK(o[d].changes_in == o[0].changes_in, "%llu changes in delivered whole, %llu delivered %s",
		           (unsigned long long)o[0].changes_in, (unsigned long long)o[d].changes_in, names[d]);
		FUZZ_CHECK(strcmp(o[d].digest, o[0].digest) == 0, "digest %s delivered whole, %s delivered %s",
		           o[0].digest, o[d].digest, names[d]);
		FUZZ_CHECK(o[d].vv.size == o[0].vv.size && memcmp(o[d].vv.ptr, o[0].vv.ptr, o[0].vv.size) == 0,
		           "the version vector differs delivered whole and %s", names[d]);
	}
	for (unsigned d = 0; d < 3; d++)
		lim_buf_dispose(&o[d].vv);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_peer p;
	unsigned mode;
	const char *in;
	size_t n, off = 0;
	uint32_t x;

	if (size < 1)
		return 0;
	fuzz_begin();
	session_nv_check();
	mode = data[0];
	in = (const char *)data + 1;
	n = size - 1;
	x = mode >> 4;
	fuzz_peer_start(&p, 2, 4);
	if (!(mode & 4))
		fuzz_peer_handshake(&p);
	while (off < n && !p.over) {
		size_t k = session_piece(mode & 3, &x, in, off, n);
		fuzz_peer_feed(&p, in + off, k);
		off += k;
		fuzz_peer_step(&p, 7);
		size_t pending;
		lim_session__output(p.s, &pending);
		fuzz_peer_drain(&p, (mode & 8) ? pending / 2 : pending);
	}
	fuzz_peer_finish(&p);
	fuzz_peer_stop(&p);
	session_same_outcome(in, n, mode);
	return 0;
}
