#include "grid.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define RAD (M_PI / 180.0)
/* Slack on the bounding box, in degrees, so that rounding in the box's
 * own arithmetic can never drop a place the distance test would keep. */
#define GRID_PAD_DEG 1e-6

static int row_of(const struct grid *g, double lat)
{
    int r = (int)floor((lat + 90.0) / GRID_CELL_DEG);

    return r < 0 ? 0 : r >= g->rows ? g->rows - 1 : r;
}

static int col_wrap(const struct grid *g, long c)
{
    c %= g->cols;
    return (int)(c < 0 ? c + g->cols : c);
}

static long col_of(double lng)
{
    return (long)floor((lng + 180.0) / GRID_CELL_DEG);
}

int grid_build(struct grid *g, const struct places_data *d)
{
    size_t cells;
    uint32_t *fill;

    memset(g, 0, sizeof *g);
    g->rows = (int)(180.0 / GRID_CELL_DEG + 0.5);
    g->cols = (int)(360.0 / GRID_CELL_DEG + 0.5);
    cells = (size_t)g->rows * (size_t)g->cols;
    g->n = d->n_places;
    g->start = calloc(cells + 1, sizeof *g->start);
    fill = calloc(cells, sizeof *fill);
    g->pts = malloc((g->n ? g->n : 1) * sizeof *g->pts);
    g->by_id = malloc((g->n ? g->n : 1) * sizeof *g->by_id);
    if (!g->start || !fill || !g->pts || !g->by_id || g->n > UINT32_MAX) {
        free(fill);
        grid_free(g);
        errno = ENOMEM;
        return -1;
    }
    for (size_t i = 0; i < g->n; i++) {
        const struct place *p = &d->places[i];
        struct grid_point *q = &g->by_id[i];
        size_t cell = (size_t)row_of(g, p->lat) * (size_t)g->cols +
                      (size_t)col_wrap(g, col_of(p->lng));

        q->lat = p->lat * RAD;
        q->lng = p->lng * RAD;
        q->cos_lat = cos(q->lat);
        q->id = (uint32_t)i;
        g->start[cell + 1]++;
    }
    for (size_t c = 0; c < cells; c++)
        g->start[c + 1] += g->start[c];
    /* Counting sort; places keep their data order inside a cell. */
    for (size_t i = 0; i < g->n; i++) {
        const struct place *p = &d->places[i];
        size_t cell = (size_t)row_of(g, p->lat) * (size_t)g->cols +
                      (size_t)col_wrap(g, col_of(p->lng));

        g->pts[g->start[cell] + fill[cell]++] = g->by_id[i];
    }
    free(fill);
    return 0;
}

void grid_free(struct grid *g)
{
    free(g->start);
    free(g->pts);
    free(g->by_id);
    memset(g, 0, sizeof *g);
}

/* sin^2(dlat/2) + cos(lat1) cos(lat2) sin^2(dlng/2): the haversine "a",
 * which grows with distance.  Both search paths call this one function on
 * the same stored values, so they agree to the bit. */
static double hav_key(const struct grid_point *a, const struct grid_point *b)
{
    double s1 = sin((b->lat - a->lat) / 2.0);
    double s2 = sin((b->lng - a->lng) / 2.0);

    return s1 * s1 + a->cos_lat * b->cos_lat * s2 * s2;
}

double grid_distance_m(double lat1, double lng1, double lat2, double lng2)
{
    struct grid_point a = {lat1 * RAD, lng1 * RAD, cos(lat1 * RAD), 0};
    struct grid_point b = {lat2 * RAD, lng2 * RAD, cos(lat2 * RAD), 0};
    double h = hav_key(&a, &b);

    if (h > 1.0)
        h = 1.0;
    return 2.0 * GRID_EARTH_RADIUS_M * asin(sqrt(h));
}

/* The best k so far, as a max-heap: the worst kept hit on top. */
struct topk {
    struct grid_hit *h;
    size_t k, n, total;
    double limit;               /* largest key inside the circle */
};

static int worse(const struct grid_hit *a, const struct grid_hit *b)
{
    return a->key > b->key || (a->key == b->key && a->id > b->id);
}

static void sift_down(struct topk *t, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        struct grid_hit tmp;

        if (l < t->n && worse(&t->h[l], &t->h[m]))
            m = l;
        if (r < t->n && worse(&t->h[r], &t->h[m]))
            m = r;
        if (m == i)
            return;
        tmp = t->h[i];
        t->h[i] = t->h[m];
        t->h[m] = tmp;
        i = m;
    }
}

static void offer(struct topk *t, uint32_t id, double key)
{
    struct grid_hit hit = {id, key};

    if (key > t->limit)
        return;
    t->total++;
    if (t->n < t->k) {
        size_t i = t->n++;
        while (i > 0) {
            size_t up = (i - 1) / 2;
            if (!worse(&hit, &t->h[up]))
                break;
            t->h[i] = t->h[up];
            i = up;
        }
        t->h[i] = hit;
    } else if (t->k > 0 && worse(&t->h[0], &hit)) {
        t->h[0] = hit;
        sift_down(t, 0);
    }
}

static int cmp_hit(const void *a, const void *b)
{
    const struct grid_hit *x = a, *y = b;

    return worse(x, y) ? 1 : worse(y, x) ? -1 : 0;
}

static size_t finish(struct topk *t, size_t *total)
{
    qsort(t->h, t->n, sizeof *t->h, cmp_hit);
    *total = t->total;
    return t->n;
}

static void start(struct topk *t, struct grid_point *q, double lat,
                  double lng, double radius_m, size_t k,
                  struct grid_hit *out)
{
    double theta = radius_m / GRID_EARTH_RADIUS_M;
    double s = sin(theta / 2.0);

    q->lat = lat * RAD;
    q->lng = lng * RAD;
    q->cos_lat = cos(q->lat);
    q->id = 0;
    t->h = out;
    t->k = k;
    t->n = 0;
    t->total = 0;
    t->limit = theta >= M_PI ? 2.0 : s * s;
}

size_t grid_scan(const struct grid *g, double lat, double lng,
                 double radius_m, size_t k, struct grid_hit *out,
                 size_t *total)
{
    struct topk t;
    struct grid_point q;

    start(&t, &q, lat, lng, radius_m, k, out);
    for (size_t i = 0; i < g->n; i++)
        offer(&t, g->by_id[i].id, hav_key(&q, &g->by_id[i]));
    return finish(&t, total);
}

size_t grid_query(const struct grid *g, double lat, double lng,
                  double radius_m, size_t k, struct grid_hit *out,
                  size_t *total)
{
    struct topk t;
    struct grid_point q;
    double theta = radius_m / GRID_EARTH_RADIUS_M;
    double dlat = theta / RAD + GRID_PAD_DEG;
    double lo = lat - dlat, hi = lat + dlat;
    int r0 = row_of(g, lo), r1 = row_of(g, hi);
    long c0 = 0, c1 = g->cols - 1;

    start(&t, &q, lat, lng, radius_m, k, out);
    if (lo > -90.0 && hi < 90.0) {
        /* No pole inside: the circle spans asin(sin(theta)/cos(lat)) of
         * longitude either side of its centre. */
        double s = sin(theta) / cos(lat * RAD);

        if (s < 1.0) {
            double dlng = asin(s) / RAD + GRID_PAD_DEG;

            c0 = col_of(lng - dlng);
            c1 = col_of(lng + dlng);
            if (c1 - c0 + 1 >= g->cols) {
                c0 = 0;
                c1 = g->cols - 1;
            }
        }
    }
    for (int r = r0; r <= r1; r++) {
        for (long c = c0; c <= c1; c++) {
            size_t cell = (size_t)r * (size_t)g->cols + (size_t)col_wrap(g, c);

            for (uint32_t i = g->start[cell]; i < g->start[cell + 1]; i++)
                offer(&t, g->pts[i].id, hav_key(&q, &g->pts[i]));
        }
    }
    return finish(&t, total);
}
