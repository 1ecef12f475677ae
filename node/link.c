#include "link.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/auth.h"
#include "common/log.h"
#include "conn.h"
#include "journal.h"
#include "resolve.h"
#include "metrics.h"

#define BACKOFF_FIRST 0.1       /* seconds before the first redial */
#define BACKOFF_CAP 2.0         /* redials never wait longer than this */
#define HANDSHAKE_TIMEOUT 5.0   /* connect + handshake */
#define PING_EVERY 5.0          /* send something at least this often */
#define SILENCE_LIMIT 20.0      /* a peer quiet this long is gone */
#define LINK_OUTPUT_MAX (8u << 20)  /* per link; past it, drop and resync */
#define MARK_EVERY 1024         /* incremental catch-up: a MARK this often */

struct link {
    struct node *node;
    char peer[CONFIG_NAME_MAX + 1];
    char host[CONFIG_HOST_MAX + 1];
    int port;
    int dialer;                 /* we dial: our name sorts first */
    enum link_state state;
    struct conn *conn;          /* the link, once connecting or up */
    struct conn *pending;       /* listener: a handshake not yet proven */
    double pending_since, connect_since;
    char my_nonce[PEER_NONCE_HEX + 1];
    char peer_nonce[PEER_NONCE_HEX + 1];
    char pending_my_nonce[PEER_NONCE_HEX + 1];
    char pending_peer_nonce[PEER_NONCE_HEX + 1];
    ev_timer retry;
    double backoff;
    double last_tx;
    /* catch-up we send: next record, and how many so far */
    struct store_cursor cursor;
    int sending_catchup;
    unsigned long long sent;
    /* catch-up we receive, until the peer's HERD-SYNCED */
    int receiving_catchup;
    unsigned long long received, applied;
    /* incremental catch-up (docs/PEERS.md "Catch-up") */
    int awaiting_resume;        /* up; the peer's HERD-RESUME not yet here */
    struct journal_reader *reader;  /* sending from our log; NULL: walk */
    uint64_t mark_epoch, marked;    /* the last HERD-MARK we sent */
    unsigned since_mark;        /* records sent since it */
    struct link_catchup stats;
    int failures;               /* dial failures in a row, for the log */
    /* dialer: the name lookup under way, and its answer's addresses,
     * tried in order until one connects */
    struct resolve_query *resolving;
    struct resolve_result addrs;
    size_t next_addr;
};

/* One limit for every link, not derived from this node's max_line: a
 * neighbour with a larger max_line (or records stored before a reload
 * lowered it) must still get its records through. */
_Static_assert(PEER_RECORD_MAX >= CONFIG_MAX_LINE_MAX + 256,
               "a link must admit any record a node can store");

static size_t max_peer_line(const struct node *n)
{
    (void)n;
    return PEER_LINE_MAX;
}

const struct link_catchup *link_catchup(const struct link *l)
{
    return &l->stats;
}

const char *link_peer(const struct link *l)
{
    return l->peer;
}

enum link_state link_state(const struct link *l)
{
    return l->state;
}

const char *link_state_name(enum link_state s)
{
    switch (s) {
    case LINK_CONNECTING:
        return "connecting";
    case LINK_HANDSHAKE:
        return "handshake";
    case LINK_UP:
        return "up";
    case LINK_DOWN:
        break;
    }
    return "down";
}

size_t link_count_up(const struct node *n)
{
    size_t up = 0;

    for (size_t i = 0; i < n->n_links; i++)
        up += n->links[i]->state == LINK_UP;
    return up;
}

/* A link always reads, however much it has queued to send: two peers
 * that both stopped reading while their queues were full would wait on
 * each other for ever.  The output cap (drop, then catch up) bounds it. */
static void never_pause(struct conn *c)
{
    c->out_high = SIZE_MAX;
}

static void send_line(struct link *l, struct conn *c, const char *p, size_t len)
{
    l->last_tx = ev_now(l->node->loop);
    conn_send(c, p, len);
}

static void schedule_redial(struct link *l)
{
    struct ev_loop *loop = l->node->loop;

    if (!l->dialer)
        return;
    ev_timer_stop(loop, &l->retry);
    ev_timer_set(&l->retry, l->backoff, 0.);
    ev_timer_start(loop, &l->retry);
    l->backoff *= 2;
    if (l->backoff > BACKOFF_CAP)
        l->backoff = BACKOFF_CAP;
}

static void set_state(struct link *l, enum link_state s)
{
    l->state = s;
    l->node->status_dirty = 1;
}

static void send_mark(struct link *l, uint64_t epoch, uint64_t seq)
{
    char out[96];
    size_t k = peer_format_mark(epoch, seq, out, sizeof out);

    send_line(l, l->conn, out, k);
    l->mark_epoch = epoch;
    l->marked = seq;
    l->since_mark = 0;
}

static void send_at(struct link *l, const char *line, size_t len)
{
    struct conn *c = l->conn;
    char stack[1024];
    size_t need = peer_format_at(line, len, stack, sizeof stack);

    if (need + 1 <= sizeof stack) {
        send_line(l, c, stack, need);
    } else {
        char *big = malloc(need + 1);
        if (!big) {
            conn_close(c, "out of memory");
            return;
        }
        peer_format_at(line, len, big, need + 1);
        send_line(l, c, big, need);
        free(big);
    }
    l->sent++;
    l->stats.sent_records++;
    l->stats.sent_bytes += need;
    l->node->catchup_sent++;
    metrics_catchup(l->peer, METRICS_OUT);
}

/* The next record of an incremental catch-up: 1 with it, 0 at the end.
 * A record superseded since (the store holds another line for that
 * client) is skipped: the newer one is later in the log. */
static int next_from_log(struct link *l, const char **line, size_t *len)
{
    for (;;) {
        struct proto_at at;
        struct record *r;
        const char *held;
        size_t hlen;
        int rc = journal_reader_next(l->reader, line, len);

        if (rc < 0) {
            log_msg(LOG_WARN, "catch-up to %s: cannot read the backlog; a "
                    "full walk instead", l->peer);
            journal_reader_close(l->reader);
            l->reader = NULL;
            l->stats.mode = "full";
            store_cursor_start(&l->node->store, &l->cursor);
            return -1;
        }
        if (rc == 0)
            return 0;
        if (proto_parse_at(*line, *len, &at) < 0)
            continue;
        r = store_find(&l->node->store, at.id.p, at.id.len);
        if (r) {
            held = record_line(r, &hlen);
            if (hlen != *len || memcmp(held, *line, hlen) != 0)
                continue;
        }
        return 1;
    }
}

/* Send catch-up records while the output queue has room for them. */
static void fill_catchup(struct link *l)
{
    struct conn *c = l->conn;
    char stack[64];
    size_t target = LINK_OUTPUT_MAX / 4;

    while (l->sending_catchup && !c->closed && buf_len(&c->out) < target) {
        const char *line = NULL;
        size_t len = 0;
        int more;

        if (l->reader) {
            more = next_from_log(l, &line, &len);
            if (more < 0)
                continue;       /* now walking */
        } else {
            /* Records stored after link-up are flooded as they arrive;
             * the walk may still meet some of them, which costs a stale
             * message, never a lost one. */
            struct record *r = store_cursor_next(&l->node->store, &l->cursor);
            more = r != NULL;
            if (r)
                line = record_line(r, &len);
        }
        if (!more) {
            struct journal *j = l->node->journal;
            size_t n = peer_format_synced(l->sent, stack, sizeof stack);

            l->sending_catchup = 0;
            l->stats.sending = 0;
            send_line(l, c, stack, n);
            /* Every record of our log so far is sent: by this catch-up,
             * by floods since link-up, or it came from this peer. */
            if (j && !c->closed)
                send_mark(l, journal_epoch(j), journal_last_seq(j));
            journal_reader_close(l->reader);
            l->reader = NULL;
            log_msg(LOG_INFO, "catch-up to %s: sent %llu records", l->peer,
                    l->sent);
            l->node->status_dirty = 1;
            return;
        }
        send_at(l, line, len);
        if (l->reader && ++l->since_mark >= MARK_EVERY && !c->closed)
            send_mark(l, l->mark_epoch, journal_reader_seq(l->reader));
    }
}

/* The peer said where it is in our log: send what it lacks. */
static void start_catchup(struct link *l, uint64_t epoch, uint64_t after)
{
    struct journal *j = l->node->journal;
    const char *why = "no journal";

    l->awaiting_resume = 0;
    l->reader = j ? journal_reader_open(j, epoch, after, &why) : NULL;
    l->sent = 0;
    l->stats.sent_records = l->stats.sent_bytes = 0;
    l->stats.sending = 1;
    l->since_mark = 0;
    if (l->reader) {
        l->stats.mode = "incremental";
        l->stats.incremental++;
        l->mark_epoch = epoch;
        log_msg(LOG_INFO, "catch-up to %s: the records after %llu of epoch "
                "%016llx", l->peer, (unsigned long long)after,
                (unsigned long long)epoch);
    } else {
        l->stats.mode = "full";
        l->stats.full++;
        log_msg(LOG_INFO, "catch-up to %s: a full walk (%s)", l->peer, why);
        store_cursor_start(&l->node->store, &l->cursor);
    }
    l->sending_catchup = 1;
    fill_catchup(l);
}

static void link_up(struct link *l)
{
    uint64_t epoch = 0, seq = 0;
    char out[96];
    size_t k;

    set_state(l, LINK_UP);
    l->backoff = BACKOFF_FIRST;
    l->failures = 0;
    log_msg(LOG_INFO, "link up: %s (%s)", l->peer, l->conn->addr);
    /* First where we are in the peer's log; our catch-up waits for the
     * peer to say where it is in ours. */
    if (!journal_position(l->node->journal, l->peer, &epoch, &seq))
        epoch = seq = 0;
    k = peer_format_resume(epoch, seq, out, sizeof out);
    send_line(l, l->conn, out, k);
    l->awaiting_resume = 1;
    l->sending_catchup = 0;
    l->receiving_catchup = 1;
    l->received = l->applied = 0;
    l->stats.received_records = l->stats.received_bytes = 0;
    l->stats.receiving = 1;
}

static void handle_up_line(struct link *l, const char *line, size_t len)
{
    struct peer_msg m;
    int applied;

    switch (peer_parse(line, len, &m)) {
    case PEER_MSG_AT:
        l->node->flood_received++;
        applied = node_apply_update(l->node, m.at_line.p, m.at_line.len,
                                    &m.at, l) == STORE_APPLIED;
        if (applied)
            metrics_flood_lag(&m.at, l->receiving_catchup);
        if (l->receiving_catchup) {
            metrics_catchup(l->peer, METRICS_IN);
            l->received++;
            l->applied += applied;
            l->stats.received_records++;
            l->stats.received_bytes += len + 1;
        } else if (applied) {
            log_msg(LOG_INFO, "update from %s: %.*s", l->peer,
                    (int)(m.at.id.len > 256 ? 256 : m.at.id.len), m.at.id.p);
        }
        break;
    case PEER_MSG_SYNCED:
        if (l->receiving_catchup) {
            l->receiving_catchup = 0;
            l->stats.receiving = 0;
            l->node->status_dirty = 1;
            log_msg(LOG_INFO, "catch-up from %s: received %llu records, "
                    "%llu newer than held", l->peer, l->received, l->applied);
        }
        break;
    case PEER_MSG_RESUME:
        if (l->awaiting_resume)
            start_catchup(l, m.epoch, m.seq);
        else
            log_msg(LOG_WARN, "link %s: ignoring a second HERD-RESUME",
                    l->peer);
        break;
    case PEER_MSG_MARK:
        /* Everything of the peer's log up to m.seq has reached us (and
         * been applied, or found older than held): remember it, in the
         * journal after those records. */
        journal_set_position(l->node->journal, l->peer, m.epoch, m.seq);
        l->stats.their_epoch = m.epoch;
        l->stats.their_seq = m.seq;
        break;
    case PEER_MSG_PING:
        break;
    default: {
        /* A peer that proved the secret but sends nonsense: ignore the
         * line (nothing is stored) and say so. */
        char esc[200];
        log_escape(line, len > 48 ? 48 : len, esc, sizeof esc);
        log_msg(LOG_WARN, "link %s: ignoring a malformed message: %s",
                l->peer, esc);
        break;
    }
    }
}

/* Dialer: the listener's CHALLENGE proves it holds the secret. */
static void handle_challenge(struct link *l, const char *line, size_t len)
{
    struct node *n = l->node;
    struct peer_msg m;
    char expect[PEER_MAC_HEX + 1], mine[PEER_MAC_HEX + 1], out[256];
    size_t k;

    if (peer_parse(line, len, &m) != PEER_MSG_CHALLENGE ||
        m.from.len != strlen(l->peer) ||
        memcmp(m.from.p, l->peer, m.from.len) != 0) {
        log_msg(LOG_WARN, "link to %s: unexpected handshake reply", l->peer);
        conn_close(l->conn, "handshake failed");
        return;
    }
    memcpy(l->peer_nonce, m.nonce, sizeof l->peer_nonce);
    if (auth_mac(&n->secret, "listener", n->name, l->peer, l->my_nonce,
                 l->peer_nonce, expect, sizeof expect) < 0 ||
        !auth_mac_equal(expect, m.mac)) {
        log_msg(LOG_ERROR, "link to %s: authentication failed (the herd "
                "secrets differ)", l->peer);
        conn_close(l->conn, "authentication failed");
        return;
    }
    if (auth_mac(&n->secret, "dialer", n->name, l->peer, l->my_nonce,
                 l->peer_nonce, mine, sizeof mine) < 0) {
        conn_close(l->conn, "cannot compute MAC");
        return;
    }
    k = peer_format_auth(mine, out, sizeof out);
    send_line(l, l->conn, out, k);
    if (!l->conn || l->conn->closed)
        return;
    link_up(l);
}

/* Listener: the dialer's AUTH proves it holds the secret. */
static void handle_auth(struct link *l, struct conn *c, const char *line,
                        size_t len)
{
    struct node *n = l->node;
    struct peer_msg m;
    char expect[PEER_MAC_HEX + 1];

    if (peer_parse(line, len, &m) != PEER_MSG_AUTH ||
        auth_mac(&n->secret, "dialer", l->peer, n->name,
                 l->pending_peer_nonce, l->pending_my_nonce, expect,
                 sizeof expect) < 0 ||
        !auth_mac_equal(expect, m.mac)) {
        log_msg(LOG_ERROR, "link from %s (%s): authentication failed",
                l->peer, c->addr);
        conn_close(c, "authentication failed");
        return;
    }
    l->pending = NULL;
    if (l->conn) {
        /* The peer came back (restart, or a link we did not yet see
         * drop): the proven new connection replaces the old one. */
        conn_close(l->conn, "replaced by a new connection");
    }
    l->conn = c;
    memcpy(l->my_nonce, l->pending_my_nonce, sizeof l->my_nonce);
    memcpy(l->peer_nonce, l->pending_peer_nonce, sizeof l->peer_nonce);
    link_up(l);
}

static void on_line(struct conn *c, const char *line, size_t len)
{
    struct link *l = c->owner;

    if (c == l->pending) {
        handle_auth(l, c, line, len);
        return;
    }
    if (c != l->conn)
        return;
    if (l->state == LINK_HANDSHAKE)
        handle_challenge(l, line, len);
    else if (l->state == LINK_UP)
        handle_up_line(l, line, len);
}

static void on_overlong(struct conn *c, const char *line)
{
    struct link *l = c->owner;

    (void)line;
    /* Never a reason to drop the link: the peer would redial and send
     * the same record again in its catch-up, for ever.  The line is
     * skipped (conn drops it to its "\n") and the link stays up. */
    log_msg(LOG_WARN, "link %s: skipped a message longer than %zu bytes",
            l->peer, c->max_line);
}

static void on_drain(struct conn *c)
{
    struct link *l = c->owner;
    char out[256];
    size_t k;

    if (c != l->conn)
        return;
    if (l->state == LINK_CONNECTING) {
        /* Connected: say hello with a fresh nonce. */
        if (auth_nonce(l->my_nonce, sizeof l->my_nonce) < 0) {
            conn_close(c, "no randomness");
            return;
        }
        k = peer_format_hello(l->node->name, l->peer, l->my_nonce, out,
                              sizeof out);
        set_state(l, LINK_HANDSHAKE);
        send_line(l, c, out, k);
        return;
    }
    if (l->state == LINK_UP)
        fill_catchup(l);
}

static void connect_next(struct link *l);

static void on_close(struct conn *c, const char *why)
{
    struct link *l = c->owner;

    if (c == l->pending) {
        l->pending = NULL;
        return;
    }
    if (c != l->conn)
        return;
    l->conn = NULL;
    if (l->state == LINK_UP) {
        log_msg(LOG_WARN, "link down: %s (%s)", l->peer, why);
        metrics_link_drop(l->peer);
    } else {
        metrics_dial_failure();
        if (l->failures++ == 0 || l->failures % 30 == 0)
            /* Say it once, then now and then, not at every redial. */
            log_msg(LOG_INFO, "link to %s: not connected (%s); retrying",
                    l->peer, why);
    }
    set_state(l, LINK_DOWN);
    l->sending_catchup = 0;
    l->awaiting_resume = 0;
    l->stats.sending = l->stats.receiving = 0;
    journal_reader_close(l->reader);
    l->reader = NULL;
    if (l->dialer && l->next_addr < l->addrs.n)
        connect_next(l);        /* this address failed: the next one */
    else
        schedule_redial(l);
}

static const struct conn_ops link_ops = {
    .on_line = on_line,
    .on_overlong = on_overlong,
    .ready = NULL,
    .on_drain = on_drain,
    .on_close = on_close,
};

static int set_nonblocking(int fd)
{
    int flags = fcntl(fd, F_GETFL);
    return flags < 0 ? -1 : fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

/* Connect to the next address of the last answer; when none is left,
 * wait for the redial (which resolves the name again). */
static void connect_next(struct link *l)
{
    struct node *n = l->node;
    char addr[300];
    int one = 1;

    while (l->next_addr < l->addrs.n) {
        const struct resolve_addr *a = &l->addrs.addr[l->next_addr++];
        int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

        if (fd < 0 || set_nonblocking(fd) < 0) {
            log_msg(LOG_WARN, "link to %s: socket: %s", l->peer,
                    strerror(errno));
            if (fd >= 0)
                close(fd);
            continue;
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (connect(fd, (const struct sockaddr *)&a->ss, a->len) < 0 &&
            errno != EINPROGRESS) {
            int err = errno;
            close(fd);
            metrics_dial_failure();
            if (l->failures++ == 0 || l->failures % 30 == 0)
                log_msg(LOG_INFO, "link to %s: not connected (%s); retrying",
                        l->peer, strerror(err));
            continue;
        }
        snprintf(addr, sizeof addr, "%s:%d", l->host, l->port);
        l->conn = conn_new(n->loop, fd, addr, &link_ops, l, max_peer_line(n),
                           LINK_OUTPUT_MAX, 1);
        if (!l->conn) {
            close(fd);
            continue;
        }
        l->conn->id = ++n->next_conn_id;
        never_pause(l->conn);
        l->connect_since = ev_now(n->loop);
        set_state(l, LINK_CONNECTING);
        return;
    }
    schedule_redial(l);
}

static void on_resolved(void *arg, const struct resolve_result *res)
{
    struct link *l = arg;

    l->resolving = NULL;
    if (res->n == 0) {
        log_msg(LOG_WARN, "link to %s: cannot resolve %s: %s", l->peer,
                l->host, res->error);
        l->addrs.n = l->next_addr = 0;
        schedule_redial(l);
        return;
    }
    l->addrs = *res;
    l->next_addr = 0;
    if (!l->conn)
        connect_next(l);
}

/* Every dial resolves the name again (off the loop: node/resolve.c),
 * then tries each address it got. */
static void dial(struct link *l)
{
    if (l->resolving || l->conn)
        return;
    l->addrs.n = l->next_addr = 0;
    l->resolving = resolve_start(l->node->resolver, l->host, l->port,
                                 on_resolved, l);
    if (!l->resolving)
        schedule_redial(l);
}

static void on_retry(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct link *l = container_of(w, struct link, retry);

    (void)loop;
    (void)revents;
    if (!l->conn)
        dial(l);
}

static struct link *new_link(struct node *n, const struct node_conf *peer)
{
    struct link *l = calloc(1, sizeof *l);

    if (!l)
        return NULL;
    l->node = n;
    snprintf(l->peer, sizeof l->peer, "%s", peer->name);
    snprintf(l->host, sizeof l->host, "%s", peer->host);
    l->port = peer->port;
    l->dialer = strcmp(n->name, peer->name) < 0;
    l->backoff = BACKOFF_FIRST;
    l->stats.mode = "none";
    if (journal_position(n->journal, l->peer, &l->stats.their_epoch,
                         &l->stats.their_seq) == 0)
        l->stats.their_epoch = l->stats.their_seq = 0;
    ev_timer_init(&l->retry, on_retry, 0., 0.);
    return l;
}

static void free_link(struct link *l)
{
    l->dialer = 0;              /* closing below must not schedule a redial */
    if (l->pending)
        conn_close(l->pending, "link removed");
    if (l->conn)
        conn_close(l->conn, "link removed");
    ev_timer_stop(l->node->loop, &l->retry);
    resolve_cancel(l->resolving);
    journal_reader_close(l->reader);
    free(l);
}

int link_start_all(struct node *n)
{
    int self = config_find_node(&n->cfg, n->name);
    const struct node_conf *me = &n->cfg.nodes[self];
    char err[160];

    n->resolver = resolver_new(n->loop, err, sizeof err);
    if (!n->resolver) {
        log_msg(LOG_ERROR, "cannot start the name resolver: %s", err);
        return -1;
    }
    n->links = calloc(me->n_neighbors ? me->n_neighbors : 1, sizeof *n->links);
    if (!n->links)
        return -1;
    for (size_t i = 0; i < me->n_neighbors; i++) {
        struct link *l = new_link(n, &n->cfg.nodes[me->neighbors[i]]);
        if (!l)
            return -1;
        n->links[n->n_links++] = l;
        if (l->dialer)
            dial(l);
    }
    return 0;
}

void link_reconfigure(struct node *n)
{
    int self = config_find_node(&n->cfg, n->name);
    const struct node_conf *me = &n->cfg.nodes[self];
    struct link **next = calloc(me->n_neighbors ? me->n_neighbors : 1,
                                sizeof *next);
    size_t count = 0;

    if (!next) {
        log_msg(LOG_ERROR, "reload: out of memory; links unchanged");
        return;
    }
    for (size_t i = 0; i < me->n_neighbors; i++) {
        const struct node_conf *peer = &n->cfg.nodes[me->neighbors[i]];
        struct link *l = NULL;

        for (size_t j = 0; j < n->n_links; j++) {
            if (n->links[j] && strcmp(n->links[j]->peer, peer->name) == 0) {
                l = n->links[j];
                n->links[j] = NULL;
                break;
            }
        }
        if (l && (l->port != peer->port || strcmp(l->host, peer->host) != 0)) {
            log_msg(LOG_INFO, "reload: %s moved to %s:%d; relinking",
                    peer->name, peer->host, peer->port);
            snprintf(l->host, sizeof l->host, "%s", peer->host);
            l->port = peer->port;
            resolve_cancel(l->resolving);
            l->resolving = NULL;
            l->addrs.n = l->next_addr = 0;
            l->backoff = BACKOFF_FIRST;
            if (l->conn)
                conn_close(l->conn, "neighbour moved");
            else if (l->dialer)
                schedule_redial(l);
        } else if (!l) {
            l = new_link(n, peer);
            if (!l)
                continue;
            log_msg(LOG_INFO, "reload: new link to %s", peer->name);
            if (l->dialer)
                dial(l);
        }
        next[count++] = l;
    }
    for (size_t j = 0; j < n->n_links; j++) {
        if (n->links[j]) {
            log_msg(LOG_INFO, "reload: link to %s removed", n->links[j]->peer);
            free_link(n->links[j]);
        }
    }
    free(n->links);
    n->links = next;
    n->n_links = count;
    n->status_dirty = 1;
}

int link_accept(struct node *n, struct conn *c, const struct peer_msg *hello)
{
    struct link *l = NULL;
    char mac[PEER_MAC_HEX + 1], out[256];
    size_t k;

    if (hello->to.len != strlen(n->name) ||
        memcmp(hello->to.p, n->name, hello->to.len) != 0)
        return 0;
    for (size_t i = 0; i < n->n_links; i++) {
        struct link *x = n->links[i];
        if (strlen(x->peer) == hello->from.len &&
            memcmp(x->peer, hello->from.p, hello->from.len) == 0)
            l = x;
    }
    if (!l || l->dialer)
        return 0;               /* not a neighbour that dials us */
    if (l->pending)
        conn_close(l->pending, "superseded by a newer handshake");
    memcpy(l->pending_peer_nonce, hello->nonce, sizeof l->pending_peer_nonce);
    if (auth_nonce(l->pending_my_nonce, sizeof l->pending_my_nonce) < 0 ||
        auth_mac(&n->secret, "listener", l->peer, n->name,
                 l->pending_peer_nonce, l->pending_my_nonce, mac,
                 sizeof mac) < 0)
        return 0;
    conn_set_owner(c, &link_ops, l, max_peer_line(n), LINK_OUTPUT_MAX);
    never_pause(c);
    l->pending = c;
    l->pending_since = ev_now(n->loop);
    k = peer_format_challenge(n->name, l->pending_my_nonce, mac, out, sizeof out);
    send_line(l, c, out, k);
    return 1;
}

void link_flood(struct node *n, const char *line, size_t len, struct link *from)
{
    char stack[1024], *msg = stack;
    size_t need = peer_format_at(line, len, stack, sizeof stack);

    if (need + 1 > sizeof stack) {
        msg = malloc(need + 1);
        if (!msg)
            return;             /* the next catch-up repairs it */
        peer_format_at(line, len, msg, need + 1);
    }
    for (size_t i = 0; i < n->n_links; i++) {
        struct link *l = n->links[i];
        if (l != from && l->state == LINK_UP && l->conn) {
            send_line(l, l->conn, msg, need);
            n->flood_sent++;
        }
    }
    if (msg != stack)
        free(msg);
}

void link_tick(struct node *n, double now)
{
    char out[64];
    size_t k = peer_format_ping(out, sizeof out);

    for (size_t i = 0; i < n->n_links; i++) {
        struct link *l = n->links[i];

        if (l->pending && now - l->pending_since > HANDSHAKE_TIMEOUT)
            conn_close(l->pending, "handshake timed out");
        if (!l->conn)
            continue;
        if (l->state != LINK_UP) {
            if (now - l->connect_since > HANDSHAKE_TIMEOUT)
                conn_close(l->conn, "connect or handshake timed out");
            continue;
        }
        if (now - l->conn->last_rx > SILENCE_LIMIT) {
            conn_close(l->conn, "peer silent too long");
            continue;
        }
        /* Past its catch-up, a link tells the peer once a second how far
         * our log is sent (floods go out as records are applied). */
        if (n->journal && !l->sending_catchup && !l->awaiting_resume &&
            (journal_epoch(n->journal) != l->mark_epoch ||
             journal_last_seq(n->journal) != l->marked))
            send_mark(l, journal_epoch(n->journal),
                      journal_last_seq(n->journal));
        if (!l->conn->closed && now - l->last_tx >= PING_EVERY)
            send_line(l, l->conn, out, k);
    }
}

void link_free_all(struct node *n)
{
    for (size_t i = 0; i < n->n_links; i++)
        free_link(n->links[i]);
    free(n->links);
    n->links = NULL;
    n->n_links = 0;
    resolver_free(n->resolver);
    n->resolver = NULL;
}
