/* places: WHATSAT's places fetched over HTTP with libcurl's multi
 * interface on the node's libev loop, so a slow service blocks no one. */
#ifndef HERD_PLACES_H
#define HERD_PLACES_H

#include <ev.h>
#include <stddef.h>

#include "common/config.h"
#include "common/places_reply.h"

/* At most this many WHATSATs waiting for places per node; past it a
 * WHATSAT is answered at once with the error shape. */
#define PLACES_MAX_IN_FLIGHT 1024

struct places;
struct places_req;

/* Called once with the reply's JSON (the error shape when the places
 * could not be had), NULL only when memory is short.  The parts are good
 * only during the call. */
typedef void (*places_done_fn)(void *ctx, const struct places_json *json);

/* What the status file shows. */
struct places_counts {
    unsigned long long upstream;    /* requests sent to the service */
    unsigned long long shared;      /* WHATSATs that joined one in flight */
};

struct places *places_new(struct ev_loop *loop, const struct herd_config *cfg);
void places_free(struct places *p);

/* Ask for places.  A request for the same places (same query text: the
 * location, the radius, and for the New API the bound) already in flight
 * is shared: one upstream request, every asker answered with its own
 * bound.  Nothing is kept once the answer is delivered (no cache).
 * Returns NULL when it could not even start: then the callback has
 * already run with the error shape. */
struct places_req *places_fetch(struct places *p, const struct places_query *q,
                                places_done_fn done, void *ctx);

/* The asker is gone: never call its callback. */
void places_cancel(struct places_req *r);

void places_get_counts(const struct places *p, struct places_counts *out);

#endif
