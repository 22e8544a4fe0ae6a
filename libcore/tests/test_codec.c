/*
 * The change codec: changes sealed with lim_change__seal parse back with
 * every field intact and verify; every malformed form (each correctly
 * signed, so only the parser stands in the way) is refused with
 * LIM_EMALFORMED and a message; no single-byte corruption of a change is
 * accepted as authentic.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <sodium.h>
#include "change.h"
#include "text.h"
#include "value.h"

/* The signature context of protocol-spec/changes.md (with its NUL). */
static const char SIG_CONTEXT[] = "liblim signature v1";

typedef struct {
	unsigned char pk[crypto_sign_PUBLICKEYBYTES];
	unsigned char sk[crypto_sign_SECRETKEYBYTES];
	char hex[2 * LIM_ID_BYTES + 1];
} keypair;

static keypair K1, K2;
static const unsigned char ZERO[LIM_HASH_BYTES];
static char ZHEX[2 * LIM_HASH_BYTES + 1];
#define HLC_HEX "018bcfe568000000" /* 1700000000000 ms, counter 0 */
static const uint64_t HLC = 0x018bcfe568000000ull;

static void make_key(keypair *k)
{
	assert_int_equal(crypto_sign_keypair(k->pk, k->sk), 0);
	lim_hex__encode(k->hex, k->pk, LIM_ID_BYTES);
}

static int group_setup(void **state)
{
	(void)state;
	if (sodium_init() < 0)
		return -1;
	make_key(&K1);
	make_key(&K2);
	lim_hex__encode(ZHEX, ZERO, LIM_HASH_BYTES);
	return 0;
}

/* ------------------------------------------------------------ helpers */

typedef struct {
	char *p; /* exact-size heap copy: ASan catches any read past the end */
	size_t n;
} bytes;

static bytes dup_bytes(const char *p, size_t n)
{
	bytes b;
	b.p = malloc(n ? n : 1);
	assert_non_null(b.p);
	if (n)
		memcpy(b.p, p, n);
	b.n = n;
	return b;
}

/* body + " " + hex(Ed25519(SIG_CONTEXT || hash(body))), signed by k. */
static bytes sign_body(const char *body, size_t n, const keypair *k)
{
	unsigned char hash[LIM_HASH_BYTES], msg[sizeof(SIG_CONTEXT) + LIM_HASH_BYTES], sig[LIM_SIG_BYTES];
	char hex[2 * LIM_SIG_BYTES + 1];
	lim_sb sb = LIM_SB_INIT;
	lim_change__hash(hash, body, n);
	memcpy(msg, SIG_CONTEXT, sizeof(SIG_CONTEXT));
	memcpy(msg + sizeof(SIG_CONTEXT), hash, LIM_HASH_BYTES);
	assert_int_equal(crypto_sign_detached(sig, NULL, msg, sizeof(msg), k->sk), 0);
	lim_hex__encode(hex, sig, LIM_SIG_BYTES);
	lim_sb__put(&sb, body, n);
	lim_sb__putc(&sb, ' ');
	lim_sb__put(&sb, hex, 2 * LIM_SIG_BYTES);
	assert_int_equal(lim_sb__check(&sb), 0);
	bytes b = dup_bytes(sb.ptr, sb.len);
	lim_sb__free(&sb);
	return b;
}

static bytes vsigned(const char *fmt, va_list ap)
{
	lim_sb sb = LIM_SB_INIT;
	char small[1];
	va_list ap2;
	va_copy(ap2, ap);
	int n = vsnprintf(small, sizeof(small), fmt, ap2);
	va_end(ap2);
	assert_true(n >= 0);
	assert_int_equal(lim_sb__grow(&sb, (size_t)n), 0);
	vsnprintf(sb.ptr, (size_t)n + 1, fmt, ap);
	sb.len = (size_t)n;
	bytes b = sign_body(sb.ptr, sb.len, &K1);
	lim_sb__free(&sb);
	return b;
}

static void print_bytes(const char *what, const bytes *b)
{
	print_error("%s (%zu bytes): \"", what, b->n);
	for (size_t i = 0; i < b->n && i < 400; i++) {
		unsigned char c = (unsigned char)b->p[i];
		if (c >= 0x20 && c < 0x7F)
			print_error("%c", c);
		else
			print_error("\\x%02x", c);
	}
	print_error("%s\"\n", b->n > 400 ? "..." : "");
}

/* Parse must fail with LIM_EMALFORMED and a message; consumes b. */
static void expect_malformed_bytes(bytes b)
{
	lim_change c;
	lim__error_clear();
	int rc = lim_change__parse(&c, b.p, b.n);
	if (rc != LIM_EMALFORMED) {
		print_bytes("expected LIM_EMALFORMED, got a different result for", &b);
		print_error("rc = %d, message: %s\n", rc, lim_error_last());
	}
	assert_int_equal(rc, LIM_EMALFORMED);
	assert_int_equal(lim_error_last_code(), LIM_EMALFORMED);
	assert_true(lim_error_last()[0] != '\0');
	/* Nothing is left allocated for the caller. */
	assert_null(c.ops);
	assert_int_equal(c.nops, 0);
	free(b.p);
}

/* A signed body that must be refused. */
static void expect_malformed(const char *fmt, ...) LIM_PRINTF(1, 2);
static void expect_malformed(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	bytes b = vsigned(fmt, ap);
	va_end(ap);
	expect_malformed_bytes(b);
}

/* A signed body that must parse and verify (the near misses of the
 * malformed cases, so the rejections are not over-broad). */
static void expect_valid(const char *fmt, ...) LIM_PRINTF(1, 2);
static void expect_valid(const char *fmt, ...)
{
	va_list ap;
	lim_change c;
	unsigned char hash[LIM_HASH_BYTES];
	va_start(ap, fmt);
	bytes b = vsigned(fmt, ap);
	va_end(ap);
	int rc = lim_change__parse(&c, b.p, b.n);
	if (rc != 0) {
		print_bytes("expected a valid change", &b);
		print_error("rc = %d, message: %s\n", rc, lim_error_last());
	}
	assert_int_equal(rc, 0);
	assert_int_equal(c.body_len, b.n - 1 - 2 * LIM_SIG_BYTES);
	lim_change__hash(hash, b.p, c.body_len);
	assert_int_equal(lim_change__verify(&c, hash), 0);
	lim_change__dispose(&c);
	free(b.p);
}

/* Ops of a seq-1 change from K1: "lim1 <K1> 1 <hlc> <zero> <nops> <ops>". */
#define HDR1 "lim1 %s 1 " HLC_HEX " %s "
#define BAD_OPS(nops, ops) expect_malformed(HDR1 "%s %s", K1.hex, ZHEX, (nops), (ops))
#define GOOD_OPS(nops, ops) expect_valid(HDR1 "%s %s", K1.hex, ZHEX, (nops), (ops))

static void add_op(lim_change_builder *b, const char *fmt, ...) LIM_PRINTF(2, 3);
static void add_op(lim_change_builder *b, const char *fmt, ...)
{
	va_list ap;
	char buf[4096];
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	assert_true(n >= 0 && (size_t)n < sizeof(buf));
	/* As db.c emit_op: " " + op text, and one more op. */
	lim_sb__putc(&b->ops, ' ');
	lim_sb__put(&b->ops, buf, (size_t)n);
	b->nops++;
}

static char *repeat(const char *unit, size_t times, const char *sep)
{
	lim_sb sb = LIM_SB_INIT;
	for (size_t i = 0; i < times; i++) {
		if (i)
			lim_sb__puts(&sb, sep);
		lim_sb__puts(&sb, unit);
	}
	lim_sb__putc(&sb, '\0');
	return sb.ptr;
}

static void tag_text(char *out, size_t cap, const unsigned char *author, uint64_t seq, uint32_t opidx)
{
	unsigned char tag[LIM_TAG_BYTES];
	lim_sb sb = LIM_SB_INIT;
	lim_tag__make(tag, author, seq, opidx);
	lim_cb__tag(&sb, tag);
	assert_true(sb.len < cap);
	memcpy(out, sb.ptr, sb.len + 1);
	lim_sb__free(&sb);
}

static int span_is(lim_span s, const char *want)
{
	return s.n == strlen(want) && memcmp(s.p, want, s.n) == 0;
}

/* A change with one op of every kind, sealed by K1. */
typedef struct {
	lim_sb out;
	unsigned char hash[LIM_HASH_BYTES];
	unsigned char tags[3][LIM_TAG_BYTES];
	char tagtext[3][160];
} sample;

static void build_sample(sample *s, uint64_t seq, const unsigned char prev[LIM_HASH_BYTES])
{
	lim_change_builder b = { LIM_SB_INIT, 0 };
	lim_value v;
	memset(s, 0, sizeof(*s));
	/* Tags in increasing binary order: seq 9 before seq 10 (not string order),
	 * then another author. */
	lim_tag__make(s->tags[0], K1.pk, 9, 0);
	lim_tag__make(s->tags[1], K1.pk, 10, 9999);
	lim_tag__make(s->tags[2], K2.pk, 1, 0);
	if (memcmp(K1.pk, K2.pk, LIM_ID_BYTES) > 0) {
		unsigned char t[LIM_TAG_BYTES];
		memcpy(t, s->tags[2], LIM_TAG_BYTES);
		memmove(s->tags[1], s->tags[0], 2 * LIM_TAG_BYTES);
		memcpy(s->tags[0], t, LIM_TAG_BYTES);
	}
	for (int i = 0; i < 3; i++) {
		lim_sb t = LIM_SB_INIT;
		lim_cb__tag(&t, s->tags[i]);
		memcpy(s->tagtext[i], t.ptr, t.len + 1);
		lim_sb__free(&t);
	}

	add_op(&b, "S users alice name sAlice%%20Smith");
	/* Names that need escaping, through the builder's own helpers. */
	lim_cb__begin_op(&b, LIM_OP_SET, "my coll", "a,b%c");
	lim_cb__name(&b, "x.caf\xC3\xA9.z");
	lim_sb__putc(&b.ops, ' ');
	memset(&v, 0, sizeof(v));
	v.type = LIM_FLOAT;
	v.real = -0.0;
	lim_value__encode(&b.ops, &v);
	add_op(&b, "D users alice address.city");
	add_op(&b, "X users bob");
	add_op(&b, "N stats page views -5");
	add_op(&b, "N stats page min -9223372036854775808");
	add_op(&b, "A tags t1 list sred");
	add_op(&b, "A tags t1 list b00ff");
	add_op(&b, "R tags t1 list sred %s,%s,%s", s->tagtext[0], s->tagtext[1], s->tagtext[2]);
	add_op(&b, "S users alice flags n");
	assert_int_equal(b.nops, 10);
	assert_int_equal(lim_change__seal(&s->out, s->hash, &b, K1.pk, K1.sk, seq, HLC, prev), 0);
	lim_sb__free(&b.ops);
}

/* ------------------------------------------------------------ round trip */

static void test_codec__round_trip_every_op_kind(void **state)
{
	(void)state;
	sample s;
	lim_change c;
	unsigned char hash[LIM_HASH_BYTES];
	build_sample(&s, 1, ZERO);
	bytes b = dup_bytes(s.out.ptr, s.out.len);

	/* The header as printed. */
	char head[300];
	snprintf(head, sizeof(head), "lim1 %s 1 %s %s 10 S ", K1.hex, HLC_HEX, ZHEX);
	assert_memory_equal(b.p, head, strlen(head));

	assert_int_equal(lim_change__parse(&c, b.p, b.n), 0);
	assert_ptr_equal(c.bytes, b.p);
	assert_int_equal(c.len, b.n);
	assert_int_equal(c.body_len, b.n - 1 - 2 * LIM_SIG_BYTES);
	assert_int_equal(b.p[c.body_len], ' ');
	assert_memory_equal(c.author, K1.pk, LIM_ID_BYTES);
	assert_true(c.seq == 1);
	assert_true(c.hlc == HLC);
	assert_memory_equal(c.prev, ZERO, LIM_HASH_BYTES);
	assert_int_equal(c.nops, 10);
	lim_change__hash(hash, b.p, c.body_len);
	assert_memory_equal(hash, s.hash, LIM_HASH_BYTES);
	assert_int_equal(lim_change__verify(&c, hash), 0);

	const lim_op *op = c.ops;
	assert_int_equal(op[0].kind, LIM_OP_SET);
	assert_true(span_is(op[0].coll, "users"));
	assert_true(span_is(op[0].doc, "alice"));
	assert_true(span_is(op[0].path, "name"));
	assert_true(span_is(op[0].value, "sAlice%20Smith"));

	assert_int_equal(op[1].kind, LIM_OP_SET);
	assert_true(span_is(op[1].coll, "my%20coll"));
	assert_true(span_is(op[1].doc, "a%2Cb%25c"));
	assert_true(span_is(op[1].path, "x.caf\xC3\xA9.z"));
	assert_true(span_is(op[1].value, "d8000000000000000"));

	assert_int_equal(op[2].kind, LIM_OP_DEL);
	assert_true(span_is(op[2].coll, "users"));
	assert_true(span_is(op[2].doc, "alice"));
	assert_true(span_is(op[2].path, "address.city"));
	assert_int_equal(op[2].value.n, 0);

	assert_int_equal(op[3].kind, LIM_OP_DELDOC);
	assert_true(span_is(op[3].coll, "users"));
	assert_true(span_is(op[3].doc, "bob"));
	assert_int_equal(op[3].path.n, 0);

	assert_int_equal(op[4].kind, LIM_OP_INCR);
	assert_true(span_is(op[4].path, "views"));
	assert_true(op[4].delta == -5);
	assert_int_equal(op[5].kind, LIM_OP_INCR);
	assert_true(op[5].delta == INT64_MIN);

	assert_int_equal(op[6].kind, LIM_OP_SADD);
	assert_true(span_is(op[6].coll, "tags"));
	assert_true(span_is(op[6].doc, "t1"));
	assert_true(span_is(op[6].path, "list"));
	assert_true(span_is(op[6].value, "sred"));
	assert_int_equal(op[7].kind, LIM_OP_SADD);
	assert_true(span_is(op[7].value, "b00ff"));

	assert_int_equal(op[8].kind, LIM_OP_SREM);
	assert_true(span_is(op[8].value, "sred"));
	lim_span rest = op[8].tags, tag;
	int ntags = 0;
	while (lim_tags__next(&rest, &tag)) {
		unsigned char t[LIM_TAG_BYTES];
		assert_true(ntags < 3);
		assert_true(tag.n != (size_t)-1);
		assert_int_equal(lim_tag__parse(t, tag.p, tag.n), 0);
		assert_memory_equal(t, s.tags[ntags], LIM_TAG_BYTES);
		assert_true(span_is(tag, s.tagtext[ntags]));
		ntags++;
	}
	assert_int_equal(ntags, 3);

	assert_int_equal(op[9].kind, LIM_OP_SET);
	assert_true(span_is(op[9].path, "flags"));
	assert_true(span_is(op[9].value, "n"));

	/* Every op's value token decodes; names unescape to what was written. */
	lim_sb scratch = LIM_SB_INIT;
	lim_value v;
	assert_int_equal(lim_value__decode(op[0].value.p, op[0].value.n, &v, &scratch), 0);
	assert_int_equal(v.type, LIM_STRING);
	assert_string_equal(v.str, "Alice Smith");
	lim_sb__clear(&scratch);
	assert_int_equal(lim_text__unescape(&scratch, op[1].doc.p, op[1].doc.n), 0);
	assert_string_equal(scratch.ptr, "a,b%c");
	lim_sb__free(&scratch);

	/* Each op's text parses alone too (as local writes do), spans ending
	 * where the next op begins. */
	for (size_t i = 0; i < c.nops; i++) {
		lim_op one;
		const char *start = op[i].coll.p - 2;
		const char *end = i + 1 < c.nops ? op[i + 1].coll.p - 3 : b.p + c.body_len;
		assert_int_equal(lim_op__parse(&one, start, (size_t)(end - start)), 0);
		assert_int_equal(one.kind, op[i].kind);
		assert_true(one.delta == op[i].delta);
		assert_int_equal(one.value.n, op[i].value.n);
	}
	lim_change__dispose(&c);
	assert_null(c.ops);
	free(b.p);
	lim_sb__free(&s.out);
}

static void test_codec__round_trip_later_seq_with_prev(void **state)
{
	(void)state;
	sample s1, s2;
	lim_change c;
	unsigned char hash[LIM_HASH_BYTES];
	build_sample(&s1, 1, ZERO);
	build_sample(&s2, 2, s1.hash);
	bytes b = dup_bytes(s2.out.ptr, s2.out.len);
	assert_int_equal(lim_change__parse(&c, b.p, b.n), 0);
	assert_true(c.seq == 2);
	assert_memory_equal(c.prev, s1.hash, LIM_HASH_BYTES);
	lim_change__hash(hash, b.p, c.body_len);
	assert_memory_equal(hash, s2.hash, LIM_HASH_BYTES);
	assert_memory_not_equal(s1.hash, s2.hash, LIM_HASH_BYTES);
	assert_int_equal(lim_change__verify(&c, hash), 0);
	lim_change__dispose(&c);
	free(b.p);

	/* The largest seq and hlc there are. */
	lim_change_builder bld = { LIM_SB_INIT, 0 };
	lim_sb out = LIM_SB_INIT;
	add_op(&bld, "X c d");
	assert_int_equal(lim_change__seal(&out, hash, &bld, K1.pk, K1.sk, INT64_MAX, UINT64_MAX, s1.hash), 0);
	b = dup_bytes(out.ptr, out.len);
	assert_int_equal(lim_change__parse(&c, b.p, b.n), 0);
	assert_true(c.seq == (uint64_t)INT64_MAX);
	assert_true(c.hlc == UINT64_MAX);
	assert_int_equal(lim_change__verify(&c, hash), 0);
	lim_change__dispose(&c);
	free(b.p);
	lim_sb__free(&out);
	lim_sb__free(&bld.ops);
	lim_sb__free(&s1.out);
	lim_sb__free(&s2.out);
}

static void test_codec__seal_is_deterministic(void **state)
{
	(void)state;
	sample a, b;
	build_sample(&a, 7, ZERO);
	build_sample(&b, 7, ZERO);
	assert_int_equal(a.out.len, b.out.len);
	assert_memory_equal(a.out.ptr, b.out.ptr, a.out.len);
	assert_memory_equal(a.hash, b.hash, LIM_HASH_BYTES);

	/* Seal clears its output buffer first. */
	lim_change_builder bld = { LIM_SB_INIT, 0 };
	lim_sb out = LIM_SB_INIT;
	unsigned char h1[LIM_HASH_BYTES], h2[LIM_HASH_BYTES];
	add_op(&bld, "S c d f i1");
	lim_sb__puts(&out, "junk that must go");
	assert_int_equal(lim_change__seal(&out, h1, &bld, K1.pk, K1.sk, 1, HLC, ZERO), 0);
	/* The same bytes as signing the body by hand. */
	char body[400];
	snprintf(body, sizeof(body), "lim1 %s 1 %s %s 1 S c d f i1", K1.hex, HLC_HEX, ZHEX);
	bytes hand = sign_body(body, strlen(body), &K1);
	assert_int_equal(out.len, hand.n);
	assert_memory_equal(out.ptr, hand.p, hand.n);
	lim_change__hash(h2, body, strlen(body));
	assert_memory_equal(h1, h2, LIM_HASH_BYTES);
	free(hand.p);

	/* Any input changed: different bytes and hash. */
	lim_sb other = LIM_SB_INIT;
	assert_int_equal(lim_change__seal(&other, h2, &bld, K1.pk, K1.sk, 2, HLC, ZERO), 0);
	assert_memory_not_equal(h1, h2, LIM_HASH_BYTES);
	assert_int_equal(lim_change__seal(&other, h2, &bld, K1.pk, K1.sk, 1, HLC + 1, ZERO), 0);
	assert_memory_not_equal(h1, h2, LIM_HASH_BYTES);
	assert_int_equal(lim_change__seal(&other, h2, &bld, K2.pk, K2.sk, 1, HLC, ZERO), 0);
	assert_memory_not_equal(h1, h2, LIM_HASH_BYTES);

	/* Too many ops is refused by seal itself. */
	lim_change_builder many = { LIM_SB_INIT, LIM_MAX_OPS_PER_CHANGE + 1 };
	lim_sb__puts(&many.ops, " X c d");
	lim__error_clear();
	assert_int_equal(lim_change__seal(&other, h2, &many, K1.pk, K1.sk, 1, HLC, ZERO), LIM_EINVALID);
	assert_true(lim_error_last()[0] != '\0');

	lim_sb__free(&many.ops);
	lim_sb__free(&other);
	lim_sb__free(&out);
	lim_sb__free(&bld.ops);
	lim_sb__free(&a.out);
	lim_sb__free(&b.out);
}

static void test_codec__signature_verifies_only_for_its_author(void **state)
{
	(void)state;
	sample s;
	lim_change c;
	unsigned char hash[LIM_HASH_BYTES];
	build_sample(&s, 1, ZERO);
	bytes b = dup_bytes(s.out.ptr, s.out.len);
	assert_int_equal(lim_change__parse(&c, b.p, b.n), 0);
	lim_change__hash(hash, b.p, c.body_len);
	assert_int_equal(lim_change__verify(&c, hash), 0);
	/* Another author's key. */
	memcpy(c.author, K2.pk, LIM_ID_BYTES);
	assert_int_equal(lim_change__verify(&c, hash), -1);
	memcpy(c.author, K1.pk, LIM_ID_BYTES);
	/* Another hash. */
	hash[0] ^= 1;
	assert_int_equal(lim_change__verify(&c, hash), -1);
	hash[0] ^= 1;
	/* Another signature. */
	c.sig[10] ^= 0x40;
	assert_int_equal(lim_change__verify(&c, hash), -1);
	lim_change__dispose(&c);
	free(b.p);

	/* Sealed with K2's secret key but claiming K1 as author: parses,
	 * never verifies. */
	lim_change_builder bld = { LIM_SB_INIT, 0 };
	lim_sb out = LIM_SB_INIT;
	add_op(&bld, "S c d f t");
	assert_int_equal(lim_change__seal(&out, hash, &bld, K1.pk, K2.sk, 1, HLC, ZERO), 0);
	b = dup_bytes(out.ptr, out.len);
	assert_int_equal(lim_change__parse(&c, b.p, b.n), 0);
	assert_int_equal(lim_change__verify(&c, hash), -1);
	memcpy(c.author, K2.pk, LIM_ID_BYTES);
	assert_int_equal(lim_change__verify(&c, hash), 0);
	lim_change__dispose(&c);
	free(b.p);
	/* A signature for a hash without the domain separation is refused. */
	unsigned char sig[LIM_SIG_BYTES];
	lim_change__hash(hash, "x", 1);
	assert_int_equal(crypto_sign_detached(sig, NULL, hash, LIM_HASH_BYTES, K1.sk), 0);
	memset(&c, 0, sizeof(c));
	memcpy(c.author, K1.pk, LIM_ID_BYTES);
	memcpy(c.sig, sig, LIM_SIG_BYTES);
	assert_int_equal(lim_change__verify(&c, hash), -1);
	lim_sb__free(&out);
	lim_sb__free(&bld.ops);
	lim_sb__free(&s.out);
}

/* ------------------------------------------------------------ corruption */

static void test_codec__single_byte_corruption_never_authentic(void **state)
{
	(void)state;
	sample s;
	static const unsigned char masks[] = { 0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0xFF };
	size_t parsed = 0, rejected = 0;
	/* seq 3, so a corrupted prev still parses and must fail verification */
	build_sample(&s, 3, ZERO);
	for (size_t i = 0; i < s.out.len; i++)
		for (size_t m = 0; m < sizeof(masks); m++) {
			bytes b = dup_bytes(s.out.ptr, s.out.len);
			lim_change c;
			unsigned char hash[LIM_HASH_BYTES];
			b.p[i] = (char)(b.p[i] ^ masks[m]);
			lim__error_clear();
			int rc = lim_change__parse(&c, b.p, b.n);
			if (rc != 0) {
				assert_int_equal(rc, LIM_EMALFORMED);
				assert_true(lim_error_last()[0] != '\0');
				rejected++;
			} else {
				parsed++;
				lim_change__hash(hash, b.p, c.body_len);
				int ok = lim_change__verify(&c, hash) == 0;
				int same = memcmp(hash, s.hash, LIM_HASH_BYTES) == 0;
				/* Never authentic; the hash only stays the same when the
				 * corrupted byte is in the signature. */
				if (ok || (same && i <= c.body_len)) {
					print_error("byte %zu ^ 0x%02x: verifies=%d same hash=%d\n", i, masks[m], ok, same);
					fail();
				}
				lim_change__dispose(&c);
			}
			free(b.p);
		}
	/* Both paths were exercised. */
	assert_true(parsed > 0);
	assert_true(rejected > 0);
	/* Every proper prefix, and the change with anything appended, is malformed. */
	for (size_t n = 0; n < s.out.len; n++)
		expect_malformed_bytes(dup_bytes(s.out.ptr, n));
	static const char *const tails[] = { "\n", "\r\n", " ", "0", "\0", " x" };
	for (size_t t = 0; t < sizeof(tails) / sizeof(tails[0]); t++) {
		size_t tn = tails[t][0] ? strlen(tails[t]) : 1;
		bytes b;
		b.n = s.out.len + tn;
		b.p = malloc(b.n);
		memcpy(b.p, s.out.ptr, s.out.len);
		memcpy(b.p + s.out.len, tails[t], tn);
		expect_malformed_bytes(b);
	}
	lim_sb__free(&s.out);
}

/* ------------------------------------------------------------ header */

static void test_codec__rejects_bad_format_tag(void **state)
{
	(void)state;
	static const char *const tags[] = { "lim2", "LIM1", "lim", "lim10", "xlim1", "lim1x", "Lim1", "lim0" };
	for (size_t i = 0; i < sizeof(tags) / sizeof(tags[0]); i++)
		expect_malformed("%s %s 1 " HLC_HEX " %s 1 X c d", tags[i], K1.hex, ZHEX);
	expect_valid("lim1 %s 1 " HLC_HEX " %s 1 X c d", K1.hex, ZHEX);
}

static void test_codec__rejects_bad_author(void **state)
{
	(void)state;
	char up[65], shortx[64], longx[66], nonhex[65];
	for (int i = 0; i < 65; i++)
		up[i] = (char)toupper((unsigned char)K1.hex[i]);
	if (strcmp(up, K1.hex) == 0) /* all digits: impossible in practice */
		up[0] = 'A';
	memcpy(shortx, K1.hex, 63);
	shortx[63] = '\0';
	snprintf(longx, sizeof(longx), "%s0", K1.hex);
	memcpy(nonhex, K1.hex, 65);
	nonhex[30] = 'g';
	expect_malformed("lim1 %s 1 " HLC_HEX " %s 1 X c d", up, ZHEX);
	expect_malformed("lim1 %s 1 " HLC_HEX " %s 1 X c d", shortx, ZHEX);
	expect_malformed("lim1 %s 1 " HLC_HEX " %s 1 X c d", longx, ZHEX);
	expect_malformed("lim1 %s 1 " HLC_HEX " %s 1 X c d", nonhex, ZHEX);
	/* One uppercase letter is enough. */
	memcpy(up, K1.hex, 65);
	for (int i = 0; i < 64; i++)
		if (up[i] >= 'a') {
			up[i] = (char)toupper((unsigned char)up[i]);
			break;
		}
	if (strcmp(up, K1.hex) != 0)
		expect_malformed("lim1 %s 1 " HLC_HEX " %s 1 X c d", up, ZHEX);
}

static void test_codec__rejects_bad_seq(void **state)
{
	(void)state;
	static const char *const seqs[] = {
		"0", "00", "01", "007", "-1", "+1", "1a", "0x1", "1.0",
		"9223372036854775808", "18446744073709551615", "18446744073709551616",
		"99999999999999999999999",
	};
	for (size_t i = 0; i < sizeof(seqs) / sizeof(seqs[0]); i++)
		expect_malformed("lim1 %s %s " HLC_HEX " %s 1 X c d", K1.hex, seqs[i], ZHEX);
	char prev[65];
	memset(prev, 'a', 64);
	prev[64] = '\0';
	expect_valid("lim1 %s 9223372036854775807 " HLC_HEX " %s 1 X c d", K1.hex, prev);
	expect_valid("lim1 %s 10 " HLC_HEX " %s 1 X c d", K1.hex, prev);
}

static void test_codec__rejects_bad_hlc(void **state)
{
	(void)state;
	static const char *const hlcs[] = {
		"018bcfe56800000",   /* 15 */
		"018bcfe5680000000", /* 17 */
		"18bcfe568000000",
		"018BCFE568000000",  /* uppercase */
		"0000000000000000",  /* zero */
		"018bcfe56800000g",
		"-18bcfe568000000",
		"0x8bcfe568000000",
		"1700000000000",     /* decimal */
	};
	for (size_t i = 0; i < sizeof(hlcs) / sizeof(hlcs[0]); i++)
		expect_malformed("lim1 %s 1 %s %s 1 X c d", K1.hex, hlcs[i], ZHEX);
	expect_valid("lim1 %s 1 0000000000000001 %s 1 X c d", K1.hex, ZHEX);
	expect_valid("lim1 %s 1 ffffffffffffffff %s 1 X c d", K1.hex, ZHEX);
}

static void test_codec__rejects_bad_prev(void **state)
{
	(void)state;
	char prev[66];
	memcpy(prev, ZHEX, 65);
	prev[63] = '1'; /* non-zero prev on seq 1 */
	expect_malformed("lim1 %s 1 " HLC_HEX " %s 1 X c d", K1.hex, prev);
	expect_valid("lim1 %s 2 " HLC_HEX " %s 1 X c d", K1.hex, prev);
	prev[0] = '8';
	expect_malformed("lim1 %s 1 " HLC_HEX " %s 1 X c d", K1.hex, prev);
	/* Form: uppercase, short, long, non-hex (on seq 2, where any hash is fine). */
	prev[5] = 'A';
	expect_malformed("lim1 %s 2 " HLC_HEX " %s 1 X c d", K1.hex, prev);
	memcpy(prev, ZHEX, 65);
	prev[63] = '\0';
	expect_malformed("lim1 %s 2 " HLC_HEX " %s 1 X c d", K1.hex, prev);
	expect_malformed("lim1 %s 1 " HLC_HEX " %s 1 X c d", K1.hex, prev);
	memcpy(prev, ZHEX, 65);
	prev[64] = '0';
	prev[65] = '\0';
	expect_malformed("lim1 %s 2 " HLC_HEX " %s 1 X c d", K1.hex, prev);
	memcpy(prev, ZHEX, 65);
	prev[17] = 'z';
	expect_malformed("lim1 %s 2 " HLC_HEX " %s 1 X c d", K1.hex, prev);
	/* Zero prev on a later seq is a chain matter, not a form error. */
	expect_valid("lim1 %s 2 " HLC_HEX " %s 1 X c d", K1.hex, ZHEX);
}

static void test_codec__rejects_bad_op_count(void **state)
{
	(void)state;
	BAD_OPS("0", "X c d");
	BAD_OPS("00", "X c d");
	BAD_OPS("01", "X c d");
	BAD_OPS("-1", "X c d");
	BAD_OPS("+1", "X c d");
	BAD_OPS("1a", "X c d");
	BAD_OPS("18446744073709551617", "X c d");
	/* Fewer ops than the count says. */
	BAD_OPS("2", "X c d");
	BAD_OPS("3", "X c d X c e");
	/* More ops than the count says. */
	BAD_OPS("1", "X c d X c e");
	BAD_OPS("2", "X c d X c e X c f");
	/* And no ops at all. */
	expect_malformed("lim1 %s 1 " HLC_HEX " %s 0", K1.hex, ZHEX);
	expect_malformed("lim1 %s 1 " HLC_HEX " %s 1", K1.hex, ZHEX);

	/* 10000 ops are fine, 10001 are not (even when all 10001 are there). */
	char *ops = repeat("X c d", LIM_MAX_OPS_PER_CHANGE + 1, " ");
	size_t one = strlen("X c d ");
	expect_valid(HDR1 "10000 %.*s", K1.hex, ZHEX, (int)(one * LIM_MAX_OPS_PER_CHANGE - 1), ops);
	expect_malformed(HDR1 "10001 %s", K1.hex, ZHEX, ops);
	expect_malformed(HDR1 "10000 %s", K1.hex, ZHEX, ops);
	expect_malformed(HDR1 "10001 %.*s", K1.hex, ZHEX, (int)(one * LIM_MAX_OPS_PER_CHANGE - 1), ops);
	free(ops);
}

static void test_codec__rejects_missing_fields(void **state)
{
	(void)state;
	expect_malformed("lim1");
	expect_malformed("lim1 %s", K1.hex);
	expect_malformed("lim1 %s 1", K1.hex);
	expect_malformed("lim1 %s 1 " HLC_HEX, K1.hex);
	expect_malformed("lim1 %s 1 " HLC_HEX " %s", K1.hex, ZHEX);
	/* A field left out shifts the rest: */
	expect_malformed("lim1 1 " HLC_HEX " %s 1 X c d", ZHEX);
	expect_malformed("lim1 %s " HLC_HEX " %s 1 X c d", K1.hex, ZHEX);
	expect_malformed("lim1 %s 1 %s 1 X c d", K1.hex, ZHEX);
	expect_malformed("lim1 %s 1 " HLC_HEX " 1 X c d", K1.hex);
	expect_malformed("%s 1 " HLC_HEX " %s 1 X c d", K1.hex, ZHEX);
	/* Ops missing their fields. */
	BAD_OPS("1", "S c d p");
	BAD_OPS("1", "S c d");
	BAD_OPS("1", "S c");
	BAD_OPS("1", "S");
	BAD_OPS("1", "D c d");
	BAD_OPS("1", "D c");
	BAD_OPS("1", "X c");
	BAD_OPS("1", "X");
	BAD_OPS("1", "N c d p");
	BAD_OPS("1", "N c d");
	BAD_OPS("1", "A c d p");
	BAD_OPS("1", "A c d");
	BAD_OPS("1", "R c d p sx");
	BAD_OPS("1", "R c d p");
	/* The missing field taken from the next op. */
	BAD_OPS("2", "S c d p X c d");
	/* Ops with a field too many. */
	BAD_OPS("1", "X c d p");
	BAD_OPS("1", "D c d p i1");
	BAD_OPS("1", "S c d p i1 i2");
	BAD_OPS("1", "N c d p 1 2");
	/* Only the signature, or nothing. */
	char sig[129];
	memset(sig, 'a', 128);
	sig[128] = '\0';
	expect_malformed_bytes(dup_bytes(sig, 128));
	expect_malformed_bytes(dup_bytes(" ", 1));
	expect_malformed_bytes(dup_bytes("", 0));
}

static void test_codec__rejects_bad_spacing(void **state)
{
	(void)state;
	/* Double spaces. */
	expect_malformed("lim1  %s 1 " HLC_HEX " %s 1 X c d", K1.hex, ZHEX);
	expect_malformed("lim1 %s  1 " HLC_HEX " %s 1 X c d", K1.hex, ZHEX);
	expect_malformed("lim1 %s 1  " HLC_HEX " %s 1 X c d", K1.hex, ZHEX);
	expect_malformed("lim1 %s 1 " HLC_HEX "  %s 1 X c d", K1.hex, ZHEX);
	expect_malformed("lim1 %s 1 " HLC_HEX " %s  1 X c d", K1.hex, ZHEX);
	BAD_OPS("1", " X c d");
	BAD_OPS("1", "X  c d");
	BAD_OPS("1", "X c  d");
	BAD_OPS("2", "X c d  X c e");
	BAD_OPS("1", "S c d p  i1");
	/* Trailing space before the signature (the body ends in a space). */
	BAD_OPS("1", "X c d ");
	BAD_OPS("1", "S c d p i1 ");
	/* Leading space. */
	expect_malformed(" lim1 %s 1 " HLC_HEX " %s 1 X c d", K1.hex, ZHEX);
	/* A tab is not a separator. */
	expect_malformed("lim1\t%s 1 " HLC_HEX " %s 1 X c d", K1.hex, ZHEX);
	BAD_OPS("1", "X c\td");

	/* Around the signature: two spaces before, space after, none at all. */
	char body[400];
	snprintf(body, sizeof(body), "lim1 %s 1 %s %s 1 X c d", K1.hex, HLC_HEX, ZHEX);
	bytes b = sign_body(body, strlen(body), &K1);
	lim_sb sb = LIM_SB_INIT;
	lim_sb__put(&sb, body, strlen(body));
	lim_sb__puts(&sb, "  ");
	lim_sb__put(&sb, b.p + b.n - 128, 128);
	expect_malformed_bytes(dup_bytes(sb.ptr, sb.len));
	lim_sb__clear(&sb);
	lim_sb__put(&sb, b.p, b.n);
	lim_sb__putc(&sb, ' ');
	expect_malformed_bytes(dup_bytes(sb.ptr, sb.len));
	lim_sb__clear(&sb);
	lim_sb__put(&sb, body, strlen(body));
	lim_sb__put(&sb, b.p + b.n - 128, 128);
	expect_malformed_bytes(dup_bytes(sb.ptr, sb.len));
	/* The control: the same bytes with one space parse. */
	lim_change c;
	assert_int_equal(lim_change__parse(&c, b.p, b.n), 0);
	lim_change__dispose(&c);
	lim_sb__free(&sb);
	free(b.p);
}

/* Splice raw bytes into a signed change in place of a marker. */
static bytes signed_with(const char *ops_before, const char *raw, size_t rawn, const char *ops_after,
                         const char *nops)
{
	lim_sb body = LIM_SB_INIT;
	lim_sb__printf(&body, "lim1 %s 1 %s %s %s %s", K1.hex, HLC_HEX, ZHEX, nops, ops_before);
	lim_sb__put(&body, raw, rawn);
	lim_sb__puts(&body, ops_after);
	bytes b = sign_body(body.ptr, body.len, &K1);
	lim_sb__free(&body);
	return b;
}

static void test_codec__rejects_control_bytes_and_bad_utf8(void **state)
{
	(void)state;
	/* LF, CR, NUL, other controls and DEL anywhere in a name or value. */
	static const char raws[] = { '\n', '\r', '\0', '\x01', '\t', '\x1f', '\x7f', '\x0b' };
	for (size_t i = 0; i < sizeof(raws); i++) {
		expect_malformed_bytes(signed_with("S c d", &raws[i], 1, "x p i1", "1"));
		expect_malformed_bytes(signed_with("S c", &raws[i], 1, " d p i1", "1"));
		expect_malformed_bytes(signed_with("S c d p sa", &raws[i], 1, "b", "1"));
		expect_malformed_bytes(signed_with("S c d p", &raws[i], 1, "x i1", "1"));
		expect_malformed_bytes(signed_with("S ", &raws[i], 1, "c d p i1", "1"));
	}
	/* A LF or NUL between the fields of the header. */
	bytes b;
	b = sign_body("lim1\n", 5, &K1);
	expect_malformed_bytes(b);
	{
		lim_sb body = LIM_SB_INIT;
		lim_sb__printf(&body, "lim1 %s 1 %s %s 1 X c d", K1.hex, HLC_HEX, ZHEX);
		body.ptr[4] = '\0';
		expect_malformed_bytes(sign_body(body.ptr, body.len, &K1));
		body.ptr[4] = '\n';
		expect_malformed_bytes(sign_body(body.ptr, body.len, &K1));
		lim_sb__free(&body);
	}
	/* Invalid UTF-8 in a name, a path, a value, the signature. */
	static const char *const bad_utf8[] = { "\xC3", "\xC0\xAF", "\xED\xA0\x80", "\xF4\x90\x80\x80", "\xFF", "\x80" };
	for (size_t i = 0; i < sizeof(bad_utf8) / sizeof(bad_utf8[0]); i++) {
		size_t n = strlen(bad_utf8[i]);
		expect_malformed_bytes(signed_with("S c d", bad_utf8[i], n, " p i1", "1"));
		expect_malformed_bytes(signed_with("S c d p", bad_utf8[i], n, " i1", "1"));
		expect_malformed_bytes(signed_with("S c d p s", bad_utf8[i], n, "", "1"));
		expect_malformed_bytes(signed_with("S c", bad_utf8[i], n, " p i1", "1"));
	}
	/* Valid non-ASCII is fine everywhere it may appear. */
	GOOD_OPS("1", "S caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80.\xC3\xA9 s\xC3\xA9t\xC3\xA9");
}

static void test_codec__rejects_bad_names(void **state)
{
	(void)state;
	/* Non-canonical escapes in each of coll, doc, path. */
	static const char *const bad[] = { "%41", "a%2c", "%2", "%", "a%", "%C3%A9", "%2E", "%%", "%zz", "a,b" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		expect_malformed(HDR1 "1 S %s d p i1", K1.hex, ZHEX, bad[i]);
		expect_malformed(HDR1 "1 S c %s p i1", K1.hex, ZHEX, bad[i]);
		expect_malformed(HDR1 "1 S c d %s i1", K1.hex, ZHEX, bad[i]);
		expect_malformed(HDR1 "1 X %s d", K1.hex, ZHEX, bad[i]);
	}
	/* Escaped NUL decodes but no name may hold a NUL. */
	BAD_OPS("1", "S %00 d p i1");
	BAD_OPS("1", "S c a%00b p i1");
	BAD_OPS("1", "S c d %00 i1");
	/* Canonical escapes are fine. */
	GOOD_OPS("1", "S my%20coll a%2Cb%25c x%0A.y%7F i1");

	/* Empty path segments. */
	static const char *const paths[] = { "a..b", ".a", "a.", ".", "..", "a.b.", ".a.b", "a...b" };
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		expect_malformed(HDR1 "1 S c d %s i1", K1.hex, ZHEX, paths[i]);
		expect_malformed(HDR1 "1 D c d %s", K1.hex, ZHEX, paths[i]);
		expect_malformed(HDR1 "1 N c d %s 1", K1.hex, ZHEX, paths[i]);
		expect_malformed(HDR1 "1 A c d %s i1", K1.hex, ZHEX, paths[i]);
	}
	/* Depth: 32 segments fine, 33 not. */
	char *p32 = repeat("a", LIM_MAX_PATH_DEPTH, ".");
	char *p33 = repeat("a", LIM_MAX_PATH_DEPTH + 1, ".");
	expect_valid(HDR1 "1 S c d %s i1", K1.hex, ZHEX, p32);
	expect_malformed(HDR1 "1 S c d %s i1", K1.hex, ZHEX, p33);
	expect_malformed(HDR1 "1 R c d %s i1 %s.1.0", K1.hex, ZHEX, p33, K1.hex);
	free(p32);
	free(p33);

	/* Lengths, counted in unescaped bytes. */
	char *c256 = repeat("c", LIM_MAX_COLLECTION_BYTES, "");
	char *c257 = repeat("c", LIM_MAX_COLLECTION_BYTES + 1, "");
	char *e256 = repeat("%20", LIM_MAX_COLLECTION_BYTES, "");
	char *e257 = repeat("%20", LIM_MAX_COLLECTION_BYTES + 1, "");
	char *u128 = repeat("\xC3\xA9", LIM_MAX_COLLECTION_BYTES / 2, "");
	char *u129 = repeat("\xC3\xA9", LIM_MAX_COLLECTION_BYTES / 2 + 1, "");
	expect_valid(HDR1 "1 X %s d", K1.hex, ZHEX, c256);
	expect_malformed(HDR1 "1 X %s d", K1.hex, ZHEX, c257);
	expect_valid(HDR1 "1 X %s d", K1.hex, ZHEX, e256);
	expect_malformed(HDR1 "1 X %s d", K1.hex, ZHEX, e257);
	expect_valid(HDR1 "1 X %s d", K1.hex, ZHEX, u128);
	expect_malformed(HDR1 "1 X %s d", K1.hex, ZHEX, u129);
	expect_malformed(HDR1 "1 S %s d p i1", K1.hex, ZHEX, c257);
	char *d1024 = repeat("d", LIM_MAX_DOC_BYTES, "");
	char *d1025 = repeat("d", LIM_MAX_DOC_BYTES + 1, "");
	expect_valid(HDR1 "1 X c %s", K1.hex, ZHEX, d1024);
	expect_malformed(HDR1 "1 X c %s", K1.hex, ZHEX, d1025);
	expect_valid(HDR1 "1 S c d %s i1", K1.hex, ZHEX, d1024);
	expect_malformed(HDR1 "1 S c d %s i1", K1.hex, ZHEX, d1025);
	free(c256);
	free(c257);
	free(e256);
	free(e257);
	free(u128);
	free(u129);
	free(d1024);
	free(d1025);
}

static void test_codec__rejects_bad_values_and_deltas(void **state)
{
	(void)state;
	static const char *const vals[] = {
		"x", "S", "nn", "tt", "i", "i01", "i-0", "i+1", "i9223372036854775808", "d",
		"d3FF8000000000000", "d3ff800000000000", "d7ff8000000000000", "dfff0000000000000",
		"b0", "bAB", "b0g", "s%2c", "s%41", "s%", "s,", "s%00%",
	};
	for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
		expect_malformed(HDR1 "1 S c d p %s", K1.hex, ZHEX, vals[i]);
		expect_malformed(HDR1 "1 A c d p %s", K1.hex, ZHEX, vals[i]);
		expect_malformed(HDR1 "1 R c d p %s %s.1.0", K1.hex, ZHEX, vals[i], K1.hex);
	}
	/* Values over the size limit. */
	char *big = repeat("a", LIM_MAX_VALUE_BYTES + 1, "");
	expect_malformed(HDR1 "1 S c d p s%s", K1.hex, ZHEX, big);
	expect_valid(HDR1 "1 S c d p s%s", K1.hex, ZHEX, big + 1);
	free(big);

	static const char *const deltas[] = {
		"01", "-0", "+1", "00", "-", "9223372036854775808", "-9223372036854775809", "1.5",
		"x", "i1", "0x1", "1e3", "18446744073709551615",
	};
	for (size_t i = 0; i < sizeof(deltas) / sizeof(deltas[0]); i++)
		expect_malformed(HDR1 "1 N c d p %s", K1.hex, ZHEX, deltas[i]);
	GOOD_OPS("1", "N c d p 0");
	GOOD_OPS("1", "N c d p 9223372036854775807");
	GOOD_OPS("1", "N c d p -9223372036854775808");
}

static void test_codec__rejects_bad_set_remove_tags(void **state)
{
	(void)state;
	const char *A = K1.hex;
	char ta[160], tb[160], big[160];
	tag_text(ta, sizeof(ta), K1.pk, 5, 0);
	tag_text(tb, sizeof(tb), K1.pk, 5, 1);
	assert_string_equal(ta + 64, ".5.0");
	char up[65];
	for (int i = 0; i < 65; i++)
		up[i] = (char)toupper((unsigned char)A[i]);

	/* Controls. */
	expect_valid(HDR1 "1 R c d p sx %s", A, ZHEX, ta);
	expect_valid(HDR1 "1 R c d p sx %s,%s", A, ZHEX, ta, tb);
	expect_valid(HDR1 "1 R c d p sx %s.9.0,%s.10.0", A, ZHEX, A, A); /* binary, not string, order */
	expect_valid(HDR1 "1 R c d p sx %s.9223372036854775807.9999", A, ZHEX, A);

	/* No tags. */
	expect_malformed(HDR1 "1 R c d p sx", A, ZHEX);
	expect_malformed(HDR1 "1 R c d p sx ,", A, ZHEX);
	expect_malformed(HDR1 "1 R c d p sx ,,", A, ZHEX);
	/* Order and duplicates. */
	expect_malformed(HDR1 "1 R c d p sx %s,%s", A, ZHEX, tb, ta);
	expect_malformed(HDR1 "1 R c d p sx %s,%s", A, ZHEX, ta, ta);
	expect_malformed(HDR1 "1 R c d p sx %s,%s,%s", A, ZHEX, ta, tb, ta);
	expect_malformed(HDR1 "1 R c d p sx %s.10.0,%s.9.0", A, ZHEX, A, A);
	/* Stray commas. */
	expect_malformed(HDR1 "1 R c d p sx %s,", A, ZHEX, ta);
	expect_malformed(HDR1 "1 R c d p sx ,%s", A, ZHEX, ta);
	expect_malformed(HDR1 "1 R c d p sx %s,,%s", A, ZHEX, ta, tb);
	expect_malformed(HDR1 "1 R c d p sx %s,%s,", A, ZHEX, ta, tb);
	/* Malformed tags. */
	expect_malformed(HDR1 "1 R c d p sx %s.5.0", A, ZHEX, up);
	expect_malformed(HDR1 "1 R c d p sx %.63s.5.0", A, ZHEX, A);
	expect_malformed(HDR1 "1 R c d p sx %s0.5.0", A, ZHEX, A);
	expect_malformed(HDR1 "1 R c d p sx %s.0.0", A, ZHEX, A);
	expect_malformed(HDR1 "1 R c d p sx %s.05.0", A, ZHEX, A);
	expect_malformed(HDR1 "1 R c d p sx %s.-5.0", A, ZHEX, A);
	expect_malformed(HDR1 "1 R c d p sx %s.9223372036854775808.0", A, ZHEX, A);
	expect_malformed(HDR1 "1 R c d p sx %s.5.01", A, ZHEX, A);
	expect_malformed(HDR1 "1 R c d p sx %s.5.10000", A, ZHEX, A);
	expect_malformed(HDR1 "1 R c d p sx %s.5.-1", A, ZHEX, A);
	expect_malformed(HDR1 "1 R c d p sx %s.5", A, ZHEX, A);
	expect_malformed(HDR1 "1 R c d p sx %s.5.", A, ZHEX, A);
	expect_malformed(HDR1 "1 R c d p sx %s..0", A, ZHEX, A);
	expect_malformed(HDR1 "1 R c d p sx %s.5.0.0", A, ZHEX, A);
	expect_malformed(HDR1 "1 R c d p sx %s.5.0.", A, ZHEX, A);
	expect_malformed(HDR1 "1 R c d p sx %s:5:0", A, ZHEX, A);
	expect_malformed(HDR1 "1 R c d p sx %s", A, ZHEX, A);
	expect_malformed(HDR1 "1 R c d p sx .5.0", A, ZHEX);
	expect_malformed(HDR1 "1 R c d p sx %s.5.0%%20", A, ZHEX, A);
	snprintf(big, sizeof(big), "%s.5.0", A);
	big[64] = ',';
	expect_malformed(HDR1 "1 R c d p sx %s", A, ZHEX, big);
	/* A good tag then a bad one. */
	expect_malformed(HDR1 "1 R c d p sx %s,%s.6.01", A, ZHEX, ta, A);
}

static void test_codec__rejects_bad_signature(void **state)
{
	(void)state;
	char body[400];
	snprintf(body, sizeof(body), "lim1 %s 1 %s %s 1 X c d", K1.hex, HLC_HEX, ZHEX);
	bytes good = sign_body(body, strlen(body), &K1);
	const char *sig = good.p + good.n - 128;
	char up[129];
	int changed = 0;
	for (int i = 0; i < 128; i++) {
		up[i] = (char)toupper((unsigned char)sig[i]);
		changed |= up[i] != sig[i];
	}
	up[128] = '\0';
	assert_true(changed);
	lim_sb sb = LIM_SB_INIT;
#define WITH_SIG(text, n)                                 \
	do {                                                  \
		lim_sb__clear(&sb);                               \
		lim_sb__puts(&sb, body);                          \
		lim_sb__putc(&sb, ' ');                           \
		lim_sb__put(&sb, (text), (n));                    \
		expect_malformed_bytes(dup_bytes(sb.ptr, sb.len)); \
	} while (0)
	WITH_SIG(sig, 127);      /* short */
	WITH_SIG(sig + 1, 127);
	WITH_SIG(up, 128);       /* uppercase */
	WITH_SIG("", 0);         /* empty */
	WITH_SIG(sig, 126);
	lim_sb__clear(&sb);
	lim_sb__puts(&sb, body);
	lim_sb__putc(&sb, ' ');
	lim_sb__put(&sb, sig, 128);
	lim_sb__putc(&sb, '0'); /* long */
	expect_malformed_bytes(dup_bytes(sb.ptr, sb.len));
	char g[129];
	memcpy(g, sig, 128);
	g[77] = 'g'; /* not hex */
	WITH_SIG(g, 128);
	memcpy(g, sig, 128);
	g[0] = 'A';
	WITH_SIG(g, 128);
	/* The signature is always the last token: body without one. */
	expect_malformed_bytes(dup_bytes(body, strlen(body)));
#undef WITH_SIG
	/* Control: the good one. */
	lim_change c;
	assert_int_equal(lim_change__parse(&c, good.p, good.n), 0);
	lim_change__dispose(&c);
	lim_sb__free(&sb);
	free(good.p);
}

/* A change of exactly `total` bytes: five S ops padded with string values. */
static bytes change_of_size(size_t total)
{
	lim_sb body = LIM_SB_INIT;
	char head[300];
	int hn = snprintf(head, sizeof(head), "lim1 %s 1 %s %s 5", K1.hex, HLC_HEX, ZHEX);
	size_t fixed = (size_t)hn + 5 * strlen(" S c d pN s") + 1 + 2 * LIM_SIG_BYTES;
	assert_true(total > fixed);
	size_t fill = total - fixed, each = fill / 5;
	lim_sb__puts(&body, head);
	for (int i = 0; i < 5; i++) {
		size_t n = i < 4 ? each : fill - 4 * each;
		assert_true(n <= LIM_MAX_VALUE_BYTES);
		lim_sb__printf(&body, " S c d p%d s", i);
		assert_int_equal(lim_sb__grow(&body, n), 0);
		memset(body.ptr + body.len, 'v', n);
		body.len += n;
		body.ptr[body.len] = '\0';
	}
	bytes b = sign_body(body.ptr, body.len, &K1);
	assert_int_equal(b.n, total);
	lim_sb__free(&body);
	return b;
}

static void test_codec__rejects_oversized_change(void **state)
{
	(void)state;
	lim_change c;
	unsigned char hash[LIM_HASH_BYTES];
	/* Exactly the limit: parses and verifies. */
	bytes b = change_of_size(LIM_MAX_CHANGE_BYTES);
	assert_int_equal(lim_change__parse(&c, b.p, b.n), 0);
	lim_change__hash(hash, b.p, c.body_len);
	assert_int_equal(lim_change__verify(&c, hash), 0);
	lim_change__dispose(&c);
	free(b.p);
	/* One byte more, otherwise perfectly formed and signed: refused. */
	expect_malformed_bytes(change_of_size((size_t)LIM_MAX_CHANGE_BYTES + 1));
	/* And seal refuses to produce it. */
	lim_change_builder bld = { LIM_SB_INIT, 0 };
	lim_sb out = LIM_SB_INIT;
	char *fill = repeat("w", LIM_MAX_VALUE_BYTES, "");
	for (int i = 0; i < 4; i++) {
		lim_sb__printf(&bld.ops, " S c d p%d s", i);
		lim_sb__puts(&bld.ops, fill);
		bld.nops++;
	}
	lim__error_clear();
	assert_int_equal(lim_change__seal(&out, hash, &bld, K1.pk, K1.sk, 1, HLC, ZERO), LIM_EINVALID);
	assert_true(lim_error_last()[0] != '\0');
	/* A big buffer of junk is refused on its length alone. */
	size_t n = (size_t)LIM_MAX_CHANGE_BYTES + 1;
	bytes junk;
	junk.p = malloc(n);
	junk.n = n;
	memset(junk.p, 'a', n);
	expect_malformed_bytes(junk);
	free(fill);
	lim_sb__free(&out);
	lim_sb__free(&bld.ops);
}

static void test_codec__op_parse_alone(void **state)
{
	(void)state;
	lim_op op;
	static const char *const good[] = { "S c d p i1", "D c d p", "X c d", "N c d p -3", "A c d p n" };
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		bytes b = dup_bytes(good[i], strlen(good[i]));
		assert_int_equal(lim_op__parse(&op, b.p, b.n), 0);
		assert_int_equal(op.kind, good[i][0]);
		free(b.p);
	}
	static const char *const bad[] = { "S c d p i1 ", "X c d X c d", "X c d p", " X c d", "Q c d", "", "S c d p" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		bytes b = dup_bytes(bad[i], strlen(bad[i]));
		lim__error_clear();
		assert_int_equal(lim_op__parse(&op, b.p, b.n), LIM_EMALFORMED);
		assert_true(lim_error_last()[0] != '\0');
		free(b.p);
	}
}

static void test_codec__rejects_unknown_op_letter(void **state)
{
	(void)state;
	static const char *const ops[] = {
		"Q c d p i1", "s c d p i1", "x c d", "SS c d p i1", "1 c d", "% c d", "\xC3\xA9 c d",
		"%53 c d p i1", "E c d", "Z c d",
	};
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		expect_malformed(HDR1 "1 %s", K1.hex, ZHEX, ops[i]);
	/* Every single letter other than the six. */
	for (int ch = 0x21; ch < 0x7F; ch++) {
		if (strchr("SDXNAR", ch))
			continue;
		expect_malformed(HDR1 "1 %c c d p i1", K1.hex, ZHEX, ch);
	}
	/* A bad op after good ones. */
	expect_malformed(HDR1 "3 X c d S c d p i1 Q c d", K1.hex, ZHEX);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_codec__round_trip_every_op_kind),
		cmocka_unit_test(test_codec__round_trip_later_seq_with_prev),
		cmocka_unit_test(test_codec__seal_is_deterministic),
		cmocka_unit_test(test_codec__signature_verifies_only_for_its_author),
		cmocka_unit_test(test_codec__single_byte_corruption_never_authentic),
		cmocka_unit_test(test_codec__rejects_bad_format_tag),
		cmocka_unit_test(test_codec__rejects_bad_author),
		cmocka_unit_test(test_codec__rejects_bad_seq),
		cmocka_unit_test(test_codec__rejects_bad_hlc),
		cmocka_unit_test(test_codec__rejects_bad_prev),
		cmocka_unit_test(test_codec__rejects_bad_op_count),
		cmocka_unit_test(test_codec__rejects_missing_fields),
		cmocka_unit_test(test_codec__rejects_bad_spacing),
		cmocka_unit_test(test_codec__rejects_control_bytes_and_bad_utf8),
		cmocka_unit_test(test_codec__rejects_bad_names),
		cmocka_unit_test(test_codec__rejects_bad_values_and_deltas),
		cmocka_unit_test(test_codec__rejects_bad_set_remove_tags),
		cmocka_unit_test(test_codec__rejects_bad_signature),
		cmocka_unit_test(test_codec__rejects_oversized_change),
		cmocka_unit_test(test_codec__op_parse_alone),
		cmocka_unit_test(test_codec__rejects_unknown_op_letter),
	};
	return cmocka_run_group_tests(tests, group_setup, NULL);
}
