/* fuzz_places_reply: places_reply_legacy() and places_reply_new() on any
 * upstream bytes, any bound 1..20 and any HTTP status.  What a WHATSAT
 * client gets must always be the promised shape: one JSON object with a
 * "results" array no longer than the bound and a "status" string, no key
 * twice, and no empty line (the reply ends at the first "\n\n"). */
#include "tests/fuzz/fuzz.h"

#include <cjson/cJSON.h>

#include "common/places_reply.h"


static int promised(const char *key)
{
    return strcmp(key, "html_attributions") == 0 ||
           strcmp(key, "results") == 0 || strcmp(key, "status") == 0 ||
           strcmp(key, "error_message") == 0;
}

static void check_reply(const char *out, int max_results)
{
    size_t len;
    cJSON *root, *item, *results = NULL, *status = NULL;

    FUZZ_CHECK(out != NULL);
    len = strlen(out);
    FUZZ_CHECK(len > 0);
    FUZZ_CHECK(strstr(out, "\n\n") == NULL);
    FUZZ_CHECK(out[len - 1] != '\n');
    root = cJSON_ParseWithLength(out, len);
    FUZZ_CHECK(cJSON_IsObject(root));
    /* Each promised key once: a client's JSON reader may keep the last
     * of two, and a second "results" would escape the bound.  (Other
     * keys of a legacy answer pass through as Google sent them.) */
    cJSON_ArrayForEach(item, root) {
        FUZZ_CHECK(item->string != NULL);
        if (!promised(item->string))
            continue;
        for (cJSON *later = item->next; later; later = later->next)
            FUZZ_CHECK(strcmp(item->string, later->string) != 0);
        if (strcmp(item->string, "results") == 0)
            results = item;
        else if (strcmp(item->string, "status") == 0)
            status = item;
    }
    FUZZ_CHECK(cJSON_IsArray(results));
    FUZZ_CHECK(cJSON_GetArraySize(results) <= max_results);
    FUZZ_CHECK(cJSON_IsString(status) && status->valuestring[0] != '\0');
    cJSON_Delete(root);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int max_results;
    long http_status;
    char *body, *out;

    if (fuzz_places_input(data, size, &max_results, &http_status, &body,
                          &size) < 0)
        return 0;

    out = places_reply_legacy(http_status, body, size, max_results);
    check_reply(out, max_results);
    free(out);
    out = places_reply_new(http_status, body, size, max_results);
    check_reply(out, max_results);
    free(out);
    free(body);
    return 0;
}
