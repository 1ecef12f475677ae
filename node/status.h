/* status: run_dir/NAME.status, the file through which the supervisor (and
 * herdctl) see a running node: who it is, its links, its metrics.
 * Written atomically (a temporary file opened O_EXCL|O_NOFOLLOW, then
 * renamed) and at most STATUS_MIN_INTERVAL apart, however often
 * something marks it dirty. */
#ifndef HERD_STATUS_H
#define HERD_STATUS_H

#include "node.h"

/* Seconds between two writes at least: twice a second at most. */
#define STATUS_MIN_INTERVAL 0.5

/* Set up the timer that writes a deferred status (before the loop runs). */
void status_init(struct node *n);

/* Write it now, whatever the rate (start-up, shutdown).  0 or -1. */
int status_write_now(struct node *n);

#endif
