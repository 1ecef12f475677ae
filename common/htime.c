#include "htime.h"

#include <stdio.h>
#include <time.h>

int htime_parse(const char *s, size_t len, struct htime *out)
{
    size_t i = 0;
    int64_t sec = 0;
    int32_t nsec = 0;
    size_t int_digits = 0, frac_digits = 0;

    while (i < len && s[i] >= '0' && s[i] <= '9') {
        if (++int_digits > 18)
            return -1;          /* past int64 range, and past any real time */
        sec = sec * 10 + (s[i] - '0');
        i++;
    }
    if (int_digits == 0)
        return -1;
    if (i < len) {
        if (s[i] != '.')
            return -1;
        i++;
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            if (++frac_digits > 9)
                return -1;
            nsec = nsec * 10 + (s[i] - '0');
            i++;
        }
        if (frac_digits == 0 || i != len)
            return -1;
        for (size_t k = frac_digits; k < 9; k++)
            nsec *= 10;
    }
    out->sec = sec;
    out->nsec = nsec;
    return 0;
}

int htime_cmp(struct htime a, struct htime b)
{
    if (a.sec != b.sec)
        return a.sec < b.sec ? -1 : 1;
    if (a.nsec != b.nsec)
        return a.nsec < b.nsec ? -1 : 1;
    return 0;
}

struct htime htime_now(void)
{
    struct timespec ts;
    struct htime t;

    clock_gettime(CLOCK_REALTIME, &ts);
    t.sec = (int64_t)ts.tv_sec;
    t.nsec = (int32_t)ts.tv_nsec;
    return t;
}

size_t htime_format_diff(struct htime later, struct htime earlier,
                         char *buf, size_t cap)
{
    struct htime big = later, small = earlier;
    char sign = '+';
    int64_t sec;
    int32_t nsec;
    int n;

    if (htime_cmp(later, earlier) < 0) {
        big = earlier;
        small = later;
        sign = '-';
    }
    /* Both times are within 18 digits of seconds, so no overflow here. */
    sec = big.sec - small.sec;
    nsec = big.nsec - small.nsec;
    if (nsec < 0) {
        nsec += 1000000000;
        sec -= 1;
    }
    /* By hand, not snprintf: this runs for every IAMAT. */
    char digits[24];
    size_t nd = 0, len;
    uint64_t s = (uint64_t)sec;

    do {
        digits[nd++] = (char)('0' + s % 10);
        s /= 10;
    } while (s > 0);
    len = 1 + nd + 1 + 9;
    if (len + 1 > cap) {
        n = snprintf(buf, cap, "%c%lld.%09ld", sign, (long long)sec, (long)nsec);
        return n < 0 ? 0 : (size_t)n;
    }
    buf[0] = sign;
    for (size_t k = 0; k < nd; k++)
        buf[1 + k] = digits[nd - 1 - k];
    buf[1 + nd] = '.';
    for (int k = 8; k >= 0; k--) {
        buf[2 + nd + (size_t)k] = (char)('0' + nsec % 10);
        nsec /= 10;
    }
    buf[len] = '\0';
    return len;
}

size_t htime_format_utc(struct htime t, char *buf, size_t cap)
{
    time_t secs = (time_t)t.sec;
    struct tm tm;
    int n;

    gmtime_r(&secs, &tm);
    n = snprintf(buf, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                 tm.tm_min, tm.tm_sec, (long)(t.nsec / 1000));
    return n < 0 ? 0 : (size_t)n;
}
