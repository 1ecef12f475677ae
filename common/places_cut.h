/* places_cut: a legacy Nearby Search answer cut to a WHATSAT's bound
 * without building a tree: one pass over the bytes that checks them
 * (strict JSON, and the shape SPEC.md promises) and finds where the
 * root object begins and ends and where `results` must be cut.  The reply
 * is then the upstream bytes themselves, in at most two spans.
 *
 * It accepts only what it can pass on verbatim: a pretty-printed object
 * (every top-level member on its own line), no empty line, no CR, each
 * promised key once and unescaped, status "OK" or "ZERO_RESULTS" as plain
 * text, a results array, html_attributions present, no number that a
 * double cannot hold.  Anything else is left to the cJSON path
 * (places_reply_legacy_tree), which rebuilds it into the promised shape.
 * Pure: no allocation. */
#ifndef HERD_PLACES_CUT_H
#define HERD_PLACES_CUT_H

#include <stddef.h>

/* Deeper nesting than this is left to the cJSON path. */
#define PLACES_CUT_MAX_DEPTH 64

/* The most results a cut keeps: WHATSAT's largest bound. */
#define PLACES_CUT_KEEP 20

/* One scan of an answer, good for any bound. */
struct places_scan {
    const char *root;           /* '{' .. '}' of the root object */
    size_t root_len;
    const char *ends[PLACES_CUT_KEEP];  /* just past each of the first results */
    const char *last;           /* just past the last result */
    int count;                  /* results in the answer */
    int zero_results;
};

struct places_cut {
    /* The reply is head then tail, both inside the body. */
    const char *head;
    size_t head_len;
    const char *tail;
    size_t tail_len;
    int n_results;              /* results kept (at most the bound) */
    int zero_results;           /* status ZERO_RESULTS (else OK) */
};

/* Check body and note where its results end.  0, or -1: the cJSON path
 * must decide. */
int places_cut_scan(const char *body, size_t len, struct places_scan *out);

/* The reply for a bound of 1..PLACES_CUT_KEEP from a good scan. */
void places_cut_bound(const struct places_scan *s, int max_results,
                      struct places_cut *out);

/* Both at once: 0 with *out set, or -1 (bound out of range, or the scan
 * failed). */
int places_cut_legacy(const char *body, size_t len, int max_results,
                      struct places_cut *out);

#endif
