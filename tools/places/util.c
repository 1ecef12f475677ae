#include "util.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int util_parse_decimal(const char *s, size_t len, double *out)
{
    char tmp[64];
    size_t i = 0, digits = 0;

    if (len == 0 || len >= sizeof tmp)
        return -1;
    if (s[i] == '+' || s[i] == '-')
        i++;
    while (i < len && s[i] >= '0' && s[i] <= '9') {
        i++;
        digits++;
    }
    if (i < len && s[i] == '.') {
        i++;
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            i++;
            digits++;
        }
    }
    if (i != len || digits == 0)
        return -1;
    /* Checked text only, so strtod cannot wander off (and the C locale
     * is never changed, so '.' is the decimal point). */
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    *out = strtod(tmp, NULL);
    return 0;
}

static const char b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t util_b64url_encode(const unsigned char *p, size_t n, char *out)
{
    size_t o = 0, i = 0;

    for (; i + 3 <= n; i += 3) {
        unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8 | p[i + 2];
        out[o++] = b64[v >> 18 & 63];
        out[o++] = b64[v >> 12 & 63];
        out[o++] = b64[v >> 6 & 63];
        out[o++] = b64[v & 63];
    }
    if (n - i == 1) {
        unsigned v = (unsigned)p[i] << 16;
        out[o++] = b64[v >> 18 & 63];
        out[o++] = b64[v >> 12 & 63];
    } else if (n - i == 2) {
        unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8;
        out[o++] = b64[v >> 18 & 63];
        out[o++] = b64[v >> 12 & 63];
        out[o++] = b64[v >> 6 & 63];
    }
    out[o] = '\0';
    return o;
}

static int b64_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

long util_b64url_decode(const char *s, size_t len, unsigned char *out,
                        size_t cap)
{
    size_t o = 0;
    unsigned acc = 0;
    int bits = 0;

    if (len % 4 == 1)
        return -1;              /* no encoder ever ends a group so */
    for (size_t i = 0; i < len; i++) {
        int v = b64_value(s[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6 | (unsigned)v) & 0xffffff;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o >= cap)
                return -1;
            out[o++] = (unsigned char)(acc >> bits & 0xff);
        }
    }
    /* Leftover bits must be zero, so every token has one spelling. */
    if (bits > 0 && (acc & ((1u << bits) - 1)) != 0)
        return -1;
    return (long)o;
}

size_t util_format_coord(double x, char *buf)
{
    char tmp[32];
    long long v;
    unsigned long long a, whole, frac;
    size_t n = 0, t = 0;
    int digits = 7;

    if (!isfinite(x) || fabs(x) > 1e9) {
        buf[0] = '0';
        buf[1] = '\0';
        return 1;
    }
    v = llround(x * 1e7);
    a = v < 0 ? (unsigned long long)(-v) : (unsigned long long)v;
    whole = a / 10000000ull;
    frac = a % 10000000ull;
    if (v < 0)
        buf[n++] = '-';
    do {
        tmp[t++] = (char)('0' + whole % 10);
        whole /= 10;
    } while (whole);
    while (t)
        buf[n++] = tmp[--t];
    while (frac && frac % 10 == 0) {
        frac /= 10;
        digits--;
    }
    if (frac) {
        buf[n++] = '.';
        for (int i = digits - 1; i >= 0; i--) {
            buf[n + (size_t)i] = (char)('0' + frac % 10);
            frac /= 10;
        }
        n += (size_t)digits;
    }
    buf[n] = '\0';
    return n;
}

cJSON *util_json_lat_lng(double lat, double lng, const char *lat_key,
                         const char *lng_key)
{
    cJSON *o = cJSON_CreateObject();
    char num[32];

    util_format_coord(lat, num);
    cJSON_AddRawToObject(o, lat_key, num);
    util_format_coord(lng, num);
    cJSON_AddRawToObject(o, lng_key, num);
    return o;
}

double util_wrap_lng(double lng)
{
    while (lng > 180)
        lng -= 360;
    while (lng < -180)
        lng += 360;
    return lng;
}
