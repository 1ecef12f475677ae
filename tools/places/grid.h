/* grid: a latitude/longitude bucket grid over the places, answering "the
 * k nearest places within r metres of a point" by great-circle distance
 * (haversine on a sphere of GRID_EARTH_RADIUS_M).
 *
 * Places are sorted into cells of GRID_CELL_DEG degrees; a query visits
 * only the cells that its circle's bounding box touches (all longitudes
 * when the circle holds a pole), and keeps the best k in a small heap.
 * Ties in distance go to the lower place index, so the answer is a pure
 * function of the data: grid_scan() (brute force) must give the same. */
#ifndef HERD_PLACES_GRID_H
#define HERD_PLACES_GRID_H

#include <stddef.h>
#include <stdint.h>

#include "data.h"

#define GRID_EARTH_RADIUS_M 6371008.8
#define GRID_CELL_DEG 0.5
/* Larger circles than this are refused (half the earth's circumference). */
#define GRID_MAX_RADIUS_M (3.14159265358979 * GRID_EARTH_RADIUS_M)

struct grid_point {
    double lat, lng;            /* radians */
    double cos_lat;
    uint32_t id;                /* index into places_data.places */
};

struct grid {
    int rows, cols;
    uint32_t *start;            /* rows*cols + 1 offsets into pts */
    struct grid_point *pts;     /* in cell order */
    struct grid_point *by_id;   /* in data order, for grid_scan() */
    size_t n;
};

struct grid_hit {
    uint32_t id;
    double key;                 /* haversine "a", ascending with distance */
};

/* 0, or -1 with errno (ENOMEM). */
int grid_build(struct grid *g, const struct places_data *d);
void grid_free(struct grid *g);

/* The nearest min(k, total) places within radius_m of (lat, lng) degrees,
 * nearest first, into out (room for k).  *total gets how many lie in the
 * circle.  Returns the count written. */
size_t grid_query(const struct grid *g, double lat, double lng,
                  double radius_m, size_t k, struct grid_hit *out,
                  size_t *total);

/* The same answer by looking at every place. */
size_t grid_scan(const struct grid *g, double lat, double lng,
                 double radius_m, size_t k, struct grid_hit *out,
                 size_t *total);

/* Metres between two points in degrees, by the same formula. */
double grid_distance_m(double lat1, double lng1, double lat2, double lng2);

#endif
