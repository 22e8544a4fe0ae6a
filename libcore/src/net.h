/*
 * Socket helpers for the node: parsing "HOST:PORT", non-blocking listen,
 * connect and accept. Nothing here knows about sessions or stores.
 */
#ifndef LIM_NET_H
#define LIM_NET_H

#include <stddef.h>

/* Split "host:port" or "[v6]:port". 0 or LIM_EINVALID. */
int lim_net__split(const char *addr, char *host, size_t hostcap, char *port, size_t portcap);
/* Listen (non-blocking) on addr; the bound address goes to `bound`. */
int lim_net__listen(const char *addr, int *fd, char *bound, size_t boundcap);
/* Start a non-blocking connect; *fd is set, the connect may be in progress. */
int lim_net__connect(const char *addr, int *fd);
/* 0 if an in-progress connect finished well, else an errno. */
int lim_net__connect_result(int fd);
void lim_net__nonblock(int fd);
void lim_net__describe_peer(int fd, char *out, size_t cap);

#endif
