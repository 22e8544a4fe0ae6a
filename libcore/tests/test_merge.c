/*
 * Merge rules through the public API: two or three replicas with injected
 * clocks write concurrently, exchange changes in both orders, and must show
 * the documented winner and identical digests.
 */
#include <sodium.h>
#include "support.h"
#include "change.h"

static const unsigned char NETKEY[LIM_NETWORK_KEY_BYTES] = { 7 };

typedef struct {
	test_clock ca, cb;
	lim_db *a, *b;
} pair;

static int pair_setup(void **state)
{
	pair *p = calloc(1, sizeof(*p));
	p->ca.now = p->cb.now = 1700000000000;
	p->a = open_with_clock(":memory:", &p->ca, NETKEY);
	p->b = open_with_clock(":memory:", &p->cb, NETKEY);
	*state = p;
	return 0;
}

static int pair_teardown(void **state)
{
	pair *p = *state;
	lim_db_free(p->a);
	lim_db_free(p->b);
	free(p);
	return 0;
}

static void exchange(pair *p)
{
	sync_into(p->a, p->b);
	sync_into(p->b, p->a);
	char da[65], db[65];
	digest_of(p->a, da);
	digest_of(p->b, db);
	assert_string_equal(da, db);
}

static void test_merge__lww_newer_hlc_wins(void **state)
{
	pair *p = *state;
	lim_value va = str_value("from a"), vb = str_value("from b");
	p->ca.now += 10; /* a writes later in wall time */
	assert_int_equal(lim_db_set(p->b, "c", "d", "f", &vb), 0);
	assert_int_equal(lim_db_set(p->a, "c", "d", "f", &va), 0);
	exchange(p);
	assert_json(p->a, "c", "d", "f", "\"from a\"");
	assert_json(p->b, "c", "d", "f", "\"from a\"");
}

static void test_merge__lww_tie_broken_by_author(void **state)
{
	pair *p = *state;
	unsigned char ia[LIM_ID_BYTES], ib[LIM_ID_BYTES];
	lim_value va = str_value("a"), vb = str_value("b");
	assert_int_equal(lim_db_set(p->a, "c", "d", "f", &va), 0);
	assert_int_equal(lim_db_set(p->b, "c", "d", "f", &vb), 0);
	exchange(p);
	lim_db_replica_id(p->a, ia);
	lim_db_replica_id(p->b, ib);
	assert_json(p->a, "c", "d", "f", memcmp(ia, ib, LIM_ID_BYTES) > 0 ? "\"a\"" : "\"b\"");
}

static void test_merge__document_delete_then_write(void **state)
{
	pair *p = *state;
	const char *j = "{\"x\":1,\"y\":2}";
	assert_int_equal(lim_db_put_json(p->a, "c", "d", j, strlen(j)), 0);
	exchange(p);
	p->cb.now += 5;
	assert_int_equal(lim_db_delete(p->b, "c", "d", NULL), 0);
	p->ca.now += 10;
	lim_value z = int_value(3);
	assert_int_equal(lim_db_set(p->a, "c", "d", "z", &z), 0);
	exchange(p);
	assert_json(p->a, "c", "d", NULL, "{\"z\":3}");
	assert_json(p->b, "c", "d", NULL, "{\"z\":3}");
}

static void test_merge__delete_wins_over_older_concurrent_write(void **state)
{
	pair *p = *state;
	lim_value v = int_value(1);
	assert_int_equal(lim_db_set(p->a, "c", "d", "f", &v), 0);
	p->cb.now += 5;
	assert_int_equal(lim_db_set(p->b, "c", "d", "g", &v), 0);
	assert_int_equal(lim_db_delete(p->b, "c", "d", NULL), 0);
	exchange(p);
	assert_null(json_of(p->a, "c", "d", NULL));
	assert_int_equal(lim_error_last_code(), LIM_ENOTFOUND);
}

static void test_merge__subtree_delete(void **state)
{
	pair *p = *state;
	const char *j = "{\"addr\":{\"city\":\"Paris\",\"geo\":{\"lat\":1.5}},\"name\":\"n\"}";
	assert_int_equal(lim_db_put_json(p->a, "c", "d", j, strlen(j)), 0);
	assert_int_equal(lim_db_delete(p->a, "c", "d", "addr"), 0);
	exchange(p);
	assert_json(p->b, "c", "d", NULL, "{\"name\":\"n\"}");
}

static void test_merge__counter_sums_concurrent_increments_once(void **state)
{
	pair *p = *state;
	assert_int_equal(lim_db_incr(p->a, "c", "d", "n", 5), 0);
	assert_int_equal(lim_db_incr(p->b, "c", "d", "n", -2), 0);
	assert_int_equal(lim_db_incr(p->b, "c", "d", "n", 10), 0);
	exchange(p);
	exchange(p); /* a second round delivers nothing new */
	/* Re-applying an already held change is a no-op. */
	size_t len;
	char *c = last_change(p->b, &len);
	lim_apply_stats st = { 0, 0 };
	assert_int_equal(lim_db_apply(p->a, c, len, &st), 0);
	assert_int_equal(st.applied, 0);
	assert_int_equal(st.duplicates, 1);
	free(c);
	assert_json(p->a, "c", "d", "n", "13");
	lim_field *f;
	lim_value v;
	assert_int_equal(lim_db_get_field(&f, p->b, "c", "d", "n"), 0);
	assert_int_equal(lim_field_kind(f), LIM_KIND_COUNTER);
	assert_int_equal(lim_field_value(f, &v), 0);
	assert_int_equal(v.integer, 13);
	lim_field_free(f);
}

static void test_merge__set_resets_counter(void **state)
{
	pair *p = *state;
	lim_value zero = int_value(100);
	assert_int_equal(lim_db_incr(p->a, "c", "d", "n", 5), 0);
	p->ca.now += 1;
	assert_int_equal(lim_db_set(p->a, "c", "d", "n", &zero), 0);
	p->ca.now += 1;
	assert_int_equal(lim_db_incr(p->a, "c", "d", "n", 2), 0);
	exchange(p);
	/* The set value is where the counter starts again. */
	assert_json(p->b, "c", "d", "n", "102");
	lim_value s = str_value("text");
	p->ca.now += 1;
	assert_int_equal(lim_db_set(p->a, "c", "d", "m", &s), 0);
	p->ca.now += 1;
	assert_int_equal(lim_db_incr(p->a, "c", "d", "m", 5), 0);
	exchange(p);
	assert_json(p->b, "c", "d", "m", "5"); /* a non-integer starts from 0 */
	assert_int_equal(lim_db_verify(p->b), 0);
}

static void test_merge__set_add_wins_over_concurrent_remove(void **state)
{
	pair *p = *state;
	lim_value x = str_value("x");
	assert_int_equal(lim_db_set_add(p->a, "c", "d", "s", &x), 0);
	exchange(p);
	/* b removes the x it saw while a adds x again concurrently. */
	assert_int_equal(lim_db_set_remove(p->b, "c", "d", "s", &x), 0);
	assert_int_equal(lim_db_set_add(p->a, "c", "d", "s", &x), 0);
	exchange(p);
	assert_json(p->a, "c", "d", "s", "[\"x\"]");
	/* Once a remove has observed every tag, the element is gone. */
	assert_int_equal(lim_db_set_remove(p->b, "c", "d", "s", &x), 0);
	exchange(p);
	assert_json(p->a, "c", "d", "s", "[]");
}

static void test_merge__set_elements_in_canonical_order(void **state)
{
	pair *p = *state;
	lim_value vals[] = { str_value("b"), int_value(2), str_value("a"), int_value(-1) };
	for (size_t i = 0; i < 4; i++)
		assert_int_equal(lim_db_set_add(p->a, "c", "d", "s", &vals[i]), 0);
	assert_int_equal(lim_db_set_add(p->b, "c", "d", "s", &vals[0]), 0);
	exchange(p);
	assert_json(p->b, "c", "d", "s", "[-1,2,\"a\",\"b\"]");
	lim_field *f;
	assert_int_equal(lim_db_get_field(&f, p->b, "c", "d", "s"), 0);
	assert_int_equal(lim_field_kind(f), LIM_KIND_SET);
	assert_int_equal(lim_field_count(f), 4);
	lim_value e;
	assert_int_equal(lim_field_element(f, 3, &e), 0);
	assert_int_equal(e.type, LIM_STRING);
	assert_memory_equal(e.str, "b", 1);
	assert_int_equal(lim_field_element(f, 4, &e), LIM_EINVALID);
	lim_field_free(f);
}

static void test_merge__objects_win_over_concurrent_scalar(void **state)
{
	pair *p = *state;
	const char *obj = "{\"a\":{\"b\":2}}", *scalar = "{\"a\":1}";
	p->ca.now += 10; /* the scalar is newer, yet the object shows */
	assert_int_equal(lim_db_put_json(p->b, "c", "d", obj, strlen(obj)), 0);
	assert_int_equal(lim_db_put_json(p->a, "c", "d", scalar, strlen(scalar)), 0);
	exchange(p);
	assert_json(p->a, "c", "d", NULL, "{\"a\":{\"b\":2}}");
	assert_json(p->b, "c", "d", NULL, "{\"a\":{\"b\":2}}");
}

static void test_merge__local_scalar_replaces_object(void **state)
{
	pair *p = *state;
	const char *obj = "{\"a\":{\"b\":2,\"c\":3},\"k\":0}", *scalar = "{\"a\":1}", *deeper = "{\"a\":{\"z\":true}}";
	assert_int_equal(lim_db_put_json(p->a, "c", "d", obj, strlen(obj)), 0);
	assert_int_equal(lim_db_put_json(p->a, "c", "d", scalar, strlen(scalar)), 0);
	assert_json(p->a, "c", "d", NULL, "{\"a\":1,\"k\":0}");
	assert_int_equal(lim_db_put_json(p->a, "c", "d", deeper, strlen(deeper)), 0);
	assert_json(p->a, "c", "d", NULL, "{\"a\":{\"z\":true},\"k\":0}");
	exchange(p);
	assert_json(p->b, "c", "d", NULL, "{\"a\":{\"z\":true},\"k\":0}");
}

static void test_merge__render_orders_segments(void **state)
{
	pair *p = *state;
	const char *j = "{\"a-x\":1,\"a\":{\"b\":2,\"c\":{\"d\":3}},\"b\":{\"q\":4}}";
	assert_int_equal(lim_db_put_json(p->a, "c", "d", j, strlen(j)), 0);
	assert_json(p->a, "c", "d", NULL, "{\"a\":{\"b\":2,\"c\":{\"d\":3}},\"a-x\":1,\"b\":{\"q\":4}}");
	assert_json(p->a, "c", "d", "a", "{\"b\":2,\"c\":{\"d\":3}}");
	assert_json(p->a, "c", "d", "a.c.d", "3");
}

static void test_merge__rebuild_gives_same_digest(void **state)
{
	pair *p = *state;
	char before[65], after[65];
	lim_value x = str_value("x");
	const char *j = "{\"a\":{\"b\":1},\"c\":\"s\"}";
	assert_int_equal(lim_db_put_json(p->a, "c", "d", j, strlen(j)), 0);
	assert_int_equal(lim_db_incr(p->b, "c", "d", "n", 4), 0);
	assert_int_equal(lim_db_set_add(p->b, "c", "e", "s", &x), 0);
	assert_int_equal(lim_db_delete(p->a, "c", "d", "a"), 0);
	exchange(p);
	digest_of(p->a, before);
	assert_int_equal(lim_db_rebuild(p->a), 0);
	digest_of(p->a, after);
	assert_string_equal(before, after);
	assert_int_equal(lim_db_verify(p->a), 0);
	assert_int_equal(lim_db_verify(p->b), 0);
}


/* ------------------------------------------------------------ hostile op mixes */

typedef struct {
	unsigned char pk[LIM_ID_BYTES], sk[LIM_SECRET_KEY_BYTES];
} author;

/* Seal a one-op change (seq 1) of `a` at `hlc`; `op` is the op text with a
 * "%s" where the author hex of `tag_author` goes (or no %s). */
static char *sign_op(const author *a, uint64_t hlc, const char *op, const author *tag_author)
{
	lim_change_builder b = { LIM_SB_INIT, 1 };
	lim_sb out = LIM_SB_INIT;
	unsigned char prev[LIM_HASH_BYTES] = { 0 }, hash[LIM_HASH_BYTES];
	char hex[2 * LIM_ID_BYTES + 1] = "";
	if (tag_author)
		for (int i = 0; i < LIM_ID_BYTES; i++)
			sprintf(hex + 2 * i, "%02x", tag_author->pk[i]);
	lim_sb__putc(&b.ops, ' ');
	lim_sb__printf(&b.ops, op, hex);
	assert_int_equal(lim_change__seal(&out, hash, &b, a->pk, a->sk, 1, hlc, prev), 0);
	lim_sb__free(&b.ops);
	return out.ptr;
}

static void digest_after(char **changes, const int *order, size_t n, char out[65])
{
	test_clock clk = { 1700000000000 };
	lim_db *db = open_with_clock(":memory:", &clk, NETKEY);
	for (size_t i = 0; i < n; i++) {
		int rc = lim_db_apply(db, changes[order[i]], strlen(changes[order[i]]), NULL);
		if (rc != 0)
			print_error("apply: %s\n", lim_error_last());
		assert_int_equal(rc, 0);
	}
	digest_of(db, out);
	assert_int_equal(lim_db_verify(db), 0);
	lim_db_free(db);
}

static void assert_all_orders_agree(char **changes, size_t n)
{
	int perm[4] = { 0, 1, 2, 3 };
	char first[65], d[65];
	digest_after(changes, perm, n, first);
	/* Heap's algorithm over n <= 4 items. */
	int c[4] = { 0 };
	size_t i = 0;
	while (i < n) {
		if (c[i] < (int)i) {
			int j = i % 2 ? c[i] : 0, t = perm[j];
			perm[j] = perm[i];
			perm[i] = t;
			digest_after(changes, perm, n, d);
			assert_string_equal(first, d);
			c[i]++;
			i = 0;
		} else {
			c[i++] = 0;
		}
	}
}

static void test_merge__set_removes_are_order_independent(void **state)
{
	author k[3];
	uint64_t t = (uint64_t)1700000000000 << 16;
	(void)state;
	for (int i = 0; i < 3; i++)
		crypto_sign_keypair(k[i].pk, k[i].sk);
	/* A remove naming a tag of another field acts only on its own field. */
	char *mix1[] = {
		sign_op(&k[0], t + 1, "A c d y sX", NULL),
		sign_op(&k[1], t + 2, "R c d x sX %s.1.0", &k[0]),
	};
	assert_all_orders_agree(mix1, 2);
	/* An old remove of a newer add, under a delete in between. */
	char *mix2[] = {
		sign_op(&k[0], t + 30, "A c d x s1", NULL),
		sign_op(&k[1], t + 20, "D c d x", NULL),
		sign_op(&k[2], t + 10, "R c d x s1 %s.1.0", &k[0]),
	};
	assert_all_orders_agree(mix2, 3);
	for (int i = 0; i < 2; i++)
		free(mix1[i]);
	for (int i = 0; i < 3; i++)
		free(mix2[i]);
}

#define T(name) cmocka_unit_test_setup_teardown(name, pair_setup, pair_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_merge__lww_newer_hlc_wins),
		T(test_merge__lww_tie_broken_by_author),
		T(test_merge__document_delete_then_write),
		T(test_merge__delete_wins_over_older_concurrent_write),
		T(test_merge__subtree_delete),
		T(test_merge__counter_sums_concurrent_increments_once),
		T(test_merge__set_resets_counter),
		T(test_merge__set_add_wins_over_concurrent_remove),
		T(test_merge__set_elements_in_canonical_order),
		T(test_merge__objects_win_over_concurrent_scalar),
		T(test_merge__local_scalar_replaces_object),
		T(test_merge__render_orders_segments),
		T(test_merge__rebuild_gives_same_digest),
		cmocka_unit_test(test_merge__set_removes_are_order_independent),
	};
	return cmocka_run_group_tests_name("merge", tests, NULL, NULL);
}
