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
 * legacy Nearby Search (results cut to max_results: verbatim by
 * places_cut when it can, else through cJSON), or Places API (New)
 * mapped to the legacy shape.  Anything unusable becomes the error shape.
 * Never returns NULL but when memory is short.  Caller frees. */
char *places_reply_legacy(long http_status, const char *body, size_t len,
                          int max_results);
char *places_reply_new(long http_status, const char *body, size_t len,
                       int max_results);

/* The legacy answer through cJSON alone (parse, cut, print): the path
 * places_reply_legacy() falls back to for what it cannot cut verbatim,
 * kept apart as the oracle its fuzz target compares against. */
char *places_reply_legacy_tree(long http_status, const char *body,
                               size_t len, int max_results);

/* A WHATSAT's places JSON without a copy where none is needed: the reply
 * is part[0] then part[1] (len[1] may be 0).  For a legacy answer cut
 * verbatim they point into the upstream body, which must outlive this;
 * otherwise part[0] is owned.  status and n_results are for the log.
 * 0, or -1 when memory is short. */
struct places_json {
    const char *part[2];
    size_t len[2];
    char *owned;
    char status[32];            /* places status word, cut to fit */
    int n_results;
};

int places_json_legacy(long http_status, const char *body, size_t len,
                       int max_results, struct places_json *out);
/* The parts of an answer places_cut took, and the cJSON path alone (for
 * one the scan refused, so it is not scanned again). */
struct places_cut;
void places_json_of_cut(const struct places_cut *cut, struct places_json *out);
int places_json_legacy_tree(long http_status, const char *body, size_t len,
                            int max_results, struct places_json *out);
int places_json_new(long http_status, const char *body, size_t len,
                    int max_results, struct places_json *out);
int places_json_fault(const char *status, const char *message,
                      struct places_json *out);
void places_json_free(struct places_json *j);

/* {"html_attributions": [], "results": [], "status": S,
 *  "error_message": M}, pretty-printed. */
char *places_reply_fault(const char *status, const char *message);

#endif
