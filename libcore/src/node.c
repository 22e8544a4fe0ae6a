/*
 * The sync node: one worker thread running a poll() loop over a listener,
 * a wake-up pipe, and one socket per connection, each driving a session
 * (session.c). Dialers keep configured peers connected, retrying with
 * exponential backoff and ±20% jitter. Local commits wake the loop through
 * the db's commit hook, and every live session then pumps what its peer
 * lacks, which is how writes (and relayed changes) are pushed.
 *
 * Locking: the loop holds node->mu while it touches connections, so status
 * requests from other threads see a consistent table; lock order is always
 * node->mu before db->mu. The commit hook only writes to the wake pipe.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "backoff.h"
#include "net.h"
#include "session.h"
#include "text.h"

#define MAX_ADDR 128
#define EVENT_QUEUE 65536
#define READ_CHUNK 65536
#define EXTERNAL_POLL_MS 50

typedef struct {
	int fd;
	lim_session *s;
	int dialer; /* index into dialers, or -1 for an inbound connection */
	int connecting;
	/* A peer whose host drops our SYNs would hold a dialer for the
	 * kernel's whole retry time (about two minutes); the idle timeout
	 * bounds a connect as it bounds a silent session. */
	int64_t connect_deadline;
	char addr[MAX_ADDR];
} conn;

typedef struct {
	char addr[MAX_ADDR];
	int conn;          /* index into conns, or -1 */
	int removed;
	int64_t next_try;
	int64_t backoff;
	char last_error[160];
	unsigned char last_id[LIM_ID_BYTES];
	int known_id;
} dialer;

struct lim_node {
	lim_db *db;
	lim_node_options opts;
	unsigned char (*allow)[LIM_ID_BYTES];
	pthread_t thread;
	pthread_mutex_t mu;
	int wake[2];
	int listen_fd;
	char listen_addr[MAX_ADDR];
	int stop;

	conn *conns;
	size_t nconns, cap_conns;
	dialer *dialers;
	size_t ndialers, cap_dialers;

	pthread_mutex_t ev_mu;
	pthread_cond_t ev_cv;
	int ev_waiters;     /* threads inside lim_node_next_event */
	int closing;        /* lim_node_free has begun: waiters leave */
	lim_node_event *events;
	size_t ev_head, ev_count;
	uint64_t ev_dropped;
	int ev_pipe[2];
};

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void node_log(lim_node *n, const char *fmt, ...) LIM_PRINTF(2, 3);
static void node_log(lim_node *n, const char *fmt, ...)
{
	char line[600];
	va_list ap;
	if (!n->opts.log)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	n->opts.log(n->opts.log_ctx, line);
}

static void session_log(void *ctx, const char *msg)
{
	lim_node *n = ctx;
	if (n->opts.log)
		n->opts.log(n->opts.log_ctx, msg);
}

static void wake(lim_node *n)
{
	char b = 1;
	ssize_t w = write(n->wake[1], &b, 1);
	LIM_UNUSED(w); /* a full pipe already means "wake up" */
}

static void on_commit(void *ctx)
{
	wake(ctx);
}

/* ------------------------------------------------------------ events */

static void push_event(void *ctx, const unsigned char author[LIM_ID_BYTES], uint64_t seq)
{
	lim_node *n = ctx;
	lim_node_event *e;
	pthread_mutex_lock(&n->ev_mu);
	if (n->ev_count == EVENT_QUEUE) {
		n->ev_head = (n->ev_head + 1) % EVENT_QUEUE;
		n->ev_count--;
		n->ev_dropped++;
	}
	e = &n->events[(n->ev_head + n->ev_count) % EVENT_QUEUE];
	lim_hex__encode(e->author, author, LIM_ID_BYTES);
	e->seq = seq;
	if (n->ev_count++ == 0) {
		char b = 1;
		ssize_t w = write(n->ev_pipe[1], &b, 1);
		LIM_UNUSED(w);
	}
	pthread_cond_broadcast(&n->ev_cv);
	pthread_mutex_unlock(&n->ev_mu);
}

int lim_node_next_event(lim_node *n, lim_node_event *out, int timeout_ms)
{
	struct timespec deadline;
	int rc = 0;
	if (!n || !out)
		return lim__error(LIM_EINVALID, "NULL argument");
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += timeout_ms / 1000;
	deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (deadline.tv_nsec >= 1000000000) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&n->ev_mu);
	n->ev_waiters++;
	while (n->ev_count == 0 && rc == 0 && !n->closing) {
		if (timeout_ms == 0)
			rc = ETIMEDOUT;
		else if (timeout_ms < 0)
			pthread_cond_wait(&n->ev_cv, &n->ev_mu);
		else
			rc = pthread_cond_timedwait(&n->ev_cv, &n->ev_mu, &deadline);
	}
	n->ev_waiters--;
	if (n->closing) {
		pthread_cond_broadcast(&n->ev_cv); /* lim_node_free waits for us to leave */
		pthread_mutex_unlock(&n->ev_mu);
		return lim__error(LIM_ECLOSED, "the node is being freed");
	}
	if (n->ev_count == 0) {
		pthread_mutex_unlock(&n->ev_mu);
		return LIM_EITEROVER;
	}
	*out = n->events[n->ev_head];
	n->ev_head = (n->ev_head + 1) % EVENT_QUEUE;
	if (--n->ev_count == 0) {
		char b;
		ssize_t r = read(n->ev_pipe[0], &b, 1);
		LIM_UNUSED(r);
	}
	pthread_mutex_unlock(&n->ev_mu);
	return 0;
}

int lim_node_event_fd(lim_node *n)
{
	return n ? n->ev_pipe[0] : -1;
}

uint64_t lim_node_events_dropped(lim_node *n)
{
	uint64_t d;
	if (!n)
		return 0;
	pthread_mutex_lock(&n->ev_mu);
	d = n->ev_dropped;
	pthread_mutex_unlock(&n->ev_mu);
	return d;
}

/* ------------------------------------------------------------ status */

static void json_kv_str(lim_sb *sb, const char *k, const char *v, int comma)
{
	if (comma)
		lim_sb__putc(sb, ',');
	lim_json__quote(sb, k, strlen(k));
	lim_sb__putc(sb, ':');
	lim_json__quote(sb, v, strlen(v));
}

static void conn_json(lim_node *n, lim_sb *sb, conn *c, const dialer *d, int first)
{
	lim_session_info info;
	char id[2 * LIM_ID_BYTES + 1] = "";
	if (!first)
		lim_sb__putc(sb, ',');
	lim_sb__putc(sb, '{');
	json_kv_str(sb, "address", c ? c->addr : d->addr, 0);
	if (c && c->s) {
		lim_session__info(c->s, &info);
		if (info.authenticated)
			lim_hex__encode(id, info.peer_id, LIM_ID_BYTES);
		json_kv_str(sb, "id", id, 1);
		lim_sb__printf(sb, ",\"connected\":%s", info.authenticated && !info.closed ? "true" : "false");
		json_kv_str(sb, "direction", c->dialer >= 0 ? "out" : "in", 1);
		lim_sb__printf(sb, ",\"changes_in\":%llu,\"changes_out\":%llu,\"bytes_in\":%llu,\"bytes_out\":%llu,\"behind\":%llu",
		               (unsigned long long)info.changes_in, (unsigned long long)info.changes_out,
		               (unsigned long long)info.bytes_in, (unsigned long long)info.bytes_out,
		               (unsigned long long)info.behind);
	} else {
		if (d->known_id)
			lim_hex__encode(id, d->last_id, LIM_ID_BYTES);
		json_kv_str(sb, "id", id, 1);
		lim_sb__puts(sb, ",\"connected\":false");
		json_kv_str(sb, "direction", "out", 1);
		lim_sb__puts(sb, ",\"changes_in\":0,\"changes_out\":0,\"bytes_in\":0,\"bytes_out\":0,\"behind\":0");
	}
	json_kv_str(sb, "last_error", d ? d->last_error : "", 1);
	lim_sb__putc(sb, '}');
	LIM_UNUSED(n);
}

/* Called with n->mu held (from the loop or from lim_node_status). */
static void status_json(void *ctx, lim_sb *sb)
{
	lim_node *n = ctx;
	char id[2 * LIM_ID_BYTES + 1];
	int first = 1;
	lim_hex__encode(id, n->db->public_key, LIM_ID_BYTES);
	lim_sb__putc(sb, '{');
	json_kv_str(sb, "id", id, 0);
	json_kv_str(sb, "listen", n->listen_addr, 1);
	lim_sb__puts(sb, ",\"peers\":[");
	for (size_t i = 0; i < n->nconns; i++) {
		conn *c = &n->conns[i];
		conn_json(n, sb, c, c->dialer >= 0 ? &n->dialers[c->dialer] : NULL, first);
		first = 0;
	}
	for (size_t i = 0; i < n->ndialers; i++) {
		if (n->dialers[i].removed || n->dialers[i].conn >= 0)
			continue;
		conn_json(n, sb, NULL, &n->dialers[i], first);
		first = 0;
	}
	lim_sb__puts(sb, "]}");
}

int lim_node_status(lim_buf *out, lim_node *n)
{
	lim_sb sb = LIM_SB_INIT;
	if (!out || !n)
		return lim__error(LIM_EINVALID, "NULL argument");
	pthread_mutex_lock(&n->mu);
	status_json(n, &sb);
	pthread_mutex_unlock(&n->mu);
	return lim_sb__to_buf(&sb, out);
}

/* ------------------------------------------------------------ connections */

static void session_config(lim_node *n, lim_session_config *cfg)
{
	lim_session_config__defaults(cfg);
	cfg->allow = (const unsigned char(*)[LIM_ID_BYTES])n->allow;
	cfg->nallow = n->opts.nallow;
	cfg->idle_timeout_ms = n->opts.idle_timeout_ms;
	cfg->keepalive_ms = n->opts.keepalive_ms;
	cfg->on_applied = push_event;
	cfg->status_json = status_json;
	cfg->log = session_log;
	cfg->ctx = n;
}

static int add_conn(lim_node *n, int fd, int dialer_idx, int connecting, const char *addr)
{
	lim_session_config cfg;
	conn *c;
	if (n->nconns == n->cap_conns) {
		size_t cap = n->cap_conns ? 2 * n->cap_conns : 16;
		conn *g = realloc(n->conns, cap * sizeof(*g));
		if (!g)
			return -1;
		n->conns = g;
		n->cap_conns = cap;
	}
	session_config(n, &cfg);
	c = &n->conns[n->nconns];
	memset(c, 0, sizeof(*c));
	c->fd = fd;
	c->dialer = dialer_idx;
	c->connecting = connecting;
	int64_t now = mono_ms();
	c->connect_deadline = now + cfg.idle_timeout_ms;
	snprintf(c->addr, sizeof(c->addr), "%s", addr);
	c->s = lim_session__new(n->db, dialer_idx >= 0, &cfg, now);
	if (!c->s)
		return -1;
	if (dialer_idx >= 0)
		n->dialers[dialer_idx].conn = (int)n->nconns;
	n->nconns++;
	return 0;
}

int64_t lim_backoff__next(int64_t prev_ms, int64_t min_ms, int64_t max_ms, int reset)
{
	if (reset || prev_ms <= 0)
		return min_ms;
	/* prev * 2 > max, written so that it cannot overflow. */
	return prev_ms > max_ms - prev_ms ? max_ms : prev_ms * 2;
}

int64_t lim_backoff__jittered(int64_t base_ms, uint32_t (*uniform)(uint32_t upper_bound))
{
	int64_t low = base_ms - base_ms / 5, span = base_ms / 5 * 2 + 1; /* [low, low + span) */
	if (span > UINT32_MAX) /* a backoff of months: a narrower spread is no loss */
		span = UINT32_MAX;
	return low + (int64_t)uniform((uint32_t)span);
}

/* Jittered exponential backoff for a dialer (backoff.h). */
static void schedule_retry(lim_node *n, dialer *d, int reset)
{
	d->backoff = lim_backoff__next(d->backoff, n->opts.reconnect_min_ms, n->opts.reconnect_max_ms, reset);
	d->next_try = mono_ms() + lim_backoff__jittered(d->backoff, randombytes_uniform);
}

static void close_conn(lim_node *n, size_t i, const char *why)
{
	conn *c = &n->conns[i];
	lim_session_info info;
	size_t len;
	const char *out;
	lim_session__info(c->s, &info);
	/* Best effort: let an ERR or BYE line reach the peer. */
	out = lim_session__output(c->s, &len);
	if (len && !c->connecting) {
		ssize_t w = send(c->fd, out, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		LIM_UNUSED(w);
	}
	node_log(n, "connection %s %s closed: %s", c->dialer >= 0 ? "to" : "from", c->addr, why);
	if (c->dialer >= 0) {
		dialer *d = &n->dialers[c->dialer];
		d->conn = -1;
		snprintf(d->last_error, sizeof(d->last_error), "%s", why);
		if (info.authenticated) {
			memcpy(d->last_id, info.peer_id, LIM_ID_BYTES);
			d->known_id = 1;
		}
		schedule_retry(n, d, info.authenticated && info.error_code == 0);
	}
	close(c->fd);
	lim_session__free(c->s);
	n->conns[i] = n->conns[--n->nconns];
	if (i < n->nconns && n->conns[i].dialer >= 0)
		n->dialers[n->conns[i].dialer].conn = (int)i;
}

static void start_dial(lim_node *n, size_t di)
{
	dialer *d = &n->dialers[di];
	int fd;
	/* Logged like a connection that closes, so an operator sees why a
	 * peer never connects (a name that does not resolve, no route). */
	if (lim_net__connect(d->addr, &fd) < 0) {
		snprintf(d->last_error, sizeof(d->last_error), "%s", lim_error_last());
		node_log(n, "connection to %s failed: %s", d->addr, d->last_error);
		schedule_retry(n, d, 0);
		return;
	}
	if (add_conn(n, fd, (int)di, 1, d->addr) < 0) {
		close(fd);
		snprintf(d->last_error, sizeof(d->last_error), "out of memory");
		node_log(n, "connection to %s failed: out of memory", d->addr);
		schedule_retry(n, d, 0);
	}
}

static void accept_all(lim_node *n)
{
	for (;;) {
		int fd = accept(n->listen_fd, NULL, NULL);
		char addr[MAX_ADDR];
		if (fd < 0)
			return;
		lim_net__nonblock(fd);
		lim_net__describe_peer(fd, addr, sizeof(addr));
		if ((int)n->nconns >= n->opts.max_connections) {
			static const char busy[] = "ERR 503 this node has no room for another connection\n";
			ssize_t w = send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
			LIM_UNUSED(w);
			close(fd);
			node_log(n, "refused a connection from %s: at the limit of %d", addr, n->opts.max_connections);
			continue;
		}
		if (add_conn(n, fd, -1, 0, addr) < 0) {
			close(fd);
			continue;
		}
		node_log(n, "connection from %s", addr);
	}
}

/* Write what the session has queued; returns -1 if the socket failed. */
static int flush_conn(conn *c)
{
	size_t len;
	const char *out;
	while ((out = lim_session__output(c->s, &len)), len) {
		ssize_t w = send(c->fd, out, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
		lim_session__consume(c->s, (size_t)w);
	}
	return 0;
}

/* ------------------------------------------------------------ the loop */

static void handle_conn(lim_node *n, size_t *i, short revents, char *buf)
{
	conn *c = &n->conns[*i];
	int64_t now = mono_ms();
	if (c->connecting) {
		if (!(revents & (POLLOUT | POLLERR | POLLHUP)))
			return;
		int err = lim_net__connect_result(c->fd);
		if (err) {
			char why[160];
			snprintf(why, sizeof(why), "cannot connect: %s", strerror(err));
			close_conn(n, *i, why);
			(*i)--;
			return;
		}
		c->connecting = 0;
		node_log(n, "connected to %s", c->addr);
	}
	if (revents & (POLLIN | POLLHUP | POLLERR)) {
		ssize_t r = recv(c->fd, buf, READ_CHUNK, 0);
		if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
			close_conn(n, *i, r == 0 ? "peer closed the connection" : strerror(errno));
			(*i)--;
			return;
		}
		if (r > 0 && lim_session__feed(c->s, buf, (size_t)r, now) < 0) {
			lim_session_info info;
			lim_session__info(c->s, &info);
			flush_conn(c);
			close_conn(n, *i, info.error_code ? info.error : "session ended");
			(*i)--;
			return;
		}
	}
	if (flush_conn(c) < 0) {
		close_conn(n, *i, "write failed");
		(*i)--;
	}
}

static void drain_wake(lim_node *n)
{
	char buf[256];
	while (read(n->wake[0], buf, sizeof(buf)) > 0)
		;
}

static void *loop(void *arg)
{
	lim_node *n = arg;
	char *buf = malloc(READ_CHUNK);
	struct pollfd *pfd = NULL;
	size_t pcap = 0;

	int64_t data_version = lim_db__data_version(n->db);
	pthread_mutex_lock(&n->mu);
	while (!n->stop && buf) {
		/* Wake often enough to notice commits by other processes. */
		int64_t now = mono_ms(), deadline = now + EXTERNAL_POLL_MS;
		size_t np = 0;
		int64_t dv = lim_db__data_version(n->db);
		int external = dv != data_version;
		data_version = dv;

		/* Dial peers whose retry time has come. */
		for (size_t d = 0; d < n->ndialers; d++) {
			dialer *dl = &n->dialers[d];
			if (dl->removed || dl->conn >= 0)
				continue;
			if (now >= dl->next_try)
				start_dial(n, d);
			else if (dl->next_try < deadline)
				deadline = dl->next_try;
		}
		/* Timers and pumping for every session. */
		for (size_t i = 0; i < n->nconns; i++) {
			conn *c = &n->conns[i];
			if (c->connecting) {
				if (now < c->connect_deadline) {
					if (c->connect_deadline < deadline)
						deadline = c->connect_deadline;
				} else {
					char why[96];
					snprintf(why, sizeof(why), "cannot connect: no answer within %d ms", n->opts.idle_timeout_ms);
					close_conn(n, i, why);
					i--;
				}
				continue;
			}
			if (external)
				lim_session__mark_dirty(c->s);
			if (lim_session__tick(c->s, now) < 0 || lim_session__pump(c->s, now) < 0) {
				lim_session_info info;
				lim_session__info(c->s, &info);
				flush_conn(c);
				close_conn(n, i, info.error[0] ? info.error : "session ended");
				i--;
				continue;
			}
			int64_t dl = lim_session__next_deadline(c->s);
			if (dl < deadline)
				deadline = dl;
		}
		if (pcap < n->nconns + 2) {
			pcap = n->nconns + 16;
			struct pollfd *g = realloc(pfd, pcap * sizeof(*pfd));
			if (!g)
				break;
			pfd = g;
		}
		pfd[np++] = (struct pollfd){ n->wake[0], POLLIN, 0 };
		pfd[np++] = (struct pollfd){ n->listen_fd, (short)(n->listen_fd >= 0 ? POLLIN : 0), 0 };
		for (size_t i = 0; i < n->nconns; i++) {
			size_t len;
			lim_session__output(n->conns[i].s, &len);
			short ev = n->conns[i].connecting ? POLLOUT : (short)(POLLIN | (len ? POLLOUT : 0));
			pfd[np++] = (struct pollfd){ n->conns[i].fd, ev, 0 };
		}
		int timeout = deadline > now ? (int)(deadline - now) : 0;
		pthread_mutex_unlock(&n->mu);
		int ready = poll(pfd, np, timeout);
		pthread_mutex_lock(&n->mu);
		if (ready < 0 && errno != EINTR)
			break;
		if (ready <= 0)
			continue;
		if (pfd[0].revents) {
			drain_wake(n);
			for (size_t i = 0; i < n->nconns; i++)
				lim_session__mark_dirty(n->conns[i].s);
		}
		if (n->listen_fd >= 0 && (pfd[1].revents & POLLIN))
			accept_all(n);
		/* Connections may have been added above; only poll results count. */
		size_t polled = np - 2;
		for (size_t i = 0; i < polled && i < n->nconns; i++) {
			short re = pfd[i + 2].revents;
			if (n->conns[i].fd != pfd[i + 2].fd)
				continue; /* moved by a close; it is polled next round */
			if (re)
				handle_conn(n, &i, re, buf);
		}
	}
	/* Stopping: say BYE to everyone. */
	for (size_t i = n->nconns; i-- > 0;) {
		if (!n->conns[i].connecting)
			lim_session__bye(n->conns[i].s);
		close_conn(n, i, "node stopped");
	}
	pthread_mutex_unlock(&n->mu);
	free(pfd);
	free(buf);
	return NULL;
}

/* ------------------------------------------------------------ public */

int lim_node_options_init(lim_node_options *opts, unsigned int version)
{
	lim_node_options d = LIM_NODE_OPTIONS_INIT;
	if (!opts)
		return lim__error(LIM_EINVALID, "options pointer is NULL");
	if (version != LIM_NODE_OPTIONS_VERSION)
		return lim__error(LIM_EINVALID, "unsupported lim_node_options version %u", version);
	*opts = d;
	return 0;
}

static int add_dialer(lim_node *n, const char *addr)
{
	char host[256], port[16];
	int rc = lim_net__split(addr, host, sizeof(host), port, sizeof(port));
	if (rc < 0)
		return rc;
	if (strlen(addr) >= MAX_ADDR)
		return lim__error(LIM_EINVALID, "address is too long");
	for (size_t i = 0; i < n->ndialers; i++)
		if (!n->dialers[i].removed && strcmp(n->dialers[i].addr, addr) == 0)
			return lim__error(LIM_EEXISTS, "peer %s is already configured", addr);
	if (n->ndialers == n->cap_dialers) {
		size_t cap = n->cap_dialers ? 2 * n->cap_dialers : 8;
		dialer *g = realloc(n->dialers, cap * sizeof(*g));
		if (!g)
			return lim__error(LIM_ENOMEM, "out of memory");
		n->dialers = g;
		n->cap_dialers = cap;
	}
	dialer *d = &n->dialers[n->ndialers++];
	memset(d, 0, sizeof(*d));
	snprintf(d->addr, sizeof(d->addr), "%s", addr);
	d->conn = -1;
	d->next_try = 0;
	return 0;
}

static void free_node(lim_node *n)
{
	if (n->wake[0] >= 0) {
		close(n->wake[0]);
		close(n->wake[1]);
	}
	if (n->ev_pipe[0] >= 0) {
		close(n->ev_pipe[0]);
		close(n->ev_pipe[1]);
	}
	if (n->listen_fd >= 0)
		close(n->listen_fd);
	pthread_mutex_destroy(&n->mu);
	pthread_mutex_destroy(&n->ev_mu);
	pthread_cond_destroy(&n->ev_cv);
	free(n->events);
	free(n->allow);
	free(n->conns);
	free(n->dialers);
	free(n);
}

int lim_node_start(lim_node **out, lim_db *db, const lim_node_options *opts)
{
	lim_node_options defaults = LIM_NODE_OPTIONS_INIT;
	lim_node *n;
	int rc;

	if (!out || !db)
		return lim__error(LIM_EINVALID, "NULL argument");
	*out = NULL;
	if (!opts)
		opts = &defaults;
	if (opts->version != LIM_NODE_OPTIONS_VERSION)
		return lim__error(LIM_EINVALID, "unsupported lim_node_options version %u", opts->version);
	if (opts->max_connections < 1 || opts->idle_timeout_ms < 100 || opts->keepalive_ms < 10 ||
	    opts->reconnect_min_ms < 1 || opts->reconnect_max_ms < opts->reconnect_min_ms)
		return lim__error(LIM_EINVALID, "node limits out of range (max_connections >= 1, idle_timeout_ms >= 100, "
		                                "keepalive_ms >= 10, 1 <= reconnect_min_ms <= reconnect_max_ms)");
	if (!(n = calloc(1, sizeof(*n))))
		return lim__error(LIM_ENOMEM, "out of memory");
	n->db = db;
	n->opts = *opts;
	n->opts.peers = NULL;
	n->opts.allow = NULL;
	n->opts.listen = NULL; /* the caller's string; only used below, before return */
	n->listen_fd = n->wake[0] = n->wake[1] = n->ev_pipe[0] = n->ev_pipe[1] = -1;
	pthread_mutex_init(&n->mu, NULL);
	pthread_mutex_init(&n->ev_mu, NULL);
	pthread_cond_init(&n->ev_cv, NULL);
	if (!(n->events = calloc(EVENT_QUEUE, sizeof(*n->events)))) {
		free_node(n);
		return lim__error(LIM_ENOMEM, "out of memory");
	}
	if (opts->nallow) {
		if (!(n->allow = calloc(opts->nallow, LIM_ID_BYTES))) {
			free_node(n);
			return lim__error(LIM_ENOMEM, "out of memory");
		}
		for (size_t i = 0; i < opts->nallow; i++)
			if (!opts->allow[i] || lim_hex__decode(n->allow[i], LIM_ID_BYTES, opts->allow[i], strlen(opts->allow[i])) < 0) {
				free_node(n);
				return lim__error(LIM_EINVALID, "allowed peer id %zu is not 64 lowercase hex digits", i + 1);
			}
	} else if (opts->allow) {
		n->opts.nallow = 0; /* an empty list given explicitly still means "nobody" */
		n->allow = calloc(1, LIM_ID_BYTES);
	}
	for (size_t i = 0; i < opts->npeers; i++)
		if ((rc = add_dialer(n, opts->peers[i])) < 0) {
			free_node(n);
			return rc;
		}
	if (pipe(n->wake) < 0 || pipe(n->ev_pipe) < 0) {
		free_node(n);
		return lim__error(LIM_EIO, "pipe: %s", strerror(errno));
	}
	lim_net__nonblock(n->wake[0]);
	lim_net__nonblock(n->wake[1]);
	lim_net__nonblock(n->ev_pipe[0]);
	lim_net__nonblock(n->ev_pipe[1]);
	if (opts->listen && (rc = lim_net__listen(opts->listen, &n->listen_fd, n->listen_addr, sizeof(n->listen_addr))) < 0) {
		free_node(n);
		return rc;
	}
	LIM_DB_LOCK(db);
	if (db->on_commit) {
		LIM_DB_UNLOCK(db);
		free_node(n);
		return lim__error(LIM_EEXISTS, "a node is already running on this store");
	}
	/* A node is where long runs of commits come from (catch-up applies
	 * batch after batch): keep the checkpoints off its thread. */
	if ((rc = lim_store__bg_checkpoint_start(&db->st)) < 0) {
		LIM_DB_UNLOCK(db);
		free_node(n);
		return rc;
	}
	db->on_commit = on_commit;
	db->on_commit_ctx = n;
	LIM_DB_UNLOCK(db);
	if (pthread_create(&n->thread, NULL, loop, n) != 0) {
		LIM_DB_LOCK(db);
		lim_store__bg_checkpoint_stop(&db->st);
		db->on_commit = NULL;
		LIM_DB_UNLOCK(db);
		free_node(n);
		return lim__error(LIM_ERROR, "cannot start the node thread");
	}
	if (opts->listen)
		node_log(n, "listening on %s", n->listen_addr);
	*out = n;
	return 0;
}

void lim_node_free(lim_node *n)
{
	if (!n)
		return;
	pthread_mutex_lock(&n->mu);
	n->stop = 1;
	pthread_mutex_unlock(&n->mu);
	wake(n);
	pthread_join(n->thread, NULL);
	/* Wake threads blocked in lim_node_next_event and wait until they are
	 * out before the condition variable goes away. */
	pthread_mutex_lock(&n->ev_mu);
	n->closing = 1;
	pthread_cond_broadcast(&n->ev_cv);
	while (n->ev_waiters > 0)
		pthread_cond_wait(&n->ev_cv, &n->ev_mu);
	pthread_mutex_unlock(&n->ev_mu);
	LIM_DB_LOCK(n->db);
	lim_store__bg_checkpoint_stop(&n->db->st);
	n->db->on_commit = NULL;
	n->db->on_commit_ctx = NULL;
	LIM_DB_UNLOCK(n->db);
	free_node(n);
}

int lim_node_address(lim_buf *out, lim_node *n)
{
	lim_sb sb = LIM_SB_INIT;
	if (!out || !n)
		return lim__error(LIM_EINVALID, "NULL argument");
	if (n->listen_fd < 0)
		return lim__error(LIM_ENOTFOUND, "the node is not listening");
	lim_sb__puts(&sb, n->listen_addr);
	return lim_sb__to_buf(&sb, out);
}

int lim_node_add_peer(lim_node *n, const char *addr)
{
	int rc;
	if (!n || !addr)
		return lim__error(LIM_EINVALID, "NULL argument");
	pthread_mutex_lock(&n->mu);
	rc = add_dialer(n, addr);
	pthread_mutex_unlock(&n->mu);
	wake(n);
	return rc;
}

int lim_node_remove_peer(lim_node *n, const char *addr)
{
	int rc = -1;
	if (!n || !addr)
		return lim__error(LIM_EINVALID, "NULL argument");
	pthread_mutex_lock(&n->mu);
	for (size_t i = 0; i < n->ndialers; i++) {
		dialer *d = &n->dialers[i];
		if (d->removed || strcmp(d->addr, addr) != 0)
			continue;
		d->removed = 1;
		if (d->conn >= 0) {
			lim_session__bye(n->conns[d->conn].s);
			int ci = d->conn;
			n->conns[ci].dialer = -1;
			flush_conn(&n->conns[ci]);
			close_conn(n, (size_t)ci, "peer removed");
		}
		rc = 0;
	}
	pthread_mutex_unlock(&n->mu);
	return rc == 0 ? 0 : lim__error(LIM_ENOTFOUND, "no peer %s is configured", addr);
}

/* ------------------------------------------------------------ one-shot sync */

typedef struct {
	lim_db *db;
	lim_session *s;
	int fd;
	int64_t deadline;
	lim_sync_stats stats;
	int status_asked;
} oneshot;

static int oneshot_connect(oneshot *o, lim_db *db, const char *addr, int timeout_ms, int observer)
{
	lim_session_config cfg;
	struct pollfd p;
	int rc, err;
	memset(o, 0, sizeof(*o));
	o->db = db;
	o->deadline = timeout_ms < 0 ? INT64_MAX : mono_ms() + timeout_ms;
	if ((rc = lim_net__connect(addr, &o->fd)) < 0)
		return rc;
	p = (struct pollfd){ o->fd, POLLOUT, 0 };
	rc = poll(&p, 1, timeout_ms < 0 ? -1 : timeout_ms);
	if (rc <= 0 || (err = lim_net__connect_result(o->fd)) != 0) {
		close(o->fd);
		return lim__error(LIM_EIO, "cannot connect to %s: %s", addr, rc <= 0 ? "timed out" : strerror(err));
	}
	lim_session_config__defaults(&cfg);
	cfg.observer = observer;
	if (timeout_ms > 0 && timeout_ms < cfg.idle_timeout_ms)
		cfg.idle_timeout_ms = timeout_ms;
	o->s = lim_session__new(db, 1, &cfg, mono_ms());
	if (!o->s) {
		close(o->fd);
		return lim__error(LIM_ENOMEM, "out of memory");
	}
	return 0;
}

static void oneshot_close(oneshot *o)
{
	lim_session__free(o->s);
	close(o->fd);
}

/* Run the session until done(o) says so; 0 on done, else the error. */
static int oneshot_run(oneshot *o, int (*done)(oneshot *o))
{
	char *buf = malloc(READ_CHUNK);
	int rc = 0, session_failed = 0;
	if (!buf)
		return lim__error(LIM_ENOMEM, "out of memory");
	for (;;) {
		size_t len;
		int64_t now = mono_ms();
		lim_session_info info;
		conn c = { o->fd, o->s, -1, 0, 0, "" };
		if (lim_session__pump(o->s, now) < 0 || lim_session__tick(o->s, now) < 0) {
			flush_conn(&c);
			session_failed = 1;
			break;
		}
		if (done(o)) {
			lim_session__bye(o->s);
			flush_conn(&c);
			break;
		}
		if (flush_conn(&c) < 0) {
			rc = lim__error(LIM_EIO, "the connection failed while writing");
			break;
		}
		if (now >= o->deadline) {
			rc = lim__error(LIM_ERROR, "timed out before both sides held the same changes");
			break;
		}
		lim_session__output(o->s, &len);
		struct pollfd p = { o->fd, (short)(POLLIN | (len ? POLLOUT : 0)), 0 };
		int64_t wait = o->deadline - now;
		if (poll(&p, 1, wait > 200 ? 200 : (int)wait) <= 0)
			continue;
		if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t r = recv(o->fd, buf, READ_CHUNK, 0);
			if (r <= 0) {
				lim_session__info(o->s, &info);
				rc = lim__error(LIM_EIO, "the peer closed the connection%s%s", info.error[0] ? ": " : "", info.error);
				break;
			}
			if (lim_session__feed(o->s, buf, (size_t)r, mono_ms()) < 0) {
				flush_conn(&c);
				session_failed = 1;
				break;
			}
		}
	}
	if (session_failed) {
		lim_session_info info;
		lim_session__info(o->s, &info);
		int code = info.error_code == LIM_PERR_AUTH || info.error_code == LIM_PERR_NETWORK ||
		                   info.error_code == LIM_PERR_FORBIDDEN
		               ? LIM_EAUTH : LIM_EPROTOCOL;
		rc = lim__error(code, "sync failed: ERR %d %s", info.error_code, info.error);
	}
	free(buf);
	return rc;
}

static int synced(oneshot *o)
{
	lim_session_info info;
	lim_session__info(o->s, &info);
	o->stats.changes_in = info.changes_in;
	o->stats.changes_out = info.changes_out;
	return info.synced;
}

int lim_sync_once(lim_db *db, const char *addr, int timeout_ms, lim_sync_stats *stats)
{
	oneshot o;
	int rc;
	if (!db || !addr)
		return lim__error(LIM_EINVALID, "NULL argument");
	if ((rc = oneshot_connect(&o, db, addr, timeout_ms, 0)) < 0)
		return rc;
	rc = oneshot_run(&o, synced);
	if (stats)
		*stats = o.stats;
	oneshot_close(&o);
	return rc;
}

static int got_state(oneshot *o)
{
	lim_session_info info;
	lim_session__info(o->s, &info);
	if (info.authenticated && !o->status_asked) {
		lim_session__request_status(o->s);
		o->status_asked = 1;
	}
	return info.peer_state != NULL;
}

int lim_remote_status(lim_buf *out, lim_db *db, const char *addr, int timeout_ms)
{
	oneshot o;
	int rc;
	lim_session_info info;
	lim_sb sb = LIM_SB_INIT;
	if (!out || !db || !addr)
		return lim__error(LIM_EINVALID, "NULL argument");
	if ((rc = oneshot_connect(&o, db, addr, timeout_ms, 1)) < 0)
		return rc;
	rc = oneshot_run(&o, got_state);
	if (rc == 0) {
		lim_session__info(o.s, &info);
		lim_sb__puts(&sb, info.peer_state);
		rc = lim_sb__to_buf(&sb, out);
	}
	oneshot_close(&o);
	return rc;
}
