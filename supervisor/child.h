/* child: one supervised process (a node or the places emulator): spawn it
 * in its own process group, capture its output into its log, restart it
 * with a backoff when it dies, give up after a crash loop, stop it
 * gracefully.  Each child has a state (what it is doing) and a want
 * (whether it should run). */
#ifndef HERD_CHILD_H
#define HERD_CHILD_H

#include <ev.h>
#include <sys/types.h>

#include "common/config.h"
#include "common/ctlproto.h"

/* The state names and the restart policy (CTL_*) are the control
 * protocol's: common/ctlproto.h. */

struct sup;
struct cJSON;

enum child_kind { CHILD_NODE, CHILD_PLACES };

/* Whether it should run. */
enum child_want {
    WANT_UP,                    /* keep it running; restart it when it dies */
    WANT_RESTART,               /* up, and being stopped to start at once */
    WANT_DOWN,                  /* stopped until asked to start */
    WANT_GONE,                  /* removed from herd.ini: free once reaped */
};

#define CHILD_TAIL_LINES 5
#define CHILD_TAIL_LEN 240

struct child {
    struct sup *sup;
    struct child *next;
    enum child_kind kind;
    char name[CONFIG_NAME_MAX + 1];
    char host[CONFIG_HOST_MAX + 1];
    int port;
    /* What it is doing and what it should do, runsv-style: state moves
     * with its process, want only by request; every pair means one
     * thing (a removed child cannot also be meant to respawn). */
    enum ctl_state state;
    enum child_want want;
    pid_t pid;                  /* 0 when none */
    unsigned long long starttime;   /* /proc/PID/stat field 22 */
    double spawned;             /* ev_now() at spawn */
    double spawned_wall;        /* wall clock at spawn */
    double backoff;             /* next restart delay */
    int restarts;               /* spawns after the first */
    double deaths[CTL_DEATHS];    /* ev_now() of recent deaths, a ring */
    int n_deaths;
    int last_status;            /* wait status of the last exit */
    int has_last;
    char reason[1024];          /* why it is fatal or absent */
    char tail[CHILD_TAIL_LINES][CHILD_TAIL_LEN];  /* last output lines */
    int tail_next, tail_count;
    int log_failed;             /* its log cannot be opened (said once) */
    int out_fd;                 /* read end of its stdout+stderr pipe */
    char out[4096];             /* partial output line */
    size_t out_len;
    int links_up, links_total, clients;     /* from NAME.status; -1 = unknown */
    ev_io out_w;
    ev_timer restart_w;         /* backoff delay */
    ev_timer kill_w;            /* SIGKILL after the grace period */
};

struct child *child_new(struct sup *s, enum child_kind kind,
                        const char *name, const char *host, int port);
void child_free(struct child *c);

/* Want it up: spawn it now unless it already runs (clears FATAL). */
void child_start(struct child *c);
/* Want it down: SIGTERM to its group, SIGKILL after stop_grace_s. */
void child_stop(struct child *c);
/* Stop it and spawn it again at once (or just start it). */
void child_restart(struct child *c);
/* Gone from herd.ini: stop it for good; its owner frees it once reaped
 * (child_gone). */
void child_remove(struct child *c, const char *why);
/* Removed and reaped: nothing left to wait for. */
int child_gone(const struct child *c);
/* Wanted up (WANT_UP or WANT_RESTART). */
int child_wants_up(const struct child *c);
/* SIGHUP: re-read herd.ini. */
void child_hup(struct child *c);
/* SIGKILL its process group now (second Ctrl-C). */
void child_kill(struct child *c);

/* waitpid() said it is gone with this wait status. */
void child_reaped(struct child *c, int status);

/* Once a tick: notice it serving, refresh links/clients, retry ABSENT. */
void child_tick(struct child *c);

/* "exit 111" / "signal 9" for a wait status. */
void child_describe_status(int status, char *buf, size_t cap);

/* run_dir/NAME.status of a node, parsed, if it is the live child's
 * (its "pid" is c->pid); else NULL.  Any size.  Caller frees. */
struct cJSON *child_status_file(const struct child *c);

/* Its status for `herdctl status --json`. */
struct cJSON *child_json(const struct child *c);

/* Write one line into the child's log, as the supervisor. */
void child_note(struct child *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
