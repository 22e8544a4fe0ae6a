/*
 * Scalar values and their canonical token in the change encoding:
 *   n | t | f | i<decimal> | d<16 hex: IEEE-754 bits> | s<escaped UTF-8> | b<hex>
 * A token is never empty (the type letter), so tokens split on spaces.
 */
#ifndef LIM_VALUE_H
#define LIM_VALUE_H

#include "common.h"

/* Check a caller's value (type, UTF-8, finite float, size limit). */
int lim_value__check(const lim_value *v);
/* Append the canonical token of a checked value. */
void lim_value__encode(lim_sb *sb, const lim_value *v);
/* Parse a token. String and bytes payloads are decoded into `scratch`
 * (which must stay alive while `out` is used; it is cleared first).
 * Returns 0 or -1 if the token is not canonical. */
int lim_value__decode(const char *tok, size_t n, lim_value *out, lim_sb *scratch);
/* Append the JSON form of a token (bytes as {"$base64":"..."}); -1 if invalid. */
int lim_value__token_to_json(lim_sb *sb, const char *tok, size_t n);

#endif
