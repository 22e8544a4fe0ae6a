/*
 * See session.h. Memory per session is bounded: the input buffer holds at
 * most one line (LIM_MAX_LINE_BYTES) plus one read, a received batch at
 * most LIM_MAX_BATCH_BYTES, and output stops growing one line past the
 * high-water mark because the log is read only while output is below it
 * (a batch that must run on to end on a verifying signature included: it
 * is written over several pumps). The peer's
 * version vector is the only thing that grows with the network (one entry
 * per author).
 *
 * What the peer holds is tracked as `peer_vv`: its VV message, raised by
 * every change we send it and every change it sends us. Catch-up and live
 * push are the same operation — send what peer_vv lacks — so a change
 * written here, or relayed from a third node, reaches the peer the same way.
 */
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include "session.h"
#include "text.h"

#define RETRY_SKIPPED_MS 1000

typedef enum { ST_HELLO, ST_AUTH, ST_LIVE, ST_CLOSED } state;

typedef struct {
	unsigned char author[LIM_ID_BYTES];
	uint64_t seq;
} vv_item;

struct lim_session {
	lim_db *db;
	int initiator;
	lim_session_config cfg;
	state st;
	unsigned char nonce[LIM_NONCE_BYTES];
	unsigned char peer_id[LIM_ID_BYTES];
	unsigned char transcript[LIM_HASH_BYTES];
	lim_sb my_hello, peer_hello;

	lim_sb in;
	lim_sb out;
	size_t out_off;

	vv_item *peer_vv;
	size_t npeer_vv, cap_peer_vv;
	int have_peer_vv;
	int dirty;              /* something new may be sendable */
	size_t unacked;
	int sent_synced, peer_synced;
	/* A batch extended past its limits to end on a verifying signature
	 * (find_run_end), written across pumps as output drains. */
	struct {
		int open;
		unsigned char author[LIM_ID_BYTES];
		char author_hex[17];
		uint64_t next_seq, end_seq; /* the author's changes still to send */
		size_t in_batch;
	} ext;

	lim_sb batch;           /* received CH payloads, back to back */
	lim_span *batch_items;  /* offsets into batch until END */
	size_t nbatch, cap_batch;

	int64_t last_rx, last_ping;
	int64_t resend_vv_at;   /* ask again for skipped changes (0: no need) */
	int64_t now;            /* time of the latest feed/tick */
	uint64_t changes_in, changes_out, bytes_in, bytes_out;
	int error_code, error_sent;
	char error[256];
	lim_sb peer_state;
	lim_sb scratch;
};

void lim_session_config__defaults(lim_session_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->idle_timeout_ms = 30000;
	cfg->keepalive_ms = 10000;
	cfg->batch_changes = 500;
	cfg->window_changes = 2000;
	cfg->output_high_water = 1 << 20;
}

static void say(lim_session *s, const char *fmt, ...) LIM_PRINTF(2, 3);
static void say(lim_session *s, const char *fmt, ...)
{
	char msg[512], id[17];
	va_list ap;
	if (!s->cfg.log)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	lim_hex__encode(id, s->peer_id, 8);
	char line[600];
	snprintf(line, sizeof(line), "peer %s: %s", s->peer_hello.len ? id : "(before HELLO)", msg);
	s->cfg.log(s->cfg.ctx, line);
}

lim_session *lim_session__new(lim_db *db, int initiator, const lim_session_config *cfg, int64_t now_ms)
{
	lim_session *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->db = db;
	s->initiator = initiator;
	s->cfg = *cfg;
	if (s->cfg.batch_changes == 0 || s->cfg.batch_changes > LIM_MAX_BATCH_CHANGES)
		s->cfg.batch_changes = LIM_MAX_BATCH_CHANGES;
	if (s->cfg.window_changes == 0 || s->cfg.window_changes > LIM_MAX_UNACKED_CHANGES)
		s->cfg.window_changes = LIM_MAX_UNACKED_CHANGES;
	if (s->cfg.window_changes < s->cfg.batch_changes)
		s->cfg.window_changes = s->cfg.batch_changes;
	/* Pumping stops output at most one line (and an END and a SYNCED) past
	 * the high-water mark. Capping the mark at a quarter of
	 * LIM_MAX_UNREAD_OUTPUT keeps our own changes under three quarters of
	 * it, so a peer is cut off (ERR 429) for replies it leaves unread, not
	 * for catch-up it is still reading; it also keeps every batch under
	 * LIM_MAX_BATCH_BYTES. */
	if (s->cfg.output_high_water == 0 || s->cfg.output_high_water > LIM_MAX_UNREAD_OUTPUT / 4)
		s->cfg.output_high_water = LIM_MAX_UNREAD_OUTPUT / 4;
	s->last_rx = now_ms;
	s->last_ping = now_ms;
	randombytes_buf(s->nonce, sizeof(s->nonce));
	lim_msg__hello(&s->my_hello, db->public_key, s->nonce);
	lim_sb__put(&s->out, s->my_hello.ptr, s->my_hello.len);
	s->my_hello.len--; /* the transcript uses the line without its LF */
	return s;
}

void lim_session__free(lim_session *s)
{
	if (!s)
		return;
	lim_sb__free(&s->my_hello);
	lim_sb__free(&s->peer_hello);
	lim_sb__free(&s->in);
	lim_sb__free(&s->out);
	lim_sb__free(&s->batch);
	lim_sb__free(&s->peer_state);
	lim_sb__free(&s->scratch);
	free(s->batch_items);
	free(s->peer_vv);
	free(s);
}

const char *lim_session__output(lim_session *s, size_t *len)
{
	*len = s->out.len - s->out_off;
	return s->out.ptr ? s->out.ptr + s->out_off : "";
}

void lim_session__consume(lim_session *s, size_t n)
{
	s->out_off += n;
	s->bytes_out += n;
	if (s->out_off == s->out.len) {
		s->out_off = 0;
		lim_sb__clear(&s->out);
	} else if (s->out_off > (1 << 16) && s->out_off * 2 > s->out.len) {
		memmove(s->out.ptr, s->out.ptr + s->out_off, s->out.len - s->out_off);
		s->out.len -= s->out_off;
		s->out_off = 0;
	}
}

/* Send ERR and end the session. */
static int fail(lim_session *s, int code, const char *fmt, ...) LIM_PRINTF(3, 4);
static int fail(lim_session *s, int code, const char *fmt, ...)
{
	va_list ap;
	if (s->st == ST_CLOSED)
		return LIM_EPROTOCOL;
	va_start(ap, fmt);
	vsnprintf(s->error, sizeof(s->error), fmt, ap);
	va_end(ap);
	s->error_code = code;
	s->error_sent = 1;
	lim_msg__err(&s->out, code, s->error);
	s->st = ST_CLOSED;
	say(s, "closing: ERR %d %s", code, s->error);
	return lim__error(code == LIM_PERR_AUTH || code == LIM_PERR_NETWORK || code == LIM_PERR_FORBIDDEN
	                      ? LIM_EAUTH : LIM_EPROTOCOL, "sync: %s", s->error);
}

/* ------------------------------------------------------------ peer vv */

static vv_item *vv_find(lim_session *s, const unsigned char author[LIM_ID_BYTES], size_t *pos)
{
	size_t lo = 0, hi = s->npeer_vv;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = memcmp(s->peer_vv[mid].author, author, LIM_ID_BYTES);
		if (c == 0)
			return &s->peer_vv[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*pos = lo;
	return NULL;
}

/* The peer holds (author, seq): raise its entry. */
static int vv_raise(lim_session *s, const unsigned char author[LIM_ID_BYTES], uint64_t seq)
{
	size_t pos = 0;
	vv_item *it = vv_find(s, author, &pos);
	if (it) {
		if (seq > it->seq)
			it->seq = seq;
		return 0;
	}
	if (s->npeer_vv == s->cap_peer_vv) {
		size_t cap = s->cap_peer_vv ? 2 * s->cap_peer_vv : 16;
		vv_item *g = realloc(s->peer_vv, cap * sizeof(*g));
		if (!g)
			return lim__error(LIM_ENOMEM, "out of memory");
		s->peer_vv = g;
		s->cap_peer_vv = cap;
	}
	memmove(&s->peer_vv[pos + 1], &s->peer_vv[pos], (s->npeer_vv - pos) * sizeof(*s->peer_vv));
	memcpy(s->peer_vv[pos].author, author, LIM_ID_BYTES);
	s->peer_vv[pos].seq = seq;
	s->npeer_vv++;
	return 0;
}

static void vv_text(lim_session *s, lim_sb *out)
{
	char hex[2 * LIM_ID_BYTES + 1];
	lim_sb__clear(out);
	for (size_t i = 0; i < s->npeer_vv; i++) {
		lim_hex__encode(hex, s->peer_vv[i].author, LIM_ID_BYTES);
		lim_sb__printf(out, "%s %llu\n", hex, (unsigned long long)s->peer_vv[i].seq);
	}
}

static void send_vv(lim_session *s)
{
	lim_buf vv = LIM_BUF_INIT;
	size_t entries = 0;
	lim_sb__clear(&s->scratch);
	if (lim_db_version_vector(&vv, s->db) == 0) {
		/* "<hex> <seq>\n" lines become "<hex>:<seq>" entries. Past the
		 * limit, authors are left out: the peer then resends their changes,
		 * which arrive as duplicates — wasteful but correct. */
		for (size_t i = 0; i < vv.size; i++) {
			char c = vv.ptr[i];
			if (i == 0 || vv.ptr[i - 1] == '\n') {
				if (++entries > LIM_MAX_VV_AUTHORS)
					break;
				if (i > 0)
					lim_sb__putc(&s->scratch, ' ');
			}
			if (c == '\n')
				continue;
			lim_sb__putc(&s->scratch, c == ' ' ? ':' : c);
		}
	}
	lim_buf_dispose(&vv);
	lim_msg__print_span(&s->out, LIM_MSG_VV, s->scratch.ptr, s->scratch.len);
}

/* ------------------------------------------------------------ handshake */

static int on_hello(lim_session *s, const lim_msg *m, const char *line, size_t len)
{
	if (m->version != LIM_PROTOCOL_VERSION)
		return fail(s, LIM_PERR_VERSION, "this node speaks protocol version %d only", LIM_PROTOCOL_VERSION);
	if (sodium_memcmp(m->nonce, s->nonce, LIM_NONCE_BYTES) == 0)
		return fail(s, LIM_PERR_AUTH, "the peer echoed our nonce");
	memcpy(s->peer_id, m->id, LIM_ID_BYTES);
	if (s->cfg.allow) {
		int listed = 0;
		for (size_t i = 0; i < s->cfg.nallow && !listed; i++)
			listed = memcmp(s->cfg.allow[i], m->id, LIM_ID_BYTES) == 0;
		if (!listed)
			return fail(s, LIM_PERR_FORBIDDEN, "this node does not accept that peer id");
	}
	lim_sb__put(&s->peer_hello, line, len);
	if (s->initiator)
		lim_handshake__hash(s->transcript, s->my_hello.ptr, s->my_hello.len, line, len);
	else
		lim_handshake__hash(s->transcript, line, len, s->my_hello.ptr, s->my_hello.len);
	unsigned char sig[64], proof[LIM_HASH_BYTES];
	lim_handshake__prove(sig, proof, s->initiator ? 'C' : 'S', s->transcript, s->db->secret_key,
	                     s->db->network_key);
	lim_msg__auth(&s->out, sig, proof);
	s->st = ST_AUTH;
	return 0;
}

static int on_auth(lim_session *s, const lim_msg *m)
{
	char peer_role = s->initiator ? 'S' : 'C';
	if (lim_handshake__check_sig(m->sig, peer_role, s->transcript, s->peer_id) != 0)
		return fail(s, LIM_PERR_AUTH, "the handshake signature does not verify for the claimed node id");
	if (lim_handshake__check_proof(m->proof, peer_role, s->transcript, s->db->network_key) != 0)
		return fail(s, LIM_PERR_NETWORK, "the peer is not a member of this network");
	s->st = ST_LIVE;
	say(s, "authenticated");
	if (!s->cfg.observer)
		send_vv(s); /* a peer only sends changes once it has our VV */
	return 0;
}

/* ------------------------------------------------------------ receiving changes */

typedef struct {
	lim_session *s;
} applied_ctx;

static void on_applied(void *ctx, const unsigned char author[LIM_ID_BYTES], uint64_t seq)
{
	lim_session *s = ctx;
	s->changes_in++;
	if (s->cfg.on_applied)
		s->cfg.on_applied(s->cfg.ctx, author, seq);
}

static int on_end(lim_session *s, uint64_t n)
{
	lim_batch_result res;
	int rc;
	if (n != s->nbatch)
		return fail(s, LIM_PERR_MALFORMED, "END %llu after %zu changes", (unsigned long long)n, s->nbatch);
	for (size_t i = 0; i < s->nbatch; i++) /* offsets become pointers now that batch stopped growing */
		s->batch_items[i].p = s->batch.ptr + (uintptr_t)s->batch_items[i].p;
	rc = lim_db__apply_batch(s->db, s->batch_items, s->nbatch, &res, on_applied, s);
	if (rc < 0) {
		int code = lim_error_last_code();
		if (code == LIM_EIO || code == LIM_EFAILED || code == LIM_ENOMEM || code == LIM_ETXN)
			return fail(s, LIM_PERR_INTERNAL, "%s", lim_error_last());
		return fail(s, LIM_PERR_REJECTED, "%s: %s", lim_error_name(code), lim_error_last());
	}
	if (res.skipped)
		say(s, "skipped %zu changes: %s", res.skipped, res.skip_message);
	/* Changes held back by the clock bound (or stuck behind one) are asked
	 * for again by re-sending our VV; an equivocation never will apply. */
	if (res.retry_later && !s->resend_vv_at)
		s->resend_vv_at = s->now + RETRY_SKIPPED_MS;
	/* Whatever the peer sent, it holds. */
	for (size_t i = 0; i < s->nbatch; i++) {
		unsigned char author[LIM_ID_BYTES];
		uint64_t seq;
		if (lim_change__peek(s->batch_items[i].p, s->batch_items[i].n, author, &seq) == 0)
			vv_raise(s, author, seq);
	}
	if (res.applied)
		say(s, "applied a batch of %zu changes (%zu already held)", res.applied, res.duplicates);
	lim_msg__print_count(&s->out, LIM_MSG_ACK, n);
	lim_sb__clear(&s->batch);
	s->nbatch = 0;
	s->dirty = 1;
	return 0;
}

static int on_change(lim_session *s, const lim_span *c)
{
	if (s->nbatch >= LIM_MAX_BATCH_CHANGES)
		return fail(s, LIM_PERR_TOO_LARGE, "more than %d changes before END", LIM_MAX_BATCH_CHANGES);
	if (s->batch.len + c->n > LIM_MAX_BATCH_BYTES)
		return fail(s, LIM_PERR_TOO_LARGE, "a batch over %d bytes", LIM_MAX_BATCH_BYTES);
	if (c->n < 5 + 2 * LIM_ID_BYTES + 2 || memcmp(c->p, "lim1 ", 5) != 0 ||
	    !memchr(c->p + 5 + 2 * LIM_ID_BYTES + 1, ' ', c->n - 5 - 2 * LIM_ID_BYTES - 1))
		return fail(s, LIM_PERR_REJECTED, "LIM_EMALFORMED: CH does not carry a change");
	if (s->nbatch == s->cap_batch) {
		size_t cap = s->cap_batch ? 2 * s->cap_batch : 64;
		lim_span *g = realloc(s->batch_items, cap * sizeof(*g));
		if (!g)
			return fail(s, LIM_PERR_INTERNAL, "out of memory");
		s->batch_items = g;
		s->cap_batch = cap;
	}
	s->batch_items[s->nbatch].p = (const char *)(uintptr_t)s->batch.len;
	s->batch_items[s->nbatch].n = c->n;
	lim_sb__put(&s->batch, c->p, c->n);
	if (s->batch.oom)
		return fail(s, LIM_PERR_INTERNAL, "out of memory");
	s->nbatch++;
	return 0;
}

/* ------------------------------------------------------------ lines */

static int handle_line(lim_session *s, const char *line, size_t len)
{
	lim_msg m;
	int perr;
	if (s->st == ST_HELLO || s->st == ST_AUTH) {
		/* Before authentication the peer may be anyone: decide on the
		 * keyword alone and parse only the handshake line this state
		 * expects (or an ERR, allowed everywhere). Whatever else is on
		 * the line, well-formed or not, is never looked at: 409. The
		 * length limit is framing, not parsing, and holds everywhere. */
		lim_msg_type want = s->st == ST_HELLO ? LIM_MSG_HELLO : LIM_MSG_AUTH, t;
		if (len > LIM_MAX_LINE_BYTES)
			return fail(s, LIM_PERR_TOO_LARGE, "line too long");
		if (lim_msg__keyword(line, len, &t) < 0 || (t != want && t != LIM_MSG_ERR))
			return fail(s, LIM_PERR_STATE, "%s",
			            s->st == ST_HELLO ? "the first line must be HELLO" : "expected AUTH");
	}
	if (lim_msg__parse(&m, line, len, &perr) < 0)
		return fail(s, perr, "%s", lim_error_last());
	if (m.type == LIM_MSG_ERR) {
		s->error_code = (int)m.count;
		snprintf(s->error, sizeof(s->error), "%.*s", (int)m.arg.n, m.arg.p);
		say(s, "peer closed with ERR %d %s", s->error_code, s->error);
		s->st = ST_CLOSED;
		return lim__error(LIM_EPROTOCOL, "the peer reported ERR %d %s", s->error_code, s->error);
	}
	switch (s->st) {
	case ST_HELLO:
		if (m.type != LIM_MSG_HELLO)
			return fail(s, LIM_PERR_STATE, "the first line must be HELLO");
		return on_hello(s, &m, line, len);
	case ST_AUTH:
		if (m.type != LIM_MSG_AUTH)
			return fail(s, LIM_PERR_STATE, "expected AUTH");
		return on_auth(s, &m);
	case ST_CLOSED:
		return LIM_EPROTOCOL;
	case ST_LIVE:
		break;
	}
	switch (m.type) {
	case LIM_MSG_HELLO:
	case LIM_MSG_AUTH:
		return fail(s, LIM_PERR_STATE, "the handshake is already complete");
	case LIM_MSG_VV: {
		lim_span rest = m.arg;
		unsigned char a[LIM_ID_BYTES];
		uint64_t seq;
		s->npeer_vv = 0;
		while (lim_vv__next(&rest, a, &seq) == 1)
			if (vv_raise(s, a, seq) < 0)
				return fail(s, LIM_PERR_INTERNAL, "out of memory");
		s->have_peer_vv = 1;
		s->dirty = 1;
		return 0;
	}
	case LIM_MSG_CH:
		return on_change(s, &m.arg);
	case LIM_MSG_END:
		return on_end(s, m.count);
	case LIM_MSG_ACK:
		if (m.count > s->unacked)
			return fail(s, LIM_PERR_STATE, "ACK of more changes than were sent");
		s->unacked -= (size_t)m.count;
		s->dirty = 1;
		return 0;
	case LIM_MSG_SYNCED:
		s->peer_synced = 1;
		return 0;
	case LIM_MSG_PING:
		lim_msg__print_span(&s->out, LIM_MSG_PONG, m.arg.p, m.arg.n);
		return 0;
	case LIM_MSG_PONG:
		return 0;
	case LIM_MSG_STATUS:
		lim_sb__clear(&s->scratch);
		if (s->cfg.status_json)
			s->cfg.status_json(s->cfg.ctx, &s->scratch);
		else
			lim_sb__puts(&s->scratch, "{}");
		lim_msg__print_span(&s->out, LIM_MSG_STATE, s->scratch.ptr, s->scratch.len);
		return 0;
	case LIM_MSG_STATE:
		lim_sb__clear(&s->peer_state);
		lim_sb__put(&s->peer_state, m.arg.p, m.arg.n);
		return 0;
	case LIM_MSG_BYE:
		say(s, "peer said BYE");
		s->st = ST_CLOSED;
		return LIM_EPROTOCOL;
	default:
		return fail(s, LIM_PERR_STATE, "unexpected message");
	}
}

int lim_session__feed(lim_session *s, const char *data, size_t n, int64_t now_ms)
{
	size_t start = 0;
	int rc = 0;
	if (s->st == ST_CLOSED)
		return LIM_EPROTOCOL;
	s->bytes_in += n;
	s->now = now_ms;
	lim_sb__put(&s->in, data, n);
	if (s->in.oom)
		return fail(s, LIM_PERR_INTERNAL, "out of memory");
	while (rc == 0 && s->st != ST_CLOSED) {
		char *nl = memchr(s->in.ptr + start, '\n', s->in.len - start);
		if (!nl)
			break;
		/* Only a complete line counts as life: a peer trickling bytes
		 * (or never finishing its handshake) still times out. */
		s->last_rx = now_ms;
		rc = handle_line(s, s->in.ptr + start, (size_t)(nl - s->in.ptr - start));
		start = (size_t)(nl - s->in.ptr) + 1;
		if (rc == 0 && s->st != ST_CLOSED && s->out.len - s->out_off > LIM_MAX_UNREAD_OUTPUT) {
			rc = fail(s, LIM_PERR_FLOW, "the peer sends requests without reading the replies");
			break;
		}
	}
	if (start) {
		memmove(s->in.ptr, s->in.ptr + start, s->in.len - start);
		s->in.len -= start;
	}
	if (rc == 0 && s->st != ST_CLOSED && s->in.len > LIM_MAX_LINE_BYTES)
		return fail(s, LIM_PERR_TOO_LARGE, "a line longer than %d bytes", LIM_MAX_LINE_BYTES);
	if (rc == 0 && s->st != ST_CLOSED && s->dirty)
		rc = lim_session__pump(s, now_ms);
	return s->st == ST_CLOSED ? LIM_EPROTOCOL : rc;
}

/* ------------------------------------------------------------ sending */

/*
 * The receiver verifies only the last signature of each author's run in a
 * batch; the links cover every byte of the rest, so no relay can slip bad
 * signature bytes into a run. Its author still can: a change whose own
 * signature does not verify, linked to by the author's next, validly
 * signed change, is accepted inside a run (PROTOCOL.md 14.3). Ending a
 * batch on it would make the receiver verify it alone and refuse the whole
 * batch, and the link would never sync again. Every other run in a batch
 * ends at that author's head, which was verified when it arrived; only the
 * last change of a batch can be cut mid-chain. So check that one signature
 * per batch and, if it is bad, carry on past it (find_run_end).
 */
static int ends_on_good_signature(const char *bytes, size_t len)
{
	lim_change c;
	unsigned char hash[LIM_HASH_BYTES];
	int ok;
	if (lim_change__parse(&c, bytes, len) < 0)
		return 0;
	lim_change__hash(hash, bytes, c.body_len);
	ok = lim_change__verify(&c, hash) == 0;
	lim_change__dispose(&c);
	return ok;
}

static size_t pending_output(const lim_session *s)
{
	return s->out.len - s->out_off;
}

static void queue_change(lim_session *s, const unsigned char author[LIM_ID_BYTES], uint64_t seq, const char *bytes,
                         size_t len)
{
	vv_raise(s, author, seq);
	lim_msg__print_span(&s->out, LIM_MSG_CH, bytes, len);
	s->changes_out++;
}

static void end_batch(lim_session *s, size_t *in_batch)
{
	lim_msg__print_count(&s->out, LIM_MSG_END, *in_batch);
	s->unacked += *in_batch;
	*in_batch = 0;
}

/* An iterator over what the peer lacks, except that `author`'s changes
 * start right after seq `after`, whatever our view of the peer says: a run
 * being written continues where it stopped, even if the peer's changes or
 * a new VV moved the view meanwhile. */
static int iter_after(lim_session *s, lim_change_iter **it, const unsigned char author[LIM_ID_BYTES], uint64_t after)
{
	size_t pos = 0;
	vv_item *e;
	uint64_t held;
	if (vv_raise(s, author, after) < 0) /* so that the author has an entry */
		return -1;
	e = vv_find(s, author, &pos);
	held = e->seq;
	e->seq = after;
	vv_text(s, &s->scratch);
	e->seq = held;
	return lim_db_changes_since(it, s->db, s->scratch.ptr ? s->scratch.ptr : "", s->scratch.len);
}

/*
 * The batch being written has reached a limit, but its last change (seq
 * `seq` of `author`) has a signature that does not verify. Look ahead in
 * the author's chain, writing nothing, for the first change whose signature
 * verifies and that the batch (in_batch changes and batch_bytes bytes of
 * them so far) can still take within LIM_MAX_BATCH_CHANGES and
 * LIM_MAX_BATCH_BYTES. Looking first, rather than writing while looking,
 * keeps output bounded and leaves nothing to take back from bytes that may
 * already be on the wire. Returns 1 with its seq in *end_seq, 0 if there is
 * none (the author's chain may also just end: its head is then bad too,
 * which only a damaged store holds), <0 on a store error.
 */
static int find_run_end(lim_session *s, const unsigned char author[LIM_ID_BYTES], uint64_t seq, size_t in_batch,
                        size_t batch_bytes, uint64_t *end_seq)
{
	lim_change_iter *it;
	const char *bytes;
	size_t len;
	int rc, found = 0;
	if ((rc = iter_after(s, &it, author, seq)) < 0)
		return rc;
	while ((rc = lim_change_iter_next(it, &bytes, &len)) == 0) {
		unsigned char a[LIM_ID_BYTES];
		uint64_t q;
		int c;
		(void)lim_change__peek(bytes, len, a, &q); /* our own log: it cannot fail */
		c = memcmp(a, author, LIM_ID_BYTES);
		if (c < 0)
			continue; /* new changes of an earlier author: not part of this run */
		if (c > 0 || q != seq + 1)
			break;
		seq = q;
		if (++in_batch > LIM_MAX_BATCH_CHANGES || (batch_bytes += len) > LIM_MAX_BATCH_BYTES)
			break;
		if (ends_on_good_signature(bytes, len)) {
			*end_seq = q;
			found = 1;
			break;
		}
	}
	lim_change_iter_free(it);
	return rc < 0 && rc != LIM_EITEROVER ? rc : found;
}

/*
 * Write the rest of a batch that find_run_end extended: the author's changes
 * up to ext.end_seq, only while output is below the high-water mark, so a
 * peer that does not read never makes it grow by more than one line. What
 * is left waits for the next pump; the lines the session writes meanwhile
 * (ACK, PONG, ...) go between the batch's CH lines, which the protocol
 * allows (PROTOCOL.md 7.4).
 */
static int pump_extension(lim_session *s)
{
	lim_change_iter *it = NULL;
	const char *bytes;
	size_t len;
	int rc = 0;
	while (s->ext.next_seq <= s->ext.end_seq && pending_output(s) < s->cfg.output_high_water) {
		unsigned char a[LIM_ID_BYTES];
		uint64_t q;
		int c;
		if (!it && (rc = iter_after(s, &it, s->ext.author, s->ext.next_seq - 1)) < 0)
			break;
		if ((rc = lim_change_iter_next(it, &bytes, &len)) < 0)
			break;
		(void)lim_change__peek(bytes, len, a, &q);
		c = memcmp(a, s->ext.author, LIM_ID_BYTES);
		if (c < 0)
			continue; /* an earlier author's new change: sent after this batch */
		if (c > 0 || q != s->ext.next_seq) {
			rc = LIM_EITEROVER;
			break;
		}
		queue_change(s, a, q, bytes, len);
		s->ext.in_batch++;
		s->ext.next_seq++;
	}
	lim_change_iter_free(it);
	if (rc == LIM_EITEROVER) {
		/* find_run_end saw these changes; a log only grows, so this is a
		 * damaged store. End the batch rather than stall the link. */
		say(s, "the chain of %.16s... ended before seq %llu; ending the batch", s->ext.author_hex,
		    (unsigned long long)s->ext.end_seq);
		s->ext.next_seq = s->ext.end_seq + 1;
		rc = 0;
	}
	if (rc < 0)
		return fail(s, LIM_PERR_INTERNAL, "%s", lim_error_last());
	if (s->ext.next_seq > s->ext.end_seq) {
		end_batch(s, &s->ext.in_batch);
		s->ext.open = 0;
	}
	return 0;
}

/* Where the current author's run began in the batch being written, so a
 * run that cannot end on a good signature can be taken back out. */
typedef struct {
	unsigned char author[LIM_ID_BYTES];
	size_t out_len, in_batch;
	uint64_t peer_seq; /* our view of the peer's seq for author before the run */
} run_mark;

static uint64_t vv_seq(lim_session *s, const unsigned char author[LIM_ID_BYTES])
{
	size_t pos = 0;
	vv_item *it = vv_find(s, author, &pos);
	return it ? it->seq : 0;
}

/*
 * No change with a good signature within LIM_MAX_BATCH_CHANGES: only the
 * author can have linked that many bad signatures (PROTOCOL.md 14.3), and
 * no receiver would take a batch ending on one. Take the run back out of
 * the batch (all of it was written by this pump, so none of it has been
 * consumed); if it began the batch, give up relaying that author's run on
 * this connection, so that it alone stalls and the other authors carry on.
 * Returns 1 when the caller must skip the rest of the author's changes.
 */
static int take_back_run(lim_session *s, const run_mark *m, size_t *in_batch)
{
	size_t dropped = *in_batch - m->in_batch;
	s->out.len = m->out_len;
	s->changes_out -= dropped;
	*in_batch = m->in_batch;
	if (m->in_batch > 0) {
		size_t pos = 0;
		vv_item *it = vv_find(s, m->author, &pos);
		if (it)
			it->seq = m->peer_seq; /* the run is sent again, from its start, in the next batch */
		end_batch(s, in_batch);
		return 0;
	}
	char who[2 * LIM_ID_BYTES + 1];
	lim_hex__encode(who, m->author, LIM_ID_BYTES);
	say(s, "%.16s...: over %d changes in a row from seq %llu have bad signatures (run lim verify); "
	    "not relaying them",
	    who, LIM_MAX_BATCH_CHANGES, (unsigned long long)m->peer_seq + 1);
	return 1;
}

/* Read the log and write whole batches while the window and output allow;
 * a batch that must run past its limits is handed to pump_extension. */
static int pump_log(lim_session *s)
{
	lim_change_iter *it = NULL;
	const char *bytes;
	size_t len, in_batch = 0, batch_bytes = 0;
	int rc = 0, skipping = 0;
	run_mark run;

	while (s->unacked + in_batch < s->cfg.window_changes && pending_output(s) < s->cfg.output_high_water) {
		if (!it) {
			vv_text(s, &s->scratch);
			if ((rc = lim_db_changes_since(&it, s->db, s->scratch.ptr ? s->scratch.ptr : "", s->scratch.len)) < 0)
				return fail(s, LIM_PERR_INTERNAL, "%s", lim_error_last());
		}
		rc = lim_change_iter_next(it, &bytes, &len);
		if (rc == LIM_EITEROVER) {
			rc = 0;
			s->dirty = 0;
			break;
		}
		if (rc < 0) {
			lim_change_iter_free(it);
			return fail(s, LIM_PERR_INTERNAL, "%s", lim_error_last());
		}
		unsigned char author[LIM_ID_BYTES];
		uint64_t seq, end_seq;
		(void)lim_change__peek(bytes, len, author, &seq);
		if (skipping && memcmp(author, run.author, LIM_ID_BYTES) == 0) {
			vv_raise(s, author, seq);
			continue;
		}
		skipping = 0;
		if (in_batch == 0 || memcmp(author, run.author, LIM_ID_BYTES) != 0) {
			memcpy(run.author, author, LIM_ID_BYTES);
			run.out_len = s->out.len;
			run.in_batch = in_batch;
			run.peer_seq = vv_seq(s, author);
		}
		queue_change(s, author, seq, bytes, len);
		in_batch++;
		batch_bytes += len;
		if (in_batch < s->cfg.batch_changes && s->unacked + in_batch < s->cfg.window_changes &&
		    pending_output(s) < s->cfg.output_high_water)
			continue;
		if (ends_on_good_signature(bytes, len)) {
			end_batch(s, &in_batch);
			batch_bytes = 0;
			continue;
		}
		rc = find_run_end(s, author, seq, in_batch, batch_bytes, &end_seq);
		if (rc < 0) {
			lim_change_iter_free(it);
			return fail(s, LIM_PERR_INTERNAL, "%s", lim_error_last());
		}
		if (rc == 1) {
			say(s, "a stored change of %.16s.../%llu has a bad signature (run lim verify); sending past it",
			    bytes + 5, (unsigned long long)seq);
			s->ext.open = 1;
			memcpy(s->ext.author, author, LIM_ID_BYTES);
			memcpy(s->ext.author_hex, bytes + 5, 16);
			s->ext.next_seq = seq + 1;
			s->ext.end_seq = end_seq;
			s->ext.in_batch = in_batch;
			in_batch = 0;
			rc = 0;
			break;
		}
		rc = 0;
		skipping = take_back_run(s, &run, &in_batch);
		batch_bytes = 0;
		if (!skipping) {
			/* The iterator is past the run: start again from the peer's view. */
			lim_change_iter_free(it);
			it = NULL;
		}
	}
	lim_change_iter_free(it);
	/* The log ended: this last run ends at its author's head. */
	if (in_batch)
		end_batch(s, &in_batch);
	return rc;
}

int lim_session__pump(lim_session *s, int64_t now_ms)
{
	int rc;
	LIM_UNUSED(now_ms);
	/* An open extended batch keeps `dirty` set: the log is not done. */
	if (s->st != ST_LIVE || !s->have_peer_vv || !s->dirty || s->cfg.observer)
		return 0;
	for (;;) {
		if (s->ext.open && (rc = pump_extension(s)) < 0)
			return rc;
		if (s->ext.open)
			break; /* output is full: the rest of the batch waits for the peer to read */
		if ((rc = pump_log(s)) < 0)
			return rc;
		if (!s->ext.open)
			break;
	}
	if (!s->dirty && !s->sent_synced) {
		lim_msg__print_span(&s->out, LIM_MSG_SYNCED, NULL, 0);
		s->sent_synced = 1;
	}
	if (s->out.oom)
		return fail(s, LIM_PERR_INTERNAL, "out of memory");
	return 0;
}

void lim_session__mark_dirty(lim_session *s)
{
	s->dirty = 1;
}

void lim_session__request_status(lim_session *s)
{
	if (s->st != ST_CLOSED)
		lim_msg__print_span(&s->out, LIM_MSG_STATUS, NULL, 0);
}

void lim_session__bye(lim_session *s)
{
	/* BYE is a message of the live phase; mid-handshake we just close. */
	if (s->st == ST_LIVE)
		lim_msg__print_span(&s->out, LIM_MSG_BYE, NULL, 0);
	s->st = ST_CLOSED;
}

int64_t lim_session__next_deadline(const lim_session *s)
{
	int64_t idle = s->last_rx + s->cfg.idle_timeout_ms;
	int64_t ping = (s->last_ping > s->last_rx ? s->last_ping : s->last_rx) + s->cfg.keepalive_ms;
	int64_t next = s->st == ST_LIVE && ping < idle ? ping : idle;
	return s->resend_vv_at && s->resend_vv_at < next ? s->resend_vv_at : next;
}

/*
 * Keep-alive is driven by what we receive: when the peer has been quiet for
 * keepalive_ms we PING it, and its PONG resets our idle timer. So the side
 * with the stricter idle timeout keeps the connection alive by itself,
 * whatever the peer's settings.
 */
int lim_session__tick(lim_session *s, int64_t now_ms)
{
	if (s->st == ST_CLOSED)
		return LIM_EPROTOCOL;
	s->now = now_ms;
	if (now_ms - s->last_rx >= s->cfg.idle_timeout_ms)
		return fail(s, LIM_PERR_TIMEOUT, "nothing received for %lld ms", (long long)s->cfg.idle_timeout_ms);
	if (s->st == ST_LIVE && s->resend_vv_at && now_ms >= s->resend_vv_at) {
		s->resend_vv_at = 0;
		send_vv(s);
	}
	if (s->st == ST_LIVE && now_ms - s->last_rx >= s->cfg.keepalive_ms &&
	    now_ms - s->last_ping >= s->cfg.keepalive_ms) {
		char token[24]; /* our clock: any token of 1..64 bytes would do */
		int n = snprintf(token, sizeof(token), "%lld", (long long)now_ms);
		lim_msg__print_span(&s->out, LIM_MSG_PING, token, (size_t)n);
		s->last_ping = now_ms;
	}
	return 0;
}

void lim_session__info(lim_session *s, lim_session_info *out)
{
	memset(out, 0, sizeof(*out));
	out->authenticated = s->st == ST_LIVE || (s->st == ST_CLOSED && s->have_peer_vv);
	out->closed = s->st == ST_CLOSED;
	out->synced = s->sent_synced && s->peer_synced && s->unacked == 0 && s->nbatch == 0 && !s->dirty;
	memcpy(out->peer_id, s->peer_id, LIM_ID_BYTES);
	out->changes_in = s->changes_in;
	out->changes_out = s->changes_out;
	out->bytes_in = s->bytes_in;
	out->bytes_out = s->bytes_out;
	out->error_code = s->error_code;
	out->error_sent = s->error_sent;
	memcpy(out->error, s->error, sizeof(out->error));
	out->peer_state = s->peer_state.len ? s->peer_state.ptr : NULL;
	out->behind = 0;
	if (s->st == ST_LIVE && s->have_peer_vv) {
		for (size_t i = 0; i < s->npeer_vv; i++) {
			int64_t id;
			uint64_t ours, hlc;
			unsigned char head[LIM_HASH_BYTES];
			LIM_DB_LOCK(s->db);
			int rc = lim_db__author(s->db, s->peer_vv[i].author, &id, &ours, head, &hlc);
			LIM_DB_UNLOCK(s->db);
			if (rc == 0 && s->peer_vv[i].seq > ours)
				out->behind += s->peer_vv[i].seq - ours;
		}
	}
}
