/*
 * The golden vectors of protocol-spec/vectors, checked through liblim: each
 * change line parses, hashes, verifies and links to the recorded values
 * (each prev being the link of the change before), and the
 * pack imported into an empty store gives the recorded digest, version
 * vector and documents. Python, Go and the independent client check the
 * same expected.txt.
 */
#include <sodium.h>
#include "support.h"
#include "change.h"
#include "text.h"

static char *vectors_path(const char *name)
{
	const char *root = getenv("LIM_SOURCE_DIR");
	char *p;
	size_t n;
	if (!root)
		fail_msg("LIM_SOURCE_DIR is not set (ctest sets it)");
	n = strlen(root) + strlen(name) + 32;
	p = malloc(n);
	snprintf(p, n, "%s/protocol-spec/vectors/%s", root, name);
	return p;
}

static char *slurp(const char *name, size_t *len)
{
	char *path = vectors_path(name);
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;
	if (!f)
		fail_msg("cannot open %s", path);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	free(path);
	*len = (size_t)n;
	return buf;
}

/* The value of the expected.txt line starting with `key ` (static buffer). */
static const char *expect(const char *expected, const char *key)
{
	static char out[4096];
	size_t kl = strlen(key);
	for (const char *l = expected; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		if (strncmp(l, key, kl) == 0 && l[kl] == ' ') {
			const char *v = l + kl + 1, *e = strchr(v, '\n');
			size_t n = e ? (size_t)(e - v) : strlen(v);
			memcpy(out, v, n);
			out[n] = '\0';
			return out;
		}
	}
	fail_msg("expected.txt has no line \"%s ...\"", key);
	return NULL;
}

static void test_vectors__changes_hash_and_verify(void **state)
{
	size_t len, exp_len;
	char *lines = slurp("changes.txt", &len), *expected = slurp("expected.txt", &exp_len);
	char *save = NULL;
	unsigned char link[LIM_HASH_BYTES] = { 0 };
	int n = 0;
	(void)state;
	assert_true(sodium_init() >= 0);
	for (char *line = strtok_r(lines, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		lim_change c;
		unsigned char hash[LIM_HASH_BYTES];
		char hex[2 * LIM_SIG_BYTES + 1], key[32];
		assert_int_equal(lim_change__parse(&c, line, strlen(line)), 0);
		assert_memory_equal(c.prev, link, LIM_HASH_BYTES);
		lim_change__hash(hash, line, c.body_len);
		lim_hex__encode(hex, hash, LIM_HASH_BYTES);
		snprintf(key, sizeof(key), "hash %llu", (unsigned long long)c.seq);
		assert_string_equal(hex, expect(expected, key));
		lim_hex__encode(hex, c.sig, LIM_SIG_BYTES);
		snprintf(key, sizeof(key), "sig %llu", (unsigned long long)c.seq);
		assert_string_equal(hex, expect(expected, key));
		assert_int_equal(lim_change__verify(&c, hash), 0);
		lim_change__link(link, hash, c.sig);
		lim_hex__encode(hex, link, LIM_HASH_BYTES);
		snprintf(key, sizeof(key), "link %llu", (unsigned long long)c.seq);
		assert_string_equal(hex, expect(expected, key));
		lim_change__dispose(&c);
		n++;
	}
	assert_int_equal(n, 4);
	free(lines);
	free(expected);
}

static long file_read(void *ctx, char *buf, size_t cap)
{
	return (long)fread(buf, 1, cap, ctx);
}

static void test_vectors__pack_gives_expected_state(void **state)
{
	size_t exp_len;
	char *expected = slurp("expected.txt", &exp_len), *pack = vectors_path("pack.lim");
	char digest[65];
	lim_db *db;
	lim_buf vv = LIM_BUF_INIT;
	lim_apply_stats st = { 0, 0 };
	FILE *f = fopen(pack, "rb");
	(void)state;
	assert_non_null(f);
	assert_int_equal(lim_db_open(&db, ":memory:", NULL), 0);
	assert_int_equal(lim_db_import(db, file_read, f, &st), 0);
	fclose(f);
	assert_int_equal(st.applied, 4);
	digest_of(db, digest);
	assert_string_equal(digest, expect(expected, "digest"));
	assert_int_equal(lim_db_version_vector(&vv, db), 0);
	vv.ptr[strcspn(vv.ptr, "\n")] = '\0';
	assert_string_equal(vv.ptr, expect(expected, "vv"));
	assert_json(db, "notes", "n1", NULL, expect(expected, "get notes n1"));
	assert_json(db, "notes", "draft 1", NULL, expect(expected, "get notes draft%201"));
	assert_int_equal(lim_db_verify(db), 0);
	lim_buf_dispose(&vv);
	lim_db_free(db);
	free(expected);
	free(pack);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vectors__changes_hash_and_verify),
		cmocka_unit_test(test_vectors__pack_gives_expected_state),
	};
	return cmocka_run_group_tests_name("vectors", tests, NULL, NULL);
}
