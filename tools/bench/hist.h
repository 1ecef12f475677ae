/* hist: a latency histogram with log-linear buckets (HDR style).  Values
 * below 128 are exact; above, each power of two is split into 64 buckets,
 * so any recorded value is known to within 1/64 (1.6%).  Fixed size, no
 * allocation, and two histograms merge by adding counts. */
#ifndef HERD_BENCH_HIST_H
#define HERD_BENCH_HIST_H

#include <stdint.h>

#define HIST_SUB_BITS 7
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_BUCKETS (HIST_SUB + (64 - HIST_SUB_BITS) * (HIST_SUB / 2))

struct hist {
    uint64_t count;
    uint64_t min, max;
    long double sum;
    uint64_t buckets[HIST_BUCKETS];
};

void hist_reset(struct hist *h);
void hist_add(struct hist *h, uint64_t v);
void hist_merge(struct hist *into, const struct hist *from);

/* The value at percentile p (0 < p <= 100): the upper edge of the bucket
 * holding that rank, never above the largest value seen.  0 when empty. */
uint64_t hist_percentile(const struct hist *h, double p);

double hist_mean(const struct hist *h);

#endif
