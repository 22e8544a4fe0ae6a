/*
 * The sync session state machine driven directly (no sockets): two real
 * stores, two sessions, bytes moved by hand. Covers the paths a network
 * test cannot time reliably: clock-skewed changes held back and fetched
 * again once the clock catches up, and keep-alive/idle timeouts.
 */
#include "support.h"
#include "session.h"

static const unsigned char NETKEY[LIM_NETWORK_KEY_BYTES] = { 42 };

typedef struct {
	test_clock ca, cb;
	lim_db *a, *b;
	lim_session *sa, *sb; /* sa dials (initiator), sb answers */
	int64_t now;          /* session time */
} link_fixture;

static void pipe_bytes(lim_session *from, lim_session *to, int64_t now, int *rc_to)
{
	size_t len;
	const char *out = lim_session__output(from, &len);
	if (len) {
		char *copy = malloc(len);
		memcpy(copy, out, len);
		lim_session__consume(from, len);
		int rc = lim_session__feed(to, copy, len, now);
		if (rc_to && rc < 0)
			*rc_to = rc;
		free(copy);
	}
}

/* Move bytes both ways until neither side has anything to say. */
static void settle(link_fixture *f)
{
	for (int i = 0; i < 200; i++) {
		size_t la, lb;
		lim_session__pump(f->sa, f->now);
		lim_session__pump(f->sb, f->now);
		lim_session__output(f->sa, &la);
		lim_session__output(f->sb, &lb);
		if (!la && !lb)
			return;
		pipe_bytes(f->sa, f->sb, f->now, NULL);
		pipe_bytes(f->sb, f->sa, f->now, NULL);
	}
	fail_msg("the sessions did not settle");
}

static int setup(void **state)
{
	link_fixture *f = calloc(1, sizeof(*f));
	lim_session_config cfg;
	f->ca.now = f->cb.now = 1700000000000;
	f->a = open_with_clock(":memory:", &f->ca, NETKEY);
	f->b = open_with_clock(":memory:", &f->cb, NETKEY);
	lim_session_config__defaults(&cfg);
	cfg.idle_timeout_ms = 3000;
	cfg.keepalive_ms = 1000;
	f->now = 1000;
	f->sa = lim_session__new(f->a, 1, &cfg, f->now);
	f->sb = lim_session__new(f->b, 0, &cfg, f->now);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	link_fixture *f = *state;
	lim_session__free(f->sa);
	lim_session__free(f->sb);
	lim_db_free(f->a);
	lim_db_free(f->b);
	free(f);
	return 0;
}

static void test_session__handshake_and_catch_up(void **state)
{
	link_fixture *f = *state;
	lim_session_info ia, ib;
	char da[65], db[65];
	lim_value v = int_value(7);
	assert_int_equal(lim_db_set(f->a, "c", "d", "x", &v), 0);
	assert_int_equal(lim_db_incr(f->b, "c", "d", "n", 2), 0);
	settle(f);
	lim_session__info(f->sa, &ia);
	lim_session__info(f->sb, &ib);
	assert_true(ia.authenticated && ib.authenticated);
	assert_true(ia.synced && ib.synced);
	assert_int_equal(ia.changes_in, 1);
	assert_int_equal(ib.changes_in, 1);
	digest_of(f->a, da);
	digest_of(f->b, db);
	assert_string_equal(da, db);
	/* Live push: a later write flows once the session is told. */
	assert_int_equal(lim_db_incr(f->a, "c", "d", "n", 3), 0);
	lim_session__mark_dirty(f->sa);
	settle(f);
	assert_json(f->b, "c", "d", "n", "5");
}

static void test_session__clock_skewed_change_is_fetched_again_later(void **state)
{
	link_fixture *f = *state;
	char da[65], db[65];
	lim_value v = str_value("from the future");
	f->ca.now += 90 * 1000; /* a's clock runs 90 s ahead; the bound is 60 s */
	assert_int_equal(lim_db_set(f->a, "c", "d", "x", &v), 0);
	settle(f);
	/* Held back, not an error: the connection stays up. */
	lim_session_info ib;
	lim_session__info(f->sb, &ib);
	assert_false(ib.closed);
	assert_null(json_of(f->b, "c", "d", NULL));
	/* b's clock catches up; the session asks again on its own. */
	f->cb.now += 40 * 1000;
	f->now += 1500;
	assert_int_equal(lim_session__tick(f->sb, f->now), 0);
	assert_int_equal(lim_session__tick(f->sa, f->now), 0);
	settle(f);
	assert_json(f->b, "c", "d", "x", "\"from the future\"");
	digest_of(f->a, da);
	digest_of(f->b, db);
	assert_string_equal(da, db);
}

static void test_session__keepalive_and_idle_timeout(void **state)
{
	link_fixture *f = *state;
	lim_session_info ia;
	settle(f);
	/* Quiet for longer than keep-alive: PING/PONG keep both alive. */
	for (int i = 0; i < 10; i++) {
		f->now += 900;
		assert_int_equal(lim_session__tick(f->sa, f->now), 0);
		assert_int_equal(lim_session__tick(f->sb, f->now), 0);
		settle(f);
	}
	/* One side stops talking: the other times out with ERR 408. */
	f->now += 3000;
	assert_true(lim_session__tick(f->sa, f->now) < 0);
	lim_session__info(f->sa, &ia);
	assert_int_equal(ia.error_code, 408);
	assert_true(ia.closed);
	size_t len;
	const char *out = lim_session__output(f->sa, &len);
	assert_true(len > 8 && memcmp(out, "ERR 408 ", 8) == 0);
}


static void test_session__relay_never_ends_a_batch_on_a_bad_signature(void **state)
{
	link_fixture *f = *state;
	test_clock cr = { 1700000000000 };
	lim_db *origin = open_with_clock(":memory:", &cr, NETKEY);
	lim_session_config cfg;
	lim_batch_result res;
	lim_span run[3];
	char *bytes[3], da[65], dorig[65];
	size_t lens[3];
	/* The origin writes three changes; a malicious relay garbles the
	 * signature of the first and hands b the run in one batch. */
	for (int i = 0; i < 3; i++) {
		lim_value v = int_value(i);
		assert_int_equal(lim_db_set(origin, "c", "d", "x", &v), 0);
		bytes[i] = last_change(origin, &lens[i]);
		run[i].p = bytes[i];
		run[i].n = lens[i];
	}
	bytes[0][lens[0] - 1] = bytes[0][lens[0] - 1] == '0' ? '1' : '0';
	assert_int_equal(lim_db__apply_batch(f->b, run, 3, &res, NULL, NULL), 0);
	assert_int_equal(res.applied, 3); /* authentic content: the chain holds */
	assert_int_equal(lim_db_verify(f->b), LIM_ECORRUPT); /* but the bytes are reported */
	/* b relays to a with batches of one change: it must not stop on the bad one. */
	lim_session__free(f->sa);
	lim_session__free(f->sb);
	lim_session_config__defaults(&cfg);
	cfg.batch_changes = 1;
	f->sa = lim_session__new(f->a, 1, &cfg, f->now);
	f->sb = lim_session__new(f->b, 0, &cfg, f->now);
	settle(f);
	lim_session_info ia;
	lim_session__info(f->sa, &ia);
	assert_false(ia.closed);
	digest_of(f->a, da);
	digest_of(origin, dorig);
	assert_string_equal(da, dorig);
	for (int i = 0; i < 3; i++)
		free(bytes[i]);
	lim_db_free(origin);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_session__handshake_and_catch_up),
		T(test_session__clock_skewed_change_is_fetched_again_later),
		T(test_session__keepalive_and_idle_timeout),
		T(test_session__relay_never_ends_a_batch_on_a_bad_signature),
	};
	return cmocka_run_group_tests_name("session", tests, NULL, NULL);
}
