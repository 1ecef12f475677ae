/* http: the supervisor's HTTP face ([herd] http, README "Monitoring").
 *
 *   GET /metrics     Prometheus text exposition: every node this
 *                    supervisor runs (label node) and the supervisor's own
 *                    numbers (restarts, state per child, fatal reasons)
 *   GET /api/status  the JSON of `herdctl status --json`
 *   GET /            the live page (supervisor/page.html, built in)
 *
 * libmicrohttpd in its external epoll mode, driven by libev watchers on
 * the supervisor's own loop: one io watcher on MHD's epoll descriptor and
 * one timer for its timeouts; MHD_run() from their callbacks never
 * blocks, and every answer is built from memory and small local files,
 * so a client can never hold up reaping or restarts.  Only GET and HEAD;
 * requests, connections and idle time are bounded. */
#ifndef HERD_HTTP_H
#define HERD_HTTP_H

#include <stddef.h>

struct sup;

/* Connections at once, from one address, request header bytes, idle
 * seconds. */
#define HTTP_MAX_CONNECTIONS 32
#define HTTP_MAX_PER_ADDRESS 16
#define HTTP_MAX_REQUEST 8192
#define HTTP_IDLE_TIMEOUT_S 10

/* Serve at s->cfg's http address (nothing when it is off).  0, or -1 with
 * "cannot listen on ADDR:PORT: why" in err. */
int http_open(struct sup *s, char *err, size_t errlen);

/* A reload: when the address changed, listen at the new one instead
 * (when it cannot be had, the log says so and the face is off until the
 * next reload). */
void http_reconfigure(struct sup *s);

void http_close(struct sup *s);

#endif
