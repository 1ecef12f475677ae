/* selftest: proof and measurement modes of herd-places, run instead of
 * the server (--selftest N, --bench N). */
#ifndef HERD_PLACES_SELFTEST_H
#define HERD_PLACES_SELFTEST_H

#include <stdio.h>

#include "places.h"

/* N random queries (around places, at the poles, across the antimeridian,
 * on cell edges, small and huge radii) answered by grid_query() and by
 * grid_scan(), on ctx's data and on a synthetic set of points; every
 * answer (ids, order, totals) must match.  Reports to out; returns the
 * number of mismatches. */
unsigned long selftest_run(const struct places_ctx *ctx, unsigned long n,
                           FILE *out);

/* Time N queries at 5 km and at 50 km around random places: the index
 * alone, and the whole legacy answer (index + JSON).  Reports to out. */
void selftest_bench(const struct places_ctx *ctx, unsigned long n, FILE *out);

#endif
