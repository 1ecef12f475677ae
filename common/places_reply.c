#include "places_reply.h"

#include <cjson/cJSON.h>

#include "places_cut.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *join(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 1;
    char *out = malloc(n);

    if (out)
        snprintf(out, n, "%s%s", a, b);
    return out;
}

/* RFC 3986 unreserved characters pass; everything else is %XX. */
static void percent_encode(const char *in, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;

    for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
            (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.' ||
            *p == '~') {
            if (o + 2 > cap)
                break;
            out[o++] = (char)*p;
        } else {
            if (o + 4 > cap)
                break;
            out[o++] = '%';
            out[o++] = hex[*p >> 4];
            out[o++] = hex[*p & 15];
        }
    }
    out[o] = '\0';
}

char *places_legacy_url(const char *base, const struct places_query *q,
                        const char *key)
{
    char key_enc[1024 * 3 + 1] = "";
    char *out;
    size_t n;

    if (key && *key) {
        if (strlen(key) > 1024)
            return NULL;
        percent_encode(key, key_enc, sizeof key_enc);
    }
    n = strlen(base) + strlen(key_enc) + 160;
    out = malloc(n);
    if (!out)
        return NULL;
    snprintf(out, n,
             "%s/maps/api/place/nearbysearch/json?location=%.7f,%.7f&radius=%s%s%s",
             base, q->lat, q->lon, q->radius_m, *key_enc ? "&key=" : "",
             key_enc);
    return out;
}

char *places_new_url(const char *base)
{
    return join(base, "/v1/places:searchNearby");
}

char *places_new_body(const struct places_query *q)
{
    char *out = malloc(256);

    if (out)
        snprintf(out, 256,
                 "{\"locationRestriction\":{\"circle\":{\"center\":"
                 "{\"latitude\":%.7f,\"longitude\":%.7f},\"radius\":%s}},"
                 "\"maxResultCount\":%d}",
                 q->lat, q->lon, q->radius_m, q->max_results);
    return out;
}

static void note(struct places_json *info, const char *status, int n)
{
    if (info) {
        snprintf(info->status, sizeof info->status, "%s", status);
        info->n_results = n;
    }
}

char *places_reply_fault(const char *status, const char *message)
{
    cJSON *root = cJSON_CreateObject();
    char *out = NULL;

    if (!root)
        return NULL;
    cJSON_AddItemToObject(root, "html_attributions", cJSON_CreateArray());
    cJSON_AddItemToObject(root, "results", cJSON_CreateArray());
    cJSON_AddStringToObject(root, "status", status);
    cJSON_AddStringToObject(root, "error_message", message);
    out = cJSON_Print(root);
    cJSON_Delete(root);
    return out;
}

static cJSON *parse_object(const char *body, size_t len)
{
    cJSON *root;

    if (body == NULL || len == 0)
        return NULL;
    root = cJSON_ParseWithLength(body, len);
    if (root && !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}

static char *http_error(long http_status, const char *what,
                        struct places_json *info)
{
    char msg[160];

    if (http_status == 0)
        snprintf(msg, sizeof msg, "places service gave %s", what);
    else
        snprintf(msg, sizeof msg, "places service answered HTTP %ld with %s",
                 http_status, what);
    note(info, "UNKNOWN_ERROR", 0);
    return places_reply_fault("UNKNOWN_ERROR", msg);
}

/* cJSON keeps every copy of a repeated key and finds the first; a second
 * "results" would reach the client uncut.  Keep the first of each key the
 * reply promises (a walk per key, so a huge object stays linear). */
static void drop_repeats(cJSON *root)
{
    static const char *keys[] = {"html_attributions", "results", "status",
                                 "error_message"};

    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        cJSON *item = root->child, *next;
        int seen = 0;

        for (; item; item = next) {
            next = item->next;
            if (item->string == NULL || strcmp(item->string, keys[k]) != 0)
                continue;
            if (seen)
                cJSON_Delete(cJSON_DetachItemViaPointer(root, item));
            seen = 1;
        }
    }
}

/* Keep the first max items.  Walk once: deleting by index from the end
 * costs a walk per item, hours for a few megabytes of upstream list. */
static void cut_array(cJSON *array, int max)
{
    cJSON *item = array->child;

    if (max < 1) {
        while (array->child)
            cJSON_Delete(cJSON_DetachItemViaPointer(array, array->child));
        return;
    }
    for (int i = 1; item && i < max; i++)
        item = item->next;
    while (item && item->next)
        cJSON_Delete(cJSON_DetachItemViaPointer(array, item->next));
}

static char *legacy_tree(long http_status, const char *body, size_t len,
                         int max_results, struct places_json *info)
{
    cJSON *root = parse_object(body, len), *status, *results, *msg;
    char *out;

    if (!root)
        return http_error(http_status, "no JSON object", info);
    drop_repeats(root);
    status = cJSON_GetObjectItemCaseSensitive(root, "status");
    results = cJSON_GetObjectItemCaseSensitive(root, "results");
    if (!cJSON_IsString(status) || status->valuestring[0] == '\0') {
        cJSON_Delete(root);
        return http_error(http_status, "no status", info);
    }
    if (strcmp(status->valuestring, "OK") != 0 &&
        strcmp(status->valuestring, "ZERO_RESULTS") != 0) {
        char text[512];
        msg = cJSON_GetObjectItemCaseSensitive(root, "error_message");
        snprintf(text, sizeof text, "%s",
                 cJSON_IsString(msg) ? msg->valuestring
                                     : "places service refused the request");
        out = places_reply_fault(status->valuestring, text);
        note(info, status->valuestring, 0);
        cJSON_Delete(root);
        return out;
    }
    if (!cJSON_IsArray(results)) {
        /* ZERO_RESULTS may come without a list; the shape promises one. */
        cJSON_DeleteItemFromObjectCaseSensitive(root, "results");
        cJSON_AddItemToObject(root, "results", cJSON_CreateArray());
    } else {
        cut_array(results, max_results);
    }
    note(info, status->valuestring,
         cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(root, "results")));
    if (!cJSON_GetObjectItemCaseSensitive(root, "html_attributions"))
        cJSON_AddItemToObject(root, "html_attributions", cJSON_CreateArray());
    out = cJSON_Print(root);
    cJSON_Delete(root);
    return out;
}

char *places_reply_legacy_tree(long http_status, const char *body,
                               size_t len, int max_results)
{
    return legacy_tree(http_status, body, len, max_results, NULL);
}

/* Copy a number member, if it is one. */
static void copy_number(cJSON *to, const char *to_name, cJSON *from,
                        const char *from_name)
{
    cJSON *v = cJSON_GetObjectItemCaseSensitive(from, from_name);

    if (cJSON_IsNumber(v))
        cJSON_AddNumberToObject(to, to_name, v->valuedouble);
}

static cJSON *latlng(cJSON *from)
{
    cJSON *o = cJSON_CreateObject();

    copy_number(o, "lat", from, "latitude");
    copy_number(o, "lng", from, "longitude");
    return o;
}

static cJSON *map_place(cJSON *p)
{
    cJSON *r = cJSON_CreateObject(), *geometry = cJSON_CreateObject();
    cJSON *loc = cJSON_GetObjectItemCaseSensitive(p, "location");
    cJSON *vp = cJSON_GetObjectItemCaseSensitive(p, "viewport");
    cJSON *name = cJSON_GetObjectItemCaseSensitive(p, "displayName");
    cJSON *id = cJSON_GetObjectItemCaseSensitive(p, "id");
    cJSON *types = cJSON_GetObjectItemCaseSensitive(p, "types");
    cJSON *addr = cJSON_GetObjectItemCaseSensitive(p, "formattedAddress");

    if (cJSON_IsObject(loc))
        cJSON_AddItemToObject(geometry, "location", latlng(loc));
    if (cJSON_IsObject(vp)) {
        cJSON *v = cJSON_CreateObject();
        cJSON *ne = cJSON_GetObjectItemCaseSensitive(vp, "high");
        cJSON *sw = cJSON_GetObjectItemCaseSensitive(vp, "low");
        if (cJSON_IsObject(ne))
            cJSON_AddItemToObject(v, "northeast", latlng(ne));
        if (cJSON_IsObject(sw))
            cJSON_AddItemToObject(v, "southwest", latlng(sw));
        cJSON_AddItemToObject(geometry, "viewport", v);
    }
    cJSON_AddItemToObject(r, "geometry", geometry);
    if (cJSON_IsObject(name)) {
        cJSON *text = cJSON_GetObjectItemCaseSensitive(name, "text");
        if (cJSON_IsString(text))
            cJSON_AddStringToObject(r, "name", text->valuestring);
    }
    if (cJSON_IsString(id)) {
        cJSON_AddStringToObject(r, "place_id", id->valuestring);
        cJSON_AddStringToObject(r, "reference", id->valuestring);
    }
    cJSON_AddStringToObject(r, "scope", "GOOGLE");
    if (cJSON_IsArray(types))
        cJSON_AddItemToObject(r, "types", cJSON_Duplicate(types, 1));
    else
        cJSON_AddItemToObject(r, "types", cJSON_CreateArray());
    if (cJSON_IsString(addr))
        cJSON_AddStringToObject(r, "vicinity", addr->valuestring);
    return r;
}

static char *new_tree(long http_status, const char *body, size_t len,
                      int max_results, struct places_json *info)
{
    cJSON *root = parse_object(body, len), *err, *places, *out_root, *results;
    char *out;
    int n = 0;

    if (!root)
        return http_error(http_status, "no JSON object", info);
    err = cJSON_GetObjectItemCaseSensitive(root, "error");
    if (cJSON_IsObject(err) || (http_status != 0 && http_status != 200)) {
        cJSON *st = cJSON_GetObjectItemCaseSensitive(err, "status");
        cJSON *msg = cJSON_GetObjectItemCaseSensitive(err, "message");
        char text[512];

        snprintf(text, sizeof text, "%s",
                 cJSON_IsString(msg) ? msg->valuestring
                                     : "places service refused the request");
        const char *word = cJSON_IsString(st) && st->valuestring[0]
                               ? st->valuestring : "UNKNOWN_ERROR";
        out = places_reply_fault(word, text);
        note(info, word, 0);
        cJSON_Delete(root);
        return out;
    }
    places = cJSON_GetObjectItemCaseSensitive(root, "places");
    if (places && !cJSON_IsArray(places)) {
        cJSON_Delete(root);
        return http_error(http_status, "a malformed places list", info);
    }
    out_root = cJSON_CreateObject();
    cJSON_AddItemToObject(out_root, "html_attributions", cJSON_CreateArray());
    results = cJSON_CreateArray();
    cJSON_AddItemToObject(out_root, "results", results);
    if (places) {
        cJSON *p;
        cJSON_ArrayForEach(p, places) {
            if (n >= max_results)
                break;
            if (!cJSON_IsObject(p))
                continue;
            cJSON_AddItemToArray(results, map_place(p));
            n++;
        }
    }
    cJSON_AddStringToObject(out_root, "status", n ? "OK" : "ZERO_RESULTS");
    note(info, n ? "OK" : "ZERO_RESULTS", n);
    out = cJSON_Print(out_root);
    cJSON_Delete(out_root);
    cJSON_Delete(root);
    return out;
}

char *places_reply_new(long http_status, const char *body, size_t len,
                       int max_results)
{
    return new_tree(http_status, body, len, max_results, NULL);
}

static int own(struct places_json *out, char *text)
{
    if (!text)
        return -1;
    out->owned = text;
    out->part[0] = text;
    out->len[0] = strlen(text);
    return 0;
}

void places_json_of_cut(const struct places_cut *cut, struct places_json *out)
{
    out->part[0] = cut->head;
    out->len[0] = cut->head_len;
    out->part[1] = cut->tail;
    out->len[1] = cut->tail_len;
    out->owned = NULL;
    /* Not note(): snprintf per reply for a constant word. */
    memcpy(out->status, cut->zero_results ? "ZERO_RESULTS" : "OK",
           cut->zero_results ? 13 : 3);
    out->n_results = cut->n_results;
}

int places_json_legacy_tree(long http_status, const char *body, size_t len,
                            int max_results, struct places_json *out)
{
    memset(out, 0, sizeof *out);
    return own(out, legacy_tree(http_status, body, len, max_results, out));
}

int places_json_legacy(long http_status, const char *body, size_t len,
                       int max_results, struct places_json *out)
{
    struct places_cut cut;

    if (places_cut_legacy(body, len, max_results, &cut) == 0) {
        places_json_of_cut(&cut, out);
        return 0;
    }
    return places_json_legacy_tree(http_status, body, len, max_results, out);
}

int places_json_new(long http_status, const char *body, size_t len,
                    int max_results, struct places_json *out)
{
    memset(out, 0, sizeof *out);
    return own(out, new_tree(http_status, body, len, max_results, out));
}

int places_json_fault(const char *status, const char *message,
                      struct places_json *out)
{
    memset(out, 0, sizeof *out);
    note(out, status, 0);
    return own(out, places_reply_fault(status, message));
}

void places_json_free(struct places_json *j)
{
    free(j->owned);
    memset(j, 0, sizeof *j);
}

char *places_reply_legacy(long http_status, const char *body, size_t len,
                          int max_results)
{
    struct places_json j;
    char *out;

    if (places_json_legacy(http_status, body, len, max_results, &j) < 0)
        return NULL;
    out = malloc(j.len[0] + j.len[1] + 1);
    if (out) {
        memcpy(out, j.part[0], j.len[0]);
        if (j.len[1])
            memcpy(out + j.len[0], j.part[1], j.len[1]);
        out[j.len[0] + j.len[1]] = '\0';
    }
    places_json_free(&j);
    return out;
}
