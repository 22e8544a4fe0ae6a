/*
 * The store handle behind the public lim_db: the SQLite store, the
 * replica's identity, its clock, and the local transaction being built.
 * Every public entry point takes `mu`, so a lim_db may be shared by threads
 * (the sync node applies remote changes through the application's handle).
 */
#ifndef LIM_DB_H
#define LIM_DB_H

#include <pthread.h>
#include "change.h"
#include "merge.h"
#include "store.h"

struct lim_db {
	pthread_mutex_t mu;
	lim_store st;
	lim_merge merge;
	lim_db_options opts;
	unsigned char public_key[LIM_ID_BYTES];
	unsigned char secret_key[LIM_SECRET_KEY_BYTES];
	unsigned char network_key[LIM_NETWORK_KEY_BYTES];
	uint64_t clock_last;
	/* Authors recently seen forking their chain (or equivocating), in a
	 * small ring: the gaps behind such a change never close, so they are
	 * not asked for again (repl.c, note_skip). Memory only; a restart
	 * finds a fork again at its first change. */
	unsigned char forked[16][LIM_ID_BYTES];
	unsigned nforked, forked_next;

	/* The local change under construction (explicit or implicit txn). */
	int txn_open;
	int txn_explicit;
	int64_t txn_author_id;
	uint64_t txn_seq;
	uint64_t txn_hlc;
	unsigned char txn_prev[LIM_HASH_BYTES]; /* link of our previous change */
	lim_change_builder txn_ops;
	pthread_t txn_owner;        /* thread of the open explicit transaction */
	pthread_cond_t txn_done;    /* signalled when a transaction ends */
	/* Called (with mu held) after a commit that added changes; the sync
	 * node uses it to wake its loop. Must not call back into the db. */
	void (*on_commit)(void *ctx);
	void *on_commit_ctx;
	lim_sb op_text;
	lim_sb sealed;
	lim_sb scratch;
};

#define LIM_DB_LOCK(db) pthread_mutex_lock(&(db)->mu)
#define LIM_DB_UNLOCK(db) pthread_mutex_unlock(&(db)->mu)

int64_t lim_db__now_ms(const lim_db *db);
/* Look up an author; *id = 0 and *max_seq = 0 when unknown. `head` is the
 * link of its change max_seq (zeros when none): what its next change must
 * name as prev. */
int lim_db__author(lim_db *db, const unsigned char key[LIM_ID_BYTES], int64_t *id, uint64_t *max_seq,
                   unsigned char head[LIM_HASH_BYTES], uint64_t *head_hlc);
int lim_db__check_writable(lim_db *db);
/* Set several fields of one document as one change (lim_db_put_json). */
int lim_db__put_values(lim_db *db, const char *coll, const char *doc, size_t n,
                       const char *const *paths, const lim_value *values);

/* The result of applying a batch from a peer. */
typedef struct {
	size_t applied, duplicates, skipped;
	size_t retry_later; /* skipped for clock drift or a gap: may apply later */
	/* First change that could not be applied without blaming the sender
	 * (equivocation, clock drift, missing predecessor): its code. */
	int skip_code;
	char skip_message[256];
} lim_batch_result;

/*
 * Apply a batch of changes received from a peer in one transaction.
 * Signatures are amortised over the hash chain: within a run of one
 * author's consecutive changes only the last signature is verified, since
 * it covers every byte of the others, signatures included, through their
 * links (change.h). Changes that cannot be
 * applied for reasons that are not the sender's fault are skipped (see
 * lim_batch_result); any other failure rolls the whole batch back and is
 * returned. `applied_cb` is called for each newly applied change once the
 * batch has committed, never for one that was rolled back.
 */
int lim_db__apply_batch(lim_db *db, const lim_span *changes, size_t n, lim_batch_result *res,
                        void (*applied_cb)(void *ctx, const unsigned char author[LIM_ID_BYTES], uint64_t seq),
                        void *cb_ctx);
/* Wait (bounded) until no other thread holds an explicit transaction. */
int lim_db__wait_txn(lim_db *db);
void lim_db__notify_commit(lim_db *db);
/* Changes whenever another connection (another process) commits to the
 * file; the node polls it to push writes it was not told about. */
int64_t lim_db__data_version(lim_db *db);

#endif
