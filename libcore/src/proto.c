/*
 * See proto.h. The parser is strict in the same way as the change parser:
 * single spaces between tokens, no trailing space, lowercase hex, canonical
 * decimals, and a size limit on every token, so a peer's line either is one
 * well-defined message or earns an ERR that names what was wrong.
 */
#include <sodium.h>
#include <stdio.h>
#include "proto.h"
#include "text.h"

static const char AUTH_SIG_CONTEXT[] = "liblim handshake signature v1";
static const char AUTH_MAC_CONTEXT[] = "liblim handshake network v1";
static const char TRANSCRIPT_CONTEXT[] = "liblim handshake v1";

static int bad(int *perr, int code, const char *what)
{
	*perr = code;
	return lim__error(LIM_EPROTOCOL, "%s", what);
}

/* Split off the next space-separated token; the rest follows. */
static int token(lim_span *rest, lim_span *tok)
{
	const char *sp;
	if (rest->n == 0)
		return -1;
	sp = memchr(rest->p, ' ', rest->n);
	tok->p = rest->p;
	tok->n = sp ? (size_t)(sp - rest->p) : rest->n;
	rest->p += tok->n + (sp ? 1 : 0);
	rest->n -= tok->n + (sp ? 1 : 0);
	if (tok->n == 0 || (sp && rest->n == 0))
		return -1;
	return 0;
}

static int is(const lim_span *t, const char *word)
{
	return t->n == strlen(word) && memcmp(t->p, word, t->n) == 0;
}

/* The keyword of each message type, in lim_msg_type order. */
static const char *const MSG_KEYWORD[] = {
	[LIM_MSG_HELLO] = "HELLO", [LIM_MSG_AUTH] = "AUTH", [LIM_MSG_VV] = "VV",         [LIM_MSG_CH] = "CH",
	[LIM_MSG_END] = "END",     [LIM_MSG_ACK] = "ACK",   [LIM_MSG_SYNCED] = "SYNCED", [LIM_MSG_PING] = "PING",
	[LIM_MSG_PONG] = "PONG",   [LIM_MSG_STATUS] = "STATUS", [LIM_MSG_STATE] = "STATE", [LIM_MSG_ERR] = "ERR",
	[LIM_MSG_BYE] = "BYE",
};

int lim_msg__parse(lim_msg *m, const char *line, size_t len, int *perr)
{
	lim_span rest = { line, len }, t;
	memset(m, 0, sizeof(*m));
	*perr = 0;
	if (len > LIM_MAX_LINE_BYTES)
		return bad(perr, LIM_PERR_TOO_LARGE, "line too long");
	if (memchr(line, '\r', len) || memchr(line, '\0', len))
		return bad(perr, LIM_PERR_MALFORMED, "a line may not contain CR or NUL");
	if (token(&rest, &t) < 0)
		return bad(perr, LIM_PERR_MALFORMED, "empty line or stray space");

	if (is(&t, "HELLO")) {
		lim_span v, id, nonce;
		m->type = LIM_MSG_HELLO;
		if (token(&rest, &v) < 0 || token(&rest, &id) < 0 || token(&rest, &nonce) < 0 || rest.n)
			return bad(perr, LIM_PERR_MALFORMED, "HELLO takes <version> <node id> <nonce>");
		if (lim_dec__parse_u64(v.p, v.n, &m->version) < 0)
			return bad(perr, LIM_PERR_MALFORMED, "HELLO version is not a number");
		if (lim_hex__decode(m->id, LIM_ID_BYTES, id.p, id.n) < 0 ||
		    lim_hex__decode(m->nonce, LIM_NONCE_BYTES, nonce.p, nonce.n) < 0)
			return bad(perr, LIM_PERR_MALFORMED, "HELLO id and nonce are 64 lowercase hex digits");
		return 0;
	}
	if (is(&t, "AUTH")) {
		lim_span sig, proof;
		m->type = LIM_MSG_AUTH;
		if (token(&rest, &sig) < 0 || token(&rest, &proof) < 0 || rest.n ||
		    lim_hex__decode(m->sig, 64, sig.p, sig.n) < 0 ||
		    lim_hex__decode(m->proof, LIM_HASH_BYTES, proof.p, proof.n) < 0)
			return bad(perr, LIM_PERR_MALFORMED, "AUTH takes <128 hex signature> <64 hex proof>");
		return 0;
	}
	if (is(&t, "VV")) {
		lim_span probe = rest;
		unsigned char a[LIM_ID_BYTES];
		uint64_t seq;
		size_t n = 0;
		int r;
		m->type = LIM_MSG_VV;
		m->arg = rest;
		while ((r = lim_vv__next(&probe, a, &seq)) == 1)
			if (++n > LIM_MAX_VV_AUTHORS)
				return bad(perr, LIM_PERR_TOO_LARGE, "VV names too many authors");
		if (r < 0)
			return bad(perr, LIM_PERR_MALFORMED, "VV entries are <64 hex author>:<seq> with seq >= 1");
		return 0;
	}
	if (is(&t, "CH")) {
		m->type = LIM_MSG_CH;
		if (rest.n == 0)
			return bad(perr, LIM_PERR_MALFORMED, "CH carries a change");
		m->arg = rest;
		return 0;
	}
	if (is(&t, "END") || is(&t, "ACK")) {
		lim_span n;
		m->type = is(&t, "END") ? LIM_MSG_END : LIM_MSG_ACK;
		if (token(&rest, &n) < 0 || rest.n || lim_dec__parse_u64(n.p, n.n, &m->count) < 0)
			return bad(perr, LIM_PERR_MALFORMED, "END and ACK take a count");
		return 0;
	}
	if (is(&t, "PING") || is(&t, "PONG")) {
		m->type = is(&t, "PING") ? LIM_MSG_PING : LIM_MSG_PONG;
		if (token(&rest, &m->arg) < 0 || rest.n || m->arg.n > LIM_MAX_TOKEN_BYTES)
			return bad(perr, LIM_PERR_MALFORMED, "PING and PONG take one token of at most 64 bytes");
		return 0;
	}
	if (is(&t, "ERR")) {
		lim_span code;
		m->type = LIM_MSG_ERR;
		if (token(&rest, &code) < 0 || lim_dec__parse_u64(code.p, code.n, &m->count) < 0)
			return bad(perr, LIM_PERR_MALFORMED, "ERR takes a code and a text");
		m->arg = rest;
		return 0;
	}
	if (is(&t, "STATE")) {
		m->type = LIM_MSG_STATE;
		m->arg = rest;
		return 0;
	}
	if (rest.n == 0 && is(&t, "SYNCED")) {
		m->type = LIM_MSG_SYNCED;
		return 0;
	}
	if (rest.n == 0 && is(&t, "STATUS")) {
		m->type = LIM_MSG_STATUS;
		return 0;
	}
	if (rest.n == 0 && is(&t, "BYE")) {
		m->type = LIM_MSG_BYE;
		return 0;
	}
	return bad(perr, LIM_PERR_MALFORMED, "unknown message");
}

int lim_msg__keyword(const char *line, size_t len, lim_msg_type *type)
{
	const char *sp = memchr(line, ' ', len);
	lim_span k = { line, sp ? (size_t)(sp - line) : len };
	for (size_t t = 0; t < sizeof(MSG_KEYWORD) / sizeof(MSG_KEYWORD[0]); t++)
		if (is(&k, MSG_KEYWORD[t])) {
			*type = (lim_msg_type)t;
			return 0;
		}
	return -1;
}

int lim_vv__next(lim_span *rest, unsigned char author[LIM_ID_BYTES], uint64_t *seq)
{
	lim_span t;
	if (rest->n == 0)
		return 0;
	if (token(rest, &t) < 0 || t.n < 2 * LIM_ID_BYTES + 2 || t.p[2 * LIM_ID_BYTES] != ':')
		return -1;
	if (lim_hex__decode(author, LIM_ID_BYTES, t.p, 2 * LIM_ID_BYTES) < 0 ||
	    lim_dec__parse_u64(t.p + 2 * LIM_ID_BYTES + 1, t.n - 2 * LIM_ID_BYTES - 1, seq) < 0 ||
	    *seq == 0 || *seq > INT64_MAX)
		return -1;
	return 1;
}

static void put_hex(lim_sb *out, const unsigned char *bin, size_t n)
{
	char hex[2 * 64 + 1]; /* the longest binary field is a signature */
	lim_hex__encode(hex, bin, n);
	lim_sb__putc(out, ' ');
	lim_sb__put(out, hex, 2 * n);
}

/* ERR text is one line of printable ASCII: anything else becomes '?'. */
static void put_err_text(lim_sb *out, const char *p, size_t n)
{
	lim_sb__putc(out, ' ');
	for (size_t i = 0; i < n; i++)
		lim_sb__putc(out, (p[i] >= 0x20 && p[i] < 0x7f) ? p[i] : '?');
}

void lim_msg__print(lim_sb *out, const lim_msg *m)
{
	lim_sb__puts(out, MSG_KEYWORD[m->type]);
	switch (m->type) {
	case LIM_MSG_HELLO:
		lim_sb__printf(out, " %llu", (unsigned long long)m->version);
		put_hex(out, m->id, LIM_ID_BYTES);
		put_hex(out, m->nonce, LIM_NONCE_BYTES);
		break;
	case LIM_MSG_AUTH:
		put_hex(out, m->sig, 64);
		put_hex(out, m->proof, LIM_HASH_BYTES);
		break;
	case LIM_MSG_END:
	case LIM_MSG_ACK:
		lim_sb__printf(out, " %llu", (unsigned long long)m->count);
		break;
	case LIM_MSG_ERR:
		lim_sb__printf(out, " %llu", (unsigned long long)m->count);
		if (m->arg.n)
			put_err_text(out, m->arg.p, m->arg.n);
		break;
	case LIM_MSG_VV:    /* entries, or none: the bare line "VV" */
	case LIM_MSG_STATE: /* JSON, or nothing */
		if (!m->arg.n)
			break;
		/* fall through */
	case LIM_MSG_CH:    /* the change */
	case LIM_MSG_PING:
	case LIM_MSG_PONG:  /* the token */
		lim_sb__putc(out, ' ');
		lim_sb__put(out, m->arg.p, m->arg.n);
		break;
	case LIM_MSG_SYNCED:
	case LIM_MSG_STATUS:
	case LIM_MSG_BYE:
		break;
	}
	lim_sb__putc(out, '\n');
}

void lim_msg__print_span(lim_sb *out, lim_msg_type type, const char *arg, size_t n)
{
	lim_msg m;
	memset(&m, 0, sizeof(m));
	m.type = type;
	m.arg.p = arg;
	m.arg.n = n;
	lim_msg__print(out, &m);
}

void lim_msg__print_count(lim_sb *out, lim_msg_type type, uint64_t count)
{
	lim_msg m;
	memset(&m, 0, sizeof(m));
	m.type = type;
	m.count = count;
	lim_msg__print(out, &m);
}

void lim_msg__hello(lim_sb *out, const unsigned char id[LIM_ID_BYTES], const unsigned char nonce[LIM_NONCE_BYTES])
{
	lim_msg m;
	memset(&m, 0, sizeof(m));
	m.type = LIM_MSG_HELLO;
	m.version = LIM_PROTOCOL_VERSION;
	memcpy(m.id, id, LIM_ID_BYTES);
	memcpy(m.nonce, nonce, LIM_NONCE_BYTES);
	lim_msg__print(out, &m);
}

void lim_msg__auth(lim_sb *out, const unsigned char sig[64], const unsigned char proof[LIM_HASH_BYTES])
{
	lim_msg m;
	memset(&m, 0, sizeof(m));
	m.type = LIM_MSG_AUTH;
	memcpy(m.sig, sig, 64);
	memcpy(m.proof, proof, LIM_HASH_BYTES);
	lim_msg__print(out, &m);
}

void lim_msg__err(lim_sb *out, int code, const char *text)
{
	lim_msg m;
	memset(&m, 0, sizeof(m));
	m.type = LIM_MSG_ERR;
	m.count = (uint64_t)code;
	/* liblim always says why: an empty text becomes "error". */
	m.arg.p = *text ? text : "error";
	m.arg.n = strlen(m.arg.p);
	lim_msg__print(out, &m);
}

void lim_handshake__hash(unsigned char out[LIM_HASH_BYTES], const char *client_hello, size_t cn,
                         const char *server_hello, size_t sn)
{
	crypto_generichash_state h;
	crypto_generichash_init(&h, NULL, 0, LIM_HASH_BYTES);
	crypto_generichash_update(&h, (const unsigned char *)TRANSCRIPT_CONTEXT, sizeof(TRANSCRIPT_CONTEXT));
	crypto_generichash_update(&h, (const unsigned char *)client_hello, cn);
	crypto_generichash_update(&h, (const unsigned char *)"\n", 1);
	crypto_generichash_update(&h, (const unsigned char *)server_hello, sn);
	crypto_generichash_update(&h, (const unsigned char *)"\n", 1);
	crypto_generichash_final(&h, out, LIM_HASH_BYTES);
}

static size_t handshake_message(unsigned char *msg, char role, const unsigned char transcript[LIM_HASH_BYTES])
{
	memcpy(msg, AUTH_SIG_CONTEXT, sizeof(AUTH_SIG_CONTEXT));
	msg[sizeof(AUTH_SIG_CONTEXT)] = (unsigned char)role;
	memcpy(msg + sizeof(AUTH_SIG_CONTEXT) + 1, transcript, LIM_HASH_BYTES);
	return sizeof(AUTH_SIG_CONTEXT) + 1 + LIM_HASH_BYTES;
}

static void network_proof(unsigned char out[LIM_HASH_BYTES], char role, const unsigned char transcript[LIM_HASH_BYTES],
                          const unsigned char network_key[LIM_NETWORK_KEY_BYTES])
{
	crypto_generichash_state h;
	unsigned char r = (unsigned char)role;
	crypto_generichash_init(&h, network_key, LIM_NETWORK_KEY_BYTES, LIM_HASH_BYTES);
	crypto_generichash_update(&h, (const unsigned char *)AUTH_MAC_CONTEXT, sizeof(AUTH_MAC_CONTEXT));
	crypto_generichash_update(&h, &r, 1);
	crypto_generichash_update(&h, transcript, LIM_HASH_BYTES);
	crypto_generichash_final(&h, out, LIM_HASH_BYTES);
}

void lim_handshake__prove(unsigned char sig[64], unsigned char proof[LIM_HASH_BYTES], char role,
                          const unsigned char transcript[LIM_HASH_BYTES],
                          const unsigned char secret[LIM_SECRET_KEY_BYTES],
                          const unsigned char network_key[LIM_NETWORK_KEY_BYTES])
{
	unsigned char msg[sizeof(AUTH_SIG_CONTEXT) + 1 + LIM_HASH_BYTES];
	crypto_sign_detached(sig, NULL, msg, handshake_message(msg, role, transcript), secret);
	network_proof(proof, role, transcript, network_key);
}

int lim_handshake__check_sig(const unsigned char sig[64], char role, const unsigned char transcript[LIM_HASH_BYTES],
                             const unsigned char peer_id[LIM_ID_BYTES])
{
	unsigned char msg[sizeof(AUTH_SIG_CONTEXT) + 1 + LIM_HASH_BYTES];
	return crypto_sign_verify_detached(sig, msg, handshake_message(msg, role, transcript), peer_id) == 0 ? 0 : -1;
}

int lim_handshake__check_proof(const unsigned char proof[LIM_HASH_BYTES], char role,
                               const unsigned char transcript[LIM_HASH_BYTES],
                               const unsigned char network_key[LIM_NETWORK_KEY_BYTES])
{
	unsigned char want[LIM_HASH_BYTES];
	network_proof(want, role, transcript, network_key);
	return sodium_memcmp(want, proof, LIM_HASH_BYTES) == 0 ? 0 : -1;
}
