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

#endif
