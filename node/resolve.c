#include "resolve.h"

#include <ares.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/container.h"

/* One socket c-ares wants watched. */
struct watch {
    ev_io io;
    struct resolver *r;
    struct watch *next;
};

struct resolve_query {
    struct resolver *r;
    resolve_cb cb;
    void *arg;
    int done;                   /* answered; delivery is scheduled */
    int cancelled;              /* c-ares still holds it; free on answer */
    ev_timer deliver;           /* hands the answer over from the loop */
    struct resolve_result res;
    struct resolve_query *prev, *next;
};

struct resolver {
    struct ev_loop *loop;
    ares_channel channel;
    struct watch *watches;
    ev_timer timeout;
    struct resolve_query *queries;  /* every query not yet freed */
};

static void query_unlink_free(struct resolve_query *q)
{
    struct resolver *r = q->r;

    ev_timer_stop(r->loop, &q->deliver);
    if (q->prev)
        q->prev->next = q->next;
    else
        r->queries = q->next;
    if (q->next)
        q->next->prev = q->prev;
    free(q);
}

/* c-ares's next deadline (retransmit or give up) as the loop's timer. */
static void rearm(struct resolver *r)
{
    struct timeval tv, *tp;

    ev_timer_stop(r->loop, &r->timeout);
    tp = ares_timeout(r->channel, NULL, &tv);
    if (!tp)
        return;
    ev_timer_set(&r->timeout, tp->tv_sec + tp->tv_usec / 1e6, 0.);
    ev_timer_start(r->loop, &r->timeout);
}

static void on_io(struct ev_loop *loop, ev_io *w, int revents)
{
    struct watch *x = (struct watch *)w;
    struct resolver *r = x->r;
    ares_socket_t fd = w->fd;

    (void)loop;
    /* x may be freed inside: c-ares can close the socket while here. */
    ares_process_fd(r->channel, (revents & EV_READ) ? fd : ARES_SOCKET_BAD,
                    (revents & EV_WRITE) ? fd : ARES_SOCKET_BAD);
    rearm(r);
}

static void on_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct resolver *r = container_of(w, struct resolver, timeout);

    (void)loop;
    (void)revents;
    ares_process_fd(r->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    rearm(r);
}

/* c-ares opens, re-arms and closes its sockets through this. */
static void sock_state(void *data, ares_socket_t fd, int readable,
                       int writable)
{
    struct resolver *r = data;
    struct watch **pp = &r->watches, *x;

    while (*pp && (*pp)->io.fd != fd)
        pp = &(*pp)->next;
    x = *pp;
    if (!readable && !writable) {
        if (x) {
            ev_io_stop(r->loop, &x->io);
            *pp = x->next;
            free(x);
        }
        return;
    }
    if (!x) {
        x = calloc(1, sizeof *x);
        if (!x)
            return;             /* the query times out instead */
        x->r = r;
        x->next = r->watches;
        r->watches = x;
        ev_io_init(&x->io, on_io, fd, 0);
    }
    ev_io_stop(r->loop, &x->io);
    ev_io_set(&x->io, fd, (readable ? EV_READ : 0) | (writable ? EV_WRITE : 0));
    ev_io_start(r->loop, &x->io);
}

static void on_deliver(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct resolve_query *q = container_of(w, struct resolve_query, deliver);

    (void)loop;
    (void)revents;
    q->cb(q->arg, &q->res);
    query_unlink_free(q);
}

static void on_answer(void *arg, int status, int timeouts,
                      struct ares_addrinfo *ai)
{
    struct resolve_query *q = arg;

    (void)timeouts;
    if (status == ARES_EDESTRUCTION || q->cancelled) {
        if (ai)
            ares_freeaddrinfo(ai);
        query_unlink_free(q);
        return;
    }
    q->res.n = 0;
    if (status == ARES_SUCCESS && ai) {
        for (struct ares_addrinfo_node *p = ai->nodes;
             p && q->res.n < RESOLVE_MAX_ADDRS; p = p->ai_next) {
            if ((p->ai_family != AF_INET && p->ai_family != AF_INET6) ||
                p->ai_addrlen > sizeof q->res.addr[0].ss)
                continue;
            memcpy(&q->res.addr[q->res.n].ss, p->ai_addr, p->ai_addrlen);
            q->res.addr[q->res.n].len = p->ai_addrlen;
            q->res.n++;
        }
    }
    if (q->res.n == 0)
        snprintf(q->res.error, sizeof q->res.error, "%s",
                 status == ARES_SUCCESS ? "no IPv4 or IPv6 address"
                                        : ares_strerror(status));
    if (ai)
        ares_freeaddrinfo(ai);
    /* Never call back from inside resolve_start() (a numeric address or
     * /etc/hosts answers at once) or from inside c-ares: next turn. */
    q->done = 1;
    ev_timer_set(&q->deliver, 0., 0.);
    ev_timer_start(q->r->loop, &q->deliver);
}

struct resolver *resolver_new(struct ev_loop *loop, char *err, size_t errlen)
{
    struct resolver *r = calloc(1, sizeof *r);
    struct ares_options o;
    int rc;

    if (!r) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    r->loop = loop;
    ev_timer_init(&r->timeout, on_timeout, 0., 0.);
    rc = ares_library_init(ARES_LIB_INIT_ALL);
    if (rc != ARES_SUCCESS) {
        snprintf(err, errlen, "c-ares: %s", ares_strerror(rc));
        free(r);
        return NULL;
    }
    memset(&o, 0, sizeof o);
    o.sock_state_cb = sock_state;
    o.sock_state_cb_data = r;
    o.timeout = RESOLVE_TIMEOUT_MS;
    o.tries = RESOLVE_TRIES;
    rc = ares_init_options(&r->channel, &o, ARES_OPT_SOCK_STATE_CB |
                           ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES);
    if (rc != ARES_SUCCESS) {
        snprintf(err, errlen, "c-ares: %s", ares_strerror(rc));
        ares_library_cleanup();
        free(r);
        return NULL;
    }
    return r;
}

void resolver_free(struct resolver *r)
{
    if (!r)
        return;
    for (struct resolve_query *q = r->queries; q; q = q->next)
        q->cancelled = 1;
    /* Pending queries come back with ARES_EDESTRUCTION and are freed;
     * answered ones wait on their delivery timer: free those here. */
    ares_destroy(r->channel);
    while (r->queries)
        query_unlink_free(r->queries);
    while (r->watches) {
        struct watch *x = r->watches;
        r->watches = x->next;
        ev_io_stop(r->loop, &x->io);
        free(x);
    }
    ev_timer_stop(r->loop, &r->timeout);
    ares_library_cleanup();
    free(r);
}

struct resolve_query *resolve_start(struct resolver *r, const char *host,
                                    int port, resolve_cb cb, void *arg)
{
    struct resolve_query *q = calloc(1, sizeof *q);
    struct ares_addrinfo_hints hints;
    char service[16];

    if (!q)
        return NULL;
    q->r = r;
    q->cb = cb;
    q->arg = arg;
    ev_timer_init(&q->deliver, on_deliver, 0., 0.);
    q->next = r->queries;
    if (r->queries)
        r->queries->prev = q;
    r->queries = q;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = ARES_AI_NUMERICSERV;
    snprintf(service, sizeof service, "%d", port);
    ares_getaddrinfo(r->channel, host, service, &hints, on_answer, q);
    rearm(r);
    return q;
}

void resolve_cancel(struct resolve_query *q)
{
    if (!q)
        return;
    if (q->done)
        query_unlink_free(q);   /* answered, not yet delivered */
    else
        q->cancelled = 1;       /* c-ares frees it when it answers */
}
