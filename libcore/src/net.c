/* See net.h. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "common.h"
#include "net.h"

int lim_net__split(const char *addr, char *host, size_t hostcap, char *port, size_t portcap)
{
	const char *colon, *h = addr;
	size_t hn;
	if (!addr || !*addr)
		return lim__error(LIM_EINVALID, "address is empty (expected HOST:PORT)");
	if (addr[0] == '[') {
		const char *close = strchr(addr, ']');
		if (!close || close[1] != ':')
			return lim__error(LIM_EINVALID, "address \"%s\" is not [IPV6]:PORT", addr);
		h = addr + 1;
		hn = (size_t)(close - h);
		colon = close + 1;
	} else {
		colon = strrchr(addr, ':');
		if (!colon)
			return lim__error(LIM_EINVALID, "address \"%s\" has no port (expected HOST:PORT)", addr);
		hn = (size_t)(colon - addr);
	}
	if (hn == 0 || hn >= hostcap || strlen(colon + 1) == 0 || strlen(colon + 1) >= portcap)
		return lim__error(LIM_EINVALID, "address \"%s\" is not HOST:PORT", addr);
	for (const char *p = colon + 1; *p; p++)
		if (*p < '0' || *p > '9')
			return lim__error(LIM_EINVALID, "address \"%s\" has a non-numeric port", addr);
	memcpy(host, h, hn);
	host[hn] = '\0';
	strcpy(port, colon + 1);
	return 0;
}

void lim_net__nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL, 0);
	fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	fcntl(fd, F_SETFD, FD_CLOEXEC);
}

static int resolve(const char *addr, int passive, struct addrinfo **res)
{
	char host[256], port[16];
	struct addrinfo hints;
	int rc = lim_net__split(addr, host, sizeof(host), port, sizeof(port));
	if (rc < 0)
		return rc;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = passive ? AI_PASSIVE : 0;
	rc = getaddrinfo(host, port, &hints, res);
	if (rc != 0)
		return lim__error(LIM_EINVALID, "cannot resolve %s: %s", addr, gai_strerror(rc));
	return 0;
}

static void format_addr(const struct sockaddr *sa, char *out, size_t cap)
{
	char ip[INET6_ADDRSTRLEN] = "?";
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
		snprintf(out, cap, "%s:%u", ip, ntohs(in->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
		snprintf(out, cap, "[%s]:%u", ip, ntohs(in6->sin6_port));
	} else {
		snprintf(out, cap, "?");
	}
}

int lim_net__listen(const char *addr, int *fd, char *bound, size_t boundcap)
{
	struct addrinfo *res, *ai;
	int rc = resolve(addr, 1, &res), err = 0;
	if (rc < 0)
		return rc;
	*fd = -1;
	for (ai = res; ai; ai = ai->ai_next) {
		int s = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol), one = 1;
		if (s < 0) {
			err = errno;
			continue;
		}
		setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(s, ai->ai_addr, ai->ai_addrlen) == 0 && listen(s, 128) == 0) {
			struct sockaddr_storage ss;
			socklen_t sl = sizeof(ss);
			lim_net__nonblock(s);
			getsockname(s, (struct sockaddr *)&ss, &sl);
			format_addr((struct sockaddr *)&ss, bound, boundcap);
			*fd = s;
			break;
		}
		err = errno;
		close(s);
	}
	freeaddrinfo(res);
	if (*fd < 0)
		return lim__error(LIM_EIO, "cannot listen on %s: %s", addr, strerror(err));
	return 0;
}

int lim_net__connect(const char *addr, int *fd)
{
	struct addrinfo *res;
	int rc = resolve(addr, 0, &res), s, one = 1;
	if (rc < 0)
		return rc;
	s = socket(res->ai_family, res->ai_socktype, res->ai_protocol);
	if (s < 0) {
		freeaddrinfo(res);
		return lim__error(LIM_EIO, "socket: %s", strerror(errno));
	}
	lim_net__nonblock(s);
	setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	rc = connect(s, res->ai_addr, res->ai_addrlen);
	freeaddrinfo(res);
	if (rc < 0 && errno != EINPROGRESS) {
		int e = errno;
		close(s);
		return lim__error(LIM_EIO, "cannot connect to %s: %s", addr, strerror(e));
	}
	*fd = s;
	return 0;
}

int lim_net__connect_result(int fd)
{
	int err = 0;
	socklen_t len = sizeof(err);
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		return errno;
	return err;
}

void lim_net__describe_peer(int fd, char *out, size_t cap)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0)
		format_addr((struct sockaddr *)&ss, out, cap);
	else
		snprintf(out, cap, "?");
}
