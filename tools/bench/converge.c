#include "converge.h"

#include <errno.h>
#include <ev.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"

#define CONV_IN_MAX (4u << 20)
#define CONV_OUT_MAX 4096

struct conv_conn {
    ev_io io;                   /* first: the watcher leads to the conn */
    struct conv *cv;
    int idx;                    /* -1 for the origin, else the target */
    int fd;
    struct buf in, out;
    int outstanding;            /* requests whose reply is not complete */
    int in_body;                /* inside a WHATSAT reply's JSON */
    int want_probe;             /* probe as soon as the last reply ends */
    int done;                   /* applied the current sample's update */
    int have_neg;
    uint64_t t_sent, last_neg_sent, upper, lower;
};

struct conv {
    struct ev_loop *loop;
    const struct conv_opts *o;
    struct conv_result *r;
    struct conv_conn *origin;
    struct conv_conn *conns;    /* one per target */
    int sample;                 /* index of the current sample */
    int active;                 /* probing for the current sample */
    int waiting;                /* targets that have not applied yet */
    char id[128];
    char time_text[32];
    size_t time_len;
    uint64_t t_iamat, t_reply;
    ev_timer gap_timer, timeout_timer;
    int failed;
    char *err;
    size_t errlen;
};

static void conv_fail(struct conv *cv, const char *fmt, const char *a,
                      const char *b)
{
    if (!cv->failed)
        snprintf(cv->err, cv->errlen, fmt, a, b);
    cv->failed = 1;
    ev_break(cv->loop, EVBREAK_ALL);
}

static const char *conv_name(struct conv *cv, struct conv_conn *c)
{
    return c->idx < 0 ? cv->o->origin->text : cv->o->targets[c->idx].text;
}

static void conv_flush(struct conv *cv, struct conv_conn *c)
{
    if (net_flush(c->fd, &c->out) < 0) {
        conv_fail(cv, "write to %s: %s", conv_name(cv, c), strerror(errno));
        return;
    }
    ev_io_stop(cv->loop, &c->io);
    ev_io_set(&c->io, c->fd, EV_READ | (buf_len(&c->out) ? EV_WRITE : 0));
    ev_io_start(cv->loop, &c->io);
}

static void conv_send(struct conv *cv, struct conv_conn *c, const char *line)
{
    if (buf_append(&c->out, line, strlen(line)) < 0) {
        conv_fail(cv, "%s: %s", conv_name(cv, c), "output buffer full");
        return;
    }
    c->outstanding++;
    c->t_sent = net_now_ns();
    conv_flush(cv, c);
}

static void conv_probe(struct conv *cv, struct conv_conn *c)
{
    char line[200];

    if (c->outstanding > 0) {
        c->want_probe = 1;
        return;
    }
    c->want_probe = 0;
    snprintf(line, sizeof line, "WHATSAT %s 1 1\n", cv->id);
    cv->r->probes++;
    conv_send(cv, c, line);
}

static void conv_start_sample(struct conv *cv)
{
    char line[256];
    struct timespec now;

    clock_gettime(CLOCK_REALTIME, &now);
    snprintf(cv->id, sizeof cv->id, "%s%d", cv->o->prefix, cv->sample);
    cv->time_len = (size_t)snprintf(cv->time_text, sizeof cv->time_text,
                                    "%lld.%09ld", (long long)now.tv_sec,
                                    (long)now.tv_nsec);
    snprintf(line, sizeof line, "IAMAT %s +34.068930-118.445127 %s\n",
             cv->id, cv->time_text);
    ev_timer_stop(cv->loop, &cv->timeout_timer);
    ev_timer_set(&cv->timeout_timer, cv->o->timeout_s, 0.);
    ev_timer_start(cv->loop, &cv->timeout_timer);
    conv_send(cv, cv->origin, line);
    cv->t_iamat = cv->origin->t_sent;
}

static void conv_sample_done(struct conv *cv)
{
    uint64_t up = 0, low = 0;

    ev_timer_stop(cv->loop, &cv->timeout_timer);
    cv->active = 0;
    if (cv->o->probe) {
        for (int i = 0; i < cv->o->n_targets; i++) {
            struct conv_conn *c = &cv->conns[i];
            if (c->upper > up)
                up = c->upper;
            if (c->lower > low)
                low = c->lower;
            hist_add(&cv->r->per_target_upper[i], c->upper);
        }
        hist_add(&cv->r->upper, up);
        hist_add(&cv->r->lower, low);
    }
    cv->r->samples++;
    if (++cv->sample >= cv->o->samples) {
        ev_break(cv->loop, EVBREAK_ALL);
        return;
    }
    ev_timer_set(&cv->gap_timer, cv->o->gap_s, 0.);
    ev_timer_start(cv->loop, &cv->gap_timer);
}

/* The origin's reply to the sample's IAMAT: start watching the others. */
static void conv_origin_line(struct conv *cv, const char *line, size_t len,
                             uint64_t t_recv)
{
    struct conv_conn *o = cv->origin;

    if (o->outstanding == 0) {
        conv_fail(cv, "%s sent a line nobody asked for%s",
                  cv->o->origin->text, "");
        return;
    }
    o->outstanding--;
    if (len < 3 || memcmp(line, "AT ", 3) != 0) {
        conv_fail(cv, "%s refused the IAMAT for %s", cv->o->origin->text,
                  cv->id);
        return;
    }
    cv->t_reply = t_recv;
    hist_add(&cv->r->origin_rtt, t_recv - cv->t_iamat);
    if (!cv->o->probe) {
        conv_sample_done(cv);
        return;
    }
    cv->active = 1;
    cv->waiting = cv->o->n_targets;
    for (int i = 0; i < cv->o->n_targets; i++) {
        struct conv_conn *c = &cv->conns[i];
        c->done = 0;
        c->have_neg = 0;
        c->upper = c->lower = 0;
        conv_probe(cv, c);
    }
    if (cv->waiting == 0)
        conv_sample_done(cv);
}

/* Does this AT line carry the current sample's id and client time? */
static int conv_is_ours(struct conv *cv, const char *line, size_t len)
{
    size_t idlen = strlen(cv->id);
    const char *end = line + len;

    while (end > line && (end[-1] == '\r' || end[-1] == ' '))
        end--;
    if ((size_t)(end - line) < cv->time_len + 1 ||
        memcmp(end - cv->time_len, cv->time_text, cv->time_len) != 0)
        return 0;
    /* "AT SERVER DIFF ID ..." : the id is the fourth field. */
    for (int field = 0; field < 3; field++) {
        const char *sp = memchr(line, ' ', (size_t)(end - line));
        if (sp == NULL)
            return 0;
        line = sp + 1;
        while (line < end && *line == ' ')
            line++;
    }
    return (size_t)(end - line) > idlen && memcmp(line, cv->id, idlen) == 0 &&
           line[idlen] == ' ';
}

static void conv_target_line(struct conv *cv, struct conv_conn *c,
                             const char *line, size_t len, uint64_t t_recv)
{
    if (c->in_body) {
        if (len == 0 || (len == 1 && line[0] == '\r')) {
            c->in_body = 0;
            c->outstanding--;
            if (c->want_probe)
                conv_probe(cv, c);
        }
        return;
    }
    if (c->outstanding == 0) {
        conv_fail(cv, "%s sent a line nobody asked for%s", conv_name(cv, c),
                  "");
        return;
    }
    if (len >= 2 && memcmp(line, "? ", 2) == 0) {
        c->outstanding--;
        if (cv->active && !c->done) {
            c->have_neg = 1;
            c->last_neg_sent = c->t_sent;
            conv_probe(cv, c);
        } else if (c->want_probe) {
            conv_probe(cv, c);
        }
        return;
    }
    if (len >= 3 && memcmp(line, "AT ", 3) == 0) {
        c->in_body = 1;
        if (!cv->active || c->done)
            return;
        if (!conv_is_ours(cv, line, len)) {
            conv_fail(cv, "%s answered with another record for %s",
                      conv_name(cv, c), cv->id);
            return;
        }
        c->done = 1;
        c->upper = t_recv - cv->t_reply;
        c->lower = c->have_neg && c->last_neg_sent > cv->t_reply ?
                   c->last_neg_sent - cv->t_reply : 0;
        if (--cv->waiting == 0)
            conv_sample_done(cv);
        return;
    }
    conv_fail(cv, "%s: unexpected reply to a probe for %s",
              conv_name(cv, c), cv->id);
}

static void conv_on_io(struct ev_loop *loop, ev_io *w, int revents)
{
    struct conv_conn *c = (struct conv_conn *)((char *)w -
                                               offsetof(struct conv_conn, io));
    struct conv *cv = c->cv;
    const char *line;
    size_t len;
    uint64_t t_recv;
    (void)loop;

    if (revents & EV_WRITE)
        conv_flush(cv, c);
    if (!(revents & EV_READ) || cv->failed)
        return;
    switch (net_fill(c->fd, &c->in, 16384)) {
    case NET_READ_FULL:
        conv_fail(cv, "%s: %s", conv_name(cv, c), "reply too long");
        return;
    case NET_READ_ERROR:
        conv_fail(cv, "read from %s: %s", conv_name(cv, c), strerror(errno));
        return;
    case NET_READ_EOF:
        conv_fail(cv, "%s: %s", conv_name(cv, c), "closed the connection");
        return;
    default:
        break;
    }
    t_recv = net_now_ns();
    while (!cv->failed && buf_take_line(&c->in, &line, &len)) {
        if (c->idx < 0)
            conv_origin_line(cv, line, len, t_recv);
        else
            conv_target_line(cv, c, line, len, t_recv);
    }
    buf_compact(&c->in);
}

static void conv_on_gap(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct conv *cv = (struct conv *)((char *)w -
                                      offsetof(struct conv, gap_timer));
    (void)loop;
    (void)revents;
    conv_start_sample(cv);
}

static void conv_on_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct conv *cv = (struct conv *)((char *)w -
                                      offsetof(struct conv, timeout_timer));
    char names[1024] = "";
    size_t used = 0;
    (void)loop;
    (void)revents;

    if (!cv->active) {
        conv_fail(cv, "%s did not answer the IAMAT for %s",
                  cv->o->origin->text, cv->id);
        return;
    }
    for (int i = 0; i < cv->o->n_targets && used < sizeof names - 1; i++) {
        if (!cv->conns[i].done)
            used += (size_t)snprintf(names + used, sizeof names - used, " %s",
                                     cv->o->targets[i].text);
    }
    conv_fail(cv, "update %s not applied in time by:%s", cv->id, names);
}

static int conv_open(struct conv *cv, struct conv_conn *c, int idx,
                     const struct bench_target *t)
{
    c->cv = cv;
    c->idx = idx;
    buf_init(&c->in, CONV_IN_MAX);
    buf_init(&c->out, CONV_OUT_MAX);
    c->fd = net_connect(t);
    if (c->fd < 0) {
        snprintf(cv->err, cv->errlen, "cannot connect to %s: %s", t->text,
                 strerror(errno));
        return -1;
    }
    ev_io_init(&c->io, conv_on_io, c->fd, EV_READ);
    ev_io_start(cv->loop, &c->io);
    return 0;
}

static void conv_close(struct conv *cv, struct conv_conn *c)
{
    if (c->fd >= 0) {
        ev_io_stop(cv->loop, &c->io);
        close(c->fd);
        c->fd = -1;
    }
    buf_free(&c->in);
    buf_free(&c->out);
}

int conv_run(const struct conv_opts *o, struct conv_result *r,
             char *err, size_t errlen)
{
    struct conv cv;
    struct conv_conn origin;
    int rc = -1, opened = 0;

    memset(&cv, 0, sizeof cv);
    memset(&origin, 0, sizeof origin);
    memset(r, 0, sizeof *r);
    origin.fd = -1;
    cv.o = o;
    cv.r = r;
    cv.err = err;
    cv.errlen = errlen;
    cv.origin = &origin;
    /* At least one of each, so that no targets is not "out of memory". */
    r->per_target_upper = calloc((size_t)o->n_targets + 1,
                                 sizeof *r->per_target_upper);
    cv.conns = calloc((size_t)o->n_targets + 1, sizeof *cv.conns);
    cv.loop = ev_loop_new(EVFLAG_AUTO);
    if (r->per_target_upper == NULL || cv.conns == NULL || cv.loop == NULL) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    for (int i = 0; i < o->n_targets; i++)
        cv.conns[i].fd = -1;
    if (conv_open(&cv, &origin, -1, o->origin) < 0)
        goto out;
    for (opened = 0; opened < o->n_targets; opened++) {
        if (conv_open(&cv, &cv.conns[opened], opened,
                      &o->targets[opened]) < 0) {
            opened++;
            goto out;
        }
    }
    ev_timer_init(&cv.gap_timer, conv_on_gap, 0., 0.);
    ev_timer_init(&cv.timeout_timer, conv_on_timeout, o->timeout_s, 0.);
    conv_start_sample(&cv);
    ev_run(cv.loop, 0);
    rc = cv.failed ? -1 : 0;
out:
    if (cv.loop) {
        ev_timer_stop(cv.loop, &cv.gap_timer);
        ev_timer_stop(cv.loop, &cv.timeout_timer);
        conv_close(&cv, &origin);
        for (int i = 0; i < opened; i++)
            conv_close(&cv, &cv.conns[i]);
        ev_loop_destroy(cv.loop);
    }
    free(cv.conns);
    return rc;
}

void conv_result_free(struct conv_result *r)
{
    free(r->per_target_upper);
    r->per_target_upper = NULL;
}
