/* fuzz_client_line: proto_parse_request() on any bytes.  What parses must
 * obey SPEC.md's bounds, and the AT line written for an IAMAT must parse
 * back (proto_parse_at) to the same fields.  proto_parse_at() itself also
 * gets the raw bytes: what it accepts must be canonical. */
#include "tests/fuzz/fuzz.h"

#include "common/htime.h"
#include "common/protocol.h"

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int no_space(struct proto_span s)
{
    for (size_t i = 0; i < s.len; i++)
        if (proto_is_space((unsigned char)s.p[i]))
            return 0;
    return 1;
}

/* A decimal text "DIGITS[.DIGITS]" as significant digits (no leading or
 * trailing zeros) and exponent e, its value being 0.DIGITS x 10^e.  The
 * caller frees digits. */
struct decimal {
    char *digits;
    size_t n;
    long e;
};

static void to_decimal(const char *s, size_t len, struct decimal *d)
{
    size_t int_len = 0, z = 0, n = 0;
    int seen_point = 0;
    char *all = malloc(len + 1);

    FUZZ_CHECK(all);
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '.') {
            FUZZ_CHECK(!seen_point);
            seen_point = 1;
            continue;
        }
        FUZZ_CHECK(is_digit(s[i]));
        all[n++] = s[i];
        if (!seen_point)
            int_len++;
    }
    while (z < n && all[z] == '0')
        z++;
    while (n > z && all[n - 1] == '0')
        n--;
    d->n = n - z;
    memmove(all, all + z, d->n);
    d->digits = all;
    d->e = (long)int_len - (long)z;
}

static void check_location(struct proto_span text,
                           const struct proto_location *w)
{
    FUZZ_CHECK(text.len >= 4 && text.len <= PROTO_LOCATION_MAX);
    FUZZ_CHECK(text.p[0] == '+' || text.p[0] == '-');
    FUZZ_CHECK(w->lat >= -90.0 && w->lat <= 90.0);
    FUZZ_CHECK(w->lon >= -180.0 && w->lon <= 180.0);
}

static void check_time(struct proto_span text, struct htime t)
{
    FUZZ_CHECK(text.len >= 1 && is_digit(text.p[0]));
    FUZZ_CHECK(t.sec >= 0 && t.sec <= 999999999999999999LL);
    FUZZ_CHECK(t.nsec >= 0 && t.nsec < 1000000000);
}

/* diff = "[+-]SEC.NNNNNNNNN"; checks that client + diff == now. */
static void check_diff(struct proto_span d, struct htime client,
                       struct htime now)
{
    int64_t sec = 0;
    int32_t nsec = 0;
    size_t i = 1;

    FUZZ_CHECK(d.len >= 12 && (d.p[0] == '+' || d.p[0] == '-'));
    while (i < d.len && d.p[i] != '.') {
        FUZZ_CHECK(is_digit(d.p[i]));
        FUZZ_CHECK(i < 20);
        sec = sec * 10 + (d.p[i] - '0');
        i++;
    }
    FUZZ_CHECK(i > 1 && d.len - i == 10);
    for (i++; i < d.len; i++) {
        FUZZ_CHECK(is_digit(d.p[i]));
        nsec = nsec * 10 + (d.p[i] - '0');
    }
    if (d.p[0] == '-') {
        /* now + |diff| == client, and never "-0.000000000" */
        FUZZ_CHECK(sec != 0 || nsec != 0);
        int64_t s = now.sec + sec;
        int32_t ns = now.nsec + nsec;
        if (ns >= 1000000000) {
            ns -= 1000000000;
            s++;
        }
        FUZZ_CHECK(s == client.sec && ns == client.nsec);
    } else {
        int64_t s = client.sec + sec;
        int32_t ns = client.nsec + nsec;
        if (ns >= 1000000000) {
            ns -= 1000000000;
            s++;
        }
        FUZZ_CHECK(s == now.sec && ns == now.nsec);
    }
}

static void check_iamat(const uint8_t *data, size_t size,
                        const struct proto_iamat *r)
{
    static const char *servers[] = {
        "Hill",
        "N234567890123456789012345678901234567890123456789012345678901234",
    };
    const struct htime nows[] = {
        r->client_time,
        {0, 0},
        {1621464828, 223372036},
        {999999999999999999LL, 999999999},
    };
    const char *base = (const char *)data;

    FUZZ_CHECK(r->id.len > 0 && fuzz_within(r->id.p, r->id.len, base, size));
    FUZZ_CHECK(fuzz_within(r->location.p, r->location.len, base, size));
    FUZZ_CHECK(fuzz_within(r->time.p, r->time.len, base, size));
    FUZZ_CHECK(no_space(r->id) && no_space(r->location) && no_space(r->time));
    check_location(r->location, &r->where);
    check_time(r->time, r->client_time);

    for (size_t s = 0; s < sizeof servers / sizeof servers[0]; s++) {
        for (size_t k = 0; k < sizeof nows / sizeof nows[0]; k++) {
            size_t need = proto_format_at(servers[s], r, nows[k], NULL, 0);
            char *small = malloc(need), *buf = malloc(need + 1);
            struct proto_at at;

            FUZZ_CHECK(small && buf);
            /* Too small by one: nothing may be written. */
            memset(small, 0x5a, need);
            FUZZ_CHECK(proto_format_at(servers[s], r, nows[k], small, need) ==
                       need);
            for (size_t i = 0; i < need; i++)
                FUZZ_CHECK((unsigned char)small[i] == 0x5a);
            FUZZ_CHECK(proto_format_at(servers[s], r, nows[k], buf,
                                       need + 1) == need);
            FUZZ_CHECK(buf[need] == '\0');

            FUZZ_CHECK(proto_parse_at(buf, need, &at) == 0);
            FUZZ_CHECK(fuzz_bytes_eq(at.server.p, at.server.len, servers[s],
                                     strlen(servers[s])));
            FUZZ_CHECK(fuzz_bytes_eq(at.id.p, at.id.len, r->id.p, r->id.len));
            FUZZ_CHECK(fuzz_bytes_eq(at.location.p, at.location.len,
                                     r->location.p, r->location.len));
            FUZZ_CHECK(fuzz_bytes_eq(at.time.p, at.time.len, r->time.p,
                                     r->time.len));
            FUZZ_CHECK(htime_cmp(at.client_time, r->client_time) == 0);
            FUZZ_CHECK(at.where.lat == r->where.lat &&
                       at.where.lon == r->where.lon);
            check_diff(at.diff, r->client_time, nows[k]);
            free(small);
            free(buf);
        }
    }
}

static void check_whatsat(const struct proto_whatsat *r)
{
    struct decimal km, m;
    char *text;

    FUZZ_CHECK(r->id.len > 0 && no_space(r->id));
    FUZZ_CHECK(r->max_results >= 1 && r->max_results <= PROTO_BOUND_MAX);
    FUZZ_CHECK(r->radius_km > 0 && r->radius_km <= PROTO_RADIUS_MAX_KM);
    FUZZ_CHECK(memchr(r->radius_m, '\0', sizeof r->radius_m) != NULL);
    /* Metres are exactly the kilometres with the point moved by three. */
    to_decimal(r->radius.p, r->radius.len, &km);
    to_decimal(r->radius_m, strlen(r->radius_m), &m);
    FUZZ_CHECK(km.n > 0);
    FUZZ_CHECK(km.n == m.n && memcmp(km.digits, m.digits, km.n) == 0);
    FUZZ_CHECK(m.e == km.e + 3);
    /* Canonical metres: no leading zero but "0.x", no trailing '.'. */
    FUZZ_CHECK(r->radius_m[0] != '0' || r->radius_m[1] == '.');
    FUZZ_CHECK(r->radius_m[strlen(r->radius_m) - 1] != '.');
    /* The double is close to the text's value (fraction digits past the
     * 17th are dropped: an absolute error below 1e-17 km). */
    text = malloc(r->radius.len + 1);
    FUZZ_CHECK(text);
    memcpy(text, r->radius.p, r->radius.len);
    text[r->radius.len] = '\0';
    double want = strtod(text, NULL);
    FUZZ_CHECK(r->radius_km >= want * (1 - 1e-12) - 1e-16 &&
               r->radius_km <= want * (1 + 1e-12) + 1e-16);
    free(text);
    free(km.digits);
    free(m.digits);
}

/* What proto_parse_at() accepts is "AT" and five fields, single spaces. */
static void check_raw_at(const uint8_t *data, size_t size)
{
    const char *line = (const char *)data;
    struct proto_at at;
    char *copy;
    size_t n;

    if (proto_parse_at(line, size, &at) < 0)
        return;
    copy = malloc(size + 1);
    FUZZ_CHECK(copy);
    n = (size_t)snprintf(copy, size + 1, "AT ");
    struct proto_span parts[5] = {at.server, at.diff, at.id, at.location,
                                  at.time};
    for (size_t k = 0; k < 5; k++) {
        FUZZ_CHECK(parts[k].len > 0 && no_space(parts[k]));
        FUZZ_CHECK(n + parts[k].len + (k < 4) <= size);
        memcpy(copy + n, parts[k].p, parts[k].len);
        n += parts[k].len;
        if (k < 4)
            copy[n++] = ' ';
    }
    FUZZ_CHECK(n == size && memcmp(copy, line, size) == 0);
    FUZZ_CHECK(at.server.len <= 64);
    check_location(at.location, &at.where);
    check_time(at.time, at.client_time);
    free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct proto_request req, again;
    enum proto_kind kind;
    struct proto_span f[5];
    size_t nf;
    char *crlf;

    kind = proto_parse_request((const char *)data, size, &req);
    FUZZ_CHECK(kind == req.kind);
    FUZZ_CHECK(kind == PROTO_INVALID || kind == PROTO_IAMAT ||
               kind == PROTO_WHATSAT);
    nf = proto_split((const char *)data, size, f, 5);
    if (kind != PROTO_INVALID) {
        FUZZ_CHECK(nf == 4);
        FUZZ_CHECK(fuzz_bytes_eq(f[0].p, f[0].len,
                                 kind == PROTO_IAMAT ? "IAMAT" : "WHATSAT",
                                 kind == PROTO_IAMAT ? 5 : 7));
    }
    if (kind == PROTO_IAMAT)
        check_iamat(data, size, &req.u.iamat);
    else if (kind == PROTO_WHATSAT)
        check_whatsat(&req.u.whatsat);

    /* A line ending ("\r\n") never changes what a line means. */
    crlf = malloc(size + 2);
    FUZZ_CHECK(crlf);
    if (size)
        memcpy(crlf, data, size);
    memcpy(crlf + size, "\r\n", 2);
    FUZZ_CHECK(proto_parse_request(crlf, size + 2, &again) == kind);
    free(crlf);

    check_raw_at(data, size);
    return 0;
}
