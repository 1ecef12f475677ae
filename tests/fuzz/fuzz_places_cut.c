/* fuzz_places_cut: the verbatim cutter (places_reply_legacy, through
 * places_cut) against the cJSON path it replaced (places_reply_legacy_tree)
 * as the oracle, on any upstream bytes and any bound 1..20.  Both must
 * give the same status and the same results in the same order (the two
 * replies, parsed, are equal trees, members in order); when the cutter takes the
 * answer, its reply is the upstream bytes, is the promised shape, and
 * holds min(bound, count) results. */
#include "tests/fuzz/fuzz.h"

#include <cjson/cJSON.h>

#include "common/places_cut.h"
#include "common/places_reply.h"


/* Equal trees, members in order (cJSON_Compare looks members up by key,
 * so an object with a key twice never equals even itself). */
static int same(const cJSON *a, const cJSON *b)
{
    if ((a->type & 0xff) != (b->type & 0xff))
        return 0;
    if ((a->string == NULL) != (b->string == NULL) ||
        (a->string && strcmp(a->string, b->string) != 0))
        return 0;
    if (cJSON_IsString(a))
        return strcmp(a->valuestring, b->valuestring) == 0;
    if (cJSON_IsNumber(a))
        return a->valuedouble == b->valuedouble;
    if (cJSON_IsArray(a) || cJSON_IsObject(a)) {
        const cJSON *x = a->child, *y = b->child;
        for (; x && y; x = x->next, y = y->next)
            if (!same(x, y))
                return 0;
        return x == NULL && y == NULL;
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int max_results;
    long http_status;
    char *body, *fast, *slow;
    cJSON *a, *b, *results;
    struct places_cut cut;

    if (fuzz_places_input(data, size, &max_results, &http_status, &body,
                          &size) < 0)
        return 0;

    fast = places_reply_legacy(http_status, body, size, max_results);
    slow = places_reply_legacy_tree(http_status, body, size, max_results);
    FUZZ_CHECK(fast != NULL && slow != NULL);
    FUZZ_CHECK(strstr(fast, "\n\n") == NULL);
    FUZZ_CHECK(fast[0] != '\0' && fast[strlen(fast) - 1] != '\n');
    a = cJSON_Parse(fast);
    b = cJSON_Parse(slow);
    FUZZ_CHECK(cJSON_IsObject(a) && cJSON_IsObject(b));
    FUZZ_CHECK(same(a, b));
    results = cJSON_GetObjectItemCaseSensitive(a, "results");
    FUZZ_CHECK(cJSON_IsArray(results));
    FUZZ_CHECK(cJSON_GetArraySize(results) <= max_results);

    if (places_cut_legacy(body, size, max_results, &cut) == 0) {
        size_t n = cut.head_len + cut.tail_len;

        FUZZ_CHECK(fuzz_within(cut.head, cut.head_len, body, size));
        FUZZ_CHECK(fuzz_within(cut.tail, cut.tail_len, body, size));
        FUZZ_CHECK(strlen(fast) == n);
        FUZZ_CHECK(memcmp(fast, cut.head, cut.head_len) == 0);
        FUZZ_CHECK(cut.tail_len == 0 ||
                   memcmp(fast + cut.head_len, cut.tail, cut.tail_len) == 0);
        FUZZ_CHECK(cut.n_results == cJSON_GetArraySize(results));
        /* Pretty-printed: the root's members are on lines of their own. */
        FUZZ_CHECK(fast[0] == '{' && strchr(fast, '\n') != NULL);
    }
    cJSON_Delete(a);
    cJSON_Delete(b);
    free(fast);
    free(slow);
    free(body);
    return 0;
}
