#include "client.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "common/peerproto.h"
#include "common/protocol.h"
#include "conn.h"
#include "journal.h"
#include "link.h"
#include "metrics.h"
#include "places.h"

/* WHATSATs waiting for places per connection; past it, reading pauses. */
#define CLIENT_MAX_PENDING 32
/* How much of each request and reply a log line shows. */
#define LOG_SHOW 2048

struct reply_slot {
    struct reply_slot *next;
    struct client *client;
    struct places_req *req;     /* while the places are on their way */
    char *at_line;              /* the stored AT line, copied */
    size_t at_len;
    char *data;                 /* the whole reply, once ready */
    size_t len;
    int ready;
    int held;                   /* waits for the journal's fsync */
    double t0;                  /* metrics_clock() at the read of its line */
};

struct client {
    struct node *node;
    struct conn *conn;
    struct reply_slot *head, *tail;
    int pending;
    int eof;                    /* no more requests: close once answered */
    struct client *held_prev, *held_next;  /* on held_list */
    int on_held_list;
    int spare;                  /* in a slot past max_clients (main.c) */
    unsigned long lines;        /* requests read */
    ev_tstamp opened;
    ev_tstamp last_active;      /* last request read or reply queue emptied */
    struct client *lru_prev, *lru_next;   /* by last_active, oldest first */
};

/* A spare slot is for a neighbour's link opening, which comes at once;
 * a connection that says nothing keeps it no longer than this. */
#define SPARE_FIRST_LINE_S 5.0
/* When every spare slot is held, one held this long gives way to a new
 * connection: a neighbour's opening comes well within it, so a stranger
 * must open connections faster than this to keep one out. */
#define SPARE_GIVE_WAY_S 0.5
/* The node full, a client idle at least this long may be closed to admit
 * a new connection. */
#define EVICT_IDLE_S 1.0

/* Every client connection, least recently active first: the one to close
 * when the node is full, and the order of the idle sweep. */
static struct client *lru_head, *lru_tail;

static void lru_unlink(struct client *cl)
{
    if (cl->lru_prev)
        cl->lru_prev->lru_next = cl->lru_next;
    else if (lru_head == cl)
        lru_head = cl->lru_next;
    if (cl->lru_next)
        cl->lru_next->lru_prev = cl->lru_prev;
    else if (lru_tail == cl)
        lru_tail = cl->lru_prev;
    cl->lru_prev = cl->lru_next = NULL;
}

static void touch(struct client *cl)
{
    lru_unlink(cl);
    cl->last_active = ev_now(cl->node->loop);
    cl->lru_prev = lru_tail;
    if (lru_tail)
        lru_tail->lru_next = cl;
    else
        lru_head = cl;
    lru_tail = cl;
}

/* Nothing under way: no reply owed or queued, no half line, not closing. */
static int quiet(const struct client *cl)
{
    const struct conn *c = cl->conn;

    return !cl->head && !cl->eof && buf_len(&c->in) == 0 &&
           buf_len(&c->out) == 0 && !c->flushing_close && !c->lingering &&
           !c->done_reading && !c->closed;
}


/* Clients with an IAMAT reply waiting for the journal's fsync
 * (fsync = always); client_release_held() sends them. */
static struct client *held_list;

static void held_unlink(struct client *cl)
{
    if (!cl->on_held_list)
        return;
    if (cl->held_prev)
        cl->held_prev->held_next = cl->held_next;
    else
        held_list = cl->held_next;
    if (cl->held_next)
        cl->held_next->held_prev = cl->held_prev;
    cl->held_prev = cl->held_next = NULL;
    cl->on_held_list = 0;
}

/* The client leaves the client count (closed, or turned into a link). */
static void forget(struct client *cl)
{
    lru_unlink(cl);
    held_unlink(cl);
    cl->node->n_clients--;
    if (cl->spare)
        cl->node->n_spare--;
}

static void free_slot(struct reply_slot *s)
{
    if (s->req)
        places_cancel(s->req);
    free(s->at_line);
    free(s->data);
    free(s);
}

static void on_close(struct conn *c, const char *why)
{
    struct client *cl = c->owner;
    struct reply_slot *s, *next;

    log_msg(LOG_INFO, "client %lu closed: %s", c->id, why);
    forget(cl);
    for (s = cl->head; s; s = next) {
        next = s->next;
        free_slot(s);
    }
    free(cl);
}

/* "client 12 < " for a log line, without printf: it runs per request. */
static void client_label(char *out, unsigned long id, char arrow)
{
    char digits[24];
    size_t n = 0, o = 7;

    memcpy(out, "client ", 7);
    do {
        digits[n++] = (char)('0' + id % 10);
        id /= 10;
    } while (id > 0);
    while (n > 0)
        out[o++] = digits[--n];
    out[o++] = ' ';
    out[o++] = arrow;
    out[o++] = ' ';
    out[o] = '\0';
}

static void log_reply(struct client *cl, const char *data, size_t len)
{
    char label[48];

    client_label(label, cl->conn->id, '>');
    /* Drop the line ending(s): the log shows one line per reply. */
    while (len > 0 && data[len - 1] == '\n')
        len--;
    log_bytes(label, data, len, LOG_SHOW);
}

/* A new slot at the end of the client's reply queue, holding a copy of
 * len bytes of data (none when data is NULL).  NULL, with the connection
 * closed, when memory is short. */
static struct reply_slot *enqueue(struct client *cl, const char *data,
                                  size_t len)
{
    struct reply_slot *s = calloc(1, sizeof *s);

    if (s && data) {
        s->data = malloc(len);
        if (s->data) {
            memcpy(s->data, data, len);
            s->len = len;
        }
    }
    if (!s || (data && !s->data)) {
        free(s);
        conn_close(cl->conn, "out of memory");
        return NULL;
    }
    s->client = cl;
    if (cl->tail)
        cl->tail->next = s;
    else
        cl->head = s;
    cl->tail = s;
    cl->pending++;
    return s;
}

/* The first slot of the reply queue, taken off it to be sent. */
static struct reply_slot *dequeue(struct client *cl)
{
    struct reply_slot *s = cl->head;

    cl->head = s->next;
    if (!cl->head)
        cl->tail = NULL;
    cl->pending--;
    return s;
}

/* Replies leave in request order: a reply behind a pending WHATSAT waits. */
static int reply(struct client *cl, const char *data, size_t len)
{
    struct reply_slot *s;

    log_reply(cl, data, len);
    if (cl->head == NULL)
        return conn_send(cl->conn, data, len);
    s = enqueue(cl, data, len);
    if (!s)
        return -1;
    s->ready = 1;
    return 0;
}

/* With fsync = always, an IAMAT's reply is its acknowledgment: it must not
 * leave before the update is on disk.  It waits in the connection's
 * ordered reply queue, not ready, until client_release_held() runs after
 * the journal's fsync. */
static int reply_held(struct client *cl, const char *data, size_t len)
{
    struct reply_slot *s;

    log_reply(cl, data, len);
    s = enqueue(cl, data, len);
    if (!s)
        return -1;
    s->held = 1;
    if (!cl->on_held_list) {
        cl->held_next = held_list;
        cl->held_prev = NULL;
        if (held_list)
            held_list->held_prev = cl;
        held_list = cl;
        cl->on_held_list = 1;
    }
    return 0;
}

static void flush_ready(struct client *cl)
{
    int was_full = cl->pending >= CLIENT_MAX_PENDING;

    while (cl->head && cl->head->ready) {
        struct reply_slot *s = dequeue(cl);
        int rc = conn_send(cl->conn, s->data, s->len);

        free_slot(s);
        if (rc < 0)
            return;             /* closed: on_close freed the client */
    }
    if (!cl->head)
        touch(cl);              /* all answered: idle from now */
    if (cl->eof && !cl->head) {
        conn_close_after_flush(cl->conn);
        return;
    }
    if (was_full && cl->pending < CLIENT_MAX_PENDING)
        conn_resume(cl->conn);
}

void client_release_held(void)
{
    while (held_list) {
        struct client *cl = held_list;

        held_unlink(cl);
        for (struct reply_slot *s = cl->head; s; s = s->next) {
            if (s->held) {
                s->held = 0;
                s->ready = 1;
            }
        }
        flush_ready(cl);        /* may close and free cl */
    }
}

/* A WHATSAT's reply in the log: with log_replies = summary (the
 * default) its AT line and one line saying what the JSON was, not the
 * JSON itself (kilobytes per reply would leave a rotated log holding
 * seconds of history); with full, all of it. */
static void log_whatsat(struct client *cl, const struct reply_slot *s,
                        const struct places_json *j)
{
    char label[48], line[128];
    int n;

    if (cl->node->cfg.log_replies == LOG_REPLIES_FULL) {
        log_reply(cl, s->data, s->len);
        return;
    }
    client_label(label, cl->conn->id, '>');
    log_bytes(label, s->at_line, s->at_len, LOG_SHOW);
    n = snprintf(line, sizeof line, "places %s, %d result%s, %zu bytes",
                 j->status, j->n_results, j->n_results == 1 ? "" : "s",
                 s->len);
    if (n > 0)
        log_bytes(label, line, (size_t)n < sizeof line ? (size_t)n
                                                       : sizeof line - 1,
                  LOG_SHOW);
}

/* The reply is first in line: its parts go straight into the
 * connection's output buffer, no copy of the JSON in between.  Returns
 * -1 when the connection closed (then the client is gone). */
static int send_now(struct client *cl, struct reply_slot *s,
                    const struct places_json *j)
{
    int was_full = cl->pending >= CLIENT_MAX_PENDING;
    struct conn *c = cl->conn;
    int rc;

    dequeue(cl);                /* s, first in line */
    rc = conn_send(c, s->at_line, s->at_len);
    if (rc == 0)
        rc = conn_send(c, "\n", 1);
    if (rc == 0)
        rc = conn_send(c, j->part[0], j->len[0]);
    if (rc == 0 && j->len[1])
        rc = conn_send(c, j->part[1], j->len[1]);
    if (rc == 0)
        rc = conn_send(c, "\n\n", 2);
    free_slot(s);
    if (rc < 0)
        return -1;
    if (was_full && cl->pending < CLIENT_MAX_PENDING)
        conn_resume(c);
    return 0;
}

static void on_places(void *ctx, const struct places_json *j)
{
    struct reply_slot *s = ctx;
    struct client *cl = s->client;
    size_t json_len = j ? j->len[0] + j->len[1] : 0;
    char *o;

    s->req = NULL;
    if (!j) {
        conn_close(cl->conn, "out of memory");
        return;
    }
    s->len = s->at_len + 1 + json_len + 2;
    if (cl->head == s && cl->node->cfg.log_replies != LOG_REPLIES_FULL) {
        log_whatsat(cl, s, j);
        metrics_request(METRICS_WHATSAT, s->t0);
        if (send_now(cl, s, j) == 0)
            flush_ready(cl);
        return;
    }
    /* Behind another reply: a copy waits in the slot. */
    s->data = malloc(s->len);
    if (!s->data) {
        conn_close(cl->conn, "out of memory");
        return;
    }
    o = s->data;
    memcpy(o, s->at_line, s->at_len);
    o += s->at_len;
    *o++ = '\n';
    memcpy(o, j->part[0], j->len[0]);
    o += j->len[0];
    if (j->len[1]) {
        memcpy(o, j->part[1], j->len[1]);
        o += j->len[1];
    }
    memcpy(o, "\n\n", 2);
    s->ready = 1;
    log_whatsat(cl, s, j);
    metrics_request(METRICS_WHATSAT, s->t0);
    flush_ready(cl);
}

static void invalid(struct client *cl, const char *line, size_t len)
{
    /* On the stack when it fits: short of memory, a refusal must still
     * be possible (the IAMAT that could not be stored gets one). */
    char stack[4096 + 3], *out = stack;

    if (len + 3 > sizeof stack) {
        out = malloc(len + 3);
        if (!out) {
            conn_close(cl->conn, "out of memory");
            return;
        }
    }
    memcpy(out, "? ", 2);
    memcpy(out + 2, line, len);
    out[len + 2] = '\n';
    reply(cl, out, len + 3);
    if (out != stack)
        free(out);
}

/* Later than now by more than limit seconds? */
static int too_far_ahead(struct htime t, struct htime now, long limit)
{
    struct htime edge = {now.sec + limit, now.nsec};

    return htime_cmp(t, edge) > 0;
}

/* An IAMAT the node will not take gets "? " and the line, and the log
 * says why (the request and the reply are logged as always). */
static void refuse_iamat(struct client *cl, const char *line, size_t len,
                         const char *why)
{
    log_msg(LOG_WARN, "client %lu: IAMAT not stored: %s", cl->conn->id, why);
    invalid(cl, line, len);
}

static void do_iamat(struct client *cl, struct proto_iamat *req,
                     const char *req_line, size_t req_len)
{
    struct node *n = cl->node;
    char stack[1024], *line = stack;
    struct htime now = htime_now();
    size_t need;
    struct proto_at at;
    enum store_result res;

    /* A client time far in the future would win over every later real
     * update of that client, on every node, for ever. */
    if (n->cfg.max_clock_ahead_s > 0 &&
        too_far_ahead(req->client_time, now, n->cfg.max_clock_ahead_s)) {
        refuse_iamat(cl, req_line, req_len, "its time is more than "
                     "max_clock_ahead_s ahead of this node's clock");
        return;
    }
    /* At the cap, only client ids already held may update; records from
     * the neighbours are always applied (herd.c), so the herd converges. */
    if (n->cfg.max_records > 0 &&
        n->store.count >= (size_t)n->cfg.max_records &&
        !store_find(&n->store, req->id.p, req->id.len)) {
        refuse_iamat(cl, req_line, req_len, "a new client id, and "
                     "max_records are held");
        return;
    }
    need = proto_format_at(n->name, req, now, stack, sizeof stack);
    if (need + 2 > sizeof stack) {
        line = malloc(need + 2);
        if (!line) {
            refuse_iamat(cl, req_line, req_len, "out of memory");
            return;
        }
        proto_format_at(n->name, req, now, line, need + 2);
    }
    proto_at_of_iamat(line, need, strlen(n->name), req, &at);
    res = node_apply_update(n, line, need, &at, NULL);
    if (res == STORE_NOMEM || res == STORE_TOOLONG) {
        /* Never an AT for what was not stored (or, with fsync = always,
         * not journalled). */
        refuse_iamat(cl, req_line, req_len, res == STORE_NOMEM ?
                     "out of memory" : "longer than any record held");
    } else {
        line[need] = '\n';
        if (journal_unsynced(n->journal))
            reply_held(cl, line, need + 1);
        else
            reply(cl, line, need + 1);
    }
    if (line != stack)
        free(line);
}

static void do_whatsat(struct client *cl, struct proto_whatsat *req,
                       const char *line, size_t len, double t0)
{
    struct record *r = store_find(&cl->node->store, req->id.p, req->id.len);
    struct reply_slot *s;
    struct proto_at at;
    struct places_query q;
    const char *held = NULL;
    size_t held_len = 0;

    if (r)
        held = record_line(r, &held_len);
    if (!r || proto_parse_at(held, held_len, &at) < 0) {
        invalid(cl, line, len);
        metrics_request(METRICS_INVALID, t0);
        return;
    }
    s = enqueue(cl, NULL, 0);
    if (!s)
        return;
    s->t0 = t0;
    s->at_line = malloc(held_len);
    if (!s->at_line) {
        conn_close(cl->conn, "out of memory");
        return;
    }
    memcpy(s->at_line, held, held_len);
    s->at_len = held_len;

    q.lat = at.where.lat;
    q.lon = at.where.lon;
    q.radius_m = req->radius_m;
    q.max_results = req->max_results;
    /* On an immediate error the callback has already run, and may have
     * sent and freed s: touch s only when the request is under way. */
    struct places_req *pr = places_fetch(cl->node->places, &q, on_places, s);
    if (pr)
        s->req = pr;
}

/* A connection in a spare slot that is not a neighbour's link opening:
 * a regular slot if one has come free, else "? too many clients" and the
 * close.  0 when it was refused. */
static int admit(struct client *cl)
{
    struct node *n = cl->node;

    if (!cl->spare)
        return 1;
    if (n->n_clients - n->n_spare < (size_t)n->cfg.max_clients) {
        cl->spare = 0;
        n->n_spare--;
        return 1;
    }
    log_msg(LOG_WARN, "client %lu: the node is full; its spare slots are "
            "for neighbours' links; closing", cl->conn->id);
    log_reply(cl, "? too many clients\n", 19);
    if (conn_send(cl->conn, "? too many clients\n", 19) == 0)
        conn_close_after_flush(cl->conn);
    return 0;
}

static void on_line(struct conn *c, const char *line, size_t len)
{
    struct client *cl = c->owner;
    struct proto_request req;
    char label[48];
    double t0 = metrics_clock();

    cl->lines++;
    touch(cl);
    /* A "\r" before "\n" is part of the line ending, not of the echo. */
    if (len > 0 && line[len - 1] == '\r')
        len--;
    client_label(label, c->id, '<');
    log_bytes(label, line, len, LOG_SHOW);

    if (peer_is_peer_line(line, len)) {
        struct peer_msg m;
        /* Only a handshake may start here; a flood line from an
         * unauthenticated connection is just an invalid request. */
        if (cl->head == NULL && peer_parse(line, len, &m) == PEER_MSG_HELLO &&
            link_accept(cl->node, c, &m)) {
            forget(cl);
            free(cl);
            return;
        }
        if (!admit(cl))
            return;
        invalid(cl, line, len);
        metrics_request(METRICS_INVALID, t0);
        return;
    }
    if (!admit(cl))
        return;
    switch (proto_parse_request(line, len, &req)) {
    case PROTO_IAMAT:
        do_iamat(cl, &req.u.iamat, line, len);
        metrics_request(METRICS_IAMAT, t0);
        break;
    case PROTO_WHATSAT:
        do_whatsat(cl, &req.u.whatsat, line, len, t0);
        break;
    default:
        invalid(cl, line, len);
        metrics_request(METRICS_INVALID, t0);
        break;
    }
}

static void on_overlong(struct conn *c, const char *line)
{
    struct client *cl = c->owner;

    log_msg(LOG_WARN, "client %lu sent a line longer than %zu bytes; closing",
            c->id, c->max_line);
    invalid(cl, line, c->max_line);
    metrics_request(METRICS_INVALID, metrics_clock());
    if (c->closed)
        return;
    if (cl->head) {
        /* Replies still wait for places: close once they are out. */
        cl->eof = 1;
        conn_stop_reading(c);
        return;
    }
    conn_close_after_flush(c);
}

/* The client ended its stream (or half-closed it): every request it sent
 * has been read; close once the last reply, WHATSATs included, is out. */
static void on_eof(struct conn *c)
{
    struct client *cl = c->owner;

    log_msg(LOG_INFO, "client %lu ended its requests; closing once answered",
            c->id);
    cl->eof = 1;
    if (!cl->head)
        conn_close_after_flush(c);
}

static int ready(struct conn *c)
{
    struct client *cl = c->owner;
    return cl->pending < CLIENT_MAX_PENDING;
}

static const struct conn_ops client_ops = {
    .on_line = on_line,
    .on_overlong = on_overlong,
    .ready = ready,
    .on_drain = NULL,
    .on_eof = on_eof,
    .on_close = on_close,
};

void client_accept(struct node *n, int fd, const char *addr, int spare)
{
    struct client *cl = calloc(1, sizeof *cl);
    size_t max_out = (size_t)n->cfg.max_output_kb * 1024;

    if (!cl) {
        close(fd);
        return;
    }
    cl->node = n;
    cl->conn = conn_new(n->loop, fd, addr, &client_ops, cl,
                        (size_t)n->cfg.max_line, max_out, 0);
    if (!cl->conn) {
        free(cl);
        close(fd);
        return;
    }
    cl->conn->id = ++n->next_conn_id;
    n->n_clients++;
    cl->spare = spare;
    n->n_spare += spare;
    cl->opened = ev_now(n->loop);
    touch(cl);
    log_msg(LOG_INFO, "client %lu connected from %s%s", cl->conn->id, addr,
            spare ? " (node full: a spare slot, for a neighbour's link)" : "");
}

int client_evict_idle(struct node *n, ev_tstamp now)
{
    for (struct client *cl = lru_head; cl; cl = cl->lru_next) {
        if (cl->spare || !quiet(cl))
            continue;
        /* Least recently active first: the first quiet one is the one
         * idle the longest. */
        if (now - cl->last_active < EVICT_IDLE_S)
            return 0;
        log_msg(LOG_WARN, "client %lu: the node is full (max_clients %d); "
                "closing it, idle %.1f s, the longest, for a new connection",
                cl->conn->id, n->cfg.max_clients, now - cl->last_active);
        conn_close(cl->conn, "closed for a new connection (node full)");
        return 1;
    }
    return 0;
}

int client_evict_spare(struct node *n, ev_tstamp now)
{
    /* Every spare client is one whose first line has not come yet (a
     * link opening leaves the client list; anything else is refused), so
     * the least recently active is the oldest unproven one. */
    for (struct client *cl = lru_head; cl; cl = cl->lru_next) {
        if (!cl->spare || cl->conn->closed)
            continue;
        if (now - cl->opened < SPARE_GIVE_WAY_S)
            return 0;
        log_msg(LOG_WARN, "client %lu: every spare slot is held (%zu); "
                "closing the oldest, which has not opened a link, for a new "
                "connection", cl->conn->id, n->n_spare);
        conn_close(cl->conn, "closed for a new connection (spare slots full)");
        return 1;
    }
    return 0;
}

void client_sweep_idle(struct node *n, ev_tstamp now)
{
    double idle = n->cfg.idle_timeout_s;
    struct client *cl, *next;

    for (cl = lru_head; cl; cl = next) {
        double first = cl->spare && SPARE_FIRST_LINE_S < idle ?
                       SPARE_FIRST_LINE_S : idle;

        next = cl->lru_next;
        if (cl->conn->closed)
            continue;
        if (cl->lines == 0 && now - cl->opened > first) {
            conn_close(cl->conn, cl->spare ?
                       "no link opening within 5 s in a spare slot" :
                       "no request within idle_timeout_s of connecting");
        } else if (quiet(cl) && now - cl->last_active > idle) {
            conn_close(cl->conn, "silent for idle_timeout_s");
        }
    }
}

void client_refuse(int fd, const char *line)
{
    /* Best effort, non-blocking: the socket buffer takes one short line. */
    ssize_t rc = send(fd, line, strlen(line), MSG_NOSIGNAL | MSG_DONTWAIT);
    (void)rc;
    close(fd);
}
