/* metrics: the numbers a node keeps for Prometheus (README "Monitoring").
 * One module for the whole node: every other module counts with a
 * one-line call, and the status writer copies the lot into
 * run_dir/NAME.status ("metrics"), from which the supervisor serves the
 * text exposition.
 *
 * Names follow Prometheus practice: base units (seconds, bytes), _total
 * for counters, cumulative histograms with one fixed set of buckets
 * (METRICS_BUCKETS).  Labels are only verbs, peer names, directions and
 * statuses: never a client id or a location. */
#ifndef HERD_METRICS_H
#define HERD_METRICS_H

#include <stddef.h>

#include "common/protocol.h"

struct cJSON;
struct node;

enum metrics_verb { METRICS_IAMAT, METRICS_WHATSAT, METRICS_INVALID, METRICS_VERBS };
enum metrics_dir { METRICS_OUT, METRICS_IN, METRICS_DIRS };

/* Upper bounds (seconds) of the histogram buckets, +Inf apart. */
#define METRICS_BUCKETS 19
extern const double metrics_bucket_le[METRICS_BUCKETS];

/* A monotonic clock in seconds, for the start of a timed operation. */
double metrics_clock(void);

/* A request of this verb, its reply queued now; started at metrics_clock()
 * value t0 (the read of its line). */
void metrics_request(enum metrics_verb verb, double t0);

/* An update from a neighbour was applied: observe the time since its
 * origin node received it (client time + the AT line's difference, on
 * this machine's wall clock).  catchup: it came in a catch-up, not a
 * flood. */
void metrics_flood_lag(const struct proto_at *at, int catchup);

/* A link to peer that was up went down. */
void metrics_link_drop(const char *peer);
/* A dial to a neighbour failed (refused, unreachable, timed out). */
void metrics_dial_failure(void);
/* One catch-up record sent to / received from peer. */
void metrics_catchup(const char *peer, enum metrics_dir dir);

/* The journal: an fdatasync that started at t0 finished; bytes written. */
void metrics_journal_fsync(double t0);
void metrics_journal_bytes(size_t n);

/* A places request finished: curl's result code (0 = the transfer
 * worked), the HTTP status (0 when none) and curl's total time. */
void metrics_places(int curl_result, long http_status, double seconds);
/* A places request refused before it was sent (too many in flight...). */
void metrics_places_refused(void);

/* The status file was written (counted so tests and operators can see
 * the writer's rate). */
void metrics_status_written(void);

/* One link as the metrics see it, handed in by the status writer, so
 * this module counts what link.c tells it and never calls back into it. */
struct metrics_link {
    const char *peer;
    int up;
};

/* Every metric of the node as the status file's "metrics" array:
 * [{"name","type","help","series":[{"labels":{..},"value"|"buckets","sum",
 * "count"}]}], histograms with "le" beside; links are the node's links,
 * in its order.  NULL when memory is short. */
struct cJSON *metrics_json(const struct node *n,
                           const struct metrics_link *links, size_t n_links);

/* Free the per-peer tables (at exit, for leak checkers). */
void metrics_free(void);

#endif
