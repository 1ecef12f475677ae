#include "places.h"

#include <cjson/cJSON.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum places_key places_check_key(const struct places_ctx *ctx,
                                 const char *key)
{
    size_t n;

    if (ctx->key == NULL)
        return KEY_OK;
    if (key == NULL || key[0] == '\0')
        return KEY_MISSING;
    n = strlen(ctx->key);
    if (strlen(key) != n || CRYPTO_memcmp(key, ctx->key, n) != 0)
        return KEY_WRONG;
    return KEY_OK;
}

int places_parse_force(const char *s, enum places_force *force,
                       unsigned *http)
{
    static const struct {
        const char *word;
        enum places_force force;
    } words[] = {
        {"ZERO_RESULTS", FORCE_ZERO_RESULTS},
        {"INVALID_REQUEST", FORCE_INVALID_REQUEST},
        {"REQUEST_DENIED", FORCE_REQUEST_DENIED},
        {"OVER_QUERY_LIMIT", FORCE_OVER_QUERY_LIMIT},
        {"UNKNOWN_ERROR", FORCE_UNKNOWN_ERROR},
    };

    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
        if (strcmp(s, words[i].word) == 0) {
            *force = words[i].force;
            *http = 0;
            return 0;
        }
    }
    if (strlen(s) == 3 && s[0] >= '4' && s[0] <= '5' && s[1] >= '0' &&
        s[1] <= '9' && s[2] >= '0' && s[2] <= '9') {
        *force = FORCE_HTTP;
        *http = (unsigned)atoi(s);
        return 0;
    }
    return -1;
}

const char *places_http_status(unsigned http)
{
    /* google.rpc.Code names for the codes Google maps them from. */
    switch (http) {
    case 400: return "INVALID_ARGUMENT";
    case 401: return "UNAUTHENTICATED";
    case 403: return "PERMISSION_DENIED";
    case 404: return "NOT_FOUND";
    case 409: return "ABORTED";
    case 429: return "RESOURCE_EXHAUSTED";
    case 499: return "CANCELLED";
    case 501: return "UNIMPLEMENTED";
    case 503: return "UNAVAILABLE";
    case 504: return "DEADLINE_EXCEEDED";
    default: return http >= 500 ? "INTERNAL" : "FAILED_PRECONDITION";
    }
}

static const char oom_body[] =
    "{\"error\":{\"code\":500,\"message\":\"out of memory\","
    "\"status\":\"INTERNAL\"}}\n";

void places_reply_json(struct reply *r, unsigned http, const char *status,
                       void *item)
{
    char *text = item ? cJSON_Print(item) : NULL;
    size_t n;

    cJSON_Delete(item);
    r->content_type = "application/json; charset=UTF-8";
    if (text == NULL) {
        r->http = 500;
        r->status = "INTERNAL";
        r->body = strdup(oom_body);
        r->len = r->body ? strlen(r->body) : 0;
        return;
    }
    /* A final newline, as Google's answers end with one. */
    n = strlen(text);
    r->body = realloc(text, n + 2);
    if (r->body == NULL)
        r->body = text;
    else
        r->body[n++] = '\n';
    r->body[n] = '\0';
    r->len = n;
    r->http = http;
    r->status = status;
}

void places_reply_error(struct reply *r, unsigned http, const char *status,
                        const char *message)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *err = cJSON_AddObjectToObject(root, "error");

    if (err) {
        cJSON_AddNumberToObject(err, "code", http);
        cJSON_AddStringToObject(err, "message", message);
        cJSON_AddStringToObject(err, "status", status);
    }
    places_reply_json(r, http, status, err ? root : (cJSON_Delete(root), NULL));
}

void reply_free(struct reply *r)
{
    free(r->body);
    r->body = NULL;
    r->len = 0;
}
