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
 * Checks beyond "no crash": see fuzz_peer_finish (ERR accounting, closed
 * stays closed, the store verifies afterwards).
 */
#include "fuzz_session_common.h"
#include "change.h"

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
		size_t k = n - off;
		switch (mode & 3) {
		case 1:
			k = 1;
			break;
		case 2:
			x = x * 1103515245u + 12345u;
			k = 1 + (x >> 16) % 97;
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
		if (k > n - off)
			k = n - off;
		fuzz_peer_feed(&p, in + off, k);
		off += k;
		fuzz_peer_step(&p, 7);
		size_t pending;
		lim_session__output(p.s, &pending);
		fuzz_peer_drain(&p, (mode & 8) ? pending / 2 : pending);
	}
	fuzz_peer_finish(&p);
	fuzz_peer_stop(&p);
	return 0;
}
