/* fuzz.h: what the libFuzzer targets share.  A broken invariant aborts
 * with the file, line and condition, so libFuzzer saves the input. */
#ifndef HERD_TESTS_FUZZ_H
#define HERD_TESTS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_CHECK(cond)                                                    \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__,      \
                    __LINE__, #cond);                                       \
            abort();                                                        \
        }                                                                   \
    } while (0)

/* libFuzzer's entry points. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static inline int fuzz_bytes_eq(const char *a, size_t alen, const char *b,
                                size_t blen)
{
    return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

/* A span lies wholly inside [base, base + len). */
static inline int fuzz_within(const char *p, size_t n, const char *base,
                              size_t len)
{
    return p >= base && p <= base + len && n <= (size_t)(base + len - p);
}

/* A places target's input: the first byte the bound (1 to 20), the
 * second the HTTP status, the rest the body, copied into a buffer of
 * exactly its size so ASan sees any read past it.  The body is malloc'd
 * (free it); 0, or -1 when the input is too short to use. */
static inline int fuzz_places_input(const uint8_t *data, size_t size,
                                    int *max_results, long *http_status,
                                    char **body, size_t *body_len)
{
    static const long statuses[] = {0, 200, 204, 301, 400, 403, 404, 429,
                                    500, 503};

    if (size < 2)
        return -1;
    *max_results = 1 + data[0] % 20;
    *http_status = data[1] < 200 ? statuses[data[1] % 10] : (long)data[1] * 3;
    *body_len = size - 2;
    *body = malloc(*body_len ? *body_len : 1);
    FUZZ_CHECK(*body);
    if (*body_len)
        memcpy(*body, data + 2, *body_len);
    return 0;
}

#endif
