/* places_cut: what it passes on verbatim (and where it cuts), and every
 * kind of answer it must leave to the cJSON path. */
#include "tests/unit/unit.h"

#include "common/places_cut.h"
#include "common/places_reply.h"

/* Google's layout: three spaces, "key" : value. */
#define GOOGLE3                                                             \
    "{\n   \"html_attributions\" : [],\n   \"results\" : [\n"                 \
    "      {\n         \"name\" : \"a\"\n      },\n"                          \
    "      {\n         \"name\" : \"b\"\n      },\n"                          \
    "      {\n         \"name\" : \"c\"\n      }\n"                           \
    "   ],\n   \"status\" : \"OK\"\n}\n"

static char *cut_text(const char *body, int max, int *n)
{
    struct places_cut c;
    char *out;

    if (places_cut_legacy(body, strlen(body), max, &c) < 0)
        return NULL;
    out = malloc(c.head_len + c.tail_len + 1);
    assert_non_null(out);
    memcpy(out, c.head, c.head_len);
    memcpy(out + c.head_len, c.tail, c.tail_len);
    out[c.head_len + c.tail_len] = '\0';
    if (n)
        *n = c.n_results;
    return out;
}

static void test_google_layout_cut_after_the_bound(void **state)
{
    int n;
    char *out;

    (void)state;
    out = cut_text(GOOGLE3, 1, &n);
    assert_non_null(out);
    assert_int_equal(n, 1);
    assert_string_equal(out,
        "{\n   \"html_attributions\" : [],\n   \"results\" : [\n"
        "      {\n         \"name\" : \"a\"\n      }\n"
        "   ],\n   \"status\" : \"OK\"\n}");
    free(out);
    /* At or past the count: the whole root, the trailing newline gone. */
    out = cut_text(GOOGLE3, 3, &n);
    assert_int_equal(n, 3);
    assert_int_equal(strlen(out), strlen(GOOGLE3) - 1);
    assert_memory_equal(out, GOOGLE3, strlen(out));
    free(out);
    out = cut_text(GOOGLE3, 20, &n);
    assert_int_equal(n, 3);
    free(out);
}

/* cJSON_Print's layout (the emulator's): tabs, elements on one line. */
static void test_cjson_layout_cut(void **state)
{
    static const char body[] =
        "{\n\t\"html_attributions\":\t[],\n\t\"results\":\t[{\n\t\t\t\"n\":\t1\n"
        "\t\t}, {\n\t\t\t\"n\":\t2\n\t\t}],\n\t\"status\":\t\"OK\"\n}";
    int n;
    char *out = cut_text(body, 1, &n), *tree;

    (void)state;
    assert_non_null(out);
    assert_int_equal(n, 1);
    /* What the cJSON path prints for it, byte for byte. */
    tree = places_reply_legacy_tree(200, body, strlen(body), 1);
    assert_string_equal(out, tree);
    free(tree);
    free(out);
}

static void test_zero_results(void **state)
{
    static const char body[] =
        "{\n  \"html_attributions\": [],\n  \"results\": [],\n"
        "  \"status\": \"ZERO_RESULTS\"\n}";
    struct places_cut c;

    (void)state;
    assert_int_equal(places_cut_legacy(LIT(body), 5, &c), 0);
    assert_int_equal(c.n_results, 0);
    assert_int_equal(c.zero_results, 1);
    assert_int_equal(c.head_len, strlen(body));
    assert_int_equal(c.tail_len, 0);
}

/* Each must go to the cJSON path. */
static void test_refused(void **state)
{
    static const char *bad[] = {
        /* not pretty-printed */
        "{\"html_attributions\":[],\"results\":[1],\"status\":\"OK\"}",
        "{\n\"html_attributions\":[],\"results\":[1],\n\"status\":\"OK\"\n}",
        "{\n\"html_attributions\":[],\n\"results\":[1],\n\"status\":\"OK\"}",
        /* an empty line, a whitespace-only line, CR */
        "{\n\n\"html_attributions\":[],\n\"results\":[1],\n\"status\":\"OK\"\n}",
        "{\n \n\"html_attributions\":[],\n\"results\":[1],\n\"status\":\"OK\"\n}",
        "{\r\n\"html_attributions\":[],\r\n\"results\":[1],\r\n\"status\":\"OK\"\r\n}",
        "{\n\"html_attributions\":[],\n\"results\":[1,\n\n2],\n\"status\":\"OK\"\n}",
        /* a promised key twice, or escaped */
        "{\n\"html_attributions\":[],\n\"results\":[1],\n\"results\":[1,2],\n\"status\":\"OK\"\n}",
        "{\n\"html_attributions\":[],\n\"results\":[1],\n\"status\":\"OK\",\n\"status\":\"OK\"\n}",
        "{\n\"html_attributions\":[],\n\"html_attributions\":[],\n\"results\":[1],\n\"status\":\"OK\"\n}",
        "{\n\"html_attributions\":[],\n\"results\":[1],\n\"status\":\"OK\",\n\"error_message\":\"\",\n\"error_message\":\"\"\n}",
        "{\n\"html_attributions\":[],\n\"r\\u0065sults\":[1,2],\n\"results\":[1],\n\"status\":\"OK\"\n}",
        "{\n\"html_attributions\":[],\n\"results\":[1],\n\"status\":\"O\\u004b\"\n}",
        /* statuses that are errors, or missing parts */
        "{\n\"html_attributions\":[],\n\"results\":[],\n\"status\":\"REQUEST_DENIED\"\n}",
        "{\n\"html_attributions\":[],\n\"results\":[1]\n}",
        "{\n\"html_attributions\":[],\n\"status\":\"ZERO_RESULTS\"\n}",
        "{\n\"results\":[1],\n\"status\":\"OK\"\n}",
        "{\n\"html_attributions\":[],\n\"results\":{},\n\"status\":\"OK\"\n}",
        "{\n\"html_attributions\":[],\n\"results\":[1],\n\"status\":1\n}",
        /* not strict JSON */
        "{\n\"html_attributions\":[],\n\"results\":[1,],\n\"status\":\"OK\"\n}",
        "{\n\"html_attributions\":[],\n\"results\":[1],\n\"status\":\"OK\",\n}",
        "{\n\"html_attributions\":[],\n\"results\":[01],\n\"status\":\"OK\"\n}",
        "{\n\"html_attributions\":[],\n\"results\":[+1],\n\"status\":\"OK\"\n}",
        "{\n\"html_attributions\":[],\n\"results\":[1.],\n\"status\":\"OK\"\n}",
        "{\n\"html_attributions\":[],\n\"results\":[tru],\n\"status\":\"OK\"\n}",
        "{\n\"html_attributions\":[],\n\"results\":[\"a\tb\"],\n\"status\":\"OK\"\n}",
        "{\n\"html_attributions\":[],\n\"results\":[\"\\x\"],\n\"status\":\"OK\"\n}",
        "{\n\"html_attributions\":[],\n\"results\":[1],\n\"status\":\"OK\"\n} x",
        "{\n\"html_attributions\":[],\n\"results\":[1],\n\"status\":\"OK\"\n",
        "\xEF\xBB\xBF{\n\"html_attributions\":[],\n\"results\":[1],\n\"status\":\"OK\"\n}",
        /* what cJSON decodes its own way: overflow, NUL, surrogates */
        "{\n\"html_attributions\":[],\n\"results\":[1e999],\n\"status\":\"OK\"\n}",
        "{\n\"html_attributions\":[],\n\"results\":[\"\\u0000\"],\n\"status\":\"OK\"\n}",
        "{\n\"html_attributions\":[],\n\"results\":[\"\\ud800\"],\n\"status\":\"OK\"\n}",
        "[\n1\n]",
        "",
    };
    struct places_cut c;

    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (places_cut_legacy(bad[i], strlen(bad[i]), 5, &c) == 0)
            fail_msg("accepted #%zu: %s", i, bad[i]);
    /* A bound outside 1..20. */
    assert_int_equal(places_cut_legacy(LIT(GOOGLE3), 0, &c), -1);
    assert_int_equal(places_cut_legacy(LIT(GOOGLE3), 21, &c), -1);
}

/* Nesting past PLACES_CUT_MAX_DEPTH is left to cJSON; just under it is
 * cut. */
static void test_depth(void **state)
{
    char body[512];
    struct places_cut c;
    int o;

    (void)state;
    for (int depth = PLACES_CUT_MAX_DEPTH - 3; depth <= PLACES_CUT_MAX_DEPTH;
         depth++) {
        o = snprintf(body, sizeof body,
                     "{\n\"html_attributions\":[],\n\"status\":\"OK\",\n"
                     "\"results\":[");
        for (int i = 0; i < depth; i++)
            body[o++] = '[';
        for (int i = 0; i < depth; i++)
            body[o++] = ']';
        o += snprintf(body + o, sizeof body - (size_t)o, "]\n}");
        /* Root 0, results 1, its elements from 2. */
        assert_int_equal(places_cut_legacy(body, (size_t)o, 5, &c),
                         depth + 2 <= PLACES_CUT_MAX_DEPTH ? 0 : -1);
    }
}

/* The reply for an accepted answer never holds an empty line, whatever
 * the bound: the cut joins two lines that were already there. */
static void test_every_bound_keeps_the_shape(void **state)
{
    (void)state;
    for (int max = 1; max <= 20; max++) {
        char *out = places_reply_legacy(200, LIT(GOOGLE3), max);
        assert_non_null(out);
        assert_null(strstr(out, "\n\n"));
        assert_true(out[strlen(out) - 1] == '}');
        free(out);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_google_layout_cut_after_the_bound),
        cmocka_unit_test(test_cjson_layout_cut),
        cmocka_unit_test(test_zero_results),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_depth),
        cmocka_unit_test(test_every_bound_keeps_the_shape),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
