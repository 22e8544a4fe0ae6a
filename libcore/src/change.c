/*
 * See change.h. The parser walks the line once, token by token, checking
 * every field against its canonical form and every length against the
 * limits in lim.h before anything else looks at it. It allocates only the
 * op array, whose size is bounded by the op count it has already checked.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include "change.h"
#include "text.h"
#include "value.h"

static const char HASH_CONTEXT[] = "liblim change v1";
static const char SIG_CONTEXT[] = "liblim signature v1";
static const char LINK_CONTEXT[] = "liblim link v1";

void lim_change__hash(unsigned char out[LIM_HASH_BYTES], const char *body, size_t len)
{
	crypto_generichash_state st;
	crypto_generichash_init(&st, NULL, 0, LIM_HASH_BYTES);
	crypto_generichash_update(&st, (const unsigned char *)HASH_CONTEXT, sizeof(HASH_CONTEXT));
	crypto_generichash_update(&st, (const unsigned char *)body, len);
	crypto_generichash_final(&st, out, LIM_HASH_BYTES);
}

void lim_change__link(unsigned char out[LIM_HASH_BYTES], const unsigned char hash[LIM_HASH_BYTES],
                      const unsigned char sig[LIM_SIG_BYTES])
{
	crypto_generichash_state st;
	crypto_generichash_init(&st, NULL, 0, LIM_HASH_BYTES);
	crypto_generichash_update(&st, (const unsigned char *)LINK_CONTEXT, sizeof(LINK_CONTEXT));
	crypto_generichash_update(&st, hash, LIM_HASH_BYTES);
	crypto_generichash_update(&st, sig, LIM_SIG_BYTES);
	crypto_generichash_final(&st, out, LIM_HASH_BYTES);
}

static void sig_message(unsigned char msg[sizeof(SIG_CONTEXT) + LIM_HASH_BYTES],
                        const unsigned char hash[LIM_HASH_BYTES])
{
	memcpy(msg, SIG_CONTEXT, sizeof(SIG_CONTEXT));
	memcpy(msg + sizeof(SIG_CONTEXT), hash, LIM_HASH_BYTES);
}

int lim_change__verify(const lim_change *c, const unsigned char hash[LIM_HASH_BYTES])
{
#ifdef LIM_FUZZ_NO_VERIFY
	/* Only fuzz_session_nv's copy of the sources (fuzz/CMakeLists.txt) has
	 * this: a mutated change must get past the signature to reach apply. */
	(void)c;
	(void)hash;
	return 0;
#endif
	unsigned char msg[sizeof(SIG_CONTEXT) + LIM_HASH_BYTES];
	sig_message(msg, hash);
	return crypto_sign_verify_detached(c->sig, msg, sizeof(msg), c->author) == 0 ? 0 : -1;
}

/* ------------------------------------------------------------ names */

static int check_name(const char *what, const char *p, size_t n, size_t max)
{
	if (n == 0)
		return lim__error(LIM_EINVALID, "%s is empty", what);
	if (n > max)
		return lim__error(LIM_EINVALID, "%s is %zu bytes; the limit is %zu", what, n, max);
	if (memchr(p, '\0', n))
		return lim__error(LIM_EINVALID, "%s contains a NUL byte", what);
	if (!lim_utf8__valid(p, n))
		return lim__error(LIM_EINVALID, "%s is not valid UTF-8", what);
	return 0;
}

int lim_name__check_coll(const char *p, size_t n)
{
	return check_name("collection name", p, n, LIM_MAX_COLLECTION_BYTES);
}

int lim_name__check_doc(const char *p, size_t n)
{
	return check_name("document key", p, n, LIM_MAX_DOC_BYTES);
}

int lim_name__check_path(const char *p, size_t n)
{
	int rc = check_name("field path", p, n, LIM_MAX_PATH_BYTES);
	size_t depth = 1, seg = 0;
	if (rc < 0)
		return rc;
	for (size_t i = 0; i <= n; i++) {
		if (i == n || p[i] == '.') {
			if (seg == 0)
				return lim__error(LIM_EINVALID, "field path \"%.*s\" has an empty segment", (int)n, p);
			seg = 0;
			if (i < n)
				depth++;
		} else {
			seg++;
		}
	}
	if (depth > LIM_MAX_PATH_DEPTH)
		return lim__error(LIM_EINVALID, "field path is %zu levels deep; the limit is %d", depth, LIM_MAX_PATH_DEPTH);
	return 0;
}

/* ------------------------------------------------------------ stamps and tags */

static void put_be(unsigned char *out, uint64_t v, int bytes)
{
	for (int i = bytes - 1; i >= 0; i--) {
		out[i] = (unsigned char)v;
		v >>= 8;
	}
}

void lim_stamp__make(unsigned char out[LIM_STAMP_BYTES], uint64_t hlc,
                     const unsigned char author[LIM_ID_BYTES], uint64_t seq, uint32_t opidx)
{
	put_be(out, hlc, 8);
	memcpy(out + 8, author, LIM_ID_BYTES);
	put_be(out + 40, seq, 8);
	put_be(out + 48, opidx, 4);
}

void lim_tag__make(unsigned char out[LIM_TAG_BYTES], const unsigned char author[LIM_ID_BYTES],
                   uint64_t seq, uint32_t opidx)
{
	memcpy(out, author, LIM_ID_BYTES);
	put_be(out + 32, seq, 8);
	put_be(out + 40, opidx, 4);
}

void lim_cb__tag(lim_sb *sb, const unsigned char tag[LIM_TAG_BYTES])
{
	char hex[2 * LIM_ID_BYTES + 1];
	uint64_t seq = 0;
	uint32_t opidx = 0;
	for (int i = 0; i < 8; i++)
		seq = seq << 8 | tag[32 + i];
	for (int i = 0; i < 4; i++)
		opidx = opidx << 8 | tag[40 + i];
	lim_hex__encode(hex, tag, LIM_ID_BYTES);
	lim_sb__printf(sb, "%s.%llu.%u", hex, (unsigned long long)seq, opidx);
}

int lim_tag__parse(unsigned char out[LIM_TAG_BYTES], const char *p, size_t n)
{
	const char *d1, *d2;
	uint64_t seq, opidx;
	if (n < 2 * LIM_ID_BYTES + 4 || p[2 * LIM_ID_BYTES] != '.')
		return -1;
	if (lim_hex__decode(out, LIM_ID_BYTES, p, 2 * LIM_ID_BYTES) < 0)
		return -1;
	d1 = p + 2 * LIM_ID_BYTES + 1;
	d2 = memchr(d1, '.', (size_t)(p + n - d1));
	if (!d2)
		return -1;
	if (lim_dec__parse_u64(d1, (size_t)(d2 - d1), &seq) < 0 || seq == 0 || seq > INT64_MAX)
		return -1;
	if (lim_dec__parse_u64(d2 + 1, (size_t)(p + n - d2 - 1), &opidx) < 0 || opidx >= LIM_MAX_OPS_PER_CHANGE)
		return -1;
	put_be(out + 32, seq, 8);
	put_be(out + 40, opidx, 4);
	return 0;
}

int lim_tags__next(lim_span *rest, lim_span *tag)
{
	const char *comma;
	if (rest->n == 0)
		return 0;
	comma = memchr(rest->p, ',', rest->n);
	tag->p = rest->p;
	tag->n = comma ? (size_t)(comma - rest->p) : rest->n;
	rest->p += tag->n + (comma ? 1 : 0);
	rest->n -= tag->n + (comma ? 1 : 0);
	if (comma && rest->n == 0)
		tag->n = (size_t)-1; /* trailing comma: reported as malformed by the caller */
	return 1;
}

/* ------------------------------------------------------------ parser */

typedef struct {
	const char *p;
	const char *end;
} cursor;

/* Next space-separated token; tokens are never empty. */
static int next_token(cursor *cur, lim_span *tok)
{
	const char *sp;
	if (cur->p >= cur->end)
		return -1;
	sp = memchr(cur->p, ' ', (size_t)(cur->end - cur->p));
	tok->p = cur->p;
	tok->n = sp ? (size_t)(sp - cur->p) : (size_t)(cur->end - cur->p);
	if (tok->n == 0)
		return -1;
	cur->p += tok->n + (sp ? 1 : 0);
	if (sp && cur->p == cur->end)
		return -1; /* trailing space */
	return 0;
}

static int malformed(const char *what)
{
	return lim__error(LIM_EMALFORMED, "malformed change: %s", what);
}

static int check_escaped_name(const lim_span *tok, int (*check)(const char *, size_t), lim_sb *scratch)
{
	lim_sb__clear(scratch);
	if (lim_text__unescape(scratch, tok->p, tok->n) < 0)
		return malformed("a name is not in canonical escaped form");
	if (lim_sb__grow(scratch, 0) < 0)
		return lim__error(LIM_ENOMEM, "out of memory");
	if (check(scratch->ptr, scratch->len) < 0)
		return lim__error_prefix(LIM_EMALFORMED, "malformed change");
	return 0;
}

static int parse_tags(const lim_span *tok)
{
	lim_span rest = *tok, tag;
	unsigned char prev[LIM_TAG_BYTES], cur[LIM_TAG_BYTES];
	int first = 1;
	while (lim_tags__next(&rest, &tag)) {
		if (tag.n == (size_t)-1 || lim_tag__parse(cur, tag.p, tag.n) < 0)
			return malformed("a set tag is not <author hex>.<seq>.<op index>");
		if (!first && memcmp(prev, cur, LIM_TAG_BYTES) >= 0)
			return malformed("set tags are not in strictly increasing order");
		memcpy(prev, cur, LIM_TAG_BYTES);
		first = 0;
	}
	return first ? malformed("a set remove names no tags") : 0;
}

static int parse_op(cursor *cur, lim_op *op, lim_sb *scratch)
{
	lim_span kind;
	lim_value v;
	int rc;
	memset(op, 0, sizeof(*op));
	if (next_token(cur, &kind) < 0 || kind.n != 1)
		return malformed("expected an op letter");
	op->kind = (lim_op_kind)kind.p[0];
	switch (op->kind) {
	case LIM_OP_SET: case LIM_OP_DEL: case LIM_OP_DELDOC:
	case LIM_OP_INCR: case LIM_OP_SADD: case LIM_OP_SREM:
		break;
	default:
		return malformed("unknown op letter");
	}
	if (next_token(cur, &op->coll) < 0 || next_token(cur, &op->doc) < 0)
		return malformed("op is missing its collection or document");
	if ((rc = check_escaped_name(&op->coll, lim_name__check_coll, scratch)) < 0)
		return rc;
	if ((rc = check_escaped_name(&op->doc, lim_name__check_doc, scratch)) < 0)
		return rc;
	if (op->kind == LIM_OP_DELDOC)
		return 0;
	if (next_token(cur, &op->path) < 0)
		return malformed("op is missing its field path");
	if ((rc = check_escaped_name(&op->path, lim_name__check_path, scratch)) < 0)
		return rc;
	switch (op->kind) {
	case LIM_OP_SET: case LIM_OP_SADD: case LIM_OP_SREM:
		if (next_token(cur, &op->value) < 0)
			return malformed("op is missing its value");
		if (lim_value__decode(op->value.p, op->value.n, &v, scratch) < 0)
			return malformed("a value is not in canonical form");
		if (op->kind == LIM_OP_SREM) {
			if (next_token(cur, &op->tags) < 0)
				return malformed("set remove is missing its tags");
			return parse_tags(&op->tags);
		}
		return 0;
	case LIM_OP_INCR: {
		lim_span d;
		if (next_token(cur, &d) < 0 || lim_dec__parse_i64(d.p, d.n, &op->delta) < 0)
			return malformed("counter delta is not a canonical 64-bit integer");
		return 0;
	}
	default:
		return 0;
	}
}

int lim_op__parse(lim_op *op, const char *p, size_t n)
{
	cursor cur = { p, p + n };
	lim_sb scratch = LIM_SB_INIT;
	int rc = parse_op(&cur, op, &scratch);
	lim_sb__free(&scratch);
	if (rc == 0 && cur.p != cur.end)
		rc = malformed("trailing bytes after an op");
	return rc;
}

void lim_change__dispose(lim_change *c)
{
	free(c->ops);
	c->ops = NULL;
	c->nops = 0;
}

int lim_change__peek(const char *bytes, size_t len, unsigned char author[LIM_ID_BYTES], uint64_t *seq)
{
	const char *p = bytes + 5, *sp;
	if (len < 5 + 2 * LIM_ID_BYTES + 2 || memcmp(bytes, "lim1 ", 5) != 0 ||
	    lim_hex__decode(author, LIM_ID_BYTES, p, 2 * LIM_ID_BYTES) < 0)
		return -1;
	p += 2 * LIM_ID_BYTES + 1;
	sp = memchr(p, ' ', (size_t)(bytes + len - p));
	return sp && lim_dec__parse_u64(p, (size_t)(sp - p), seq) == 0 ? 0 : -1;
}

int lim_change__parse(lim_change *c, const char *bytes, size_t len)
{
	cursor cur;
	lim_span tok;
	lim_sb scratch = LIM_SB_INIT;
	const char *sp;
	uint64_t nops;
	int rc = 0;

	memset(c, 0, sizeof(*c));
	if (len > LIM_MAX_CHANGE_BYTES)
		return lim__error(LIM_EMALFORMED, "change is %zu bytes; the limit is %d", len, LIM_MAX_CHANGE_BYTES);
	if (len == 0 || memchr(bytes, '\n', len) || memchr(bytes, '\0', len))
		return malformed("empty, or contains a line feed or NUL byte");
	if (!lim_utf8__valid(bytes, len))
		return malformed("not valid UTF-8");
	c->bytes = bytes;
	c->len = len;
	/* The signature is the last token; the body is everything before it. */
	sp = bytes + len;
	while (sp > bytes && sp[-1] != ' ')
		sp--;
	if (sp == bytes)
		return malformed("no signature");
	c->body_len = (size_t)(sp - 1 - bytes);
	if (lim_hex__decode(c->sig, LIM_SIG_BYTES, sp, (size_t)(bytes + len - sp)) < 0)
		return malformed("signature is not 128 lowercase hex digits");

	cur.p = bytes;
	cur.end = bytes + c->body_len;
	if (next_token(&cur, &tok) < 0 || tok.n != 4 || memcmp(tok.p, "lim1", 4) != 0)
		return malformed("does not start with the format tag lim1");
	if (next_token(&cur, &tok) < 0 || lim_hex__decode(c->author, LIM_ID_BYTES, tok.p, tok.n) < 0)
		return malformed("author is not 64 lowercase hex digits");
	if (next_token(&cur, &tok) < 0 || lim_dec__parse_u64(tok.p, tok.n, &c->seq) < 0 ||
	    c->seq == 0 || c->seq > INT64_MAX)
		return malformed("seq is not a canonical integer from 1 to 2^63-1");
	if (next_token(&cur, &tok) < 0 || tok.n != 16)
		return malformed("hlc is not 16 lowercase hex digits");
	{
		unsigned char h[8];
		if (lim_hex__decode(h, 8, tok.p, tok.n) < 0)
			return malformed("hlc is not 16 lowercase hex digits");
		for (int i = 0; i < 8; i++)
			c->hlc = c->hlc << 8 | h[i];
		if (c->hlc == 0)
			return malformed("hlc is zero");
	}
	if (next_token(&cur, &tok) < 0 || lim_hex__decode(c->prev, LIM_HASH_BYTES, tok.p, tok.n) < 0)
		return malformed("prev is not 64 lowercase hex digits");
	if (c->seq == 1) {
		static const unsigned char zero[LIM_HASH_BYTES];
		if (memcmp(c->prev, zero, LIM_HASH_BYTES) != 0)
			return malformed("the first change of an author must have an all-zero prev");
	}
	if (next_token(&cur, &tok) < 0 || lim_dec__parse_u64(tok.p, tok.n, &nops) < 0 ||
	    nops == 0 || nops > LIM_MAX_OPS_PER_CHANGE)
		return malformed("op count is not a canonical integer from 1 to 10000");
	c->ops = calloc((size_t)nops, sizeof(lim_op));
	if (!c->ops)
		return lim__error(LIM_ENOMEM, "out of memory");
	c->nops = (size_t)nops;
	for (size_t i = 0; i < c->nops && rc == 0; i++)
		rc = parse_op(&cur, &c->ops[i], &scratch);
	if (rc == 0 && cur.p != cur.end)
		rc = malformed("more ops than the op count says");
	lim_sb__free(&scratch);
	if (rc < 0)
		lim_change__dispose(c);
	return rc;
}

/* ------------------------------------------------------------ builder */

void lim_cb__name(lim_change_builder *b, const char *s)
{
	lim_sb__putc(&b->ops, ' ');
	lim_text__escape(&b->ops, s, strlen(s));
}

void lim_cb__begin_op(lim_change_builder *b, lim_op_kind kind, const char *coll, const char *doc)
{
	lim_sb__putc(&b->ops, ' ');
	lim_sb__putc(&b->ops, (char)kind);
	lim_cb__name(b, coll);
	lim_cb__name(b, doc);
	b->nops++;
}

int lim_change__seal(lim_sb *out, unsigned char hash_out[LIM_HASH_BYTES],
                     const lim_change_builder *b, const unsigned char author[LIM_ID_BYTES],
                     const unsigned char secret[LIM_SECRET_KEY_BYTES], uint64_t seq,
                     uint64_t hlc, const unsigned char prev[LIM_HASH_BYTES])
{
	char author_hex[2 * LIM_ID_BYTES + 1], prev_hex[2 * LIM_HASH_BYTES + 1];
	char sig_hex[2 * LIM_SIG_BYTES + 1];
	unsigned char msg[sizeof(SIG_CONTEXT) + LIM_HASH_BYTES], sig[LIM_SIG_BYTES];
	size_t body_len;

	if (b->nops > LIM_MAX_OPS_PER_CHANGE)
		return lim__error(LIM_EINVALID, "a transaction may hold at most %d ops", LIM_MAX_OPS_PER_CHANGE);
	lim_hex__encode(author_hex, author, LIM_ID_BYTES);
	lim_hex__encode(prev_hex, prev, LIM_HASH_BYTES);
	lim_sb__clear(out);
	lim_sb__printf(out, "lim1 %s %llu %016llx %s %zu", author_hex, (unsigned long long)seq,
	               (unsigned long long)hlc, prev_hex, b->nops);
	lim_sb__put(out, b->ops.ptr, b->ops.len);
	if (lim_sb__check(out) < 0)
		return LIM_ENOMEM;
	body_len = out->len;
	if (body_len + 1 + 2 * LIM_SIG_BYTES > LIM_MAX_CHANGE_BYTES)
		return lim__error(LIM_EINVALID, "the change would be %zu bytes; the limit is %d",
		                  body_len + 1 + 2 * LIM_SIG_BYTES, LIM_MAX_CHANGE_BYTES);
	lim_change__hash(hash_out, out->ptr, body_len);
	sig_message(msg, hash_out);
	crypto_sign_detached(sig, NULL, msg, sizeof(msg), secret);
	lim_hex__encode(sig_hex, sig, LIM_SIG_BYTES);
	lim_sb__putc(out, ' ');
	lim_sb__put(out, sig_hex, 2 * LIM_SIG_BYTES);
	return lim_sb__check(out);
}

void lim_change__sealed_link(unsigned char out[LIM_HASH_BYTES], const unsigned char hash[LIM_HASH_BYTES],
                             const lim_sb *sealed)
{
	unsigned char sig[LIM_SIG_BYTES];
	/* Read back from the line rather than returned by seal, so seal's many
	 * callers that only need the hash stay as they are; seal wrote the
	 * signature as the line's last 128 characters. */
	lim_hex__decode(sig, LIM_SIG_BYTES, sealed->ptr + sealed->len - 2 * LIM_SIG_BYTES, 2 * LIM_SIG_BYTES);
	lim_change__link(out, hash, sig);
}
