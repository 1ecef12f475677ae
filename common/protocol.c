#include "protocol.h"

#include <stdio.h>
#include <string.h>

/* SPEC.md's six whitespace bytes, as a table: the split loop is hot. */
static const unsigned char space_table[256] = {
    [' '] = 1, ['\t'] = 1, ['\n'] = 1, ['\r'] = 1, ['\f'] = 1, ['\v'] = 1,
};

int proto_is_space(unsigned char c)
{
    return space_table[c];
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int span_is(struct proto_span s, const char *word)
{
    size_t n = strlen(word);
    return s.len == n && memcmp(s.p, word, n) == 0;
}

size_t proto_split(const char *line, size_t len, struct proto_span *fields,
                   size_t max)
{
    size_t i = 0, count = 0;

    while (i < len) {
        while (i < len && space_table[(unsigned char)line[i]])
            i++;
        if (i == len)
            break;
        size_t start = i;
        while (i < len && !space_table[(unsigned char)line[i]])
            i++;
        if (count < max) {
            fields[count].p = line + start;
            fields[count].len = i - start;
        }
        count++;
    }
    return count;
}

/* One signed decimal of a location: [+-]DIGITS[.DIGITS], stopping at the
 * next sign.  Checks |value| <= limit exactly, on the digits themselves. */
static int parse_coordinate(const char *s, size_t len, size_t *used,
                            int limit, double *value)
{
    size_t i = 0;
    int negative;
    long int_value = 0;
    size_t int_digits = 0, frac_digits = 0;
    int frac_nonzero = 0;
    double frac = 0, scale = 0.1;

    if (len == 0 || (s[0] != '+' && s[0] != '-'))
        return -1;
    negative = s[0] == '-';
    i = 1;
    while (i < len && is_digit(s[i])) {
        /* Leading zeros are harmless; stop counting past any real value. */
        if (int_value <= 1000)
            int_value = int_value * 10 + (s[i] - '0');
        int_digits++;
        i++;
    }
    if (int_digits == 0)
        return -1;
    if (i < len && s[i] == '.') {
        i++;
        while (i < len && is_digit(s[i])) {
            if (s[i] != '0')
                frac_nonzero = 1;
            if (frac_digits < 17) {
                frac += (s[i] - '0') * scale;
                scale /= 10;
            }
            frac_digits++;
            i++;
        }
        if (frac_digits == 0)
            return -1;
    }
    if (int_value > limit || (int_value == limit && frac_nonzero))
        return -1;
    *value = (negative ? -1.0 : 1.0) * ((double)int_value + frac);
    *used = i;
    return 0;
}

int proto_parse_location(const char *s, size_t len, struct proto_location *out)
{
    size_t used_lat, used_lon;
    double lat, lon;

    /* protocol.h promises this limit; callers may size buffers by it. */
    if (len > PROTO_LOCATION_MAX)
        return -1;
    if (parse_coordinate(s, len, &used_lat, 90, &lat) < 0)
        return -1;
    if (parse_coordinate(s + used_lat, len - used_lat, &used_lon, 180, &lon) < 0)
        return -1;
    if (used_lat + used_lon != len)
        return -1;
    out->lat = lat;
    out->lon = lon;
    return 0;
}

int proto_parse_radius(const char *s, size_t len, double *km,
                       char *metres, size_t metres_cap)
{
    size_t i = 0, int_end, frac_start = 0, frac_end = 0, significant = 0;
    int nonzero = 0;
    long int_value = 0;
    double frac = 0, scale = 0.1;
    char text[32];
    size_t t = 0;

    while (i < len && is_digit(s[i])) {
        if (int_value <= 1000)
            int_value = int_value * 10 + (s[i] - '0');
        if (s[i] != '0')
            nonzero = 1;
        i++;
    }
    int_end = i;
    if (int_end == 0)
        return -1;
    if (i < len) {
        if (s[i] != '.')
            return -1;
        frac_start = ++i;
        while (i < len && is_digit(s[i])) {
            if (s[i] != '0')
                nonzero = 1;
            /* A double holds about 17 significant digits; count them from
             * the first non-zero one, or "0.<17 zeros>1" would give 0 km. */
            if (significant < 17)
                frac += (s[i] - '0') * scale;
            if (nonzero)
                significant++;
            scale /= 10;
            i++;
        }
        frac_end = i;
        if (frac_end == frac_start || i != len)
            return -1;
    }
    if (!nonzero)
        return -1;              /* zero is not > 0 */
    if (int_value > PROTO_RADIUS_MAX_KM)
        return -1;
    if (int_value == PROTO_RADIUS_MAX_KM) {
        for (size_t k = frac_start; k < frac_end; k++)
            if (s[k] != '0')
                return -1;
    }
    /* Metres, exactly: move the decimal point three places right.  The
     * integer part is at most 50, so it and 3 digits always fit. */
    t = (size_t)snprintf(text, sizeof text, "%ld", int_value);
    for (size_t k = 0; k < 3; k++) {
        size_t at = frac_start + k;
        text[t++] = (frac_start && at < frac_end) ? s[at] : '0';
    }
    text[t] = '\0';
    /* Strip leading zeros ("0500" -> "500") but keep one digit. */
    size_t lead = 0;
    while (lead + 1 < t && text[lead] == '0')
        lead++;
    memmove(text, text + lead, t - lead + 1);
    t -= lead;
    if (frac_start && frac_end - frac_start > 3) {
        size_t rest_start = frac_start + 3, rest_end = frac_end;
        while (rest_end > rest_start && s[rest_end - 1] == '0')
            rest_end--;
        if (rest_end > rest_start) {
            /* Cutting the digits would send another radius (even zero
             * metres): refuse what cannot be written exactly. */
            if (t + 1 + (rest_end - rest_start) + 1 > sizeof text)
                return -1;
            text[t++] = '.';
            for (size_t k = rest_start; k < rest_end; k++)
                text[t++] = s[k];
            text[t] = '\0';
        }
    }
    if (strlen(text) + 1 > metres_cap)
        return -1;
    memcpy(metres, text, strlen(text) + 1);
    *km = (double)int_value + frac;
    return 0;
}

int proto_parse_bound(const char *s, size_t len, int *out)
{
    int value = 0;

    if (len == 0)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (!is_digit(s[i]))
            return -1;
        value = value * 10 + (s[i] - '0');
        if (value > PROTO_BOUND_MAX)
            return -1;
    }
    if (value < 1)
        return -1;
    *out = value;
    return 0;
}

enum proto_kind proto_parse_request(const char *line, size_t len,
                                    struct proto_request *out)
{
    struct proto_span f[5];
    size_t n = proto_split(line, len, f, 5);

    memset(out, 0, sizeof *out);
    out->kind = PROTO_INVALID;
    if (n != 4)
        return PROTO_INVALID;

    if (span_is(f[0], "IAMAT")) {
        struct proto_iamat *r = &out->u.iamat;
        r->id = f[1];
        r->location = f[2];
        r->time = f[3];
        if (proto_parse_location(f[2].p, f[2].len, &r->where) < 0)
            return PROTO_INVALID;
        if (htime_parse(f[3].p, f[3].len, &r->client_time) < 0)
            return PROTO_INVALID;
        out->kind = PROTO_IAMAT;
    } else if (span_is(f[0], "WHATSAT")) {
        struct proto_whatsat *r = &out->u.whatsat;
        r->id = f[1];
        r->radius = f[2];
        r->bound = f[3];
        if (proto_parse_radius(f[2].p, f[2].len, &r->radius_km, r->radius_m,
                               sizeof r->radius_m) < 0)
            return PROTO_INVALID;
        if (proto_parse_bound(f[3].p, f[3].len, &r->max_results) < 0)
            return PROTO_INVALID;
        out->kind = PROTO_WHATSAT;
    }
    return out->kind;
}

/* DIFF of an AT line: [+-]DIGITS.NNNNNNNNN */
static int valid_diff(struct proto_span d)
{
    size_t i = 1, digits = 0;

    if (d.len < 12 || (d.p[0] != '+' && d.p[0] != '-'))
        return 0;
    while (i < d.len && is_digit(d.p[i])) {
        i++;
        digits++;
    }
    if (digits == 0 || digits > 19 || i >= d.len || d.p[i] != '.')
        return 0;
    i++;
    if (d.len - i != 9)
        return 0;
    for (; i < d.len; i++)
        if (!is_digit(d.p[i]))
            return 0;
    return 1;
}

int proto_parse_at(const char *line, size_t len, struct proto_at *out)
{
    struct proto_span f[7];
    size_t n = proto_split(line, len, f, 7), total = 0;

    if (n != 6 || !span_is(f[0], "AT"))
        return -1;
    /* Only the canonical form (single spaces, nothing around) is a stored
     * line, so every node compares the same bytes. */
    for (size_t k = 0; k < 6; k++)
        total += f[k].len;
    if (line[0] != 'A' || total + 5 != len)
        return -1;
    /* ...and those five separators must be spaces, not tabs or CRs. */
    for (size_t k = 1; k < 6; k++)
        if (f[k].p[-1] != ' ')
            return -1;
    out->server = f[1];
    out->diff = f[2];
    out->id = f[3];
    out->location = f[4];
    out->time = f[5];
    if (f[1].len > 64 || !valid_diff(f[2]))
        return -1;
    if (proto_parse_location(f[4].p, f[4].len, &out->where) < 0)
        return -1;
    if (htime_parse(f[5].p, f[5].len, &out->client_time) < 0)
        return -1;
    return 0;
}

size_t proto_format_at(const char *server, const struct proto_iamat *req,
                       struct htime now, char *buf, size_t cap)
{
    char diff[HTIME_DIFF_MAX + 1];
    size_t server_len = strlen(server), diff_len, need;
    char *p;

    diff_len = htime_format_diff(now, req->client_time, diff, sizeof diff);
    need = 3 + server_len + 1 + diff_len + 1 + req->id.len + 1 +
           req->location.len + 1 + req->time.len;
    if (need + 1 > cap)
        return need;
    /* memcpy, not printf: the client ID may hold any byte but whitespace. */
    p = buf;
    memcpy(p, "AT ", 3), p += 3;
    memcpy(p, server, server_len), p += server_len;
    *p++ = ' ';
    memcpy(p, diff, diff_len), p += diff_len;
    *p++ = ' ';
    memcpy(p, req->id.p, req->id.len), p += req->id.len;
    *p++ = ' ';
    memcpy(p, req->location.p, req->location.len), p += req->location.len;
    *p++ = ' ';
    memcpy(p, req->time.p, req->time.len), p += req->time.len;
    *p = '\0';
    return need;
}

void proto_at_of_iamat(const char *line, size_t len, size_t server_len,
                       const struct proto_iamat *req, struct proto_at *out)
{
    /* "AT " SERVER " " DIFF " " ID " " LOCATION " " TIME: everything but
     * DIFF has a known length, and DIFF fills what is left. */
    size_t tail = 1 + req->id.len + 1 + req->location.len + 1 + req->time.len;
    const char *p = line + 3;

    out->server.p = p;
    out->server.len = server_len;
    p += server_len + 1;
    out->diff.p = p;
    out->diff.len = len - tail - (size_t)(p - line);
    p += out->diff.len + 1;
    out->id.p = p;
    out->id.len = req->id.len;
    p += req->id.len + 1;
    out->location.p = p;
    out->location.len = req->location.len;
    p += req->location.len + 1;
    out->time.p = p;
    out->time.len = req->time.len;
    out->where = req->where;
    out->client_time = req->client_time;
}
