/*
 * gen_handshake.c — golden vectors for the handshake of protocol-spec/PROTOCOL.md.
 *
 * An independent implementation of the handshake computations: it uses
 * libsodium only (never liblim) and builds every line by hand from the rules
 * of PROTOCOL.md §6. It writes into the current directory:
 *
 *   handshake.json  inputs (seeds, nonces, network key) and every output
 *   handshake.txt   the same values as "name value" lines, for tests in any
 *                   language that would rather not parse JSON
 *
 * Build and run (from protocol-spec/vectors):
 *   cc -std=c11 -Wall -Wextra gen_handshake.c -lsodium -o /tmp/gh && /tmp/gh
 * The output is deterministic (Ed25519 signatures are deterministic), so
 * running it again must reproduce the checked-in files byte for byte.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Each context string is used with its terminating NUL (sizeof, not strlen). */
static const char TRANSCRIPT_CONTEXT[] = "liblim handshake v1";
static const char SIG_CONTEXT[] = "liblim handshake signature v1";
static const char NET_CONTEXT[] = "liblim handshake network v1";

#define PROTOCOL_VERSION 1

typedef struct {
	const char *name;
	unsigned char seed[32], pk[32], sk[64], nonce[32];
	char hello[256];           /* the HELLO line without its LF */
	unsigned char msg[sizeof(SIG_CONTEXT) + 1 + 32]; /* the signed message */
	unsigned char sig[64], proof[32], proof_other[32];
	char auth[256];            /* the AUTH line without its LF */
} side;

static void die(const char *what)
{
	fprintf(stderr, "gen_handshake: %s\n", what);
	exit(1);
}

static char *hex(const unsigned char *bin, size_t n)
{
	static char bufs[8][1024];
	static int next;
	static const char digits[] = "0123456789abcdef";
	char *out = bufs[next++ % 8];
	if (2 * n + 1 > sizeof(bufs[0]))
		die("hex buffer too small");
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[bin[i] >> 4];
		out[2 * i + 1] = digits[bin[i] & 15];
	}
	out[2 * n] = '\0';
	return out;
}

static void fill(unsigned char *b, size_t n, unsigned first)
{
	for (size_t i = 0; i < n; i++)
		b[i] = (unsigned char)(first + i);
}

/* network proof = BLAKE2b-256, keyed with the 32-byte network key, of
 * "liblim handshake network v1" NUL || role || transcript hash */
static void net_proof(unsigned char out[32], const unsigned char key[32], char role, const unsigned char th[32])
{
	unsigned char in[sizeof(NET_CONTEXT) + 1 + 32];
	memcpy(in, NET_CONTEXT, sizeof(NET_CONTEXT));
	in[sizeof(NET_CONTEXT)] = (unsigned char)role;
	memcpy(in + sizeof(NET_CONTEXT) + 1, th, 32);
	if (crypto_generichash(out, 32, in, sizeof(in), key, 32) != 0)
		die("crypto_generichash");
}

static void prove(side *s, char role, const unsigned char th[32], const unsigned char netkey[32],
                  const unsigned char other_netkey[32])
{
	/* signed message = "liblim handshake signature v1" NUL || role || transcript hash */
	memcpy(s->msg, SIG_CONTEXT, sizeof(SIG_CONTEXT));
	s->msg[sizeof(SIG_CONTEXT)] = (unsigned char)role;
	memcpy(s->msg + sizeof(SIG_CONTEXT) + 1, th, 32);
	if (crypto_sign_detached(s->sig, NULL, s->msg, sizeof(s->msg), s->sk) != 0)
		die("crypto_sign_detached");
	if (crypto_sign_verify_detached(s->sig, s->msg, sizeof(s->msg), s->pk) != 0)
		die("own signature does not verify");
	net_proof(s->proof, netkey, role, th);
	net_proof(s->proof_other, other_netkey, role, th);
	snprintf(s->auth, sizeof(s->auth), "AUTH %s %s", hex(s->sig, 64), hex(s->proof, 32));
}

int main(void)
{
	side c = { .name = "client" }, s = { .name = "server" };
	unsigned char netkey[32], other_netkey[32], th[32];
	unsigned char *transcript;
	size_t tlen;
	FILE *j, *t;

	if (sodium_init() < 0)
		die("sodium_init");
	/* Fixed inputs. The client's seed is the author seed of changes.json, so
	 * the client of the example session is the author of those changes. */
	fill(c.seed, 32, 0x01);  /* 01 02 .. 20 */
	fill(s.seed, 32, 0x21);  /* 21 22 .. 40 */
	fill(netkey, 32, 0x80);  /* 80 81 .. 9f */
	memset(other_netkey, 0x55, 32);
	fill(c.nonce, 32, 0xc0); /* c0 c1 .. df */
	fill(s.nonce, 32, 0xe0); /* e0 e1 .. ff */
	if (crypto_sign_seed_keypair(c.pk, c.sk, c.seed) != 0 || crypto_sign_seed_keypair(s.pk, s.sk, s.seed) != 0)
		die("crypto_sign_seed_keypair");

	/* HELLO <version> <node id> <nonce> */
	snprintf(c.hello, sizeof(c.hello), "HELLO %d %s %s", PROTOCOL_VERSION, hex(c.pk, 32), hex(c.nonce, 32));
	snprintf(s.hello, sizeof(s.hello), "HELLO %d %s %s", PROTOCOL_VERSION, hex(s.pk, 32), hex(s.nonce, 32));

	/* transcript = "liblim handshake v1" NUL || client HELLO || LF || server HELLO || LF */
	tlen = sizeof(TRANSCRIPT_CONTEXT) + strlen(c.hello) + 1 + strlen(s.hello) + 1;
	if (!(transcript = malloc(tlen)))
		die("out of memory");
	{
		unsigned char *p = transcript;
		memcpy(p, TRANSCRIPT_CONTEXT, sizeof(TRANSCRIPT_CONTEXT));
		p += sizeof(TRANSCRIPT_CONTEXT);
		memcpy(p, c.hello, strlen(c.hello));
		p += strlen(c.hello);
		*p++ = '\n';
		memcpy(p, s.hello, strlen(s.hello));
		p += strlen(s.hello);
		*p++ = '\n';
		if ((size_t)(p - transcript) != tlen)
			die("transcript length");
	}
	if (crypto_generichash(th, 32, transcript, tlen, NULL, 0) != 0)
		die("crypto_generichash");

	prove(&c, 'C', th, netkey, other_netkey);
	prove(&s, 'S', th, netkey, other_netkey);

	if (!(j = fopen("handshake.json", "w")) || !(t = fopen("handshake.txt", "w")))
		die("cannot write the output files");
	fprintf(j, "{\n");
	fprintf(j, "  \"version\": %d,\n", PROTOCOL_VERSION);
	fprintf(j, "  \"network_key\": \"%s\",\n", hex(netkey, 32));
	fprintf(j, "  \"other_network_key\": \"%s\",\n", hex(other_netkey, 32));
	fprintf(t, "# Handshake golden vectors (gen_handshake.c), one \"name value\" per line.\n");
	fprintf(t, "# Lines are given without their LF. See README.md and ../PROTOCOL.md section 6.\n");
	fprintf(t, "version %d\n", PROTOCOL_VERSION);
	fprintf(t, "network_key %s\n", hex(netkey, 32));
	fprintf(t, "other_network_key %s\n", hex(other_netkey, 32));
	for (int k = 0; k < 2; k++) {
		side *x = k == 0 ? &c : &s;
		fprintf(j, "  \"%s\": {\n", x->name);
		fprintf(j, "    \"role\": \"%c\",\n", k == 0 ? 'C' : 'S');
		fprintf(j, "    \"seed\": \"%s\",\n", hex(x->seed, 32));
		fprintf(j, "    \"id\": \"%s\",\n", hex(x->pk, 32));
		fprintf(j, "    \"nonce\": \"%s\",\n", hex(x->nonce, 32));
		fprintf(j, "    \"hello\": \"%s\",\n", x->hello);
		fprintf(j, "    \"signed_message\": \"%s\",\n", hex(x->msg, sizeof(x->msg)));
		fprintf(j, "    \"signature\": \"%s\",\n", hex(x->sig, 64));
		fprintf(j, "    \"proof\": \"%s\",\n", hex(x->proof, 32));
		fprintf(j, "    \"proof_other_network\": \"%s\",\n", hex(x->proof_other, 32));
		fprintf(j, "    \"auth\": \"%s\"\n", x->auth);
		fprintf(j, "  },\n");
		fprintf(t, "%s_seed %s\n", x->name, hex(x->seed, 32));
		fprintf(t, "%s_id %s\n", x->name, hex(x->pk, 32));
		fprintf(t, "%s_nonce %s\n", x->name, hex(x->nonce, 32));
		fprintf(t, "%s_hello %s\n", x->name, x->hello);
		fprintf(t, "%s_signed_message %s\n", x->name, hex(x->msg, sizeof(x->msg)));
		fprintf(t, "%s_signature %s\n", x->name, hex(x->sig, 64));
		fprintf(t, "%s_proof %s\n", x->name, hex(x->proof, 32));
		fprintf(t, "%s_proof_other_network %s\n", x->name, hex(x->proof_other, 32));
		fprintf(t, "%s_auth %s\n", x->name, x->auth);
	}
	fprintf(j, "  \"transcript\": \"%s\",\n", hex(transcript, tlen));
	fprintf(j, "  \"transcript_hash\": \"%s\"\n", hex(th, 32));
	fprintf(j, "}\n");
	fprintf(t, "transcript %s\n", hex(transcript, tlen));
	fprintf(t, "transcript_hash %s\n", hex(th, 32));
	if (fclose(j) != 0 || fclose(t) != 0)
		die("writing the output files failed");
	free(transcript);
	return 0;
}
