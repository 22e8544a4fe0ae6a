/*
 * test_protocol.c — the sync protocol as protocol-spec/PROTOCOL.md states it.
 *
 * 1. The handshake golden vectors (protocol-spec/vectors/handshake.txt, made
 *    by gen_handshake.c with libsodium only) recomputed through liblim's
 *    lim_msg__hello, lim_handshake__hash and lim_handshake__prove.
 * 2. The message parser against a table of lines and the ERR code each earns.
 * 3. Every transcript of protocol-spec/transcripts/ replayed against a real
 *    `lim serve` ($LIM_BIN) over TCP: the C: lines are sent, each S: line is
 *    compared byte for byte (placeholders match any value of their shape),
 *    then the node's store digest is compared with the one before (or with
 *    "! digest"), a well-behaved `lim sync` must still succeed, and SIGTERM
 *    must stop the node with exit status 0.
 *
 * Transcript syntax (PROTOCOL.md, appendix B): "# comment", "! directive",
 * "C: line", "S: line", "S: <close>". The client is the client of the
 * handshake vectors (same seed, same nonce); the node's store is created
 * with the vectors' network key.
 */
#define _GNU_SOURCE

#include <sodium.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include "support.h"
#include "proto.h"
#include "text.h"

#define IO_TIMEOUT_MS 5000

/* ------------------------------------------------------------ files */

static char *spec_path(const char *rel)
{
	const char *root = getenv("LIM_SOURCE_DIR");
	size_t n;
	char *p;
	if (!root)
		fail_msg("LIM_SOURCE_DIR is not set (ctest sets it)");
	n = strlen(root) + strlen(rel) + 32;
	p = malloc(n);
	snprintf(p, n, "%s/protocol-spec/%s", root, rel);
	return p;
}

static char *slurp_spec(const char *rel, size_t *len)
{
	char *path = spec_path(rel);
	FILE *f = fopen(path, "rb");
	size_t cap = 1 << 16, n = 0, got;
	char *buf = malloc(cap + 1);
	if (!f)
		fail_msg("cannot open %s", path);
	while ((got = fread(buf + n, 1, cap - n, f)) > 0) {
		n += got;
		if (n == cap)
			buf = realloc(buf, (cap *= 2) + 1);
	}
	fclose(f);
	free(path);
	buf[n] = '\0';
	if (len)
		*len = n;
	return buf;
}

/* handshake.txt: "name value" lines. */
static char *g_vectors;

static const char *vec(const char *key)
{
	static char out[8][2048];
	static int next;
	size_t kl = strlen(key);
	if (!g_vectors)
		g_vectors = slurp_spec("vectors/handshake.txt", NULL);
	for (const char *l = g_vectors; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		if (strncmp(l, key, kl) == 0 && l[kl] == ' ') {
			const char *v = l + kl + 1, *e = strchr(v, '\n');
			size_t n = e ? (size_t)(e - v) : strlen(v);
			char *o = out[next++ % 8];
			assert_true(n < sizeof(out[0]));
			memcpy(o, v, n);
			o[n] = '\0';
			return o;
		}
	}
	fail_msg("handshake.txt has no line \"%s ...\"", key);
	return NULL;
}

static void vec_bin(unsigned char *out, size_t n, const char *key)
{
	const char *h = vec(key);
	if (lim_hex__decode(out, n, h, strlen(h)) != 0)
		fail_msg("handshake.txt: %s is not %zu bytes of lowercase hex", key, n);
}

static void hex_of(char *out, const unsigned char *bin, size_t n)
{
	lim_hex__encode(out, bin, n);
}

typedef struct {
	unsigned char pk[LIM_ID_BYTES], sk[LIM_SECRET_KEY_BYTES];
} keypair;

static void vec_keypair(keypair *k, const char *who)
{
	unsigned char seed[32], id[32];
	char key[64];
	snprintf(key, sizeof(key), "%s_seed", who);
	vec_bin(seed, 32, key);
	assert_int_equal(crypto_sign_seed_keypair(k->pk, k->sk, seed), 0);
	snprintf(key, sizeof(key), "%s_id", who);
	vec_bin(id, 32, key);
	assert_memory_equal(k->pk, id, 32);
}

/* ------------------------------------------------------------ 1. vectors */

static void check_side(const char *who, char role, const keypair *k, const unsigned char th[32],
                       const unsigned char netkey[32], const unsigned char other[32])
{
	unsigned char sig[64], proof[32], want_sig[64], want_proof[32], want_other[32], msg[128];
	char key[64];
	lim_sb sb = LIM_SB_INIT;
	lim_msg m;
	int perr;
	const char *line;

	lim_handshake__prove(sig, proof, role, th, k->sk, netkey);
	snprintf(key, sizeof(key), "%s_signature", who);
	vec_bin(want_sig, 64, key);
	snprintf(key, sizeof(key), "%s_proof", who);
	vec_bin(want_proof, 32, key);
	assert_memory_equal(sig, want_sig, 64);
	assert_memory_equal(proof, want_proof, 32);

	/* The signed message is context NUL || role || transcript hash. */
	snprintf(key, sizeof(key), "%s_signed_message", who);
	line = vec(key);
	assert_int_equal(strlen(line), 2 * (sizeof("liblim handshake signature v1") + 1 + 32));
	assert_int_equal(lim_hex__decode(msg, strlen(line) / 2, line, strlen(line)), 0);
	assert_memory_equal(msg, "liblim handshake signature v1", sizeof("liblim handshake signature v1"));
	assert_int_equal(msg[sizeof("liblim handshake signature v1")], (unsigned char)role);
	assert_memory_equal(msg + sizeof("liblim handshake signature v1") + 1, th, 32);
	assert_int_equal(crypto_sign_verify_detached(sig, msg, strlen(line) / 2, k->pk), 0);

	/* liblim accepts its own proof for the right role only. */
	assert_int_equal(lim_handshake__check_sig(sig, role, th, k->pk), 0);
	assert_int_not_equal(lim_handshake__check_sig(sig, role == 'C' ? 'S' : 'C', th, k->pk), 0);
	assert_int_equal(lim_handshake__check_proof(proof, role, th, netkey), 0);
	assert_int_not_equal(lim_handshake__check_proof(proof, role == 'C' ? 'S' : 'C', th, netkey), 0);
	assert_int_not_equal(lim_handshake__check_proof(proof, role, th, other), 0);

	/* Another network key gives the recorded other proof. */
	lim_handshake__prove(sig, proof, role, th, k->sk, other);
	snprintf(key, sizeof(key), "%s_proof_other_network", who);
	vec_bin(want_other, 32, key);
	assert_memory_equal(proof, want_other, 32);

	/* The AUTH line, byte for byte, and back. */
	lim_handshake__prove(sig, proof, role, th, k->sk, netkey);
	lim_msg__auth(&sb, sig, proof);
	snprintf(key, sizeof(key), "%s_auth", who);
	line = vec(key);
	assert_int_equal(sb.len, strlen(line) + 1);
	assert_memory_equal(sb.ptr, line, strlen(line));
	assert_int_equal(sb.ptr[sb.len - 1], '\n');
	assert_int_equal(lim_msg__parse(&m, line, strlen(line), &perr), 0);
	assert_int_equal(m.type, LIM_MSG_AUTH);
	assert_memory_equal(m.sig, want_sig, 64);
	assert_memory_equal(m.proof, want_proof, 32);
	lim_sb__free(&sb);
}

static void test_protocol__handshake_vectors(void **state)
{
	keypair c, s;
	unsigned char cn[32], sn[32], netkey[32], other[32], th[32], want_th[32], tr[1024];
	const char *chello, *shello, *trhex;
	lim_sb sb = LIM_SB_INIT;
	lim_msg m;
	int perr;
	(void)state;

	assert_true(sodium_init() >= 0);
	assert_string_equal(vec("version"), "1");
	assert_int_equal(LIM_PROTOCOL_VERSION, 1);
	vec_keypair(&c, "client");
	vec_keypair(&s, "server");
	vec_bin(cn, 32, "client_nonce");
	vec_bin(sn, 32, "server_nonce");
	vec_bin(netkey, 32, "network_key");
	vec_bin(other, 32, "other_network_key");
	chello = vec("client_hello");
	shello = vec("server_hello");

	/* lim_msg__hello prints exactly the recorded HELLO lines (plus LF). */
	lim_msg__hello(&sb, c.pk, cn);
	assert_int_equal(sb.len, strlen(chello) + 1);
	assert_memory_equal(sb.ptr, chello, strlen(chello));
	assert_int_equal(sb.ptr[sb.len - 1], '\n');
	lim_sb__clear(&sb);
	lim_msg__hello(&sb, s.pk, sn);
	assert_int_equal(sb.len, strlen(shello) + 1);
	assert_memory_equal(sb.ptr, shello, strlen(shello));
	lim_sb__free(&sb);

	/* ... and parses them back. */
	assert_int_equal(lim_msg__parse(&m, chello, strlen(chello), &perr), 0);
	assert_int_equal(m.type, LIM_MSG_HELLO);
	assert_int_equal(m.version, 1);
	assert_memory_equal(m.id, c.pk, 32);
	assert_memory_equal(m.nonce, cn, 32);

	/* The transcript: context NUL || client HELLO LF || server HELLO LF. */
	trhex = vec("transcript");
	assert_int_equal(strlen(trhex) % 2, 0);
	assert_true(strlen(trhex) / 2 <= sizeof(tr));
	assert_int_equal(lim_hex__decode(tr, strlen(trhex) / 2, trhex, strlen(trhex)), 0);
	{
		size_t ctx = sizeof("liblim handshake v1"), cl = strlen(chello), sl = strlen(shello);
		assert_int_equal(strlen(trhex) / 2, ctx + cl + 1 + sl + 1);
		assert_memory_equal(tr, "liblim handshake v1", ctx);
		assert_memory_equal(tr + ctx, chello, cl);
		assert_int_equal(tr[ctx + cl], '\n');
		assert_memory_equal(tr + ctx + cl + 1, shello, sl);
		assert_int_equal(tr[ctx + cl + 1 + sl], '\n');
		crypto_generichash(want_th, 32, tr, strlen(trhex) / 2, NULL, 0);
	}
	lim_handshake__hash(th, chello, strlen(chello), shello, strlen(shello));
	assert_memory_equal(th, want_th, 32);
	vec_bin(want_th, 32, "transcript_hash");
	assert_memory_equal(th, want_th, 32);

	check_side("client", 'C', &c, th, netkey, other);
	check_side("server", 'S', &s, th, netkey, other);
	/* A signature does not verify for the other side's id. */
	{
		unsigned char sig[64], proof[32];
		lim_handshake__prove(sig, proof, 'C', th, c.sk, netkey);
		assert_int_not_equal(lim_handshake__check_sig(sig, 'C', th, s.pk), 0);
	}
}

/* handshake.json holds the same values as handshake.txt. */
static void test_protocol__handshake_json_matches_txt(void **state)
{
	static const char *const keys[] = { "seed", "id", "nonce", "hello", "signed_message", "signature",
	                                    "proof", "proof_other_network", "auth" };
	char *json = slurp_spec("vectors/handshake.json", NULL);
	char want[2300], key[64];
	(void)state;
	for (int side = 0; side < 2; side++) {
		const char *who = side ? "server" : "client";
		for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
			snprintf(key, sizeof(key), "%s_%s", who, keys[i]);
			snprintf(want, sizeof(want), "\"%s\": \"%s\"", keys[i], vec(key));
			if (!strstr(json, want))
				fail_msg("handshake.json lacks %s", want);
		}
	}
	snprintf(want, sizeof(want), "\"transcript_hash\": \"%s\"", vec("transcript_hash"));
	assert_non_null(strstr(json, want));
	snprintf(want, sizeof(want), "\"network_key\": \"%s\"", vec("network_key"));
	assert_non_null(strstr(json, want));
	free(json);
}

/* ------------------------------------------------------------ 2. parser */

static void test_protocol__parser(void **state)
{
	static const char A[] = "79b5562e8fe654f94078b112e8a98ba7901f853ae695bed7e0e3910bad049664";
	char sig[129];
	memset(sig, 'a', 128);
	sig[128] = '\0';
	struct {
		const char *line;
		int type; /* expected type, or -1 */
		int perr; /* expected ERR code when type is -1 */
	} cases[64];
	char bufs[32][400];
	int n = 0, b = 0;
	(void)state;
#define OK(l, t) (cases[n].line = (l), cases[n].type = (t), cases[n].perr = 0, n++)
#define BAD(l, e) (cases[n].line = (l), cases[n].type = -1, cases[n].perr = (e), n++)
#define FMT(...) (snprintf(bufs[b], sizeof(bufs[b]), __VA_ARGS__), bufs[b++])
	OK(FMT("HELLO 1 %s %s", A, A), LIM_MSG_HELLO);
	OK(FMT("HELLO 2 %s %s", A, A), LIM_MSG_HELLO); /* parses; refused by the session with 426 */
	BAD(FMT("HELLO 01 %s %s", A, A), 400);
	BAD(FMT("HELLO 1 %s", A), 400);
	BAD(FMT("HELLO 1 %s %s ", A, A), 400);
	BAD(FMT("HELLO 1  %s %s", A, A), 400);
	BAD(FMT("HELLO 1 %.62s %s", A, A), 400);
	BAD(FMT("hello 1 %s %s", A, A), 400);
	OK(FMT("AUTH %s %s", sig, A), LIM_MSG_AUTH);
	BAD(FMT("AUTH %s", sig), 400);
	BAD(FMT("AUTH %s %.63sA", sig, A), 400);
	OK("VV", LIM_MSG_VV);
	OK(FMT("VV %s:1", A), LIM_MSG_VV);
	OK(FMT("VV %s:9223372036854775807 %s:3", A, A), LIM_MSG_VV);
	BAD(FMT("VV %s:0", A), 400);
	BAD(FMT("VV %s:9223372036854775808", A), 400);
	BAD(FMT("VV %s 1", A), 400);
	BAD("VV ", 400);
	OK("CH lim1 x", LIM_MSG_CH); /* the change itself is checked later (422) */
	BAD("CH", 400);
	OK("END 0", LIM_MSG_END);
	OK("END 18446744073709551615", LIM_MSG_END);
	BAD("END 18446744073709551616", 400);
	BAD("END -1", 400);
	BAD("END", 400);
	OK("ACK 7", LIM_MSG_ACK);
	BAD("ACK 07", 400);
	OK("SYNCED", LIM_MSG_SYNCED);
	BAD("SYNCED now", 400);
	OK("PING 0123456789012345678901234567890123456789012345678901234567890123", LIM_MSG_PING);
	BAD("PING 01234567890123456789012345678901234567890123456789012345678901234", 400);
	BAD("PING", 400);
	BAD("PING a b", 400);
	OK("PONG \xff", LIM_MSG_PONG); /* tokens are not checked for UTF-8 */
	OK("STATUS", LIM_MSG_STATUS);
	OK("STATE", LIM_MSG_STATE);
	OK("STATE {\"id\":\"x\"}", LIM_MSG_STATE);
	OK("ERR 400", LIM_MSG_ERR);
	OK("ERR 503 busy now", LIM_MSG_ERR);
	BAD("ERR", 400);
	BAD("ERR x y", 400);
	BAD("ERR 400 ", 400);
	OK("BYE", LIM_MSG_BYE);
	BAD("BYE ", 400);
	BAD("", 400);
	BAD(" BYE", 400);
	BAD("BYE\r", 400);
	BAD("FROB", 400);
#undef OK
#undef BAD
#undef FMT
	for (int i = 0; i < n; i++) {
		lim_msg m;
		int perr = -7, rc = lim_msg__parse(&m, cases[i].line, strlen(cases[i].line), &perr);
		if (cases[i].type >= 0 && (rc != 0 || (int)m.type != cases[i].type))
			fail_msg("\"%s\": rc %d type %d, wanted type %d (%s)", cases[i].line, rc, (int)m.type, cases[i].type,
			         lim_error_last());
		if (cases[i].type < 0 && (rc == 0 || perr != cases[i].perr))
			fail_msg("\"%s\": rc %d perr %d, wanted ERR %d", cases[i].line, rc, perr, cases[i].perr);
	}
	/* NUL inside a line; the size limit. */
	{
		lim_msg m;
		int perr;
		char *big;
		assert_int_not_equal(lim_msg__parse(&m, "BYE\0", 4, &perr), 0);
		assert_int_equal(perr, 400);
		big = malloc(LIM_MAX_LINE_BYTES + 2);
		memcpy(big, "CH ", 3);
		memset(big + 3, 'x', LIM_MAX_LINE_BYTES - 1);
		assert_int_equal(lim_msg__parse(&m, big, LIM_MAX_LINE_BYTES, &perr), 0);
		big[LIM_MAX_LINE_BYTES] = 'x';
		assert_int_not_equal(lim_msg__parse(&m, big, LIM_MAX_LINE_BYTES + 1, &perr), 0);
		assert_int_equal(perr, 413);
		free(big);
	}
	/* Every ERR text liblim writes is one line of printable ASCII. */
	{
		lim_sb sb = LIM_SB_INIT;
		lim_msg__err(&sb, 422, "caf\xc3\xa9\n");
		assert_int_equal(sb.len, strlen("ERR 422 caf???\n"));
		assert_memory_equal(sb.ptr, "ERR 422 caf???\n", sb.len);
		lim_sb__free(&sb);
	}
}

/* ------------------------------------------------------------ 2b. printer */

/* Parse a printed message back: exactly one LF, at the end. */
static void reparse(const lim_sb *line, lim_msg *back)
{
	int perr = -1;
	assert_true(line->len >= 1 && line->ptr[line->len - 1] == '\n');
	assert_null(memchr(line->ptr, '\n', line->len - 1));
	if (lim_msg__parse(back, line->ptr, line->len - 1, &perr) != 0)
		fail_msg("\"%.*s\" does not parse: ERR %d %s", (int)line->len - 1, line->ptr, perr, lim_error_last());
}

static void assert_same_msg(const lim_msg *a, const lim_msg *b)
{
	assert_int_equal(a->type, b->type);
	assert_int_equal(a->version, b->version);
	assert_memory_equal(a->id, b->id, sizeof(a->id));
	assert_memory_equal(a->nonce, b->nonce, sizeof(a->nonce));
	assert_memory_equal(a->sig, b->sig, sizeof(a->sig));
	assert_memory_equal(a->proof, b->proof, sizeof(a->proof));
	assert_int_equal(a->count, b->count);
	assert_int_equal(a->arg.n, b->arg.n);
	if (a->arg.n)
		assert_memory_equal(a->arg.p, b->arg.p, a->arg.n);
}

/*
 * parse(print(m)) == m for every message type, with the fields at their
 * edges (empty and full VV, STATE with and without JSON, ERR with and
 * without text, the largest counts and tokens); and print(parse(line)) ==
 * line for the lines of a real session, so that the printer writes what
 * the spec's transcripts show.
 */
static void test_protocol__print_parse_round_trip(void **state)
{
	static const char A[] = "79b5562e8fe654f94078b112e8a98ba7901f853ae695bed7e0e3910bad049664";
	static const char CHANGE[] =
		"lim1 79b5562e8fe654f94078b112e8a98ba7901f853ae695bed7e0e3910bad049664 4 018cc251ffb80000 "
		"4f98e66de9fc564a7e5df8da92b6c770de4b79310cdcf32a076d26a596b7802c 2 S notes draft%201 title sback "
		"D notes n1 draft bddbbe9ef1744956bd016c70e21677ae0d7fd28175136b06fff2ff2eed6c9c9ae0f6f30221227761146f36c3c6c6d43"
		"9031d1ad8896f4216390dd1f55fd66a0a";
	char vv2[200], token64[65];
	int covered[LIM_MSG_BYE + 1] = { 0 };
	lim_msg cases[32];
	int n = 0;
	(void)state;
	snprintf(vv2, sizeof(vv2), "%s:1 %s:9223372036854775807", A, A);
	memset(token64, 't', 64);
	token64[64] = '\0';
	memset(cases, 0, sizeof(cases));
#define SPAN(str) ((lim_span){ (str), strlen(str) })
	cases[n].type = LIM_MSG_HELLO, cases[n].version = 1;
	for (int i = 0; i < LIM_ID_BYTES; i++)
		cases[n].id[i] = (unsigned char)(0xff - i), cases[n].nonce[i] = (unsigned char)i;
	n++;
	cases[n].type = LIM_MSG_HELLO, cases[n].version = UINT64_MAX, n++; /* parses; the session says 426 */
	cases[n].type = LIM_MSG_AUTH;
	for (int i = 0; i < 64; i++)
		cases[n].sig[i] = (unsigned char)(3 * i);
	for (int i = 0; i < LIM_HASH_BYTES; i++)
		cases[n].proof[i] = (unsigned char)(7 * i + 1);
	n++;
	cases[n].type = LIM_MSG_VV, n++;
	cases[n].type = LIM_MSG_VV, cases[n].arg = SPAN(vv2), n++;
	cases[n].type = LIM_MSG_CH, cases[n].arg = SPAN(CHANGE), n++;
	cases[n].type = LIM_MSG_END, cases[n].count = 0, n++;
	cases[n].type = LIM_MSG_END, cases[n].count = 1000, n++;
	cases[n].type = LIM_MSG_ACK, cases[n].count = UINT64_MAX, n++;
	cases[n].type = LIM_MSG_SYNCED, n++;
	cases[n].type = LIM_MSG_PING, cases[n].arg = SPAN("1"), n++;
	cases[n].type = LIM_MSG_PING, cases[n].arg = SPAN(token64), n++;
	cases[n].type = LIM_MSG_PONG, cases[n].arg = SPAN("\xff\x01~"), n++; /* opaque bytes */
	cases[n].type = LIM_MSG_STATUS, n++;
	cases[n].type = LIM_MSG_STATE, n++;
	cases[n].type = LIM_MSG_STATE, cases[n].arg = SPAN("{\"id\":\"x\",\"peers\":[]}"), n++;
	cases[n].type = LIM_MSG_ERR, cases[n].count = 503, n++;
	cases[n].type = LIM_MSG_ERR, cases[n].count = 409, cases[n].arg = SPAN("the first line must be HELLO"), n++;
	cases[n].type = LIM_MSG_BYE, n++;
#undef SPAN
	for (int i = 0; i < n; i++) {
		lim_sb line = LIM_SB_INIT;
		lim_msg back;
		lim_msg__print(&line, &cases[i]);
		assert_int_equal(lim_sb__check(&line), 0);
		reparse(&line, &back);
		assert_same_msg(&cases[i], &back);
		covered[cases[i].type] = 1;
		lim_sb__free(&line);
	}
	for (int t = LIM_MSG_HELLO; t <= LIM_MSG_BYE; t++)
		if (!covered[t])
			fail_msg("message type %d has no round-trip case", t);

	/* The shorthands print the same bytes as the general printer. */
	{
		lim_sb a = LIM_SB_INIT, b = LIM_SB_INIT;
		lim_msg__print_count(&a, LIM_MSG_ACK, 4);
		lim_msg__print_span(&a, LIM_MSG_SYNCED, NULL, 0);
		lim_msg__print_span(&a, LIM_MSG_PONG, "t1", 2);
		lim_msg__err(&a, 400, "");
		assert_int_equal(lim_sb__check(&a), 0);
		lim_sb__puts(&b, "ACK 4\nSYNCED\nPONG t1\nERR 400 error\n");
		assert_int_equal(a.len, b.len);
		assert_memory_equal(a.ptr, b.ptr, a.len);
		lim_sb__free(&a);
		lim_sb__free(&b);
	}

	/* print(parse(line)) == line over every C: and S: line of sync.txt,
	 * the exact transcript (no placeholders). */
	{
		char *text = slurp_spec("transcripts/sync.txt", NULL);
		int lines = 0;
		for (char *p = text, *nl; *p; p = nl + 1) {
			lim_msg m;
			lim_sb line = LIM_SB_INIT;
			int perr;
			size_t len;
			nl = strchr(p, '\n');
			assert_non_null(nl);
			len = (size_t)(nl - p);
			if (len < 3 || (memcmp(p, "C: ", 3) != 0 && memcmp(p, "S: ", 3) != 0) || memcmp(p + 3, "<close>", 7) == 0)
				continue;
			assert_int_equal(lim_msg__parse(&m, p + 3, len - 3, &perr), 0);
			lim_msg__print(&line, &m);
			assert_int_equal(line.len, len - 3 + 1);
			assert_memory_equal(line.ptr, p + 3, len - 3);
			lim_sb__free(&line);
			lines++;
		}
		assert_true(lines >= 15);
		free(text);
	}
}

/* ------------------------------------------------------------ processes */

static const char *g_bin;

static void need_bin(void)
{
	g_bin = getenv("LIM_BIN");
	if (!g_bin || !*g_bin || access(g_bin, X_OK) != 0)
		fail_msg("LIM_BIN is unset or not executable: %s", g_bin ? g_bin : "(unset)");
}

/* Run lim with the arguments (NULL-terminated); stdout into `out` (may be
 * NULL). Returns the exit status. */
static int run_lim(char *out, size_t outcap, const char *const *args)
{
	const char *argv[32];
	int p[2], status, n = 0;
	size_t got = 0;
	pid_t pid;
	argv[n++] = g_bin;
	for (int i = 0; args[i]; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	assert_int_equal(pipe(p), 0);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int devnull = open("/dev/null", O_RDWR);
		dup2(devnull, 0);
		dup2(p[1], 1);
		close(p[0]);
		close(p[1]);
		execv(g_bin, (char *const *)argv);
		_exit(127);
	}
	close(p[1]);
	for (;;) {
		char tmp[512];
		ssize_t r = read(p[0], tmp, sizeof(tmp));
		if (r <= 0)
			break;
		if (out && got + (size_t)r < outcap) {
			memcpy(out + got, tmp, (size_t)r);
			got += (size_t)r;
		}
	}
	if (out)
		out[got] = '\0';
	close(p[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* The node of the running test, killed by the teardown if the test failed
 * before stopping it (its directory is kept and named for diagnosis). */
static pid_t g_running;

typedef struct {
	char *dir, *db, *client_db;
	char sync_id[65];
	pid_t pid;
	int out_fd;
	int port;
} server;

static void init_store(const char *path, char id_out[65])
{
	char out[512];
	const char *args[] = { "--db", path, "init", "--network-key", vec("network_key"), NULL };
	int rc = run_lim(out, sizeof(out), args);
	if (rc != 0)
		fail_msg("lim init %s exited %d", path, rc);
	if (id_out) {
		const char *p = strstr(out, "replica_id ");
		assert_non_null(p);
		memcpy(id_out, p + 11, 64);
		id_out[64] = '\0';
	}
}

/* Start `lim --db DIR/node.db serve --listen 127.0.0.1:0 EXTRA...`. */
static void start_server(server *s, char *const *extra, int nextra)
{
	const char *argv[32];
	int p[2], n = 0;
	char buf[256];
	size_t got = 0;
	memset(s, 0, sizeof(*s));
	s->dir = make_tmpdir();
	s->db = path_in(s->dir, "node.db");
	s->client_db = path_in(s->dir, "client.db");
	init_store(s->db, NULL);
	init_store(s->client_db, s->sync_id);
	argv[n++] = g_bin;
	argv[n++] = "--db";
	argv[n++] = s->db;
	argv[n++] = "serve";
	argv[n++] = "--listen";
	argv[n++] = "127.0.0.1:0";
	for (int i = 0; i < nextra; i++)
		argv[n++] = strcmp(extra[i], "<sync-id>") == 0 ? s->sync_id : extra[i];
	argv[n] = NULL;
	assert_int_equal(pipe(p), 0);
	fflush(NULL);
	s->pid = fork();
	assert_true(s->pid >= 0);
	if (s->pid == 0) {
		char *log = path_in(s->dir, "serve.log");
		int devnull = open("/dev/null", O_RDWR), lf = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		dup2(devnull, 0);
		dup2(p[1], 1);
		dup2(lf, 2);
		close(p[0]);
		close(p[1]);
		execv(g_bin, (char *const *)argv);
		_exit(127);
	}
	close(p[1]);
	g_running = s->pid;
	s->out_fd = p[0]; /* kept open until the node exits: it never gets SIGPIPE */
	while (got < sizeof(buf) - 1 && !memchr(buf, '\n', got)) {
		struct pollfd pf = { s->out_fd, POLLIN, 0 };
		ssize_t r;
		if (poll(&pf, 1, IO_TIMEOUT_MS) <= 0)
			fail_msg("lim serve printed no address within %d ms", IO_TIMEOUT_MS);
		r = read(s->out_fd, buf + got, sizeof(buf) - 1 - got);
		if (r <= 0)
			fail_msg("lim serve exited before printing its address");
		got += (size_t)r;
	}
	buf[got] = '\0';
	if (sscanf(buf, "listening on 127.0.0.1:%d", &s->port) != 1)
		fail_msg("lim serve printed \"%s\"", buf);
}

static void stop_server(server *s)
{
	int status = -1;
	assert_int_equal(kill(s->pid, SIGTERM), 0);
	for (int i = 0; i < 1000; i++) {
		pid_t r = waitpid(s->pid, &status, WNOHANG);
		if (r == s->pid)
			break;
		assert_int_equal(r, 0);
		usleep(10000);
		if (i == 999) {
			kill(s->pid, SIGKILL);
			waitpid(s->pid, &status, 0);
			fail_msg("lim serve did not stop within 10 s of SIGTERM");
		}
	}
	g_running = 0;
	close(s->out_fd);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail_msg("lim serve ended with status %d after SIGTERM (log in %s)", status, s->dir);
	remove_tree(s->dir);
	free(s->dir);
	free(s->db);
	free(s->client_db);
}

static void digest(const server *s, char out[65])
{
	char buf[256];
	const char *args[] = { "--db", s->db, "digest", NULL };
	assert_int_equal(run_lim(buf, sizeof(buf), args), 0);
	assert_true(strlen(buf) == 65 && buf[64] == '\n');
	memcpy(out, buf, 64);
	out[64] = '\0';
}

/* A well-behaved peer (liblim's own client, `lim sync`) is still served. */
static void expect_serves(const server *s)
{
	char addr[64], out[512];
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", s->port);
	const char *args[] = { "--db", s->client_db, "sync", addr, "--timeout", "10", NULL };
	int rc = run_lim(out, sizeof(out), args);
	if (rc != 0 || strncmp(out, "synced with ", 12) != 0)
		fail_msg("lim sync with the node exited %d: %s", rc, out);
}

/* ------------------------------------------------------------ connections */

typedef struct {
	int fd;
	char *buf;
	size_t len, cap;
} conn;

static void conn_open(conn *c, int port)
{
	struct sockaddr_in a;
	memset(c, 0, sizeof(*c));
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	c->fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(c->fd >= 0);
	assert_int_equal(connect(c->fd, (struct sockaddr *)&a, sizeof(a)), 0);
	c->cap = 1 << 16;
	c->buf = malloc(c->cap);
}

static void conn_close(conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	free(c->buf);
	c->fd = -1;
	c->buf = NULL;
}

static void conn_send(conn *c, const char *p, size_t n)
{
	signal(SIGPIPE, SIG_IGN);
	while (n) {
		ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
		if (w < 0)
			fail_msg("send failed: %s", strerror(errno));
		p += w;
		n -= (size_t)w;
	}
}

/* Next line (without LF) into a malloc'd string: 1; EOF: 0 (*line is then
 * whatever unterminated bytes were left, or NULL). */
static int conn_line(conn *c, char **line, size_t *len)
{
	for (;;) {
		char *nl = memchr(c->buf, '\n', c->len);
		struct pollfd pf = { c->fd, POLLIN, 0 };
		ssize_t r;
		if (nl) {
			*len = (size_t)(nl - c->buf);
			*line = malloc(*len + 1);
			memcpy(*line, c->buf, *len);
			(*line)[*len] = '\0';
			memmove(c->buf, nl + 1, c->len - *len - 1);
			c->len -= *len + 1;
			return 1;
		}
		if (poll(&pf, 1, IO_TIMEOUT_MS) <= 0)
			fail_msg("nothing from the node within %d ms (have %zu bytes: %.200s)", IO_TIMEOUT_MS, c->len,
			         c->len ? c->buf : "");
		if (c->len == c->cap)
			c->buf = realloc(c->buf, c->cap *= 2);
		r = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
		if (r <= 0) {
			if (r < 0 && errno != ECONNRESET)
				fail_msg("recv failed: %s", strerror(errno));
			*len = c->len;
			*line = NULL;
			if (c->len) {
				*line = malloc(c->len + 1);
				memcpy(*line, c->buf, c->len);
				(*line)[c->len] = '\0';
			}
			return 0;
		}
		c->len += (size_t)r;
	}
}

/* ------------------------------------------------------------ 3. transcripts */

static int is_lhex(char ch)
{
	return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f');
}

typedef struct {
	char token[128];
} captures;

/* Does `got` match the pattern `want`? Placeholders: <id> <nonce> <proof>
 * <hash> (64 lowercase hex), <sig> (128), <n> (canonical decimal), <token>
 * (1..64 bytes, no space; captured), <text> (the rest of the line). */
static int match(const char *want, const char *got, size_t glen, captures *cap)
{
	size_t g = 0;
	while (*want) {
		if (*want == '<') {
			const char *end = strchr(want, '>');
			char name[32];
			size_t nl;
			if (!end || (nl = (size_t)(end - want - 1)) >= sizeof(name))
				return 0;
			memcpy(name, want + 1, nl);
			name[nl] = '\0';
			want = end + 1;
			if (!strcmp(name, "id") || !strcmp(name, "nonce") || !strcmp(name, "proof") ||
			    !strcmp(name, "hash") || !strcmp(name, "sig")) {
				size_t k = strcmp(name, "sig") == 0 ? 128 : 64;
				if (glen - g < k)
					return 0;
				for (size_t i = 0; i < k; i++)
					if (!is_lhex(got[g + i]))
						return 0;
				g += k;
			} else if (!strcmp(name, "n")) {
				size_t s = g;
				while (g < glen && got[g] >= '0' && got[g] <= '9')
					g++;
				if (g == s || (got[s] == '0' && g - s > 1))
					return 0;
			} else if (!strcmp(name, "token")) {
				size_t s = g;
				while (g < glen && got[g] != ' ')
					g++;
				if (g == s || g - s > 64)
					return 0;
				memcpy(cap->token, got + s, g - s);
				cap->token[g - s] = '\0';
			} else if (!strcmp(name, "text")) {
				g = glen;
			} else {
				fail_msg("unknown placeholder <%s> in an S: line", name);
			}
			continue;
		}
		if (g >= glen || got[g] != *want)
			return 0;
		g++;
		want++;
	}
	return g == glen;
}

typedef struct {
	keypair me;
	unsigned char netkey[32], other[32];
	char my_hello[256], peer_hello[256];
	unsigned char peer_id[32], peer_nonce[32];
	int have_peer;
	captures cap;
} replayer;

static void transcript_hash(replayer *r, unsigned char th[32])
{
	if (!r->my_hello[0] || !r->have_peer)
		fail_msg("an AUTH placeholder before both HELLO lines");
	lim_handshake__hash(th, r->my_hello, strlen(r->my_hello), r->peer_hello, strlen(r->peer_hello));
}

/* Expand the placeholders of a C: line into `out`. */
static void expand_client(replayer *r, const char *line, lim_sb *out)
{
	while (*line) {
		const char *end;
		if (*line != '<' || !(end = strchr(line, '>'))) {
			lim_sb__putc(out, *line++);
			continue;
		}
		char name[64], hex[129];
		size_t nl = (size_t)(end - line - 1);
		assert_true(nl < sizeof(name));
		memcpy(name, line + 1, nl);
		name[nl] = '\0';
		line = end + 1;
		if (!strcmp(name, "sig") || !strcmp(name, "bad-sig") || !strcmp(name, "proof") ||
		    !strcmp(name, "other-proof")) {
			unsigned char th[32], sig[64], proof[32];
			int bad = !strcmp(name, "bad-sig"), other = !strcmp(name, "other-proof");
			transcript_hash(r, th);
			lim_handshake__prove(sig, proof, bad ? 'S' : 'C', th, r->me.sk, other ? r->other : r->netkey);
			if (strstr(name, "sig")) {
				hex_of(hex, sig, 64);
			} else {
				hex_of(hex, proof, 32);
			}
			lim_sb__puts(out, hex);
		} else if (!strcmp(name, "peer-nonce")) {
			assert_true(r->have_peer);
			hex_of(hex, r->peer_nonce, 32);
			lim_sb__puts(out, hex);
		} else if (!strcmp(name, "peer-token")) {
			lim_sb__puts(out, r->cap.token);
		} else if (!strncmp(name, "filler ", 7)) {
			size_t k = strtoul(name + 7, NULL, 10);
			assert_int_equal(lim_sb__grow(out, k), 0);
			memset(out->ptr + out->len, 'x', k);
			out->len += k;
		} else {
			fail_msg("unknown placeholder <%s> in a C: line", name);
		}
	}
}

typedef struct {
	char **lines; /* "C: ...", "S: ..." */
	size_t n;
	char *serve_args[8];
	int nserve;
	int vectors;
	char digest[65];
	char *text;
} transcript;

static void load_transcript(transcript *t, const char *name)
{
	char rel[256], *save = NULL;
	memset(t, 0, sizeof(*t));
	snprintf(rel, sizeof(rel), "transcripts/%s", name);
	t->text = slurp_spec(rel, NULL);
	t->lines = calloc(256, sizeof(char *));
	for (char *l = strtok_r(t->text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		if (l[0] == '#' || l[0] == '\0')
			continue;
		if (strncmp(l, "! ", 2) == 0) {
			char *arg, *s2 = NULL;
			if (strncmp(l, "! serve ", 8) == 0) {
				for (arg = strtok_r(l + 8, " ", &s2); arg; arg = strtok_r(NULL, " ", &s2)) {
					assert_true(t->nserve < 8);
					t->serve_args[t->nserve++] = arg;
				}
			} else if (strcmp(l, "! vectors") == 0) {
				t->vectors = 1;
			} else if (strncmp(l, "! digest ", 9) == 0 && strlen(l + 9) == 64) {
				memcpy(t->digest, l + 9, 65);
			} else {
				fail_msg("%s: unknown directive \"%s\"", name, l);
			}
			continue;
		}
		if (strncmp(l, "C: ", 3) != 0 && strncmp(l, "S: ", 3) != 0)
			fail_msg("%s: a line that is neither C:, S:, ! nor #: \"%.80s\"", name, l);
		assert_true(t->n < 256);
		t->lines[t->n++] = l;
	}
}

/* "! vectors": the transcript's HELLO and AUTH lines are those of the
 * handshake vectors, byte for byte. */
static void check_against_vectors(transcript *t)
{
	int seen = 0;
	for (size_t i = 0; i < t->n; i++) {
		const char *l = t->lines[i], *key = NULL;
		int client = l[0] == 'C';
		if (!strncmp(l + 3, "HELLO ", 6))
			key = client ? "client_hello" : "server_hello";
		else if (!strncmp(l + 3, "AUTH ", 5))
			key = client ? "client_auth" : "server_auth";
		if (!key)
			continue;
		if (strcmp(l + 3, vec(key)) != 0)
			fail_msg("transcript line \"%.40s...\" is not %s of handshake.txt", l, key);
		seen++;
	}
	assert_int_equal(seen, 4);
}

static void replay(const char *name)
{
	transcript t;
	replayer r;
	server srv;
	conn c;
	char before[65], after[65];
	lim_sb out = LIM_SB_INIT;

	need_bin();
	assert_true(sodium_init() >= 0);
	load_transcript(&t, name);
	if (t.vectors)
		check_against_vectors(&t);
	memset(&r, 0, sizeof(r));
	vec_keypair(&r.me, "client");
	vec_bin(r.netkey, 32, "network_key");
	vec_bin(r.other, 32, "other_network_key");

	start_server(&srv, t.serve_args, t.nserve);
	digest(&srv, before);
	conn_open(&c, srv.port);
	for (size_t i = 0; i < t.n; i++) {
		const char *l = t.lines[i] + 3;
		if (t.lines[i][0] == 'C') {
			lim_sb__clear(&out);
			if (t.vectors && !strncmp(l, "AUTH ", 5))
				l = "AUTH <sig> <proof>"; /* per-connection on a live node */
			expand_client(&r, l, &out);
			if (out.len > 6 && !memcmp(out.ptr, "HELLO ", 6)) {
				assert_true(out.len < sizeof(r.my_hello));
				memcpy(r.my_hello, out.ptr, out.len);
				r.my_hello[out.len] = '\0';
			}
			lim_sb__putc(&out, '\n');
			conn_send(&c, out.ptr, out.len);
			continue;
		}
		char *got = NULL;
		size_t glen = 0;
		int more = conn_line(&c, &got, &glen);
		if (!strcmp(l, "<close>")) {
			if (more || got)
				fail_msg("%s: wanted the node to close, got \"%.300s\" (node log: %s/serve.log)", name,
				         got ? got : "", srv.dir);
			continue;
		}
		if (!more)
			fail_msg("%s: the node closed the connection; wanted \"%.200s\"%s%.200s (node log: %s/serve.log)",
			         name, l, got ? " (unterminated bytes: " : "", got ? got : "", srv.dir);
		if (t.vectors && !strncmp(l, "HELLO ", 6))
			l = "HELLO 1 <id> <nonce>";
		else if (t.vectors && !strncmp(l, "AUTH ", 5))
			l = "AUTH <sig> <proof>";
		if (!match(l, got, glen, &r.cap))
			fail_msg("%s: the node sent\n  \"%.400s\"\nwanted\n  \"%.400s\"\n(node log: %s/serve.log)", name, got,
			         l, srv.dir);
		if (!strncmp(got, "HELLO ", 6)) {
			lim_msg m;
			int perr;
			assert_int_equal(lim_msg__parse(&m, got, glen, &perr), 0);
			assert_true(glen < sizeof(r.peer_hello));
			memcpy(r.peer_hello, got, glen + 1);
			memcpy(r.peer_id, m.id, 32);
			memcpy(r.peer_nonce, m.nonce, 32);
			r.have_peer = 1;
		} else if (!strncmp(got, "AUTH ", 5)) {
			/* The node's own AUTH must verify for its id and our network. */
			lim_msg m;
			int perr;
			unsigned char th[32];
			assert_int_equal(lim_msg__parse(&m, got, glen, &perr), 0);
			transcript_hash(&r, th);
			assert_int_equal(lim_handshake__check_sig(m.sig, 'S', th, r.peer_id), 0);
			assert_int_equal(lim_handshake__check_proof(m.proof, 'S', th, r.netkey), 0);
		}
		free(got);
	}
	conn_close(&c);
	lim_sb__free(&out);

	digest(&srv, after);
	if (t.digest[0])
		assert_string_equal(after, t.digest);
	else
		assert_string_equal(after, before);
	expect_serves(&srv);
	stop_server(&srv);
	free(t.lines);
	free(t.text);
}

#define TRANSCRIPTS(X) \
	X(sync) X(version) X(before_hello) X(malformed_before_auth) X(malformed_hello) X(echoed_nonce) X(wrong_network) \
	X(bad_signature) X(replayed_auth) X(forbidden) X(oversize) X(unknown_message) X(second_hello) \
	X(ack_unsent) X(batch_count) X(bad_change) X(forged_in_run) X(not_a_change) X(gap) \
	X(keepalive_status) X(status_only) X(idle_timeout) X(peer_error)

/* test_protocol__sync replays transcripts/sync.txt, and so on ('_' -> '-'). */
#define DEFINE(name) \
	static void test_protocol__##name(void **state) \
	{ \
		char file[64]; \
		(void)state; \
		snprintf(file, sizeof(file), "%s.txt", #name); \
		for (char *p = file; *p; p++) \
			if (*p == '_') \
				*p = '-'; \
		replay(file); \
	}
TRANSCRIPTS(DEFINE)
#undef DEFINE

/* No transcript file is left out of the list above. */
static void test_protocol__every_transcript_replayed(void **state)
{
	static const char *const known[] = {
#define NAME(name) #name,
		TRANSCRIPTS(NAME)
#undef NAME
	};
	char *dir = spec_path("transcripts");
	DIR *d = opendir(dir);
	struct dirent *e;
	int count = 0;
	(void)state;
	assert_non_null(d);
	while ((e = readdir(d))) {
		char base[256];
		size_t n = strlen(e->d_name);
		int found = 0;
		if (n < 5 || strcmp(e->d_name + n - 4, ".txt") != 0)
			continue;
		snprintf(base, sizeof(base), "%.*s", (int)(n - 4), e->d_name);
		for (char *p = base; *p; p++)
			if (*p == '-')
				*p = '_';
		for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
			found |= strcmp(known[i], base) == 0;
		if (!found)
			fail_msg("transcripts/%s is not replayed by test_protocol.c", e->d_name);
		count++;
	}
	closedir(d);
	free(dir);
	assert_int_equal(count, (int)(sizeof(known) / sizeof(known[0])));
}

/* ------------------------------------------------------------ 4. connection cap */

static void test_protocol__connection_cap(void **state)
{
	char *extra[] = { "--max-connections", "1" };
	server srv;
	conn a, b;
	char *got;
	size_t glen;
	captures cap;
	(void)state;
	need_bin();
	start_server(&srv, extra, 2);
	conn_open(&a, srv.port);
	assert_int_equal(conn_line(&a, &got, &glen), 1); /* accepted: it says HELLO */
	assert_true(match("HELLO 1 <id> <nonce>", got, glen, &cap));
	free(got);
	/* The second connection gets ERR 503 as its first line, no HELLO. */
	conn_open(&b, srv.port);
	assert_int_equal(conn_line(&b, &got, &glen), 1);
	assert_string_equal(got, "ERR 503 this node has no room for another connection");
	free(got);
	assert_int_equal(conn_line(&b, &got, &glen), 0);
	assert_null(got);
	conn_close(&b);
	conn_close(&a);
	/* Once the first is gone there is room again (the node notices the close
	 * on its next loop turn). */
	for (int i = 0;; i++) {
		conn_open(&b, srv.port);
		assert_int_equal(conn_line(&b, &got, &glen), 1);
		int hello = strncmp(got, "HELLO ", 6) == 0;
		free(got);
		conn_close(&b);
		if (hello)
			break;
		assert_true(i < 50);
		usleep(20000);
	}
	stop_server(&srv);
}

/* ------------------------------------------------------------ 5. the spec's examples */

/*
 * Every example session of PROTOCOL.md's Appendix C is the indented block
 * under a heading "### C.n ... (`transcripts/NAME.txt`)"; the block, without
 * its four-space indent, must be byte for byte the file that the replay
 * tests run, so the document never shows a session the node does not hold
 * to. A heading without a file, or a file without a block, fails too.
 */
static void test_protocol__appendix_c_matches_transcripts(void **state)
{
	char *spec = slurp_spec("PROTOCOL.md", NULL);
	char *p = strstr(spec, "\n## Appendix C");
	int blocks = 0;
	(void)state;
	if (!p)
		fail_msg("PROTOCOL.md has no Appendix C");
	p++;
	p = strchr(p, '\n'); /* past the appendix heading */
	while (p && *p) {
		char name[128], *line = p + 1, *nl = strchr(line, '\n');
		const char *ref, *end = NULL;
		lim_sb block = LIM_SB_INIT;
		size_t flen;
		char *file;
		if (!nl)
			break;
		p = nl;
		if (strncmp(line, "## ", 3) == 0)
			break; /* the next appendix */
		if (strncmp(line, "### ", 4) != 0)
			continue;
		ref = strstr(line, "(`transcripts/");
		if (ref)
			end = strstr(ref, "`)");
		if (!ref || ref > nl || !end || end > nl)
			fail_msg("Appendix C heading without a transcript file: %.*s", (int)(nl - line), line);
		ref += strlen("(`transcripts/");
		snprintf(name, sizeof(name), "transcripts/%.*s", (int)(end - ref), ref);
		/* One blank line, then the indented block up to the first line
		 * that is not indented (transcripts hold no blank lines). */
		line = nl + 1;
		if (*line != '\n')
			fail_msg("%s: a blank line must follow the heading", name);
		line++;
		while (strncmp(line, "    ", 4) == 0) {
			nl = strchr(line, '\n');
			assert_non_null(nl);
			lim_sb__put(&block, line + 4, (size_t)(nl - line - 4) + 1);
			line = nl + 1;
		}
		p = line - 1;
		assert_int_equal(lim_sb__check(&block), 0);
		if (block.len == 0)
			fail_msg("%s: no example block under its Appendix C heading", name);
		file = slurp_spec(name, &flen);
		if (flen != block.len || memcmp(file, block.ptr, flen) != 0) {
			size_t i = 0, at = 0, lineno = 1;
			while (i < flen && i < block.len && file[i] == block.ptr[i]) {
				if (file[i] == '\n')
					at = i + 1, lineno++;
				i++;
			}
			fail_msg("Appendix C differs from %s at line %zu:\n  file: %.120s\n  spec: %.120s", name, lineno,
			         file + at, block.ptr + at);
		}
		free(file);
		lim_sb__free(&block);
		blocks++;
	}
	free(spec);
	assert_true(blocks >= 8);
}

static int kill_leftover(void **state)
{
	(void)state;
	if (g_running > 0) {
		fprintf(stderr, "test_protocol: killing the node (pid %d) of a failed test\n", (int)g_running);
		kill(g_running, SIGKILL);
		waitpid(g_running, NULL, 0);
		g_running = 0;
	}
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_protocol__handshake_vectors),
		cmocka_unit_test(test_protocol__handshake_json_matches_txt),
		cmocka_unit_test(test_protocol__parser),
		cmocka_unit_test(test_protocol__print_parse_round_trip),
		cmocka_unit_test(test_protocol__appendix_c_matches_transcripts),
#define ENTRY(name) cmocka_unit_test_teardown(test_protocol__##name, kill_leftover),
		TRANSCRIPTS(ENTRY)
#undef ENTRY
		cmocka_unit_test(test_protocol__every_transcript_replayed),
		cmocka_unit_test_teardown(test_protocol__connection_cap, kill_leftover),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
