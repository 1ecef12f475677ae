/* node: the state of one running herd node, shared by its modules. */
#ifndef HERD_NODE_H
#define HERD_NODE_H

#include <ev.h>

#include "common/auth.h"
#include "common/config.h"
#include "store.h"

struct journal;
struct link;
struct places;

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
    struct auth_secret secret;
    struct places *places;

    struct link **links;        /* one per neighbour */
    size_t n_links;

    size_t n_clients;           /* client connections open */
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
    int status_dirty;
};

extern struct node *g_node;

/* Write run_dir/NAME.status now. */
void node_write_status(struct node *n);

#endif
