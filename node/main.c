/* herd-node: one server of the herd.
 *
 *   herd-node -c herd.ini NAME
 *
 * Exit codes: 0 after SIGTERM or SIGINT, 100 usage or herd.ini error,
 * 111 system failure (cannot bind, cannot open the log, ...). */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client.h"
#include "common/fsutil.h"
#include "common/log.h"
#include "common/rlimit.h"
#include "conn.h"
#include "journal.h"
#include "keyring.h"
#include "link.h"
#include "metrics.h"
#include "node.h"
#include "places.h"
#include "status.h"
#include "tls.h"

#define EXIT_USAGE 100
#define EXIT_SYSTEM 111

/* Accepts per wake-up, so a connection flood cannot starve the rest. */
#define ACCEPTS_PER_WAKEUP 64
/* Spare slots beyond max_clients, kept for neighbours' link openings. */
#define PEER_HEADROOM 64
/* Descriptors a node holds besides its connections: listener, log,
 * journal and snapshot files, stdio, libev's and libcurl's own. */
#define FD_OVERHEAD 32

static void die(const char *fmt, const char *arg, const char *why)
{
    fprintf(stderr, "herd-node: fatal: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, ": %s\n", why);
    log_msg(LOG_ERROR, "fatal: %s: %s", arg, why);
    log_close();
    exit(EXIT_SYSTEM);
}

static int listen_on(const char *host, int port, char *why, size_t whylen)
{
    struct addrinfo hints, *res = NULL;
    char service[16];
    int fd, one = 1, rc;

    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    snprintf(service, sizeof service, "%d", port);
    rc = getaddrinfo(host, service, &hints, &res);
    if (rc != 0 || !res) {
        snprintf(why, whylen, "%s", gai_strerror(rc));
        return -1;
    }
    fd = socket(res->ai_family, res->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                0);
    if (fd < 0) {
        snprintf(why, whylen, "%s", strerror(errno));
        freeaddrinfo(res);
        return -1;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    /* The kernel's largest accept queue: a burst of connections (a flood
     * of HERD-HELLOs) then waits there instead of costing a real
     * neighbour a dropped SYN and a second of TCP retransmit. */
    if (bind(fd, res->ai_addr, res->ai_addrlen) < 0 ||
        listen(fd, SOMAXCONN) < 0) {
        snprintf(why, whylen, "%s", strerror(errno));
        close(fd);
        freeaddrinfo(res);
        return -1;
    }
    freeaddrinfo(res);
    return fd;
}

static void on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
    struct node *n = container_of(w, struct node, accept_watcher);

    (void)revents;
    for (int i = 0; i < ACCEPTS_PER_WAKEUP; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        char host[NI_MAXHOST], serv[NI_MAXSERV], addr[sizeof host + sizeof serv + 4];
        int one = 1;
        int fd = accept4(n->listen_fd, (struct sockaddr *)&ss, &sl,
                         SOCK_NONBLOCK | SOCK_CLOEXEC);

        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
                errno == ENOMEM) {
                /* Out of descriptors: stop accepting for a moment rather
                 * than spin on a listener that stays readable. */
                static ev_tstamp last_said;
                if (ev_now(loop) - last_said >= 10) {
                    /* Once per 10 s, not at every retry. */
                    log_msg(LOG_WARN, "accept: %s; pausing accepts for 100 ms",
                            strerror(errno));
                    last_said = ev_now(loop);
                }
                ev_io_stop(loop, &n->accept_watcher);
                ev_timer_set(&n->accept_retry, 0.1, 0.);
                ev_timer_start(loop, &n->accept_retry);
            }
            return;
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (getnameinfo((struct sockaddr *)&ss, sl, host, sizeof host, serv,
                        sizeof serv, NI_NUMERICHOST | NI_NUMERICSERV) != 0)
            snprintf(addr, sizeof addr, "?");
        else
            snprintf(addr, sizeof addr, "%s:%s", host, serv);
        /* Full: like nginx with its keep-alive connections, make room
         * by closing the client idle the longest (1 s at least).  Else
         * the connection may take a spare slot, which only a neighbour's
         * link opening keeps (client.c); when all are held, the oldest
         * of them gives way after 0.5 s, since a neighbour's opening
         * comes at once; else the connection is refused. */
        int spare = 0;
        if (n->n_clients - n->n_spare >= (size_t)n->cfg.max_clients &&
            !client_evict_idle(n, ev_now(loop))) {
            if (n->n_spare >= PEER_HEADROOM && !client_evict_spare(n, ev_now(loop))) {
                log_msg(LOG_WARN, "refused %s: %zu connections already", addr,
                        n->n_clients);
                client_refuse(fd, "? too many clients\n");
                continue;
            }
            spare = 1;
        }
        client_accept(n, fd, addr, spare);
    }
}

static void on_accept_retry(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    ev_io_start(loop, &container_of(w, struct node, accept_retry)->accept_watcher);
}

static void on_stop(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)revents;
    log_msg(LOG_INFO, "stopping on signal %d", w->signum);
    ev_break(loop, EVBREAK_ALL);
}

static void on_reload(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)loop;
    (void)revents;
    node_reload(container_of(w, struct node, sighup));
}

static void on_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct node *n = container_of(w, struct node, tick);
    double now = ev_now(loop);

    (void)revents;
    link_tick(n, now);
    conn_sweep_idle(now, n->cfg.idle_timeout_s);
    client_sweep_idle(n, now);
    journal_tick(n->journal, &n->store);
    node_write_status(n);
    log_flush();
}

static void on_check(struct ev_loop *loop, ev_check *w, int revents)
{
    struct node *n = container_of(w, struct node, reaper);

    (void)loop;
    (void)revents;
    conn_reap();
    if (n->status_dirty)
        node_write_status(n);
}

/* Before the loop sleeps: one journal write (and with fsync = always, one
 * fsync: group commit) for every update this iteration applied, then the
 * replies and floods this iteration queued, then one log write for
 * everything it logged, so a kill -9 loses at most the iteration it
 * interrupts.  Replies go after the journal write in every mode: an
 * acknowledged update is at least in the kernel's hands, so the death of
 * the process alone never loses it.
 *
 * Ordering, fsync = always: an IAMAT's reply is its acknowledgment.  Such
 * a reply is never handed to conn_send() while its update is unsynced:
 * client.c holds it in the connection's reply queue (journal_unsynced()),
 * and only client_release_held(), right after journal_flush() has synced,
 * queues it.  Queued bytes leave only from conn_flush_pending(), called
 * below after both, or from write watchers, which run once the loop has
 * polled again.  So every reply a client can read follows the fsync of
 * the updates it acknowledges. */
static void on_prepare(struct ev_loop *loop, ev_prepare *w, int revents)
{
    (void)loop;
    (void)revents;
    journal_flush(container_of(w, struct node, flush_log)->journal);
    client_release_held();
    conn_flush_pending();
    log_flush();
}

static void usage(void)
{
    fprintf(stderr, "usage: herd-node -c herd.ini NAME\n"
            "Runs node NAME of the herd in the foreground.\n"
            "Exit codes: 0 stopped by SIGTERM/SIGINT, 100 usage or herd.ini "
            "error, 111 system failure.\n");
}

int main(int argc, char **argv)
{
    static struct node node;
    struct node *n = &node;
    const char *config = NULL, *name = NULL;
    char err[1024], *log_path;
    int self;
    /* As many descriptors as the system allows (issue 10). */
    unsigned long nofile = rlimit_raise_nofile();

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-c") == 0 && i + 1 < argc)
            config = argv[++i];
        else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage();
            return 0;
        } else if (argv[i][0] != '-' && !name)
            name = argv[i];
        else {
            usage();
            return EXIT_USAGE;
        }
    }
    if (!config || !name) {
        usage();
        return EXIT_USAGE;
    }
    if (config_load(config, &n->cfg, err, sizeof err) < 0) {
        fprintf(stderr, "%s\n", err);
        return EXIT_USAGE;
    }
    self = config_find_node(&n->cfg, name);
    if (self < 0) {
        fprintf(stderr, "herd-node: no node '%s' in %s\n", name, config);
        return EXIT_USAGE;
    }
    n->config_path = strdup(config);
    snprintf(n->name, sizeof n->name, "%s", name);
    snprintf(n->host, sizeof n->host, "%s", n->cfg.nodes[self].host);
    n->port = n->cfg.nodes[self].port;
    signal(SIGPIPE, SIG_IGN);

    if (fs_mkdir_p(n->cfg.log_dir, 0755) < 0)
        die("cannot create log directory %s", n->cfg.log_dir, strerror(errno));
    if (fs_mkdir_p(n->cfg.run_dir, 0700) < 0)
        die("cannot create run directory %s", n->cfg.run_dir, strerror(errno));
    if (fs_mkdir_p(n->cfg.data_dir, 0700) < 0)
        die("cannot create data directory %s", n->cfg.data_dir, strerror(errno));
    log_path = config_log_path(&n->cfg, n->name);
    if (!log_path || log_open(log_path, n->name,
                              (size_t)n->cfg.log_max_mb * 1024 * 1024,
                              n->cfg.log_keep, 0) < 0)
        die("cannot open log %s", log_path ? log_path : "?", strerror(errno));
    free(log_path);
    log_msg(LOG_INFO, "starting: pid %ld, %s:%d, %zu neighbours, places %s",
            (long)getpid(), n->host, n->port, n->cfg.nodes[self].n_neighbors,
            config_provider_name(n->cfg.provider));
    {
        /* Every connection is a descriptor: say at start when max_clients
         * cannot be had, rather than fail accept() later. */
        unsigned long need = (unsigned long)n->cfg.max_clients + PEER_HEADROOM +
                             n->cfg.nodes[self].n_neighbors +
                             PLACES_MAX_IN_FLIGHT + FD_OVERHEAD;
        if (nofile < need)
            log_msg(LOG_WARN, "descriptors: the limit is %lu (hard limit "
                    "reached), but max_clients %d + %d spare + %zu links + "
                    "%d places connections + %d for files need %lu; raise "
                    "the limit (ulimit -n, LimitNOFILE=) or lower max_clients",
                    nofile, n->cfg.max_clients, PEER_HEADROOM,
                    n->cfg.nodes[self].n_neighbors, PLACES_MAX_IN_FLIGHT,
                    FD_OVERHEAD, need);
    }

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
        die("%s", "libcurl", "cannot initialise");
    n->loop = ev_default_loop(EVFLAG_AUTO);
    if (keyring_start(n, err, sizeof err) < 0)
        die("%s", "link keys", err);
    if (tls_global_init() < 0)
        die("%s", "TLS", "cannot initialise");
    n->started = ev_time();
    if (store_init(&n->store) < 0)
        die("%s", "store", "out of memory");
    /* The node's own records first, before it serves or links: the
     * neighbours' catch-up then brings only what it missed. */
    n->journal = journal_open(n->loop, n->cfg.data_dir, n->name,
                              n->cfg.fsync,
                              (uint64_t)n->cfg.catchup_backlog_mb << 20,
                              &n->store, err, sizeof err);
    if (!n->journal)
        die("%s", "journal", err);
    n->places = places_new(n->loop, &n->cfg);
    if (!n->places)
        die("%s", "places client", "cannot initialise");

    /* Signals are handled before the port opens: whoever sees it listen
     * may stop us at once, and that must be a clean stop. */
    ev_signal_init(&n->sigterm, on_stop, SIGTERM);
    ev_signal_init(&n->sigint, on_stop, SIGINT);
    ev_signal_init(&n->sighup, on_reload, SIGHUP);
    ev_signal_start(n->loop, &n->sigterm);
    ev_signal_start(n->loop, &n->sigint);
    ev_signal_start(n->loop, &n->sighup);
    /* What start-up logged (the journal load among it) is on disk before
     * anyone can see the port open. */
    log_flush();
    n->listen_fd = listen_on(n->host, n->port, err, sizeof err);
    if (n->listen_fd < 0) {
        char what[CONFIG_HOST_MAX + 16];
        snprintf(what, sizeof what, "%.*s:%d", CONFIG_HOST_MAX, n->host, n->port);
        die("cannot bind %s", what, err);
    }
    ev_io_init(&n->accept_watcher, on_accept, n->listen_fd, EV_READ);
    ev_io_start(n->loop, &n->accept_watcher);
    ev_timer_init(&n->accept_retry, on_accept_retry, 0.1, 0.);
    ev_timer_init(&n->tick, on_tick, 1., 1.);
    ev_timer_start(n->loop, &n->tick);
    ev_check_init(&n->reaper, on_check);
    ev_check_start(n->loop, &n->reaper);
    ev_prepare_init(&n->flush_log, on_prepare);
    ev_prepare_start(n->loop, &n->flush_log);
    status_init(n);

    if (link_start_all(n) < 0)
        die("%s", "links", "out of memory");
    status_write_now(n);
    log_msg(LOG_INFO, "serving on %s:%d", n->host, n->port);
    log_flush();

    ev_run(n->loop, 0);

    /* Stop accepting first, then close everything and flush the log. */
    ev_io_stop(n->loop, &n->accept_watcher);
    close(n->listen_fd);
    link_free_all(n);
    conn_close_all("node stopping");
    conn_reap();
    places_free(n->places);
    n->places = NULL;           /* the last status write below reads it */
    curl_global_cleanup();
    status_write_now(n);
    journal_close(n->journal);
    n->journal = NULL;
    store_free(&n->store);
    keyring_stop(n);
    tls_global_free();
    log_msg(LOG_INFO, "stopped");
    log_close();
    config_free(&n->cfg);
    free(n->config_path);
    metrics_free();
    return 0;
}
