/*
 * One sync conversation with one peer, as a state machine with no I/O:
 * bytes from the peer go in through lim_session__feed, bytes for the peer
 * come out of lim_session__output, and time is a parameter. The network
 * layer (node.c) and the deterministic simulation test drive it the same way.
 *
 * States: HELLO sent -> peer HELLO checked, AUTH sent -> peer AUTH checked,
 * VV sent -> live (catch-up then live push, both by lim_session__pump).
 * Nothing but HELLO and AUTH (and ERR) is parsed before the peer is
 * authenticated: any other line gets ERR 409 on its keyword alone.
 */
#ifndef LIM_SESSION_H
#define LIM_SESSION_H

#include "db.h"
#include "proto.h"

typedef struct lim_session lim_session;

typedef struct {
	const unsigned char (*allow)[LIM_ID_BYTES]; /* NULL: any member of the network */
	size_t nallow;
	int64_t idle_timeout_ms;  /* close when nothing arrives for this long */
	int64_t keepalive_ms;     /* send PING when nothing was received for this long */
	size_t batch_changes;     /* CH lines per END, at most LIM_MAX_BATCH_CHANGES */
	size_t window_changes;    /* sent but unacknowledged, at most LIM_MAX_UNACKED_CHANGES */
	size_t output_high_water; /* stop reading the log while this much output waits
	                             (0 or over LIM_MAX_UNREAD_OUTPUT / 4: that quarter) */
	int observer;             /* status probes: never send VV or changes, so the
	                             peer never sends changes either */
	/* Effects, all optional. */
	void (*on_applied)(void *ctx, const unsigned char author[LIM_ID_BYTES], uint64_t seq);
	void (*status_json)(void *ctx, lim_sb *out);
	void (*log)(void *ctx, const char *msg);
	void *ctx;
} lim_session_config;

void lim_session_config__defaults(lim_session_config *cfg);

lim_session *lim_session__new(lim_db *db, int initiator, const lim_session_config *cfg, int64_t now_ms);
void lim_session__free(lim_session *s);

/* Process bytes from the peer. Returns 0, or <0 once the session is over
 * (its last output, e.g. an ERR line, should still be flushed). */
int lim_session__feed(lim_session *s, const char *data, size_t n, int64_t now_ms);
/* Send changes the peer lacks while the window and output allow. */
int lim_session__pump(lim_session *s, int64_t now_ms);
/* The store has new changes: the next pump reads the log. */
void lim_session__mark_dirty(lim_session *s);
/* Timers: idle timeout and keep-alive. <0 when the session is over. */
int lim_session__tick(lim_session *s, int64_t now_ms);
/* Ask the peer for its status (the reply lands in lim_session__peer_state). */
void lim_session__request_status(lim_session *s);
/* Close politely (BYE). */
void lim_session__bye(lim_session *s);

/* Pending output; the caller consumes what it wrote. */
const char *lim_session__output(lim_session *s, size_t *len);
void lim_session__consume(lim_session *s, size_t n);

typedef struct {
	int authenticated;
	int closed;
	int synced;             /* both sides sent SYNCED and all our batches are acknowledged */
	unsigned char peer_id[LIM_ID_BYTES];
	uint64_t changes_in, changes_out, bytes_in, bytes_out;
	uint64_t behind;        /* changes the peer has that we do not (from its VV) */
	int error_code;         /* ERR code sent or received (0: none) */
	int error_sent;         /* 1 if we sent it */
	char error[256];
	const char *peer_state; /* STATE reply, if any */
} lim_session_info;

void lim_session__info(lim_session *s, lim_session_info *out);
int64_t lim_session__next_deadline(const lim_session *s);

#endif
