/*
 * See value.h. The decoder is strict: every token it accepts is exactly the
 * one lim_value__encode prints for the decoded value, which is what makes a
 * change's encoding canonical.
 */
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include "text.h"
#include "value.h"

int lim_value__check(const lim_value *v)
{
	if (!v)
		return lim__error(LIM_EINVALID, "value is NULL");
	switch (v->type) {
	case LIM_NULL:
	case LIM_BOOL:
	case LIM_INT:
		return 0;
	case LIM_FLOAT:
		if (!isfinite(v->real))
			return lim__error(LIM_EINVALID, "float value must be finite (NaN and infinities cannot be stored)");
		return 0;
	case LIM_STRING:
	case LIM_BYTES:
		if (v->len > LIM_MAX_VALUE_BYTES)
			return lim__error(LIM_EINVALID, "value is %zu bytes; the limit is %d", v->len, LIM_MAX_VALUE_BYTES);
		if (v->len && !v->str)
			return lim__error(LIM_EINVALID, "value has a length but no data");
		if (v->type == LIM_STRING && !lim_utf8__valid(v->str, v->len))
			return lim__error(LIM_EINVALID, "string value is not valid UTF-8");
		return 0;
	}
	return lim__error(LIM_EINVALID, "unknown value type %d", (int)v->type);
}

void lim_value__encode(lim_sb *sb, const lim_value *v)
{
	switch (v->type) {
	case LIM_NULL:
		lim_sb__putc(sb, 'n');
		break;
	case LIM_BOOL:
		lim_sb__putc(sb, v->boolean ? 't' : 'f');
		break;
	case LIM_INT:
		lim_sb__printf(sb, "i%lld", (long long)v->integer);
		break;
	case LIM_FLOAT: {
		uint64_t bits;
		memcpy(&bits, &v->real, 8);
		lim_sb__printf(sb, "d%016llx", (unsigned long long)bits);
		break;
	}
	case LIM_STRING:
		lim_sb__putc(sb, 's');
		lim_text__escape(sb, v->str, v->len);
		break;
	case LIM_BYTES:
		lim_sb__putc(sb, 'b');
		if (lim_sb__grow(sb, 2 * v->len) == 0) {
			lim_hex__encode(sb->ptr + sb->len, (const unsigned char *)v->str, v->len);
			sb->len += 2 * v->len;
		}
		break;
	}
}

int lim_value__decode(const char *tok, size_t n, lim_value *out, lim_sb *scratch)
{
	memset(out, 0, sizeof(*out));
	lim_sb__clear(scratch);
	if (n == 0)
		return -1;
	switch (tok[0]) {
	case 'n':
		out->type = LIM_NULL;
		return n == 1 ? 0 : -1;
	case 't':
	case 'f':
		out->type = LIM_BOOL;
		out->boolean = tok[0] == 't';
		return n == 1 ? 0 : -1;
	case 'i':
		out->type = LIM_INT;
		return lim_dec__parse_i64(tok + 1, n - 1, &out->integer);
	case 'd': {
		unsigned char b[8];
		uint64_t bits = 0;
		if (lim_hex__decode(b, 8, tok + 1, n - 1) < 0)
			return -1;
		for (int i = 0; i < 8; i++)
			bits = bits << 8 | b[i];
		out->type = LIM_FLOAT;
		memcpy(&out->real, &bits, 8);
		return isfinite(out->real) ? 0 : -1;
	}
	case 's':
		out->type = LIM_STRING;
		if (lim_text__unescape(scratch, tok + 1, n - 1) < 0 || lim_sb__grow(scratch, 0) < 0)
			return -1;
		if (scratch->len > LIM_MAX_VALUE_BYTES || !lim_utf8__valid(scratch->ptr, scratch->len))
			return -1;
		out->str = scratch->ptr;
		out->len = scratch->len;
		return 0;
	case 'b':
		out->type = LIM_BYTES;
		if ((n - 1) % 2 || (n - 1) / 2 > LIM_MAX_VALUE_BYTES || lim_sb__grow(scratch, (n - 1) / 2) < 0)
			return -1;
		if (lim_hex__decode((unsigned char *)scratch->ptr, (n - 1) / 2, tok + 1, n - 1) < 0)
			return -1;
		scratch->len = (n - 1) / 2;
		scratch->ptr[scratch->len] = '\0';
		out->str = scratch->ptr;
		out->len = scratch->len;
		return 0;
	}
	return -1;
}

int lim_value__token_to_json(lim_sb *sb, const char *tok, size_t n)
{
	lim_sb scratch = LIM_SB_INIT;
	lim_value v;
	int rc = 0;
	if (lim_value__decode(tok, n, &v, &scratch) < 0) {
		lim_sb__free(&scratch);
		return -1;
	}
	switch (v.type) {
	case LIM_NULL:
		lim_sb__puts(sb, "null");
		break;
	case LIM_BOOL:
		lim_sb__puts(sb, v.boolean ? "true" : "false");
		break;
	case LIM_INT:
		lim_sb__printf(sb, "%lld", (long long)v.integer);
		break;
	case LIM_FLOAT:
		lim_json__double(sb, v.real);
		break;
	case LIM_STRING:
		lim_json__quote(sb, v.str, v.len);
		break;
	case LIM_BYTES: {
		size_t cap = sodium_base64_ENCODED_LEN(v.len, sodium_base64_VARIANT_ORIGINAL);
		lim_sb__puts(sb, "{\"$base64\":\"");
		if (lim_sb__grow(sb, cap) == 0) {
			sodium_bin2base64(sb->ptr + sb->len, cap, (const unsigned char *)v.str, v.len,
			                  sodium_base64_VARIANT_ORIGINAL);
			sb->len += strlen(sb->ptr + sb->len);
		}
		lim_sb__puts(sb, "\"}");
		break;
	}
	}
	lim_sb__free(&scratch);
	return rc;
}
