/*
 * fuzz_change: the change decoder (change.c): lim_change__parse, then the
 * hash and the signature check, then every decoder that later layers run
 * on a parsed change's fields (value tokens, set tags, escaped names), and
 * the single-op parser that local writes use (lim_op__parse).
 *
 * Input: the bytes of one change line (no LF). Checks beyond "no crash":
 *   - an accepted change is canonical: it is the body, one space and 128
 *     hex digits of signature; its op spans lie inside the body, in order;
 *   - each accepted op's name tokens unescape and its value token decodes
 *     and renders as JSON; each tag of a set remove parses;
 *   - the hash is a pure function of the body (hashing twice agrees).
 */
#include "fuzz_common.h"
#include "change.h"
#include "value.h"

static void change_check_span(const lim_change *c, const lim_span *s, const char *what)
{
	if (!s->n)
		return;
	FUZZ_CHECK(s->p >= c->bytes && s->p + s->n <= c->bytes + c->body_len, "%s span outside the body", what);
}

static void change_check_op(const lim_change *c, const lim_op *op, lim_sb *scratch)
{
	lim_value v;
	change_check_span(c, &op->coll, "collection");
	change_check_span(c, &op->doc, "document");
	change_check_span(c, &op->path, "path");
	change_check_span(c, &op->value, "value");
	change_check_span(c, &op->tags, "tags");
	lim_sb__clear(scratch);
	FUZZ_CHECK(lim_text__unescape(scratch, op->coll.p, op->coll.n) == 0, "collection does not unescape");
	lim_sb__clear(scratch);
	FUZZ_CHECK(lim_text__unescape(scratch, op->doc.p, op->doc.n) == 0, "document does not unescape");
	if (op->path.n) {
		lim_sb__clear(scratch);
		FUZZ_CHECK(lim_text__unescape(scratch, op->path.p, op->path.n) == 0, "path does not unescape");
	}
	if (op->value.n) {
		FUZZ_CHECK(lim_value__decode(op->value.p, op->value.n, &v, scratch) == 0, "value does not decode");
		lim_sb__clear(scratch);
		FUZZ_CHECK(lim_value__token_to_json(scratch, op->value.p, op->value.n) == 0, "value has no JSON form");
	}
	if (op->kind == LIM_OP_SREM) {
		lim_span rest = op->tags, tag;
		unsigned char t[LIM_TAG_BYTES];
		size_t n = 0;
		while (lim_tags__next(&rest, &tag)) {
			FUZZ_CHECK(tag.n != (size_t)-1 && lim_tag__parse(t, tag.p, tag.n) == 0, "accepted tag does not parse");
			n++;
		}
		FUZZ_CHECK(n > 0, "set remove without tags");
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *bytes = (const char *)data;
	lim_change c;
	lim_op op;
	unsigned char h1[LIM_HASH_BYTES], h2[LIM_HASH_BYTES];
	lim_sb scratch = LIM_SB_INIT;

	fuzz_begin();
	/* The single-op parser on the same bytes (local writes build op text
	 * and parse it back through this). */
	(void)lim_op__parse(&op, bytes, size);

	if (lim_change__parse(&c, bytes, size) < 0) {
		FUZZ_CHECK(c.ops == NULL && c.nops == 0, "a refused change kept its op array");
		return 0;
	}
	FUZZ_CHECK(c.bytes == bytes && c.len == size, "change does not borrow the input");
	FUZZ_CHECK(c.body_len + 1 + 2 * LIM_SIG_BYTES == size && bytes[c.body_len] == ' ',
	           "body %zu + signature != %zu", c.body_len, size);
	FUZZ_CHECK(c.seq >= 1 && c.seq <= INT64_MAX && c.hlc != 0, "seq/hlc out of range");
	FUZZ_CHECK(c.nops >= 1 && c.nops <= LIM_MAX_OPS_PER_CHANGE, "op count %zu", c.nops);
	for (size_t i = 0; i < c.nops; i++) {
		change_check_op(&c, &c.ops[i], &scratch);
		if (i)
			FUZZ_CHECK(c.ops[i].coll.p > c.ops[i - 1].coll.p, "ops out of order");
	}
	lim_change__hash(h1, c.bytes, c.body_len);
	lim_change__hash(h2, c.bytes, c.body_len);
	FUZZ_CHECK(memcmp(h1, h2, sizeof(h1)) == 0, "hash is not deterministic");
	fuzz_ignore(lim_change__verify(&c, h1));
	lim_change__dispose(&c);
	lim_sb__free(&scratch);
	return 0;
}
