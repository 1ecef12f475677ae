/* places_reply: the places requests a node makes and the JSON it answers
 * WHATSAT with, for every provider.  Pure: no sockets, no HTTP. */
#ifndef HERD_PLACES_REPLY_H
#define HERD_PLACES_REPLY_H

#include <stddef.h>

struct places_query {
    double lat, lon;
    const char *radius_m;       /* exact decimal metres */
    int max_results;            /* 1..20 */
};

/* Field mask for Places API (New): what places_reply_new() maps. */
#define PLACES_NEW_FIELD_MASK                                               \
    "places.id,places.displayName,places.formattedAddress,places.location," \
    "places.types,places.viewport"

/* Largest upstream body a node reads; more is an error, not a stall. */
#define PLACES_BODY_MAX (4u << 20)

/* base + "/maps/api/place/nearbysearch/json?location=..&radius=..[&key=..]"
 * (key percent-encoded; NULL or "" for none).  Caller frees. */
char *places_legacy_url(const char *base, const struct places_query *q,
                        const char *key);

/* base + "/v1/places:searchNearby", and its JSON request body. */
char *places_new_url(const char *base);
char *places_new_body(const struct places_query *q);

/* The pretty-printed JSON for a WHATSAT reply, from an upstream answer:
 * legacy Nearby Search (results cut to max_results), or Places API (New)
 * mapped to the legacy shape.  Anything unusable becomes the error shape.
 * Never returns NULL but when memory is short.  Caller frees. */
char *places_reply_legacy(long http_status, const char *body, size_t len,
                          int max_results);
char *places_reply_new(long http_status, const char *body, size_t len,
                       int max_results);

/* {"html_attributions": [], "results": [], "status": S,
 *  "error_message": M}, pretty-printed. */
char *places_reply_fault(const char *status, const char *message);

#endif
