#include "nearby.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "util.h"

/* Place fields this emulator fills in. */
enum field {
    F_ID = 1 << 0,
    F_NAME = 1 << 1,
    F_DISPLAY_NAME = 1 << 2,
    F_FORMATTED_ADDRESS = 1 << 3,
    F_SHORT_ADDRESS = 1 << 4,
    F_LOCATION = 1 << 5,
    F_VIEWPORT = 1 << 6,
    F_TYPES = 1 << 7,
    F_PRIMARY_TYPE = 1 << 8,
    F_ATTRIBUTIONS = 1 << 9,
    F_ALL = (1 << 10) - 1,
};

static const struct {
    const char *name;
    unsigned bit;
} fields[] = {
    {"id", F_ID},
    {"name", F_NAME},
    {"displayName", F_DISPLAY_NAME},
    {"formattedAddress", F_FORMATTED_ADDRESS},
    {"shortFormattedAddress", F_SHORT_ADDRESS},
    {"location", F_LOCATION},
    {"viewport", F_VIEWPORT},
    {"types", F_TYPES},
    {"primaryType", F_PRIMARY_TYPE},
    {"attributions", F_ATTRIBUTIONS},
};

#define VIEWPORT_HALF_M 2000.0

struct request {
    double lat, lng, radius;
    int max;
    int wants_locality;         /* the type filters let localities through */
    char language[36];
};

/* A field path: identifiers joined by dots. */
static int path_ok(const char *s, size_t n)
{
    int start = 1;

    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '.') {
            if (start)
                return 0;
            start = 1;
        } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                   c == '_' || (!start && c >= '0' && c <= '9')) {
            start = 0;
        } else {
            return 0;
        }
    }
    return !start;
}

/* Parse "places.displayName,places.location" into field bits.  Fields
 * Google has and this emulator lacks (rating, photos, ...) are accepted
 * and left out of the answer, as Google leaves out fields a place has no
 * data for.  0, or -1 with the offending path in bad. */
static int parse_mask(const char *mask, unsigned *out, char *bad, size_t cap)
{
    const char *p = mask;

    *out = 0;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        const char *s = p;

        while (n > 0 && (*s == ' ' || *s == '\t')) {
            s++;
            n--;
        }
        while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
            n--;
        if ((n == 1 && *s == '*') || (n == 6 && memcmp(s, "places", 6) == 0) ||
            (n == 8 && memcmp(s, "places.*", 8) == 0)) {
            *out |= F_ALL;
        } else if (n > 7 && memcmp(s, "places.", 7) == 0 && path_ok(s + 7, n - 7)) {
            const char *f = s + 7;
            size_t fl = n - 7;
            const char *dot = memchr(f, '.', fl);

            if (dot)
                fl = (size_t)(dot - f);     /* displayName.text: the field */
            for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
                if (strlen(fields[i].name) == fl && memcmp(fields[i].name, f, fl) == 0)
                    *out |= fields[i].bit;
        } else if (n == 16 && memcmp(s, "routingSummaries", 16) == 0) {
            /* a real field of the answer; never filled here */
        } else {
            snprintf(bad, cap, "%.*s", (int)(n > 80 ? 80 : n), s);
            return -1;
        }
        if (!comma)
            return 0;
        p = comma + 1;
    }
}

static int is_number(const cJSON *j, double lo, double hi, double *out)
{
    if (!cJSON_IsNumber(j) || !isfinite(j->valuedouble) ||
        j->valuedouble < lo || j->valuedouble > hi)
        return 0;
    *out = j->valuedouble;
    return 1;
}

/* A list of type names: does it name a type every place here has? */
static int names_type(const cJSON *list, int political_too, int *named)
{
    const cJSON *t;

    *named = 0;
    if (list == NULL)
        return 0;
    if (!cJSON_IsArray(list))
        return -1;
    cJSON_ArrayForEach(t, list) {
        if (!cJSON_IsString(t))
            return -1;
        if (strcmp(t->valuestring, "locality") == 0 ||
            (political_too && strcmp(t->valuestring, "political") == 0))
            *named = 1;
    }
    return cJSON_GetArraySize(list);
}

/* NULL, or the message of a 400 INVALID_ARGUMENT. */
static const char *parse_body(const cJSON *root, struct request *rq,
                              char *msg, size_t cap)
{
    static const char *const known[] = {
        "includedTypes", "excludedTypes", "includedPrimaryTypes",
        "excludedPrimaryTypes", "maxResultCount", "locationRestriction",
        "rankPreference", "languageCode", "regionCode", "routingParameters",
    };
    const cJSON *item, *circle, *center, *j;
    double v;
    int named, count;

    if (!cJSON_IsObject(root))
        return "Invalid JSON payload received. Expected an object.";
    cJSON_ArrayForEach(item, root) {
        size_t i;
        for (i = 0; i < sizeof known / sizeof known[0]; i++)
            if (strcmp(item->string, known[i]) == 0)
                break;
        if (i == sizeof known / sizeof known[0]) {
            snprintf(msg, cap, "Invalid JSON payload received. Unknown name "
                     "\"%.64s\": Cannot find field.", item->string);
            return msg;
        }
    }
    j = cJSON_GetObjectItemCaseSensitive(root, "locationRestriction");
    if (j == NULL)
        return "locationRestriction is required.";
    circle = cJSON_GetObjectItemCaseSensitive(j, "circle");
    if (!cJSON_IsObject(j) || !cJSON_IsObject(circle))
        return "locationRestriction.circle is required.";
    center = cJSON_GetObjectItemCaseSensitive(circle, "center");
    if (!cJSON_IsObject(center) ||
        !is_number(cJSON_GetObjectItemCaseSensitive(center, "latitude"), -90, 90, &rq->lat) ||
        !is_number(cJSON_GetObjectItemCaseSensitive(center, "longitude"), -180, 180, &rq->lng))
        return "Invalid locationRestriction.circle.center: want latitude in "
               "[-90, 90] and longitude in [-180, 180].";
    if (!is_number(cJSON_GetObjectItemCaseSensitive(circle, "radius"), 0,
                   PLACES_MAX_RADIUS_M, &rq->radius) || rq->radius <= 0)
        return "Invalid locationRestriction.circle.radius: must be greater "
               "than 0.0 and at most 50000.0.";
    rq->max = NEARBY_MAX;
    j = cJSON_GetObjectItemCaseSensitive(root, "maxResultCount");
    if (j) {
        if (!is_number(j, 1, NEARBY_MAX, &v) || v != floor(v))
            return "maxResultCount must be an integer between 1 and 20, inclusive.";
        rq->max = (int)v;
    }
    j = cJSON_GetObjectItemCaseSensitive(root, "rankPreference");
    if (j && (!cJSON_IsString(j) ||
              (strcmp(j->valuestring, "DISTANCE") != 0 &&
               strcmp(j->valuestring, "POPULARITY") != 0 &&
               strcmp(j->valuestring, "RANK_PREFERENCE_UNSPECIFIED") != 0)))
        return "Invalid rankPreference: want DISTANCE or POPULARITY.";
    snprintf(rq->language, sizeof rq->language, "en");
    j = cJSON_GetObjectItemCaseSensitive(root, "languageCode");
    if (j) {
        size_t n = cJSON_IsString(j) ? strlen(j->valuestring) : 0;
        if (n == 0 || n >= sizeof rq->language ||
            strspn(j->valuestring, "abcdefghijklmnopqrstuvwxyz"
                   "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-") != n)
            return "Invalid languageCode.";
        memcpy(rq->language, j->valuestring, n + 1);
    }
    j = cJSON_GetObjectItemCaseSensitive(root, "regionCode");
    if (j && !cJSON_IsString(j))
        return "Invalid regionCode.";
    /* Every place here is a locality (types locality, political). */
    rq->wants_locality = 1;
    count = names_type(cJSON_GetObjectItemCaseSensitive(root, "includedTypes"), 1, &named);
    if (count < 0)
        return "Invalid includedTypes: want a list of type names.";
    if (count > 0 && !named)
        rq->wants_locality = 0;
    count = names_type(cJSON_GetObjectItemCaseSensitive(root, "excludedTypes"), 1, &named);
    if (count < 0)
        return "Invalid excludedTypes: want a list of type names.";
    if (named)
        rq->wants_locality = 0;
    count = names_type(cJSON_GetObjectItemCaseSensitive(root, "includedPrimaryTypes"), 0, &named);
    if (count < 0)
        return "Invalid includedPrimaryTypes: want a list of type names.";
    if (count > 0 && !named)
        rq->wants_locality = 0;
    count = names_type(cJSON_GetObjectItemCaseSensitive(root, "excludedPrimaryTypes"), 0, &named);
    if (count < 0)
        return "Invalid excludedPrimaryTypes: want a list of type names.";
    if (named)
        rq->wants_locality = 0;
    return NULL;
}

static cJSON *lat_lng(double lat, double lng)
{
    return util_json_lat_lng(lat, lng, "latitude", "longitude");
}

static cJSON *place_json(const struct places_ctx *ctx, const struct place *p,
                         unsigned mask, const char *language)
{
    cJSON *o = cJSON_CreateObject(), *t;
    char id[DATA_ID_LEN + 1], name[DATA_ID_LEN + 8], text[512];

    data_place_id(&ctx->data, p, id);
    if (mask & F_NAME) {
        snprintf(name, sizeof name, "places/%s", id);
        cJSON_AddStringToObject(o, "name", name);
    }
    if (mask & F_ID)
        cJSON_AddStringToObject(o, "id", id);
    if (mask & F_TYPES) {
        t = cJSON_AddArrayToObject(o, "types");
        cJSON_AddItemToArray(t, cJSON_CreateString("locality"));
        cJSON_AddItemToArray(t, cJSON_CreateString("political"));
    }
    if (mask & F_FORMATTED_ADDRESS) {
        data_address(&ctx->data, p, text, sizeof text);
        cJSON_AddStringToObject(o, "formattedAddress", text);
    }
    if (mask & F_LOCATION)
        cJSON_AddItemToObject(o, "location", lat_lng(p->lat, p->lng));
    if (mask & F_VIEWPORT) {
        double dlat = VIEWPORT_HALF_M / GRID_EARTH_RADIUS_M * 180.0 / M_PI;
        double c = cos(p->lat * M_PI / 180.0);
        double dlng = fmin(dlat / (c > 0.01 ? c : 0.01), 179);

        t = cJSON_AddObjectToObject(o, "viewport");
        cJSON_AddItemToObject(t, "low", lat_lng(fmax(p->lat - dlat, -90),
                                                util_wrap_lng(p->lng - dlng)));
        cJSON_AddItemToObject(t, "high", lat_lng(fmin(p->lat + dlat, 90),
                                                 util_wrap_lng(p->lng + dlng)));
    }
    if (mask & F_DISPLAY_NAME) {
        t = cJSON_AddObjectToObject(o, "displayName");
        cJSON_AddStringToObject(t, "text", p->name);
        cJSON_AddStringToObject(t, "languageCode", language);
    }
    if (mask & F_SHORT_ADDRESS) {
        data_vicinity(&ctx->data, p, text, sizeof text);
        cJSON_AddStringToObject(o, "shortFormattedAddress", text);
    }
    if (mask & F_PRIMARY_TYPE)
        cJSON_AddStringToObject(o, "primaryType", "locality");
    if (mask & F_ATTRIBUTIONS) {
        cJSON *a = cJSON_CreateObject();
        t = cJSON_AddArrayToObject(o, "attributions");
        cJSON_AddStringToObject(a, "provider", "GeoNames (CC BY 4.0)");
        cJSON_AddStringToObject(a, "providerUri", "https://www.geonames.org/");
        cJSON_AddItemToArray(t, a);
    }
    return o;
}

static int answer_forced(const struct places_ctx *ctx, struct reply *r)
{
    switch (ctx->force) {
    case FORCE_NONE:
        return 0;
    case FORCE_ZERO_RESULTS:
        places_reply_json(r, 200, "ZERO_RESULTS", cJSON_CreateObject());
        break;
    case FORCE_INVALID_REQUEST:
        places_reply_error(r, 400, "INVALID_ARGUMENT", "Forced by --force-status.");
        break;
    case FORCE_REQUEST_DENIED:
        places_reply_error(r, 403, "PERMISSION_DENIED", "Forced by --force-status.");
        break;
    case FORCE_OVER_QUERY_LIMIT:
        places_reply_error(r, 429, "RESOURCE_EXHAUSTED",
                           "Quota exceeded (forced by --force-status).");
        break;
    case FORCE_UNKNOWN_ERROR:
        places_reply_error(r, 500, "INTERNAL", "Forced by --force-status.");
        break;
    case FORCE_HTTP:
        places_reply_error(r, ctx->force_http, places_http_status(ctx->force_http),
                           "Forced by --force-status.");
        break;
    }
    return 1;
}

void nearby_answer(const struct places_ctx *ctx, const struct nearby_args *a,
                   struct reply *r)
{
    struct grid_hit hits[NEARBY_MAX];
    struct request rq;
    char msg[256], bad[96];
    const char *why;
    unsigned mask;
    size_t n = 0, total;
    cJSON *root, *list;

    if (answer_forced(ctx, r))
        return;
    switch (places_check_key(ctx, a->key)) {
    case KEY_MISSING:
        places_reply_error(r, 403, "PERMISSION_DENIED",
                           "The request is missing a valid API key.");
        return;
    case KEY_WRONG:
        places_reply_error(r, 400, "INVALID_ARGUMENT",
                           "API key not valid. Please pass a valid API key.");
        return;
    case KEY_OK:
        break;
    }
    if (a->field_mask == NULL || a->field_mask[0] == '\0') {
        places_reply_error(r, 400, "INVALID_ARGUMENT",
                           "FieldMask is a required parameter. Set it with the "
                           "X-Goog-FieldMask header, e.g. "
                           "places.displayName,places.location or *.");
        return;
    }
    if (parse_mask(a->field_mask, &mask, bad, sizeof bad) < 0) {
        snprintf(msg, sizeof msg, "Invalid field mask: \"%s\" is not a field "
                 "of SearchNearbyResponse.", bad);
        places_reply_error(r, 400, "INVALID_ARGUMENT", msg);
        return;
    }
    /* The length takes in the terminating NUL, which cJSON wants to see
     * right after the value; a NUL inside the body is refused first. */
    root = memchr(a->body, '\0', a->body_len) ? NULL
         : cJSON_ParseWithLengthOpts(a->body, a->body_len + 1, NULL, 1);
    if (root == NULL) {
        places_reply_error(r, 400, "INVALID_ARGUMENT",
                           "Invalid JSON payload received.");
        return;
    }
    why = parse_body(root, &rq, msg, sizeof msg);
    cJSON_Delete(root);
    if (why) {
        places_reply_error(r, 400, "INVALID_ARGUMENT", why);
        return;
    }
    if (rq.wants_locality)
        n = grid_query(&ctx->grid, rq.lat, rq.lng, rq.radius, (size_t)rq.max,
                       hits, &total);
    root = cJSON_CreateObject();
    if (n > 0) {
        list = cJSON_AddArrayToObject(root, "places");
        for (size_t i = 0; i < n; i++)
            cJSON_AddItemToArray(list, place_json(ctx, &ctx->data.places[hits[i].id],
                                                  mask, rq.language));
    }
    places_reply_json(r, 200, n ? "OK" : "ZERO_RESULTS", root);
    r->count = n;
}
