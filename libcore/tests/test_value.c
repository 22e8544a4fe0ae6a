/*
 * The text primitives (text.h) and scalar values (value.h) of the change
 * encoding: UTF-8 validation against the Unicode table of well-formed byte
 * sequences, the %XX token escape, hex, canonical decimals, JSON quoting and
 * float printing, and the canonical value tokens.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <sqlite3.h>
#include "text.h"
#include "value.h"

/* ------------------------------------------------------------ helpers */

/* Copy into an exact-size heap buffer so ASan sees any read past the end. */
static char *exact(const char *p, size_t n)
{
	char *c = malloc(n ? n : 1);
	assert_non_null(c);
	if (n)
		memcpy(c, p, n);
	return c;
}

static int utf8_valid(const char *p, size_t n)
{
	char *c = exact(p, n);
	int r = lim_utf8__valid(c, n);
	free(c);
	return r;
}

static int unescape(lim_sb *sb, const char *p, size_t n)
{
	char *c = exact(p, n);
	int r = lim_text__unescape(sb, c, n);
	free(c);
	return r;
}

static int decode(const char *tok, size_t n, lim_value *v, lim_sb *scratch)
{
	/* The scratch keeps the decoded payload; the token copy may go. */
	char *c = exact(tok, n);
	int r = lim_value__decode(c, n, v, scratch);
	free(c);
	return r;
}

#define DECODE_S(tok, v, sb) decode((tok), strlen(tok), (v), (sb))

static int parse_i64(const char *s, int64_t *out)
{
	char *c = exact(s, strlen(s));
	int r = lim_dec__parse_i64(c, strlen(s), out);
	free(c);
	return r;
}

static int parse_u64(const char *s, uint64_t *out)
{
	char *c = exact(s, strlen(s));
	int r = lim_dec__parse_u64(c, strlen(s), out);
	free(c);
	return r;
}

/* Reference: Unicode 15, table 3-7 (well-formed UTF-8 byte sequences). */
static int ref_utf8_valid(const unsigned char *p, size_t n)
{
	size_t i = 0;
	while (i < n) {
		unsigned c = p[i];
		unsigned lo = 0x80, hi = 0xBF;
		size_t len;
		if (c <= 0x7F) {
			i++;
			continue;
		} else if (c >= 0xC2 && c <= 0xDF) {
			len = 2;
		} else if (c >= 0xE0 && c <= 0xEF) {
			len = 3;
			if (c == 0xE0)
				lo = 0xA0;
			if (c == 0xED)
				hi = 0x9F;
		} else if (c >= 0xF0 && c <= 0xF4) {
			len = 4;
			if (c == 0xF0)
				lo = 0x90;
			if (c == 0xF4)
				hi = 0x8F;
		} else {
			return 0;
		}
		if (n - i < len)
			return 0;
		if (p[i + 1] < lo || p[i + 1] > hi)
			return 0;
		for (size_t k = 2; k < len; k++)
			if (p[i + k] < 0x80 || p[i + k] > 0xBF)
				return 0;
		i += len;
	}
	return 1;
}

static int must_escape(unsigned c)
{
	return c <= 0x20 || c == '%' || c == ',' || c == 0x7F;
}

/* ------------------------------------------------------------ UTF-8 */

static void test_value__utf8_valid_sequences(void **state)
{
	(void)state;
	static const char *const ok[] = {
		"", "abc", "\x7F", "\xC2\x80", "\xC3\xA9", "\xDF\xBF", "\xE0\xA0\x80",
		"\xE2\x82\xAC", "\xED\x9F\xBF", "\xEE\x80\x80", "\xEF\xBF\xBF",
		"\xF0\x90\x80\x80", "\xF0\x9F\x98\x80", "\xF4\x8F\xBF\xBF",
		"h\xC3\xA9llo w\xC3\xB6rld \xE2\x82\xAC \xF0\x9F\x98\x80!",
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		assert_int_equal(utf8_valid(ok[i], strlen(ok[i])), 1);
	/* An embedded NUL is a valid code point. */
	assert_int_equal(utf8_valid("a\0b", 3), 1);
}

static void test_value__utf8_rejects_invalid(void **state)
{
	(void)state;
	static const char *const bad[] = {
		/* overlongs */
		"\xC0\x80", "\xC0\xAF", "\xC1\xBF", "\xE0\x80\x80", "\xE0\x9F\xBF",
		"\xF0\x80\x80\x80", "\xF0\x8F\xBF\xBF",
		/* surrogates */
		"\xED\xA0\x80", "\xED\xAD\xBF", "\xED\xB0\x80", "\xED\xBF\xBF",
		"\xED\xA0\xBD\xED\xB8\x80", /* a CESU-8 pair */
		/* beyond U+10FFFF */
		"\xF4\x90\x80\x80", "\xF5\x80\x80\x80", "\xF7\xBF\xBF\xBF",
		"\xF8\x88\x80\x80\x80", "\xFC\x84\x80\x80\x80\x80", "\xFE", "\xFF",
		/* lone continuation bytes */
		"\x80", "\xBF", "a\x80z",
		/* truncated */
		"\xC3", "\xE2\x82", "\xF0\x9F\x98", "abc\xF0\x9F\x98", "\xE2",
		/* bad continuation */
		"\xC3\x28", "\xE2\x28\xA1", "\xE2\x82\x28", "\xF0\x9F\x28\x80", "\xF0\x9F\x98\xC0",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (utf8_valid(bad[i], strlen(bad[i])) != 0)
			print_error("accepted invalid UTF-8 case %zu\n", i);
		assert_int_equal(utf8_valid(bad[i], strlen(bad[i])), 0);
	}
	/* A valid prefix does not make the whole valid; the length is honoured. */
	assert_int_equal(utf8_valid("\xC3\xA9\xC3", 3), 0);
	assert_int_equal(lim_utf8__valid("\xC3\xA9\xC3", 2), 1);
}

/* Every sequence of 1, 2 and 3 bytes, and a broad sweep of 4-byte ones,
 * against the reference table. */
static void test_value__utf8_matches_reference_exhaustively(void **state)
{
	(void)state;
	unsigned char b[4];
	for (unsigned x = 0; x < 256; x++) {
		b[0] = (unsigned char)x;
		assert_int_equal(lim_utf8__valid((char *)b, 1), ref_utf8_valid(b, 1));
	}
	for (unsigned x = 0; x < 65536; x++) {
		b[0] = (unsigned char)(x >> 8);
		b[1] = (unsigned char)x;
		assert_int_equal(lim_utf8__valid((char *)b, 2), ref_utf8_valid(b, 2));
	}
	for (unsigned x = 0; x < (1u << 24); x++) {
		b[0] = (unsigned char)(x >> 16);
		b[1] = (unsigned char)(x >> 8);
		b[2] = (unsigned char)x;
		if (lim_utf8__valid((char *)b, 3) != ref_utf8_valid(b, 3)) {
			print_error("3-byte mismatch at %02x %02x %02x\n", b[0], b[1], b[2]);
			fail();
		}
	}
	static const unsigned char tails[] = { 0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0xA0, 0xBF, 0xC0, 0xFF };
	for (unsigned x = 0xE0; x < 0x100; x++)
		for (unsigned y = 0; y < 256; y++)
			for (size_t k = 0; k < sizeof(tails); k++)
				for (size_t m = 0; m < sizeof(tails); m++) {
					b[0] = (unsigned char)x;
					b[1] = (unsigned char)y;
					b[2] = tails[k];
					b[3] = tails[m];
					if (lim_utf8__valid((char *)b, 4) != ref_utf8_valid(b, 4)) {
						print_error("4-byte mismatch at %02x %02x %02x %02x\n", b[0], b[1], b[2], b[3]);
						fail();
					}
				}
}

/* ------------------------------------------------------------ escape */

static void test_value__escape_every_byte_round_trips(void **state)
{
	(void)state;
	lim_sb esc = LIM_SB_INIT, back = LIM_SB_INIT;
	for (unsigned c = 0; c < 256; c++) {
		char in[3] = { 'x', (char)c, 'y' };
		char want[6];
		size_t wn;
		lim_sb__clear(&esc);
		lim_sb__clear(&back);
		lim_text__escape(&esc, in, 3);
		assert_int_equal(lim_sb__check(&esc), 0);
		if (must_escape(c))
			wn = (size_t)snprintf(want, sizeof(want), "x%%%02Xy", c);
		else
			memcpy(want, in, 3), wn = 3;
		assert_int_equal(esc.len, wn);
		assert_memory_equal(esc.ptr, want, wn);
		assert_int_equal(unescape(&back, esc.ptr, esc.len), 0);
		assert_int_equal(back.len, 3);
		assert_memory_equal(back.ptr, in, 3);
	}
	/* All 256 bytes in one string, twice over. */
	char all[512];
	for (int i = 0; i < 512; i++)
		all[i] = (char)(i & 255);
	lim_sb__clear(&esc);
	lim_sb__clear(&back);
	lim_text__escape(&esc, all, sizeof(all));
	for (size_t i = 0; i < esc.len; i++) {
		unsigned char c = (unsigned char)esc.ptr[i];
		/* The only escapable byte left raw is the '%' that starts an escape. */
		assert_true(!must_escape(c) || c == '%');
	}
	assert_int_equal(unescape(&back, esc.ptr, esc.len), 0);
	assert_int_equal(back.len, sizeof(all));
	assert_memory_equal(back.ptr, all, sizeof(all));
	/* Empty in, empty out; a NULL pointer with length 0 is fine. */
	lim_sb__clear(&esc);
	lim_text__escape(&esc, "", 0);
	assert_int_equal(esc.len, 0);
	lim_sb__clear(&back);
	assert_int_equal(lim_text__unescape(&back, "", 0), 0);
	assert_int_equal(back.len, 0);
	/* Unescape appends to what the buffer already holds. */
	lim_sb__clear(&back);
	lim_sb__puts(&back, "pre:");
	assert_int_equal(unescape(&back, "a%20b", 5), 0);
	assert_string_equal(back.ptr, "pre:a b");
	lim_sb__free(&esc);
	lim_sb__free(&back);
}

static void test_value__unescape_rejects_non_canonical(void **state)
{
	(void)state;
	lim_sb sb = LIM_SB_INIT;
	static const char *const bad[] = {
		"%2c",      /* lowercase hex */
		"%2C%7f",   /* lowercase hex after a good escape */
		"%41",      /* 'A' need not be escaped */
		"%2E",      /* '.' need not be escaped */
		"%C3%A9",   /* non-ASCII bytes stand for themselves */
		"%80",
		"a b",      /* raw space */
		" ",
		"a,b",      /* raw comma */
		"a%b",      /* raw percent (not an escape) */
		"%",        /* truncated */
		"ab%",
		"%2",
		"ab%2",
		"%G0",      /* not hex */
		"%0G",
		"%-1",
		"%%20",
		"\x01",     /* raw control bytes */
		"a\tb",
		"a\nb",
		"\x7F",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		lim_sb__clear(&sb);
		if (unescape(&sb, bad[i], strlen(bad[i])) != -1)
			print_error("accepted non-canonical token \"%s\"\n", bad[i]);
		assert_int_equal(unescape(&sb, bad[i], strlen(bad[i])), -1);
	}
	/* A raw NUL inside the token. */
	lim_sb__clear(&sb);
	assert_int_equal(unescape(&sb, "a\0b", 3), -1);
	/* Every byte that must be escaped, in both hex cases. */
	for (unsigned c = 0; c < 256; c++) {
		char tok[4];
		snprintf(tok, sizeof(tok), "%%%02X", c);
		lim_sb__clear(&sb);
		assert_int_equal(unescape(&sb, tok, 3), must_escape(c) ? 0 : -1);
		if (must_escape(c)) {
			assert_int_equal(sb.len, 1);
			assert_int_equal((unsigned char)sb.ptr[0], c);
		}
		snprintf(tok, sizeof(tok), "%%%02x", c);
		lim_sb__clear(&sb);
		/* lowercase form: canonical only when it has no letters (0x00-0x09 etc.) */
		int has_letter = ((c >> 4) >= 10) || ((c & 15) >= 10);
		assert_int_equal(unescape(&sb, tok, 3), must_escape(c) && !has_letter ? 0 : -1);
	}
	/* Accepted forms. */
	lim_sb__clear(&sb);
	const char *ok = "caf\xC3\xA9%20%25%2C%7F%00.x";
	assert_int_equal(unescape(&sb, ok, strlen(ok)), 0);
	assert_int_equal(sb.len, 12);
	assert_memory_equal(sb.ptr, "caf\xC3\xA9 %,\x7F\0.x", 12);
	lim_sb__free(&sb);
}

/* ------------------------------------------------------------ hex */

static void test_value__hex_encode_decode(void **state)
{
	(void)state;
	unsigned char bin[256], back[256];
	char hex[513];
	for (int i = 0; i < 256; i++)
		bin[i] = (unsigned char)i;
	lim_hex__encode(hex, bin, 256);
	assert_int_equal(strlen(hex), 512);
	assert_memory_equal(hex, "000102030405060708090a0b0c0d0e0f10", 34);
	assert_string_equal(hex + 500, "fafbfcfdfeff");
	assert_int_equal(lim_hex__decode(back, 256, hex, 512), 0);
	assert_memory_equal(back, bin, 256);

	const unsigned char few[] = { 0x00, 0x01, 0xab, 0xff };
	lim_hex__encode(hex, few, 4);
	assert_string_equal(hex, "0001abff");
	lim_hex__encode(hex, few, 0);
	assert_string_equal(hex, "");
	assert_int_equal(lim_hex__decode(back, 0, "", 0), 0);

	/* Rejections: uppercase, non-hex, wrong length (short, long, odd). */
	assert_int_equal(lim_hex__decode(back, 2, "AB01", 4), -1);
	assert_int_equal(lim_hex__decode(back, 2, "aB01", 4), -1);
	assert_int_equal(lim_hex__decode(back, 2, "0g01", 4), -1);
	assert_int_equal(lim_hex__decode(back, 2, "01 2", 4), -1);
	assert_int_equal(lim_hex__decode(back, 2, "012", 3), -1);
	assert_int_equal(lim_hex__decode(back, 2, "01234", 5), -1);
	assert_int_equal(lim_hex__decode(back, 2, "012345", 6), -1);
	assert_int_equal(lim_hex__decode(back, 2, "", 0), -1);
	assert_int_equal(lim_hex__decode(back, 0, "00", 2), -1);
	/* Every single character: exactly 0-9 a-f are digits. */
	for (int c = 0; c < 256; c++) {
		char two[2] = { '0', (char)c };
		int ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
		assert_int_equal(lim_hex__decode(back, 1, two, 2), ok ? 0 : -1);
		if (ok)
			assert_int_equal(back[0], (c <= '9' ? c - '0' : c - 'a' + 10));
	}
}

/* ------------------------------------------------------------ decimal */

static void test_value__decimal_canonical_accepts(void **state)
{
	(void)state;
	int64_t v;
	uint64_t u;
	assert_int_equal(parse_i64("0", &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(parse_i64("-1", &v), 0);
	assert_int_equal(v, -1);
	assert_int_equal(parse_i64("7", &v), 0);
	assert_int_equal(v, 7);
	assert_int_equal(parse_i64("1234567890", &v), 0);
	assert_int_equal(v, 1234567890);
	assert_int_equal(parse_i64("9223372036854775807", &v), 0);
	assert_true(v == INT64_MAX);
	assert_int_equal(parse_i64("-9223372036854775808", &v), 0);
	assert_true(v == INT64_MIN);
	assert_int_equal(parse_i64("-9223372036854775807", &v), 0);
	assert_true(v == -INT64_MAX);
	assert_int_equal(parse_u64("0", &u), 0);
	assert_true(u == 0);
	assert_int_equal(parse_u64("18446744073709551615", &u), 0);
	assert_true(u == UINT64_MAX);
	assert_int_equal(parse_u64("10", &u), 0);
	assert_true(u == 10);
	/* Every printed int64 reads back. */
	int64_t samples[] = { 0, 1, -1, 9, 10, -10, 99, 100, INT64_MAX, INT64_MIN, INT64_MIN + 1,
	                      INT64_MAX - 1, 4294967296, -4294967296 };
	for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
		char buf[32];
		snprintf(buf, sizeof(buf), "%lld", (long long)samples[i]);
		assert_int_equal(parse_i64(buf, &v), 0);
		assert_true(v == samples[i]);
	}
}

static void test_value__decimal_rejects_non_canonical(void **state)
{
	(void)state;
	static const char *const bad_i[] = {
		"", "-", "+1", "+0", "01", "00", "-01", "-0", "-00", " 1", "1 ", "1a", "a1", "0x1",
		"1.0", "1e3", "--1", "9223372036854775808", "-9223372036854775809",
		"18446744073709551615", "18446744073709551616", "99999999999999999999",
		"999999999999999999999", "-99999999999999999999",
	};
	static const char *const bad_u[] = {
		"", "-1", "-0", "+1", "01", "00", " 1", "1 ", "1a", "18446744073709551616",
		"18446744073709551620", "99999999999999999999", "100000000000000000000", "000000000000000000001",
	};
	int64_t v = 12345;
	uint64_t u = 12345;
	for (size_t i = 0; i < sizeof(bad_i) / sizeof(bad_i[0]); i++) {
		if (parse_i64(bad_i[i], &v) != -1)
			print_error("i64 accepted \"%s\"\n", bad_i[i]);
		assert_int_equal(parse_i64(bad_i[i], &v), -1);
	}
	for (size_t i = 0; i < sizeof(bad_u) / sizeof(bad_u[0]); i++) {
		if (parse_u64(bad_u[i], &u) != -1)
			print_error("u64 accepted \"%s\"\n", bad_u[i]);
		assert_int_equal(parse_u64(bad_u[i], &u), -1);
	}
}

/* ------------------------------------------------------------ JSON */

/* Parse a JSON string literal back with SQLite's JSON parser. */
static char *sqlite_json_string(const char *json, size_t n, size_t *outlen)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	char *res = NULL;
	assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT json_valid(?1), json_extract(?1, '$')", -1, &st, NULL),
	                 SQLITE_OK);
	assert_int_equal(sqlite3_bind_text(st, 1, json, (int)n, SQLITE_TRANSIENT), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	if (sqlite3_column_int(st, 0) == 1 && sqlite3_column_type(st, 1) == SQLITE_TEXT) {
		*outlen = (size_t)sqlite3_column_bytes(st, 1);
		res = malloc(*outlen + 1);
		memcpy(res, sqlite3_column_text(st, 1), *outlen + 1);
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	return res;
}

static void test_value__json_quote(void **state)
{
	(void)state;
	lim_sb sb = LIM_SB_INIT;
	lim_json__quote(&sb, "", 0);
	assert_string_equal(sb.ptr, "\"\"");
	lim_sb__clear(&sb);
	lim_json__quote(&sb, "plain", 5);
	assert_string_equal(sb.ptr, "\"plain\"");
	lim_sb__clear(&sb);
	const char in[] = "q\"b\\s/n\nr\rt\tb\bf\fz\x01\x1f\x7f" "caf\xC3\xA9 \xF0\x9F\x98\x80";
	lim_json__quote(&sb, in, sizeof(in) - 1);
	assert_string_equal(sb.ptr, "\"q\\\"b\\\\s/n\\nr\\rt\\tb\\u0008f\\u000cz\\u0001\\u001f\\u007f"
	                            "caf\xC3\xA9 \xF0\x9F\x98\x80\"");
	lim_sb__clear(&sb);
	lim_json__quote(&sb, "a\0b", 3);
	assert_int_equal(sb.len, 10);
	assert_memory_equal(sb.ptr, "\"a\\u0000b\"", 10);
	/* No raw control byte is ever emitted. */
	char all[128];
	for (int i = 0; i < 128; i++)
		all[i] = (char)i;
	lim_sb__clear(&sb);
	lim_json__quote(&sb, all, sizeof(all));
	for (size_t i = 0; i < sb.len; i++)
		assert_true((unsigned char)sb.ptr[i] >= 0x20 && (unsigned char)sb.ptr[i] != 0x7F);
	/* And a JSON parser reads back exactly the input (bytes 1..127 plus
	 * non-ASCII; SQLite text stops at NUL so byte 0 is left out). */
	char mixed[200];
	size_t mn = 0;
	for (int i = 1; i < 128; i++)
		mixed[mn++] = (char)i;
	memcpy(mixed + mn, "\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80", 9);
	mn += 9;
	lim_sb__clear(&sb);
	lim_json__quote(&sb, mixed, mn);
	size_t bn = 0;
	char *back = sqlite_json_string(sb.ptr, sb.len, &bn);
	assert_non_null(back);
	assert_int_equal(bn, mn);
	assert_memory_equal(back, mixed, mn);
	free(back);
	lim_sb__free(&sb);
}

static int reads_back(const char *txt, double d)
{
	double back = strtod(txt, NULL);
	return memcmp(&back, &d, sizeof(d)) == 0;
}

/* RFC 8259 number: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
static int is_json_number(const char *p)
{
	if (*p == '-')
		p++;
	if (*p == '0')
		p++;
	else if (*p >= '1' && *p <= '9')
		while (*p >= '0' && *p <= '9')
			p++;
	else
		return 0;
	if (*p == '.') {
		p++;
		if (!(*p >= '0' && *p <= '9'))
			return 0;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	if (*p == 'e' || *p == 'E') {
		p++;
		if (*p == '+' || *p == '-')
			p++;
		if (!(*p >= '0' && *p <= '9'))
			return 0;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	return *p == '\0';
}

static void expect_double(double d, const char *want)
{
	lim_sb sb = LIM_SB_INIT;
	lim_json__double(&sb, d);
	assert_int_equal(lim_sb__check(&sb), 0);
	if (want)
		assert_string_equal(sb.ptr, want);
	/* A JSON number that reads back as exactly d (sign of zero included)
	 * and as a float (with a '.' or an exponent). */
	if (!is_json_number(sb.ptr))
		print_error("\"%s\" is not a JSON number\n", sb.ptr);
	assert_true(is_json_number(sb.ptr));
	assert_true(reads_back(sb.ptr, d));
	assert_non_null(strpbrk(sb.ptr, ".eE"));
	/* Significant digits: the mantissa's digits without leading or
	 * trailing zeros. */
	char mant[64];
	size_t nm = 0;
	for (const char *c = sb.ptr; *c && *c != 'e' && *c != 'E'; c++)
		if (*c >= '0' && *c <= '9' && nm < sizeof(mant))
			mant[nm++] = *c;
	size_t first = 0;
	while (first < nm && mant[first] == '0')
		first++;
	while (nm > first && mant[nm - 1] == '0')
		nm--;
	int digits = (int)(nm - first);
	if (digits > 17)
		print_error("%s has %d significant digits\n", sb.ptr, digits);
	assert_true(digits <= 17);
	/* The fewest: no decimal with fewer significant digits reads back. */
	for (int prec = 1; prec < digits; prec++) {
		char shorter[64];
		snprintf(shorter, sizeof(shorter), "%.*e", prec - 1, d);
		if (reads_back(shorter, d))
			print_error("%s printed, but %s (%d digits) reads back too\n", sb.ptr, shorter, prec);
		assert_false(reads_back(shorter, d));
	}
	lim_sb__free(&sb);
}

static void test_value__float_printing_round_trips(void **state)
{
	(void)state;
	expect_double(0.1, "0.1");
	expect_double(-0.0, "-0.0");
	expect_double(0.0, "0.0");
	expect_double(123.0, "123.0");
	expect_double(-1.5, "-1.5");
	expect_double(0.5, "0.5");
	expect_double(1e300, NULL);
	expect_double(-1e300, NULL);
	expect_double(5e-324, NULL); /* smallest subnormal */
	expect_double(DBL_MIN, NULL);
	expect_double(DBL_MAX, NULL);
	expect_double(-DBL_MAX, NULL);
	expect_double(2.2250738585072009e-308, NULL); /* largest subnormal */
	expect_double(1e15, NULL);
	expect_double(1e16, NULL);
	expect_double(1e17, NULL);
	expect_double(1e-5, NULL);
	expect_double(1e-7, NULL);
	expect_double(123456.0, NULL);
	expect_double(0.30000000000000004, NULL);
	expect_double(1.0 / 3.0, NULL);
	expect_double(9007199254740993.0, NULL);
	expect_double(4503599627370497.5, NULL);
	/* Random finite bit patterns. */
	uint64_t x = 0x9E3779B97F4A7C15ull;
	for (int i = 0; i < 20000; i++) {
		double d;
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		memcpy(&d, &x, 8);
		if (!isfinite(d))
			continue;
		expect_double(d, NULL);
	}
	/* Integer-valued doubles, short decimals, powers of ten. */
	for (int i = -1000; i <= 1000; i++) {
		expect_double((double)i, NULL);
		expect_double(i / 100.0, NULL);
	}
	for (int e = -320; e <= 308; e++) {
		char t[32];
		snprintf(t, sizeof(t), "1e%d", e);
		expect_double(strtod(t, NULL), NULL);
		snprintf(t, sizeof(t), "-7.25e%d", e);
		if (isfinite(strtod(t, NULL))) /* the input must be finite */
			expect_double(strtod(t, NULL), NULL);
	}
}

/* ------------------------------------------------------------ values */

static void expect_round_trip(lim_value v, const char *tok, size_t toklen)
{
	lim_sb enc = LIM_SB_INIT, scratch = LIM_SB_INIT, enc2 = LIM_SB_INIT;
	lim_value d;
	assert_int_equal(lim_value__check(&v), 0);
	lim_value__encode(&enc, &v);
	assert_int_equal(lim_sb__check(&enc), 0);
	assert_int_equal(enc.len, toklen);
	assert_memory_equal(enc.ptr, tok, toklen);
	assert_int_equal(decode(enc.ptr, enc.len, &d, &scratch), 0);
	assert_int_equal(d.type, v.type);
	switch (v.type) {
	case LIM_NULL:
		break;
	case LIM_BOOL:
		assert_int_equal(!!d.boolean, !!v.boolean);
		break;
	case LIM_INT:
		assert_true(d.integer == v.integer);
		break;
	case LIM_FLOAT:
		assert_memory_equal(&d.real, &v.real, 8);
		break;
	case LIM_STRING:
	case LIM_BYTES:
		assert_int_equal(d.len, v.len);
		assert_non_null(d.str);
		if (v.len)
			assert_memory_equal(d.str, v.str, v.len);
		assert_int_equal(d.str[d.len], '\0');
		break;
	}
	assert_int_equal(lim_value__check(&d), 0);
	lim_value__encode(&enc2, &d);
	assert_int_equal(enc2.len, enc.len);
	assert_memory_equal(enc2.ptr, enc.ptr, enc.len);
	lim_sb__free(&enc);
	lim_sb__free(&enc2);
	lim_sb__free(&scratch);
}

#define RT(v, tok) expect_round_trip((v), (tok), sizeof(tok) - 1)

static lim_value mk(lim_type t)
{
	lim_value v;
	memset(&v, 0, sizeof(v));
	v.type = t;
	return v;
}

static void test_value__round_trip_every_type(void **state)
{
	(void)state;
	lim_value v;
	RT(mk(LIM_NULL), "n");
	v = mk(LIM_BOOL);
	v.boolean = 1;
	RT(v, "t");
	v.boolean = 0;
	RT(v, "f");
	v = mk(LIM_INT);
	v.integer = 0;
	RT(v, "i0");
	v.integer = -1;
	RT(v, "i-1");
	v.integer = 42;
	RT(v, "i42");
	v.integer = INT64_MIN;
	RT(v, "i-9223372036854775808");
	v.integer = INT64_MAX;
	RT(v, "i9223372036854775807");
	v = mk(LIM_FLOAT);
	v.real = 1.5;
	RT(v, "d3ff8000000000000");
	v.real = 0.0;
	RT(v, "d0000000000000000");
	v.real = -0.0;
	RT(v, "d8000000000000000");
	v.real = 5e-324;
	RT(v, "d0000000000000001");
	v.real = -DBL_MAX;
	RT(v, "dffefffffffffffff");
	v = mk(LIM_STRING);
	v.str = "";
	v.len = 0;
	RT(v, "s");
	v.str = "hello world";
	v.len = 11;
	RT(v, "shello%20world");
	v.str = "a,b%c\td\x7F" "caf\xC3\xA9";
	v.len = strlen(v.str);
	RT(v, "sa%2Cb%25c%09d%7Fcaf\xC3\xA9");
	v.str = "nul\0in";
	v.len = 6;
	RT(v, "snul%00in");
	v = mk(LIM_BYTES);
	v.str = "";
	v.len = 0;
	RT(v, "b");
	v.str = "\0\x01\xff\0";
	v.len = 4;
	RT(v, "b0001ff00");
	v.str = "\xC3"; /* bytes need not be UTF-8 */
	v.len = 1;
	RT(v, "bc3");
}

static void test_value__round_trip_empty_with_null_pointer(void **state)
{
	(void)state;
	lim_value v = mk(LIM_STRING);
	v.str = NULL;
	v.len = 0;
	RT(v, "s");
	v.type = LIM_BYTES;
	RT(v, "b");
}

static void test_value__round_trip_large_payloads(void **state)
{
	(void)state;
	size_t n = LIM_MAX_VALUE_BYTES;
	char *big = malloc(n);
	lim_sb enc = LIM_SB_INIT, scratch = LIM_SB_INIT;
	lim_value v = mk(LIM_BYTES), d;
	for (size_t i = 0; i < n; i++)
		big[i] = (char)(i * 7);
	v.str = big;
	v.len = n;
	assert_int_equal(lim_value__check(&v), 0);
	lim_value__encode(&enc, &v);
	assert_int_equal(enc.len, 1 + 2 * n);
	assert_int_equal(decode(enc.ptr, enc.len, &d, &scratch), 0);
	assert_int_equal(d.len, n);
	assert_memory_equal(d.str, big, n);
	/* A string at the limit, every byte escaped: 3 token bytes per byte. */
	memset(big, ' ', n);
	v.type = LIM_STRING;
	lim_sb__clear(&enc);
	lim_value__encode(&enc, &v);
	assert_int_equal(enc.len, 1 + 3 * n);
	assert_int_equal(decode(enc.ptr, enc.len, &d, &scratch), 0);
	assert_int_equal(d.len, n);
	assert_memory_equal(d.str, big, n);
	free(big);
	lim_sb__free(&enc);
	lim_sb__free(&scratch);
}

static void expect_check_fails(lim_value v)
{
	lim__error_clear();
	assert_int_equal(lim_value__check(&v), LIM_EINVALID);
	assert_int_equal(lim_error_last_code(), LIM_EINVALID);
	assert_true(lim_error_last()[0] != '\0');
}

static void test_value__check_rejects(void **state)
{
	(void)state;
	lim_value v = mk(LIM_FLOAT);
	v.real = NAN;
	expect_check_fails(v);
	v.real = -NAN;
	expect_check_fails(v);
	v.real = INFINITY;
	expect_check_fails(v);
	v.real = -INFINITY;
	expect_check_fails(v);

	static const char *const bad_utf8[] = { "\xC3", "\xC0\x80", "\xED\xA0\x80", "\xF4\x90\x80\x80", "ok\xFF" };
	for (size_t i = 0; i < sizeof(bad_utf8) / sizeof(bad_utf8[0]); i++) {
		v = mk(LIM_STRING);
		v.str = bad_utf8[i];
		v.len = strlen(bad_utf8[i]);
		expect_check_fails(v);
		v.type = LIM_BYTES; /* the same bytes are fine as bytes */
		assert_int_equal(lim_value__check(&v), 0);
	}

	size_t n = (size_t)LIM_MAX_VALUE_BYTES + 1;
	char *big = malloc(n);
	memset(big, 'a', n);
	v = mk(LIM_STRING);
	v.str = big;
	v.len = n;
	expect_check_fails(v);
	v.type = LIM_BYTES;
	expect_check_fails(v);
	v.len = n - 1; /* exactly the limit is fine */
	assert_int_equal(lim_value__check(&v), 0);
	v.type = LIM_STRING;
	assert_int_equal(lim_value__check(&v), 0);
	free(big);

	/* A length without data. */
	v = mk(LIM_STRING);
	v.str = NULL;
	v.len = 3;
	expect_check_fails(v);
	v.type = LIM_BYTES;
	expect_check_fails(v);

	/* Unknown types. */
	v = mk((lim_type)6);
	expect_check_fails(v);
	v = mk((lim_type)-1);
	expect_check_fails(v);
	v = mk((lim_type)0x7FFFFFFF);
	expect_check_fails(v);

	lim__error_clear();
	assert_int_equal(lim_value__check(NULL), LIM_EINVALID);
	assert_true(lim_error_last()[0] != '\0');
}

static void test_value__decode_rejects_non_canonical(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"", "x", "X", "N", "S", "nn", "n0", "tt", "t1", "ff", "f0", "true",
		"i", "i-", "i01", "i00", "i-0", "i+1", "i 1", "i1 ", "i1.0", "i9223372036854775808",
		"i-9223372036854775809", "i0x10",
		"d", "d3FF8000000000000", "d3ff800000000000", "d3ff80000000000000", "d3ff800000000000g",
		"d7ff8000000000000", "dfff8000000000000", "d7ff0000000000001", "d7ff0000000000000",
		"dfff0000000000000", "d7fffffffffffffff", "dffffffffffffffff",
		"b0", "b000", "bAB", "bAb", "b0g", "b 0",
		"s%2c", "s%41", "sa b", "s,", "s%", "s%2", "sa\tb", "s\x7F", "s\xC3", "s\xC0\x80",
		"s\xED\xA0\x80",
	};
	lim_sb scratch = LIM_SB_INIT;
	lim_value v;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (DECODE_S(bad[i], &v, &scratch) != -1)
			print_error("decode accepted \"%s\"\n", bad[i]);
		assert_int_equal(DECODE_S(bad[i], &v, &scratch), -1);
	}
	/* A NUL inside a token. */
	assert_int_equal(decode("i1\0", 3, &v, &scratch), -1);
	assert_int_equal(decode("s\0", 2, &v, &scratch), -1);
	assert_int_equal(decode("n\0", 2, &v, &scratch), -1);

	/* Payloads one byte over the limit. */
	size_t n = (size_t)LIM_MAX_VALUE_BYTES + 1;
	char *tok = malloc(1 + 2 * n);
	tok[0] = 's';
	memset(tok + 1, 'a', n);
	assert_int_equal(decode(tok, 1 + n, &v, &scratch), -1);
	assert_int_equal(decode(tok, n, &v, &scratch), 0); /* at the limit */
	assert_int_equal(v.len, n - 1);
	tok[0] = 'b';
	memset(tok + 1, '0', 2 * n);
	assert_int_equal(decode(tok, 1 + 2 * n, &v, &scratch), -1);
	assert_int_equal(decode(tok, 1 + 2 * (n - 1), &v, &scratch), 0);
	assert_int_equal(v.len, n - 1);
	free(tok);

	/* Escapes of a value token: every escapable byte decodes, others fail. */
	for (unsigned c = 0; c < 256; c++) {
		char t[5];
		snprintf(t, sizeof(t), "s%%%02X", c);
		int want = must_escape(c) ? 0 : -1;
		assert_int_equal(decode(t, 4, &v, &scratch), want);
	}
	lim_sb__free(&scratch);
}

static void test_value__decode_reuses_scratch(void **state)
{
	(void)state;
	lim_sb scratch = LIM_SB_INIT;
	lim_value v;
	assert_int_equal(DECODE_S("slong%20string%20value", &v, &scratch), 0);
	assert_int_equal(v.len, 17);
	assert_int_equal(DECODE_S("sab", &v, &scratch), 0);
	assert_int_equal(v.len, 2);
	assert_string_equal(v.str, "ab");
	assert_int_equal(DECODE_S("b6162", &v, &scratch), 0);
	assert_int_equal(v.type, LIM_BYTES);
	assert_int_equal(v.len, 2);
	assert_memory_equal(v.str, "ab", 2);
	/* Scalars clear the scratch and set no payload. */
	assert_int_equal(DECODE_S("i5", &v, &scratch), 0);
	assert_int_equal(scratch.len, 0);
	assert_null(v.str);
	assert_int_equal(v.len, 0);
	lim_sb__free(&scratch);
}

static void expect_json(const char *tok, const char *want)
{
	lim_sb sb = LIM_SB_INIT;
	char *c = exact(tok, strlen(tok));
	lim_sb__puts(&sb, "[");
	int rc = lim_value__token_to_json(&sb, c, strlen(tok));
	if (rc != 0)
		print_error("token_to_json(\"%s\") = %d\n", tok, rc);
	assert_int_equal(rc, 0);
	free(c);
	assert_int_equal(lim_sb__check(&sb), 0);
	assert_string_equal(sb.ptr + 1, want);
	/* The output is JSON. */
	lim_sb__puts(&sb, "]");
	sqlite3 *db;
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT json_valid(?1)", -1, &st, NULL), SQLITE_OK);
	sqlite3_bind_text(st, 1, sb.ptr, (int)sb.len, SQLITE_STATIC);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(st, 0), 1);
	sqlite3_finalize(st);
	sqlite3_close(db);
	lim_sb__free(&sb);
}

static void test_value__token_to_json(void **state)
{
	(void)state;
	expect_json("n", "null");
	expect_json("t", "true");
	expect_json("f", "false");
	expect_json("i0", "0");
	expect_json("i-42", "-42");
	expect_json("i-9223372036854775808", "-9223372036854775808");
	expect_json("i9223372036854775807", "9223372036854775807");
	expect_json("d3ff8000000000000", "1.5");
	expect_json("d8000000000000000", "-0.0");
	expect_json("d405ec00000000000", "123.0");
	expect_json("d3fb999999999999a", "0.1");
	expect_json("s", "\"\"");
	expect_json("shello%20\"w\"", "\"hello \\\"w\\\"\"");
	expect_json("sa%0Ab%09c\\d%00caf\xC3\xA9", "\"a\\nb\\tc\\\\d\\u0000caf\xC3\xA9\"");
	expect_json("b", "{\"$base64\":\"\"}");
	expect_json("b66", "{\"$base64\":\"Zg==\"}");
	expect_json("b666f", "{\"$base64\":\"Zm8=\"}");
	expect_json("b666f6f", "{\"$base64\":\"Zm9v\"}");
	expect_json("b00fffe3e3f", "{\"$base64\":\"AP/+Pj8=\"}");

	/* Invalid tokens fail; nothing is appended. */
	static const char *const bad[] = { "", "x", "i01", "d7ff8000000000000", "b0", "s%2c", "nn" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		lim_sb sb = LIM_SB_INIT;
		lim_sb__puts(&sb, "keep");
		char *c = exact(bad[i], strlen(bad[i]));
		assert_int_equal(lim_value__token_to_json(&sb, c, strlen(bad[i])), -1);
		free(c);
		assert_string_equal(sb.ptr, "keep");
		lim_sb__free(&sb);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_value__utf8_valid_sequences),
		cmocka_unit_test(test_value__utf8_rejects_invalid),
		cmocka_unit_test(test_value__utf8_matches_reference_exhaustively),
		cmocka_unit_test(test_value__escape_every_byte_round_trips),
		cmocka_unit_test(test_value__unescape_rejects_non_canonical),
		cmocka_unit_test(test_value__hex_encode_decode),
		cmocka_unit_test(test_value__decimal_canonical_accepts),
		cmocka_unit_test(test_value__decimal_rejects_non_canonical),
		cmocka_unit_test(test_value__json_quote),
		cmocka_unit_test(test_value__float_printing_round_trips),
		cmocka_unit_test(test_value__round_trip_every_type),
		cmocka_unit_test(test_value__round_trip_empty_with_null_pointer),
		cmocka_unit_test(test_value__round_trip_large_payloads),
		cmocka_unit_test(test_value__check_rejects),
		cmocka_unit_test(test_value__decode_rejects_non_canonical),
		cmocka_unit_test(test_value__decode_reuses_scratch),
		cmocka_unit_test(test_value__token_to_json),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
