/* htime: exact POSIX timestamps (seconds + nanoseconds), never a float. */
#ifndef HERD_HTIME_H
#define HERD_HTIME_H

#include <stddef.h>
#include <stdint.h>

struct htime {
    int64_t sec;
    int32_t nsec;               /* always in [0, 1e9) */
};

/* Longest text htime_format_diff() can write, without the NUL. */
#define HTIME_DIFF_MAX 32

/* Parse "DIGITS" or "DIGITS.FRACTION" (1..9 fraction digits, no sign, at
 * most 18 integer digits).  Returns 0, or -1 when the text is malformed. */
int htime_parse(const char *s, size_t len, struct htime *out);

/* -1, 0 or 1 as a is before, equal to or after b. */
int htime_cmp(struct htime a, struct htime b);

/* The wall clock now. */
struct htime htime_now(void);

/* Write later - earlier as a signed decimal with exactly nine fraction
 * digits and the sign always present ("+0.263873386", "-1.000000000").
 * Returns the length written (NUL-terminated); cap must be > HTIME_DIFF_MAX. */
size_t htime_format_diff(struct htime later, struct htime earlier,
                         char *buf, size_t cap);

/* "2026-11-28T16:40:00.123456Z" for a log line; returns the length. */
size_t htime_format_utc(struct htime t, char *buf, size_t cap);

#endif
