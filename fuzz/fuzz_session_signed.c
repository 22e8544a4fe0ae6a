/*
 * fuzz_session_signed: signed changes with fuzzed content through the live
 * session into the apply path and the merge layer. The harness is the
 * client (authenticated as test identity 0) and holds three test keys: it
 * builds each change from the input's op text, chains and signs it with
 * lim_change__seal, and sends it as CH lines in batches closed by END. So
 * every check of the receiver runs for real (op grammar, names, values,
 * tags, limits, seq/chain/HLC/clock/signature, equivocation, batches and
 * the amortised signature check of runs) and valid changes reach the merge
 * rules, which a mutated-but-unsigned change never does.
 *
 * Input: LF-separated lines, one change each: a control byte, then the
 * change's ops separated by TAB, each op as it appears in a change without
 * the leading space ("S notes n1 title shi", "N c d n -5", "R c d t sred
 * <tag>", ...); a line with an op that does not parse is skipped unless it
 * is the last. The control byte c:
 *   c & 3     author: test key 0, 1, 2 (3 is 0)
 *   c & 4     reuse the author's last seq: a second, different change for
 *             it (an equivocation); the chain goes on from the first one
 *   c & 8     skip a seq (a gap)
 *   c & 16    stamp it 10 minutes in the future (beyond the 60 s bound)
 *   c & 32    stamp it with the author's previous HLC (not increasing)
 *   c & 64    END the batch after this change
 *   c & 128   send it twice
 * Checks beyond "no crash": everything in fuzz_peer_finish, and
 * convergence: the changes the server stored, applied to a second store in
 * another order (authors interleaved, last author first), give the same
 * state digest (DESIGN.md invariant 1).
 */
#include "fuzz_session_common.h"

typedef struct {
	uint64_t seq, hlc;
	/* Links (changes.md section 6): what the next change, and a second
	 * change for the head's seq, name as prev. */
	unsigned char head[LIM_HASH_BYTES], prev_of_head[LIM_HASH_BYTES];
} signed_chain;

typedef struct {
	char *bytes;
	size_t len;
	unsigned char author[LIM_ID_BYTES];
} signed_item;

/* Changes the server accepted from the last input. The corpus test checks
 * it on a chained input: if the harness and liblim disagree on how a chain
 * links (the prev field), every second change is refused, the harness
 * quietly stops reaching the merge layer, and only this count shows it. */
static uint64_t signed_changes_in;

static void signed_send(fuzz_peer *p, const char *line, size_t n)
{
	if (fuzz_peer_feed(p, line, n) == 0)
		fuzz_peer_step(p, 3);
	size_t pending;
	lim_session__output(p->s, &pending);
	fuzz_peer_drain(p, pending);
}

/* Build, sign and send one change; returns how many CH lines went out. A
 * change with an op the receiver's parser would refuse is dropped unless it
 * is the input's last (a refused change ends the session, so sending every
 * one would stop most inputs before they reach the merge layer; the parser
 * itself is fuzz_change's target). */
static int signed_change(fuzz_peer *p, signed_chain *chains, unsigned c, const char *ops, size_t n,
                         int last, lim_sb *line)
{
	lim_change_builder b = { LIM_SB_INIT, 0 };
	int k = (c & 3) == 3 ? 0 : (int)(c & 3);
	signed_chain *ch = &chains[k];
	unsigned char prev[LIM_HASH_BYTES], hash[LIM_HASH_BYTES];
	uint64_t seq, hlc;
	lim_sb sealed = LIM_SB_INIT;
	int rc;

	for (size_t i = 0; i < n;) {
		const char *tab = memchr(ops + i, '\t', n - i);
		size_t len = tab ? (size_t)(tab - ops - i) : n - i;
		lim_op op;
		if (!last && lim_op__parse(&op, ops + i, len) < 0) {
			lim_sb__free(&b.ops);
			return 0;
		}
		lim_sb__putc(&b.ops, ' ');
		lim_sb__put(&b.ops, ops + i, len);
		b.nops++;
		i += len + 1;
	}
	if (c & 4 && ch->seq) {
		seq = ch->seq;
		memcpy(prev, ch->prev_of_head, LIM_HASH_BYTES);
	} else {
		seq = ch->seq + 1 + ((c & 8) ? 1 : 0);
		memcpy(prev, ch->head, LIM_HASH_BYTES);
	}
	if (seq == 1)
		memset(prev, 0, LIM_HASH_BYTES);
	if (c & 16)
		hlc = (uint64_t)(FUZZ_NOW_MS + 600000) << 16;
	else if (c & 32 && ch->hlc)
		hlc = ch->hlc;
	else
		hlc = ch->hlc ? ch->hlc + 1 : ((uint64_t)(FUZZ_NOW_MS - 3600000 + 1000 * k) << 16);
	rc = lim_change__seal(&sealed, hash, &b, fuzz_pk[k], fuzz_sk[k], seq, hlc, prev);
	lim_sb__free(&b.ops);
	if (rc < 0) {
		lim_sb__free(&sealed);
		return 0; /* over the size or op limit: not a change anyone could sign */
	}
	/* A reused seq forks the chain: the author's next change continues the
	 * first branch, so the equivocation is the only thing out of place. */
	if (!(c & 4) || seq > ch->seq) {
		memcpy(ch->prev_of_head, prev, LIM_HASH_BYTES);
		lim_change__sealed_link(ch->head, hash, &sealed);
		ch->seq = seq;
		ch->hlc = hlc;
	}
	lim_sb__clear(line);
	lim_sb__puts(line, "CH ");
	lim_sb__put(line, sealed.ptr, sealed.len);
	lim_sb__putc(line, '\n');
	FUZZ_CHECK(lim_sb__check(line) == 0, "out of memory");
	signed_send(p, line->ptr, line->len);
	if (c & 128)
		signed_send(p, line->ptr, line->len);
	lim_sb__free(&sealed);
	return (c & 128) ? 2 : 1;
}

static void signed_end(fuzz_peer *p, size_t *in_batch)
{
	char end[32];
	int n = snprintf(end, sizeof(end), "END %zu\n", *in_batch);
	signed_send(p, end, (size_t)n);
	*in_batch = 0;
}

/* Every change of `from`, applied to a fresh store in another order. */
static void signed_converge(lim_db *from)
{
	lim_change_iter *it;
	const char *bytes;
	size_t len, n = 0, cap = 0;
	signed_item *items = NULL;
	int rc;
	lim_db *to;
	char d1[65], d2[65];

	FUZZ_CHECK(lim_db_changes_since(&it, from, NULL, 0) == 0, "changes_since");
	while ((rc = lim_change_iter_next(it, &bytes, &len)) == 0) {
		if (n == cap) {
			cap = cap ? 2 * cap : 16;
			items = realloc(items, cap * sizeof(*items));
			if (!items)
				abort();
		}
		items[n].bytes = malloc(len);
		if (!items[n].bytes)
			abort();
		memcpy(items[n].bytes, bytes, len);
		items[n].len = len;
		FUZZ_CHECK(len > 5 + 2 * LIM_ID_BYTES && lim_hex__decode(items[n].author, LIM_ID_BYTES, bytes + 5, 2 * LIM_ID_BYTES) == 0,
		           "stored change without an author");
		n++;
	}
	FUZZ_CHECK(rc == LIM_EITEROVER, "change iterator: %s", lim_error_name(rc));
	lim_change_iter_free(it);

	/* The log is grouped by author in key order. Interleave: take the next
	 * change of each author in turn, last author first. */
	to = fuzz_open_db();
	{
		size_t starts[8], ends[8], nauthors = 0;
		for (size_t i = 0; i < n; i++) {
			if (i == 0 || memcmp(items[i].author, items[i - 1].author, LIM_ID_BYTES) != 0) {
				FUZZ_CHECK(nauthors < 8, "more authors than the harness has keys");
				starts[nauthors] = i;
				nauthors++;
			}
			ends[nauthors - 1] = i + 1;
		}
		for (int more = 1; more;) {
			more = 0;
			for (size_t a = nauthors; a-- > 0;) {
				if (starts[a] == ends[a])
					continue;
				signed_item *c = &items[starts[a]++];
				rc = lim_db_apply(to, c->bytes, c->len, NULL);
				FUZZ_CHECK(rc == 0, "a change the server stored is refused by another store (%s): %.*s",
				           lim_error_name(rc), (int)c->len, c->bytes);
				more = 1;
			}
		}
	}
	FUZZ_CHECK(lim_db_digest(from, d1) == 0 && lim_db_digest(to, d2) == 0, "digest");
	FUZZ_CHECK(strcmp(d1, d2) == 0, "same changes, other order, other state: %s vs %s", d1, d2);
	fuzz_check_store(to, "applying in another order");
	lim_db_free(to);
	for (size_t i = 0; i < n; i++)
		free(items[i].bytes);
	free(items);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_peer p;
	signed_chain chains[FUZZ_NKEYS];
	const char *in = (const char *)data;
	size_t off = 0, in_batch = 0;
	lim_sb line = LIM_SB_INIT;

	fuzz_begin();
	memset(chains, 0, sizeof(chains));
	fuzz_peer_start(&p, 2, 4);
	fuzz_peer_handshake(&p);
	signed_send(&p, "VV\n", 3);
	while (off < size && !p.over) {
		const char *nl = memchr(in + off, '\n', size - off);
		size_t len = nl ? (size_t)(nl - in - off) : size - off;
		if (len > 0) {
			unsigned c = (unsigned char)in[off];
			in_batch += (size_t)signed_change(&p, chains, c, in + off + 1, len - 1, off + len >= size, &line);
			if ((c & 64) && in_batch)
				signed_end(&p, &in_batch);
		}
		off += len + 1;
	}
	if (in_batch && !p.over)
		signed_end(&p, &in_batch);
	lim_sb__free(&line);
	{
		lim_session_info info;
		lim_session__info(p.s, &info);
		signed_changes_in = info.changes_in;
	}
	fuzz_peer_finish(&p);
	signed_converge(p.db);
	fuzz_peer_stop(&p);
	return 0;
}
