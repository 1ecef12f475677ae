#include "places.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/log.h"
#include "metrics.h"

struct places {
    struct ev_loop *loop;
    CURLM *multi;
    ev_timer timer;
    enum places_provider provider;
    char *base;
    char *key;                  /* from the environment; never logged */
    long timeout_ms;
    int in_flight;
    struct places_req *requests;    /* in flight, so exit can free them */
};

struct places_req {
    struct places *owner;
    struct places_req *prev, *next;
    CURL *easy;
    struct buf body;
    struct curl_slist *headers;
    char *url;
    char *post;
    int max_results;
    places_done_fn done;
    void *ctx;
    char errbuf[CURL_ERROR_SIZE];
};

/* One per socket curl asks us to watch. */
struct places_sock {
    ev_io io;
    struct places *owner;
};

static void deliver(places_done_fn done, void *ctx, char *json)
{
    if (done)
        done(ctx, json);
    free(json);
}

/* A curl message might quote a URL; never let the key through. */
static void scrub_key(struct places *p, char *text)
{
    char *at;
    size_t n;

    if (!p->key || !*p->key)
        return;
    n = strlen(p->key);
    while ((at = strstr(text, p->key)) != NULL)
        memset(at, '*', n);
}

/* Take a request out of the multi handle and free it. */
static void release(struct places_req *r)
{
    struct places *p = r->owner;

    if (r->prev)
        r->prev->next = r->next;
    else
        p->requests = r->next;
    if (r->next)
        r->next->prev = r->prev;
    curl_multi_remove_handle(p->multi, r->easy);
    curl_easy_cleanup(r->easy);
    curl_slist_free_all(r->headers);
    buf_free(&r->body);
    free(r->url);
    free(r->post);
    p->in_flight--;
    free(r);
}

static void finish(struct places_req *r, CURLcode result)
{
    struct places *p = r->owner;
    long http = 0;
    double took = 0;
    char *json;

    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &http);
    curl_easy_getinfo(r->easy, CURLINFO_TOTAL_TIME, &took);
    metrics_places(result, http, took);
    if (result != CURLE_OK) {
        char msg[CURL_ERROR_SIZE + 64];
        snprintf(msg, sizeof msg, "places request failed: %s",
                 result == CURLE_WRITE_ERROR ? "response too large"
                 : r->errbuf[0] ? r->errbuf : curl_easy_strerror(result));
        scrub_key(p, msg);
        json = places_reply_fault("UNKNOWN_ERROR", msg);
        if (r->done)
            log_msg(LOG_WARN, "%s", msg);
    } else if (p->provider == PLACES_GOOGLE) {
        json = places_reply_new(http, buf_head(&r->body), buf_len(&r->body),
                                r->max_results);
    } else {
        json = places_reply_legacy(http, buf_head(&r->body), buf_len(&r->body),
                                   r->max_results);
    }
    places_done_fn done = r->done;
    void *ctx = r->ctx;

    release(r);
    deliver(done, ctx, json);
}

static void check_done(struct places *p)
{
    CURLMsg *msg;
    int left;

    while ((msg = curl_multi_info_read(p->multi, &left)) != NULL) {
        if (msg->msg == CURLMSG_DONE) {
            struct places_req *r = NULL;
            CURLcode result = msg->data.result;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&r);
            if (r)
                finish(r, result);
        }
    }
}

static void on_socket_event(struct ev_loop *loop, ev_io *w, int revents)
{
    struct places_sock *s = (struct places_sock *)w;
    /* curl may free s (CURL_POLL_REMOVE) inside socket_action. */
    struct places *p = s->owner;
    int action = (revents & EV_READ ? CURL_CSELECT_IN : 0) |
                 (revents & EV_WRITE ? CURL_CSELECT_OUT : 0);
    int running;

    (void)loop;
    curl_multi_socket_action(p->multi, w->fd, action, &running);
    check_done(p);
}

static void on_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct places *p = (struct places *)((char *)w - offsetof(struct places, timer));
    int running;

    (void)loop;
    (void)revents;
    curl_multi_socket_action(p->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(p);
}

static int socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp,
                     void *socketp)
{
    struct places *p = userp;
    struct places_sock *s = socketp;

    (void)easy;
    if (what == CURL_POLL_REMOVE) {
        if (s) {
            ev_io_stop(p->loop, &s->io);
            free(s);
            curl_multi_assign(p->multi, fd, NULL);
        }
        return 0;
    }
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s)
            return -1;
        s->owner = p;
        curl_multi_assign(p->multi, fd, s);
    } else {
        ev_io_stop(p->loop, &s->io);
    }
    ev_io_init(&s->io, on_socket_event, fd,
               (what & CURL_POLL_IN ? EV_READ : 0) |
                   (what & CURL_POLL_OUT ? EV_WRITE : 0));
    ev_io_start(p->loop, &s->io);
    return 0;
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    struct places *p = userp;

    (void)multi;
    ev_timer_stop(p->loop, &p->timer);
    if (timeout_ms >= 0) {
        /* Milliseconds to seconds in floating point: 1 ms is not 0 s. */
        ev_timer_set(&p->timer, timeout_ms / 1000.0, 0.);
        ev_timer_start(p->loop, &p->timer);
    }
    return 0;
}

static size_t write_cb(char *data, size_t size, size_t n, void *userp)
{
    struct places_req *r = userp;
    size_t len = size * n;

    if (buf_append(&r->body, data, len) < 0)
        return 0;               /* too large: curl fails the transfer */
    return len;
}

struct places *places_new(struct ev_loop *loop, const struct herd_config *cfg)
{
    struct places *p = calloc(1, sizeof *p);
    const char *key;

    if (!p)
        return NULL;
    p->loop = loop;
    p->provider = cfg->provider;
    p->timeout_ms = cfg->places_timeout_ms;
    p->base = config_places_base(cfg);
    key = cfg->places_key_env ? getenv(cfg->places_key_env) : NULL;
    if (key && *key && cfg->provider != PLACES_LOCAL)
        p->key = strdup(key);
    if (cfg->provider != PLACES_LOCAL && !p->key)
        log_msg(LOG_WARN, "no places key in $%s: the %s provider will refuse "
                "requests", cfg->places_key_env, config_provider_name(cfg->provider));
    p->multi = curl_multi_init();
    if (!p->base || !p->multi) {
        places_free(p);
        return NULL;
    }
    ev_timer_init(&p->timer, on_timeout, 0., 0.);
    curl_multi_setopt(p->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(p->multi, CURLMOPT_SOCKETDATA, p);
    curl_multi_setopt(p->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(p->multi, CURLMOPT_TIMERDATA, p);
    /* At most 32 connections to the places service (eight nodes fit the
     * emulator's 256); requests beyond it wait in libcurl's queue (their
     * timeout still runs) instead of overrunning the service's limit. */
    curl_multi_setopt(p->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 32L);
    return p;
}

void places_free(struct places *p)
{
    if (!p)
        return;
    /* Requests still in flight at exit: their askers are gone too. */
    while (p->requests)
        release(p->requests);
    if (p->multi)
        curl_multi_cleanup(p->multi);
    ev_timer_stop(p->loop, &p->timer);
    if (p->key) {
        memset(p->key, 0, strlen(p->key));
        free(p->key);
    }
    free(p->base);
    free(p);
}

/* Free a request that never reached the multi handle. */
static void discard(struct places_req *r)
{
    if (r->easy)
        curl_easy_cleanup(r->easy);
    curl_slist_free_all(r->headers);
    buf_free(&r->body);
    free(r->url);
    free(r->post);
    free(r);
}

static void fail_now(places_done_fn done, void *ctx, const char *why)
{
    metrics_places_refused();
    deliver(done, ctx, places_reply_fault("UNKNOWN_ERROR", why));
}

struct places_req *places_fetch(struct places *p, const struct places_query *q,
                                places_done_fn done, void *ctx)
{
    struct places_req *r;

    if (p->in_flight >= PLACES_MAX_IN_FLIGHT) {
        fail_now(done, ctx, "too many places requests in flight; try again");
        return NULL;
    }
    r = calloc(1, sizeof *r);
    if (!r) {
        fail_now(done, ctx, "out of memory");
        return NULL;
    }
    r->owner = p;
    r->done = done;
    r->ctx = ctx;
    r->max_results = q->max_results;
    buf_init(&r->body, PLACES_BODY_MAX);
    r->easy = curl_easy_init();
    if (p->provider == PLACES_GOOGLE) {
        char header[1200];
        r->url = places_new_url(p->base);
        r->post = places_new_body(q);
        r->headers = curl_slist_append(r->headers, "Content-Type: application/json");
        r->headers = curl_slist_append(r->headers,
                                       "X-Goog-FieldMask: " PLACES_NEW_FIELD_MASK);
        if (p->key && strlen(p->key) < 1024) {
            snprintf(header, sizeof header, "X-Goog-Api-Key: %s", p->key);
            r->headers = curl_slist_append(r->headers, header);
            memset(header, 0, sizeof header);
        }
    } else {
        r->url = places_legacy_url(p->base, q, p->key);
    }
    if (!r->easy || !r->url || (p->provider == PLACES_GOOGLE && !r->post)) {
        discard(r);
        fail_now(done, ctx, "out of memory");
        return NULL;
    }
    curl_easy_setopt(r->easy, CURLOPT_URL, r->url);
    curl_easy_setopt(r->easy, CURLOPT_PRIVATE, r);
    curl_easy_setopt(r->easy, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(r->easy, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(r->easy, CURLOPT_ERRORBUFFER, r->errbuf);
    curl_easy_setopt(r->easy, CURLOPT_TIMEOUT_MS, p->timeout_ms);
    curl_easy_setopt(r->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(r->easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(r->easy, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(r->easy, CURLOPT_USERAGENT, "herd-node/1");
    if (r->headers)
        curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, r->headers);
    if (r->post) {
        curl_easy_setopt(r->easy, CURLOPT_POSTFIELDS, r->post);
        curl_easy_setopt(r->easy, CURLOPT_POSTFIELDSIZE, (long)strlen(r->post));
    }
    if (curl_multi_add_handle(p->multi, r->easy) != CURLM_OK) {
        discard(r);
        fail_now(done, ctx, "cannot start the places request");
        return NULL;
    }
    p->in_flight++;
    r->next = p->requests;
    if (p->requests)
        p->requests->prev = r;
    p->requests = r;
    return r;
}

void places_cancel(struct places_req *r)
{
    r->done = NULL;
    r->ctx = NULL;
}
