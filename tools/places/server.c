#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "legacy.h"
#include "nearby.h"

struct server {
    struct MHD_Daemon *daemon;
    const struct places_ctx *ctx;
    unsigned latency_ms;
    int stop_pipe[2];           /* readable once stopping: wakes sleepers */
};

/* One request in flight: its body so far. */
struct request {
    char *body;
    size_t len;
    int too_big;
    struct timespec t0;
};

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

void server_log(int error, const char *fmt, ...)
{
    char line[2048];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&log_lock);
    log_msg(error ? LOG_ERROR : LOG_INFO, "%s", line);
    pthread_mutex_unlock(&log_lock);
}

void server_log_flush(void)
{
    pthread_mutex_lock(&log_lock);
    log_flush();
    pthread_mutex_unlock(&log_lock);
}

static double ms_since(const struct timespec *t0)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) * 1e3 +
           (double)(t.tv_nsec - t0->tv_nsec) / 1e6;
}

/* Sleep ms, or less if the server stops meanwhile. */
static void delay(const struct server *s, unsigned ms)
{
    struct timespec t0;
    double left = ms;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (left > 0) {
        struct pollfd p = {.fd = s->stop_pipe[0], .events = POLLIN};
        int r = poll(&p, 1, (int)(left + 0.999));

        if (r > 0)
            return;
        if (r < 0 && errno != EINTR)
            return;
        left = ms - ms_since(&t0);
    }
}

/* value, escaped for the log and cut short. */
static const char *esc(const char *value, char *buf, size_t cap)
{
    if (value == NULL)
        return "-";
    log_escape(value, strnlen(value, 200), buf, cap);
    return buf;
}

static const char *arg(struct MHD_Connection *c, const char *name)
{
    return MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, name);
}

static void route(const struct server *s, struct MHD_Connection *c,
                  const char *url, const char *method, struct request *rq,
                  struct reply *r, const char **allow, char *what, size_t cap)
{
    char e1[256], e2[256];

    *allow = NULL;
    if (strcmp(url, LEGACY_PATH) == 0) {
        struct legacy_args a = {
            .location = arg(c, "location"),
            .radius = arg(c, "radius"),
            .key = arg(c, "key"),
            .pagetoken = arg(c, "pagetoken"),
        };
        if (strcmp(method, MHD_HTTP_METHOD_GET) != 0) {
            *allow = "GET";
            places_reply_error(r, 405, "INVALID_ARGUMENT", "Use GET.");
            snprintf(what, cap, "%s", url);
            return;
        }
        snprintf(what, cap, "%s location=%s radius=%s pagetoken=%s key=%s", url,
                 esc(a.location, e1, sizeof e1), esc(a.radius, e2, sizeof e2),
                 a.pagetoken ? "yes" : "no", a.key ? "given" : "none");
        legacy_answer(s->ctx, &a, r);
    } else if (strcmp(url, NEARBY_PATH) == 0) {
        struct nearby_args a = {
            .body = rq->body ? rq->body : "",
            .body_len = rq->len,
            .field_mask = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                      "X-Goog-FieldMask"),
            .key = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                               "X-Goog-Api-Key"),
        };
        if (a.field_mask == NULL)
            a.field_mask = arg(c, "fields");
        if (a.field_mask == NULL)
            a.field_mask = arg(c, "$fields");
        if (a.key == NULL)
            a.key = arg(c, "key");
        if (strcmp(method, MHD_HTTP_METHOD_POST) != 0) {
            *allow = "POST";
            places_reply_error(r, 405, "INVALID_ARGUMENT", "Use POST.");
            snprintf(what, cap, "%s", url);
            return;
        }
        snprintf(what, cap, "%s body=%zu bytes fieldmask=%s key=%s", url,
                 rq->len, esc(a.field_mask, e1, sizeof e1),
                 a.key ? "given" : "none");
        if (rq->too_big) {
            places_reply_error(r, 413, "INVALID_ARGUMENT",
                               "Request body too large.");
            return;
        }
        nearby_answer(s->ctx, &a, r);
    } else {
        snprintf(what, cap, "%s", esc(url, e1, sizeof e1));
        places_reply_error(r, 404, "NOT_FOUND", "No such method.");
    }
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c,
                                  const char *url, const char *method,
                                  const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    struct server *s = cls;
    struct request *rq = *con_cls;
    struct MHD_Response *resp;
    struct reply r = {0};
    const char *allow;
    char what[1024], m[16];
    enum MHD_Result ok;

    (void)version;
    if (rq == NULL) {
        rq = calloc(1, sizeof *rq);
        if (rq == NULL)
            return MHD_NO;
        clock_gettime(CLOCK_MONOTONIC, &rq->t0);
        *con_cls = rq;
        return MHD_YES;
    }
    if (*upload_size > 0) {
        /* Keep at most SERVER_BODY_MAX bytes; past that, swallow the rest
         * and answer 413 at the end. */
        if (!rq->too_big && rq->len + *upload_size > SERVER_BODY_MAX) {
            rq->too_big = 1;
            free(rq->body);
            rq->body = NULL;
        }
        if (!rq->too_big) {
            char *b = realloc(rq->body, rq->len + *upload_size + 1);
            if (b == NULL)
                return MHD_NO;
            memcpy(b + rq->len, upload, *upload_size);
            rq->len += *upload_size;
            b[rq->len] = '\0';
            rq->body = b;
        } else {
            rq->len += *upload_size;
        }
        *upload_size = 0;
        return MHD_YES;
    }

    route(s, c, url, method, rq, &r, &allow, what, sizeof what);
    if (s->latency_ms)
        delay(s, s->latency_ms);
    resp = MHD_create_response_from_buffer(r.len, r.body ? r.body : (char *)"",
                                           r.body ? MHD_RESPMEM_MUST_FREE
                                                  : MHD_RESPMEM_PERSISTENT);
    if (resp == NULL) {
        reply_free(&r);
        return MHD_NO;
    }
    r.body = NULL;              /* the response owns it now */
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                            r.content_type ? r.content_type : "text/plain");
    if (allow)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
    ok = MHD_queue_response(c, r.http, resp);
    MHD_destroy_response(resp);
    log_escape(method, strnlen(method, 12), m, sizeof m);
    server_log(0, "%s %s -> %u %s %zu places %.3f ms", m, what, r.http,
               r.status ? r.status : "-", r.count, ms_since(&rq->t0));
    return ok;
}

static void on_done(void *cls, struct MHD_Connection *c, void **con_cls,
                    enum MHD_RequestTerminationCode why)
{
    struct request *rq = *con_cls;

    (void)cls;
    (void)c;
    (void)why;
    if (rq) {
        free(rq->body);
        free(rq);
        *con_cls = NULL;
    }
}

struct server *server_start(const struct places_ctx *ctx, int listen_fd,
                            unsigned latency_ms)
{
    struct server *s = calloc(1, sizeof *s);

    if (s == NULL) {
        close(listen_fd);
        return NULL;
    }
    s->ctx = ctx;
    s->latency_ms = latency_ms;
    if (pipe2(s->stop_pipe, O_CLOEXEC) < 0) {
        int e = errno;
        close(listen_fd);
        free(s);
        errno = e;
        return NULL;
    }
    s->daemon = MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
            MHD_USE_AUTO | MHD_USE_ITC,
        0, NULL, NULL, on_request, s,
        MHD_OPTION_LISTEN_SOCKET, (MHD_socket)listen_fd,
        MHD_OPTION_NOTIFY_COMPLETED, on_done, (void *)NULL,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)SERVER_MAX_CONNECTIONS,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)SERVER_IDLE_TIMEOUT_S,
        /* URL and headers must fit here; MHD answers 414/431 past it. */
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(32 * 1024),
        MHD_OPTION_THREAD_STACK_SIZE, (size_t)(1024 * 1024),
        MHD_OPTION_END);
    if (s->daemon == NULL) {
        close(listen_fd);
        close(s->stop_pipe[0]);
        close(s->stop_pipe[1]);
        free(s);
        errno = EIO;
        return NULL;
    }
    return s;
}

void server_stop(struct server *s)
{
    ssize_t w;

    if (s == NULL)
        return;
    do
        w = write(s->stop_pipe[1], "x", 1);
    while (w < 0 && errno == EINTR);
    MHD_stop_daemon(s->daemon);
    close(s->stop_pipe[0]);
    close(s->stop_pipe[1]);
    free(s);
}
