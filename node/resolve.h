/* resolve: host names to addresses off the event loop.  c-ares, driven by
 * the node's libev loop (its sockets are ev_io watchers, its timeouts one
 * ev_timer), so a resolver that is slow or never answers costs a watcher,
 * never a stalled loop.  Reads /etc/resolv.conf and /etc/hosts as the C
 * library does (files first, then DNS).  A numeric address is answered
 * without any I/O.  See docs/PEERS.md "Neighbours by name". */
#ifndef HERD_RESOLVE_H
#define HERD_RESOLVE_H

#include <ev.h>
#include <stddef.h>
#include <sys/socket.h>

/* Addresses kept per answer: a name with more is cut to these (in the
 * resolver's order), so an answer never grows without bound. */
#define RESOLVE_MAX_ADDRS 16

/* One query's timeout per try, and tries per server (c-ares options):
 * a resolver that drops every query fails a lookup in about 6 s. */
#define RESOLVE_TIMEOUT_MS 2000
#define RESOLVE_TRIES 2

struct resolve_addr {
    struct sockaddr_storage ss;
    socklen_t len;
};

struct resolve_result {
    size_t n;                   /* 0 on failure */
    struct resolve_addr addr[RESOLVE_MAX_ADDRS];
    char error[128];            /* why, when n == 0 */
};

struct resolver;
struct resolve_query;

/* Called once per query, from the loop, never from inside resolve_start()
 * or resolve_cancel(); res is valid during the call only. */
typedef void (*resolve_cb)(void *arg, const struct resolve_result *res);

/* NULL with a reason in err when c-ares cannot start. */
struct resolver *resolver_new(struct ev_loop *loop, char *err, size_t errlen);

/* Every query still pending is dropped without its callback. */
void resolver_free(struct resolver *r);

/* Look host up for a TCP connection to port (IPv4 and IPv6).  NULL when
 * out of memory (the callback will not be called). */
struct resolve_query *resolve_start(struct resolver *r, const char *host,
                                    int port, resolve_cb cb, void *arg);

/* Forget a pending query: its callback is never called. */
void resolve_cancel(struct resolve_query *q);

#endif
