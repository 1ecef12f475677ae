/* htime: exact parsing of client times, differences, UTC stamps. */
#include "tests/unit/unit.h"

#include "common/htime.h"

static struct htime T(int64_t sec, int32_t nsec)
{
    struct htime t = {sec, nsec};
    return t;
}

static void parses(const char *s, int64_t sec, int32_t nsec)
{
    struct htime t = {-1, -1};

    if (htime_parse(s, strlen(s), &t) != 0)
        fail_msg("htime_parse refused \"%s\"", s);
    if (t.sec != sec || t.nsec != nsec)
        fail_msg("\"%s\" -> %lld.%09d, want %lld.%09d", s, (long long)t.sec,
                 (int)t.nsec, (long long)sec, (int)nsec);
}

static void refuses(const char *s, size_t len)
{
    struct htime t = {7, 7};

    if (htime_parse(s, len, &t) != -1)
        fail_msg("htime_parse accepted \"%.*s\"", (int)len, s);
    /* A refused time leaves the output alone. */
    assert_int_equal(t.sec, 7);
    assert_int_equal(t.nsec, 7);
}

#define REFUSES(s) refuses(LIT(s))

static void test_parse_integer(void **state)
{
    (void)state;
    parses("0", 0, 0);
    parses("1621464827", 1621464827, 0);
    parses("0001621464827", 1621464827, 0);     /* leading zeros */
    parses("999999999999999999", 999999999999999999LL, 0);  /* 18 digits */
}

static void test_parse_fraction(void **state)
{
    (void)state;
    parses("1621464827.959498503", 1621464827, 959498503);
    parses("1.5", 1, 500000000);
    parses("1.05", 1, 50000000);
    parses("1.000000001", 1, 1);
    parses("1.1", 1, 100000000);
    parses("1.12", 1, 120000000);
    parses("1.123", 1, 123000000);
    parses("1.1234", 1, 123400000);
    parses("1.12345", 1, 123450000);
    parses("1.123456", 1, 123456000);
    parses("1.1234567", 1, 123456700);
    parses("1.12345678", 1, 123456780);
    parses("1.123456789", 1, 123456789);
    parses("1.999999999", 1, 999999999);
    parses("0.000000000", 0, 0);
    parses("1.0", 1, 0);
}

static void test_parse_refused(void **state)
{
    (void)state;
    REFUSES("");
    REFUSES("1.1234567890");        /* 10 fraction digits */
    REFUSES("1.0000000000");
    REFUSES("1.");                  /* empty fraction */
    REFUSES(".5");                  /* no integer part */
    REFUSES(".");
    REFUSES("+1");                  /* no sign, either way */
    REFUSES("-1");
    REFUSES("+1.5");
    REFUSES("1e9");                 /* no exponent */
    REFUSES("1.5e3");
    REFUSES("1E9");
    REFUSES("0x10");
    REFUSES("1..5");
    REFUSES("1.5.");
    REFUSES("1.5.6");
    REFUSES("1,5");
    REFUSES(" 1");
    REFUSES("1 ");
    REFUSES("1\n");
    REFUSES("1.5x");
    REFUSES("abc");
    REFUSES("inf");
    REFUSES("nan");
    REFUSES("1\0002");              /* NUL inside */
    REFUSES("1.\0005");
    REFUSES("1000000000000000000"); /* 19 digits: overflow guard */
    REFUSES("9223372036854775807");
    REFUSES("99999999999999999999999999");
    REFUSES("00000000000000000001"); /* 20 digits even if small */
}

static void test_parse_uses_len(void **state)
{
    struct htime t;

    (void)state;
    /* Only len bytes count: the rest of the buffer is another field. */
    assert_int_equal(htime_parse("12.5 99", 4, &t), 0);
    assert_int_equal(t.sec, 12);
    assert_int_equal(t.nsec, 500000000);
    assert_int_equal(htime_parse("123", 2, &t), 0);
    assert_int_equal(t.sec, 12);
    assert_int_equal(htime_parse("1.", 1, &t), 0);
    assert_int_equal(t.sec, 1);
}

static void test_cmp(void **state)
{
    (void)state;
    assert_int_equal(htime_cmp(T(1, 0), T(1, 0)), 0);
    assert_int_equal(htime_cmp(T(1, 0), T(2, 0)), -1);
    assert_int_equal(htime_cmp(T(2, 0), T(1, 0)), 1);
    assert_int_equal(htime_cmp(T(1, 5), T(1, 6)), -1);
    assert_int_equal(htime_cmp(T(1, 6), T(1, 5)), 1);
    assert_int_equal(htime_cmp(T(1, 999999999), T(2, 0)), -1);
    assert_int_equal(htime_cmp(T(2, 0), T(1, 999999999)), 1);
}

static void diff_is(struct htime later, struct htime earlier, const char *want)
{
    char buf[HTIME_DIFF_MAX + 1];
    size_t n;

    memset(buf, 'X', sizeof buf);
    n = htime_format_diff(later, earlier, buf, sizeof buf);
    assert_string_equal(buf, want);
    assert_int_equal(n, strlen(want));
}

static void test_format_diff(void **state)
{
    (void)state;
    /* SPEC.md's example: +0.263873386. */
    diff_is(T(1621464828, 223371889), T(1621464827, 959498503),
            "+0.263873386");
    diff_is(T(5, 0), T(5, 0), "+0.000000000");
    diff_is(T(0, 0), T(0, 0), "+0.000000000");
    diff_is(T(6, 0), T(5, 0), "+1.000000000");
    diff_is(T(5, 0), T(6, 0), "-1.000000000");
    diff_is(T(5, 1), T(5, 0), "+0.000000001");
    diff_is(T(5, 0), T(5, 1), "-0.000000001");
    /* Borrow across a second, both signs. */
    diff_is(T(10, 100000000), T(9, 900000000), "+0.200000000");
    diff_is(T(9, 900000000), T(10, 100000000), "-0.200000000");
    diff_is(T(12, 0), T(10, 500000000), "+1.500000000");
    diff_is(T(10, 500000000), T(12, 0), "-1.500000000");
    diff_is(T(3, 999999999), T(1, 999999999), "+2.000000000");
    diff_is(T(2, 0), T(1, 999999999), "+0.000000001");
    /* A client far in the future, and the largest times parse allows. */
    diff_is(T(1700000000, 0), T(999999999999999999LL, 999999999),
            "-999999998299999999.999999999");
    diff_is(T(999999999999999999LL, 999999999), T(0, 0),
            "+999999999999999999.999999999");
}

static void test_format_diff_fits_max(void **state)
{
    char buf[HTIME_DIFF_MAX + 1];
    size_t n;

    (void)state;
    n = htime_format_diff(T(0, 0), T(999999999999999999LL, 999999999), buf,
                          sizeof buf);
    assert_true(n <= HTIME_DIFF_MAX);
    assert_int_equal(strlen(buf), n);
}

static void utc_is(struct htime t, const char *want)
{
    char buf[64];
    size_t n = htime_format_utc(t, buf, sizeof buf);

    assert_string_equal(buf, want);
    assert_int_equal(n, strlen(want));
}

static void test_format_utc(void **state)
{
    (void)state;
    utc_is(T(0, 0), "1970-01-01T00:00:00.000000Z");
    utc_is(T(1621464827, 959498503), "2021-05-19T22:53:47.959498Z");
    utc_is(T(951782400, 999), "2000-02-29T00:00:00.000000Z");   /* leap */
    utc_is(T(951868799, 999999999), "2000-02-29T23:59:59.999999Z");
    utc_is(T(4102444800LL, 1000), "2100-01-01T00:00:00.000001Z");
}

static void test_now(void **state)
{
    struct htime a, b;

    (void)state;
    a = htime_now();
    b = htime_now();
    assert_true(a.nsec >= 0 && a.nsec < 1000000000);
    assert_true(a.sec > 1600000000);            /* after 2020 */
    assert_true(htime_cmp(a, b) <= 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_integer),
        cmocka_unit_test(test_parse_fraction),
        cmocka_unit_test(test_parse_refused),
        cmocka_unit_test(test_parse_uses_len),
        cmocka_unit_test(test_cmp),
        cmocka_unit_test(test_format_diff),
        cmocka_unit_test(test_format_diff_fits_max),
        cmocka_unit_test(test_format_utc),
        cmocka_unit_test(test_now),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
