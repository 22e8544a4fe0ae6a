/*
 * serve, sync and status: the sync node from the shell. serve blocks the
 * termination signals before starting the node, so the node's thread
 * inherits the mask and the main thread alone receives them in sigwait().
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

static void log_line(void *ctx, const char *line)
{
	struct timeval tv;
	struct tm tm;
	char stamp[32];
	(void)ctx;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
	fprintf(stderr, "%s.%03dZ lim serve: %s\n", stamp, (int)(tv.tv_usec / 1000), line);
}

/* FILE.node: where `lim status` finds the node serving FILE. */
static char *node_file(const char *db_path)
{
	size_t n = strlen(db_path) + 6;
	char *p = malloc(n);
	if (p)
		snprintf(p, n, "%s.node", db_path);
	return p;
}

int cli_cmd_serve(struct cli *c)
{
	lim_node_options opts;
	lim_node *node = NULL;
	lim_buf addr = LIM_BUF_INIT;
	sigset_t set;
	int rc, sig = 0;
	char *nf;

	if (!c->listen && c->npeers == 0)
		return cli_usage_error(c, "serve needs --listen HOST:PORT or at least one --peer");
	lim_node_options_init(&opts, LIM_NODE_OPTIONS_VERSION);
	opts.listen = c->listen;
	opts.peers = c->peers;
	opts.npeers = c->npeers;
	opts.allow = c->nallow ? c->allow : NULL;
	opts.nallow = c->nallow;
	opts.log = log_line;
	if (c->idle_ms) {
		opts.idle_timeout_ms = (int)c->idle_ms;
		if (opts.keepalive_ms >= opts.idle_timeout_ms)
			opts.keepalive_ms = opts.idle_timeout_ms / 3; /* peers must hear from us in time */
	}
	if (c->max_connections)
		opts.max_connections = (int)c->max_connections;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	if ((rc = lim_node_start(&node, c->db, &opts)) != 0)
		return cli_fail_lim(c, rc);
	nf = node_file(c->db_path);
	if (c->listen && lim_node_address(&addr, node) == 0) {
		FILE *f = nf ? fopen(nf, "w") : NULL;
		if (f) {
			fprintf(f, "%s\n", addr.ptr);
			fclose(f);
		}
		printf("listening on %s\n", addr.ptr);
		fflush(stdout);
	}
	while (sigwait(&set, &sig) != 0)
		;
	log_line(NULL, sig == SIGTERM ? "SIGTERM: shutting down" : "SIGINT: shutting down");
	lim_node_free(node);
	if (nf && addr.ptr)
		unlink(nf);
	free(nf);
	lim_buf_dispose(&addr);
	log_line(NULL, "stopped");
	return cli_finish(c, CLI_EXIT_OK);
}

int cli_cmd_sync(struct cli *c)
{
	lim_sync_stats st = { 0, 0 };
	int timeout_ms = (int)(c->timeout_s ? c->timeout_s : 60) * 1000;
	int rc = lim_sync_once(c->db, c->args[0], timeout_ms, &st);
	if (rc != 0)
		return cli_fail_lim(c, rc);
	printf("synced with %s: received %llu changes, sent %llu\n", c->args[0],
	       (unsigned long long)st.changes_in, (unsigned long long)st.changes_out);
	return cli_finish(c, CLI_EXIT_OK);
}

int cli_cmd_status(struct cli *c)
{
	lim_buf out = LIM_BUF_INIT;
	char addr[256] = "";
	const char *target = c->node;
	int timeout_ms = (int)(c->timeout_s ? c->timeout_s : 10) * 1000, rc;

	if (!target) {
		char *nf = node_file(c->db_path);
		FILE *f = nf ? fopen(nf, "r") : NULL;
		if (f && fgets(addr, sizeof addr, f))
			addr[strcspn(addr, "\r\n")] = '\0';
		if (f)
			fclose(f);
		free(nf);
		if (!addr[0])
			return cli_fail(c, CLI_EXIT_NOTFOUND, "no `lim serve` is running on %s (give --node HOST:PORT)",
			                c->db_path);
		target = addr;
	}
	if ((rc = lim_remote_status(&out, c->db, target, timeout_ms)) != 0)
		return cli_fail_lim(c, rc);
	printf("%s\n", out.ptr);
	lim_buf_dispose(&out);
	return cli_finish(c, CLI_EXIT_OK);
}
