/*
 * cli.h — shared declarations of the `lim` command.
 *
 * The command is a thin shell over the public API in lim.h: main.c parses
 * the global options and dispatches to one handler per command; the
 * handlers live in cmd_*.c; output.c formats errors and hex; value.c turns
 * a JSON scalar from the command line into a lim_value; io.c reads whole
 * files and drives the pack callbacks. Nothing here includes SQLite or
 * libsodium: the CLI may only use lim.h.
 *
 * Every handler returns a process exit status (CLI_EXIT_*), never a LIM_E*
 * code; cli_fail_lim() does that mapping in one place.
 */
#ifndef LIM_CLI_H
#define LIM_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "lim.h"

/* Exit statuses: stable, documented in `lim --help`. */
enum {
	CLI_EXIT_OK = 0,
	CLI_EXIT_NOTFOUND = 1, /* no such store, document or field */
	CLI_EXIT_USAGE = 2,    /* bad command line */
	CLI_EXIT_INVALID = 3,  /* invalid input: JSON, limits, a bad pack */
	CLI_EXIT_FAILURE = 4   /* anything else (I/O, not a store, exists...) */
};

/* Options a command may accept after its name (a bit set). */
enum {
	CLI_OPT_PREFIX = 1 << 0,  /* --prefix P */
	CLI_OPT_LIMIT = 1 << 1,   /* --limit N */
	CLI_OPT_SINCE = 1 << 2,   /* --since FILE */
	CLI_OPT_NETKEY = 1 << 3,  /* --network-key HEX */
	CLI_OPT_RAW = 1 << 4,     /* --raw (a flag) */
	CLI_OPT_LISTEN = 1 << 5,  /* --listen HOST:PORT */
	CLI_OPT_PEER = 1 << 6,    /* --peer HOST:PORT, repeatable */
	CLI_OPT_ALLOW = 1 << 7,   /* --allow PEER_ID, repeatable */
	CLI_OPT_NODE = 1 << 8,    /* --node HOST:PORT */
	CLI_OPT_TIMEOUT = 1 << 9, /* --timeout SECONDS */
	CLI_OPT_IDLE = 1 << 10,   /* --idle-timeout MS */
	CLI_OPT_MAXCONN = 1 << 11 /* --max-connections N */
};

/* A lim_value parsed from the command line (value.c). */
struct cli_value {
	lim_value v;
	char *mem; /* owns v.str when not NULL */
};

/* One parsed invocation. */
struct cli {
	const char *db_path;     /* --db or $LIM_DB */
	lim_db *db;              /* the open store (commands with needs_db) */
	const char *name;        /* command name, for messages */
	char **args;             /* positional arguments after the name */
	int nargs;
	const char *prefix;      /* --prefix, or NULL */
	const char *since;       /* --since, or NULL */
	const char *network_key; /* --network-key, or NULL */
	size_t limit;            /* --limit; 0 means no limit */
	int raw;                 /* --raw */
	const char *listen;      /* --listen */
	const char *node;        /* --node */
	const char **peers;      /* --peer, each */
	size_t npeers;
	const char **allow;      /* --allow, each */
	size_t nallow;
	size_t timeout_s;        /* --timeout; 0 means the command's default */
	size_t idle_ms;          /* --idle-timeout; 0 means the default */
	size_t max_connections;  /* --max-connections; 0 means the default */
	int64_t delta;           /* incr's N, set by its check */
	struct cli_value value;  /* sadd/srem's JSON_VALUE, set by their check */
};

typedef int (*cli_handler)(struct cli *c);

struct cli_command {
	const char *name;
	cli_handler run;
	int min_args, max_args;
	unsigned opts;           /* CLI_OPT_* accepted */
	int needs_db;            /* open the store before calling run */
	cli_handler check;       /* validate arguments before opening, or NULL */
	const char *usage;       /* "COLL DOC [FIELD]" */
	const char *summary;     /* one line for `lim --help` */
	const char *help;        /* longer text for `lim help CMD`, or NULL */
};

/* main.c */
extern const struct cli_command cli_commands[];
const struct cli_command *cli_find_command(const char *name);

/* help.c */
void cli_print_usage(FILE *f);
void cli_print_command_help(FILE *f, const struct cli_command *cmd);

/* output.c — every error is one line on stderr: "lim: CMD: message". */
int cli_fail(const struct cli *c, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Report the library's last error for `rc` and return its exit status. */
int cli_fail_lim(const struct cli *c, int rc);
int cli_usage_error(const struct cli *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
int cli_exit_status(int rc);
void cli_hex(char *out, const unsigned char *bytes, size_t len);
int cli_unhex(unsigned char *out, size_t len, const char *hex);
/* Flush stdout; a write error becomes a failure. */
int cli_finish(const struct cli *c, int status);

/* store.c — open the store named by c->db_path (create = 0); on failure
 * the error is reported and the exit status returned. */
int cli_open(const struct cli *c, lim_db **out);

/* number.c — strict decimal parsing; 0 on success, -1 on garbage/overflow. */
int cli_parse_int64(const char *s, int64_t *out);
int cli_parse_size(const char *s, size_t *out);

/* value.c — a JSON scalar or {"$base64": "..."} to a lim_value. */
/* 0 on success; else -1 with a message in err. */
int cli_value_parse(struct cli_value *out, const char *text, char *err, size_t errlen);
void cli_value_dispose(struct cli_value *v);

/* io.c */
/* Read a whole file ("-" is stdin), at most `max` bytes. 0 or -1 (errno set,
 * EFBIG when larger than max). *out is NUL-terminated; free() it. */
int cli_read_file(const char *path, size_t max, char **out, size_t *len);
int cli_write_stdout(void *ctx, const char *bytes, size_t len);
long cli_read_stream(void *ctx, char *buf, size_t cap);

/* commands */
int cli_cmd_serve(struct cli *c);
int cli_cmd_sync(struct cli *c);
int cli_cmd_status(struct cli *c);
int cli_cmd_init(struct cli *c);
int cli_cmd_id(struct cli *c);
int cli_cmd_put(struct cli *c);
int cli_cmd_get(struct cli *c);
int cli_cmd_del(struct cli *c);
int cli_cmd_incr(struct cli *c);
int cli_check_incr(struct cli *c);
int cli_check_value(struct cli *c);
int cli_cmd_sadd(struct cli *c);
int cli_cmd_srem(struct cli *c);
int cli_cmd_ls(struct cli *c);
int cli_cmd_log(struct cli *c);
int cli_cmd_digest(struct cli *c);
int cli_cmd_verify(struct cli *c);
int cli_cmd_export(struct cli *c);
int cli_cmd_import(struct cli *c);
int cli_cmd_vv(struct cli *c);
int cli_cmd_help(struct cli *c);

#endif
