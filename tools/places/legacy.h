/* legacy: GET /maps/api/place/nearbysearch/json, the legacy Nearby Search.
 *
 * Answers are always HTTP 200 with Google's body: html_attributions,
 * results (at most 20 a page, nearest first), status and, when more places
 * match, next_page_token (three pages, 60 places, at most).  A page token
 * carries its whole query, so location and radius are then not needed. */
#ifndef HERD_PLACES_LEGACY_H
#define HERD_PLACES_LEGACY_H

#include "places.h"

#define LEGACY_PATH "/maps/api/place/nearbysearch/json"
#define LEGACY_PAGE 20
#define LEGACY_MAX 60

/* The query parameters, decoded; NULL when absent. */
struct legacy_args {
    const char *location;       /* "LAT,LNG" */
    const char *radius;         /* metres */
    const char *key;
    const char *pagetoken;
};

void legacy_answer(const struct places_ctx *ctx, const struct legacy_args *a,
                   struct reply *r);

#endif
