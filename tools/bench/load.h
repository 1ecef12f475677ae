/* load: the load generator.  C connections spread round-robin over the
 * targets, each keeping D requests in flight (pipelined), one libev loop,
 * one write per connection per wake-up.  With a rate, requests are paced
 * instead: a 1 ms tick releases what is due, D still caps what is in
 * flight per connection, so memory stays bounded when the server lags. */
#ifndef HERD_BENCH_LOAD_H
#define HERD_BENCH_LOAD_H

#include <stdint.h>
#include "hist.h"
#include "net.h"

struct load_opts {
    struct bench_target *targets;
    int n_targets;
    int conns;                  /* C */
    int depth;                  /* D */
    uint32_t keys;              /* K client ids */
    double warmup_s;
    double duration_s;          /* measured window */
    uint64_t total;             /* > 0: exactly this many requests instead */
    int whatsat_pct;            /* share of WHATSAT among herd requests */
    const char *radius;         /* WHATSAT operands, as text */
    const char *bound;
    int redis;                  /* inline "SET key value" instead */
    const char *prefix;         /* of client ids */
    uint64_t seed;
    double rate;                /* > 0: total requests/s, paced */
    int seq;                    /* ids in order 0, 1, ... K-1, 0, ... */
};

struct load_result {
    double elapsed_s;           /* of the measured window */
    uint64_t replies;           /* completed in the window */
    uint64_t ok, bad;           /* replies as expected / "? " or "-ERR" */
    uint64_t iamat, whatsat;    /* herd mode: completed of each kind */
    uint64_t bytes_in, bytes_out;
    int conns_lost;             /* closed by the server or failed */
    uint64_t skipped;           /* paced requests dropped in the window:
                                   every connection had D in flight for
                                   more than 10 ms worth of the rate */
    struct hist lat;            /* nanoseconds, send to full reply */
};

/* Run.  0, or -1 with a message in err (could not connect, no memory). */
int load_run(const struct load_opts *o, struct load_result *r,
             char *err, size_t errlen);

#endif
