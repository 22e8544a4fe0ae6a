/*
 * fuzz_line: the protocol line parser (proto.c), i.e. every byte a peer can
 * send before and after the handshake goes through lim_msg__parse first.
 *
 * Input: one line without its LF (any bytes). Checks beyond "no crash":
 *   - a refused line always names an ERR code a peer may send;
 *   - the argument span of an accepted message lies inside the line;
 *   - VV entries iterate to the end without error once the line parsed;
 *   - a CH argument goes on to the change parser (as the session does);
 *   - an ERR line built from the input text is one printable line.
 */
#include "fuzz_common.h"
#include "proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *line = (const char *)data;
	lim_msg m;
	int perr = -1, rc;

	fuzz_begin();
	rc = lim_msg__parse(&m, line, size, &perr);
	if (rc < 0) {
		FUZZ_CHECK(rc == LIM_EPROTOCOL, "parse returned %d", rc);
		FUZZ_CHECK(perr == LIM_PERR_MALFORMED || perr == LIM_PERR_TOO_LARGE, "ERR code %d", perr);
		return 0;
	}
	FUZZ_CHECK(perr == 0, "accepted with ERR code %d", perr);
	if (m.arg.n) {
		FUZZ_CHECK(m.arg.p >= line && m.arg.p + m.arg.n <= line + size, "argument outside the line");
	}
	switch (m.type) {
	case LIM_MSG_VV: {
		lim_span rest = m.arg;
		unsigned char a[LIM_ID_BYTES];
		uint64_t seq;
		size_t n = 0;
		while ((rc = lim_vv__next(&rest, a, &seq)) == 1) {
			FUZZ_CHECK(seq >= 1 && seq <= INT64_MAX, "VV seq %llu", (unsigned long long)seq);
			n++;
		}
		FUZZ_CHECK(rc == 0 && n <= LIM_MAX_VV_AUTHORS, "VV iteration after a good parse: %d", rc);
		break;
	}
	case LIM_MSG_CH: {
		lim_change c;
		if (lim_change__parse(&c, m.arg.p, m.arg.n) == 0) {
			unsigned char h[LIM_HASH_BYTES];
			lim_change__hash(h, c.bytes, c.body_len);
			fuzz_ignore(lim_change__verify(&c, h));
			lim_change__dispose(&c);
		}
		break;
	}
	case LIM_MSG_ERR:
	case LIM_MSG_STATE:
	case LIM_MSG_PING: {
		/* What a node would echo or report back: always one clean line. */
		lim_sb out = LIM_SB_INIT;
		char *text = malloc(m.arg.n + 1);
		if (!text)
			return 0;
		memcpy(text, m.arg.p, m.arg.n);
		text[m.arg.n] = '\0';
		lim_msg__err(&out, (int)(m.count % 1000), text);
		FUZZ_CHECK(out.len > 0 && out.ptr[out.len - 1] == '\n' && memchr(out.ptr, '\n', out.len) == out.ptr + out.len - 1,
		           "ERR line is not one line");
		for (size_t i = 0; i + 1 < out.len; i++)
			FUZZ_CHECK(out.ptr[i] >= 0x20 && out.ptr[i] < 0x7f, "ERR line has byte 0x%02x", (unsigned char)out.ptr[i]);
		lim_sb__free(&out);
		free(text);
		break;
	}
	default:
		break;
	}
	return 0;
}
