/*
 * main.c — the `lim` command: global options, the command table, argument
 * checking and dispatch.
 *
 *   lim [--db FILE] COMMAND [ARGS...] [OPTIONS]
 *
 * Global options come before the command. A command's own options
 * (--prefix, --limit, --since, --network-key, --raw, --help) may appear
 * anywhere after its name; "--" ends option parsing so that a key or value
 * that starts with "--" can still be given. Only arguments starting with "--"
 * (and "-h") are options: "-" (stdin) and negative numbers are positional.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

const struct cli_command cli_commands[] = {
	{ "init", cli_cmd_init, 0, 0, CLI_OPT_NETKEY, 0, NULL, "[--network-key HEX]",
	  "create a store; print replica id and network key",
	  "Creates a new store at FILE with a fresh Ed25519 identity. Nodes that\n"
	  "replicate with each other must share a network key: give the key of an\n"
	  "existing store (64 hex characters, as printed by `lim id`) with\n"
	  "--network-key, or leave it out to generate a random one. Fails if FILE\n"
	  "is already a store.\n" },
	{ "id", cli_cmd_id, 0, 0, 0, 1, NULL, "",
	  "print replica id and network key",
	  "Prints two lines: `replica_id HEX` and `network_key HEX`.\n" },
	{ "put", cli_cmd_put, 3, 3, 0, 1, NULL, "COLL DOC JSON_OBJECT",
	  "merge a JSON object into a document",
	  "Each leaf of JSON_OBJECT becomes a field of the document (nested\n"
	  "objects give dotted paths such as addr.city); other fields are kept.\n"
	  "JSON_OBJECT may be - to read it from standard input.\n"
	  "Example: lim put users alice '{\"name\":\"Alice\",\"addr\":{\"city\":\"Oslo\"}}'\n" },
	{ "get", cli_cmd_get, 2, 3, 0, 1, NULL, "COLL DOC [FIELD]",
	  "print the document (or one field) as JSON",
	  "FIELD is a dotted path such as addr.city. Bytes print as\n"
	  "{\"$base64\": \"...\"}, counters as numbers, sets as arrays.\n"
	  "Exits 1 if the document or field does not exist.\n" },
	{ "del", cli_cmd_del, 2, 3, 0, 1, NULL, "COLL DOC [FIELD]",
	  "delete a document or one field",
	  "Without FIELD the whole document is deleted; a later write brings it\n"
	  "back with only the fields written after the delete.\n" },
	{ "incr", cli_cmd_incr, 4, 4, 0, 1, cli_check_incr, "COLL DOC FIELD N",
	  "add N (a signed integer) to a counter field",
	  "Counters merge by summing every replica's increments. N may be\n"
	  "negative: lim incr stats home visits -1\n" },
	{ "sadd", cli_cmd_sadd, 4, 4, 0, 1, cli_check_value, "COLL DOC FIELD JSON_VALUE",
	  "add an element to a set field",
	  "JSON_VALUE is a JSON scalar: null, true, false, a number, a string in\n"
	  "double quotes (quote it for the shell: '\"red\"'), or {\"$base64\":\"...\"}\n"
	  "for bytes. Sets are add-wins: a concurrent add and remove keep the element.\n" },
	{ "srem", cli_cmd_srem, 4, 4, 0, 1, cli_check_value, "COLL DOC FIELD JSON_VALUE",
	  "remove an element from a set field",
	  "JSON_VALUE is written as for sadd.\n" },
	{ "ls", cli_cmd_ls, 1, 1, CLI_OPT_PREFIX | CLI_OPT_LIMIT, 1, NULL,
	  "COLL [--prefix P] [--limit N]",
	  "list document keys in key order",
	  "Prints one key per line. --prefix keeps keys starting with P;\n"
	  "--limit stops after N keys (0: no limit).\n" },
	{ "log", cli_cmd_log, 0, 0, CLI_OPT_LIMIT | CLI_OPT_RAW, 1, NULL, "[--limit N] [--raw]",
	  "the change log, newest last",
	  "One line per change in local arrival order:\n"
	  "  AUTHOR SEQ HLC OPS\n"
	  "AUTHOR is the first 16 hex characters of the author's replica id, HLC\n"
	  "is milliseconds since the epoch '.' a logical counter, OPS the change's\n"
	  "operations (S set, D delete field, X delete document, N counter add,\n"
	  "A set add, R set remove) as encoded. --limit N shows the newest N\n"
	  "(0: all); --raw prints each change's whole canonical encoding, signature\n"
	  "included, instead of OPS.\n" },
	{ "digest", cli_cmd_digest, 0, 0, 0, 1, NULL, "",
	  "print the state digest (hex)",
	  "Two stores that hold the same set of changes print the same digest.\n" },
	{ "verify", cli_cmd_verify, 0, 0, 0, 1, NULL, "",
	  "check every hash, signature, chain link, the state",
	  "Prints ok, or the first problem found (exit 4 for a corrupt store).\n" },
	{ "export", cli_cmd_export, 0, 0, CLI_OPT_SINCE, 1, NULL, "[--since FILE] > PACK",
	  "write changes as a pack to standard output",
	  "Without --since every change is exported. With --since FILE, where FILE\n"
	  "holds another store's version vector (the output of `lim vv` there),\n"
	  "only the changes that store lacks are exported.\n" },
	{ "import", cli_cmd_import, 1, 1, 0, 1, NULL, "PACK",
	  "apply a pack file (- for standard input)",
	  "The import is all-or-nothing: if any change is malformed, has a bad\n"
	  "hash or signature, breaks or forks its author's chain, has a gap, or\n"
	  "is stamped beyond the clock drift bound, nothing is applied and lim\n"
	  "exits 3. Signatures are checked as a sync checks them: within a run of\n"
	  "one author's consecutive changes, the last one's covers the others.\n"
	  "Changes already held are counted and ignored.\n" },
	{ "vv", cli_cmd_vv, 0, 0, 0, 1, NULL, "",
	  "print the version vector (for export --since)",
	  "One line per author: AUTHOR_HEX HIGHEST_CONTIGUOUS_SEQ.\n" },
	{ "serve", cli_cmd_serve, 0, 0, CLI_OPT_LISTEN | CLI_OPT_PEER | CLI_OPT_ALLOW | CLI_OPT_IDLE | CLI_OPT_MAXCONN, 1, NULL,
	  "--listen HOST:PORT [--peer HOST:PORT]... [--allow PEER_ID]... [--idle-timeout MS] [--max-connections N]",
	  "run a sync node until SIGINT/SIGTERM",
	  "Listens on HOST:PORT (port 0 picks a free port; the address is printed on\n"
	  "stdout as \"listening on HOST:PORT\"), keeps a connection to every --peer\n"
	  "(reconnecting with backoff), and pushes every change to every connected\n"
	  "peer, relaying changes between peers. With --allow, only the listed\n"
	  "replica ids may take part. One line per connection event and applied batch\n"
	  "goes to stderr. While it runs, FILE.node holds its address for `lim status`.\n"
	  "--idle-timeout closes a connection that sends no complete line for MS\n"
	  "milliseconds (default 30000); --max-connections caps connections (default 64)." },
	{ "sync", cli_cmd_sync, 1, 1, CLI_OPT_TIMEOUT, 1, NULL, "HOST:PORT [--timeout SECONDS]",
	  "connect once and exchange until both sides hold the same changes",
	  "Exits 0 when both sides hold the same changes (default timeout 60 s)." },
	{ "status", cli_cmd_status, 0, 0, CLI_OPT_NODE | CLI_OPT_TIMEOUT, 1, NULL, "[--node HOST:PORT]",
	  "what a running node knows of its peers (JSON)",
	  "Asks the node at HOST:PORT (default: the `lim serve` running on this\n"
	  "store, from FILE.node) for its peer table: address, id, connected,\n"
	  "direction, changes and bytes in and out, how far behind, last error." },
	{ "help", cli_cmd_help, 0, 1, 0, 0, NULL, "[COMMAND]",
	  "show this help, or a command's help", NULL },
	{ NULL, NULL, 0, 0, 0, 0, NULL, NULL, NULL, NULL }
};

const struct cli_command *cli_find_command(const char *name)
{
	for (const struct cli_command *cmd = cli_commands; cmd->name; cmd++)
		if (strcmp(cmd->name, name) == 0)
			return cmd;
	return NULL;
}

/* Match "--name VALUE" or "--name=VALUE"; advances *i past the value.
 * Returns 1 on a match, 0 if `argv[*i]` is another option, -1 if the value
 * is missing. */
static int take_option(const char *name, int argc, char **argv, int *i, const char **value)
{
	const char *a = argv[*i];
	size_t n = strlen(name);

	if (strncmp(a, name, n) != 0)
		return 0;
	if (a[n] == '=') {
		*value = a + n + 1;
		return 1;
	}
	if (a[n] != '\0')
		return 0;
	if (*i + 1 >= argc)
		return -1;
	*value = argv[++*i];
	return 1;
}

static const struct {
	const char *name;
	unsigned bit;
} option_names[] = {
	{ "--prefix", CLI_OPT_PREFIX },
	{ "--limit", CLI_OPT_LIMIT },
	{ "--since", CLI_OPT_SINCE },
	{ "--network-key", CLI_OPT_NETKEY },
	{ "--listen", CLI_OPT_LISTEN },
	{ "--peer", CLI_OPT_PEER },
	{ "--allow", CLI_OPT_ALLOW },
	{ "--node", CLI_OPT_NODE },
	{ "--timeout", CLI_OPT_TIMEOUT },
	{ "--idle-timeout", CLI_OPT_IDLE },
	{ "--max-connections", CLI_OPT_MAXCONN },
};

/* Parse the arguments after the command name into c. Returns -1 to go on,
 * or an exit status. c->args has room for every argument. */
static int parse_command_args(struct cli *c, const struct cli_command *cmd,
                              int argc, char **argv, int i)
{
	int options_done = 0;

	for (; i < argc; i++) {
		const char *a = argv[i], *value = NULL;
		int matched = 0;

		if (options_done || strncmp(a, "--", 2) != 0) {
			if (!options_done && strcmp(a, "-h") == 0)
				goto help;
			c->args[c->nargs++] = argv[i];
			continue;
		}
		if (strcmp(a, "--") == 0) {
			options_done = 1;
			continue;
		}
		if (strcmp(a, "--help") == 0)
			goto help;
		if (strcmp(a, "--raw") == 0) {
			if (!(cmd->opts & CLI_OPT_RAW))
				return cli_usage_error(c, "%s does not take --raw", cmd->name);
			c->raw = 1;
			continue;
		}
		for (size_t k = 0; k < sizeof option_names / sizeof option_names[0]; k++) {
			int r = take_option(option_names[k].name, argc, argv, &i, &value);
			if (r == 0)
				continue;
			if (!(cmd->opts & option_names[k].bit))
				return cli_usage_error(c, "%s does not take %s", cmd->name,
				                       option_names[k].name);
			if (r < 0)
				return cli_usage_error(c, "%s needs a value", option_names[k].name);
			switch (option_names[k].bit) {
			case CLI_OPT_PREFIX: c->prefix = value; break;
			case CLI_OPT_SINCE: c->since = value; break;
			case CLI_OPT_NETKEY: c->network_key = value; break;
			case CLI_OPT_LISTEN: c->listen = value; break;
			case CLI_OPT_NODE: c->node = value; break;
			case CLI_OPT_PEER: c->peers[c->npeers++] = value; break;
			case CLI_OPT_ALLOW: c->allow[c->nallow++] = value; break;
			case CLI_OPT_IDLE:
				if (cli_parse_size(value, &c->idle_ms) != 0 || c->idle_ms < 100 || c->idle_ms > 86400000)
					return cli_usage_error(c, "--idle-timeout wants milliseconds from 100 to 86400000, not '%s'", value);
				break;
			case CLI_OPT_MAXCONN:
				if (cli_parse_size(value, &c->max_connections) != 0 || c->max_connections < 1 ||
				    c->max_connections > 100000)
					return cli_usage_error(c, "--max-connections wants 1 to 100000, not '%s'", value);
				break;
			case CLI_OPT_TIMEOUT:
				if (cli_parse_size(value, &c->timeout_s) != 0 || c->timeout_s == 0)
					return cli_usage_error(c, "--timeout wants a positive number of seconds, not '%s'",
					                       value);
				break;
			case CLI_OPT_LIMIT:
				if (cli_parse_size(value, &c->limit) != 0)
					return cli_usage_error(c, "--limit wants a non-negative integer, not '%s'",
					                       value);
				break;
			}
			matched = 1;
			break;
		}
		if (!matched)
			return cli_usage_error(c, "unknown option %s", a);
	}
	if (c->nargs < cmd->min_args || c->nargs > cmd->max_args)
		return cli_usage_error(c, "%s arguments; usage: lim %s%s%s",
		                       c->nargs < cmd->min_args ? "missing" : "too many",
		                       cmd->name, *cmd->usage ? " " : "", cmd->usage);
	return -1;
help:
	cli_print_command_help(stdout, cmd);
	return cli_finish(c, CLI_EXIT_OK);
}

int main(int argc, char **argv)
{
	struct cli c;
	const struct cli_command *cmd;
	const char *env = getenv("LIM_DB");
	int i, status;

	memset(&c, 0, sizeof c);
	if (env && *env)
		c.db_path = env;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *value = NULL;
		int r;

		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			cli_print_usage(stdout);
			return cli_finish(&c, CLI_EXIT_OK);
		}
		if (strcmp(a, "--version") == 0 || strcmp(a, "-V") == 0) {
			printf("lim %s (liblim %s)\n", LIM_VERSION, lim_version());
			return cli_finish(&c, CLI_EXIT_OK);
		}
		r = take_option("--db", argc, argv, &i, &value);
		if (r < 0)
			return cli_usage_error(&c, "--db needs a FILE");
		if (r > 0) {
			if (!*value)
				return cli_usage_error(&c, "--db needs a non-empty FILE");
			c.db_path = value;
			continue;
		}
		if (a[0] == '-')
			return cli_usage_error(&c, "unknown option %s", a);
		break;
	}
	if (i >= argc)
		return cli_usage_error(&c, "no command given");

	c.name = argv[i];
	cmd = cli_find_command(argv[i]);
	if (!cmd)
		return cli_usage_error(&c, "unknown command");

	c.args = calloc((size_t)argc, sizeof *c.args);
	c.peers = calloc((size_t)argc, sizeof *c.peers);
	c.allow = calloc((size_t)argc, sizeof *c.allow);
	if (!c.args || !c.peers || !c.allow)
		return cli_fail(&c, CLI_EXIT_FAILURE, "out of memory");
	status = parse_command_args(&c, cmd, argc, argv, i + 1);
	if (status >= 0)
		goto out;

	if (cmd->run != cli_cmd_help && !c.db_path) {
		status = cli_usage_error(&c, "no store given: use --db FILE or set LIM_DB");
		goto out;
	}
	if (cmd->check && (status = cmd->check(&c)) != CLI_EXIT_OK)
		goto out;
	if (cmd->needs_db) {
		status = cli_open(&c, &c.db);
		if (status != CLI_EXIT_OK)
			goto out;
	}
	status = cli_finish(&c, cmd->run(&c));
out:
	lim_db_free(c.db);
	cli_value_dispose(&c.value);
	free(c.args);
	free(c.peers);
	free(c.allow);
	return status;
}
