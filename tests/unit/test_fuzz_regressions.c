/* Regressions found by the libFuzzer targets in tests/fuzz/: each test
 * holds the input that broke an invariant (also kept in the target's seed
 * corpus) and checks the invariant directly. */
#include "tests/unit/unit.h"

#include <cjson/cJSON.h>
#include <time.h>

#include "common/places_reply.h"
#include "common/protocol.h"

/* fuzz_client_line: a radius > 0 whose first 17 fraction digits were all
 * zero came back as 0 km (only those 17 digits were summed), though the
 * metres text was right. */
static void test_tiny_radius_is_not_zero_km(void **state)
{
    struct proto_request r;

    (void)state;
    assert_int_equal(proto_parse_request(
                         LIT("WHATSAT kiwi 0.0000000000000000000001387565421 20\n"),
                         &r),
                     PROTO_WHATSAT);
    assert_true(r.u.whatsat.radius_km > 0);
    assert_float_equal(r.u.whatsat.radius_km / 1.387565421e-22, 1.0, 1e-12);
    assert_string_equal(r.u.whatsat.radius_m,
                        "0.0000000000000000001387565421");
}

/* fuzz_places_reply: a legacy answer with "results" twice kept both; the
 * first was cut to the bound, the second reached the client whole (and a
 * JSON reader that keeps the last key sees it). */
static void test_repeated_results_key_dropped(void **state)
{
    static const char body[] =
        "{\"results\":[],\"status\":\"OK\",\"status\":\"x\","
        "\"results\":[1,2,3,4,5],\"html_attributions\":[]}";
    char *out = places_reply_legacy(200, LIT(body), 2);
    cJSON *root, *item;
    int n_results = 0, n_status = 0;

    (void)state;
    assert_non_null(out);
    root = cJSON_Parse(out);
    assert_non_null(root);
    cJSON_ArrayForEach(item, root) {
        n_results += strcmp(item->string, "results") == 0;
        n_status += strcmp(item->string, "status") == 0;
    }
    assert_int_equal(n_results, 1);
    assert_int_equal(n_status, 1);
    assert_int_equal(
        cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(root, "results")),
        0);
    assert_string_equal(
        cJSON_GetObjectItemCaseSensitive(root, "status")->valuestring, "OK");
    cJSON_Delete(root);
    free(out);
}

/* Found reading the path the fuzzer covers (its inputs are too short to
 * show it): cutting results deleted from the end by index, a walk per
 * item, so 160 KB of upstream list stalled the node's loop for a minute. */
static void test_long_results_cut_in_linear_time(void **state)
{
    size_t n = 300000, len = 0;
    char *body = malloc(n * 2 + 64), *out;
    struct timespec t0, t1;
    cJSON *root;

    (void)state;
    assert_non_null(body);
    len += (size_t)sprintf(body, "{\"status\":\"OK\",\"results\":[0");
    for (size_t i = 1; i < n; i++) {
        body[len++] = ',';
        body[len++] = '0';
    }
    len += (size_t)sprintf(body + len, "]}");
    clock_gettime(CLOCK_MONOTONIC, &t0);
    out = places_reply_legacy(200, body, len, 20);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_non_null(out);
    /* Linear work takes well under a second, even under ASan. */
    assert_true(t1.tv_sec - t0.tv_sec < 5);
    root = cJSON_Parse(out);
    assert_int_equal(
        cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(root, "results")),
        20);
    cJSON_Delete(root);
    free(out);
    free(body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tiny_radius_is_not_zero_km),
        cmocka_unit_test(test_repeated_results_key_dropped),
        cmocka_unit_test(test_long_results_cut_in_linear_time),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
