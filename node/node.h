/* node: the state of one running herd node and its core operations
 * (node/herd.c).  client.c and link.c serve the node and call in here;
 * main.c parses the arguments and wires the loop.
 *
 * Loop context: a callback finds its object from the watcher libev hands
 * it (container_of, common/container.h, in every module of node/): the
 * node's watchers live in struct node, so there is no global node.  Why this style and not a global: what a callback touches
 * is what it was handed, and one style reads the same in every module. */
#ifndef HERD_NODE_H
#define HERD_NODE_H

#include <ev.h>
#include <stddef.h>

#include "common/auth.h"
#include "common/container.h"
#include "common/config.h"
#include "store.h"

struct journal;
struct link;
struct places;
struct resolver;

struct node {
    struct ev_loop *loop;
    struct herd_config cfg;
    char *config_path;
    char name[CONFIG_NAME_MAX + 1];
    char host[CONFIG_HOST_MAX + 1];
    int port;

    int listen_fd;
    ev_io accept_watcher;
    ev_timer accept_retry;      /* after EMFILE: try again later, no spin */

    struct store store;
    struct journal *journal;    /* the store on disk (data_dir) */
    struct auth_keyring keys;   /* link keys; keys.keys[0] dials */
    ev_stat keyring_watch;      /* run_dir/herd.keyring, see keyring.h */
    struct places *places;
    struct resolver *resolver; /* neighbours' names (node/resolve.h) */

    struct link **links;        /* one per neighbour */
    size_t n_links;

    size_t n_clients;           /* client connections open */
    size_t n_spare;             /* of them, in slots past max_clients */
    /* Counters for status and benchmarks (messages per update). */
    unsigned long long applied;         /* updates stored, any source */
    unsigned long long flood_sent;      /* HERD-AT lines flooded to peers */
    unsigned long long flood_received;  /* HERD-AT lines from peers */
    unsigned long long catchup_sent;    /* HERD-AT lines sent in catch-ups */
    unsigned long next_conn_id;
    ev_tstamp started;

    ev_signal sigterm, sigint, sighup;
    ev_timer tick;              /* log flush, status file, idle sweep */
    ev_check reaper;            /* frees closed connections */
    ev_prepare flush_log;       /* writes the log once per iteration */
    int status_dirty;           /* something changed: write it soon */
    ev_timer status_timer;      /* writes a status deferred by the rate cap */
    double status_written;      /* metrics_clock() of the last write */
};

/* Apply an update (from a client or a peer, already parsed into at) to
 * the store; when it is new (STORE_APPLIED), journal it and flood it to
 * every link but from (NULL for a client).  STORE_NOMEM also when, with
 * fsync = always, the journal could not take it: never acknowledge it. */
enum store_result node_apply_update(struct node *n, const char *at_line,
                                    size_t len, const struct proto_at *at,
                                    struct link *from);

/* Read herd.ini again (SIGHUP): a valid one replaces n->cfg, limits apply
 * to new connections and the links are reconciled; the address, data_dir,
 * fsync and [places] wait for a restart (a warning says so).  An invalid
 * one is refused and logged, changing nothing. */
void node_reload(struct node *n);

/* Write run_dir/NAME.status: now, or once STATUS_MIN_INTERVAL has passed
 * since the last write (node/status.h). */
void node_write_status(struct node *n);

#endif
