#include "load.h"

#include <errno.h>
#include <ev.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"

/* What each request in flight was, so its reply can be read right. */
enum load_kind { LOAD_IAMAT, LOAD_WHATSAT, LOAD_SET };

/* Longest request we write; keeps the output buffer bounded by D. */
#define LOAD_REQ_MAX 512
/* A WHATSAT reply with 20 places is a few kilobytes; D of them fit. */
#define LOAD_IN_MAX (64u << 20)

struct load_conn {
    ev_io io;                   /* first: the watcher leads to the conn */
    struct load *ld;
    int fd;
    int dead;
    struct buf in, out;
    uint64_t *sent;             /* ring of D send times */
    unsigned char *kind;        /* ring of D request kinds */
    unsigned head, inflight;
    int in_body;                /* inside a WHATSAT reply's JSON */
    int body_bad;               /* its "status" was not OK/ZERO_RESULTS */
    int want_write;
};

struct load {
    struct ev_loop *loop;
    const struct load_opts *o;
    struct load_result *r;
    struct load_conn *conns;
    int live;
    int measuring;
    int stopping;
    uint64_t t_start;
    uint64_t sent_total, done_total;
    uint64_t rng;
    uint32_t next_key;          /* --seq */
    /* Pacing (rate > 0): requests due since pace_t0, how many of them
     * were released (sent or skipped), and those due but not yet sent. */
    uint64_t pace_t0, released, debt;
    int pace_rr;                /* connection the next tick starts at */
    ev_timer pace_timer;
    struct timespec last_time;  /* client time of the latest IAMAT */
    ev_timer warm_timer, stop_timer;
    ev_signal sigterm, sigint;  /* end the window early, with results */
};

static uint64_t load_rand(struct load *ld)
{
    /* xorshift64*: plenty for picking keys. */
    ld->rng ^= ld->rng >> 12;
    ld->rng ^= ld->rng << 25;
    ld->rng ^= ld->rng >> 27;
    return ld->rng * 2685821657736338717ull;
}

/* A client time strictly after the previous one, so every IAMAT is newer
 * than what the herd holds and is flooded. */
static struct timespec load_client_time(struct load *ld)
{
    struct timespec now;

    clock_gettime(CLOCK_REALTIME, &now);
    if (now.tv_sec < ld->last_time.tv_sec ||
        (now.tv_sec == ld->last_time.tv_sec &&
         now.tv_nsec <= ld->last_time.tv_nsec)) {
        now = ld->last_time;
        if (++now.tv_nsec == 1000000000) {
            now.tv_nsec = 0;
            now.tv_sec++;
        }
    }
    ld->last_time = now;
    return now;
}

static char *put(char *p, const char *s)
{
    size_t n = strlen(s);
    memcpy(p, s, n);
    return p + n;
}

static char *put_time(char *p, struct timespec t)
{
    uint64_t ns = (uint64_t)t.tv_nsec;

    p += net_utoa((uint64_t)t.tv_sec, p);
    *p++ = '.';
    for (int i = 8; i >= 0; i--) {
        p[i] = (char)('0' + ns % 10);
        ns /= 10;
    }
    return p + 9;
}

/* Append one request to the connection's output; returns its kind. */
static int load_gen(struct load *ld, struct load_conn *c)
{
    const struct load_opts *o = ld->o;
    char line[LOAD_REQ_MAX], *p = line;
    uint64_t r = load_rand(ld);
    uint32_t key;
    int kind;

    if (o->seq) {
        key = ld->next_key;
        ld->next_key = key + 1 >= o->keys ? 0 : key + 1;
    } else {
        key = (uint32_t)(r % o->keys);
    }

    if (o->redis) {
        kind = LOAD_SET;
        p = put(p, "SET ");
    } else if (o->whatsat_pct > 0 &&
               (int)((r >> 32) % 100) < o->whatsat_pct) {
        kind = LOAD_WHATSAT;
        p = put(p, "WHATSAT ");
    } else {
        kind = LOAD_IAMAT;
        p = put(p, "IAMAT ");
    }
    p = put(p, o->prefix);
    p += net_utoa(key, p);
    if (kind == LOAD_WHATSAT) {
        *p++ = ' ';
        p = put(p, o->radius);
        *p++ = ' ';
        p = put(p, o->bound);
        *p++ = '\n';
    } else if (kind == LOAD_IAMAT) {
        p = put(p, " +34.068930-118.445127 ");
        p = put_time(p, load_client_time(ld));
        *p++ = '\n';
    } else {
        /* The same payload an IAMAT carries, as one Redis value. */
        p = put(p, " +34.068930-118.445127@");
        p = put_time(p, load_client_time(ld));
        *p++ = '\r';
        *p++ = '\n';
    }
    if (buf_append(&c->out, line, (size_t)(p - line)) < 0)
        return -1;
    return kind;
}

static void load_set_events(struct load *ld, struct load_conn *c, int write)
{
    if (write == c->want_write)
        return;
    c->want_write = write;
    ev_io_stop(ld->loop, &c->io);
    ev_io_set(&c->io, c->fd, EV_READ | (write ? EV_WRITE : 0));
    ev_io_start(ld->loop, &c->io);
}

static void load_kill(struct load *ld, struct load_conn *c, const char *why)
{
    if (c->dead)
        return;
    fprintf(stderr, "herd-bench: warning: connection to %s lost: %s\n",
            ld->o->targets[(c - ld->conns) % ld->o->n_targets].text, why);
    ev_io_stop(ld->loop, &c->io);
    close(c->fd);
    c->fd = -1;
    c->dead = 1;
    ld->r->conns_lost++;
    if (--ld->live == 0)
        ev_break(ld->loop, EVBREAK_ALL);
}

static void load_flush(struct load *ld, struct load_conn *c)
{
    ssize_t n = net_flush(c->fd, &c->out);

    if (n < 0) {
        load_kill(ld, c, strerror(errno));
        return;
    }
    if (ld->measuring)
        ld->r->bytes_out += (uint64_t)n;
    load_set_events(ld, c, buf_len(&c->out) > 0);
}

/* Send up to max more requests without passing D in flight, stamped with
 * one send time, then write.  Returns how many were sent. */
static unsigned load_refill(struct load *ld, struct load_conn *c,
                            uint64_t max)
{
    const struct load_opts *o = ld->o;
    unsigned first = c->inflight;
    uint64_t t;

    if (c->dead)
        return 0;
    while (!ld->stopping && c->inflight < (unsigned)o->depth &&
           c->inflight - first < max &&
           (o->total == 0 || ld->sent_total < o->total)) {
        unsigned slot = (c->head + c->inflight) % (unsigned)o->depth;
        int kind = load_gen(ld, c);
        if (kind < 0) {
            load_kill(ld, c, "output buffer full");
            return 0;
        }
        c->kind[slot] = (unsigned char)kind;
        c->inflight++;
        ld->sent_total++;
    }
    if (c->inflight == first)
        return 0;
    t = net_now_ns();
    for (unsigned i = first; i < c->inflight; i++)
        c->sent[(c->head + i) % (unsigned)o->depth] = t;
    load_flush(ld, c);
    return c->inflight - first;
}

/* Most requests that may wait for a free slot: 10 ms worth of the rate
 * (at least one per connection).  Past that, due requests are dropped
 * and counted, so a server that cannot keep up meets a load generator
 * whose memory and backlog stay bounded. */
static uint64_t load_debt_cap(const struct load *ld)
{
    uint64_t cap = (uint64_t)(ld->o->rate * 0.010);
    return cap > (uint64_t)ld->o->conns ? cap : (uint64_t)ld->o->conns;
}

/* Hand the debt out over the connections, round-robin from pace_rr, in
 * even shares, each connection written once. */
static void load_pay_debt(struct load *ld)
{
    int n = ld->o->conns;

    while (ld->debt > 0 && !ld->stopping && ld->live > 0) {
        uint64_t share = (ld->debt + (uint64_t)ld->live - 1) /
                         (uint64_t)ld->live;
        uint64_t paid = 0;

        for (int k = 0; k < n && ld->debt > 0; k++) {
            struct load_conn *c = &ld->conns[(ld->pace_rr + k) % n];
            unsigned got = load_refill(ld, c, share < ld->debt ? share
                                                               : ld->debt);
            ld->debt -= got;
            paid += got;
        }
        ld->pace_rr = (ld->pace_rr + 1) % n;
        if (paid == 0)
            break;          /* every connection has D in flight */
    }
}

static void load_on_pace(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct load *ld = (struct load *)((char *)w -
                                      offsetof(struct load, pace_timer));
    uint64_t due, cap;
    (void)loop;
    (void)revents;

    due = (uint64_t)((double)(net_now_ns() - ld->pace_t0) * ld->o->rate /
                     1e9);
    if (due > ld->released) {
        ld->debt += due - ld->released;
        ld->released = due;
    }
    cap = load_debt_cap(ld);
    if (ld->debt > cap) {
        if (ld->measuring)
            ld->r->skipped += ld->debt - cap;
        ld->debt = cap;
    }
    load_pay_debt(ld);
}

static void load_complete(struct load *ld, struct load_conn *c, int ok,
                          uint64_t t_recv)
{
    struct load_result *r = ld->r;
    int kind = c->kind[c->head];

    if (ld->measuring) {
        uint64_t sent = c->sent[c->head];
        hist_add(&r->lat, t_recv > sent ? t_recv - sent : 0);
        r->replies++;
        if (ok)
            r->ok++;
        else
            r->bad++;
        if (kind == LOAD_IAMAT)
            r->iamat++;
        else if (kind == LOAD_WHATSAT)
            r->whatsat++;
    }
    c->head = (c->head + 1) % (unsigned)ld->o->depth;
    c->inflight--;
    c->in_body = 0;
    ld->done_total++;
}

/* Take every complete reply out of the input buffer. */
static void load_parse(struct load *ld, struct load_conn *c, uint64_t t_recv)
{
    const char *line;
    size_t len;

    while (buf_take_line(&c->in, &line, &len)) {
        int kind;

        if (c->inflight == 0) {
            /* Bytes nobody asked for: count them as a bad reply. */
            if (ld->measuring)
                ld->r->bad++;
            continue;
        }
        kind = c->kind[c->head];
        if (c->in_body) {
            /* A WHATSAT reply ends with an empty line.  Places that could
             * not be had still give the promised shape, with Google's
             * status (or UNKNOWN_ERROR): count those replies as bad. */
            const char *st;
            if (len == 0 || (len == 1 && line[0] == '\r')) {
                load_complete(ld, c, !c->body_bad, t_recv);
            } else if ((st = memmem(line, len, "\"status\":", 9)) != NULL) {
                size_t rest = len - (size_t)(st - line);
                if (memmem(st, rest, "\"OK\"", 4) == NULL &&
                    memmem(st, rest, "\"ZERO_RESULTS\"", 14) == NULL)
                    c->body_bad = 1;
            }
            continue;
        }
        if (kind == LOAD_SET) {
            load_complete(ld, c, len > 0 && line[0] == '+', t_recv);
        } else if (len >= 3 && memcmp(line, "AT ", 3) == 0) {
            if (kind == LOAD_WHATSAT) {
                c->in_body = 1;
                c->body_bad = 0;
            }
            else
                load_complete(ld, c, 1, t_recv);
        } else {
            load_complete(ld, c, 0, t_recv);
        }
    }
    buf_compact(&c->in);
}

static void load_on_io(struct ev_loop *loop, ev_io *w, int revents)
{
    struct load_conn *c = (struct load_conn *)((char *)w -
                                               offsetof(struct load_conn, io));
    struct load *ld = c->ld;
    (void)loop;

    if (revents & EV_READ) {
        ssize_t n = net_fill(c->fd, &c->in, 65536);
        int got = n > 0;

        if (n == NET_READ_FULL) {
            load_kill(ld, c, "reply too long");
            return;
        }
        if (n == NET_READ_ERROR) {
            load_kill(ld, c, strerror(errno));
            return;
        }
        if (n == NET_READ_EOF) {
            load_kill(ld, c, "closed by the server");
            return;
        }
        if (ld->measuring && n > 0)
            ld->r->bytes_in += (uint64_t)n;
        if (got) {
            load_parse(ld, c, net_now_ns());
            if (ld->o->total > 0 && ld->done_total >= ld->o->total) {
                ev_break(ld->loop, EVBREAK_ALL);
                return;
            }
            if (ld->o->rate > 0) {
                /* A freed slot takes what is overdue at once. */
                if (ld->debt > 0)
                    ld->debt -= load_refill(ld, c, ld->debt);
            } else {
                load_refill(ld, c, UINT64_MAX);
            }
            if (c->dead)
                return;
        }
    }
    if (revents & EV_WRITE)
        load_flush(ld, c);
}

static void load_on_warm(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct load *ld = (struct load *)((char *)w -
                                      offsetof(struct load, warm_timer));
    (void)loop;
    (void)revents;
    ld->measuring = 1;
    ld->t_start = net_now_ns();
}

static void load_stop(struct load *ld)
{
    if (ld->stopping)
        return;
    ld->stopping = 1;
    if (ld->measuring)
        ld->r->elapsed_s = (double)(net_now_ns() - ld->t_start) / 1e9;
    ld->measuring = 0;
    ev_break(ld->loop, EVBREAK_ALL);
}

static void load_on_stop(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    load_stop((struct load *)((char *)w - offsetof(struct load, stop_timer)));
}

/* SIGTERM or SIGINT ends the measured window now, and the results are
 * printed as usual: a script can run a load for exactly as long as some
 * other measurement takes. */
static void load_on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
    struct load *ld = (struct load *)((char *)w -
                      (w->signum == SIGTERM ? offsetof(struct load, sigterm)
                                            : offsetof(struct load, sigint)));
    (void)loop;
    (void)revents;
    load_stop(ld);
}

int load_run(const struct load_opts *o, struct load_result *r,
             char *err, size_t errlen)
{
    struct load ld;
    int rc = -1;

    memset(&ld, 0, sizeof ld);
    memset(r, 0, sizeof *r);
    ld.o = o;
    ld.r = r;
    ld.rng = o->seed ? o->seed : 0x9e3779b97f4a7c15ull;
    ld.loop = ev_loop_new(EVFLAG_AUTO);
    if (ld.loop == NULL) {
        snprintf(err, errlen, "cannot create the event loop");
        return -1;
    }
    ld.conns = calloc((size_t)o->conns, sizeof *ld.conns);
    if (ld.conns == NULL) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    for (int i = 0; i < o->conns; i++) {
        struct load_conn *c = &ld.conns[i];
        const struct bench_target *t = &o->targets[i % o->n_targets];

        c->ld = &ld;
        c->fd = -1;
        c->dead = 1;
        buf_init(&c->in, LOAD_IN_MAX);
        buf_init(&c->out, (size_t)o->depth * LOAD_REQ_MAX + LOAD_REQ_MAX);
        c->sent = calloc((size_t)o->depth, sizeof *c->sent);
        c->kind = calloc((size_t)o->depth, 1);
        if (c->sent == NULL || c->kind == NULL) {
            snprintf(err, errlen, "out of memory");
            goto out;
        }
        c->fd = net_connect(t);
        if (c->fd < 0) {
            snprintf(err, errlen, "cannot connect to %s: %s", t->text,
                     strerror(errno));
            goto out;
        }
        c->dead = 0;
        ld.live++;
        ev_io_init(&c->io, load_on_io, c->fd, EV_READ);
        ev_io_start(ld.loop, &c->io);
    }

    if (o->total > 0 || o->warmup_s <= 0) {
        ld.measuring = 1;
        ld.t_start = net_now_ns();
    } else {
        ev_timer_init(&ld.warm_timer, load_on_warm, o->warmup_s, 0.);
        ev_timer_start(ld.loop, &ld.warm_timer);
    }
    if (o->total == 0) {
        ev_timer_init(&ld.stop_timer, load_on_stop,
                      (o->warmup_s > 0 ? o->warmup_s : 0) + o->duration_s, 0.);
        ev_timer_start(ld.loop, &ld.stop_timer);
    }
    ev_signal_init(&ld.sigterm, load_on_signal, SIGTERM);
    ev_signal_start(ld.loop, &ld.sigterm);
    ev_signal_init(&ld.sigint, load_on_signal, SIGINT);
    ev_signal_start(ld.loop, &ld.sigint);
    ev_now_update(ld.loop);
    if (o->rate > 0) {
        ld.pace_t0 = net_now_ns();
        ev_timer_init(&ld.pace_timer, load_on_pace, 0.001, 0.001);
        ev_timer_start(ld.loop, &ld.pace_timer);
    } else {
        for (int i = 0; i < o->conns; i++)
            load_refill(&ld, &ld.conns[i], UINT64_MAX);
    }
    if (ld.live > 0)
        ev_run(ld.loop, 0);
    if (ld.measuring)
        r->elapsed_s = (double)(net_now_ns() - ld.t_start) / 1e9;
    ev_signal_stop(ld.loop, &ld.sigterm);
    ev_signal_stop(ld.loop, &ld.sigint);
    rc = 0;
out:
    if (ld.conns) {
        for (int i = 0; i < o->conns; i++) {
            struct load_conn *c = &ld.conns[i];
            if (c->fd >= 0) {
                ev_io_stop(ld.loop, &c->io);
                close(c->fd);
            }
            buf_free(&c->in);
            buf_free(&c->out);
            free(c->sent);
            free(c->kind);
        }
        free(ld.conns);
    }
    ev_loop_destroy(ld.loop);
    return rc;
}
