/*
 * The change: one local transaction's ops plus author, seq, HLC and the hash
 * of the author's previous change, signed by the author. Its encoding is a
 * single line of text (protocol-spec/changes.md):
 *
 *   lim1 <author> <seq> <hlc> <prev> <nops> <op>... <signature>
 *
 * The "body" is everything before the last space. hash = BLAKE2b-256 of
 * "liblim change v1\0" || body; the signature is Ed25519 over
 * "liblim signature v1\0" || hash. The parser accepts only canonical bytes,
 * so a change has exactly one encoding and is never re-encoded.
 *
 * The hash is the change's identity; its *link*, BLAKE2b-256 of
 * "liblim link v1\0" || hash || signature, is what the author's next change
 * names as prev. Because the link covers the signature bytes too, the one
 * signature a receiver verifies at the end of a run of an author's changes
 * authenticates every byte of the run (PROTOCOL.md 9.4).
 */
#ifndef LIM_CHANGE_H
#define LIM_CHANGE_H

#include "common.h"

#define LIM_SIG_BYTES 64
#define LIM_SECRET_KEY_BYTES 64
#define LIM_STAMP_BYTES 52 /* hlc(8) author(32) seq(8) opidx(4), big-endian */
#define LIM_TAG_BYTES 44   /* author(32) seq(8) opidx(4) */

typedef struct {
	const char *p;
	size_t n;
} lim_span;

typedef enum {
	LIM_OP_SET = 'S',     /* S coll doc path value */
	LIM_OP_DEL = 'D',     /* D coll doc path        (field and everything below) */
	LIM_OP_DELDOC = 'X',  /* X coll doc */
	LIM_OP_INCR = 'N',    /* N coll doc path delta */
	LIM_OP_SADD = 'A',    /* A coll doc path value */
	LIM_OP_SREM = 'R'     /* R coll doc path value tag[,tag...] */
} lim_op_kind;

typedef struct {
	lim_op_kind kind;
	lim_span coll, doc, path, value, tags; /* escaped, as in the bytes */
	int64_t delta;
} lim_op;

typedef struct {
	const char *bytes;
	size_t len;
	size_t body_len;
	unsigned char author[LIM_ID_BYTES];
	uint64_t seq;
	uint64_t hlc;
	unsigned char prev[LIM_HASH_BYTES];
	unsigned char sig[LIM_SIG_BYTES];
	size_t nops;
	lim_op *ops;
} lim_change;

/* Parse and fully validate the form of a change (not its signature or
 * chain). The change borrows `bytes`. LIM_EMALFORMED names the problem. */
int lim_change__parse(lim_change *c, const char *bytes, size_t len);
void lim_change__dispose(lim_change *c);
/* The author and seq of a change, read straight from its first fields
 * without parsing the rest (finding runs, raising a view of a peer); 0, or
 * -1 if those fields are not there. It says nothing of the change's
 * validity: lim_change__parse does. */
int lim_change__peek(const char *bytes, size_t len, unsigned char author[LIM_ID_BYTES], uint64_t *seq);
/* Parse one op's text (as it appears in a change, without the leading
 * space). Local writes use this so they take the same path as remote ops. */
int lim_op__parse(lim_op *op, const char *p, size_t n);

void lim_change__hash(unsigned char out[LIM_HASH_BYTES], const char *body, size_t len);
/* The link of a change from its hash and its signature (raw bytes). */
void lim_change__link(unsigned char out[LIM_HASH_BYTES], const unsigned char hash[LIM_HASH_BYTES],
                      const unsigned char sig[LIM_SIG_BYTES]);
/* 0 if the signature over the change's hash verifies for its author. */
__attribute__((warn_unused_result))
int lim_change__verify(const lim_change *c, const unsigned char hash[LIM_HASH_BYTES]);

/* Check a collection / document name / field path from outside. */
int lim_name__check_coll(const char *p, size_t n);
int lim_name__check_doc(const char *p, size_t n);
int lim_name__check_path(const char *p, size_t n);

/* Build the ops of a change; then lim_change__seal prints header, ops and
 * signature into `out` and returns the change hash. `prev` is the link of
 * the author's previous change (zeros for seq 1); lim_change__sealed_link
 * gives the link of what was just sealed. */
typedef struct {
	lim_sb ops;
	size_t nops;
} lim_change_builder;

void lim_cb__name(lim_change_builder *b, const char *s);
void lim_cb__begin_op(lim_change_builder *b, lim_op_kind kind, const char *coll, const char *doc);
void lim_cb__tag(lim_sb *sb, const unsigned char tag[LIM_TAG_BYTES]);
int lim_change__seal(lim_sb *out, unsigned char hash_out[LIM_HASH_BYTES],
                     const lim_change_builder *b, const unsigned char author[LIM_ID_BYTES],
                     const unsigned char secret[LIM_SECRET_KEY_BYTES], uint64_t seq,
                     uint64_t hlc, const unsigned char prev[LIM_HASH_BYTES]);
void lim_change__sealed_link(unsigned char out[LIM_HASH_BYTES], const unsigned char hash[LIM_HASH_BYTES],
                             const lim_sb *sealed);

/* Parse one tag ("<author hex>.<seq>.<opidx>") into its 44-byte form. */
int lim_tag__parse(unsigned char out[LIM_TAG_BYTES], const char *p, size_t n);
/* Iterate the comma-separated tags of an op: returns 1 and advances, 0 at end. */
int lim_tags__next(lim_span *rest, lim_span *tag);

void lim_stamp__make(unsigned char out[LIM_STAMP_BYTES], uint64_t hlc,
                     const unsigned char author[LIM_ID_BYTES], uint64_t seq, uint32_t opidx);
void lim_tag__make(unsigned char out[LIM_TAG_BYTES], const unsigned char author[LIM_ID_BYTES],
                   uint64_t seq, uint32_t opidx);

#endif
