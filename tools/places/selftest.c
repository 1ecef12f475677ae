#include "selftest.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "legacy.h"
#include "util.h"

#define SYNTHETIC_POINTS 20000
#define MAX_K 1000

/* xorshift64*: a fixed sequence, so a failure can be reproduced. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ull;
}

/* Uniform in [0, 1). */
static double unit(void)
{
    return (double)(rng() >> 11) / 9007199254740992.0;
}

static double uniform(double lo, double hi)
{
    return lo + (hi - lo) * unit();
}

static double clamp_lat(double lat)
{
    return lat > 90 ? 90 : lat < -90 ? -90 : lat;
}

/* A point uniform on the sphere. */
static void sphere_point(double *lat, double *lng)
{
    *lat = asin(uniform(-1, 1)) * 180.0 / M_PI;
    *lng = uniform(-180, 180);
}

/* A point that stresses the grid: near data, at poles, on the antimeridian
 * or exactly on cell edges. */
static void tricky_point(const struct places_data *d, double *lat, double *lng)
{
    unsigned kind = (unsigned)(rng() % 10);
    const struct place *p = d->n_places ? &d->places[rng() % d->n_places] : NULL;

    if (p && kind < 4) {
        *lat = clamp_lat(p->lat + uniform(-0.5, 0.5));
        *lng = util_wrap_lng(p->lng + uniform(-0.5, 0.5));
    } else if (p && kind == 4) {
        *lat = p->lat;
        *lng = p->lng;
    } else if (kind == 5) {
        *lat = (rng() & 1 ? 1 : -1) * uniform(89, 90);
        *lng = uniform(-180, 180);
    } else if (kind == 6) {
        sphere_point(lat, lng);
        *lng = (rng() & 1 ? 1 : -1) * uniform(179.5, 180);
    } else if (kind == 7) {
        *lat = -90 + 0.5 * (double)(rng() % 361);
        *lng = -180 + 0.5 * (double)(rng() % 721);
    } else {
        sphere_point(lat, lng);
    }
}

static double random_radius(void)
{
    switch (rng() % 6) {
    case 0:
        return uniform(0, 5000) + 1e-3;
    case 1:
        return 50000;
    case 2:
        return uniform(1e-3, 1);
    case 3:
        return uniform(50000, 2000000);    /* beyond the API, for the grid */
    default:
        return uniform(0, 50000) + 1e-3;
    }
}

/* Field by field: the struct has padding that memcmp would look at. */
static int same_hits(const struct grid_hit *a, const struct grid_hit *b,
                     size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (a[i].id != b[i].id || a[i].key != b[i].key)
            return 0;
    return 1;
}

static unsigned long compare(const struct grid *g, const struct places_data *d,
                             unsigned long n, const char *label, FILE *out)
{
    static const size_t ks[] = {1, 20, 60, MAX_K};
    struct grid_hit *a = malloc(MAX_K * sizeof *a), *b = malloc(MAX_K * sizeof *b);
    unsigned long bad = 0, nonempty = 0;

    if (!a || !b) {
        fprintf(out, "selftest: out of memory\n");
        free(a);
        free(b);
        return 1;
    }
    for (unsigned long i = 0; i < n; i++) {
        double lat, lng, radius = random_radius();
        size_t k = ks[rng() % 4], ta, tb, na, nb;

        tricky_point(d, &lat, &lng);
        na = grid_query(g, lat, lng, radius, k, a, &ta);
        nb = grid_scan(g, lat, lng, radius, k, b, &tb);
        if (ta)
            nonempty++;
        if (na != nb || ta != tb || !same_hits(a, b, na)) {
            if (bad < 10)
                fprintf(out, "selftest %s: MISMATCH at %.9f,%.9f r=%.3f k=%zu: "
                        "index %zu of %zu, scan %zu of %zu\n", label, lat, lng,
                        radius, k, na, ta, nb, tb);
            bad++;
        }
    }
    fprintf(out, "selftest %s: %lu queries over %zu places, %lu non-empty, "
            "%lu mismatches\n", label, n, g->n, nonempty, bad);
    free(a);
    free(b);
    return bad;
}

unsigned long selftest_run(const struct places_ctx *ctx, unsigned long n,
                           FILE *out)
{
    struct places_data fake = {0};
    struct grid g;
    unsigned long bad;

    bad = compare(&ctx->grid, &ctx->data, n, "data", out);

    /* Synthetic points: clusters, poles, the antimeridian, cell edges. */
    fake.places = calloc(SYNTHETIC_POINTS, sizeof *fake.places);
    if (fake.places == NULL) {
        fprintf(out, "selftest: out of memory\n");
        return bad + 1;
    }
    fake.n_places = SYNTHETIC_POINTS;
    for (size_t i = 0; i < SYNTHETIC_POINTS; i++) {
        struct place *p = &fake.places[i];
        switch (i % 5) {
        case 0: /* a dense cluster, many exact distance ties */
            p->lat = 34.0 + 0.001 * (double)(rng() % 200);
            p->lng = -118.5 + 0.001 * (double)(rng() % 200);
            break;
        case 1:
            p->lat = -90 + 0.5 * (double)(rng() % 361);
            p->lng = -180 + 0.5 * (double)(rng() % 721);
            break;
        default:
            tricky_point(&ctx->data, &p->lat, &p->lng);
        }
    }
    if (grid_build(&g, &fake) < 0) {
        fprintf(out, "selftest: out of memory\n");
        free(fake.places);
        return bad + 1;
    }
    bad += compare(&g, &fake, n, "synthetic", out);
    grid_free(&g);
    free(fake.places);
    return bad;
}

static double now_s(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

void selftest_bench(const struct places_ctx *ctx, unsigned long n, FILE *out)
{
    static const double radii[] = {5000, 50000};
    struct grid_hit hits[LEGACY_MAX];
    double *lat = malloc(n * sizeof *lat), *lng = malloc(n * sizeof *lng);

    if (!lat || !lng || ctx->data.n_places == 0 || n == 0) {
        fprintf(out, "bench: nothing to do\n");
        free(lat);
        free(lng);
        return;
    }
    for (unsigned long i = 0; i < n; i++) {
        const struct place *p = &ctx->data.places[rng() % ctx->data.n_places];
        lat[i] = clamp_lat(p->lat + uniform(-0.05, 0.05));
        lng[i] = util_wrap_lng(p->lng + uniform(-0.05, 0.05));
    }
    for (size_t r = 0; r < 2; r++) {
        double t0, t_index, t_answer;
        unsigned long found = 0;
        char loc[64], rad[32];

        t0 = now_s();
        for (unsigned long i = 0; i < n; i++) {
            size_t total;
            grid_query(&ctx->grid, lat[i], lng[i], radii[r], LEGACY_MAX, hits, &total);
            found += total;
        }
        t_index = now_s() - t0;
        snprintf(rad, sizeof rad, "%.0f", radii[r]);
        t0 = now_s();
        for (unsigned long i = 0; i < n; i++) {
            struct legacy_args a = {.location = loc, .radius = rad, .key = ctx->key};
            struct reply rep = {0};
            snprintf(loc, sizeof loc, "%.6f,%.6f", lat[i], lng[i]);
            legacy_answer(ctx, &a, &rep);
            reply_free(&rep);
        }
        t_answer = now_s() - t0;
        fprintf(out, "bench radius %5.0f m: %lu queries around random places, "
                "%.1f places in the circle on average\n"
                "  index only:            %8.2f us/query  %9.0f queries/s\n"
                "  index + legacy JSON:   %8.2f us/query  %9.0f queries/s\n",
                radii[r], n, (double)found / (double)n,
                t_index / (double)n * 1e6, (double)n / t_index,
                t_answer / (double)n * 1e6, (double)n / t_answer);
    }
    free(lat);
    free(lng);
}
