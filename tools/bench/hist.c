#include "hist.h"

#include <math.h>
#include <string.h>

void hist_reset(struct hist *h)
{
    memset(h, 0, sizeof *h);
}

static unsigned hist_index(uint64_t v)
{
    unsigned e, shift;

    if (v < HIST_SUB)
        return (unsigned)v;
    e = 63u - (unsigned)__builtin_clzll(v);          /* >= HIST_SUB_BITS */
    shift = e - (HIST_SUB_BITS - 1);
    /* v >> shift lies in [HIST_SUB / 2, HIST_SUB). */
    return HIST_SUB + (e - HIST_SUB_BITS) * (HIST_SUB / 2) +
           (unsigned)((v >> shift) - HIST_SUB / 2);
}

/* The largest value that falls into bucket i. */
static uint64_t hist_upper(unsigned i)
{
    unsigned e, shift;
    uint64_t m;

    if (i < HIST_SUB)
        return i;
    e = (i - HIST_SUB) / (HIST_SUB / 2) + HIST_SUB_BITS;
    m = (i - HIST_SUB) % (HIST_SUB / 2) + HIST_SUB / 2;
    shift = e - (HIST_SUB_BITS - 1);
    if (e == 63 && m == HIST_SUB - 1)
        return UINT64_MAX;
    return ((m + 1) << shift) - 1;
}

void hist_add(struct hist *h, uint64_t v)
{
    if (h->count == 0 || v < h->min)
        h->min = v;
    if (v > h->max)
        h->max = v;
    h->count++;
    h->sum += v;
    h->buckets[hist_index(v)]++;
}

void hist_merge(struct hist *into, const struct hist *from)
{
    if (from->count == 0)
        return;
    if (into->count == 0 || from->min < into->min)
        into->min = from->min;
    if (from->max > into->max)
        into->max = from->max;
    into->count += from->count;
    into->sum += from->sum;
    for (unsigned i = 0; i < HIST_BUCKETS; i++)
        into->buckets[i] += from->buckets[i];
}

uint64_t hist_percentile(const struct hist *h, double p)
{
    uint64_t rank, seen = 0;

    if (h->count == 0)
        return 0;
    rank = (uint64_t)ceil(p / 100.0 * (double)h->count);
    if (rank < 1)
        rank = 1;
    if (rank > h->count)
        rank = h->count;
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        seen += h->buckets[i];
        if (seen >= rank) {
            uint64_t u = hist_upper(i);
            return u < h->max ? u : h->max;
        }
    }
    return h->max;
}

double hist_mean(const struct hist *h)
{
    return h->count ? (double)(h->sum / h->count) : 0.0;
}
