/*
 * The golden vectors of protocol-spec/vectors, checked through liblim: each
 * change line parses, hashes, verifies and links to the recorded values
 * (each prev being the link of the change before); liblim's own encoder
 * rebuilds every change line byte for byte from its inputs (seed, seq, hlc,
 * prev and the decoded ops); the pack imported into an empty store gives
 * the recorded digest, version vector and documents, and exporting that
 * store gives pack.lim back byte for byte. Python, Go and the independent
 * client check the same expected.txt.
 */
#include <sodium.h>
#include "support.h"
#include "change.h"
#include "text.h"
#include "value.h"

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

/* The value of `"key": ` inside [obj, end) of changes.json: a string's
 * contents (without quotes) or a bare number, in a static buffer. The file
 * is flat generator output (gen_vectors.c), so no general JSON parser is
 * needed; a key that is missing fails the test. */
static const char *json_field(const char *obj, const char *end, const char *key)
{
	static char out[4096];
	char pat[64];
	const char *p, *v, *e;
	snprintf(pat, sizeof(pat), "\"%s\": ", key);
	p = strstr(obj, pat);
	if (!p || p >= end)
		fail_msg("changes.json: no \"%s\" in a change", key);
	v = p + strlen(pat);
	if (*v == '"') {
		v++;
		e = strchr(v, '"');
	} else {
		e = v + strcspn(v, ",\n}");
	}
	assert_non_null(e);
	assert_true((size_t)(e - v) < sizeof(out));
	memcpy(out, v, (size_t)(e - v));
	out[e - v] = '\0';
	return out;
}

static void unhex(unsigned char *out, size_t n, const char *hex)
{
	assert_int_equal(lim_hex__decode(out, n, hex, strlen(hex)), 0);
}

/* One op with a value token (S or A): kind coll doc path value. */
static void op_value(lim_change_builder *b, lim_op_kind kind, const char *coll, const char *doc,
                     const char *path, lim_value v)
{
	lim_cb__begin_op(b, kind, coll, doc);
	lim_cb__name(b, path);
	lim_sb__putc(&b->ops, ' ');
	lim_value__encode(&b->ops, &v);
}

static lim_value v_str(const char *s) { return (lim_value){ .type = LIM_STRING, .str = s, .len = strlen(s) }; }
static lim_value v_int(int64_t i) { return (lim_value){ .type = LIM_INT, .integer = i }; }

/*
 * The ops of change `seq` as decoded values, the way a writer holds them
 * (vectors/README.md lists them). changes.json carries ops only inside the
 * encoded body; taking them from there would compare liblim's encoder with
 * its own parser, so they are written out here and encoded by the builder
 * and lim_value__encode: escaping, value tokens and tags are under test.
 */
static void vector_ops(lim_change_builder *b, uint64_t seq, const unsigned char author[LIM_ID_BYTES])
{
	switch (seq) {
	case 1:
		op_value(b, LIM_OP_SET, "notes", "n1", "title", v_str("Hi, 100%\tsure\nna\xc3\xafve \xe2\x9c\x93"));
		op_value(b, LIM_OP_SET, "notes", "n1", "count", v_int(-42));
		op_value(b, LIM_OP_SET, "notes", "n1", "big", v_int(INT64_MAX));
		op_value(b, LIM_OP_SET, "notes", "n1", "ratio", (lim_value){ .type = LIM_FLOAT, .real = -0.5 });
		op_value(b, LIM_OP_SET, "notes", "n1", "done", (lim_value){ .type = LIM_BOOL, .boolean = 1 });
		op_value(b, LIM_OP_SET, "notes", "n1", "draft", (lim_value){ .type = LIM_BOOL, .boolean = 0 });
		op_value(b, LIM_OP_SET, "notes", "n1", "parent", (lim_value){ .type = LIM_NULL });
		op_value(b, LIM_OP_SET, "notes", "n1", "blob",
		         (lim_value){ .type = LIM_BYTES, .str = "\x00\xff\x10\xab", .len = 4 });
		op_value(b, LIM_OP_SET, "notes", "n1", "empty", v_str(""));
		op_value(b, LIM_OP_SET, "notes", "n1", "meta.author", v_str("Ada Lovelace"));
		op_value(b, LIM_OP_SET, "notes", "draft 1", "body", v_str("first draft"));
		break;
	case 2:
		lim_cb__begin_op(b, LIM_OP_INCR, "notes", "n1");
		lim_cb__name(b, "views");
		lim_sb__printf(&b->ops, " %d", 5);
		lim_cb__begin_op(b, LIM_OP_INCR, "notes", "n1");
		lim_cb__name(b, "views");
		lim_sb__printf(&b->ops, " %d", -2);
		op_value(b, LIM_OP_SADD, "notes", "n1", "tags", v_str("red"));
		op_value(b, LIM_OP_SADD, "notes", "n1", "tags", v_str("blue"));
		op_value(b, LIM_OP_SADD, "notes", "n1", "tags", v_str("red"));
		break;
	case 3: {
		/* remove "red", naming the tags of both adds of change 2 (op
		 * indexes 2 and 4), in increasing order */
		unsigned char tag[LIM_TAG_BYTES];
		op_value(b, LIM_OP_SREM, "notes", "n1", "tags", v_str("red"));
		lim_sb__putc(&b->ops, ' ');
		lim_tag__make(tag, author, 2, 2);
		lim_cb__tag(&b->ops, tag);
		lim_sb__putc(&b->ops, ',');
		lim_tag__make(tag, author, 2, 4);
		lim_cb__tag(&b->ops, tag);
		lim_cb__begin_op(b, LIM_OP_DELDOC, "notes", "draft 1");
		break;
	}
	case 4:
		op_value(b, LIM_OP_SET, "notes", "draft 1", "title", v_str("back"));
		lim_cb__begin_op(b, LIM_OP_DEL, "notes", "n1");
		lim_cb__name(b, "draft");
		break;
	default:
		fail_msg("changes.json: unexpected seq %llu", (unsigned long long)seq);
	}
}

static void test_vectors__changes_rebuilt_from_inputs(void **state)
{
	size_t json_len, txt_len;
	char *json = slurp("changes.json", &json_len), *lines = slurp("changes.txt", &txt_len);
	const char *obj = strstr(json, "\"changes\"");
	const char *want = lines;
	unsigned char link[LIM_HASH_BYTES] = { 0 };
	int n = 0;
	(void)state;
	assert_true(sodium_init() >= 0);
	assert_non_null(obj);
	while ((obj = strchr(obj, '{')) != NULL) {
		const char *end = strchr(obj, '}');
		unsigned char seed[crypto_sign_SEEDBYTES], pk[crypto_sign_PUBLICKEYBYTES];
		unsigned char sk[crypto_sign_SECRETKEYBYTES], author[LIM_ID_BYTES], prev[LIM_HASH_BYTES];
		unsigned char hash[LIM_HASH_BYTES];
		uint64_t seq, hlc;
		char *stop;
		const char *nl = strchr(want, '\n');
		lim_change_builder b = { LIM_SB_INIT, 0 };
		lim_sb out = LIM_SB_INIT;
		char hex[2 * LIM_HASH_BYTES + 1];

		assert_non_null(end);
		assert_non_null(nl);
		unhex(seed, sizeof(seed), json_field(obj, end, "seed"));
		unhex(author, sizeof(author), json_field(obj, end, "author"));
		unhex(prev, sizeof(prev), json_field(obj, end, "prev"));
		seq = strtoull(json_field(obj, end, "seq"), &stop, 10);
		assert_int_equal(*stop, '\0');
		hlc = strtoull(json_field(obj, end, "hlc"), &stop, 16);
		assert_int_equal(*stop, '\0');
		assert_int_equal(seq, (uint64_t)n + 1);

		/* The author is the Ed25519 key of the seed, and prev is the link of
		 * the change this loop sealed before (zeros for seq 1). */
		assert_int_equal(crypto_sign_seed_keypair(pk, sk, seed), 0);
		assert_memory_equal(pk, author, LIM_ID_BYTES);
		assert_memory_equal(prev, link, LIM_HASH_BYTES);

		vector_ops(&b, seq, author);
		assert_int_equal(lim_change__seal(&out, hash, &b, author, sk, seq, hlc, prev), 0);
		if (out.len != (size_t)(nl - want) || memcmp(out.ptr, want, out.len) != 0)
			fail_msg("change %llu rebuilt by liblim differs from changes.txt:\n got %.*s\nwant %.*s",
			         (unsigned long long)seq, (int)out.len, out.ptr, (int)(nl - want), want);
		/* the same bytes as the recorded "line", and the recorded hash/link */
		{
			const char *line = json_field(obj, end, "line");
			assert_int_equal(strlen(line), out.len);
			assert_memory_equal(line, out.ptr, out.len);
		}
		lim_hex__encode(hex, hash, LIM_HASH_BYTES);
		assert_string_equal(hex, json_field(obj, end, "hash"));
		lim_change__sealed_link(link, hash, &out);
		lim_hex__encode(hex, link, LIM_HASH_BYTES);
		assert_string_equal(hex, json_field(obj, end, "link"));

		lim_sb__free(&out);
		lim_sb__free(&b.ops);
		want = nl + 1;
		obj = end + 1;
		n++;
	}
	assert_int_equal(n, 4);
	assert_int_equal(*want, '\0'); /* every line of changes.txt was rebuilt */
	free(json);
	free(lines);
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

static int sb_write(void *ctx, const char *bytes, size_t len)
{
	lim_sb__put(ctx, bytes, len);
	return lim_sb__check(ctx);
}

/*
 * changes.md §12: an export holds the changes in the order of §11 (authors
 * bytewise, then seq), each line exactly as held, and an END line whose
 * count and checksum are functions of those lines only. The store that
 * imported pack.lim holds exactly its 4 changes (the importing replica
 * wrote nothing), so nothing is left for ordering or the header to change:
 * the export must be pack.lim byte for byte, and so must an export of a
 * store that got the same changes one by one through lim_db_apply.
 */
static void test_vectors__export_is_pack(void **state)
{
	size_t pack_len, txt_len;
	char *want = slurp("pack.lim", &pack_len), *lines = slurp("changes.txt", &txt_len);
	char *path = vectors_path("pack.lim"), *save = NULL;
	lim_db *db;
	lim_sb out = LIM_SB_INIT;
	FILE *f = fopen(path, "rb");
	(void)state;
	assert_non_null(f);
	assert_int_equal(lim_db_open(&db, ":memory:", NULL), 0);
	assert_int_equal(lim_db_import(db, file_read, f, NULL), 0);
	fclose(f);
	assert_int_equal(lim_db_export(db, NULL, 0, sb_write, &out), 0);
	assert_int_equal(out.len, pack_len);
	assert_memory_equal(out.ptr, want, pack_len);
	lim_db_free(db);

	lim_sb__clear(&out);
	assert_int_equal(lim_db_open(&db, ":memory:", NULL), 0);
	for (char *line = strtok_r(lines, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		assert_int_equal(lim_db_apply(db, line, strlen(line), NULL), 0);
	assert_int_equal(lim_db_export(db, NULL, 0, sb_write, &out), 0);
	assert_int_equal(out.len, pack_len);
	assert_memory_equal(out.ptr, want, pack_len);
	lim_db_free(db);

	lim_sb__free(&out);
	free(want);
	free(lines);
	free(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vectors__changes_hash_and_verify),
		cmocka_unit_test(test_vectors__changes_rebuilt_from_inputs),
		cmocka_unit_test(test_vectors__export_is_pack),
		cmocka_unit_test(test_vectors__pack_gives_expected_state),
	};
	return cmocka_run_group_tests_name("vectors", tests, NULL, NULL);
}
