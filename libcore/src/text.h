/*
 * Text primitives of the change encoding and of JSON output: UTF-8
 * validation, the token escape (%XX), lowercase hex, canonical decimal
 * integers, JSON string quoting and shortest round-trip float printing.
 * Pure functions over byte ranges; no allocation except into a lim_sb.
 */
#ifndef LIM_TEXT_H
#define LIM_TEXT_H

#include "common.h"

/* 1 if [p, p+n) is well-formed UTF-8 (no overlongs, no surrogates), else 0. */
int lim_utf8__valid(const char *p, size_t n);

/* Token escape: bytes 0x00-0x20, '%', ',' and 0x7F become %XX (uppercase
 * hex); every other byte stands for itself. Exactly one encoding per string. */
void lim_text__escape(lim_sb *sb, const char *p, size_t n);
/* Decode an escaped token into sb. Returns 0, or -1 if the token is not in
 * canonical escaped form (a byte that must be escaped, lowercase hex, a
 * needless escape, a truncated %). */
int lim_text__unescape(lim_sb *sb, const char *p, size_t n);

void lim_hex__encode(char *out, const unsigned char *bin, size_t n); /* writes 2n chars + NUL */
/* Decode exactly 2n lowercase hex chars; -1 on any other input. */
int lim_hex__decode(unsigned char *out, size_t n, const char *hex, size_t hexlen);

/* Canonical decimal: optional '-', no leading zeros, no "-0". */
int lim_dec__parse_i64(const char *p, size_t n, int64_t *out);
int lim_dec__parse_u64(const char *p, size_t n, uint64_t *out);

/* JSON string literal with quotes; input must be valid UTF-8. */
void lim_json__quote(lim_sb *sb, const char *p, size_t n);
/* The fewest significant digits that read back as exactly `d` (finite),
 * '.' as the decimal point whatever the locale, always with a '.' so it
 * reads back as a float: plain notation for exponents -5..16
 * ("-150.0", "0.001", "3.14"), else "d.ddde<exp>" ("1.0e17", "5.0e-324"). */
void lim_json__double(lim_sb *sb, double d);

#endif
