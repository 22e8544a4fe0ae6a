/*
 * value.c — one JSON scalar from the command line as a lim_value.
 *
 * `lim sadd/srem` take a set element as JSON. The public API has no
 * "JSON scalar to lim_value" call and the CLI may only use lim.h, so this
 * file accepts exactly these forms (JSON whitespace around them allowed):
 *
 *   null | true | false              LIM_NULL / LIM_BOOL
 *   -12                              LIM_INT (must fit int64)
 *   1.5, -2e3                        LIM_FLOAT (finite)
 *   "text with \"escapes\" \u00e9"   LIM_STRING (JSON escapes decoded)
 *   {"$base64": "AAEC"}              LIM_BYTES (the form lim get prints)
 *
 * and nothing else: no arrays, no other objects, no bare words. It is a
 * recogniser for these five shapes, not a JSON parser. The decoded bytes
 * are owned by cli_value.mem; UTF-8 validity of strings is left to the
 * library, which checks every value it is given.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char *skip_ws(const char *p)
{
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	return p;
}

static int hex4(const char *p, unsigned *out)
{
	unsigned v = 0;

	for (int i = 0; i < 4; i++) {
		char ch = p[i];
		v <<= 4;
		if (ch >= '0' && ch <= '9')
			v |= (unsigned)(ch - '0');
		else if (ch >= 'a' && ch <= 'f')
			v |= (unsigned)(ch - 'a' + 10);
		else if (ch >= 'A' && ch <= 'F')
			v |= (unsigned)(ch - 'A' + 10);
		else
			return -1;
	}
	*out = v;
	return 0;
}

static size_t put_utf8(char *out, unsigned cp)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xc0 | cp >> 6);
		out[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xe0 | cp >> 12);
		out[1] = (char)(0x80 | (cp >> 6 & 0x3f));
		out[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | cp >> 18);
	out[1] = (char)(0x80 | (cp >> 12 & 0x3f));
	out[2] = (char)(0x80 | (cp >> 6 & 0x3f));
	out[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/*
 * Decode the JSON string at *pp (which points at its opening quote) into a
 * new malloc'd buffer; *pp is left after the closing quote. The output is
 * never longer than the input, so one allocation of the input's length
 * suffices. Returns NULL with a message in err on failure.
 */
static char *json_string(const char **pp, size_t *len, char *err, size_t errlen)
{
	const char *p = *pp + 1;
	char *buf = malloc(strlen(p) + 1), *o = buf;

	if (!buf) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	for (;;) {
		unsigned char ch = (unsigned char)*p++;
		unsigned cp, lo;

		if (ch == '"')
			break;
		if (ch == '\0') {
			snprintf(err, errlen, "unterminated string");
			goto fail;
		}
		if (ch < 0x20) {
			snprintf(err, errlen, "control character in string (write it as \\u%04x)", ch);
			goto fail;
		}
		if (ch != '\\') {
			*o++ = (char)ch;
			continue;
		}
		switch (*p++) {
		case '"': *o++ = '"'; break;
		case '\\': *o++ = '\\'; break;
		case '/': *o++ = '/'; break;
		case 'b': *o++ = '\b'; break;
		case 'f': *o++ = '\f'; break;
		case 'n': *o++ = '\n'; break;
		case 'r': *o++ = '\r'; break;
		case 't': *o++ = '\t'; break;
		case 'u':
			if (hex4(p, &cp) != 0)
				goto bad_u;
			p += 4;
			if (cp >= 0xdc00 && cp <= 0xdfff) {
				snprintf(err, errlen, "unpaired low surrogate \\u%04x in string", cp);
				goto fail;
			}
			if (cp >= 0xd800 && cp <= 0xdbff) {
				if (p[0] != '\\' || p[1] != 'u' || hex4(p + 2, &lo) != 0 ||
				    lo < 0xdc00 || lo > 0xdfff) {
					snprintf(err, errlen, "unpaired high surrogate \\u%04x in string", cp);
					goto fail;
				}
				p += 6;
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			}
			o += put_utf8(o, cp);
			break;
		default:
			snprintf(err, errlen, "invalid escape in string");
			goto fail;
		}
	}
	*o = '\0';
	*len = (size_t)(o - buf);
	*pp = p;
	return buf;
bad_u:
	snprintf(err, errlen, "\\u must be followed by four hex digits");
fail:
	free(buf);
	return NULL;
}

static int b64val(char ch)
{
	if (ch >= 'A' && ch <= 'Z')
		return ch - 'A';
	if (ch >= 'a' && ch <= 'z')
		return ch - 'a' + 26;
	if (ch >= '0' && ch <= '9')
		return ch - '0' + 52;
	if (ch == '+')
		return 62;
	if (ch == '/')
		return 63;
	return -1;
}

/* Decode standard base64 (padding optional) in place; returns the decoded
 * length or -1. */
static long base64_decode(char *s, size_t len)
{
	size_t n = len, o = 0;
	unsigned acc = 0;
	int bits = 0;

	if (n % 4 == 0 && n >= 1 && s[n - 1] == '=')
		n--;
	if (n % 4 == 3 && n >= 1 && s[n - 1] == '=' && len % 4 == 0)
		n--;
	if (n % 4 == 1)
		return -1;
	for (size_t i = 0; i < n; i++) {
		int v = b64val(s[i]);
		if (v < 0)
			return -1;
		acc = (acc << 6 | (unsigned)v) & 0xffffff;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			s[o++] = (char)(acc >> bits & 0xff);
		}
	}
	return (long)o;
}

/* {"$base64": "..."} at p; on success v->mem owns the bytes. */
static int parse_bytes(struct cli_value *v, const char **pp, char *err, size_t errlen)
{
	const char *p = skip_ws(*pp + 1);
	char *key, *data;
	size_t klen, dlen;
	long n;
	int is_b64;

	if (*p != '"')
		goto shape;
	key = json_string(&p, &klen, err, errlen);
	if (!key)
		return -1;
	is_b64 = klen == 7 && memcmp(key, "$base64", 7) == 0;
	free(key);
	if (!is_b64)
		goto shape;
	p = skip_ws(p);
	if (*p != ':')
		goto shape;
	p = skip_ws(p + 1);
	if (*p != '"')
		goto shape;
	data = json_string(&p, &dlen, err, errlen);
	if (!data)
		return -1;
	p = skip_ws(p);
	if (*p != '}') {
		free(data);
		goto shape;
	}
	n = base64_decode(data, dlen);
	if (n < 0) {
		free(data);
		snprintf(err, errlen, "invalid base64 in {\"$base64\": ...}");
		return -1;
	}
	v->mem = data;
	v->v.type = LIM_BYTES;
	v->v.str = data;
	v->v.len = (size_t)n;
	*pp = p + 1;
	return 0;
shape:
	snprintf(err, errlen, "the only object accepted is {\"$base64\": \"...\"}");
	return -1;
}

/* A JSON number at *pp: an integer if it has no fraction or exponent. */
static int parse_number(struct cli_value *v, const char **pp, char *err, size_t errlen)
{
	const char *p = *pp, *start = p;
	int is_float = 0;
	char *end;

	if (*p == '-')
		p++;
	if (*p == '0')
		p++;
	else if (*p >= '1' && *p <= '9')
		while (*p >= '0' && *p <= '9')
			p++;
	else
		goto bad;
	if (*p == '.') {
		is_float = 1;
		if (*++p < '0' || *p > '9')
			goto bad;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	if (*p == 'e' || *p == 'E') {
		is_float = 1;
		p++;
		if (*p == '+' || *p == '-')
			p++;
		if (*p < '0' || *p > '9')
			goto bad;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	errno = 0;
	if (is_float) {
		v->v.type = LIM_FLOAT;
		v->v.real = strtod(start, &end);
		if (!isfinite(v->v.real)) {
			snprintf(err, errlen, "number out of range");
			return -1;
		}
	} else {
		v->v.type = LIM_INT;
		v->v.integer = strtoll(start, &end, 10);
		if (errno == ERANGE) {
			snprintf(err, errlen, "integer does not fit in 64 bits");
			return -1;
		}
	}
	if (end != p)
		goto bad;
	*pp = p;
	return 0;
bad:
	snprintf(err, errlen, "malformed number");
	return -1;
}

int cli_value_parse(struct cli_value *out, const char *text, char *err, size_t errlen)
{
	const char *p = skip_ws(text);
	int rc = 0;

	memset(out, 0, sizeof *out);
	if (strncmp(p, "null", 4) == 0) {
		out->v.type = LIM_NULL;
		p += 4;
	} else if (strncmp(p, "true", 4) == 0) {
		out->v.type = LIM_BOOL;
		out->v.boolean = 1;
		p += 4;
	} else if (strncmp(p, "false", 5) == 0) {
		out->v.type = LIM_BOOL;
		p += 5;
	} else if (*p == '"') {
		out->mem = json_string(&p, &out->v.len, err, errlen);
		if (!out->mem)
			return -1;
		out->v.type = LIM_STRING;
		out->v.str = out->mem;
	} else if (*p == '{') {
		rc = parse_bytes(out, &p, err, errlen);
	} else if (*p == '-' || (*p >= '0' && *p <= '9')) {
		rc = parse_number(out, &p, err, errlen);
	} else if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')) {
		snprintf(err, errlen, "not a JSON scalar: %.40s (a string needs double quotes: '\"%.20s\"')",
		         p, p);
		return -1;
	} else {
		snprintf(err, errlen, "not a JSON scalar: '%.40s' (want null, true, false, a number, "
		         "a \"string\" or {\"$base64\": \"...\"})", p);
		return -1;
	}
	if (rc == 0 && *skip_ws(p) != '\0') {
		snprintf(err, errlen, "unexpected text after the value: %.40s", skip_ws(p));
		rc = -1;
	}
	if (rc != 0)
		cli_value_dispose(out);
	return rc;
}

void cli_value_dispose(struct cli_value *v)
{
	free(v->mem);
	memset(v, 0, sizeof *v);
}
