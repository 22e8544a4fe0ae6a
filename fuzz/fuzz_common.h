/*
 * Shared by every fuzz harness (fuzz/fuzz_*.c) and by the corpus replay
 * test (libcore/tests/test_fuzz_corpus.c), which #includes all harnesses
 * into one file: so everything here is static and include-guarded, and
 * each harness prefixes its own static names with its target name.
 *
 * Determinism: a fuzz input must do the same thing every time it runs, or
 * a crash cannot be reproduced and coverage is noisy. Three sources of
 * variation are pinned down here:
 *   - randomness: libsodium's randombytes is replaced by a deterministic
 *     stream (store identities, session nonces) reset before each input;
 *   - time: stores get a fixed clock (FUZZ_NOW_MS);
 *   - keys: test identities come from fixed seeds; identity 0 is the author
 *     of protocol-spec/vectors (seed 01 02 .. 20), so the golden changes
 *     and transcripts work as seeds.
 */
#ifndef LIM_FUZZ_COMMON_H
#define LIM_FUZZ_COMMON_H

#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "lim.h"
#include "db.h"
#include "text.h"

/* 2024-01-01T01:00:00Z: one hour after the golden vectors' HLCs. */
#define FUZZ_NOW_MS INT64_C(1704070800000)
#define FUZZ_NKEYS 3

/* A broken invariant is a finding: report it and crash, so libFuzzer keeps
 * the input and the replay test fails. */
#define FUZZ_CHECK(cond, ...)                                                   \
	do {                                                                        \
		if (!(cond)) {                                                          \
			fprintf(stderr, "fuzz invariant failed at %s:%d: %s\n  ", __FILE__, \
			        __LINE__, #cond);                                           \
			fprintf(stderr, __VA_ARGS__);                                       \
			fprintf(stderr, "\n  last liblim error: %s\n", lim_error_last());   \
			abort();                                                            \
		}                                                                       \
	} while (0)

static const unsigned char FUZZ_NETWORK_KEY[LIM_NETWORK_KEY_BYTES] = {
	0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x8b, 0x8c, 0x8d, 0x8e, 0x8f,
	0x90, 0x91, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0x9b, 0x9c, 0x9d, 0x9e, 0x9f
}; /* protocol-spec/vectors/handshake.json "network_key" */

/* A result deliberately unchecked (gcc ignores a (void) cast on a
 * warn_unused_result function). */
static inline void fuzz_ignore(int rc)
{
	(void)rc;
}

/* ------------------------------------------------------------ deterministic randomness */

static uint64_t fuzz_rng_counter;

static inline const char *fuzz_rng_name(void)
{
	return "liblim-fuzz-deterministic";
}

static inline void fuzz_rng_buf(void *const buf, const size_t size)
{
	unsigned char seed[randombytes_SEEDBYTES] = { 'l', 'i', 'm', 'f', 'u', 'z', 'z' };
	uint64_t n = ++fuzz_rng_counter;
	for (int i = 0; i < 8; i++)
		seed[24 + i] = (unsigned char)(n >> (8 * i));
	randombytes_buf_deterministic(buf, size, seed);
}

static inline uint32_t fuzz_rng_random(void)
{
	uint32_t r;
	fuzz_rng_buf(&r, sizeof(r));
	return r;
}

static struct randombytes_implementation fuzz_rng_impl = {
	fuzz_rng_name, fuzz_rng_random, NULL, NULL, fuzz_rng_buf, NULL
};

static unsigned char fuzz_pk[FUZZ_NKEYS][LIM_ID_BYTES];
static unsigned char fuzz_sk[FUZZ_NKEYS][LIM_SECRET_KEY_BYTES];

/* Once per process, before anything calls sodium_init. */
static inline void fuzz_init(void)
{
	static int done;
	if (done)
		return;
	done = 1;
	randombytes_set_implementation(&fuzz_rng_impl);
	if (sodium_init() < 0)
		abort();
	for (int k = 0; k < FUZZ_NKEYS; k++) {
		unsigned char seed[crypto_sign_SEEDBYTES];
		for (size_t i = 0; i < crypto_sign_SEEDBYTES; i++)
			seed[i] = (unsigned char)((size_t)k * crypto_sign_SEEDBYTES + i + 1);
		crypto_sign_seed_keypair(fuzz_pk[k], fuzz_sk[k], seed);
	}
}

/* Start of every input: same randomness whatever ran before. */
static inline void fuzz_begin(void)
{
	fuzz_init();
	fuzz_rng_counter = 0;
}

/* ------------------------------------------------------------ stores */

static inline int64_t fuzz_clock(void *ctx)
{
	(void)ctx;
	return FUZZ_NOW_MS;
}

/* A fresh in-memory store of the test network at the fixed time. A failure
 * here is the environment, not the input: crash loudly. */
static inline lim_db *fuzz_open_db(void)
{
	lim_db_options o;
	lim_db *db = NULL;
	if (lim_db_options_init(&o, LIM_DB_OPTIONS_VERSION) != 0)
		abort();
	o.clock = fuzz_clock;
	o.network_key = FUZZ_NETWORK_KEY;
	FUZZ_CHECK(lim_db_open(&db, ":memory:", &o) == 0, "cannot open a :memory: store");
	return db;
}

/* The store is consistent: log, chains, signatures, and materialized state
 * equal to a rebuild from the log (what `lim verify` checks). */
static inline void fuzz_check_store(lim_db *db, const char *after)
{
	/* LIM_FUZZ_NO_STORE_CHECK=1 turns this oracle off, to fuzz past an
	 * open finding of this kind (fuzz/README.md, "Known open findings"). */
	static int off = -1;
	if (off < 0)
		off = getenv("LIM_FUZZ_NO_STORE_CHECK") != NULL && strcmp(getenv("LIM_FUZZ_NO_STORE_CHECK"), "0") != 0;
	if (off)
		return;
	FUZZ_CHECK(lim_db_verify(db) == 0, "lim_db_verify fails after %s", after);
}

#endif
