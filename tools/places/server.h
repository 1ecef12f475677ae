/* server: the HTTP side of herd-places, on libmicrohttpd with a thread per
 * connection, so a request held back by --latency-ms delays nobody else.
 * Routes requests to the legacy and new endpoints, caps request bodies,
 * and logs one line per request (never the API key). */
#ifndef HERD_PLACES_SERVER_H
#define HERD_PLACES_SERVER_H

#include <stddef.h>

#include "places.h"

#define SERVER_BODY_MAX (16 * 1024)     /* bytes of a POST body */
#define SERVER_MAX_CONNECTIONS 256
#define SERVER_IDLE_TIMEOUT_S 30

struct server;

/* Serve ctx on listen_fd (bound and listening; the server owns it from
 * now on), each answer delayed by latency_ms.  Returns the server, or
 * NULL with errno set. */
struct server *server_start(const struct places_ctx *ctx, int listen_fd,
                            unsigned latency_ms);

/* Wake delayed requests, close every connection, join the threads. */
void server_stop(struct server *s);

/* The process log is shared by every connection thread: these lock it. */
void server_log(int error, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void server_log_flush(void);

#endif
