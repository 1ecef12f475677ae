/* nearby: POST /v1/places:searchNearby, Places API (New).
 *
 * The body is JSON: locationRestriction.circle.{center.{latitude,
 * longitude}, radius}, and optionally maxResultCount (1-20, default 20),
 * rankPreference, languageCode, regionCode and the type filters.  The
 * X-Goog-FieldMask header (or the fields query parameter) is required and
 * says which place fields to return.  The answer is {"places":[...]},
 * or {} when nothing matches, as Google does; errors come in Google's
 * {"error":{"code","message","status"}} shape with the same HTTP code. */
#ifndef HERD_PLACES_NEARBY_H
#define HERD_PLACES_NEARBY_H

#include <stddef.h>

#include "places.h"

#define NEARBY_PATH "/v1/places:searchNearby"
#define NEARBY_MAX 20

struct nearby_args {
    const char *body;           /* NUL-terminated */
    size_t body_len;
    const char *field_mask;     /* NULL when absent */
    const char *key;            /* X-Goog-Api-Key or ?key=, NULL if none */
};

void nearby_answer(const struct places_ctx *ctx, const struct nearby_args *a,
                   struct reply *r);

#endif
