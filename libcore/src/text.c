/*
 * See text.h. Everything here decides canonical form: a change's bytes are
 * hashed and signed, so each parser accepts exactly the form its printer
 * produces and nothing else.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include "text.h"

int lim_utf8__valid(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;
	while (i < n) {
		unsigned c = p[i];
		size_t len;
		uint32_t cp;
		if (c < 0x80) {
			i++;
			continue;
		} else if ((c & 0xE0) == 0xC0) {
			len = 2;
			cp = c & 0x1F;
		} else if ((c & 0xF0) == 0xE0) {
			len = 3;
			cp = c & 0x0F;
		} else if ((c & 0xF8) == 0xF0) {
			len = 4;
			cp = c & 0x07;
		} else {
			return 0;
		}
		if (n - i < len)
			return 0;
		for (size_t k = 1; k < len; k++) {
			if ((p[i + k] & 0xC0) != 0x80)
				return 0;
			cp = (cp << 6) | (p[i + k] & 0x3F);
		}
		if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000))
			return 0;
		if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
			return 0;
		i += len;
	}
	return 1;
}

static const char HEXU[] = "0123456789ABCDEF";
static const char HEXL[] = "0123456789abcdef";

static int must_escape(unsigned char c)
{
	return c <= 0x20 || c == '%' || c == ',' || c == 0x7F;
}

void lim_text__escape(lim_sb *sb, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t run = 0;
	if (lim_sb__grow(sb, n) < 0)
		return;
	for (size_t i = 0; i < n; i++) {
		if (!must_escape(p[i]))
			continue;
		lim_sb__put(sb, s + run, i - run);
		char e[3] = { '%', HEXU[p[i] >> 4], HEXU[p[i] & 15] };
		lim_sb__put(sb, e, 3);
		run = i + 1;
	}
	lim_sb__put(sb, s + run, n - run);
}

static int hexval_upper(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int lim_text__unescape(lim_sb *sb, const char *s, size_t n)
{
	size_t run = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '%') {
			int hi, lo;
			if (n - i < 3)
				return -1;
			hi = hexval_upper(s[i + 1]);
			lo = hexval_upper(s[i + 2]);
			if (hi < 0 || lo < 0)
				return -1;
			unsigned char b = (unsigned char)(hi << 4 | lo);
			if (!must_escape(b))
				return -1;
			lim_sb__put(sb, s + run, i - run);
			lim_sb__putc(sb, (char)b);
			i += 2;
			run = i + 1;
		} else if (must_escape(c)) {
			return -1;
		}
	}
	lim_sb__put(sb, s + run, n - run);
	return 0;
}

void lim_hex__encode(char *out, const unsigned char *bin, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = HEXL[bin[i] >> 4];
		out[2 * i + 1] = HEXL[bin[i] & 15];
	}
	out[2 * n] = '\0';
}

/* Value of each lowercase hex digit plus one; 0 for every other byte. A
 * table, because decoding author, link and signature is a measurable part
 * of applying a change (BENCHMARKS.md). */
static const unsigned char HEX_LOWER[256] = {
	['0'] = 1, ['1'] = 2, ['2'] = 3, ['3'] = 4, ['4'] = 5, ['5'] = 6, ['6'] = 7, ['7'] = 8,
	['8'] = 9, ['9'] = 10, ['a'] = 11, ['b'] = 12, ['c'] = 13, ['d'] = 14, ['e'] = 15, ['f'] = 16,
};

int lim_hex__decode(unsigned char *out, size_t n, const char *hex, size_t hexlen)
{
	const unsigned char *h = (const unsigned char *)hex;
	unsigned bad = 0;
	if (hexlen != 2 * n)
		return -1;
	for (size_t i = 0; i < n; i++) {
		unsigned hi = HEX_LOWER[h[2 * i]], lo = HEX_LOWER[h[2 * i + 1]];
		bad |= (hi == 0) | (lo == 0);
		out[i] = (unsigned char)((hi - 1) << 4 | ((lo - 1) & 0xf));
	}
	return bad ? -1 : 0;
}

int lim_dec__parse_u64(const char *p, size_t n, uint64_t *out)
{
	uint64_t v = 0;
	if (n == 0 || n > 20 || (p[0] == '0' && n > 1))
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		unsigned d = (unsigned)(p[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

int lim_dec__parse_i64(const char *p, size_t n, int64_t *out)
{
	uint64_t mag;
	if (n > 0 && p[0] == '-') {
		if (lim_dec__parse_u64(p + 1, n - 1, &mag) < 0 || mag == 0)
			return -1;
		if (mag > (uint64_t)INT64_MAX + 1)
			return -1;
		*out = mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag;
		return 0;
	}
	if (lim_dec__parse_u64(p, n, &mag) < 0 || mag > (uint64_t)INT64_MAX)
		return -1;
	*out = (int64_t)mag;
	return 0;
}

void lim_json__quote(lim_sb *sb, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t run = 0;
	lim_sb__putc(sb, '"');
	for (size_t i = 0; i < n; i++) {
		unsigned char c = p[i];
		const char *rep = NULL;
		char u[7];
		if (c == '"')
			rep = "\\\"";
		else if (c == '\\')
			rep = "\\\\";
		else if (c == '\n')
			rep = "\\n";
		else if (c == '\r')
			rep = "\\r";
		else if (c == '\t')
			rep = "\\t";
		else if (c < 0x20 || c == 0x7F) {
			snprintf(u, sizeof(u), "\\u%04x", c);
			rep = u;
		}
		if (!rep)
			continue;
		lim_sb__put(sb, s + run, i - run);
		lim_sb__puts(sb, rep);
		run = i + 1;
	}
	lim_sb__put(sb, s + run, n - run);
	lim_sb__putc(sb, '"');
}

void lim_json__double(lim_sb *sb, double d)
{
	char sci[40], digits[24], out[64];
	int exp10 = 0, nd = 0, neg = 0, o = 0;
	if (!isfinite(d)) { /* never stored (values are checked), but never crash */
		lim_sb__puts(sb, "null");
		return;
	}
	/* The fewest significant digits that read back exactly: this text is
	 * part of the state digest, so it must be the same on every replica. */
	for (int prec = 0; prec <= 16; prec++) {
		snprintf(sci, sizeof(sci), "%.*e", prec, d);
		for (char *c = sci; *c; c++) /* a host locale may use ',' */
			if (*c == ',')
				*c = '.';
		if (strtod(sci, NULL) == d)
			break;
	}
	/* Split "-d.ddde+XX" into sign, digit string and exponent. */
	for (const char *c = sci; *c && *c != 'e'; c++) {
		if (*c == '-')
			neg = 1;
		else if (*c >= '0' && *c <= '9')
			digits[nd++] = *c;
	}
	exp10 = atoi(strchr(sci, 'e') + 1);
	while (nd > 1 && digits[nd - 1] == '0')
		nd--;
	if (neg)
		out[o++] = '-';
	if (exp10 >= -5 && exp10 < 17) {
		/* Plain notation, as most JSON printers write ordinary numbers. */
		if (exp10 < 0) {
			out[o++] = '0';
			out[o++] = '.';
			for (int z = 0; z < -exp10 - 1; z++)
				out[o++] = '0';
			for (int i = 0; i < nd; i++)
				out[o++] = digits[i];
		} else {
			for (int i = 0; i <= exp10; i++)
				out[o++] = i < nd ? digits[i] : '0';
			out[o++] = '.';
			if (nd > exp10 + 1)
				for (int i = exp10 + 1; i < nd; i++)
					out[o++] = digits[i];
			else
				out[o++] = '0';
		}
		out[o] = '\0';
	} else {
		out[o++] = digits[0];
		out[o++] = '.';
		if (nd > 1)
			for (int i = 1; i < nd; i++)
				out[o++] = digits[i];
		else
			out[o++] = '0';
		snprintf(out + o, sizeof(out) - (size_t)o, "e%d", exp10);
	}
	lim_sb__puts(sb, out);
}
