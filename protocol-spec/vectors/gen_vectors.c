/*
 * gen_vectors.c — golden vectors for protocol-spec/changes.md.
 *
 * An independent implementation of the change encoding: it uses libsodium
 * only (never liblim), builds every change line by hand from the rules in
 * changes.md, and writes into the current directory:
 *
 *   changes.txt  one change per line, the exact bytes, LF after each
 *   changes.json for each change: line, body, hash, signature, link, author, seed, ...
 *   pack.lim     a complete pack of those changes
 *
 * Build and run (from protocol-spec/vectors):
 *   cc -std=c11 -Wall -Wextra gen_vectors.c -lsodium -o /tmp/gen && /tmp/gen
 * The output is deterministic (Ed25519 signatures are deterministic), so
 * running it again must reproduce the checked-in files byte for byte.
 */
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LINE 8192
#define NCHANGES 4

static const char HASH_CONTEXT[] = "liblim change v1";   /* hashed with its NUL */
static const char SIG_CONTEXT[] = "liblim signature v1"; /* signed with its NUL */
static const char LINK_CONTEXT[] = "liblim link v1";      /* hashed with its NUL */
static const char PACK_CONTEXT[] = "liblim pack v1";      /* hashed with its NUL */

static unsigned char seed[32], pk[32], sk[64];
static char author_hex[65];

static void die(const char *what)
{
	fprintf(stderr, "gen_vectors: %s\n", what);
	exit(1);
}

static void hex(char *out, const unsigned char *bin, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[bin[i] >> 4];
		out[2 * i + 1] = digits[bin[i] & 15];
	}
	out[2 * n] = '\0';
}

/* Append to a bounded line buffer. */
typedef struct {
	char b[MAX_LINE];
	size_t n;
} buf;

static void put(buf *o, const char *s, size_t n)
{
	if (o->n + n >= sizeof(o->b))
		die("line buffer overflow");
	memcpy(o->b + o->n, s, n);
	o->n += n;
	o->b[o->n] = '\0';
}

static void puts_(buf *o, const char *s)
{
	put(o, s, strlen(s));
}

/* The token escape of changes.md: 0x00-0x20, '%', ',' and 0x7F become %XX
 * with uppercase hex digits; every other byte stands for itself. */
static void esc(buf *o, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c <= 0x20 || c == '%' || c == ',' || c == 0x7F) {
			char e[4];
			snprintf(e, sizeof(e), "%%%02X", c);
			put(o, e, 3);
		} else {
			put(o, (const char *)&c, 1);
		}
	}
}

/* Ops. Each starts with the separating space. */
static void op_head(buf *o, char kind, const char *coll, const char *doc)
{
	char k[3] = { ' ', kind, ' ' };
	put(o, k, 3);
	esc(o, coll, strlen(coll));
	puts_(o, " ");
	esc(o, doc, strlen(doc));
}

static void op_path(buf *o, char kind, const char *coll, const char *doc, const char *path)
{
	op_head(o, kind, coll, doc);
	puts_(o, " ");
	esc(o, path, strlen(path));
}

/* Value tokens. */
static void v_str(buf *o, const char *s, size_t n)
{
	puts_(o, " s");
	esc(o, s, n);
}

static void v_int(buf *o, long long i)
{
	char t[32];
	snprintf(t, sizeof(t), " i%lld", i);
	puts_(o, t);
}

static void v_float(buf *o, double d)
{
	uint64_t bits;
	char t[32];
	memcpy(&bits, &d, 8);
	snprintf(t, sizeof(t), " d%016llx", (unsigned long long)bits);
	puts_(o, t);
}

static void v_bytes(buf *o, const unsigned char *b, size_t n)
{
	char h[2 * 64 + 1];
	if (n > 64)
		die("bytes too long");
	hex(h, b, n);
	puts_(o, " b");
	puts_(o, h);
}

/* A set tag: <author hex>.<seq>.<op index>. */
static void tag(buf *o, uint64_t seq, unsigned opidx)
{
	char t[128];
	snprintf(t, sizeof(t), "%s.%llu.%u", author_hex, (unsigned long long)seq, opidx);
	puts_(o, t);
}

typedef struct {
	uint64_t seq, hlc;
	unsigned char prev[32], hash[32], sig[64], link[32];
	buf body, line;
} change;

static void seal(change *c, const buf *ops, size_t nops)
{
	char prev_hex[65], sig_hex[129], head[256];
	unsigned char msg[sizeof(SIG_CONTEXT) + 32];
	crypto_generichash_state h;

	hex(prev_hex, c->prev, 32);
	snprintf(head, sizeof(head), "lim1 %s %llu %016llx %s %zu", author_hex, (unsigned long long)c->seq,
	         (unsigned long long)c->hlc, prev_hex, nops);
	c->body.n = 0;
	puts_(&c->body, head);
	put(&c->body, ops->b, ops->n);

	/* hash = BLAKE2b-256("liblim change v1" NUL || body) */
	crypto_generichash_init(&h, NULL, 0, 32);
	crypto_generichash_update(&h, (const unsigned char *)HASH_CONTEXT, sizeof(HASH_CONTEXT));
	crypto_generichash_update(&h, (const unsigned char *)c->body.b, c->body.n);
	crypto_generichash_final(&h, c->hash, 32);

	/* signature = Ed25519("liblim signature v1" NUL || hash) */
	memcpy(msg, SIG_CONTEXT, sizeof(SIG_CONTEXT));
	memcpy(msg + sizeof(SIG_CONTEXT), c->hash, 32);
	crypto_sign_detached(c->sig, NULL, msg, sizeof(msg), sk);
	if (crypto_sign_verify_detached(c->sig, msg, sizeof(msg), pk) != 0)
		die("signature does not verify");

	/* link = BLAKE2b-256("liblim link v1" NUL || hash || signature): the next
	 * change's prev, so its signature covers this one's signature bytes too. */
	crypto_generichash_init(&h, NULL, 0, 32);
	crypto_generichash_update(&h, (const unsigned char *)LINK_CONTEXT, sizeof(LINK_CONTEXT));
	crypto_generichash_update(&h, c->hash, 32);
	crypto_generichash_update(&h, c->sig, 64);
	crypto_generichash_final(&h, c->link, 32);

	hex(sig_hex, c->sig, 64);
	c->line = c->body;
	puts_(&c->line, " ");
	puts_(&c->line, sig_hex);
}

/* HLC = 48-bit Unix milliseconds << 16 | 16-bit counter. */
static uint64_t hlc(uint64_t ms, unsigned counter)
{
	return ms << 16 | counter;
}

static void json_str(FILE *f, const char *s, size_t n)
{
	fputc('"', f);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20 || c == 0x7F)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static FILE *open_out(const char *name)
{
	FILE *f = fopen(name, "wb");
	if (!f)
		die(name);
	return f;
}

int main(void)
{
	static change ch[NCHANGES];
	static const unsigned char blob[] = { 0x00, 0xff, 0x10, 0xab };
	/* Needs escapes: ',', ' ', '%', TAB, LF; and raw non-ASCII UTF-8. */
	static const char title[] = "Hi, 100%\tsure\nna\xc3\xafve \xe2\x9c\x93";
	const uint64_t ms0 = 1704067200000ull; /* 2024-01-01T00:00:00Z */
	buf ops;
	size_t nops;

	if (sodium_init() < 0)
		die("sodium_init failed");
	for (int i = 0; i < 32; i++)
		seed[i] = (unsigned char)(i + 1);
	crypto_sign_seed_keypair(pk, sk, seed);
	hex(author_hex, pk, 32);

	/* seq 1: every value type, nested path, a document key needing escapes. */
	ops.n = 0;
	nops = 0;
	op_path(&ops, 'S', "notes", "n1", "title"), v_str(&ops, title, strlen(title)), nops++;
	op_path(&ops, 'S', "notes", "n1", "count"), v_int(&ops, -42), nops++;
	op_path(&ops, 'S', "notes", "n1", "big"), v_int(&ops, 9223372036854775807ll), nops++;
	op_path(&ops, 'S', "notes", "n1", "ratio"), v_float(&ops, -0.5), nops++;
	op_path(&ops, 'S', "notes", "n1", "done"), puts_(&ops, " t"), nops++;
	op_path(&ops, 'S', "notes", "n1", "draft"), puts_(&ops, " f"), nops++;
	op_path(&ops, 'S', "notes", "n1", "parent"), puts_(&ops, " n"), nops++;
	op_path(&ops, 'S', "notes", "n1", "blob"), v_bytes(&ops, blob, sizeof(blob)), nops++;
	op_path(&ops, 'S', "notes", "n1", "empty"), v_str(&ops, "", 0), nops++;
	op_path(&ops, 'S', "notes", "n1", "meta.author"), v_str(&ops, "Ada Lovelace", 12), nops++;
	op_path(&ops, 'S', "notes", "draft 1", "body"), v_str(&ops, "first draft", 11), nops++;
	ch[0].seq = 1;
	ch[0].hlc = hlc(ms0, 0);
	memset(ch[0].prev, 0, 32);
	seal(&ch[0], &ops, nops);

	/* seq 2: counter deltas and set adds (tags <author>.2.2, .2.3, .2.4). */
	ops.n = 0;
	nops = 0;
	op_path(&ops, 'N', "notes", "n1", "views"), puts_(&ops, " 5"), nops++;
	op_path(&ops, 'N', "notes", "n1", "views"), puts_(&ops, " -2"), nops++;
	op_path(&ops, 'A', "notes", "n1", "tags"), v_str(&ops, "red", 3), nops++;
	op_path(&ops, 'A', "notes", "n1", "tags"), v_str(&ops, "blue", 4), nops++;
	op_path(&ops, 'A', "notes", "n1", "tags"), v_str(&ops, "red", 3), nops++;
	ch[1].seq = 2;
	ch[1].hlc = hlc(ms0 + 1000, 1);
	memcpy(ch[1].prev, ch[0].link, 32);
	seal(&ch[1], &ops, nops);

	/* seq 3: remove "red" (both of its tags, in increasing order), delete a document. */
	ops.n = 0;
	nops = 0;
	op_path(&ops, 'R', "notes", "n1", "tags"), v_str(&ops, "red", 3);
	puts_(&ops, " "), tag(&ops, 2, 2), puts_(&ops, ","), tag(&ops, 2, 4), nops++;
	op_head(&ops, 'X', "notes", "draft 1"), nops++;
	ch[2].seq = 3;
	ch[2].hlc = hlc(ms0 + 2000, 0);
	memcpy(ch[2].prev, ch[1].link, 32);
	seal(&ch[2], &ops, nops);

	/* seq 4: write to the deleted document again, delete one field of n1. */
	ops.n = 0;
	nops = 0;
	op_path(&ops, 'S', "notes", "draft 1", "title"), v_str(&ops, "back", 4), nops++;
	op_path(&ops, 'D', "notes", "n1", "draft"), nops++;
	ch[3].seq = 4;
	ch[3].hlc = hlc(ms0 + 3000, 0);
	memcpy(ch[3].prev, ch[2].link, 32);
	seal(&ch[3], &ops, nops);

	/* changes.txt */
	FILE *f = open_out("changes.txt");
	for (int i = 0; i < NCHANGES; i++)
		fprintf(f, "%s\n", ch[i].line.b);
	fclose(f);

	/* pack.lim: header, lines, END <count> <BLAKE2b-256("liblim pack v1" NUL || lines with LF)> */
	{
		crypto_generichash_state h;
		unsigned char d[32];
		char dh[65];
		crypto_generichash_init(&h, NULL, 0, 32);
		crypto_generichash_update(&h, (const unsigned char *)PACK_CONTEXT, sizeof(PACK_CONTEXT));
		f = open_out("pack.lim");
		fputs("LIMPACK 1\n", f);
		for (int i = 0; i < NCHANGES; i++) {
			crypto_generichash_update(&h, (const unsigned char *)ch[i].line.b, ch[i].line.n);
			crypto_generichash_update(&h, (const unsigned char *)"\n", 1);
			fprintf(f, "%s\n", ch[i].line.b);
		}
		crypto_generichash_final(&h, d, 32);
		hex(dh, d, 32);
		fprintf(f, "END %d %s\n", NCHANGES, dh);
		fclose(f);
	}

	/* changes.json */
	{
		char seed_hex[65], h[129];
		f = open_out("changes.json");
		hex(seed_hex, seed, 32);
		fprintf(f, "{\n  \"seed\": \"%s\",\n  \"author\": \"%s\",\n  \"changes\": [\n", seed_hex, author_hex);
		for (int i = 0; i < NCHANGES; i++) {
			fprintf(f, "    {\n      \"author\": \"%s\",\n      \"seed\": \"%s\",\n", author_hex, seed_hex);
			fprintf(f, "      \"seq\": %llu,\n      \"hlc\": \"%016llx\",\n", (unsigned long long)ch[i].seq,
			        (unsigned long long)ch[i].hlc);
			hex(h, ch[i].prev, 32);
			fprintf(f, "      \"prev\": \"%s\",\n      \"body\": ", h);
			json_str(f, ch[i].body.b, ch[i].body.n);
			hex(h, ch[i].hash, 32);
			fprintf(f, ",\n      \"hash\": \"%s\",\n", h);
			hex(h, ch[i].sig, 64);
			fprintf(f, "      \"signature\": \"%s\",\n", h);
			hex(h, ch[i].link, 32);
			fprintf(f, "      \"link\": \"%s\",\n      \"line\": ", h);
			json_str(f, ch[i].line.b, ch[i].line.n);
			fprintf(f, "\n    }%s\n", i + 1 < NCHANGES ? "," : "");
		}
		fputs("  ]\n}\n", f);
		fclose(f);
	}
	return 0;
}
