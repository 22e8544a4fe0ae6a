/*
 * help.c — `lim --help`, `lim help COMMAND` and `lim COMMAND --help`,
 * generated from the command table in main.c so they cannot drift apart.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

void cli_print_usage(FILE *f)
{
	fprintf(f,
	        "usage: lim [--db FILE] COMMAND [ARGS...]\n"
	        "\n"
	        "lim reads and writes a liblim store: a local-first replicated document\n"
	        "store in one SQLite file.\n"
	        "\n"
	        "commands:\n");
	for (const struct cli_command *cmd = cli_commands; cmd->name; cmd++) {
		char head[96];
		snprintf(head, sizeof head, "%s %s", cmd->name, cmd->usage);
		if (strlen(head) > 34)
			fprintf(f, "  %s\n  %-34s  %s\n", head, "", cmd->summary);
		else
			fprintf(f, "  %-34s  %s\n", head, cmd->summary);
	}
	fprintf(f,
	        "\n"
	        "options:\n"
	        "  --db FILE      the store (default: $LIM_DB); every command but init\n"
	        "                 needs it to exist already\n"
	        "  --help, -h     this help; `lim help COMMAND` or `lim COMMAND --help`\n"
	        "                 for one command\n"
	        "  --version, -V  print the version\n"
	        "  --             end of options: later arguments are taken literally\n"
	        "\n"
	        "exit status:\n"
	        "  0  success\n"
	        "  1  not found (no such store, document or field)\n"
	        "  2  usage error (bad command line)\n"
	        "  3  invalid input (bad JSON or value, a limit exceeded, a bad pack)\n"
	        "  4  other failure (not a store, already exists, I/O, corruption)\n"
	        "Errors are one line on standard error: lim: COMMAND: message\n"
	        "\n"
	        "example:\n"
	        "  lim --db a.db init\n"
	        "  lim --db a.db put users alice '{\"name\":\"Alice\",\"addr\":{\"city\":\"Oslo\"}}'\n"
	        "  lim --db a.db get users alice addr.city\n"
	        "  lim --db b.db vv > b.vv && lim --db a.db export --since b.vv > a.pack\n"
	        "  lim --db b.db import a.pack\n");
}

void cli_print_command_help(FILE *f, const struct cli_command *cmd)
{
	fprintf(f, "usage: lim%s %s%s%s\n\n%s\n", cmd->run == cli_cmd_help ? "" : " [--db FILE]",
	        cmd->name, *cmd->usage ? " " : "", cmd->usage, cmd->summary);
	if (cmd->help)
		fprintf(f, "\n%s", cmd->help);
}

/* args: [COMMAND] */
int cli_cmd_help(struct cli *c)
{
	const struct cli_command *cmd;

	if (c->nargs == 0) {
		cli_print_usage(stdout);
		return CLI_EXIT_OK;
	}
	cmd = cli_find_command(c->args[0]);
	if (!cmd)
		return cli_usage_error(c, "no command named '%.40s'", c->args[0]);
	cli_print_command_help(stdout, cmd);
	return CLI_EXIT_OK;
}
