/* status_row: pieces of a node's row in the control socket's "status"
 * reply that come from herd.ini alone.  The supervisor builds its rows
 * for nodes of other hosts with them, and herdctl its offline status
 * (no supervisor running), so both have the same shape. */
#ifndef HERD_STATUS_ROW_H
#define HERD_STATUS_ROW_H

#include "common/config.h"

struct cJSON;

/* A new row for node n that no process of ours runs: name, the given
 * state, pid null, host, port, uptime_s and restarts 0, last_exit null.
 * The caller adds the rest. */
struct cJSON *status_row_idle(const struct node_conf *n, const char *state);

/* Add "neighbors" to row: the names of n's neighbours in cfg (none when
 * n is NULL).  Returns the array. */
struct cJSON *status_row_neighbors(struct cJSON *row,
                                   const struct herd_config *cfg,
                                   const struct node_conf *n);

#endif
