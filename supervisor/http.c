#include "http.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "child.h"
#include "common/buf.h"
#include "common/ctlproto.h"
#include "common/grow.h"
#include "common/log.h"
#include "control.h"
#include "sup.h"

/* The page, from supervisor/page.html (supervisor/page_blob.S). */
extern const char http_page[], http_page_end[];

/* An exposition past this is cut (and says so): far beyond any herd. */
#define HTTP_BODY_MAX (64u << 20)

struct http {
    struct sup *sup;
    struct MHD_Daemon *daemon;
    char addr[CONFIG_HTTP_ADDR_MAX + 1];
    int port;
    ev_io io_w;                 /* MHD's epoll descriptor */
    ev_timer timer_w;           /* MHD's next timeout */
};

static void schedule(struct http *h);

/* ---- the text exposition ---- */

static void put(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void put(struct buf *b, const char *fmt, ...)
{
    char small[512];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof small) {
        buf_append(b, small, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (!big)
        return;
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    buf_append(b, big, (size_t)n);
    free(big);
}

/* A label value or HELP text, escaped as the format asks (\\, \n, and
 * \" in label values). */
static void put_escaped(struct buf *b, const char *s, int quote)
{
    for (; *s; s++) {
        if (*s == '\\')
            buf_append(b, "\\\\", 2);
        else if (*s == '\n')
            buf_append(b, "\\n", 2);
        else if (quote && *s == '"')
            buf_append(b, "\\\"", 2);
        else
            buf_append(b, s, 1);
    }
}

static void put_number(struct buf *b, double v)
{
    if (v != v)
        put(b, "NaN");
    else if (v >= -9007199254740992.0 && v <= 9007199254740992.0 &&
             v == (double)(long long)v)
        put(b, "%lld", (long long)v);
    else
        put(b, "%.17g", v);
}

/* A metric name as the node wrote it, checked before it is printed. */
static int valid_metric_name(const char *s)
{
    if (!s || !*s)
        return 0;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
              *p == '_' || *p == ':' || (p > s && *p >= '0' && *p <= '9')))
            return 0;
    return 1;
}

/* name{node="N",k="v",...[,le="x"]} value */
static void put_sample(struct buf *b, const char *name, const char *suffix,
                       const char *node, const cJSON *labels, const char *le,
                       double v)
{
    const cJSON *l;
    int first = 1;

    put(b, "%s%s{", name, suffix);
    if (node) {
        put(b, "node=\"");
        put_escaped(b, node, 1);
        put(b, "\"");
        first = 0;
    }
    cJSON_ArrayForEach(l, labels) {
        /* A label name as the format allows ([a-zA-Z_][a-zA-Z0-9_]*),
         * whatever a damaged status file holds. */
        if (!cJSON_IsString(l) || !valid_metric_name(l->string) ||
            strchr(l->string, ':') || strcmp(l->string, "node") == 0 ||
            strcmp(l->string, "le") == 0)
            continue;
        put(b, "%s%s=\"", first ? "" : ",", l->string);
        put_escaped(b, l->valuestring, 1);
        put(b, "\"");
        first = 0;
    }
    if (le)
        put(b, "%sle=\"%s\"", first ? "" : ",", le);
    put(b, "} ");
    put_number(b, v);
    put(b, "\n");
}

static double num(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

/* One node's series of family f (a "metrics" entry of its status). */
static void put_series(struct buf *b, const cJSON *f, const char *node)
{
    const char *name = cJSON_GetObjectItemCaseSensitive(f, "name")->valuestring;
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(f, "type");
    const cJSON *series = cJSON_GetObjectItemCaseSensitive(f, "series"), *s;
    int histogram = cJSON_IsString(type) &&
                    strcmp(type->valuestring, "histogram") == 0;

    cJSON_ArrayForEach(s, series) {
        const cJSON *labels = cJSON_GetObjectItemCaseSensitive(s, "labels");
        if (!histogram) {
            put_sample(b, name, "", node, labels, NULL, num(s, "value"));
            continue;
        }
        const cJSON *le = cJSON_GetObjectItemCaseSensitive(f, "le");
        const cJSON *counts = cJSON_GetObjectItemCaseSensitive(s, "buckets");
        int n = cJSON_GetArraySize(le);
        if (cJSON_GetArraySize(counts) != n)
            continue;
        for (int i = 0; i < n; i++) {
            char bound[40];
            snprintf(bound, sizeof bound, "%g",
                     cJSON_GetArrayItem(le, i)->valuedouble);
            put_sample(b, name, "_bucket", node, labels, bound,
                       cJSON_GetArrayItem(counts, i)->valuedouble);
        }
        put_sample(b, name, "_bucket", node, labels, "+Inf", num(s, "count"));
        put_sample(b, name, "_sum", node, labels, NULL, num(s, "sum"));
        put_sample(b, name, "_count", node, labels, NULL, num(s, "count"));
    }
}

static const cJSON *family_named(const cJSON *metrics, const char *name)
{
    const cJSON *f;

    cJSON_ArrayForEach(f, metrics) {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(f, "name");
        if (cJSON_IsString(n) && strcmp(n->valuestring, name) == 0)
            return f;
    }
    return NULL;
}

static int family_ok(const cJSON *f)
{
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(f, "name");
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(f, "type");
    return cJSON_IsString(n) && valid_metric_name(n->valuestring) &&
           cJSON_IsString(t) && (strcmp(t->valuestring, "counter") == 0 ||
                                 strcmp(t->valuestring, "gauge") == 0 ||
                                 strcmp(t->valuestring, "histogram") == 0);
}

/* Every family once, with the series of every node that has it: the
 * format wants a family's lines together. */
static void put_node_metrics(struct buf *b, struct sup *s)
{
    size_t n = 0, cap = 0;
    struct { const char *name; cJSON *status; } *v = NULL;

    for (struct child *c = s->children; c; c = c->next) {
        if (c->kind != CHILD_NODE || c->state == CTL_STOPPING)
            continue;
        cJSON *st = child_status_file(c);
        if (!st)
            continue;
        if (GROW(v, cap, n + 1, 8) < 0) {
            cJSON_Delete(st);
            break;
        }
        v[n].name = c->name;
        v[n].status = st;
        n++;
    }
    for (size_t i = 0; i < n; i++) {
        const cJSON *f;
        cJSON_ArrayForEach(f, cJSON_GetObjectItemCaseSensitive(v[i].status,
                                                               "metrics")) {
            if (!family_ok(f))
                continue;
            const char *name =
                cJSON_GetObjectItemCaseSensitive(f, "name")->valuestring;
            int seen = 0;
            for (size_t k = 0; k < i && !seen; k++)
                seen = family_named(cJSON_GetObjectItemCaseSensitive(
                                        v[k].status, "metrics"), name) != NULL;
            if (seen)
                continue;
            const cJSON *help = cJSON_GetObjectItemCaseSensitive(f, "help");
            put(b, "# HELP %s ", name);
            put_escaped(b, cJSON_IsString(help) ? help->valuestring : "", 0);
            put(b, "\n# TYPE %s %s\n", name,
                cJSON_GetObjectItemCaseSensitive(f, "type")->valuestring);
            for (size_t k = i; k < n; k++) {
                const cJSON *g = family_named(cJSON_GetObjectItemCaseSensitive(
                                                  v[k].status, "metrics"), name);
                if (g && family_ok(g) &&
                    strcmp(cJSON_GetObjectItemCaseSensitive(g, "type")->valuestring,
                           cJSON_GetObjectItemCaseSensitive(f, "type")->valuestring) == 0)
                    put_series(b, g, v[k].name);
            }
        }
    }
    for (size_t i = 0; i < n; i++)
        cJSON_Delete(v[i].status);
    free(v);
}

static void put_child_labels(struct buf *b, const struct child *c)
{
    put(b, "child=\"");
    put_escaped(b, c->name, 1);
    put(b, "\",kind=\"%s\"", c->kind == CHILD_NODE ? "node" : "places");
}

static void put_supervisor_metrics(struct buf *b, struct sup *s)
{
    static const enum ctl_state states[] = {
        CTL_STARTING, CTL_RUNNING, CTL_BACKOFF, CTL_STOPPING,
        CTL_STOPPED, CTL_FATAL, CTL_ABSENT,
    };

    put(b, "# HELP herd_supervisor_start_time_seconds When the supervisor "
        "started, since the Unix epoch.\n"
        "# TYPE herd_supervisor_start_time_seconds gauge\n"
        "herd_supervisor_start_time_seconds %lld\n", (long long)s->started);
    put(b, "# HELP herd_supervisor_child_restarts_total Times the supervisor "
        "started the child again after its first start.\n"
        "# TYPE herd_supervisor_child_restarts_total counter\n");
    for (struct child *c = s->children; c; c = c->next) {
        put(b, "herd_supervisor_child_restarts_total{");
        put_child_labels(b, c);
        put(b, "} %d\n", c->restarts > 0 ? c->restarts : 0);
    }
    put(b, "# HELP herd_supervisor_child_state 1 for the state the child is "
        "in, 0 for the others.\n"
        "# TYPE herd_supervisor_child_state gauge\n");
    for (struct child *c = s->children; c; c = c->next)
        for (size_t i = 0; i < sizeof states / sizeof states[0]; i++) {
            put(b, "herd_supervisor_child_state{");
            put_child_labels(b, c);
            put(b, ",state=\"%s\"} %d\n", ctlproto_state_name(states[i]),
                c->state == states[i]);
        }
    put(b, "# HELP herd_supervisor_child_fatal_info Why a child was given up "
        "(fatal) or cannot start (absent); 1 while it is so.\n"
        "# TYPE herd_supervisor_child_fatal_info gauge\n");
    for (struct child *c = s->children; c; c = c->next) {
        if (c->state != CTL_FATAL && c->state != CTL_ABSENT)
            continue;
        put(b, "herd_supervisor_child_fatal_info{");
        put_child_labels(b, c);
        put(b, ",reason=\"");
        put_escaped(b, c->reason[0] ? c->reason : "unknown", 1);
        put(b, "\"} 1\n");
    }
}

/* ---- requests ---- */

static enum MHD_Result respond(struct MHD_Connection *conn, unsigned code,
                               const char *type, const void *body, size_t len)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    enum MHD_Result ok;

    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    if (code == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    if (strncmp(type, "text/html", 9) == 0) {
        /* Everything the page needs is in it: no other origin, ever. */
        MHD_add_response_header(r, "Content-Security-Policy",
                                "default-src 'none'; script-src 'unsafe-inline'; "
                                "style-src 'unsafe-inline'; connect-src 'self'; "
                                "img-src 'self' data:; frame-ancestors 'none'");
        MHD_add_response_header(r, "X-Frame-Options", "DENY");
    }
    ok = MHD_queue_response(conn, code, r);
    MHD_destroy_response(r);
    return ok;
}

static enum MHD_Result respond_text(struct MHD_Connection *conn, unsigned code,
                                    const char *text)
{
    return respond(conn, code, "text/plain; charset=utf-8", text, strlen(text));
}

/* Bound to loopback, the face answers only to loopback names: a web page
 * elsewhere that points a name of its own at 127.0.0.1 (DNS rebinding)
 * gets nothing. */
static int host_allowed(const struct http *h, struct MHD_Connection *conn)
{
    const char *host = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                   MHD_HTTP_HEADER_HOST);
    char name[64];
    unsigned char bin[sizeof(struct in6_addr)];
    size_t len;

    if (strcmp(h->addr, "127.0.0.1") != 0 && strcmp(h->addr, "::1") != 0 &&
        strncmp(h->addr, "127.", 4) != 0)
        return 1;               /* exposed on purpose: README says how */
    if (!host)
        return 1;               /* HTTP/1.0 without Host */
    len = strlen(host);
    if (host[0] == '[') {
        const char *end = strchr(host, ']');
        if (!end || (size_t)(end - host - 1) >= sizeof name)
            return 0;
        memcpy(name, host + 1, (size_t)(end - host - 1));
        name[end - host - 1] = '\0';
        return inet_pton(AF_INET6, name, bin) == 1;
    }
    const char *colon = strchr(host, ':');
    if (colon)
        len = (size_t)(colon - host);
    if (len >= sizeof name)
        return 0;
    memcpy(name, host, len);
    name[len] = '\0';
    return strcmp(name, "localhost") == 0 || inet_pton(AF_INET, name, bin) == 1;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
                                  const char *url, const char *method,
                                  const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    struct http *h = cls;
    int get = strcmp(method, MHD_HTTP_METHOD_GET) == 0 ||
              strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
    enum MHD_Result ok;

    (void)version;
    (void)upload;
    (void)con_cls;
    if (*upload_size > 0) {
        /* A body nobody asked for: dropped unread, the answer is 405/404
         * (queued at the first call, below). */
        *upload_size = 0;
        return MHD_YES;
    }
    if (strcmp(url, "/") != 0 && strcmp(url, "/metrics") != 0 &&
        strcmp(url, "/api/status") != 0)
        return respond_text(conn, MHD_HTTP_NOT_FOUND, "not found\n");
    if (!get)
        return respond_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED,
                            "only GET and HEAD\n");
    if (!host_allowed(h, conn))
        return respond_text(conn, MHD_HTTP_MISDIRECTED_REQUEST,
                            "this face answers to loopback names only\n");
    if (strcmp(url, "/") == 0)
        return respond(conn, MHD_HTTP_OK, "text/html; charset=utf-8", http_page,
                       (size_t)(http_page_end - http_page));
    if (strcmp(url, "/api/status") == 0) {
        cJSON *j = control_status(h->sup);
        char *text;
        /* Exactly `herdctl status --json`, which drops the reply's "ok". */
        cJSON_DeleteItemFromObject(j, "ok");
        text = j ? cJSON_PrintUnformatted(j) : NULL;
        cJSON_Delete(j);
        if (!text)
            return respond_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
                                "out of memory\n");
        ok = respond(conn, MHD_HTTP_OK, "application/json", text, strlen(text));
        free(text);
        return ok;
    }
    struct buf b;
    buf_init(&b, HTTP_BODY_MAX);
    put_node_metrics(&b, h->sup);
    put_supervisor_metrics(&b, h->sup);
    ok = respond(conn, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8",
                 buf_head(&b), buf_len(&b));
    buf_free(&b);
    return ok;
}

/* ---- the loop ---- */

static void drive(struct http *h)
{
    MHD_run(h->daemon);
    schedule(h);
}

static void on_io(struct ev_loop *loop, ev_io *w, int revents)
{
    struct http *h = (struct http *)(void *)((char *)w - offsetof(struct http, io_w));

    (void)loop;
    (void)revents;
    drive(h);
}

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct http *h = (struct http *)(void *)((char *)w -
                                             offsetof(struct http, timer_w));

    (void)loop;
    (void)revents;
    drive(h);
}

/* MHD's next deadline (idle connections to time out) as our timer. */
static void schedule(struct http *h)
{
    MHD_UNSIGNED_LONG_LONG ms;
    struct ev_loop *loop = h->sup->loop;

    ev_timer_stop(loop, &h->timer_w);
    if (MHD_get_timeout(h->daemon, &ms) == MHD_YES) {
        ev_timer_set(&h->timer_w, (double)ms / 1000.0, 0.);
        ev_timer_start(loop, &h->timer_w);
    }
}

static int listen_socket(const char *addr, int port, char *why, size_t whylen)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int fd, one = 1;

    memset(&ss, 0, sizeof ss);
    if (strchr(addr, ':')) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)port);
        inet_pton(AF_INET6, addr, &a->sin6_addr);
        len = sizeof *a;
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_port = htons((uint16_t)port);
        inet_pton(AF_INET, addr, &a->sin_addr);
        len = sizeof *a;
    }
    /* Close-on-exec: no child may inherit the face's port. */
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(why, whylen, "%s", strerror(errno));
        return -1;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (ss.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 64) < 0) {
        snprintf(why, whylen, "%s", strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

static struct http *start(struct sup *s, const char *addr, int port,
                          char *err, size_t errlen)
{
    struct http *h = calloc(1, sizeof *h);
    const union MHD_DaemonInfo *info;
    char why[256];
    int fd;

    if (!h) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    fd = listen_socket(addr, port, why, sizeof why);
    if (fd < 0) {
        snprintf(err, errlen, "cannot listen on %s%s%s:%d (http): %s",
                 strchr(addr, ':') ? "[" : "", addr,
                 strchr(addr, ':') ? "]" : "", port, why);
        free(h);
        return NULL;
    }
    h->sup = s;
    snprintf(h->addr, sizeof h->addr, "%s", addr);
    h->port = port;
    h->daemon = MHD_start_daemon(
        MHD_USE_EPOLL | (strchr(addr, ':') ? MHD_USE_IPv6 : 0), 0, NULL, NULL,
        on_request, h,
        MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)HTTP_MAX_CONNECTIONS,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)HTTP_MAX_PER_ADDRESS,
        /* The request line and headers must fit here; MHD answers 414 or
         * 431 past it. */
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTP_MAX_REQUEST,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)HTTP_IDLE_TIMEOUT_S,
        MHD_OPTION_END);
    info = h->daemon ? MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_EPOLL_FD)
                     : NULL;
    if (!info) {
        snprintf(err, errlen, "cannot start the HTTP server on %s:%d", addr,
                 port);
        if (h->daemon)
            MHD_stop_daemon(h->daemon);
        close(fd);
        free(h);
        return NULL;
    }
    ev_io_init(&h->io_w, on_io, info->epoll_fd, EV_READ);
    ev_io_start(s->loop, &h->io_w);
    ev_timer_init(&h->timer_w, on_timer, 1., 0.);
    schedule(h);
    return h;
}

static void stop(struct http *h)
{
    if (!h)
        return;
    ev_io_stop(h->sup->loop, &h->io_w);
    ev_timer_stop(h->sup->loop, &h->timer_w);
    /* MHD closes the listening socket it was given. */
    MHD_stop_daemon(h->daemon);
    free(h);
}

int http_open(struct sup *s, char *err, size_t errlen)
{
    s->http = NULL;
    if (s->cfg.http_port == 0)
        return 0;
    s->http = start(s, s->cfg.http_addr, s->cfg.http_port, err, errlen);
    if (!s->http)
        return -1;
    log_msg(LOG_INFO, "http: serving /metrics, /api/status and the page on "
            "%s%s%s:%d", strchr(s->cfg.http_addr, ':') ? "[" : "",
            s->cfg.http_addr, strchr(s->cfg.http_addr, ':') ? "]" : "",
            s->cfg.http_port);
    return 0;
}

void http_reconfigure(struct sup *s)
{
    struct http *h = s->http;
    char err[512];

    if (h && h->port == s->cfg.http_port && strcmp(h->addr, s->cfg.http_addr) == 0)
        return;
    if (!h && s->cfg.http_port == 0)
        return;
    if (h && s->cfg.http_port == 0) {
        log_msg(LOG_INFO, "reload: http is off now");
        stop(h);
        s->http = NULL;
        return;
    }
    /* The old one goes first: the new address may be the same port on
     * another address that overlaps it (0.0.0.0). */
    stop(h);
    s->http = NULL;
    if (http_open(s, err, sizeof err) < 0)
        log_msg(LOG_ERROR, "reload: http: %s; the HTTP face is off until "
                "the next reload or restart", err);
}

void http_close(struct sup *s)
{
    stop(s->http);
    s->http = NULL;
}
