#include "places.h"

#include <curl/curl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/container.h"
#include "common/log.h"
#include "common/places_cut.h"
#include "metrics.h"

/* Buckets of the in-flight table (a power of two). */
#define PLACES_BUCKETS 256
/* A pooled request keeps a body buffer this large for the next one; a
 * larger one (a huge answer) is freed. */
#define PLACES_KEEP_BODY (256u * 1024)
/* Pooled requests kept idle, each with its curl handle. */
#define PLACES_POOL_MAX 64

/* One upstream request, shared by every WHATSAT that asked for the same
 * query while it was in flight. */
struct upstream {
    struct places *owner;
    struct upstream *prev, *next;       /* in flight, or the pool */
    struct upstream *hnext;             /* in its bucket */
    CURL *easy;
    struct buf body;
    char *query;                /* what is shared: see query_text() */
    size_t query_len, query_cap;
    char *url;                  /* the legacy URL, built into here */
    size_t url_cap;
    uint32_t hash;
    int in_table;
    struct places_req *first, *last;    /* the askers, in order */
    char errbuf[CURL_ERROR_SIZE];
};

/* One WHATSAT waiting for an upstream request. */
struct places_req {
    struct places_req *next;
    int max_results;
    places_done_fn done;
    void *ctx;
};

struct places {
    struct ev_loop *loop;
    CURLM *multi;
    ev_timer timer;
    enum places_provider provider;
    char *url_head;             /* base + path + "?location=" */
    char *url_tail;             /* "&key=..." or "" */
    size_t url_head_len, url_tail_len;
    char *key;                  /* from the environment; never logged */
    struct curl_slist *headers; /* Places API (New): the same for all */
    long timeout_ms;
    int waiting;                /* askers not yet answered */
    struct upstream *requests;  /* in flight, so exit can free them */
    struct upstream *pool;      /* idle, handles and buffers kept */
    int pooled;
    struct places_req *free_reqs;
    struct upstream *table[PLACES_BUCKETS];
    struct places_counts counts;
};

/* One per socket curl asks us to watch. */
struct places_sock {
    ev_io io;
    struct places *owner;
};

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

static uint32_t hash_of(const char *s, size_t n)
{
    uint32_t h = 2166136261u;           /* FNV-1a */

    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

static void table_remove(struct places *p, struct upstream *u)
{
    struct upstream **at = &p->table[u->hash & (PLACES_BUCKETS - 1)];

    if (!u->in_table)
        return;
    while (*at && *at != u)
        at = &(*at)->hnext;
    if (*at)
        *at = u->hnext;
    u->hnext = NULL;
    u->in_table = 0;
}

static struct upstream *table_find(struct places *p, const char *q, size_t n,
                                   uint32_t h)
{
    struct upstream *u = p->table[h & (PLACES_BUCKETS - 1)];

    for (; u; u = u->hnext)
        if (u->hash == h && u->query_len == n && memcmp(u->query, q, n) == 0)
            return u;
    return NULL;
}

static void list_unlink(struct upstream **head, struct upstream *u)
{
    if (u->prev)
        u->prev->next = u->next;
    else
        *head = u->next;
    if (u->next)
        u->next->prev = u->prev;
    u->prev = u->next = NULL;
}

static void list_push(struct upstream **head, struct upstream *u)
{
    u->prev = NULL;
    u->next = *head;
    if (*head)
        (*head)->prev = u;
    *head = u;
}

static void destroy(struct upstream *u)
{
    if (u->easy)
        curl_easy_cleanup(u->easy);
    buf_free(&u->body);
    free(u->query);
    free(u->url);
    free(u);
}

static void req_free(struct places *p, struct places_req *r)
{
    r->next = p->free_reqs;
    p->free_reqs = r;
    p->waiting--;
}

/* Out of the multi handle and the table, back to the pool (or freed).
 * Its askers must be gone already. */
static void release(struct upstream *u, int in_multi)
{
    struct places *p = u->owner;

    table_remove(p, u);
    if (in_multi) {
        list_unlink(&p->requests, u);
        curl_multi_remove_handle(p->multi, u->easy);
    }
    if (p->pooled >= PLACES_POOL_MAX || u->easy == NULL) {
        destroy(u);
        return;
    }
    if (u->body.cap > PLACES_KEEP_BODY)
        buf_free(&u->body);
    else
        buf_consume(&u->body, buf_len(&u->body));
    u->first = u->last = NULL;
    list_push(&p->pool, u);
    p->pooled++;
}

/* Answer every asker of u, each with its own bound (a legacy answer is
 * scanned once and cut per bound; one that must go through cJSON is
 * rebuilt per bound).  Answering may close a connection, which cancels
 * its other askers (here too): they are only marked, and skipped. */
static void answer_all(struct upstream *u, long http, const char *fault)
{
    struct places *p = u->owner;
    const char *body = buf_head(&u->body);
    size_t len = buf_len(&u->body);
    struct places_scan scan;
    int scanned = -1, shared_rc = -1;
    struct places_json j, shared;
    struct places_req *r;

    if (fault) {
        shared_rc = places_json_fault("UNKNOWN_ERROR", fault, &shared);
    } else if (p->provider == PLACES_GOOGLE) {
        /* Its askers share the bound too (the request carries it): one
         * mapping through cJSON serves them all. */
        shared_rc = places_json_new(http, body, len,
                                    u->first ? u->first->max_results : 1,
                                    &shared);
    } else {
        scanned = places_cut_scan(body, len, &scan);
    }
    while ((r = u->first) != NULL) {
        u->first = r->next;
        if (r->done) {
            int rc;
            const struct places_json *give = &j;
            if (fault || p->provider == PLACES_GOOGLE) {
                rc = shared_rc;
                give = &shared;
            } else if (scanned == 0) {
                struct places_cut cut;
                places_cut_bound(&scan, r->max_results, &cut);
                places_json_of_cut(&cut, &j);
                rc = 0;
            } else {
                rc = places_json_legacy_tree(http, body, len, r->max_results,
                                             &j);
            }
            r->done(r->ctx, rc == 0 ? give : NULL);
            if (rc == 0 && give == &j)
                places_json_free(&j);
        }
        req_free(p, r);
    }
    if (shared_rc == 0)
        places_json_free(&shared);
    u->last = NULL;
}

static void finish(struct upstream *u, CURLcode result)
{
    struct places *p = u->owner;
    long http = 0;
    char msg[CURL_ERROR_SIZE + 64];
    const char *fault = NULL;
    double took = 0;

    curl_easy_getinfo(u->easy, CURLINFO_RESPONSE_CODE, &http);
    curl_easy_getinfo(u->easy, CURLINFO_TOTAL_TIME, &took);
    metrics_places(result, http, took);
    /* Out of the table first: an asker answered now may ask again, and
     * must get a new request, not this finished one. */
    table_remove(p, u);
    list_unlink(&p->requests, u);
    curl_multi_remove_handle(p->multi, u->easy);
    if (result != CURLE_OK) {
        snprintf(msg, sizeof msg, "places request failed: %s",
                 result == CURLE_WRITE_ERROR ? "response too large"
                 : u->errbuf[0] ? u->errbuf : curl_easy_strerror(result));
        scrub_key(p, msg);
        fault = msg;
        log_msg(LOG_WARN, "%s", msg);
    }
    answer_all(u, http, fault);
    release(u, 0);
}

static void check_done(struct places *p)
{
    CURLMsg *msg;
    int left;

    while ((msg = curl_multi_info_read(p->multi, &left)) != NULL) {
        if (msg->msg == CURLMSG_DONE) {
            struct upstream *u = NULL;
            CURLcode result = msg->data.result;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&u);
            if (u)
                finish(u, result);
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
    struct places *p = container_of(w, struct places, timer);
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
    struct upstream *u = userp;
    size_t len = size * n;

    if (buf_append(&u->body, data, len) < 0)
        return 0;               /* too large: curl fails the transfer */
    return len;
}

/* "https://host" + "/maps/.../json?location=" and "&key=ENC": the parts
 * of every legacy URL that never change, so a request formats only the
 * location and radius (places_legacy_url() gives the same text). */
static int url_parts(struct places *p, const char *base)
{
    struct places_query probe = {0, 0, "1", 1};
    char *full = places_legacy_url(base, &probe, p->key);
    const char *loc, *rad;

    if (!full)
        return -1;
    loc = strstr(full, "?location=");
    rad = loc ? strstr(loc, "&radius=1") : NULL;
    if (!loc || !rad) {
        free(full);
        return -1;
    }
    p->url_head_len = (size_t)(loc + 10 - full);
    p->url_head = strndup(full, p->url_head_len);
    p->url_tail = strdup(rad + 9);
    free(full);
    if (!p->url_head || !p->url_tail)
        return -1;
    p->url_tail_len = strlen(p->url_tail);
    return 0;
}

struct places *places_new(struct ev_loop *loop, const struct herd_config *cfg)
{
    struct places *p = calloc(1, sizeof *p);
    const char *key;
    char *base;

    if (!p)
        return NULL;
    p->loop = loop;
    p->provider = cfg->provider;
    p->timeout_ms = cfg->places_timeout_ms;
    key = cfg->places_key_env ? getenv(cfg->places_key_env) : NULL;
    if (key && *key && cfg->provider != PLACES_LOCAL)
        p->key = strdup(key);
    if (cfg->provider != PLACES_LOCAL && !p->key)
        log_msg(LOG_WARN, "no places key in $%s: the %s provider will refuse "
                "requests", cfg->places_key_env, config_provider_name(cfg->provider));
    base = config_places_base(cfg);
    p->multi = curl_multi_init();
    if (!base || !p->multi) {
        free(base);
        places_free(p);
        return NULL;
    }
    if (p->provider == PLACES_GOOGLE) {
        char header[1200];
        p->url_head = places_new_url(base);
        p->headers = curl_slist_append(p->headers, "Content-Type: application/json");
        p->headers = curl_slist_append(p->headers,
                                       "X-Goog-FieldMask: " PLACES_NEW_FIELD_MASK);
        if (p->key && strlen(p->key) < 1024) {
            snprintf(header, sizeof header, "X-Goog-Api-Key: %s", p->key);
            p->headers = curl_slist_append(p->headers, header);
            memset(header, 0, sizeof header);
        }
        if (!p->url_head || !p->headers) {
            free(base);
            places_free(p);
            return NULL;
        }
    } else if (url_parts(p, base) < 0) {
        free(base);
        places_free(p);
        return NULL;
    }
    free(base);
    ev_timer_init(&p->timer, on_timeout, 0., 0.);
    curl_multi_setopt(p->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(p->multi, CURLMOPT_SOCKETDATA, p);
    curl_multi_setopt(p->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(p->multi, CURLMOPT_TIMERDATA, p);
    /* At most 32 connections to the places service (eight nodes fit the
     * emulator's 256); requests beyond it wait in libcurl's queue (their
     * timeout still runs) instead of overrunning the service's limit.
     * Connections stay open between requests (libcurl's cache in the
     * multi handle), so a request reuses one instead of connecting. */
    curl_multi_setopt(p->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 32L);
    curl_multi_setopt(p->multi, CURLMOPT_MAXCONNECTS, 32L);
    return p;
}

void places_free(struct places *p)
{
    struct places_req *r;

    if (!p)
        return;
    /* Requests still in flight at exit: their askers are gone too. */
    while (p->requests) {
        struct upstream *u = p->requests;
        while ((r = u->first) != NULL) {
            u->first = r->next;
            free(r);
        }
        table_remove(p, u);
        list_unlink(&p->requests, u);
        curl_multi_remove_handle(p->multi, u->easy);
        destroy(u);
    }
    while (p->pool) {
        struct upstream *u = p->pool;
        list_unlink(&p->pool, u);
        destroy(u);
    }
    while ((r = p->free_reqs) != NULL) {
        p->free_reqs = r->next;
        free(r);
    }
    if (p->multi)
        curl_multi_cleanup(p->multi);
    ev_timer_stop(p->loop, &p->timer);
    curl_slist_free_all(p->headers);
    if (p->key) {
        memset(p->key, 0, strlen(p->key));
        free(p->key);
    }
    if (p->url_tail) {
        memset(p->url_tail, 0, p->url_tail_len);
        free(p->url_tail);
    }
    free(p->url_head);
    free(p);
}

static void fail_now(places_done_fn done, void *ctx, const char *why)
{
    struct places_json j;
    int rc;

    metrics_places_refused();
    rc = places_json_fault("UNKNOWN_ERROR", why, &j);

    if (done)
        done(ctx, rc == 0 ? &j : NULL);
    if (rc == 0)
        places_json_free(&j);
}

/* What makes two WHATSATs share a request: the varying part of the
 * legacy URL ("LAT,LNG&radius=R"), or the whole New API body (which
 * carries the bound).  Returns its length (0: does not fit). */
static size_t query_text(const struct places *p, const struct places_query *q,
                         char *out, size_t cap)
{
    int n;

    if (p->provider == PLACES_GOOGLE)
        n = snprintf(out, cap,
                     "{\"locationRestriction\":{\"circle\":{\"center\":"
                     "{\"latitude\":%.7f,\"longitude\":%.7f},\"radius\":%s}},"
                     "\"maxResultCount\":%d}",
                     q->lat, q->lon, q->radius_m, q->max_results);
    else
        n = snprintf(out, cap, "%.7f,%.7f&radius=%s", q->lat, q->lon,
                     q->radius_m);
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

/* Grow *s to hold at least n bytes. */
static int reserve(char **s, size_t *cap, size_t n)
{
    char *grown;

    if (*cap >= n)
        return 0;
    grown = realloc(*s, n);
    if (!grown)
        return -1;
    *s = grown;
    *cap = n;
    return 0;
}

/* A new handle's options that stay the same for every request. */
static CURL *easy_new(struct places *p, struct upstream *u)
{
    CURL *e = curl_easy_init();

    if (!e)
        return NULL;
    curl_easy_setopt(e, CURLOPT_PRIVATE, u);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, u);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, u->errbuf);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, p->timeout_ms);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(e, CURLOPT_USERAGENT, "herd-node/1");
    if (p->headers)
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, p->headers);
    return e;
}

static struct upstream *upstream_get(struct places *p)
{
    struct upstream *u = p->pool;

    if (u) {
        list_unlink(&p->pool, u);
        p->pooled--;
        return u;
    }
    u = calloc(1, sizeof *u);
    if (!u)
        return NULL;
    u->owner = p;
    buf_init(&u->body, PLACES_BODY_MAX);
    u->easy = easy_new(p, u);
    if (!u->easy) {
        destroy(u);
        return NULL;
    }
    return u;
}

/* Start an upstream request for query text q (n bytes, hash h). */
static struct upstream *start(struct places *p, const char *q, size_t n,
                              uint32_t h)
{
    struct upstream *u = upstream_get(p);

    if (!u)
        return NULL;
    if (reserve(&u->query, &u->query_cap, n + 1) < 0) {
        release(u, 0);
        return NULL;
    }
    memcpy(u->query, q, n);
    u->query[n] = '\0';
    u->query_len = n;
    u->hash = h;
    u->errbuf[0] = '\0';
    if (p->provider == PLACES_GOOGLE) {
        curl_easy_setopt(u->easy, CURLOPT_URL, p->url_head);
        /* curl reads the body from u->query while the request runs. */
        curl_easy_setopt(u->easy, CURLOPT_POSTFIELDS, u->query);
        curl_easy_setopt(u->easy, CURLOPT_POSTFIELDSIZE, (long)n);
    } else {
        size_t len = p->url_head_len + n + p->url_tail_len;
        if (reserve(&u->url, &u->url_cap, len + 1) < 0) {
            release(u, 0);
            return NULL;
        }
        memcpy(u->url, p->url_head, p->url_head_len);
        memcpy(u->url + p->url_head_len, q, n);
        memcpy(u->url + p->url_head_len + n, p->url_tail, p->url_tail_len);
        u->url[len] = '\0';
        curl_easy_setopt(u->easy, CURLOPT_URL, u->url);
    }
    if (curl_multi_add_handle(p->multi, u->easy) != CURLM_OK) {
        release(u, 0);
        return NULL;
    }
    list_push(&p->requests, u);
    u->hnext = p->table[h & (PLACES_BUCKETS - 1)];
    p->table[h & (PLACES_BUCKETS - 1)] = u;
    u->in_table = 1;
    p->counts.upstream++;
    return u;
}

struct places_req *places_fetch(struct places *p, const struct places_query *q,
                                places_done_fn done, void *ctx)
{
    char text[512];
    size_t n;
    uint32_t h;
    struct upstream *u;
    struct places_req *r;

    if (p->waiting >= PLACES_MAX_IN_FLIGHT) {
        fail_now(done, ctx, "too many places requests in flight; try again");
        return NULL;
    }
    n = query_text(p, q, text, sizeof text);
    if (n == 0) {
        fail_now(done, ctx, "cannot start the places request");
        return NULL;
    }
    r = p->free_reqs;
    if (r)
        p->free_reqs = r->next;
    else if ((r = malloc(sizeof *r)) == NULL) {
        fail_now(done, ctx, "out of memory");
        return NULL;
    }
    h = hash_of(text, n);
    u = table_find(p, text, n, h);
    if (u) {
        p->counts.shared++;
    } else if ((u = start(p, text, n, h)) == NULL) {
        r->next = p->free_reqs;
        p->free_reqs = r;
        fail_now(done, ctx, "cannot start the places request");
        return NULL;
    }
    r->next = NULL;
    r->max_results = q->max_results;
    r->done = done;
    r->ctx = ctx;
    if (u->last)
        u->last->next = r;
    else
        u->first = r;
    u->last = r;
    p->waiting++;
    return r;
}

void places_cancel(struct places_req *r)
{
    r->done = NULL;
    r->ctx = NULL;
}

void places_get_counts(const struct places *p, struct places_counts *out)
{
    *out = p->counts;
}
