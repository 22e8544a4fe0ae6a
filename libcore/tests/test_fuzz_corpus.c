/*
 * The fuzzers' standalone driver: every file of fuzz/corpus/<target>/ (the
 * seeds, every regression input of a bug a fuzzer found, and whatever
 * `fuzz/run --merge` kept) replayed through that target's harness, built
 * here with the regular compiler and no libFuzzer. A harness aborts on any
 * broken invariant; in the sanitizer build ASan and UBSan catch the rest.
 *
 * The harness sources live in fuzz/ (each defines LLVMFuzzerTestOneInput);
 * they are included here under distinct names. Corpus location:
 * $LIM_SOURCE_DIR/fuzz/corpus.
 *
 * An input listed in fuzz/known-open.txt reproduces a bug not fixed yet:
 * it runs in a child process and must still fail; once it passes, this
 * test fails until the line is removed from known-open.txt.
 *
 * Built a second time as test_fuzz_corpus_nv (LIM_FUZZ_CORPUS_NV, see
 * libcore/CMakeLists.txt) against liblim with change.c compiled with
 * LIM_FUZZ_NO_VERIFY, as fuzz/ builds fuzz_session_nv: that binary replays
 * fuzz/corpus/fuzz_session_nv and fuzz/corpus/fuzz_session (the inputs
 * fuzz/run starts fuzz_session_nv from) through fuzz_session.c with
 * signatures always verifying, so a finding only the nv fuzzer can reach
 * stays a regression test of every test run.
 */
#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include "support.h"

#define LLVMFuzzerTestOneInput fuzz_line_one
#include "../../fuzz/fuzz_line.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_change_one
#include "../../fuzz/fuzz_change.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_pack_one
#include "../../fuzz/fuzz_pack.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_json_one
#include "../../fuzz/fuzz_json.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_session_one
#include "../../fuzz/fuzz_session.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_session_signed_one
#include "../../fuzz/fuzz_session_signed.c"
#undef LLVMFuzzerTestOneInput

typedef struct {
	const char *name;
	int (*one)(const uint8_t *data, size_t size);
	size_t min_inputs; /* the seeds alone are at least this many */
	const char *label; /* the test's name, if not `name` */
	/* A known-open finding of this corpus need not fail here (the nv
	 * build does not check signatures, so a forged one is no finding). */
	int open_may_pass;
} fuzz_target;

#ifdef LIM_FUZZ_CORPUS_NV
static const fuzz_target TARGETS[] = {
	{ "fuzz_session_nv", fuzz_session_one, 0, NULL, 0 },
	{ "fuzz_session", fuzz_session_one, 10, "fuzz_session (nv)", 1 },
};
#else
static const fuzz_target TARGETS[] = {
	{ "fuzz_line", fuzz_line_one, 10, NULL, 0 },
	{ "fuzz_change", fuzz_change_one, 4, NULL, 0 },
	{ "fuzz_pack", fuzz_pack_one, 2, NULL, 0 },
	{ "fuzz_json", fuzz_json_one, 5, NULL, 0 },
	{ "fuzz_session", fuzz_session_one, 10, NULL, 0 },
	{ "fuzz_session_signed", fuzz_session_signed_one, 3, NULL, 0 },
	/* fuzz_session_nv runs fuzz_session.c; its corpus replays through it. */
	{ "fuzz_session_nv", fuzz_session_one, 0, NULL, 0 },
};
#endif

/* $LIM_SOURCE_DIR/fuzz/<rel> (malloc'd). */
static char *fuzz_path(const char *rel)
{
	const char *src = getenv("LIM_SOURCE_DIR");
	size_t n;
	char *p;
	if (!src || !*src)
		fail_msg("LIM_SOURCE_DIR is not set");
	n = strlen(src) + strlen(rel) + sizeof("/fuzz/");
	p = malloc(n);
	assert_non_null(p);
	snprintf(p, n, "%s/fuzz/%s", src, rel);
	return p;
}

static char *corpus_dir(const char *target)
{
	char rel[256];
	snprintf(rel, sizeof(rel), "corpus/%s", target);
	return fuzz_path(rel);
}

static uint8_t *read_all(const char *path, size_t *size)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	size_t cap = 0, n = 0, r;
	assert_non_null(f);
	do {
		if (n == cap) {
			cap = cap ? 2 * cap : 4096;
			buf = realloc(buf, cap);
			assert_non_null(buf);
		}
		r = fread(buf + n, 1, cap - n, f);
		n += r;
	} while (r > 0);
	assert_int_equal(ferror(f), 0);
	fclose(f);
	/* An exact-size copy, as libFuzzer passes it (ASan sees overreads). */
	uint8_t *exact = malloc(n ? n : 1);
	assert_non_null(exact);
	memcpy(exact, buf, n);
	free(buf);
	*size = n;
	return exact;
}

/* The description of <target>/<name> in fuzz/known-open.txt, or NULL. */
static char *known_open(const char *target, const char *name)
{
	char *path = fuzz_path("known-open.txt"), line[4096], key[1024];
	char *desc = NULL;
	FILE *f;
	f = fopen(path, "r");
	free(path);
	if (!f)
		return NULL;
	snprintf(key, sizeof(key), "%s/%s ", target, name);
	while (!desc && fgets(line, sizeof(line), f)) {
		if (strncmp(line, key, strlen(key)) == 0) {
			char *d = strchr(line + strlen(key), ' '); /* past the ENV column */
			desc = strdup(d ? d + 1 : "");
			desc[strcspn(desc, "\n")] = '\0';
		}
	}
	fclose(f);
	return desc;
}

/* Run a known-open input in a child: 1 if it still fails there. */
static int still_fails(const fuzz_target *t, const uint8_t *data, size_t size)
{
	int status;
	pid_t pid;
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(t->one(data, size) == 0 ? 0 : 1);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Replay one target's corpus in name order; returns the number of inputs. */
static size_t replay(const fuzz_target *t)
{
	char *dir = corpus_dir(t->name);
	DIR *d = opendir(dir);
	struct dirent *e;
	char **names = NULL;
	size_t n = 0, cap = 0;

	if (!d) {
		free(dir);
		return 0;
	}
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 64;
			names = realloc(names, cap * sizeof(*names));
			assert_non_null(names);
		}
		names[n++] = strdup(e->d_name);
	}
	closedir(d);
	if (n)
		qsort(names, n, sizeof(*names), name_cmp);
	for (size_t i = 0; i < n; i++) {
		char *path = path_in(dir, names[i]);
		struct stat st;
		size_t size;
		uint8_t *data;
		assert_int_equal(stat(path, &st), 0);
		if (S_ISREG(st.st_mode)) {
			data = read_all(path, &size);
			char *open_bug = known_open(t->name, names[i]);
			/* Printed first, so a crash names its input. */
			print_message("  %s/%s (%zu bytes)%s\n", t->name, names[i], size,
			              open_bug ? " [known open finding]" : "");
			if (open_bug && t->open_may_pass) {
				/* Run apart: it may still crash here, or pass. */
				print_message("  known open finding elsewhere; here it %s\n",
				              still_fails(t, data, size) ? "fails too" : "passes");
				free(open_bug);
			} else if (open_bug) {
				if (!still_fails(t, data, size))
					fail_msg("fuzz/corpus/%s/%s passes now: the bug is fixed, so delete its line "
					         "from fuzz/known-open.txt (%s)", t->name, names[i], open_bug);
				print_message("  known open finding, still reproduces: %s\n", open_bug);
				free(open_bug);
			} else {
				assert_int_equal(t->one(data, size), 0);
			}
			free(data);
		}
		free(path);
		free(names[i]);
	}
	free(names);
	free(dir);
	return n;
}

static void test_fuzz_corpus__replays(void **state)
{
	const fuzz_target *t = *state;
	size_t n = replay(t);
	if (n < t->min_inputs)
		fail_msg("fuzz/corpus/%s holds %zu inputs; expected at least %zu (run fuzz/make_seeds.py)",
		         t->name, n, t->min_inputs);
	print_message("%s: %zu inputs replayed\n", t->label ? t->label : t->name, n);
}

/* Every corpus directory belongs to a target this driver knows. */
static void test_fuzz_corpus__no_unknown_targets(void **state)
{
	char *dir = corpus_dir("");
	DIR *d = opendir(dir);
	struct dirent *e;
	(void)state;
	assert_non_null(d);
	while ((e = readdir(d))) {
		int known = e->d_name[0] == '.';
		for (size_t i = 0; i < sizeof(TARGETS) / sizeof(TARGETS[0]) && !known; i++)
			known = strcmp(e->d_name, TARGETS[i].name) == 0;
		if (!known)
			fail_msg("fuzz/corpus/%s has no harness in test_fuzz_corpus.c", e->d_name);
	}
	closedir(d);
	free(dir);
}

/* A saved crash is reproducible only if running inputs leaves nothing
 * behind: a store the harness opens after an input has the same identity
 * and state as one it opened before any input ran. */
static void test_fuzz_corpus__inputs_leave_no_state_behind(void **state)
{
	static const uint8_t in[] = "\x40S c d x i1\tN c d n 5\n\x41S c d x i2\n\x42X c d";
	lim_db *before, *after;
	char d_before[65], d_after[65];
	unsigned char id_before[LIM_ID_BYTES], id_after[LIM_ID_BYTES];
	(void)state;
	fuzz_begin();
	before = fuzz_open_db();
	assert_int_equal(lim_db_replica_id(before, id_before), 0);
	digest_of(before, d_before);
	lim_db_free(before);
	signed_changes_in = 0;
	assert_int_equal(fuzz_session_signed_one(in, sizeof(in) - 1), 0);
	assert_true(signed_changes_in > 0); /* the input did change a store */
	fuzz_begin();
	after = fuzz_open_db();
	assert_int_equal(lim_db_replica_id(after, id_after), 0);
	digest_of(after, d_after);
	lim_db_free(after);
	assert_memory_equal(id_before, id_after, LIM_ID_BYTES);
	assert_string_equal(d_before, d_after);
}

/* The signed harness must get its own chains accepted, or it fuzzes
 * nothing past the chain check: three linked changes of key 0 in one batch
 * (a run, whose signatures are checked together), then two of key 1. */
static void test_fuzz_corpus__signed_chains_are_accepted(void **state)
{
	static const uint8_t in[] = "\x00S c d x i1\n\x00N c d n 5\n\x40" "A c d s sx\n"
	                            "\x01S c e y i2\n\x41X c e";
	(void)state;
	signed_changes_in = 0;
	assert_int_equal(fuzz_session_signed_one(in, sizeof(in) - 1), 0);
	if (signed_changes_in != 5)
		fail_msg("the server accepted %llu of the harness's 5 signed changes: fuzz_session_signed.c "
		         "links its chains differently from liblim (see signed_change)",
		         (unsigned long long)signed_changes_in);
}

/* A server of the session harness, after the handshake, takes one batch
 * of a valid change of another store; with hold_txn, while the harness
 * holds a transaction on the server's store. Returns what fuzz_peer_finish
 * made of it. */
static void err500_batch(int hold_txn, lim_session_info *info)
{
	fuzz_peer p;
	lim_db *a;
	lim_sb in = LIM_SB_INIT;
	char *bytes;
	size_t len;
	lim_value v = { LIM_STRING, 0, 0, 0, "x", 1 };
	fuzz_begin();
	fuzz_peer_start_with(&p, 2, 4, 0);
	fuzz_peer_handshake(&p);
	a = fuzz_open_db();
	assert_int_equal(lim_db_set(a, "c", "d", "f", &v), 0);
	bytes = last_change(a, &len);
	lim_sb__puts(&in, "CH ");
	lim_sb__put(&in, bytes, len);
	lim_sb__puts(&in, "\nEND 1\n");
	assert_int_equal(lim_sb__check(&in), 0);
	if (hold_txn)
		assert_int_equal(lim_db_begin(p.db), 0);
	fuzz_peer_feed(&p, in.ptr, in.len);
	fuzz_peer_drain(&p, SIZE_MAX);
	fuzz_peer_finish(&p);
	lim_session__info(p.s, info);
	fuzz_peer_stop(&p);
	lim_db_free(a);
	free(bytes);
	lim_sb__free(&in);
}

/* ERR 500 in the session harness: received, it is the input's own text
 * (seed-peer-error-*, from transcripts/peer-error.txt) and replays pass;
 * sent, the server's own store failed, which fuzz_peer_finish reports as
 * a finding. A harness holding a transaction makes the store refuse every
 * batch with LIM_ETXN, hence ERR 500: the check must catch that. */
static void test_fuzz_corpus__err_500_sent_is_a_finding(void **state)
{
	char path[] = "/tmp/lim-fuzz-err500-XXXXXX", msg[4096];
	lim_session_info info;
	int fd, status;
	ssize_t n;
	pid_t pid;
	(void)state;
	/* Without the transaction the batch applies: the change is good. */
	err500_batch(0, &info);
	assert_int_equal(info.changes_in, 1);
	assert_int_equal(info.error_code, 0);
	/* With it, the server sends ERR 500 and the harness aborts. */
	fd = mkstemp(path);
	assert_true(fd >= 0);
	unlink(path);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(fd, 2);
		err500_batch(1, &info);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	n = pread(fd, msg, sizeof(msg) - 1, 0);
	close(fd);
	msg[n > 0 ? n : 0] = '\0';
	if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGABRT ||
	    !strstr(msg, "it sent ERR 500 cannot apply remote changes while a local transaction is open"))
		fail_msg("fuzz_peer_finish did not report the ERR 500 the server sent (status %d): %s", status, msg);
}

#ifdef LIM_FUZZ_CORPUS_NV
/* The nv build really skips signature checks (else it replays nothing new):
 * a change with its signature zeroed applies here. */
static void test_fuzz_corpus__nv_build_skips_signatures(void **state)
{
	lim_db *a, *b;
	char *bytes;
	size_t len;
	(void)state;
	fuzz_begin();
	a = fuzz_open_db();
	lim_value v = { LIM_STRING, 0, 0, 0, "nv", 2 };
	assert_int_equal(lim_db_set(a, "c", "d", "f", &v), 0);
	bytes = last_change(a, &len);
	/* The signature is the last field: 128 hex digits before the end. */
	assert_true(len > 128);
	memset(bytes + len - 128, '0', 128);
	b = fuzz_open_db();
	lim_db_free(a);
	if (lim_db_apply(b, bytes, len, NULL) != 0)
		fail_msg("test_fuzz_corpus_nv verifies signatures (%s): LIM_FUZZ_NO_VERIFY is not in effect",
		         lim_error_last());
	lim_db_free(b);
	free(bytes);
}
#endif

int main(void)
{
	struct CMUnitTest tests[sizeof(TARGETS) / sizeof(TARGETS[0]) + 4];
	size_t n = 0;
	fuzz_init(); /* before anything else touches libsodium */
	unsetenv("LIM_FUZZ_NO_STORE_CHECK"); /* every oracle on: known-open inputs must fail */
	for (size_t i = 0; i < sizeof(TARGETS) / sizeof(TARGETS[0]); i++) {
		struct CMUnitTest t = cmocka_unit_test_prestate(test_fuzz_corpus__replays, (void *)&TARGETS[i]);
		t.name = TARGETS[i].label ? TARGETS[i].label : TARGETS[i].name;
		tests[n++] = t;
	}
#ifdef LIM_FUZZ_CORPUS_NV
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_fuzz_corpus__nv_build_skips_signatures);
	return _cmocka_run_group_tests("fuzz_corpus_nv", tests, n, NULL, NULL);
#endif
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_fuzz_corpus__no_unknown_targets);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_fuzz_corpus__inputs_leave_no_state_behind);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_fuzz_corpus__signed_chains_are_accepted);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_fuzz_corpus__err_500_sent_is_a_finding);
	return _cmocka_run_group_tests("fuzz_corpus", tests, n, NULL, NULL);
}
