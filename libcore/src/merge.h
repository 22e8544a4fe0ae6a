/*
 * Merge rules: turning ops into the materialized state that reads hit.
 * Every function here is order-independent by construction: the state after
 * applying a set of ops is the same whatever order they came in, and that
 * includes the bookkeeping tables (verified by lim_merge__digest(internal)).
 *
 * Per field path p, with stamps ordered as (hlc, author, seq, op index):
 *   cover(p) = greatest delete covering p (a delete of p, of an ancestor of
 *              p, or of the whole document)
 *   reg      = the greatest register set at p, if newer than cover(p)
 *   base(p)  = max(cover(p), reg): counter deltas and set adds at or below
 *              it no longer count (a set or a delete resets them)
 *   visible  = whichever of register, counter and set has the newest op
 *              above base; a counter is the sum of its deltas above base;
 *              a set holds elements with an add-tag above base that no
 *              remove named.
 */
#ifndef LIM_MERGE_H
#define LIM_MERGE_H

#include "change.h"
#include "store.h"

typedef struct {
	lim_store *st;
	lim_sb coll, doc, path, val, json, tmp;
} lim_merge;

#define LIM_KIND_NONE 0

void lim_merge__init(lim_merge *m, lim_store *st);
void lim_merge__dispose(lim_merge *m);

/* Apply op number `opidx` of change (author, seq) stamped `hlc`. */
int lim_merge__apply(lim_merge *m, const lim_op *op, uint64_t hlc,
                     const unsigned char author[LIM_ID_BYTES], uint64_t seq, uint32_t opidx);

/* 1 if a live field exists strictly below `path`, 0 if not, <0 on error. */
int lim_merge__live_below(lim_merge *m, const char *coll, const char *doc, const char *path);
/* The visible kind at exactly `path` (LIM_KIND_NONE if none), or <0. */
int lim_merge__kind_at(lim_merge *m, const char *coll, const char *doc, const char *path);
/* Append the tags of the live adds of `elem_token` as a canonical tag list;
 * returns the number of tags (0: the element is absent). */
int lim_merge__observed_tags(lim_merge *m, const char *coll, const char *doc, const char *path,
                             const char *elem_token, size_t elem_len, lim_sb *out);

/* The document (path NULL) or the field/subtree at `path` as JSON. */
int lim_merge__render(lim_merge *m, const char *coll, const char *doc, const char *path, lim_sb *out);

/* BLAKE2b-256 of the visible state (internal = 0) or of every materialized
 * table (internal = 1, what verify compares against a rebuild). */
int lim_merge__digest(lim_store *st, int internal, unsigned char out[LIM_HASH_BYTES]);
/* Empty every materialized table (before a rebuild from the log). */
int lim_merge__reset(lim_store *st);

#endif
