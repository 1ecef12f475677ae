/* store: which AT line each client keeps.  Last writer wins by client
 * time (exact, numeric); equal times are ordered by the lines' bytes, so
 * every node keeps the same line whatever order the lines arrive in. */
#include "tests/unit/unit.h"

#include "node/store.h"

static int store_setup(void **state)
{
    struct store *s = malloc(sizeof *s);

    assert_non_null(s);
    assert_int_equal(store_init(s), 0);
    *state = s;
    return 0;
}

static int store_teardown(void **state)
{
    store_free(*state);
    free(*state);
    return 0;
}

/* Apply a NUL-terminated AT line, parsed first as every caller does. */
static enum store_result apply(struct store *s, const char *line)
{
    struct proto_at at;

    assert_int_equal(proto_parse_at(line, strlen(line), &at), 0);
    return store_apply(s, line, strlen(line), &at, NULL);
}

/* The line held for id, or fail when there is none. */
static void assert_held(struct store *s, const char *id, const char *line)
{
    struct record *r = store_find(s, id, strlen(id));
    const char *held;
    size_t len;

    assert_non_null(r);
    held = record_line(r, &len);
    if (len != strlen(line) || memcmp(held, line, len) != 0)
        fail_msg("held for %s: '%.*s', want '%s'", id, (int)len, held, line);
}

#define OLD "AT Hill +0.263873386 kiwi +34.068930-118.445127 1621464827.959498503"
#define NEW "AT Hill +0.100000000 kiwi +10+10 1621464827.959498504"

static void test_new_client_is_stored(void **state)
{
    struct store *s = *state;
    struct record *r = NULL;
    struct proto_at at;

    assert_null(store_find(s, LIT("kiwi")));
    assert_int_equal(proto_parse_at(LIT(OLD), &at), 0);
    assert_int_equal(store_apply(s, LIT(OLD), &at, &r), STORE_APPLIED);
    assert_non_null(r);
    assert_ptr_equal(r, store_find(s, LIT("kiwi")));
    assert_int_equal(s->count, 1);
    assert_held(s, "kiwi", OLD);
    /* Only the exact ID is found: no prefix, no longer name. */
    assert_null(store_find(s, LIT("kiw")));
    assert_null(store_find(s, LIT("kiwi2")));
}

static void test_newer_replaces_older_is_stale(void **state)
{
    struct store *s = *state;

    assert_int_equal(apply(s, OLD), STORE_APPLIED);
    assert_int_equal(apply(s, NEW), STORE_APPLIED);
    assert_held(s, "kiwi", NEW);
    /* The older line, arriving late (a slow flood path), changes nothing. */
    assert_int_equal(apply(s, OLD), STORE_STALE);
    assert_held(s, "kiwi", NEW);
    assert_int_equal(s->count, 1);
}

static void test_same_line_again_is_stale(void **state)
{
    struct store *s = *state;

    /* A flood seen twice is applied (and flooded on) once. */
    assert_int_equal(apply(s, OLD), STORE_APPLIED);
    assert_int_equal(apply(s, OLD), STORE_STALE);
    assert_held(s, "kiwi", OLD);
    assert_int_equal(s->count, 1);
}

static void test_time_is_numeric_not_text(void **state)
{
    struct store *s = *state;
    /* "1000" sorts before "999" as text; it is the later time. */
    const char *t999 = "AT Hill +0.000000000 c +1+1 999";
    const char *t1000 = "AT Hill +0.000000000 c +1+1 1000";
    const char *nano = "AT Hill +0.000000000 c +1+1 1000.000000001";
    const char *tenth = "AT Hill +0.000000000 c +1+1 1000.1";
    const char *ninth = "AT Hill +0.000000000 c +1+1 1000.09";

    assert_int_equal(apply(s, t1000), STORE_APPLIED);
    assert_int_equal(apply(s, t999), STORE_STALE);
    assert_held(s, "c", t1000);
    /* One nanosecond later wins. */
    assert_int_equal(apply(s, nano), STORE_APPLIED);
    assert_held(s, "c", nano);
    /* .1 is after .09 although "1000.09" is the longer text. */
    assert_int_equal(apply(s, tenth), STORE_APPLIED);
    assert_int_equal(apply(s, ninth), STORE_STALE);
    assert_held(s, "c", tenth);
}

/* Equal client times: the line whose bytes sort last is kept, whichever
 * arrives first, so two nodes that saw them in opposite orders agree. */
static void test_tie_break_by_bytes_either_order(void **state)
{
    struct store *s = *state;
    struct store other;
    /* Same client, same time, told to two servers. */
    const char *a = "AT Hill +0.500000000 tie +1+1 1621464827.5";
    const char *b = "AT Smith +0.100000000 tie +2+2 1621464827.5";

    assert_int_equal(store_init(&other), 0);
    assert_int_equal(apply(s, a), STORE_APPLIED);
    assert_int_equal(apply(s, b), STORE_APPLIED);
    assert_int_equal(apply(&other, b), STORE_APPLIED);
    assert_int_equal(apply(&other, a), STORE_STALE);
    assert_held(s, "tie", b);
    assert_held(&other, "tie", b);
    store_free(&other);
}

static void test_tie_break_longer_line_wins_over_its_prefix(void **state)
{
    struct store *s = *state;
    /* The same bytes as far as the shorter goes, and equal times (a time
     * with trailing zeros is the same time). */
    const char *shorter = "AT Hill +0.000000000 p +1+1 7.5";
    const char *longer = "AT Hill +0.000000000 p +1+1 7.50";

    assert_int_equal(apply(s, longer), STORE_APPLIED);
    assert_int_equal(apply(s, shorter), STORE_STALE);
    assert_held(s, "p", longer);

    store_free(s);
    assert_int_equal(store_init(s), 0);
    assert_int_equal(apply(s, shorter), STORE_APPLIED);
    assert_int_equal(apply(s, longer), STORE_APPLIED);
    assert_held(s, "p", longer);
}

static void test_time_beats_bytes(void **state)
{
    struct store *s = *state;
    /* The later time wins even when its line sorts first as bytes. */
    const char *early_big = "AT Zed +9.999999999 t +89+179 100";
    const char *late_small = "AT A +0.000000000 t +0+0 101";

    assert_int_equal(apply(s, late_small), STORE_APPLIED);
    assert_int_equal(apply(s, early_big), STORE_STALE);
    assert_held(s, "t", late_small);
}

static void test_replacement_of_other_length(void **state)
{
    struct store *s = *state;
    const char *one = "AT Hill +0.000000000 r +1+1 1";
    const char *two = "AT Hill +0.000000000 r +12.345678901234-123.456789012345 2";
    const char *three = "AT H +0.000000000 r +0+0 3";

    assert_int_equal(apply(s, one), STORE_APPLIED);
    assert_int_equal(apply(s, two), STORE_APPLIED);
    assert_held(s, "r", two);
    assert_int_equal(apply(s, three), STORE_APPLIED);
    assert_held(s, "r", three);
    assert_int_equal(s->count, 1);
}

static void test_clients_are_independent(void **state)
{
    struct store *s = *state;
    const char *x = "AT Hill +0.000000000 x +1+1 50";
    const char *y = "AT Hill +0.000000000 y +1+1 10";
    const char *x_old = "AT Hill +0.000000000 x +1+1 20";

    assert_int_equal(apply(s, x), STORE_APPLIED);
    /* y's earlier time is not compared with x's. */
    assert_int_equal(apply(s, y), STORE_APPLIED);
    assert_int_equal(apply(s, x_old), STORE_STALE);
    assert_held(s, "x", x);
    assert_held(s, "y", y);
    assert_int_equal(s->count, 2);
}

static void test_line_with_newline_is_refused(void **state)
{
    struct store *s = *state;
    const char line[] = "AT Hill +0.000000000 n +1+1 5";
    char bad[sizeof line + 1];
    struct proto_at at;

    /* The record's terminator is "\n": a line holding one never enters. */
    assert_int_equal(proto_parse_at(LIT(line), &at), 0);
    memcpy(bad, line, sizeof line - 1);
    bad[sizeof line - 1] = '\n';
    assert_int_equal(store_apply(s, bad, sizeof line, &at, NULL), STORE_STALE);
    assert_null(store_find(s, LIT("n")));
    assert_int_equal(s->count, 0);
}

/* A walk visits every record; new records arriving during it (and the
 * table growing) never make it miss one that was there at the start. */
static void test_cursor_sees_every_record(void **state)
{
    struct store *s = *state;
    enum { N = 300, MORE = 2000 };
    static char seen[N + MORE];
    struct store_cursor c;
    struct record *r;
    char line[96];
    int steps = 0;

    memset(seen, 0, sizeof seen);
    for (int i = 0; i < N; i++) {
        snprintf(line, sizeof line, "AT Hill +0.000000000 id%d +1+1 5", i);
        assert_int_equal(apply(s, line), STORE_APPLIED);
    }
    assert_int_equal(s->count, N);
    store_cursor_start(s, &c);
    while ((r = store_cursor_next(s, &c)) != NULL) {
        size_t len;
        const char *held = record_line(r, &len);
        int i;

        assert_int_equal(sscanf(held, "AT Hill +0.000000000 id%d ", &i), 1);
        assert_in_range(i, 0, N + MORE - 1);
        seen[i] = 1;
        /* Grow the table under the walk for a while. */
        if (steps < MORE) {
            snprintf(line, sizeof line, "AT Hill +0.000000000 id%d +1+1 5",
                     N + steps);
            assert_int_equal(apply(s, line), STORE_APPLIED);
            steps++;
        }
        assert_true(steps < 100000);
    }
    for (int i = 0; i < N; i++)
        if (!seen[i])
            fail_msg("record id%d missed by the walk", i);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, store_setup, store_teardown)
        T(test_new_client_is_stored),
        T(test_newer_replaces_older_is_stale),
        T(test_same_line_again_is_stale),
        T(test_time_is_numeric_not_text),
        T(test_tie_break_by_bytes_either_order),
        T(test_tie_break_longer_line_wins_over_its_prefix),
        T(test_time_beats_bytes),
        T(test_replacement_of_other_length),
        T(test_clients_are_independent),
        T(test_line_with_newline_is_refused),
        T(test_cursor_sees_every_record),
#undef T
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
