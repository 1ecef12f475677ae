/* converge: flood convergence.  For each sample, one IAMAT with a fresh
 * client id goes to the origin node; from the moment its reply arrives,
 * every other node is probed with "WHATSAT <id> 1 1" (one probe in flight
 * per node, the next sent as soon as a reply comes back).  A node that
 * has not applied the update answers "? ..." (unknown client); one that
 * has answers with the stored AT line.  So for each node:
 *
 *   lower = send time of its last "? " probe  - origin reply time
 *   upper = arrival of its first "AT " line   - origin reply time
 *
 * and the node applied the update somewhere in (lower, upper].  A sample's
 * convergence is the largest over the nodes; both bounds are reported. */
#ifndef HERD_BENCH_CONVERGE_H
#define HERD_BENCH_CONVERGE_H

#include <stdint.h>
#include "hist.h"
#include "net.h"

struct conv_opts {
    struct bench_target *origin;
    struct bench_target *targets;   /* the nodes to watch */
    int n_targets;
    int samples;
    double gap_s;                   /* idle time between samples */
    double timeout_s;               /* one sample must converge by then */
    const char *prefix;             /* of the fresh client ids */
    int probe;                      /* 0: only send the IAMATs (the nodes'
                                       logs tell when each applied them) */
};

#define CONV_MAX_TARGETS 256

struct conv_result {
    int samples;                    /* completed */
    uint64_t probes;                /* WHATSAT probes sent */
    struct hist upper, lower;       /* per sample, nanoseconds */
    struct hist origin_rtt;         /* IAMAT round trip at the origin */
    struct hist *per_target_upper;  /* n_targets of them */
};

/* Run.  0, or -1 with a message in err (cannot connect, a node never
 * applied an update within the timeout, an unexpected reply). */
int conv_run(const struct conv_opts *o, struct conv_result *r,
             char *err, size_t errlen);

void conv_result_free(struct conv_result *r);

#endif
