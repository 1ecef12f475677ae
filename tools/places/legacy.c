#include "legacy.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>

#include "jsonw.h"
#include "util.h"

/* Page tokens: base64url of "1 OFFSET LAT LNG RADIUS" and a check of it.
 * The check only keeps typos and truncation out (it is no secret); a token
 * stays good across restarts, as long as the data does not change. */
#define TOKEN_CHECK 9
#define TOKEN_TEXT_MAX 96
#define TOKEN_MAX 200

/* The icons Google gives locality results. */
#define ICON_URL \
    "https://maps.gstatic.com/mapfiles/place_api/icons/v1/png_71/geocode-71.png"
#define ICON_BG "#7B9EB0"
#define ICON_MASK "https://maps.gstatic.com/mapfiles/place_api/icons/v2/generic_pinlet"

/* Half the side of a result's viewport, in metres. */
#define VIEWPORT_HALF_M 2000.0

struct query {
    double lat, lng, radius;
    int offset;                 /* first result of the page: 0, 20 or 40 */
};

static void token_check(const char *text, size_t n, unsigned char *out)
{
    static const char salt[] = "herd-places page token 1\n";
    unsigned char md[SHA256_DIGEST_LENGTH];
    unsigned char buf[sizeof salt + TOKEN_TEXT_MAX];

    memcpy(buf, salt, sizeof salt - 1);
    memcpy(buf + sizeof salt - 1, text, n);
    SHA256(buf, sizeof salt - 1 + n, md);
    memcpy(out, md, TOKEN_CHECK);
}

static int token_make(const struct query *q, char *out)
{
    unsigned char raw[TOKEN_TEXT_MAX + TOKEN_CHECK];
    int n = snprintf((char *)raw, TOKEN_TEXT_MAX, "1 %d %.17g %.17g %.17g",
                     q->offset, q->lat, q->lng, q->radius);

    if (n <= 0 || n >= TOKEN_TEXT_MAX)
        return -1;
    token_check((char *)raw, (size_t)n, raw + n);
    util_b64url_encode(raw, (size_t)n + TOKEN_CHECK, out);
    return 0;
}

static int token_read(const char *s, struct query *q)
{
    unsigned char raw[TOKEN_TEXT_MAX + TOKEN_CHECK + 4];
    unsigned char check[TOKEN_CHECK];
    char text[TOKEN_TEXT_MAX + 1];
    size_t len = strlen(s);
    long n;
    int version, used = 0;

    if (len == 0 || len > TOKEN_MAX)
        return -1;
    n = util_b64url_decode(s, len, raw, sizeof raw);
    if (n <= TOKEN_CHECK || n - TOKEN_CHECK >= TOKEN_TEXT_MAX)
        return -1;
    n -= TOKEN_CHECK;
    token_check((char *)raw, (size_t)n, check);
    if (memcmp(check, raw + n, TOKEN_CHECK) != 0)
        return -1;
    memcpy(text, raw, (size_t)n);
    text[n] = '\0';
    if (sscanf(text, "%d %d %lf %lf %lf%n", &version, &q->offset, &q->lat,
               &q->lng, &q->radius, &used) != 5 || text[used] != '\0')
        return -1;
    if (version != 1 || (q->offset != LEGACY_PAGE && q->offset != 2 * LEGACY_PAGE))
        return -1;
    if (!(q->lat >= -90 && q->lat <= 90 && q->lng >= -180 && q->lng <= 180 &&
          q->radius > 0 && q->radius <= PLACES_MAX_RADIUS_M))
        return -1;
    return 0;
}

/* One number of "LAT,LNG", spaces around it allowed (a '+' sign that was
 * not percent-encoded arrives as a space). */
static int number(const char *s, size_t n, double *out)
{
    while (n > 0 && *s == ' ') {
        s++;
        n--;
    }
    while (n > 0 && s[n - 1] == ' ')
        n--;
    return util_parse_decimal(s, n, out);
}

/* NULL, or why the request is invalid. */
static const char *parse_query(const struct legacy_args *a, struct query *q)
{
    const char *comma;

    q->offset = 0;
    if (a->pagetoken && a->pagetoken[0] != '\0')
        return token_read(a->pagetoken, q) < 0 ? "Invalid 'pagetoken' parameter." : NULL;
    if (a->location == NULL || a->location[0] == '\0')
        return "Missing the 'location' parameter.";
    comma = strchr(a->location, ',');
    if (comma == NULL ||
        number(a->location, (size_t)(comma - a->location), &q->lat) < 0 ||
        number(comma + 1, strlen(comma + 1), &q->lng) < 0 ||
        q->lat < -90 || q->lat > 90 || q->lng < -180 || q->lng > 180)
        return "Invalid 'location' parameter: want LAT,LNG in decimal degrees.";
    if (a->radius == NULL || a->radius[0] == '\0')
        return "Missing the 'radius' parameter.";
    if (number(a->radius, strlen(a->radius), &q->radius) < 0 ||
        !(q->radius > 0 && q->radius <= PLACES_MAX_RADIUS_M))
        return "Invalid 'radius' parameter: want metres in (0, 50000].";
    return NULL;
}

/* "lat" and "lng" of one point, as util_json_lat_lng() holds them. */
static void write_lat_lng(struct jsonw *w, double lat, double lng)
{
    char num[32];

    jsonw_object(w);
    JSONW_KEY(w, "lat");
    jsonw_raw(w, num, util_format_coord(lat, num));
    JSONW_KEY(w, "lng");
    jsonw_raw(w, num, util_format_coord(lng, num));
    jsonw_end(w);
}

/* One result, written where a cJSON tree of it would have printed. */
static void write_result(struct jsonw *w, const struct places_ctx *ctx,
                         const struct place *p)
{
    double dlat = VIEWPORT_HALF_M / GRID_EARTH_RADIUS_M * 180.0 / M_PI;
    double c = cos(p->lat * M_PI / 180.0);
    double dlng = dlat / (c > 0.01 ? c : 0.01);
    const char *id = data_place_id_text(&ctx->data, p);
    char vicinity[512];

    if (dlng > 179)
        dlng = 179;
    data_vicinity(&ctx->data, p, vicinity, sizeof vicinity);
    jsonw_object(w);
    JSONW_KEY(w, "geometry");
    jsonw_object(w);
    JSONW_KEY(w, "location");
    write_lat_lng(w, p->lat, p->lng);
    JSONW_KEY(w, "viewport");
    jsonw_object(w);
    JSONW_KEY(w, "northeast");
    write_lat_lng(w, fmin(p->lat + dlat, 90),
                  util_wrap_lng(p->lng + dlng));
    JSONW_KEY(w, "southwest");
    write_lat_lng(w, fmax(p->lat - dlat, -90),
                  util_wrap_lng(p->lng - dlng));
    jsonw_end(w);
    jsonw_end(w);
    JSONW_KEY(w, "icon");
    JSONW_STR(w, ICON_URL);
    JSONW_KEY(w, "icon_background_color");
    JSONW_STR(w, ICON_BG);
    JSONW_KEY(w, "icon_mask_base_uri");
    JSONW_STR(w, ICON_MASK);
    JSONW_KEY(w, "name");
    jsonw_string(w, p->name);
    JSONW_KEY(w, "place_id");
    jsonw_string(w, id);
    JSONW_KEY(w, "reference");
    jsonw_string(w, id);
    JSONW_KEY(w, "scope");
    JSONW_STR(w, "GOOGLE");
    JSONW_KEY(w, "types");
    jsonw_array(w);
    JSONW_STR(w, "locality");
    JSONW_STR(w, "political");
    jsonw_end(w);
    JSONW_KEY(w, "vicinity");
    jsonw_string(w, vicinity);
    jsonw_end(w);
}

/* The common frame of every answer. */
static cJSON *frame(void)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *attr = cJSON_AddArrayToObject(root, "html_attributions");

    cJSON_AddItemToArray(attr, cJSON_CreateString(PLACES_ATTRIBUTION));
    return root;
}

static void answer_status(struct reply *r, const char *status,
                          const char *message)
{
    cJSON *root = frame();

    cJSON_AddArrayToObject(root, "results");
    cJSON_AddStringToObject(root, "status", status);
    if (message)
        cJSON_AddStringToObject(root, "error_message", message);
    places_reply_json(r, 200, status, root);
}

static int answer_forced(const struct places_ctx *ctx, struct reply *r)
{
    char msg[128];

    switch (ctx->force) {
    case FORCE_NONE:
        return 0;
    case FORCE_ZERO_RESULTS:
        answer_status(r, "ZERO_RESULTS", NULL);
        break;
    case FORCE_INVALID_REQUEST:
        answer_status(r, "INVALID_REQUEST", "Forced by --force-status.");
        break;
    case FORCE_REQUEST_DENIED:
        answer_status(r, "REQUEST_DENIED", "Forced by --force-status.");
        break;
    case FORCE_OVER_QUERY_LIMIT:
        answer_status(r, "OVER_QUERY_LIMIT",
                      "You have exceeded your daily request quota for this API.");
        break;
    case FORCE_UNKNOWN_ERROR:
        answer_status(r, "UNKNOWN_ERROR", "Forced by --force-status.");
        break;
    case FORCE_HTTP:
        /* What a failing front end sends: an HTML page, not the API. */
        snprintf(msg, sizeof msg,
                 "<html><body><h1>Error %u</h1>Forced by --force-status.</body></html>\n",
                 ctx->force_http);
        r->body = strdup(msg);
        r->len = r->body ? strlen(r->body) : 0;
        r->http = ctx->force_http;
        r->content_type = "text/html; charset=UTF-8";
        r->status = places_http_status(ctx->force_http);
        break;
    }
    return 1;
}

void legacy_answer(const struct places_ctx *ctx, const struct legacy_args *a,
                   struct reply *r)
{
    struct grid_hit hits[LEGACY_MAX];
    struct query q;
    const char *why;
    size_t n, total, shown;
    struct jsonw w;

    if (answer_forced(ctx, r))
        return;
    switch (places_check_key(ctx, a->key)) {
    case KEY_MISSING:
        answer_status(r, "REQUEST_DENIED", "You must use an API key to "
                      "authenticate each request to Google Maps Platform APIs.");
        return;
    case KEY_WRONG:
        answer_status(r, "REQUEST_DENIED", "The provided API key is invalid.");
        return;
    case KEY_OK:
        break;
    }
    why = parse_query(a, &q);
    if (why) {
        answer_status(r, "INVALID_REQUEST", why);
        return;
    }
    n = grid_query(&ctx->grid, q.lat, q.lng, q.radius, LEGACY_MAX, hits, &total);
    if (n <= (size_t)q.offset) {
        /* Only a token can point past the end, and only if the data
         * changed since it was made. */
        answer_status(r, q.offset ? "INVALID_REQUEST" : "ZERO_RESULTS",
                      q.offset ? "Invalid 'pagetoken' parameter." : NULL);
        return;
    }
    shown = n - (size_t)q.offset;
    if (shown > LEGACY_PAGE)
        shown = LEGACY_PAGE;
    /* Written straight out (jsonw), byte for byte what cJSON_Print gave
     * for the same tree: building and printing a tree was most of an
     * answer's time. */
    jsonw_init(&w, 1024 + shown * 1024);
    jsonw_object(&w);
    jsonw_key(&w, "html_attributions");
    jsonw_array(&w);
    jsonw_string(&w, PLACES_ATTRIBUTION);
    jsonw_end(&w);
    if (n > (size_t)q.offset + LEGACY_PAGE) {
        struct query next = q;
        char token[TOKEN_MAX + 8];

        next.offset += LEGACY_PAGE;
        if (token_make(&next, token) == 0) {
            jsonw_key(&w, "next_page_token");
            jsonw_string(&w, token);
        }
    }
    jsonw_key(&w, "results");
    jsonw_array(&w);
    for (size_t i = 0; i < shown; i++)
        write_result(&w, ctx, &ctx->data.places[hits[q.offset + i].id]);
    jsonw_end(&w);
    jsonw_key(&w, "status");
    jsonw_string(&w, "OK");
    jsonw_end(&w);
    jsonw_raw(&w, "\n", 1);   /* a final newline, as Google's answers end */
    r->body = jsonw_finish(&w, &r->len);
    if (!r->body) {
        places_reply_error(r, 500, "INTERNAL", "out of memory");
        return;
    }
    r->content_type = "application/json; charset=UTF-8";
    r->http = 200;
    r->status = "OK";
    r->count = shown;
}
