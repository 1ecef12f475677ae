/* protocol: every lexical and numeric rule of SPEC.md, byte by byte. */
#include "tests/unit/unit.h"

#include "common/protocol.h"

/* The six whitespace characters of SPEC.md. */
static const char SPACES[] = {' ', '\t', '\r', '\n', '\f', '\v'};
#define N_SPACES (sizeof SPACES)

static int span_eq(struct proto_span s, const char *p, size_t len)
{
    return s.len == len && memcmp(s.p, p, len) == 0;
}

#define assert_span(s, lit) assert_true(span_eq((s), LIT(lit)))

/* ---- whitespace and splitting ------------------------------------------ */

static void test_is_space_exactly_six(void **state)
{
    (void)state;
    for (int c = 0; c < 256; c++) {
        int want = c == ' ' || c == '\t' || c == '\r' || c == '\n' ||
                   c == '\f' || c == '\v';
        if (!proto_is_space((unsigned char)c) != !want)
            fail_msg("proto_is_space(0x%02x) = %d", c,
                     proto_is_space((unsigned char)c));
    }
}

static void test_split(void **state)
{
    struct proto_span f[4];

    (void)state;
    assert_int_equal(proto_split(LIT(""), f, 4), 0);
    assert_int_equal(proto_split(LIT(" \t\r\n\f\v"), f, 4), 0);
    assert_int_equal(proto_split(LIT("a"), f, 4), 1);
    assert_span(f[0], "a");
    assert_int_equal(proto_split(LIT(" \t\r\n\f\vab \t\r\n\f\vc \t\r\n\f\v"),
                                 f, 4), 2);
    assert_span(f[0], "ab");
    assert_span(f[1], "c");
    /* More fields than room: counted, not stored past max. */
    assert_int_equal(proto_split(LIT("a b c d e f"), f, 2), 6);
    assert_span(f[0], "a");
    assert_span(f[1], "b");
    assert_int_equal(proto_split(LIT("a b"), NULL, 0), 2);
    /* NUL is not whitespace: it is part of a field. */
    assert_int_equal(proto_split(LIT("a\0b c"), f, 4), 2);
    assert_span(f[0], "a\0b");
    /* Bytes past len are not looked at. */
    assert_int_equal(proto_split("a b c", 3, f, 4), 2);
    assert_span(f[1], "b");
}

static void test_split_each_space(void **state)
{
    struct proto_span f[4];
    char line[16];

    (void)state;
    for (size_t i = 0; i < N_SPACES; i++) {
        int n = snprintf(line, sizeof line, "%cx%cy%c", SPACES[i], SPACES[i],
                         SPACES[i]);
        assert_int_equal(proto_split(line, (size_t)n, f, 4), 2);
        assert_span(f[0], "x");
        assert_span(f[1], "y");
    }
}

/* ---- requests ---------------------------------------------------------- */

#define IAMAT_EX "IAMAT kiwi.cs.ucla.edu +34.068930-118.445127 1621464827.959498503"
#define WHATSAT_EX "WHATSAT kiwi.cs.ucla.edu 10 5"

static enum proto_kind parse(const char *line, size_t len,
                             struct proto_request *r)
{
    return proto_parse_request(line, len, r);
}

static void assert_invalid(const char *line, size_t len)
{
    struct proto_request r;

    memset(&r, 0x5a, sizeof r);
    if (parse(line, len, &r) != PROTO_INVALID)
        fail_msg("accepted: \"%.*s\"", (int)len, line);
    assert_int_equal(r.kind, PROTO_INVALID);
}

#define INVALID(s) assert_invalid(LIT(s))

static void check_example_iamat(const struct proto_request *r)
{
    const struct proto_iamat *a = &r->u.iamat;

    assert_int_equal(r->kind, PROTO_IAMAT);
    assert_span(a->id, "kiwi.cs.ucla.edu");
    assert_span(a->location, "+34.068930-118.445127");
    assert_span(a->time, "1621464827.959498503");
    assert_int_equal(a->client_time.sec, 1621464827);
    assert_int_equal(a->client_time.nsec, 959498503);
    assert_float_equal(a->where.lat, 34.068930, 1e-9);
    assert_float_equal(a->where.lon, -118.445127, 1e-9);
}

static void check_example_whatsat(const struct proto_request *r)
{
    const struct proto_whatsat *w = &r->u.whatsat;

    assert_int_equal(r->kind, PROTO_WHATSAT);
    assert_span(w->id, "kiwi.cs.ucla.edu");
    assert_span(w->radius, "10");
    assert_span(w->bound, "5");
    assert_float_equal(w->radius_km, 10.0, 1e-12);
    assert_string_equal(w->radius_m, "10000");
    assert_int_equal(w->max_results, 5);
}

static void test_spec_examples(void **state)
{
    struct proto_request r;

    (void)state;
    assert_int_equal(parse(LIT(IAMAT_EX), &r), PROTO_IAMAT);
    check_example_iamat(&r);
    assert_int_equal(parse(LIT(IAMAT_EX "\n"), &r), PROTO_IAMAT);
    check_example_iamat(&r);
    assert_int_equal(parse(LIT(IAMAT_EX "\r\n"), &r), PROTO_IAMAT);
    check_example_iamat(&r);
    assert_int_equal(parse(LIT(WHATSAT_EX), &r), PROTO_WHATSAT);
    check_example_whatsat(&r);
    assert_int_equal(parse(LIT(WHATSAT_EX "\r\n"), &r), PROTO_WHATSAT);
    check_example_whatsat(&r);
}

/* Rebuild the examples with one whitespace character, in runs of one to
 * three, between fields, before and after. */
static void test_every_space_everywhere(void **state)
{
    static const char *iamat[] = {"IAMAT", "kiwi.cs.ucla.edu",
                                  "+34.068930-118.445127",
                                  "1621464827.959498503"};
    static const char *whatsat[] = {"WHATSAT", "kiwi.cs.ucla.edu", "10", "5"};
    struct proto_request r;
    char line[256];

    (void)state;
    for (size_t i = 0; i < N_SPACES; i++) {
        for (size_t run = 1; run <= 3; run++) {
            for (int lead = 0; lead < 2; lead++) {
                for (int verb = 0; verb < 2; verb++) {
                    const char **f = verb ? whatsat : iamat;
                    size_t n = 0;

                    for (size_t k = 0; lead && k < run; k++)
                        line[n++] = SPACES[i];
                    for (size_t w = 0; w < 4; w++) {
                        if (w > 0)
                            for (size_t k = 0; k < run; k++)
                                line[n++] = SPACES[i];
                        memcpy(line + n, f[w], strlen(f[w]));
                        n += strlen(f[w]);
                    }
                    for (size_t k = 0; lead && k < run; k++)
                        line[n++] = SPACES[i];
                    if (parse(line, n, &r) == PROTO_INVALID)
                        fail_msg("refused with space 0x%02x run %zu lead %d",
                                 SPACES[i], run, lead);
                    if (verb)
                        check_example_whatsat(&r);
                    else
                        check_example_iamat(&r);
                }
            }
        }
    }
    /* All six mixed in one run. */
    assert_int_equal(parse(LIT(" \t\r\n\f\vIAMAT \t\r\n\f\vkiwi.cs.ucla.edu"
                               "\v\f\n\r\t +34.068930-118.445127\t"
                               "1621464827.959498503\f\v\r\n"), &r),
                     PROTO_IAMAT);
    check_example_iamat(&r);
}

static void test_not_whitespace(void **state)
{
    struct proto_request r;

    (void)state;
    /* Other bytes do not separate fields (NUL, 0x1c-0x1f, NBSP, 0x85). */
    INVALID("IAMAT\0kiwi +34-118 1");
    INVALID("WHATSAT\x1c" "kiwi 10 5");
    INVALID("WHATSAT\x1f" "kiwi 10 5");
    INVALID("WHATSAT\xa0kiwi 10 5");
    INVALID("WHATSAT\x85kiwi 10 5");
    INVALID("WHATSAT kiwi\xa0" "10 5");
    /* ...but they may be part of a client ID. */
    assert_int_equal(parse(LIT("WHATSAT k\xa0i\x85\x01 10 5"), &r),
                     PROTO_WHATSAT);
    assert_span(r.u.whatsat.id, "k\xa0i\x85\x01");
}

static void test_operand_counts(void **state)
{
    (void)state;
    INVALID("");
    INVALID(" \t\r\n\f\v");
    INVALID("\n");
    INVALID("IAMAT");
    INVALID("IAMAT kiwi");
    INVALID("IAMAT kiwi +34.068930-118.445127");
    INVALID("IAMAT kiwi +34.068930-118.445127 1621464827.959498503 x");
    INVALID("IAMAT kiwi +34.068930-118.445127 1621464827.959498503 "
            "1621464827.959498503");
    INVALID("IAMAT kiwi +34.068930 -118.445127 1621464827.959498503");
    INVALID("WHATSAT");
    INVALID("WHATSAT kiwi");
    INVALID("WHATSAT kiwi 10");
    INVALID("WHATSAT kiwi 10 5 5");
    INVALID("WHATSAT kiwi 10 5 \0");
    INVALID("IAMAT kiwi +34.068930-118.445127 1621464827.959498503 \0");
}

static void test_verbs(void **state)
{
    (void)state;
    INVALID("iamat kiwi +34.068930-118.445127 1621464827.959498503");
    INVALID("Iamat kiwi +34.068930-118.445127 1621464827.959498503");
    INVALID("IAMAt kiwi +34.068930-118.445127 1621464827.959498503");
    INVALID("IAMATX kiwi +34.068930-118.445127 1621464827.959498503");
    INVALID("XIAMAT kiwi +34.068930-118.445127 1621464827.959498503");
    INVALID("IAMA kiwi +34.068930-118.445127 1621464827.959498503");
    INVALID("IAMAT\0 kiwi +34.068930-118.445127 1621464827.959498503");
    INVALID("\0IAMAT kiwi +34.068930-118.445127 1621464827.959498503");
    INVALID("whatsat kiwi 10 5");
    INVALID("WhatsAt kiwi 10 5");
    INVALID("WHATSAT: kiwi 10 5");
    INVALID("WHATSAT\0 kiwi 10 5");
    INVALID("HELLO kiwi 10 5");
    INVALID("AT Hill +0.263873386 kiwi.cs.ucla.edu");
    INVALID("HERD-AT kiwi 10 5");
    INVALID("GET / HTTP/1.0");
}

static void test_nul_bytes(void **state)
{
    struct proto_request r;

    (void)state;
    /* A NUL is an ordinary ID byte, kept byte for byte. */
    assert_int_equal(parse(LIT("IAMAT ki\0wi +34.068930-118.445127 1.5"), &r),
                     PROTO_IAMAT);
    assert_span(r.u.iamat.id, "ki\0wi");
    assert_int_equal(parse(LIT("IAMAT \0 +34.068930-118.445127 1.5"), &r),
                     PROTO_IAMAT);
    assert_span(r.u.iamat.id, "\0");
    assert_int_equal(parse(LIT("WHATSAT \0\0 10 5"), &r), PROTO_WHATSAT);
    assert_span(r.u.whatsat.id, "\0\0");
    /* In any number it is junk. */
    INVALID("IAMAT kiwi +34.068930\0-118.445127 1.5");
    INVALID("IAMAT kiwi +34.068930-118.445127\0 1.5");
    INVALID("IAMAT kiwi \0+34.068930-118.445127 1.5");
    INVALID("IAMAT kiwi +34.068930-118.445127 1.5\0");
    INVALID("IAMAT kiwi +34.068930-118.445127 1\0.5");
    INVALID("IAMAT kiwi +34.068930-118.445127 \0001.5");
    INVALID("WHATSAT kiwi 10\0 5");
    INVALID("WHATSAT kiwi 1\0000 5");
    INVALID("WHATSAT kiwi 10 5\0");
    INVALID("WHATSAT kiwi 10 \0005");
}

static void test_request_numbers(void **state)
{
    struct proto_request r;

    (void)state;
    /* Operand checks reach the request parser. */
    INVALID("IAMAT kiwi +91-118 1");
    INVALID("IAMAT kiwi 34.068930-118.445127 1");
    INVALID("IAMAT kiwi +34.068930-118.445127 -1");
    INVALID("IAMAT kiwi +34.068930-118.445127 +1");
    INVALID("IAMAT kiwi +34.068930-118.445127 1.");
    INVALID("IAMAT kiwi +34.068930-118.445127 .5");
    INVALID("IAMAT kiwi +34.068930-118.445127 1.1234567890");
    INVALID("IAMAT kiwi +34.068930-118.445127 1e9");
    INVALID("IAMAT kiwi +34.068930-118.445127 1000000000000000000");
    INVALID("WHATSAT kiwi 0 5");
    INVALID("WHATSAT kiwi 50.0001 5");
    INVALID("WHATSAT kiwi 10 0");
    INVALID("WHATSAT kiwi 10 21");
    INVALID("WHATSAT kiwi -10 5");
    INVALID("WHATSAT kiwi 10 +5");
    /* The client ID can look like anything, even a number or a verb. */
    assert_int_equal(parse(LIT("IAMAT IAMAT +0+0 0"), &r), PROTO_IAMAT);
    assert_span(r.u.iamat.id, "IAMAT");
    assert_int_equal(parse(LIT("WHATSAT +34-118 50.0 20"), &r), PROTO_WHATSAT);
    assert_span(r.u.whatsat.id, "+34-118");
    assert_string_equal(r.u.whatsat.radius_m, "50000");
    assert_int_equal(r.u.whatsat.max_results, 20);
    assert_int_equal(parse(LIT("WHATSAT kiwi 007 01"), &r), PROTO_WHATSAT);
    assert_span(r.u.whatsat.radius, "007");
    assert_span(r.u.whatsat.bound, "01");
    assert_string_equal(r.u.whatsat.radius_m, "7000");
    assert_int_equal(r.u.whatsat.max_results, 1);
    assert_int_equal(parse(LIT("IAMAT kiwi +34.068930-118.445127 1.5"), &r),
                     PROTO_IAMAT);
    assert_int_equal(r.u.iamat.client_time.sec, 1);
    assert_int_equal(r.u.iamat.client_time.nsec, 500000000);
}

/* ---- ISO 6709 locations ------------------------------------------------ */

static void location_ok(const char *s, size_t len, double lat, double lon)
{
    struct proto_location loc;

    memset(&loc, 0, sizeof loc);
    if (proto_parse_location(s, len, &loc) != 0)
        fail_msg("location refused: \"%.*s\"", (int)len, s);
    if (loc.lat - lat > 1e-9 || lat - loc.lat > 1e-9 ||
        loc.lon - lon > 1e-9 || lon - loc.lon > 1e-9)
        fail_msg("\"%.*s\" -> %.10f %.10f", (int)len, s, loc.lat, loc.lon);
}

static void location_bad(const char *s, size_t len)
{
    struct proto_location loc;

    if (proto_parse_location(s, len, &loc) != -1)
        fail_msg("location accepted: \"%.*s\"", (int)len, s);
}

#define LOC_OK(s, lat, lon) location_ok(LIT(s), lat, lon)
#define LOC_BAD(s) location_bad(LIT(s))

static void test_location_ok(void **state)
{
    (void)state;
    LOC_OK("+34.068930-118.445127", 34.068930, -118.445127);
    LOC_OK("-34.068930+118.445127", -34.068930, 118.445127);
    LOC_OK("+0+0", 0, 0);
    LOC_OK("-0-0", 0, 0);
    LOC_OK("+0.0-0.0", 0, 0);
    LOC_OK("+1+2", 1, 2);
    LOC_OK("+1.5-2.25", 1.5, -2.25);
    /* Exact bounds, with and without a zero fraction. */
    LOC_OK("+90+180", 90, 180);
    LOC_OK("-90-180", -90, -180);
    LOC_OK("+90-180", 90, -180);
    LOC_OK("-90+180", -90, 180);
    LOC_OK("+90.0+180.0", 90, 180);
    LOC_OK("-90.000000000-180.000000000", -90, -180);
    LOC_OK("+89.9999999+179.9999999", 89.9999999, 179.9999999);
    LOC_OK("-89.999999999999-179.999999999999", -89.999999999999,
           -179.999999999999);
    /* Leading zeros. */
    LOC_OK("+034.068930-0118.445127", 34.068930, -118.445127);
    LOC_OK("+00090.0-000180", 90, -180);
    LOC_OK("+0000000000000000000000000000090-180", 90, -180);
    LOC_OK("+00.5+000.5", 0.5, 0.5);
    /* Many fraction digits. */
    LOC_OK("+1.00000000000000000001+2.0000000000000000000000001", 1, 2);
}

static void test_location_bounds(void **state)
{
    (void)state;
    LOC_BAD("+90.0000001+0");
    LOC_BAD("-90.0000001+0");
    LOC_BAD("+90.000000000000000000001+0");
    LOC_BAD("+0+180.0000001");
    LOC_BAD("+0-180.0000001");
    LOC_BAD("+0+180.000000000000000000001");
    LOC_BAD("+91+0");
    LOC_BAD("-91+0");
    LOC_BAD("+90.1+0");
    LOC_BAD("+100+0");
    LOC_BAD("+0+181");
    LOC_BAD("+0-181");
    LOC_BAD("+0+1000");
    LOC_BAD("+000091+0");
    LOC_BAD("+0+000181");
    LOC_BAD("+99999999999999999999999+0");
    LOC_BAD("+0+99999999999999999999999");
    LOC_BAD("+900+0");
    LOC_BAD("+0+1800");
}

static void test_location_syntax(void **state)
{
    (void)state;
    LOC_BAD("");
    LOC_BAD("+");
    LOC_BAD("-");
    LOC_BAD("+-");
    LOC_BAD("+34");                  /* no longitude */
    LOC_BAD("+34.068930");
    LOC_BAD("+34.068930-");
    LOC_BAD("+34.068930+");
    LOC_BAD("34.068930-118.445127"); /* latitude sign missing */
    LOC_BAD("+34.068930118.445127"); /* longitude sign missing */
    LOC_BAD("+34.068930 -118.445127");
    LOC_BAD("++34.068930-118.445127");
    LOC_BAD("+34.068930--118.445127");
    LOC_BAD("+34.068930+-118.445127");
    LOC_BAD("+.5+1");                /* digits before the point */
    LOC_BAD("+1+.5");
    LOC_BAD("+34.-118.445127");      /* a fraction needs a digit */
    LOC_BAD("+34.068930-118.");
    LOC_BAD("+34..5-118");
    LOC_BAD("+34.5.5-118");
    LOC_BAD("+34,068930-118,445127");
    LOC_BAD("+34.068930-118.445127+1.0");  /* a third coordinate */
    LOC_BAD("+34.068930-118.445127+100");  /* (ISO 6709 altitude) */
    LOC_BAD("+34.068930-118.445127-5");
    LOC_BAD("+34.068930-118.445127/");     /* ISO 6709's terminator */
    LOC_BAD("+34.068930-118.445127x");     /* trailing junk */
    LOC_BAD("+34.068930-118.445127.");
    LOC_BAD("+34.068930-118.445127 ");
    LOC_BAD(" +34.068930-118.445127");
    LOC_BAD("+34.068930-118.445127\0");
    LOC_BAD("+34.068930\0-118.445127");
    LOC_BAD("+1e1+0");
    LOC_BAD("+1E1+0");
    LOC_BAD("+0x10+0");
    LOC_BAD("+inf+0");
    LOC_BAD("+nan+0");
    LOC_BAD("+3a-1");
    LOC_BAD("N34W118");
    LOC_BAD("+34°-118°");
}

static void test_location_length(void **state)
{
    char s[PROTO_LOCATION_MAX + 2];
    struct proto_location loc;

    (void)state;
    /* "+1." then zeros to PROTO_LOCATION_MAX with "+2" at the end. */
    memset(s, '0', sizeof s);
    memcpy(s, "+1.", 3);
    memcpy(s + PROTO_LOCATION_MAX - 2, "+2", 2);
    assert_int_equal(proto_parse_location(s, PROTO_LOCATION_MAX, &loc), 0);
    assert_float_equal(loc.lat, 1, 1e-12);
    assert_float_equal(loc.lon, 2, 1e-12);
    memcpy(s + PROTO_LOCATION_MAX - 2, "0+2", 3);
    assert_int_equal(proto_parse_location(s, PROTO_LOCATION_MAX + 1, &loc), -1);
}

static void test_location_values(void **state)
{
    struct proto_location loc;

    (void)state;
    assert_int_equal(proto_parse_location(LIT("+34.068930-118.445127"), &loc),
                     0);
    assert_float_equal(loc.lat, 34.06893, 1e-9);
    assert_float_equal(loc.lon, -118.445127, 1e-9);
    assert_int_equal(proto_parse_location(LIT("-90+180"), &loc), 0);
    assert_float_equal(loc.lat, -90, 1e-9);
    assert_float_equal(loc.lon, 180, 1e-9);
    assert_int_equal(proto_parse_location(LIT("+1.5-0.25"), &loc), 0);
    assert_float_equal(loc.lat, 1.5, 1e-9);
    assert_float_equal(loc.lon, -0.25, 1e-9);
    /* Only len bytes are read. */
    assert_int_equal(proto_parse_location("+1+2+3", 4, &loc), 0);
    assert_float_equal(loc.lat, 1, 1e-9);
    assert_float_equal(loc.lon, 2, 1e-9);
}

/* ---- WHATSAT radius and bound ------------------------------------------ */

static void radius_ok(const char *s, double km, const char *metres)
{
    double got_km = -1;
    char m[32];

    memset(m, 'X', sizeof m);
    if (proto_parse_radius(s, strlen(s), &got_km, m, sizeof m) != 0)
        fail_msg("radius refused: \"%s\"", s);
    if (strcmp(m, metres) != 0)
        fail_msg("radius \"%s\" -> \"%s\" m, want \"%s\"", s, m, metres);
    if (got_km - km > 1e-9 || km - got_km > 1e-9)
        fail_msg("radius \"%s\" -> %.12f km", s, got_km);
}

static void radius_bad(const char *s, size_t len)
{
    double km = 0;
    char m[32];

    if (proto_parse_radius(s, len, &km, m, sizeof m) != -1)
        fail_msg("radius accepted: \"%.*s\"", (int)len, s);
}

#define RADIUS_BAD(s) radius_bad(LIT(s))

static void test_radius_ok(void **state)
{
    (void)state;
    radius_ok("10", 10, "10000");
    radius_ok("0.5", 0.5, "500");
    radius_ok("1.2345", 1.2345, "1234.5");
    radius_ok("007", 7, "7000");
    radius_ok("1", 1, "1000");
    radius_ok("50", 50, "50000");
    radius_ok("50.0", 50, "50000");
    radius_ok("50.000000000", 50, "50000");
    radius_ok("050.00", 50, "50000");
    radius_ok("49.9999", 49.9999, "49999.9");
    radius_ok("49.999999999999", 49.999999999999, "49999.999999999");
    radius_ok("1.5", 1.5, "1500");
    radius_ok("1.50", 1.5, "1500");
    radius_ok("1.2340", 1.234, "1234");
    radius_ok("1.23450", 1.2345, "1234.5");
    radius_ok("0.1", 0.1, "100");
    radius_ok("0.01", 0.01, "10");
    radius_ok("0.001", 0.001, "1");
    radius_ok("0.0001", 0.0001, "0.1");
    radius_ok("0.00001", 0.00001, "0.01");
    radius_ok("00.5", 0.5, "500");
    radius_ok("0.010", 0.01, "10");
    radius_ok("10.0001", 10.0001, "10000.1");
    radius_ok("10.000", 10, "10000");
    radius_ok("10.00000000000000000000000000000000000000", 10, "10000");
    radius_ok("0000000000000000000000000000001", 1, "1000");
}

static void test_radius_bad(void **state)
{
    (void)state;
    RADIUS_BAD("");
    RADIUS_BAD("0");                 /* > 0 */
    RADIUS_BAD("0.0");
    RADIUS_BAD("000");
    RADIUS_BAD("0.000000000000");
    RADIUS_BAD("50.0001");           /* <= 50 */
    RADIUS_BAD("50.1");
    RADIUS_BAD("50.000000000001");
    RADIUS_BAD("51");
    RADIUS_BAD("100");
    RADIUS_BAD("0051");
    RADIUS_BAD("99999999999999999999999");
    RADIUS_BAD("+10");               /* no sign */
    RADIUS_BAD("-10");
    RADIUS_BAD("-0");
    RADIUS_BAD("1e1");               /* no exponent */
    RADIUS_BAD("1E1");
    RADIUS_BAD(".5");
    RADIUS_BAD("5.");
    RADIUS_BAD(".");
    RADIUS_BAD("1.2.3");
    RADIUS_BAD("1..2");
    RADIUS_BAD("1,5");
    RADIUS_BAD("10km");
    RADIUS_BAD("0x10");
    RADIUS_BAD("inf");
    RADIUS_BAD("nan");
    RADIUS_BAD(" 10");
    RADIUS_BAD("10 ");
    RADIUS_BAD("10\0");
    RADIUS_BAD("1\0000");
}

static void test_radius_metres_cap(void **state)
{
    double km;
    char m[8];

    (void)state;
    /* "1234.5" needs 7 bytes with its NUL. */
    assert_int_equal(proto_parse_radius(LIT("1.2345"), &km, m, 7), 0);
    assert_string_equal(m, "1234.5");
    assert_int_equal(proto_parse_radius(LIT("1.2345"), &km, m, 6), -1);
    /* The longest metres text that fits radius_m: "0." and 29 digits. */
    {
        char in[64], want[64];
        struct proto_request r;
        int n;

        memset(want, '1', sizeof want);
        memcpy(want, "0.", 2);
        want[31] = '\0';
        n = snprintf(in, sizeof in, "WHATSAT k 0.000%s 5", want + 2);
        assert_int_equal(proto_parse_request(in, (size_t)n, &r),
                         PROTO_WHATSAT);
        assert_string_equal(r.u.whatsat.radius_m, want);
        n = snprintf(in, sizeof in, "WHATSAT k 0.000%s1 5", want + 2);
        assert_int_equal(proto_parse_request(in, (size_t)n, &r),
                         PROTO_INVALID);
    }
    /* More significant digits than the metres text can hold exactly: the
     * radius is refused rather than sent rounded (or as zero). */
    {
        struct proto_request r;
        char line[128];
        int n = snprintf(line, sizeof line, "WHATSAT k 0.%s1 5",
                         "0000000000000000000000000000000000");
        assert_int_equal(proto_parse_request(line, (size_t)n, &r),
                         PROTO_INVALID);
        n = snprintf(line, sizeof line, "WHATSAT k 1.%s1 5",
                     "0000000000000000000000000000000000");
        assert_int_equal(proto_parse_request(line, (size_t)n, &r),
                         PROTO_INVALID);
    }
}

static void test_bound(void **state)
{
    int v;

    (void)state;
    for (int i = 1; i <= 20; i++) {
        char s[8];
        int n = snprintf(s, sizeof s, "%d", i);
        v = 0;
        assert_int_equal(proto_parse_bound(s, (size_t)n, &v), 0);
        assert_int_equal(v, i);
    }
    assert_int_equal(proto_parse_bound(LIT("007"), &v), 0);
    assert_int_equal(v, 7);
    assert_int_equal(proto_parse_bound(LIT("020"), &v), 0);
    assert_int_equal(v, 20);
    assert_int_equal(proto_parse_bound(LIT("0000000000000000000000001"), &v), 0);
    assert_int_equal(v, 1);
    v = 99;
    assert_int_equal(proto_parse_bound(LIT("0"), &v), -1);
    assert_int_equal(proto_parse_bound(LIT("00"), &v), -1);
    assert_int_equal(proto_parse_bound(LIT("21"), &v), -1);
    assert_int_equal(proto_parse_bound(LIT("021"), &v), -1);
    assert_int_equal(proto_parse_bound(LIT("100"), &v), -1);
    assert_int_equal(proto_parse_bound(LIT("99999999999999999999999"), &v), -1);
    assert_int_equal(proto_parse_bound(LIT(""), &v), -1);
    assert_int_equal(proto_parse_bound(LIT("+5"), &v), -1);
    assert_int_equal(proto_parse_bound(LIT("-5"), &v), -1);
    assert_int_equal(proto_parse_bound(LIT("+0"), &v), -1);
    assert_int_equal(proto_parse_bound(LIT("5.0"), &v), -1);
    assert_int_equal(proto_parse_bound(LIT("5."), &v), -1);
    assert_int_equal(proto_parse_bound(LIT("1e1"), &v), -1);
    assert_int_equal(proto_parse_bound(LIT("0x5"), &v), -1);
    assert_int_equal(proto_parse_bound(LIT("five"), &v), -1);
    assert_int_equal(proto_parse_bound(LIT(" 5"), &v), -1);
    assert_int_equal(proto_parse_bound(LIT("5 "), &v), -1);
    assert_int_equal(proto_parse_bound(LIT("5\0"), &v), -1);
    assert_int_equal(v, 99);
}

/* ---- the AT line ------------------------------------------------------- */

#define AT_EX "AT Hill +0.263873386 kiwi.cs.ucla.edu +34.068930-118.445127 " \
              "1621464827.959498503"

static struct proto_iamat example_iamat(const char *line, size_t len)
{
    struct proto_request r;

    assert_int_equal(proto_parse_request(line, len, &r), PROTO_IAMAT);
    return r.u.iamat;
}

static void test_format_at_spec(void **state)
{
    struct proto_iamat req = example_iamat(LIT(IAMAT_EX "\n"));
    struct htime now = {1621464828, 223371889};
    char buf[256];
    size_t n;

    (void)state;
    n = proto_format_at("Hill", &req, now, buf, sizeof buf);
    assert_string_equal(buf, AT_EX);
    assert_int_equal(n, strlen(AT_EX));
}

static void test_format_at_copies_operands(void **state)
{
    /* Operands go out byte for byte: leading zeros, short fractions, odd
     * bytes in the ID, whatever whitespace separated them. */
    struct proto_iamat req =
        example_iamat(LIT("\tIAMAT\v\x01k\0i\xff\f+034.50-0118.0\r\n"
                          "1621464827.9 \r\n"));
    struct htime now = {1621464827, 900000000};
    static const char want[] =
        "AT Smith +0.000000000 \x01k\0i\xff +034.50-0118.0 1621464827.9";
    char buf[256];
    size_t n;

    (void)state;
    n = proto_format_at("Smith", &req, now, buf, sizeof buf);
    assert_int_equal(n, sizeof want - 1);
    assert_memory_equal(buf, want, sizeof want);
}

static void test_format_at_negative(void **state)
{
    struct proto_iamat req = example_iamat(LIT(IAMAT_EX));
    struct htime now = {1621464826, 959498504};
    char buf[256];

    (void)state;
    proto_format_at("Hill", &req, now, buf, sizeof buf);
    assert_string_equal(buf, "AT Hill -0.999999999 kiwi.cs.ucla.edu "
                             "+34.068930-118.445127 1621464827.959498503");
}

static void test_format_at_cap(void **state)
{
    struct proto_iamat req = example_iamat(LIT(IAMAT_EX));
    struct htime now = {1621464828, 223371889};
    size_t need = strlen(AT_EX);
    char buf[256];

    (void)state;
    assert_int_equal(proto_format_at("Hill", &req, now, NULL, 0), need);
    memset(buf, 'X', sizeof buf);
    assert_int_equal(proto_format_at("Hill", &req, now, buf, need), need);
    for (size_t i = 0; i < sizeof buf; i++)
        assert_int_equal(buf[i], 'X');        /* nothing written */
    assert_int_equal(proto_format_at("Hill", &req, now, buf, need + 1), need);
    assert_string_equal(buf, AT_EX);
}

static void test_parse_at(void **state)
{
    struct proto_at at;

    (void)state;
    assert_int_equal(proto_parse_at(LIT(AT_EX), &at), 0);
    assert_span(at.server, "Hill");
    assert_span(at.diff, "+0.263873386");
    assert_span(at.id, "kiwi.cs.ucla.edu");
    assert_span(at.location, "+34.068930-118.445127");
    assert_span(at.time, "1621464827.959498503");
    assert_int_equal(at.client_time.sec, 1621464827);
    assert_int_equal(at.client_time.nsec, 959498503);
    assert_float_equal(at.where.lat, 34.068930, 1e-9);
    assert_float_equal(at.where.lon, -118.445127, 1e-9);

    assert_int_equal(proto_parse_at(LIT("AT S -12.000000000 x\0y +0+0 5"), &at),
                     0);
    assert_span(at.diff, "-12.000000000");
    assert_span(at.id, "x\0y");
}

static void test_parse_at_roundtrip(void **state)
{
    struct proto_iamat req =
        example_iamat(LIT("IAMAT c-1 -90.000+180 000123.000000001"));
    struct htime nows[] = {{0, 0}, {123, 1}, {124, 0}, {1621464828, 5}};
    char buf[256];
    struct proto_at at;

    (void)state;
    for (size_t i = 0; i < sizeof nows / sizeof nows[0]; i++) {
        size_t n = proto_format_at("Campbell", &req, nows[i], buf, sizeof buf);
        assert_int_equal(proto_parse_at(buf, n, &at), 0);
        assert_span(at.server, "Campbell");
        assert_span(at.id, "c-1");
        assert_span(at.location, "-90.000+180");
        assert_span(at.time, "000123.000000001");
        assert_int_equal(at.client_time.sec, 123);
        assert_int_equal(at.client_time.nsec, 1);
    }
}

static void at_bad(const char *line, size_t len)
{
    struct proto_at at;

    if (proto_parse_at(line, len, &at) != -1)
        fail_msg("AT line accepted: \"%.*s\"", (int)len, line);
}

#define AT_BAD(s) at_bad(LIT(s))

static void test_parse_at_canonical_only(void **state)
{
    char line[256];

    (void)state;
    AT_BAD(" " AT_EX);
    AT_BAD(AT_EX " ");
    AT_BAD(AT_EX "\n");
    AT_BAD(AT_EX "\r");
    AT_BAD("AT  Hill +0.263873386 kiwi.cs.ucla.edu +34.068930-118.445127 "
           "1621464827.959498503");
    AT_BAD("AT Hill +0.263873386 kiwi.cs.ucla.edu  +34.068930-118.445127 "
           "1621464827.959498503");
    /* Each separator, in turn, as any other whitespace character. */
    for (size_t i = 1; i < N_SPACES; i++) {
        size_t seen = 0;

        for (size_t at = 0; at < sizeof AT_EX - 1; at++) {
            if (AT_EX[at] != ' ')
                continue;
            memcpy(line, AT_EX, sizeof AT_EX);
            line[at] = SPACES[i];
            at_bad(line, sizeof AT_EX - 1);
            seen++;
        }
        assert_int_equal(seen, 5);
    }
}

static void test_parse_at_fields(void **state)
{
    char line[256];
    char name[80];

    (void)state;
    AT_BAD("");
    AT_BAD("AT");
    AT_BAD("AT Hill +0.263873386 kiwi +34.068930-118.445127");
    AT_BAD("AT Hill +0.263873386 kiwi +34.068930-118.445127 1.5 x");
    AT_BAD("at Hill +0.263873386 kiwi +34.068930-118.445127 1.5");
    AT_BAD("ATX Hill +0.263873386 kiwi +34.068930-118.445127 1.5");
    AT_BAD("IAMAT Hill +0.263873386 kiwi +34.068930-118.445127 1.5");
    /* The difference: sign, digits, point, exactly nine digits. */
    AT_BAD("AT Hill 0.263873386 kiwi +34.068930-118.445127 1.5");
    AT_BAD("AT Hill +0.26387338 kiwi +34.068930-118.445127 1.5");
    AT_BAD("AT Hill +0.2638733860 kiwi +34.068930-118.445127 1.5");
    AT_BAD("AT Hill +.263873386 kiwi +34.068930-118.445127 1.5");
    AT_BAD("AT Hill +0263873386 kiwi +34.068930-118.445127 1.5");
    AT_BAD("AT Hill +0.26387338x kiwi +34.068930-118.445127 1.5");
    AT_BAD("AT Hill +0x.263873386 kiwi +34.068930-118.445127 1.5");
    AT_BAD("AT Hill ++0.263873386 kiwi +34.068930-118.445127 1.5");
    AT_BAD("AT Hill +12345678901234567890.000000000 kiwi +0+0 1.5");
    assert_int_equal(
        proto_parse_at(LIT("AT Hill -1234567890123456789.000000000 k +0+0 1"),
                       &(struct proto_at){0}),
        0);
    /* Location and time as for IAMAT. */
    AT_BAD("AT Hill +0.263873386 kiwi +34.068930 1.5");
    AT_BAD("AT Hill +0.263873386 kiwi +90.0000001+0 1.5");
    AT_BAD("AT Hill +0.263873386 kiwi +34.068930-118.445127 1.");
    AT_BAD("AT Hill +0.263873386 kiwi +34.068930-118.445127 -1.5");
    AT_BAD("AT Hill +0.263873386 kiwi +34.068930-118.445127 1.1234567890");
    /* The server name: up to 64 bytes. */
    memset(name, 'n', sizeof name);
    for (int len = 63; len <= 65; len++) {
        int n = snprintf(line, sizeof line, "AT %.*s +0.000000000 k +0+0 1",
                         len, name);
        struct proto_at at;
        assert_int_equal(proto_parse_at(line, (size_t)n, &at),
                         len <= 64 ? 0 : -1);
    }
}

/* proto_at_of_iamat() gives what parsing the formatted line would. */
static void test_at_of_iamat_matches_parse(void **state)
{
    static const char *lines[] = {
        "IAMAT kiwi.cs.ucla.edu +34.068930-118.445127 1621464827.959498503",
        "IAMAT a +0+0 1",
        "IAMAT x\001y -90+180 99999999999.1",
    };
    static const struct htime nows[] = {
        {1621464828, 223372889}, {0, 0}, {5, 999999999}, {1999999999, 1},
    };

    (void)state;
    for (size_t i = 0; i < sizeof lines / sizeof *lines; i++) {
        for (size_t k = 0; k < sizeof nows / sizeof *nows; k++) {
            struct proto_request r;
            struct proto_at built, parsed;
            char line[256];
            size_t n;

            assert_int_equal(proto_parse_request(lines[i], strlen(lines[i]), &r),
                             PROTO_IAMAT);
            n = proto_format_at("Hill", &r.u.iamat, nows[k], line, sizeof line);
            assert_int_equal(proto_parse_at(line, n, &parsed), 0);
            proto_at_of_iamat(line, n, 4, &r.u.iamat, &built);
            assert_ptr_equal(built.server.p, parsed.server.p);
            assert_int_equal(built.server.len, parsed.server.len);
            assert_ptr_equal(built.diff.p, parsed.diff.p);
            assert_int_equal(built.diff.len, parsed.diff.len);
            assert_ptr_equal(built.id.p, parsed.id.p);
            assert_int_equal(built.id.len, parsed.id.len);
            assert_ptr_equal(built.location.p, parsed.location.p);
            assert_int_equal(built.location.len, parsed.location.len);
            assert_ptr_equal(built.time.p, parsed.time.p);
            assert_int_equal(built.time.len, parsed.time.len);
            assert_int_equal(built.client_time.sec, parsed.client_time.sec);
            assert_int_equal(built.client_time.nsec, parsed.client_time.nsec);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_is_space_exactly_six),
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_split_each_space),
        cmocka_unit_test(test_spec_examples),
        cmocka_unit_test(test_every_space_everywhere),
        cmocka_unit_test(test_not_whitespace),
        cmocka_unit_test(test_operand_counts),
        cmocka_unit_test(test_verbs),
        cmocka_unit_test(test_nul_bytes),
        cmocka_unit_test(test_request_numbers),
        cmocka_unit_test(test_location_ok),
        cmocka_unit_test(test_location_bounds),
        cmocka_unit_test(test_location_syntax),
        cmocka_unit_test(test_location_length),
        cmocka_unit_test(test_location_values),
        cmocka_unit_test(test_at_of_iamat_matches_parse),
        cmocka_unit_test(test_radius_ok),
        cmocka_unit_test(test_radius_bad),
        cmocka_unit_test(test_radius_metres_cap),
        cmocka_unit_test(test_bound),
        cmocka_unit_test(test_format_at_spec),
        cmocka_unit_test(test_format_at_copies_operands),
        cmocka_unit_test(test_format_at_negative),
        cmocka_unit_test(test_format_at_cap),
        cmocka_unit_test(test_parse_at),
        cmocka_unit_test(test_parse_at_roundtrip),
        cmocka_unit_test(test_parse_at_canonical_only),
        cmocka_unit_test(test_parse_at_fields),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
