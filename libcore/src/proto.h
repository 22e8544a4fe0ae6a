/*
 * Sync protocol messages (protocol-spec/PROTOCOL.md): parsing one line into
 * a message and printing a message into a line, as pure functions. One message per
 * LF-terminated UTF-8 line; the first token names the message.
 *
 *   HELLO <version> <node id> <nonce>     first line, both sides
 *   AUTH <signature> <proof>              second line, both sides
 *   VV [<author>:<seq>]...                the sender's version vector
 *   CH <change>                           one change (canonical bytes)
 *   END <n>                               closes a batch of n CH lines
 *   ACK <n>                               n changes of the peer were processed
 *   SYNCED                                catch-up sent; live changes follow
 *   PING <token> / PONG <token>           keep-alive
 *   STATUS / STATE <json>                 ask a node for its peer table
 *   ERR <code> <text>                     fatal; the sender closes
 *   BYE                                   clean close
 */
#ifndef LIM_PROTO_H
#define LIM_PROTO_H

#include "change.h"

#define LIM_PROTOCOL_VERSION 1
#define LIM_NONCE_BYTES 32
#define LIM_MAX_LINE_BYTES (LIM_MAX_CHANGE_BYTES + 64)
#define LIM_MAX_BATCH_CHANGES 1000
#define LIM_MAX_BATCH_BYTES (16 * 1024 * 1024)
#define LIM_MAX_UNACKED_CHANGES 4000
/* A VV entry is at most 64 + 1 + 19 + 1 bytes: this many fit one line. */
#define LIM_MAX_VV_AUTHORS 48000
/* Output a peer may leave unread before it is cut off (ERR 429). */
#define LIM_MAX_UNREAD_OUTPUT (2 * LIM_MAX_LINE_BYTES)
#define LIM_MAX_TOKEN_BYTES 64

typedef enum {
	LIM_MSG_HELLO,
	LIM_MSG_AUTH,
	LIM_MSG_VV,
	LIM_MSG_CH,
	LIM_MSG_END,
	LIM_MSG_ACK,
	LIM_MSG_SYNCED,
	LIM_MSG_PING,
	LIM_MSG_PONG,
	LIM_MSG_STATUS,
	LIM_MSG_STATE,
	LIM_MSG_ERR,
	LIM_MSG_BYE
} lim_msg_type;

/* Stable error codes of ERR lines. */
typedef enum {
	LIM_PERR_MALFORMED = 400,   /* a line that is not a valid message */
	LIM_PERR_AUTH = 401,        /* the handshake signature does not verify */
	LIM_PERR_FORBIDDEN = 403,   /* the peer's id is not on the allow list */
	LIM_PERR_TIMEOUT = 408,     /* no complete line within the idle timeout */
	LIM_PERR_STATE = 409,       /* a message at the wrong time (before auth: on its keyword) */
	LIM_PERR_TOO_LARGE = 413,   /* a line, batch or vector over its limit */
	LIM_PERR_NETWORK = 421,     /* the peer is not of this network */
	LIM_PERR_REJECTED = 422,    /* a change failed validation */
	LIM_PERR_VERSION = 426,     /* no protocol version in common */
	LIM_PERR_FLOW = 429,        /* more unacknowledged changes than allowed */
	LIM_PERR_BUSY = 503,        /* the node has no room for another connection */
	LIM_PERR_INTERNAL = 500     /* the node failed (its store, memory) */
} lim_proto_error;

typedef struct {
	lim_msg_type type;
	uint64_t version;                    /* HELLO */
	unsigned char id[LIM_ID_BYTES];      /* HELLO */
	unsigned char nonce[LIM_NONCE_BYTES];/* HELLO */
	unsigned char sig[64];               /* AUTH */
	unsigned char proof[LIM_HASH_BYTES]; /* AUTH */
	uint64_t count;                      /* END, ACK; ERR code */
	lim_span arg;                        /* CH change, VV entries, PING token, STATE json, ERR text */
} lim_msg;

/* Parse one line (without its LF). On failure returns LIM_EPROTOCOL with
 * the ERR code to send in *perr and a message in lim_error_last(). */
int lim_msg__parse(lim_msg *m, const char *line, size_t len, int *perr);

/* The message a line's keyword (its text up to the first SP) names, without
 * looking at the rest: 0 and *type, or -1 if it names none. Before
 * authentication a session looks no further than this, except for the
 * handshake lines it expects (PROTOCOL.md 4). */
int lim_msg__keyword(const char *line, size_t len, lim_msg_type *type);

/* Iterate VV entries: returns 1 with author/seq, 0 at end, -1 if malformed. */
int lim_vv__next(lim_span *rest, unsigned char author[LIM_ID_BYTES], uint64_t *seq);

/*
 * Print one message and its LF: the inverse of lim_msg__parse, so that
 * parsing the printed line (without its LF) gives `m` back. `m` must be
 * what the parser accepts (a token without SP, VV entries as the parser
 * reads them, ...): the printer formats, it does not check. ERR text is the
 * exception: bytes outside printable ASCII are printed as '?'. An empty
 * `arg` is left out where the field is optional (VV, STATE, ERR).
 */
void lim_msg__print(lim_sb *out, const lim_msg *m);
/* Shorthands: a message whose one field is `arg` (VV, CH, PING, PONG,
 * STATE; and SYNCED, STATUS, BYE with n = 0), or a count (END, ACK). */
void lim_msg__print_span(lim_sb *out, lim_msg_type type, const char *arg, size_t n);
void lim_msg__print_count(lim_sb *out, lim_msg_type type, uint64_t count);
/* HELLO of this protocol version; AUTH; ERR (an empty text becomes "error"). */
void lim_msg__hello(lim_sb *out, const unsigned char id[LIM_ID_BYTES], const unsigned char nonce[LIM_NONCE_BYTES]);
void lim_msg__auth(lim_sb *out, const unsigned char sig[64], const unsigned char proof[LIM_HASH_BYTES]);
void lim_msg__err(lim_sb *out, int code, const char *text);

/*
 * Handshake transcript: the client's HELLO line, LF, the server's HELLO
 * line, LF (exact bytes as sent). Each side signs and MACs the transcript
 * hash with its role ('C' for the side that dialed, 'S' for the other).
 */
void lim_handshake__hash(unsigned char out[LIM_HASH_BYTES], const char *client_hello, size_t cn,
                         const char *server_hello, size_t sn);
void lim_handshake__prove(unsigned char sig[64], unsigned char proof[LIM_HASH_BYTES], char role,
                          const unsigned char transcript[LIM_HASH_BYTES],
                          const unsigned char secret[LIM_SECRET_KEY_BYTES],
                          const unsigned char network_key[LIM_NETWORK_KEY_BYTES]);
/* 0 if both the peer's signature (by `peer_id`) and network proof check. */
__attribute__((warn_unused_result))
int lim_handshake__check_sig(const unsigned char sig[64], char role, const unsigned char transcript[LIM_HASH_BYTES],
                             const unsigned char peer_id[LIM_ID_BYTES]);
__attribute__((warn_unused_result))
int lim_handshake__check_proof(const unsigned char proof[LIM_HASH_BYTES], char role,
                               const unsigned char transcript[LIM_HASH_BYTES],
                               const unsigned char network_key[LIM_NETWORK_KEY_BYTES]);

#endif
