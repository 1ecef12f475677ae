/* protocol: the client protocol of SPEC.md, parsed and formatted without
 * sockets.  Every parser takes a pointer and a length (lines may hold NUL
 * bytes) and never writes into the line. */
#ifndef HERD_PROTOCOL_H
#define HERD_PROTOCOL_H

#include <stddef.h>
#include "htime.h"

struct proto_span {
    const char *p;
    size_t len;
};

struct proto_location {
    double lat, lon;            /* for the places query, not for equality */
};

struct proto_iamat {
    struct proto_span id, location, time;
    struct proto_location where;
    struct htime client_time;
};

struct proto_whatsat {
    struct proto_span id, radius, bound;
    double radius_km;
    char radius_m[32];          /* radius in metres as exact decimal text */
    int max_results;            /* 1..20 */
};

/* A stored AT line (from this node or from a flood), taken apart. */
struct proto_at {
    struct proto_span server, diff, id, location, time;
    struct proto_location where;
    struct htime client_time;
};

enum proto_kind {
    PROTO_INVALID = 0,
    PROTO_IAMAT,
    PROTO_WHATSAT,
};

struct proto_request {
    enum proto_kind kind;
    union {
        struct proto_iamat iamat;
        struct proto_whatsat whatsat;
    } u;
};

/* Bounds of SPEC.md. */
#define PROTO_RADIUS_MAX_KM 50
#define PROTO_BOUND_MAX 20
/* Longest location text accepted; far beyond any real coordinate. */
#define PROTO_LOCATION_MAX 60

/* Space, tab, LF, CR, form feed or vertical tab: SPEC.md's six. */
int proto_is_space(unsigned char c);

/* Split into fields at runs of whitespace.  Fills at most max spans and
 * returns how many fields the line has (which may exceed max). */
size_t proto_split(const char *line, size_t len, struct proto_span *fields,
                   size_t max);

/* Parse one client request line (its "\n" may or may not be included).
 * Returns the kind; PROTO_INVALID for anything SPEC.md says gets "? ". */
enum proto_kind proto_parse_request(const char *line, size_t len,
                                    struct proto_request *out);

/* "+34.068930-118.445127": sign mandatory, digits, optional fraction,
 * latitude in [-90, 90], longitude in [-180, 180].  0 or -1. */
int proto_parse_location(const char *s, size_t len, struct proto_location *out);

/* WHATSAT radius: decimal km, > 0 and <= 50; fills km and metres text. */
int proto_parse_radius(const char *s, size_t len, double *km,
                       char *metres, size_t metres_cap);

/* WHATSAT bound: an integer from 1 to 20 (leading zeros allowed). */
int proto_parse_bound(const char *s, size_t len, int *out);

/* Parse "AT SERVER DIFF ID LOCATION TIME" as written by
 * proto_format_at().  0 or -1. */
int proto_parse_at(const char *line, size_t len, struct proto_at *out);

/* Write the AT reply line (without "\n") for an IAMAT received by server
 * at receive time now.  Returns the length it needs; writes only when it
 * fits in cap (like snprintf, NUL-terminated). */
size_t proto_format_at(const char *server, const struct proto_iamat *req,
                       struct htime now, char *buf, size_t cap);

/* The parsed form of a line proto_format_at() just wrote for req, without
 * parsing it again: the spans point into line. */
void proto_at_of_iamat(const char *line, size_t len, size_t server_len,
                       const struct proto_iamat *req, struct proto_at *out);

#endif
