#include "link.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/crypto.h>
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
#include "tls.h"

#define BACKOFF_FIRST 0.1       /* seconds before the first redial */
#define BACKOFF_CAP 2.0         /* redials never wait longer than this */
#define HANDSHAKE_TIMEOUT 5.0   /* connect + handshake */
#define PING_EVERY 5.0          /* send something at least this often */
#define SILENCE_LIMIT 20.0      /* a peer quiet this long is gone */
#define LINK_OUTPUT_MAX (8u << 20)  /* per link; past it, drop and resync */
#define MARK_EVERY 1024         /* incremental catch-up: a MARK this often */
#define FILL_BUDGET 16384       /* log records read per fill_catchup() */
/* Listener: handshakes not yet proven, bounded per link, per source
 * address and in all, and in time.  A real dialer proves itself within
 * a round trip, so these are far above what it needs. */
#define PENDING_PER_LINK 8
#define PENDING_PER_SOURCE 16
#define PENDING_TOTAL 64
#define PENDING_TIMEOUT 2.0
#define SAY_EVERY 10.0          /* flood refusals are summed in the log */

/* Listener: one handshake under way (HERD-HELLO seen, TLS not done). */
struct pending {
    struct link *l;
    struct conn *c;
    double since;
    char key_id[AUTH_KEY_ID_HEX + 1];
    char src[64];               /* source address, without the port */
    struct pending *prev, *next;        /* all of them, oldest first */
};

static struct pending *pend_head, *pend_tail;
static size_t pend_count;
static unsigned long pend_dropped;      /* since last said */
static double pend_said;
static char pend_last[200];             /* the last one's reason */

struct link {
    struct node *node;
    char peer[CONFIG_NAME_MAX + 1];
    char host[CONFIG_HOST_MAX + 1];
    int port;
    int dialer;                 /* we dial: our name sorts first */
    enum link_state state;
    struct conn *conn;          /* the link, once connecting or up */
    double connect_since;
    char conn_key[AUTH_KEY_ID_HEX + 1];  /* the key conn is keyed by */
    int conn_hello;             /* dialer: HELLO sent on conn */
    /* Dialer, re-keying: a second connection with the new primary key,
     * made while conn stays up, that replaces it once confirmed. */
    struct conn *rekey;
    double rekey_since;
    char rekey_key[AUTH_KEY_ID_HEX + 1];
    int rekey_hello;
    /* Clear-text refusals (an old node, an unknown key): said once per
     * SAY_EVERY with the count, since anyone can cause them at will. */
    unsigned long refusals;
    double refused_said;
    char refused_why[120];
    ev_timer retry;
    ev_timer more;              /* the catch-up goes on next turn */
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
    int missed;                 /* a record from the peer was not stored
                                   (out of memory): ignore its MARKs until
                                   the next link-up */
    struct link_catchup stats;
    int failures;               /* dial failures in a row, for the log */
    /* dialer: the name lookup under way, and its answer's addresses,
     * tried in order until one connects */
    struct resolve_query *resolving;
    struct resolve_result addrs;
    size_t next_addr;
    char last_why[160];         /* the last one's reason, for the log */
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

/* Say a failed attempt once, then when its reason changes (a refusal
 * after "connection refused"), then now and then: not at every redial. */
static void not_connected(struct link *l, const char *why)
{
    if (l->failures++ == 0 || l->failures % 30 == 0 ||
        strncmp(l->last_why, why, sizeof l->last_why - 1) != 0)
        log_msg(LOG_INFO, "link to %s: not connected (%s); retrying",
                l->peer, why);
    snprintf(l->last_why, sizeof l->last_why, "%s", why);
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
static int next_from_log(struct link *l, const char **line, size_t *len,
                         unsigned *budget)
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
        if (*budget > 0)
            --*budget;
        if (proto_parse_at(*line, *len, &at) < 0)
            continue;
        r = store_find(&l->node->store, at.id.p, at.id.len);
        if (r) {
            held = record_line(r, &hlen);
            if (hlen != *len || memcmp(held, *line, hlen) != 0) {
                if (*budget == 0)
                    return 2;   /* enough for one turn of the loop */
                continue;
            }
        }
        return 1;
    }
}

/* Send catch-up records while the output queue has room for them. */
static void fill_catchup(struct link *l)
{
    if (ev_is_active(&l->more))
        return;                 /* a turn of the loop first */
    struct conn *c = l->conn;
    char stack[64];
    size_t target = LINK_OUTPUT_MAX / 4;
    /* Records read from the log per call: a long run of superseded ones
     * (skipped, nothing sent) must not hold the loop either. */
    unsigned budget = FILL_BUDGET;

    while (l->sending_catchup && !c->closed && buf_len(&c->out) < target) {
        const char *line = NULL;
        size_t len = 0;
        int more;

        if (l->reader) {
            more = next_from_log(l, &line, &len, &budget);
            if (more < 0)
                continue;       /* now walking */
            if (more == 2) {
                /* Give the loop back; go on from here next turn (a
                 * drain could call us again before the loop runs). */
                send_mark(l, l->mark_epoch, journal_reader_seq(l->reader));
                ev_timer_stop(l->node->loop, &l->more);
                ev_timer_set(&l->more, 0., 0.);
                ev_timer_start(l->node->loop, &l->more);
                return;
            }
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
    journal_reader_close(l->reader);
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
    l->last_why[0] = '\0';
    log_msg(LOG_INFO, "link up: %s (%s, key %s)", l->peer, l->conn->addr,
            l->conn_key);
    /* First where we are in the peer's log; our catch-up waits for the
     * peer to say where it is in ours. */
    if (!journal_position(l->node->journal, l->peer, &epoch, &seq))
        epoch = seq = 0;
    /* A connection that replaced one while up (re-keyed, or the peer
     * came back) starts its catch-up afresh: what the old one had queued
     * is gone with it. */
    journal_reader_close(l->reader);
    l->reader = NULL;
    k = peer_format_resume(epoch, seq, out, sizeof out);
    send_line(l, l->conn, out, k);
    l->awaiting_resume = 1;
    l->missed = 0;
    l->sending_catchup = 0;
    l->receiving_catchup = 1;
    l->received = l->applied = 0;
    l->stats.received_records = l->stats.received_bytes = 0;
    l->stats.receiving = 1;
}

static void handle_up_line(struct link *l, const char *line, size_t len)
{
    struct peer_msg m;
    enum store_result res;
    int applied;

    switch (peer_parse(line, len, &m)) {
    case PEER_MSG_AT:
        l->node->flood_received++;
        res = node_apply_update(l->node, m.at_line.p, m.at_line.len, &m.at,
                                l);
        applied = res == STORE_APPLIED;
        if (res == STORE_NOMEM)
            l->missed = 1;      /* not held: no position past it */
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
        if (l->missed)
            break;              /* the next link-up's catch-up resends */
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

static const struct conn_ops link_ops;
static const struct conn_ops pending_ops;
static void rekey_dial(struct link *l);

/* The PSK identity: both names in their roles and the key, exactly as
 * the clear HERD-HELLO gave them, so a ClientHello is bound to its
 * HELLO and to this pair of nodes. */
static void identity_of(const char *dialer, const char *listener,
                        const char *key_id, char *out, size_t cap)
{
    snprintf(out, cap, PEER_PROTOCOL " %s %s %s", dialer, listener, key_id);
}

static struct tls *new_tls(int server, const char *dialer,
                           const char *listener, const struct auth_key *k)
{
    unsigned char psk[AUTH_PSK_LEN];
    char identity[256];
    struct tls *t;

    if (auth_link_psk(&k->secret, dialer, listener, psk) < 0)
        return NULL;
    identity_of(dialer, listener, k->id, identity, sizeof identity);
    t = tls_new(server, identity, psk);
    OPENSSL_cleanse(psk, sizeof psk);
    return t;
}

/* Dialer, connected: HERD-HELLO in clear with the primary key's id,
 * then TLS on the same connection. */
static void start_hello(struct link *l, struct conn *c, char *key_out)
{
    struct node *n = l->node;
    const struct auth_key *k = &n->keys.keys[0];
    struct tls *t = new_tls(0, n->name, l->peer, k);
    char out[256];
    size_t len;

    if (!t) {
        conn_close(c, "cannot start TLS");
        return;
    }
    memcpy(key_out, k->id, AUTH_KEY_ID_HEX + 1);
    len = peer_format_hello(n->name, l->peer, k->id, out, sizeof out);
    send_line(l, c, out, len);
    conn_start_tls(c, t);
}

/* Dialer: the listener's HERD-UP, inside TLS, says it has checked our
 * proof too; only now does the link count. */
static void dialer_confirmed(struct link *l, struct conn *c, const char *line,
                             size_t len)
{
    struct peer_msg m;

    if (peer_parse(line, len, &m) != PEER_MSG_UP) {
        log_msg(LOG_WARN, "link to %s: unexpected handshake reply", l->peer);
        conn_close(c, "handshake failed");
        return;
    }
    if (c == l->rekey) {
        struct conn *old = l->conn;

        /* Make before break: the new connection, keyed by the primary,
         * takes over; the link never counts as down. */
        l->conn = c;
        l->rekey = NULL;
        memcpy(l->conn_key, l->rekey_key, sizeof l->conn_key);
        if (old)
            conn_close(old, "re-keyed");
        log_msg(LOG_INFO, "link re-keyed: %s (key %s)", l->peer, l->conn_key);
    }
    link_up(l);
}

static void on_line(struct conn *c, const char *line, size_t len)
{
    struct link *l = c->owner;

    if (c == l->rekey) {
        dialer_confirmed(l, c, line, len);
        return;
    }
    if (c != l->conn)
        return;
    if (l->state == LINK_HANDSHAKE)
        dialer_confirmed(l, c, line, len);
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

    if (c == l->rekey && !l->rekey_hello) {
        l->rekey_hello = 1;
        start_hello(l, c, l->rekey_key);
        return;
    }
    if (c != l->conn)
        return;
    if (l->state == LINK_CONNECTING && !l->conn_hello) {
        l->conn_hello = 1;
        set_state(l, LINK_HANDSHAKE);
        start_hello(l, c, l->conn_key);
        return;
    }
    if (l->state == LINK_UP)
        fill_catchup(l);
}

static void connect_next(struct link *l);

static void on_close(struct conn *c, const char *why)
{
    struct link *l = c->owner;

    if (c == l->rekey) {
        l->rekey = NULL;
        if (l->conn || l->state != LINK_UP) {
            log_msg(LOG_WARN, "link to %s: re-keying failed (%s); the link "
                    "stays on key %s", l->peer, why, l->conn_key);
            return;
        }
        /* The old connection went while re-keying, and now this too. */
        why = "re-keying failed";
    } else if (c == l->conn && l->rekey && l->state == LINK_UP) {
        /* The listener closes the old connection as soon as the new one
         * is proven; its HERD-UP on the new one is on its way. */
        l->conn = NULL;
        return;
    } else if (c != l->conn) {
        return;
    }
    l->conn = NULL;
    if (l->state == LINK_UP) {
        log_msg(LOG_WARN, "link down: %s (%s)", l->peer, why);
        metrics_link_drop(l->peer);
    } else {
        metrics_dial_failure();
        not_connected(l, why);
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

static void on_secure(struct conn *c)
{
    /* Dialer: the listener proved the key; wait for its HERD-UP. */
    (void)c;
}

static const struct conn_ops link_ops = {
    .on_line = on_line,
    .on_overlong = on_overlong,
    .ready = NULL,
    .on_drain = on_drain,
    .on_close = on_close,
    .on_secure = on_secure,
};

/* Listener side: pending handshakes. */

static void pending_unlink(struct pending *p)
{
    if (p->prev)
        p->prev->next = p->next;
    else
        pend_head = p->next;
    if (p->next)
        p->next->prev = p->prev;
    else
        pend_tail = p->prev;
    pend_count--;
}

/* Handshakes that fail or are dropped are what a stranger can cause at
 * will: they are summed, and said at most once per SAY_EVERY. */
static void pending_failed(struct link *l, const char *addr, const char *why)
{
    double now = ev_now(l->node->loop);

    pend_dropped++;
    snprintf(pend_last, sizeof pend_last, "%s from %s as %s", why, addr,
             l->peer);
    if (now - pend_said >= SAY_EVERY) {
        log_msg(LOG_WARN, "link handshakes: %lu failed or dropped in %.0f s "
                "(last: %s)", pend_dropped, pend_said ? now - pend_said :
                0., pend_last);
        pend_dropped = 0;
        pend_said = now;
    }
}

static void pending_line(struct conn *c, const char *line, size_t len)
{
    (void)line;
    (void)len;
    /* Never reached: the dialer says nothing before our HERD-UP. */
    conn_close(c, "spoke before the handshake finished");
}

static void pending_overlong(struct conn *c, const char *line)
{
    (void)line;
    conn_close(c, "message too long");
}

static void pending_close(struct conn *c, const char *why)
{
    struct pending *p = c->owner;

    if (!p->c)
        return;                 /* a refusal, already logged */
    pending_failed(p->l, c->addr, why);
    pending_unlink(p);
    free(p);
}

/* The dialer's TLS Finished checked out: it proved the key.  It becomes
 * the link (replacing an older connection, if any) and is told so. */
static void pending_secure(struct conn *c)
{
    struct pending *p = c->owner;
    struct link *l = p->l;
    struct node *n = l->node;
    struct conn *old = l->conn;
    char out[64];
    size_t k;

    if (!auth_keyring_find(&n->keys, p->key_id, AUTH_KEY_ID_HEX)) {
        conn_close(c, "key removed during the handshake");
        return;
    }
    pending_unlink(p);
    memcpy(l->conn_key, p->key_id, sizeof l->conn_key);
    free(p);
    conn_set_owner(c, &link_ops, l, max_peer_line(n), LINK_OUTPUT_MAX);
    never_pause(c);
    /* The first proven handshake wins; the old connection (a peer that
     * restarted, or re-keyed) goes without the link counting down. */
    l->conn = c;
    if (old)
        conn_close(old, "replaced by a new connection");
    k = peer_format_up(out, sizeof out);
    send_line(l, c, out, k);
    if (!c->closed)
        link_up(l);
}

static const struct conn_ops pending_ops = {
    .on_line = pending_line,
    .on_overlong = pending_overlong,
    .ready = NULL,
    .on_drain = NULL,
    .on_close = pending_close,
    .on_secure = pending_secure,
};

/* Make room for one more pending handshake of l from src: over a bound,
 * the oldest handshake in that bound that has not shown a valid
 * ClientHello goes.  0, or -1 when every one has (refuse the newcomer). */
static int pending_room(struct link *l, const char *src)
{
    for (int scope = 0; scope < 3; scope++) {
        size_t cap = scope == 0 ? PENDING_PER_LINK :
                     scope == 1 ? PENDING_PER_SOURCE : PENDING_TOTAL;

        for (;;) {
            struct pending *victim = NULL;
            size_t count = 0;

            for (struct pending *p = pend_head; p; p = p->next) {
                if ((scope == 0 && p->l != l) ||
                    (scope == 1 && strcmp(p->src, src) != 0))
                    continue;
                count++;
                if (!victim && !tls_hello_proven(p->c->tls))
                    victim = p;
            }
            if (count < cap)
                break;
            if (!victim)
                return -1;
            conn_close(victim->c, "too many pending handshakes");
        }
    }
    return 0;
}

static void refused(struct link *l, const char *addr, const char *why)
{
    double now = ev_now(l->node->loop);

    l->refusals++;
    if (l->refused_said == 0 || now - l->refused_said >= SAY_EVERY ||
        strncmp(l->refused_why, why, sizeof l->refused_why - 1) != 0) {
        if (l->refusals > 1)
            log_msg(LOG_ERROR, "link from %s (%s): refused: %s (%lu refusals "
                    "in %.0f s)", l->peer, addr, why, l->refusals,
                    now - l->refused_said);
        else
            log_msg(LOG_ERROR, "link from %s (%s): refused: %s", l->peer,
                    addr, why);
        l->refusals = 0;
        l->refused_said = now;
        snprintf(l->refused_why, sizeof l->refused_why, "%s", why);
    }
}

/* Refuse a HELLO in clear text and close: nothing of TLS follows. */
static void refuse(struct link *l, struct conn *c, const char *why)
{
    static const struct conn_ops refused_ops = {
        .on_line = pending_line,
        .on_overlong = pending_overlong,
        .on_close = pending_close,
    };
    static struct pending nobody;
    char out[200];
    size_t k = peer_format_refused(why, out, sizeof out);

    nobody.l = l;
    conn_set_owner(c, &refused_ops, &nobody, max_peer_line(l->node), 4096);
    conn_send(c, out, k);
    conn_close_after_flush(c);
}

/* A non-blocking TCP socket for a dial, Nagle off (links carry short
 * lines that should leave at once).  The fd, or -1 with errno. */
static int dial_socket(int family)
{
    int one = 1;
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

    if (fd >= 0)
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

/* The link connection a dial on fd becomes, numbered and never paused;
 * NULL (fd closed) when memory is short. */
static struct conn *dial_conn(struct link *l, int fd, const char *addr)
{
    struct node *n = l->node;
    struct conn *c = conn_new(n->loop, fd, addr, &link_ops, l,
                              max_peer_line(n), LINK_OUTPUT_MAX, 1);

    if (!c) {
        close(fd);
        return NULL;
    }
    c->id = ++n->next_conn_id;
    never_pause(c);
    return c;
}

/* Connect to the next address of the last answer; when none is left,
 * wait for the redial (which resolves the name again). */
static void connect_next(struct link *l)
{
    char addr[300];

    while (l->next_addr < l->addrs.n) {
        const struct resolve_addr *a = &l->addrs.addr[l->next_addr++];
        int fd = dial_socket(a->ss.ss_family);

        if (fd < 0) {
            log_msg(LOG_WARN, "link to %s: socket: %s", l->peer,
                    strerror(errno));
            continue;
        }
        if (connect(fd, (const struct sockaddr *)&a->ss, a->len) < 0 &&
            errno != EINPROGRESS) {
            int err = errno;
            close(fd);
            metrics_dial_failure();
            not_connected(l, strerror(err));
            continue;
        }
        snprintf(addr, sizeof addr, "%s:%d", l->host, l->port);
        l->conn = dial_conn(l, fd, addr);
        if (!l->conn)
            continue;
        l->conn_hello = 0;
        l->connect_since = ev_now(l->node->loop);
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

/* Re-keying: a second connection to the address the working link is
 * connected to, which replaces it once proven with the new primary. */
static void rekey_dial(struct link *l)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    int fd;

    if (getpeername(l->conn->fd, (struct sockaddr *)&ss, &len) < 0)
        return;
    fd = dial_socket(ss.ss_family);
    if (fd < 0) {
        log_msg(LOG_WARN, "link to %s: re-keying: %s", l->peer, strerror(errno));
        return;
    }
    if (connect(fd, (struct sockaddr *)&ss, len) < 0 && errno != EINPROGRESS) {
        log_msg(LOG_WARN, "link to %s: re-keying: %s", l->peer, strerror(errno));
        close(fd);
        return;
    }
    l->rekey = dial_conn(l, fd, l->conn->addr);
    if (!l->rekey)
        return;
    l->rekey_hello = 0;
    l->rekey_since = ev_now(l->node->loop);
}

static void on_retry(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct link *l = container_of(w, struct link, retry);

    (void)loop;
    (void)revents;
    if (!l->conn)
        dial(l);
}

static void on_more(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct link *l = container_of(w, struct link, more);

    (void)loop;
    (void)revents;
    if (l->conn && l->state == LINK_UP && l->sending_catchup)
        fill_catchup(l);
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
    ev_timer_init(&l->more, on_more, 0., 0.);
    return l;
}

static void free_link(struct link *l)
{
    l->dialer = 0;              /* closing below must not schedule a redial */
    for (struct pending *p = pend_head, *next; p; p = next) {
        next = p->next;
        if (p->l == l)
            conn_close(p->c, "link removed");
    }
    if (l->rekey)
        conn_close(l->rekey, "link removed");
    if (l->conn)
        conn_close(l->conn, "link removed");
    ev_timer_stop(l->node->loop, &l->retry);
    ev_timer_stop(l->node->loop, &l->more);
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

static void expire_pending(double now)
{
    while (pend_head && now - pend_head->since > PENDING_TIMEOUT)
        conn_close(pend_head->c, "handshake timed out");
}

int link_accept(struct node *n, struct conn *c, const struct peer_msg *hello)
{
    struct link *l = NULL;
    const struct auth_key *key;
    struct pending *p;
    struct tls *t;
    char src[64], why[120];
    const char *colon;

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
    if (hello->version != 2) {
        /* An old node (plaintext HMAC handshake): told in words it will
         * log, and said here. */
        refused(l, c->addr, "it speaks the old link protocol (herd-v1, "
                "plaintext); upgrade it to herd-v2 (TLS)");
        refuse(l, c, "herd-v2 (TLS) links only; this node refuses herd-v1");
        return 1;
    }
    key = auth_keyring_find(&n->keys, hello->key_id, AUTH_KEY_ID_HEX);
    if (!key) {
        snprintf(why, sizeof why, "key %s is not in the keyring",
                 hello->key_id);
        refused(l, c->addr, why);
        refuse(l, c, why);
        return 1;
    }
    colon = strrchr(c->addr, ':');
    snprintf(src, sizeof src, "%.*s", colon ? (int)(colon - c->addr) :
             (int)strlen(c->addr), c->addr);
    expire_pending(ev_now(n->loop));
    if (pending_room(l, src) < 0) {
        pending_failed(l, c->addr, "too many pending handshakes");
        refuse(l, c, "too many pending handshakes");
        return 1;
    }
    p = calloc(1, sizeof *p);
    t = p ? new_tls(1, l->peer, n->name, key) : NULL;
    if (!t) {
        free(p);
        refuse(l, c, "out of memory");
        return 1;
    }
    p->l = l;
    p->c = c;
    p->since = ev_now(n->loop);
    memcpy(p->key_id, key->id, sizeof p->key_id);
    snprintf(p->src, sizeof p->src, "%s", src);
    p->prev = pend_tail;
    if (pend_tail)
        pend_tail->next = p;
    else
        pend_head = p;
    pend_tail = p;
    pend_count++;
    conn_set_owner(c, &pending_ops, p, max_peer_line(n), LINK_OUTPUT_MAX);
    never_pause(c);
    conn_start_tls(c, t);
    return 1;
}

void link_keyring_changed(struct node *n)
{
    const char *primary = n->keys.keys[0].id;

    /* A key that left the keyring is refused at once: whatever it keys,
     * handshake or link, is dropped. */
    for (struct pending *p = pend_head, *next; p; p = next) {
        next = p->next;
        if (!auth_keyring_find(&n->keys, p->key_id, AUTH_KEY_ID_HEX))
            conn_close(p->c, "its key was removed from the keyring");
    }
    for (size_t i = 0; i < n->n_links; i++) {
        struct link *l = n->links[i];

        if (l->rekey &&
            !auth_keyring_find(&n->keys, l->rekey_key, AUTH_KEY_ID_HEX))
            conn_close(l->rekey, "its key was removed from the keyring");
        if (l->conn && l->state != LINK_CONNECTING &&
            !auth_keyring_find(&n->keys, l->conn_key, AUTH_KEY_ID_HEX)) {
            char why[80];
            snprintf(why, sizeof why, "key %s was removed from the keyring",
                     l->conn_key);
            conn_close(l->conn, why);
        }
        /* A new primary: the dialer re-keys its working links, making
         * the new connection before it breaks the old. */
        if (l->dialer && l->state == LINK_UP && l->conn && !l->rekey &&
            strcmp(l->conn_key, primary) != 0)
            rekey_dial(l);
    }
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

    expire_pending(now);
    for (size_t i = 0; i < n->n_links; i++) {
        struct link *l = n->links[i];

        if (l->rekey && now - l->rekey_since > HANDSHAKE_TIMEOUT)
            conn_close(l->rekey, "connect or handshake timed out");
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
