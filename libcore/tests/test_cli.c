/*
 * test_cli.c — end-to-end tests of the `lim` command.
 *
 * Runs the real binary (path in $LIM_BIN, set by CMake) with fork/exec in
 * a private directory under a mkdtemp() root in /tmp, capturing stdout and
 * stderr to files, and checks output and exit status of every command:
 * 0 success, 1 not found, 2 usage, 3 invalid input, 4 other failure. Each
 * failure must be one stderr line "lim: ...". A missing $LIM_BIN is a
 * failure, never a skip. The temporary root is removed when every test
 * passed and kept (and named) otherwise.
 */
#define _XOPEN_SOURCE 700

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *g_bin;
static char g_root[PATH_MAX];
static int g_case;

/* ------------------------------------------------------------ running lim */

struct run {
	int status;     /* exit status; 128 + signal if killed */
	char *out, *err;
	size_t out_len;
	char cmd[1024]; /* the command line, for failure messages */
};

struct io {
	const char *in;     /* stdin file (default /dev/null) */
	const char *out;    /* stdout file (default: captured into run.out) */
	const char *env_db; /* value of LIM_DB in the child (default: unset) */
};

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	size_t cap = 4096, n = 0, got;
	char *buf = malloc(cap + 1);

	assert_non_null(f);
	assert_non_null(buf);
	while ((got = fread(buf + n, 1, cap - n, f)) > 0) {
		n += got;
		if (n == cap) {
			cap *= 2;
			buf = realloc(buf, cap + 1);
			assert_non_null(buf);
		}
	}
	fclose(f);
	buf[n] = '\0';
	if (len)
		*len = n;
	return buf;
}

static void spit(const char *path, const char *bytes, size_t len)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(bytes, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static void run_dispose(struct run *r)
{
	free(r->out);
	free(r->err);
	r->out = r->err = NULL;
}

static void redirect(const char *path, int flags, int fd)
{
	int f = open(path, flags, 0644);

	if (f < 0 || dup2(f, fd) < 0)
		_exit(126);
	close(f);
}

/* Run lim with the NULL-terminated arguments; returns the exit status. */
static int lim_run(struct run *r, const struct io *io, ...)
{
	const char *args[64];
	int n = 0, status;
	size_t used;
	pid_t pid;
	va_list ap;

	run_dispose(r);
	args[n++] = g_bin;
	used = (size_t)snprintf(r->cmd, sizeof r->cmd, "lim");
	va_start(ap, io);
	for (const char *a; (a = va_arg(ap, const char *)) != NULL;) {
		assert_true(n < 63);
		args[n++] = a;
		if (used < sizeof r->cmd)
			used += (size_t)snprintf(r->cmd + used, sizeof r->cmd - used, " %s", a);
	}
	va_end(ap);
	args[n] = NULL;

	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		redirect(io && io->in ? io->in : "/dev/null", O_RDONLY, 0);
		redirect(io && io->out ? io->out : ".stdout", O_WRONLY | O_CREAT | O_TRUNC, 1);
		redirect(".stderr", O_WRONLY | O_CREAT | O_TRUNC, 2);
		unsetenv("LIM_DB");
		if (io && io->env_db)
			setenv("LIM_DB", io->env_db, 1);
		execv(g_bin, (char *const *)args);
		_exit(127);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	r->status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	r->out = slurp(io && io->out ? io->out : ".stdout", &r->out_len);
	r->err = slurp(".stderr", NULL);
	return r->status;
}

#define LIM(r, ...) lim_run((r), NULL, __VA_ARGS__, (const char *)NULL)
#define LIM_IO(r, io, ...) lim_run((r), (io), __VA_ARGS__, (const char *)NULL)

/*
 * The exit status must be `want`. On success stderr must be empty; on
 * failure it must be exactly one line "lim: ...".
 */
static void expect_status(const struct run *r, int want, const char *file, int line)
{
	const char *nl = strchr(r->err, '\n');
	int ok = r->status == want;

	if (want == 0)
		ok = ok && r->err[0] == '\0';
	else
		ok = ok && strncmp(r->err, "lim: ", 5) == 0 && nl && nl[1] == '\0' &&
		     nl - r->err > 8;
	if (!ok) {
		print_error("%s:%d: `%s` exited %d (wanted %d)\n--- stdout:\n%.2000s\n--- stderr:\n%s\n",
		            file, line, r->cmd, r->status, want, r->out, r->err);
		_fail(file, line);
	}
}

#define EXPECT(r, want) expect_status((r), (want), __FILE__, __LINE__)
#define EXPECT_OUT(r, text) do { \
	EXPECT((r), 0); \
	if (strcmp((r)->out, (text)) != 0) { \
		print_error("`%s` printed:\n%s\nwanted:\n%s\n", (r)->cmd, (r)->out, (text)); \
		fail(); \
	} } while (0)
#define EXPECT_ERR_HAS(r, text) do { \
	if (!strstr((r)->err, (text))) { \
		print_error("`%s` stderr lacks \"%s\":\n%s\n", (r)->cmd, (text), (r)->err); \
		fail(); \
	} } while (0)
#define EXPECT_OUT_HAS(r, text) do { \
	if (!strstr((r)->out, (text))) { \
		print_error("`%s` stdout lacks \"%s\":\n%s\n", (r)->cmd, (text), (r)->out); \
		fail(); \
	} } while (0)

static size_t count_lines(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

static int is_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i]))
			return 0;
	return 1;
}

static int file_exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

/* Copy the digest printed by `lim digest` for db into out[65]. */
static void digest_of(const char *db, char out[65])
{
	struct run r = { 0 };

	LIM(&r, "--db", db, "digest");
	EXPECT(&r, 0);
	assert_int_equal(strlen(r.out), 65);
	assert_true(is_hex(r.out, 64));
	memcpy(out, r.out, 64);
	out[64] = '\0';
	run_dispose(&r);
}

static void init_store(const char *db, const char *key)
{
	struct run r = { 0 };

	if (key)
		LIM(&r, "--db", db, "init", "--network-key", key);
	else
		LIM(&r, "--db", db, "init");
	EXPECT(&r, 0);
	run_dispose(&r);
}

#define NETKEY "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

/* ------------------------------------------------------------- fixtures */

/* Each test runs in a fresh directory under the temporary root. */
static int case_setup(void **state)
{
	char dir[PATH_MAX + 32];

	(void)state;
	if (!g_bin || access(g_bin, X_OK) != 0) {
		print_error("LIM_BIN is unset or not executable: %s\n", g_bin ? g_bin : "(unset)");
		return -1;
	}
	snprintf(dir, sizeof dir, "%s/case%02d", g_root, ++g_case);
	if (mkdir(dir, 0700) != 0 || chdir(dir) != 0)
		return -1;
	return 0;
}

/* --------------------------------------------------------------- tests */

static void test_cli__version_and_help(void **state)
{
	static const char *const cmds[] = { "init", "id", "put", "get", "del", "incr", "sadd",
	                                    "srem", "ls", "log", "digest", "verify", "export",
	                                    "import", "vv" };
	struct run r = { 0 };

	(void)state;
	LIM(&r, "--version");
	EXPECT(&r, 0);
	assert_memory_equal(r.out, "lim 0.1.0", 9);

	LIM(&r, "--help");
	EXPECT(&r, 0);
	for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
		char needle[32];
		snprintf(needle, sizeof needle, "  %s ", cmds[i]);
		EXPECT_OUT_HAS(&r, needle);
	}
	EXPECT_OUT_HAS(&r, "exit status");
	EXPECT_OUT_HAS(&r, "LIM_DB");

	LIM(&r, "help", "get");
	EXPECT(&r, 0);
	EXPECT_OUT_HAS(&r, "usage: lim [--db FILE] get COLL DOC [FIELD]");
	LIM(&r, "get", "--help");
	EXPECT(&r, 0);
	EXPECT_OUT_HAS(&r, "usage: lim [--db FILE] get COLL DOC [FIELD]");
	LIM(&r, "help", "frobnicate");
	EXPECT(&r, 2);
	run_dispose(&r);
}

static void test_cli__usage_errors(void **state)
{
	struct run r = { 0 };

	(void)state;
	LIM(&r, "--db", "a.db");
	EXPECT(&r, 2);
	EXPECT_ERR_HAS(&r, "lim --help");
	LIM(&r, "--db", "a.db", "frobnicate");
	EXPECT(&r, 2);
	EXPECT_ERR_HAS(&r, "lim: frobnicate: unknown command");
	LIM(&r, "--db");
	EXPECT(&r, 2);
	LIM(&r, "--bogus", "id");
	EXPECT(&r, 2);
	LIM(&r, "id");
	EXPECT(&r, 2);
	EXPECT_ERR_HAS(&r, "LIM_DB");

	init_store("a.db", NULL);
	LIM(&r, "--db", "a.db", "get", "users");
	EXPECT(&r, 2);
	EXPECT_ERR_HAS(&r, "lim: get: missing arguments");
	LIM(&r, "--db", "a.db", "get", "users", "alice", "name", "extra");
	EXPECT(&r, 2);
	LIM(&r, "--db", "a.db", "ls", "users", "--bogus");
	EXPECT(&r, 2);
	LIM(&r, "--db", "a.db", "ls", "users", "--limit", "ten");
	EXPECT(&r, 2);
	LIM(&r, "--db", "a.db", "ls", "users", "--limit", "-1");
	EXPECT(&r, 2);
	LIM(&r, "--db", "a.db", "ls", "users", "--limit");
	EXPECT(&r, 2);
	LIM(&r, "--db", "a.db", "digest", "--prefix", "x");
	EXPECT(&r, 2);
	LIM(&r, "--db", "a.db", "incr", "c", "d", "n", "abc");
	EXPECT(&r, 2);
	LIM(&r, "--db", "a.db", "incr", "c", "d", "n", "1x");
	EXPECT(&r, 2);
	LIM(&r, "--db", "a.db", "incr", "c", "d", "n", "");
	EXPECT(&r, 2);
	LIM(&r, "--db", "a.db", "incr", "c", "d", "n", "+1");
	EXPECT(&r, 2);
	LIM(&r, "--db", "a.db", "incr", "c", "d", "n", "9223372036854775808");
	EXPECT(&r, 2);
	/* Nothing above wrote anything. */
	LIM(&r, "--db", "a.db", "log");
	EXPECT_OUT(&r, "");
	run_dispose(&r);
}

static void test_cli__init_twice(void **state)
{
	struct run r = { 0 };
	char *first;

	(void)state;
	LIM(&r, "--db", "a.db", "init");
	EXPECT(&r, 0);
	assert_int_equal(strlen(r.out), strlen("replica_id \nnetwork_key \n") + 128);
	assert_memory_equal(r.out, "replica_id ", 11);
	assert_true(is_hex(r.out + 11, 64));
	assert_memory_equal(r.out + 75, "\nnetwork_key ", 13);
	assert_true(is_hex(r.out + 88, 64));
	first = strdup(r.out);

	LIM(&r, "--db", "a.db", "id");
	EXPECT_OUT(&r, first);

	LIM(&r, "--db", "a.db", "init");
	EXPECT(&r, 4);
	EXPECT_ERR_HAS(&r, "lim: init: ");
	EXPECT_ERR_HAS(&r, "already");
	LIM(&r, "--db", "a.db", "init", "--network-key", NETKEY);
	EXPECT(&r, 4);
	LIM(&r, "--db", "a.db", "id");
	EXPECT_OUT(&r, first);
	free(first);
	run_dispose(&r);
}

static void test_cli__init_network_key(void **state)
{
	struct run r = { 0 };

	(void)state;
	LIM(&r, "--db", "a.db", "init", "--network-key", NETKEY);
	EXPECT(&r, 0);
	EXPECT_OUT_HAS(&r, "\nnetwork_key " NETKEY "\n");
	LIM(&r, "--db", "a.db", "id");
	EXPECT_OUT_HAS(&r, "\nnetwork_key " NETKEY "\n");

	LIM(&r, "--db", "b.db", "init", "--network-key", "abcd");
	EXPECT(&r, 2);
	EXPECT_ERR_HAS(&r, "network-key");
	LIM(&r, "--db", "b.db", "init", "--network-key",
	    "zz112233445566778899aabbccddeeff00112233445566778899aabbccddeeff");
	EXPECT(&r, 2);
	LIM(&r, "--db", "b.db", "init", "--network-key", NETKEY "00");
	EXPECT(&r, 2);
	assert_false(file_exists("b.db"));
	run_dispose(&r);
}

static void test_cli__missing_store(void **state)
{
	static const char *const cmds[] = { "id", "digest", "verify", "vv", "log", "export" };
	struct run r = { 0 };

	(void)state;
	LIM(&r, "--db", "nope.db", "get", "users", "alice");
	EXPECT(&r, 1);
	EXPECT_ERR_HAS(&r, "lim: get: no store at nope.db");
	EXPECT_ERR_HAS(&r, "lim init");
	LIM(&r, "--db", "nope.db", "put", "users", "alice", "{\"a\":1}");
	EXPECT(&r, 1);
	for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
		LIM(&r, "--db", "nope.db", cmds[i]);
		EXPECT(&r, 1);
	}
	assert_false(file_exists("nope.db"));
	run_dispose(&r);
}

static void test_cli__not_a_store(void **state)
{
	static const char text[] = "this is a text file, not a database\n";
	struct run r = { 0 };
	char *after;

	(void)state;
	spit("notes.txt", text, sizeof text - 1);
	LIM(&r, "--db", "notes.txt", "digest");
	EXPECT(&r, 4);
	EXPECT_ERR_HAS(&r, "lim: digest: ");
	LIM(&r, "--db", "notes.txt", "get", "users", "alice");
	EXPECT(&r, 4);
	LIM(&r, "--db", "notes.txt", "init");
	EXPECT(&r, 4);
	EXPECT_ERR_HAS(&r, "lim: init: ");
	after = slurp("notes.txt", NULL);
	assert_string_equal(after, text);
	free(after);
	run_dispose(&r);
}

/*
 * An existing empty file (from touch or mktemp) holds no store: commands
 * other than init must not turn it into one, and init must create the
 * store in it with the key it is given.
 */
static void test_cli__empty_file(void **state)
{
	struct run r = { 0 };
	struct stat st;

	(void)state;
	spit("empty.db", "", 0);
	LIM(&r, "--db", "empty.db", "id");
	if (r.status != 1) { /* not found (1) or not a store (4) */
		if (r.status != 4)
			print_error("an empty file must not open as a store\n");
		EXPECT(&r, 4);
	}
	assert_int_equal(stat("empty.db", &st), 0);
	assert_int_equal(st.st_size, 0);
	LIM(&r, "--db", "empty.db", "init", "--network-key", NETKEY);
	EXPECT(&r, 0);
	EXPECT_OUT_HAS(&r, "\nnetwork_key " NETKEY "\n");
	run_dispose(&r);
}

static void test_cli__lim_db_env(void **state)
{
	struct io env = { NULL, NULL, "env.db" };
	struct run r = { 0 }, r2 = { 0 };

	(void)state;
	LIM_IO(&r, &env, "init");
	EXPECT(&r, 0);
	assert_true(file_exists("env.db"));
	LIM_IO(&r2, &env, "id");
	EXPECT_OUT(&r2, r.out);
	/* --db wins over LIM_DB. */
	LIM_IO(&r2, &env, "--db", "other.db", "id");
	EXPECT(&r2, 1);
	EXPECT_ERR_HAS(&r2, "other.db");
	run_dispose(&r);
	run_dispose(&r2);
}

static void test_cli__put_get(void **state)
{
	struct io in = { "doc.json", NULL, NULL };
	struct run r = { 0 };
	char before[65], after[65];

	(void)state;
	init_store("a.db", NULL);
	LIM(&r, "--db", "a.db", "put", "users", "alice",
	    "{\"name\":\"Alice\",\"age\":30,\"addr\":{\"city\":\"Oslo\",\"zip\":\"0150\"}}");
	EXPECT_OUT(&r, "");
	LIM(&r, "--db", "a.db", "get", "users", "alice");
	EXPECT(&r, 0);
	EXPECT_OUT_HAS(&r, "\"Alice\"");
	EXPECT_OUT_HAS(&r, "\"Oslo\"");
	EXPECT_OUT_HAS(&r, "30");
	assert_int_equal(count_lines(r.out), 1);
	LIM(&r, "--db", "a.db", "get", "users", "alice", "addr.city");
	EXPECT_OUT(&r, "\"Oslo\"\n");
	LIM(&r, "--db", "a.db", "get", "users", "alice", "age");
	EXPECT_OUT(&r, "30\n");
	LIM(&r, "--db", "a.db", "get", "users", "alice", "addr");
	EXPECT(&r, 0);
	EXPECT_OUT_HAS(&r, "\"city\"");
	EXPECT_OUT_HAS(&r, "\"0150\"");

	/* Merge: other fields stay. */
	LIM(&r, "--db", "a.db", "put", "users", "alice", "{\"age\":31,\"tags\":null}");
	EXPECT(&r, 0);
	LIM(&r, "--db", "a.db", "get", "users", "alice", "age");
	EXPECT_OUT(&r, "31\n");
	LIM(&r, "--db", "a.db", "get", "users", "alice", "name");
	EXPECT_OUT(&r, "\"Alice\"\n");

	/* From standard input. */
	spit("doc.json", "{\"name\": \"Bob\", \"ok\": true}\n", 28);
	LIM_IO(&r, &in, "--db", "a.db", "put", "users", "bob", "-");
	EXPECT(&r, 0);
	LIM(&r, "--db", "a.db", "get", "users", "bob", "ok");
	EXPECT_OUT(&r, "true\n");

	/* Not found. */
	LIM(&r, "--db", "a.db", "get", "users", "carol");
	EXPECT(&r, 1);
	EXPECT_ERR_HAS(&r, "lim: get: ");
	LIM(&r, "--db", "a.db", "get", "users", "alice", "nope");
	EXPECT(&r, 1);
	LIM(&r, "--db", "a.db", "get", "users", "alice", "addr.nope");
	EXPECT(&r, 1);
	LIM(&r, "--db", "a.db", "get", "nocoll", "alice");
	EXPECT(&r, 1);

	/* Invalid input changes nothing. */
	digest_of("a.db", before);
	LIM(&r, "--db", "a.db", "put", "users", "alice", "{\"name\":");
	EXPECT(&r, 3);
	EXPECT_ERR_HAS(&r, "lim: put: ");
	LIM(&r, "--db", "a.db", "put", "users", "alice", "not json");
	EXPECT(&r, 3);
	LIM(&r, "--db", "a.db", "put", "users", "alice", "[1,2]");
	EXPECT(&r, 3);
	LIM(&r, "--db", "a.db", "put", "users", "alice", "42");
	EXPECT(&r, 3);
	LIM(&r, "--db", "a.db", "get", "users", "alice", "addr..city");
	EXPECT(&r, 3);
	digest_of("a.db", after);
	assert_string_equal(before, after);
	run_dispose(&r);
}

static void test_cli__del(void **state)
{
	struct run r = { 0 };

	(void)state;
	init_store("a.db", NULL);
	LIM(&r, "--db", "a.db", "put", "users", "alice",
	    "{\"name\":\"Alice\",\"addr\":{\"city\":\"Oslo\",\"zip\":\"0150\"}}");
	EXPECT(&r, 0);
	LIM(&r, "--db", "a.db", "put", "users", "bob", "{\"name\":\"Bob\"}");
	EXPECT(&r, 0);

	LIM(&r, "--db", "a.db", "del", "users", "alice", "addr.city");
	EXPECT_OUT(&r, "");
	LIM(&r, "--db", "a.db", "get", "users", "alice", "addr.city");
	EXPECT(&r, 1);
	LIM(&r, "--db", "a.db", "get", "users", "alice", "addr.zip");
	EXPECT_OUT(&r, "\"0150\"\n");
	LIM(&r, "--db", "a.db", "get", "users", "alice");
	EXPECT(&r, 0);
	assert_null(strstr(r.out, "Oslo"));

	LIM(&r, "--db", "a.db", "del", "users", "alice");
	EXPECT(&r, 0);
	LIM(&r, "--db", "a.db", "get", "users", "alice");
	EXPECT(&r, 1);
	LIM(&r, "--db", "a.db", "get", "users", "alice", "name");
	EXPECT(&r, 1);
	LIM(&r, "--db", "a.db", "ls", "users");
	EXPECT_OUT(&r, "bob\n");

	/* A later write brings the document back with only the new field. */
	LIM(&r, "--db", "a.db", "put", "users", "alice", "{\"age\":5}");
	EXPECT(&r, 0);
	LIM(&r, "--db", "a.db", "get", "users", "alice", "age");
	EXPECT_OUT(&r, "5\n");
	LIM(&r, "--db", "a.db", "get", "users", "alice", "name");
	EXPECT(&r, 1);
	run_dispose(&r);
}

static void test_cli__incr(void **state)
{
	struct run r = { 0 };

	(void)state;
	init_store("a.db", NULL);
	LIM(&r, "--db", "a.db", "incr", "stats", "home", "visits", "5");
	EXPECT_OUT(&r, "");
	LIM(&r, "--db", "a.db", "incr", "stats", "home", "visits", "-2");
	EXPECT(&r, 0);
	LIM(&r, "--db", "a.db", "incr", "stats", "home", "visits", "0");
	EXPECT(&r, 0);
	LIM(&r, "--db", "a.db", "get", "stats", "home", "visits");
	EXPECT_OUT(&r, "3\n");
	LIM(&r, "--db", "a.db", "get", "stats", "home");
	EXPECT(&r, 0);
	EXPECT_OUT_HAS(&r, "\"visits\"");
	EXPECT_OUT_HAS(&r, "3");
	LIM(&r, "--db", "a.db", "incr", "stats", "home", "visits", "-9223372036854775808");
	EXPECT(&r, 0);
	LIM(&r, "--db", "a.db", "incr", "stats", "home", "visits", "twelve");
	EXPECT(&r, 2);
	EXPECT_ERR_HAS(&r, "lim: incr: ");
	run_dispose(&r);
}

static void test_cli__sets(void **state)
{
	static const char *const bad[] = {
		"red", "[1]", "\"unterminated", "{\"x\":1}", "1e999", "\"\\ud800\"",
		"{\"$base64\":\"!!\"}", "01", "1.", "-", "\"a\" x", "", "tru", "\"\\q\"",
	};
	struct run r = { 0 };
	char before[65], after[65];

	(void)state;
	init_store("a.db", NULL);
	LIM(&r, "--db", "a.db", "sadd", "t", "one", "colors", "\"red\"");
	EXPECT_OUT(&r, "");
	LIM(&r, "--db", "a.db", "sadd", "t", "one", "colors", "\"blue\"");
	EXPECT(&r, 0);
	LIM(&r, "--db", "a.db", "sadd", "t", "one", "colors", " \"caf\\u00e9 \\ud83d\\ude00\" ");
	EXPECT(&r, 0);
	LIM(&r, "--db", "a.db", "sadd", "t", "one", "colors", "7");
	EXPECT(&r, 0);
	LIM(&r, "--db", "a.db", "sadd", "t", "one", "colors", "-1.5e2");
	EXPECT(&r, 0);
	LIM(&r, "--db", "a.db", "sadd", "t", "one", "colors", "true");
	EXPECT(&r, 0);
	LIM(&r, "--db", "a.db", "sadd", "t", "one", "colors", "null");
	EXPECT(&r, 0);
	LIM(&r, "--db", "a.db", "sadd", "t", "one", "colors", "{ \"$base64\" : \"AAEC\" }");
	EXPECT(&r, 0);
	LIM(&r, "--db", "a.db", "sadd", "t", "one", "colors", "\"red\"");
	EXPECT(&r, 0);
	LIM(&r, "--db", "a.db", "srem", "t", "one", "colors", "\"blue\"");
	EXPECT_OUT(&r, "");

	LIM(&r, "--db", "a.db", "get", "t", "one", "colors");
	EXPECT(&r, 0);
	assert_int_equal(r.out[0], '[');
	EXPECT_OUT_HAS(&r, "\"red\"");
	EXPECT_OUT_HAS(&r, "caf\xc3\xa9 \xf0\x9f\x98\x80");
	EXPECT_OUT_HAS(&r, "7");
	EXPECT_OUT_HAS(&r, "-150");
	EXPECT_OUT_HAS(&r, "true");
	EXPECT_OUT_HAS(&r, "null");
	EXPECT_OUT_HAS(&r, "\"AAEC\"");
	EXPECT_OUT_HAS(&r, "$base64");
	assert_null(strstr(r.out, "blue"));
	assert_non_null(strstr(r.out, "red"));
	assert_null(strstr(strstr(r.out, "red") + 3, "red")); /* once */
	LIM(&r, "--db", "a.db", "get", "t", "one");
	EXPECT(&r, 0);
	EXPECT_OUT_HAS(&r, "\"colors\"");

	/* Removing the bytes element (given in the form get prints). */
	LIM(&r, "--db", "a.db", "srem", "t", "one", "colors", "{\"$base64\":\"AAEC\"}");
	EXPECT(&r, 0);
	LIM(&r, "--db", "a.db", "get", "t", "one", "colors");
	assert_null(strstr(r.out, "AAEC"));

	digest_of("a.db", before);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		LIM(&r, "--db", "a.db", "sadd", "t", "one", "colors", bad[i]);
		EXPECT(&r, 3);
		EXPECT_ERR_HAS(&r, "lim: sadd: ");
	}
	LIM(&r, "--db", "a.db", "srem", "t", "one", "colors", "red");
	EXPECT(&r, 3);
	digest_of("a.db", after);
	assert_string_equal(before, after);
	run_dispose(&r);
}

static void test_cli__ls(void **state)
{
	static const char *const keys[] = { "b2", "a1", "b1", "a3", "a2" };
	struct run r = { 0 };

	(void)state;
	init_store("a.db", NULL);
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
		LIM(&r, "--db", "a.db", "put", "k", keys[i], "{\"n\":1}");
		EXPECT(&r, 0);
	}
	LIM(&r, "--db", "a.db", "put", "other", "zz", "{\"n\":1}");
	EXPECT(&r, 0);
	LIM(&r, "--db", "a.db", "ls", "k");
	EXPECT_OUT(&r, "a1\na2\na3\nb1\nb2\n");
	LIM(&r, "--db", "a.db", "ls", "k", "--prefix", "a");
	EXPECT_OUT(&r, "a1\na2\na3\n");
	LIM(&r, "--db", "a.db", "ls", "k", "--limit", "2");
	EXPECT_OUT(&r, "a1\na2\n");
	LIM(&r, "--db", "a.db", "ls", "--prefix=b", "k", "--limit", "1");
	EXPECT_OUT(&r, "b1\n");
	LIM(&r, "--db", "a.db", "ls", "k", "--limit", "0");
	EXPECT_OUT(&r, "a1\na2\na3\nb1\nb2\n");
	LIM(&r, "--db", "a.db", "ls", "k", "--prefix", "c");
	EXPECT_OUT(&r, "");
	LIM(&r, "--db", "a.db", "ls", "empty");
	EXPECT_OUT(&r, "");
	run_dispose(&r);
}

static void test_cli__log(void **state)
{
	struct run r = { 0 };
	char author[17], *pack;
	const char *line;
	unsigned long long prev_hlc = 0;

	(void)state;
	init_store("a.db", NULL);
	LIM(&r, "--db", "a.db", "id");
	memcpy(author, r.out + 11, 16);
	author[16] = '\0';

	LIM(&r, "--db", "a.db", "put", "users", "alice", "{\"name\":\"Alice\"}");
	EXPECT(&r, 0);
	LIM(&r, "--db", "a.db", "incr", "stats", "home", "visits", "1");
	EXPECT(&r, 0);
	LIM(&r, "--db", "a.db", "sadd", "t", "one", "tags", "\"x\"");
	EXPECT(&r, 0);
	LIM(&r, "--db", "a.db", "del", "users", "alice");
	EXPECT(&r, 0);

	LIM(&r, "--db", "a.db", "log");
	EXPECT(&r, 0);
	assert_int_equal(count_lines(r.out), 4);
	line = r.out;
	for (unsigned seq = 1; seq <= 4; seq++) {
		unsigned long long got_seq, ms, ctr;
		char who[17];
		int used = 0;

		assert_int_equal(sscanf(line, "%16s %llu %llu.%llu %n", who, &got_seq, &ms, &ctr, &used), 4);
		assert_true(used > 0);
		assert_string_equal(who, author);
		assert_int_equal(got_seq, seq);
		assert_true(ms > 1600000000000ull);
		assert_true(ctr < 65536);
		assert_true((ms << 16 | ctr) > prev_hlc);
		prev_hlc = ms << 16 | ctr;
		assert_true(line[used] != '\n'); /* the change's bytes follow */
		line = strchr(line, '\n') + 1;
	}
	EXPECT_OUT_HAS(&r, "alice");
	assert_null(strstr(r.out, "lim1 ")); /* ops only, not the raw encoding */
	LIM(&r, "--db", "a.db", "log", "--limit", "2");
	EXPECT(&r, 0);
	assert_int_equal(count_lines(r.out), 2);
	assert_memory_equal(r.out + 17, "3 ", 2);

	/* --raw: each change's canonical bytes, exactly as export writes them. */
	LIM(&r, "--db", "a.db", "export");
	EXPECT(&r, 0);
	pack = r.out;
	r.out = NULL;
	LIM(&r, "--db", "a.db", "log", "--raw");
	EXPECT(&r, 0);
	assert_int_equal(count_lines(r.out), 4);
	for (line = r.out; *line; line = strchr(line, '\n') + 1) {
		const char *bytes = strchr(strchr(strchr(line, ' ') + 1, ' ') + 1, ' ') + 1;
		size_t n = (size_t)(strchr(bytes, '\n') - bytes);
		char *needle = malloc(n + 3);

		assert_non_null(needle);
		assert_memory_equal(bytes, "lim1 ", 5);
		snprintf(needle, n + 3, "\n%.*s\n", (int)n, bytes);
		assert_non_null(strstr(pack, needle));
		free(needle);
	}
	free(pack);
	LIM(&r, "--db", "a.db", "digest", "--raw");
	EXPECT(&r, 2);
	run_dispose(&r);
}

static void test_cli__digest_verify_vv(void **state)
{
	struct run r = { 0 };
	char empty[65], full[65], id[65];

	(void)state;
	init_store("a.db", NULL);
	LIM(&r, "--db", "a.db", "id");
	memcpy(id, r.out + 11, 64);
	id[64] = '\0';
	digest_of("a.db", empty);
	LIM(&r, "--db", "a.db", "vv");
	EXPECT_OUT(&r, "");
	LIM(&r, "--db", "a.db", "verify");
	EXPECT_OUT(&r, "ok\n");

	LIM(&r, "--db", "a.db", "put", "users", "alice", "{\"name\":\"Alice\"}");
	EXPECT(&r, 0);
	LIM(&r, "--db", "a.db", "incr", "stats", "home", "visits", "3");
	EXPECT(&r, 0);
	digest_of("a.db", full);
	assert_string_not_equal(empty, full);
	digest_of("a.db", empty);
	assert_string_equal(empty, full); /* reading does not change it */
	LIM(&r, "--db", "a.db", "verify");
	EXPECT_OUT(&r, "ok\n");
	LIM(&r, "--db", "a.db", "vv");
	EXPECT(&r, 0);
	{
		char want[80];
		snprintf(want, sizeof want, "%s 2\n", id);
		EXPECT_OUT(&r, want);
	}
	run_dispose(&r);
}

/* Apply a write to store db and check it succeeded. */
#define WRITE(r, db, ...) do { LIM((r), "--db", (db), __VA_ARGS__); EXPECT((r), 0); } while (0)

static void test_cli__export_import(void **state)
{
	struct io to_a = { NULL, "a.pack", NULL }, to_b = { NULL, "b.pack", NULL };
	struct io from_a = { "a.pack", NULL, NULL };
	struct run r = { 0 }, rb = { 0 };
	char da[65], db[65];

	(void)state;
	init_store("a.db", NETKEY);
	init_store("b.db", NETKEY);
	WRITE(&r, "a.db", "put", "users", "alice", "{\"name\":\"Alice\",\"addr\":{\"city\":\"Oslo\"}}");
	WRITE(&r, "a.db", "incr", "stats", "home", "visits", "2");
	WRITE(&r, "a.db", "sadd", "users", "alice", "tags", "\"admin\"");
	WRITE(&r, "b.db", "put", "users", "bob", "{\"name\":\"Bob\"}");
	WRITE(&r, "b.db", "incr", "stats", "home", "visits", "5");

	LIM_IO(&r, &to_a, "--db", "a.db", "export");
	EXPECT(&r, 0);
	assert_true(r.out_len > 0);
	LIM_IO(&r, &to_b, "--db", "b.db", "export");
	EXPECT(&r, 0);

	LIM(&r, "--db", "b.db", "import", "a.pack");
	EXPECT_OUT(&r, "imported 3 changes (0 already present)\n");
	LIM_IO(&r, &from_a, "--db", "a.db", "import", "-"); /* its own changes */
	EXPECT_OUT(&r, "imported 0 changes (3 already present)\n");
	LIM(&r, "--db", "a.db", "import", "b.pack");
	EXPECT_OUT(&r, "imported 2 changes (0 already present)\n");

	digest_of("a.db", da);
	digest_of("b.db", db);
	assert_string_equal(da, db);
	LIM(&r, "--db", "a.db", "get", "users", "alice");
	LIM(&rb, "--db", "b.db", "get", "users", "alice");
	EXPECT(&r, 0);
	EXPECT_OUT(&rb, r.out);
	LIM(&r, "--db", "b.db", "get", "stats", "home", "visits");
	EXPECT_OUT(&r, "7\n");
	LIM(&r, "--db", "a.db", "get", "users", "bob", "name");
	EXPECT_OUT(&r, "\"Bob\"\n");
	LIM(&r, "--db", "a.db", "vv");
	LIM(&rb, "--db", "b.db", "vv");
	EXPECT_OUT(&rb, r.out);
	assert_int_equal(count_lines(r.out), 2);

	/* A second import finds everything present and changes nothing. */
	LIM(&r, "--db", "b.db", "import", "a.pack");
	EXPECT_OUT(&r, "imported 0 changes (3 already present)\n");
	digest_of("b.db", db);
	assert_string_equal(da, db);
	LIM(&r, "--db", "a.db", "verify");
	EXPECT_OUT(&r, "ok\n");
	LIM(&r, "--db", "b.db", "verify");
	EXPECT_OUT(&r, "ok\n");

	LIM(&r, "--db", "b.db", "import", "missing.pack");
	EXPECT(&r, 1);
	run_dispose(&r);
	run_dispose(&rb);
}

static void test_cli__export_since(void **state)
{
	struct io full = { NULL, "full.pack", NULL }, delta = { NULL, "delta.pack", NULL };
	struct io vv_b = { NULL, "b.vv", NULL }, none = { NULL, "none.pack", NULL };
	struct io vv_a = { NULL, "a.vv", NULL };
	struct run r = { 0 };
	char da[65], db[65];

	(void)state;
	init_store("a.db", NETKEY);
	init_store("b.db", NETKEY);
	WRITE(&r, "a.db", "put", "users", "alice", "{\"name\":\"Alice\"}");
	WRITE(&r, "a.db", "put", "users", "bob", "{\"name\":\"Bob\"}");
	LIM_IO(&r, &full, "--db", "a.db", "export");
	EXPECT(&r, 0);
	LIM(&r, "--db", "b.db", "import", "full.pack");
	EXPECT_OUT(&r, "imported 2 changes (0 already present)\n");

	WRITE(&r, "a.db", "put", "users", "carol", "{\"name\":\"Carol\"}");
	WRITE(&r, "a.db", "incr", "users", "carol", "logins", "1");
	WRITE(&r, "b.db", "put", "users", "dave", "{\"name\":\"Dave\"}");

	LIM_IO(&r, &vv_b, "--db", "b.db", "vv");
	EXPECT(&r, 0);
	assert_int_equal(count_lines(r.out), 2);
	LIM_IO(&r, &full, "--db", "a.db", "export");
	EXPECT(&r, 0);
	LIM_IO(&r, &delta, "--db", "a.db", "export", "--since", "b.vv");
	EXPECT(&r, 0);
	{
		struct run f = { 0 };
		LIM_IO(&f, &full, "--db", "a.db", "export");
		assert_true(r.out_len < f.out_len);
		run_dispose(&f);
	}
	LIM(&r, "--db", "b.db", "import", "delta.pack");
	EXPECT_OUT(&r, "imported 2 changes (0 already present)\n");

	/* b now has everything a has: a's export since b's vv is empty of changes. */
	LIM_IO(&r, &vv_b, "--db", "b.db", "vv");
	EXPECT(&r, 0);
	LIM_IO(&r, &none, "--db", "a.db", "export", "--since", "b.vv");
	EXPECT(&r, 0);
	LIM(&r, "--db", "b.db", "import", "none.pack");
	EXPECT_OUT(&r, "imported 0 changes (0 already present)\n");

	LIM(&r, "--db", "a.db", "export", "--since", "missing.vv");
	EXPECT(&r, 1);
	spit("bad.vv", "this is not a version vector\n", 29);
	LIM(&r, "--db", "a.db", "export", "--since", "bad.vv");
	EXPECT(&r, 3);

	LIM_IO(&r, &vv_a, "--db", "a.db", "vv");
	EXPECT(&r, 0);
	LIM(&r, "--db", "b.db", "export", "--since", "a.vv");
	EXPECT(&r, 0);
	spit("dave.pack", r.out, r.out_len);
	LIM(&r, "--db", "a.db", "import", "dave.pack");
	EXPECT_OUT(&r, "imported 1 changes (0 already present)\n");
	digest_of("a.db", da);
	digest_of("b.db", db);
	assert_string_equal(da, db);
	run_dispose(&r);
}

/*
 * Both stores hold both authors; each then writes one more change. Each
 * side's export since the other's vv must hold exactly its one new change,
 * whatever the order of the two author ids: in one direction the author
 * with news sorts first and the other author (fully covered by the vv)
 * second, in the other the reverse.
 */
static void test_cli__export_since_both_ways(void **state)
{
	struct io a_vv = { NULL, "a.vv", NULL }, b_vv = { NULL, "b.vv", NULL };
	struct io a_pack = { NULL, "a.pack", NULL }, b_pack = { NULL, "b.pack", NULL };
	struct run r = { 0 };
	char da[65], db[65];

	(void)state;
	init_store("a.db", NETKEY);
	init_store("b.db", NETKEY);
	WRITE(&r, "a.db", "put", "users", "alice", "{\"v\":1}");
	WRITE(&r, "b.db", "put", "users", "bob", "{\"v\":1}");
	LIM_IO(&r, &a_pack, "--db", "a.db", "export");
	EXPECT(&r, 0);
	LIM_IO(&r, &b_pack, "--db", "b.db", "export");
	EXPECT(&r, 0);
	LIM(&r, "--db", "a.db", "import", "b.pack");
	EXPECT_OUT(&r, "imported 1 changes (0 already present)\n");
	LIM(&r, "--db", "b.db", "import", "a.pack");
	EXPECT_OUT(&r, "imported 1 changes (0 already present)\n");

	WRITE(&r, "a.db", "put", "users", "alice", "{\"v\":2}");
	WRITE(&r, "b.db", "put", "users", "bob", "{\"v\":2}");
	LIM_IO(&r, &a_vv, "--db", "a.db", "vv");
	EXPECT(&r, 0);
	LIM_IO(&r, &b_vv, "--db", "b.db", "vv");
	EXPECT(&r, 0);
	LIM_IO(&r, &a_pack, "--db", "a.db", "export", "--since", "b.vv");
	EXPECT(&r, 0);
	LIM_IO(&r, &b_pack, "--db", "b.db", "export", "--since", "a.vv");
	EXPECT(&r, 0);
	LIM(&r, "--db", "b.db", "import", "a.pack");
	EXPECT_OUT(&r, "imported 1 changes (0 already present)\n");
	LIM(&r, "--db", "a.db", "import", "b.pack");
	EXPECT_OUT(&r, "imported 1 changes (0 already present)\n");
	digest_of("a.db", da);
	digest_of("b.db", db);
	assert_string_equal(da, db);
	run_dispose(&r);
}

static void test_cli__corrupt_pack(void **state)
{
	struct io to_pack = { NULL, "a.pack", NULL };
	struct run r = { 0 }, log_before = { 0 };
	char before[65], after[65];
	size_t len;
	char *pack;

	(void)state;
	init_store("a.db", NETKEY);
	init_store("b.db", NETKEY);
	WRITE(&r, "a.db", "put", "users", "alice", "{\"name\":\"Alice\",\"addr\":{\"city\":\"Oslo\"}}");
	WRITE(&r, "a.db", "incr", "stats", "home", "visits", "2");
	WRITE(&r, "a.db", "sadd", "users", "alice", "tags", "\"admin\"");
	WRITE(&r, "b.db", "put", "users", "bob", "{\"name\":\"Bob\"}");
	LIM_IO(&r, &to_pack, "--db", "a.db", "export");
	EXPECT(&r, 0);
	pack = slurp("a.pack", &len);
	assert_true(len > 16);

	digest_of("b.db", before);
	LIM(&log_before, "--db", "b.db", "log");
	EXPECT(&log_before, 0);

	/* Flip one bit at several places: every one must be refused whole. */
	for (int k = 1; k <= 7; k++) {
		size_t at = len * (size_t)k / 8;
		char *bad = malloc(len);

		assert_non_null(bad);
		memcpy(bad, pack, len);
		bad[at] ^= 0x01;
		spit("bad.pack", bad, len);
		free(bad);
		LIM(&r, "--db", "b.db", "import", "bad.pack");
		if (r.status != 3)
			print_error("flipping byte %zu of %zu ('%c')\n", at, len, pack[at]);
		EXPECT(&r, 3);
		EXPECT_ERR_HAS(&r, "lim: import: ");
		digest_of("b.db", after);
		assert_string_equal(before, after);
		LIM(&r, "--db", "b.db", "log");
		EXPECT_OUT(&r, log_before.out);
	}

	/* A truncated pack (the last change cut in half) is refused too. */
	spit("cut.pack", pack, len - len / 6);
	LIM(&r, "--db", "b.db", "import", "cut.pack");
	EXPECT(&r, 3);
	digest_of("b.db", after);
	assert_string_equal(before, after);

	/* And the intact pack still imports. */
	LIM(&r, "--db", "b.db", "import", "a.pack");
	EXPECT_OUT(&r, "imported 3 changes (0 already present)\n");
	LIM(&r, "--db", "b.db", "verify");
	EXPECT_OUT(&r, "ok\n");
	free(pack);
	run_dispose(&r);
	run_dispose(&log_before);
}

/* ------------------------------------------------------------------ main */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_cli__version_and_help, case_setup),
		cmocka_unit_test_setup(test_cli__usage_errors, case_setup),
		cmocka_unit_test_setup(test_cli__init_twice, case_setup),
		cmocka_unit_test_setup(test_cli__init_network_key, case_setup),
		cmocka_unit_test_setup(test_cli__missing_store, case_setup),
		cmocka_unit_test_setup(test_cli__not_a_store, case_setup),
		cmocka_unit_test_setup(test_cli__empty_file, case_setup),
		cmocka_unit_test_setup(test_cli__lim_db_env, case_setup),
		cmocka_unit_test_setup(test_cli__put_get, case_setup),
		cmocka_unit_test_setup(test_cli__del, case_setup),
		cmocka_unit_test_setup(test_cli__incr, case_setup),
		cmocka_unit_test_setup(test_cli__sets, case_setup),
		cmocka_unit_test_setup(test_cli__ls, case_setup),
		cmocka_unit_test_setup(test_cli__log, case_setup),
		cmocka_unit_test_setup(test_cli__digest_verify_vv, case_setup),
		cmocka_unit_test_setup(test_cli__export_import, case_setup),
		cmocka_unit_test_setup(test_cli__export_since, case_setup),
		cmocka_unit_test_setup(test_cli__export_since_both_ways, case_setup),
		cmocka_unit_test_setup(test_cli__corrupt_pack, case_setup),
	};
	char cwd[PATH_MAX];
	int failed;

	g_bin = getenv("LIM_BIN");
	if (!g_bin || !*g_bin || access(g_bin, X_OK) != 0) {
		fprintf(stderr, "test_cli: LIM_BIN must name the built lim executable (got %s)\n",
		        g_bin && *g_bin ? g_bin : "nothing");
		return 1;
	}
	if (g_bin[0] != '/') { /* tests chdir; keep the binary reachable */
		static char abs_bin[PATH_MAX * 2];
		if (!getcwd(cwd, sizeof cwd))
			return 1;
		snprintf(abs_bin, sizeof abs_bin, "%s/%s", cwd, g_bin);
		g_bin = abs_bin;
	}
	snprintf(g_root, sizeof g_root, "/tmp/lim-test-cli-XXXXXX");
	if (!mkdtemp(g_root)) {
		perror("test_cli: mkdtemp");
		return 1;
	}
	failed = cmocka_run_group_tests_name("cli", tests, NULL, NULL);
	if (chdir("/") == 0 && failed == 0)
		nftw(g_root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	else
		fprintf(stderr, "test_cli: files kept in %s\n", g_root);
	return failed ? 1 : 0;
}
