/* ctlproto: the schema of the supervisor's control socket, one copy for
 * the supervisor (which writes it) and herdctl (which reads it): the
 * state and want names of a row, the restart policy both the supervisor
 * and the systemd export follow, and the rows of the "status" reply. */
#ifndef HERD_CTLPROTO_H
#define HERD_CTLPROTO_H

#include <sys/types.h>

#include "common/config.h"

struct cJSON;

/* What a process of the herd is doing, as "state" in a status row. */
enum ctl_state {
    CTL_STARTING,               /* spawned, not yet seen serving */
    CTL_RUNNING,
    CTL_BACKOFF,                /* died; waiting to be restarted */
    CTL_STOPPING,               /* SIGTERM sent, not yet reaped */
    CTL_STOPPED,
    CTL_FATAL,                  /* crash loop or config error: given up */
    CTL_ABSENT,                 /* its program is not installed */
    CTL_REMOTE,                 /* a node another machine runs */
    CTL_UNKNOWN,                /* a row that names none of these */
};

/* Whether it should run, as "want" in a status row. */
enum ctl_want {
    CTL_WANT_UP,
    CTL_WANT_DOWN,
    CTL_WANT_ELSEWHERE,         /* another machine's */
    CTL_WANT_UNKNOWN,
};

/* The restart policy: a child that dies is restarted after a backoff
 * that starts at CTL_BACKOFF_MIN s and doubles up to CTL_BACKOFF_MAX,
 * reset after CTL_HEALTHY s of running; CTL_DEATHS deaths within
 * CTL_DEATH_WINDOW s make it fatal. */
#define CTL_BACKOFF_MIN 0.1
#define CTL_BACKOFF_MAX 30.0
#define CTL_HEALTHY 30.0
#define CTL_DEATHS 5
#define CTL_DEATH_WINDOW 60.0

const char *ctlproto_state_name(enum ctl_state st);
enum ctl_state ctlproto_state_parse(const char *name);
const char *ctlproto_want_name(enum ctl_want w);

/* One row of the "status" reply, as plain data. */
struct ctl_row {
    const char *name, *host;
    enum ctl_state state;
    enum ctl_want want;
    pid_t pid;                  /* 0: null */
    int port;
    long long uptime_s;
    int restarts;
    const char *last_exit;      /* "exit 111", "signal 9 (Killed)"; NULL */
    int links_up, links_total, clients;     /* -1: null */
    const char *reason;         /* why fatal or absent; NULL */
    const char *const *tail;    /* last output lines, oldest first */
    int n_tail;
};

/* The row as the control socket sends it. */
struct cJSON *ctlproto_row(const struct ctl_row *r);

/* A row for node n that no process of ours runs: name, the given state,
 * pid null, host, port, uptime_s and restarts 0, last_exit null.  The
 * caller adds the rest. */
struct cJSON *ctlproto_row_idle(const struct node_conf *n,
                                enum ctl_state state);

/* Add "neighbors" to row: the names of n's neighbours in cfg (none when
 * n is NULL).  Returns the array. */
struct cJSON *ctlproto_row_neighbors(struct cJSON *row,
                                     const struct herd_config *cfg,
                                     const struct node_conf *n);

/* A row's "state" and "want" (CTL_UNKNOWN / CTL_WANT_UNKNOWN when absent
 * or not one of the names). */
enum ctl_state ctlproto_row_state(const struct cJSON *row);
enum ctl_want ctlproto_row_want(const struct cJSON *row);

#endif
