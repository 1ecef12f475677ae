#include "control.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "child.h"
#include "common/container.h"
#include "common/ctlproto.h"
#include "common/grow.h"
#include "common/log.h"
#include "sup.h"
#include "lib/unixsock.h"

static cJSON *reply_error(int code, const char *fmt, const char *arg)
{
    cJSON *r = cJSON_CreateObject();
    char msg[512];

    snprintf(msg, sizeof msg, fmt, arg);
    cJSON_AddBoolToObject(r, "ok", 0);
    cJSON_AddNumberToObject(r, "code", code);
    cJSON_AddStringToObject(r, "error", msg);
    return r;
}


/* The status files a status reply needs, each read once per reply: a
 * herd with thousands of remote nodes asks for the same local node's
 * links once per remote row. */
struct seen {
    const struct child *c;
    cJSON *status;              /* parsed NAME.status, or NULL */
};

struct status_ctx {
    struct seen *v;
    size_t n, cap;
};

/* The "links" array of c's NAME.status (owned by ctx), or NULL. */
static cJSON *links_of(struct status_ctx *ctx, const struct child *c)
{
    for (size_t i = 0; i < ctx->n; i++)
        if (ctx->v[i].c == c)
            return cJSON_GetObjectItemCaseSensitive(ctx->v[i].status, "links");
    if (GROW(ctx->v, ctx->cap, ctx->n + 1, 16) < 0)
        return NULL;
    ctx->v[ctx->n].c = c;
    ctx->v[ctx->n].status = child_status_file(c);
    return cJSON_GetObjectItemCaseSensitive(ctx->v[ctx->n++].status, "links");
}

static void ctx_free(struct status_ctx *ctx)
{
    for (size_t i = 0; i < ctx->n; i++)
        cJSON_Delete(ctx->v[i].status);
    free(ctx->v);
}

/* A node of herd.ini that runs on another host: a row with state
 * "remote" and, in "links_here", what each of our nodes linked to it
 * says about that link ("up", "down", ...; "stopped" when our node does
 * not run).  links_up/links_total count those links. */
static void add_remote_rows(struct sup *s, struct status_ctx *ctx,
                            cJSON *nodes)
{
    for (size_t i = 0; i < s->cfg.n_nodes; i++) {
        const struct node_conf *n = &s->cfg.nodes[i];
        struct child *c = sup_find(s, n->name);
        int up = 0, total = 0;

        if (c)
            continue;
        cJSON *o = ctlproto_row_idle(n, CTL_REMOTE);
        ctlproto_row_neighbors(o, &s->cfg, n);
        cJSON *here = cJSON_CreateArray();
        for (size_t k = 0; k < n->n_neighbors; k++) {
            const char *peer = s->cfg.nodes[n->neighbors[k]].name;
            struct child *pc = sup_find(s, peer);
            if (!pc)
                continue;       /* remote to remote: not ours to see */
            const char *state = "stopped";
            cJSON *e;
            if (pc->pid && pc->state != CTL_STOPPING) {
                state = "unknown";
                cJSON_ArrayForEach(e, links_of(ctx, pc)) {
                    cJSON *p = cJSON_GetObjectItemCaseSensitive(e, "peer");
                    cJSON *st = cJSON_GetObjectItemCaseSensitive(e, "state");
                    if (cJSON_IsString(p) && cJSON_IsString(st) &&
                        strcmp(p->valuestring, n->name) == 0)
                        state = st->valuestring;
                }
            }
            cJSON *one = cJSON_CreateObject();
            cJSON_AddStringToObject(one, "from", peer);
            cJSON_AddStringToObject(one, "state", state);
            cJSON_AddItemToArray(here, one);
            total++;
            up += strcmp(state, "up") == 0;
        }
        cJSON_AddNumberToObject(o, "links_up", up);
        cJSON_AddNumberToObject(o, "links_total", total);
        cJSON_AddNullToObject(o, "clients");
        cJSON_AddStringToObject(o, "want",
                                ctlproto_want_name(CTL_WANT_ELSEWHERE));
        cJSON_AddNullToObject(o, "reason");
        cJSON_AddItemToObject(o, "links_here", here);
        cJSON_AddItemToArray(nodes, o);
    }
}

static cJSON *status_json(struct sup *s)
{
    cJSON *r = cJSON_CreateObject(), *herd, *nodes;
    struct status_ctx ctx = {0};

    cJSON_AddBoolToObject(r, "ok", 1);
    herd = cJSON_AddObjectToObject(r, "herd");
    cJSON_AddStringToObject(herd, "config", s->config_path);
    cJSON_AddNumberToObject(herd, "supervisor_pid", s->pid);
    cJSON_AddNumberToObject(herd, "started", (long long)s->started);
    cJSON_AddStringToObject(herd, "log_dir", s->cfg.log_dir);
    cJSON_AddStringToObject(herd, "run_dir", s->cfg.run_dir);
    if (s->only_host)
        cJSON_AddStringToObject(herd, "host", s->only_host);
    else
        cJSON_AddNullToObject(herd, "host");
    cJSON_AddStringToObject(herd, "places_provider",
                            config_provider_name(s->cfg.provider));
    cJSON_AddBoolToObject(herd, "stopping", s->shutting_down);
    nodes = cJSON_AddArrayToObject(r, "nodes");
    for (struct child *c = s->children; c; c = c->next) {
        cJSON *o = child_json(c);
        if (c->kind == CHILD_PLACES) {
            cJSON_AddItemToObject(r, "places", o);
            continue;
        }
        int i = config_find_node(&s->cfg, c->name);
        ctlproto_row_neighbors(o, &s->cfg,
                             i >= 0 && c->want != WANT_GONE ? &s->cfg.nodes[i] : NULL);
        /* Per-link state, as the node itself last wrote it. */
        cJSON *links = cJSON_AddArrayToObject(o, "links"), *e;
        if (c->pid)
            cJSON_ArrayForEach(e, links_of(&ctx, c))
                cJSON_AddItemToArray(links, cJSON_Duplicate(e, 1));
        cJSON_AddItemToArray(nodes, o);
    }
    add_remote_rows(s, &ctx, nodes);
    ctx_free(&ctx);
    return r;
}

static cJSON *dispatch(struct sup *s, char *line)
{
    char *save = NULL, *verb = strtok_r(line, " \t\r\n", &save);
    char *arg = strtok_r(NULL, " \t\r\n", &save);
    struct child *c = NULL;

    if (!verb)
        return reply_error(100, "empty command%s", "");
    if (strcmp(verb, "status") == 0)
        return status_json(s);
    if (strcmp(verb, "reload") == 0 || strcmp(verb, "reload-dry") == 0) {
        if (s->shutting_down)
            return reply_error(4, "the herd is stopping%s", "");
        return sup_reload(s, strcmp(verb, "reload-dry") == 0);
    }
    if (strcmp(verb, "shutdown") == 0) {
        log_msg(LOG_INFO, "stop requested over the control socket");
        sup_shutdown(s);
        return status_json(s);
    }
    if (s->shutting_down)
        return reply_error(4, "the herd is stopping%s", "");
    if (arg) {
        c = sup_find(s, arg);
        int i = c ? -1 : config_find_node(&s->cfg, arg);
        if (!c && i >= 0) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s runs on host %s, not on this "
                     "machine; ask the herdctl there", arg,
                     s->cfg.nodes[i].host);
            return reply_error(4, "%s", msg);
        }
        if (!c)
            return reply_error(4, "no node named '%s' in this herd", arg);
    }
    if (strcmp(verb, "start") == 0) {
        for (struct child *x = s->children; x; x = x->next)
            if (x->want != WANT_GONE && (c == NULL || x == c)) {
                if (x->kind == CHILD_PLACES && c == NULL &&
                    x->state == CTL_ABSENT)
                    continue;
                if (x->pid == 0 || x->state == CTL_STOPPING)
                    log_msg(LOG_INFO, "%s: start requested", x->name);
                child_start(x);
            }
        return status_json(s);
    }
    if (!c)
        return reply_error(100, "%s needs a node name", verb);
    if (strcmp(verb, "stop") == 0) {
        log_msg(LOG_INFO, "%s: stop requested", c->name);
        child_stop(c);
        return status_json(s);
    }
    if (strcmp(verb, "restart") == 0) {
        log_msg(LOG_INFO, "%s: restart requested", c->name);
        child_restart(c);
        return status_json(s);
    }
    return reply_error(100, "unknown command '%s'", verb);
}

/* ---- connections, on the event loop ---------------------------------
 *
 * Each control connection is read and answered on the supervisor's loop,
 * never with a blocking call: a client that dribbles its line (or never
 * reads its answer) holds one slot until its deadline, and reaping and
 * restarts go on meanwhile.  At most CTL_MAX_CONNS are open at once;
 * beyond that accepting pauses (the kernel's backlog holds the rest). */

#define CTL_MAX_CONNS 32
#define CTL_LINE_MAX 1024       /* a command line, newline included */
#define CTL_DEADLINE_S 10.0     /* to send the line; again to read the reply */

struct ctl_conn {
    struct sup *s;
    struct ctl_conn *next;
    int fd;
    char line[CTL_LINE_MAX];
    size_t got;
    char *out;                  /* the reply, once there is one */
    size_t out_len, out_off;
    ev_io io;
    ev_timer deadline;
};

static struct ctl_conn *conns;
static int n_conns;


static void conn_close(struct ctl_conn *k)
{
    struct sup *s = k->s;

    for (struct ctl_conn **pp = &conns; *pp; pp = &(*pp)->next)
        if (*pp == k) {
            *pp = k->next;
            break;
        }
    ev_io_stop(s->loop, &k->io);
    ev_timer_stop(s->loop, &k->deadline);
    close(k->fd);
    free(k->out);
    free(k);
    if (n_conns-- == CTL_MAX_CONNS && s->ctl_fd >= 0)
        ev_io_start(s->loop, &s->ctl_w);    /* a slot is free again */
}

/* Send what the socket takes now; closed once all is sent or on error. */
static void conn_flush(struct ctl_conn *k)
{
    while (k->out_off < k->out_len) {
        ssize_t w = send(k->fd, k->out + k->out_off, k->out_len - k->out_off,
                         MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;             /* the loop says when it can take more */
        if (w <= 0) {
            conn_close(k);
            return;
        }
        k->out_off += (size_t)w;
    }
    conn_close(k);
}

/* Queue reply (consumed) and start sending it. */
static void conn_reply(struct ctl_conn *k, cJSON *reply)
{
    struct sup *s = k->s;
    char *text = reply ? cJSON_PrintUnformatted(reply) : NULL;

    cJSON_Delete(reply);
    if (!text) {
        conn_close(k);
        return;
    }
    k->out_len = strlen(text);
    text[k->out_len++] = '\n';  /* over the NUL: the length is kept */
    k->out = text;
    ev_io_stop(s->loop, &k->io);
    ev_io_set(&k->io, k->fd, EV_WRITE);
    ev_io_start(s->loop, &k->io);
    ev_timer_stop(s->loop, &k->deadline);
    ev_timer_set(&k->deadline, CTL_DEADLINE_S, 0.);
    ev_timer_start(s->loop, &k->deadline);
    conn_flush(k);
}

/* The line is in (or the client stopped sending): check who it is, act. */
static void conn_serve(struct ctl_conn *k)
{
    struct ucred cred;
    socklen_t len = sizeof cred;
    int have_line = memchr(k->line, '\n', k->got) != NULL;

    k->line[k->got] = '\0';
    /* Checked after the request is read (bounded, and never acted on), so
     * the refusal is not lost to a reset from closing on unread bytes. */
    if (getsockopt(k->fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
        log_msg(LOG_WARN, "control: refused a client whose credentials "
                "cannot be read: %s", strerror(errno));
        conn_reply(k, reply_error(4, "permission denied%s", ""));
        return;
    }
    if (cred.uid != geteuid()) {
        log_msg(LOG_WARN, "control: refused a client of uid %d",
                (int)cred.uid);
        conn_reply(k, reply_error(4, "permission denied%s", ""));
        return;
    }
    if (!have_line) {
        conn_reply(k, reply_error(100, "incomplete command%s", ""));
        return;
    }
    conn_reply(k, dispatch(k->s, k->line));
}

static void on_conn_io(struct ev_loop *loop, ev_io *w, int revents)
{
    struct ctl_conn *k = container_of(w, struct ctl_conn, io);

    (void)loop;
    if (k->out) {
        if (revents & EV_WRITE)
            conn_flush(k);
        return;
    }
    for (;;) {
        ssize_t r = read(k->fd, k->line + k->got, sizeof k->line - 1 - k->got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (r <= 0) {
            conn_serve(k);      /* EOF or error: whatever came is all */
            return;
        }
        k->got += (size_t)r;
        if (memchr(k->line, '\n', k->got) || k->got == sizeof k->line - 1) {
            conn_serve(k);
            return;
        }
    }
}

static void on_conn_deadline(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct ctl_conn *k = container_of(w, struct ctl_conn, deadline);

    (void)loop;
    (void)revents;
    if (k->out) {
        conn_close(k);          /* it never read its answer */
        return;
    }
    log_msg(LOG_WARN, "control: a client sent no complete command within "
            "%.0f s; dropped", CTL_DEADLINE_S);
    conn_close(k);
}

static void on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
    struct sup *s = container_of(w, struct sup, ctl_w);

    (void)revents;
    for (int i = 0; i < 16; i++) {
        if (n_conns >= CTL_MAX_CONNS) {
            ev_io_stop(loop, &s->ctl_w);    /* conn_close restarts it */
            return;
        }
        int fd = accept4(s->ctl_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0)
            return;
        struct ctl_conn *k = calloc(1, sizeof *k);
        if (!k) {
            close(fd);
            return;
        }
        k->s = s;
        k->fd = fd;
        k->next = conns;
        conns = k;
        n_conns++;
        ev_io_init(&k->io, on_conn_io, fd, EV_READ);
        ev_io_start(loop, &k->io);
        ev_timer_init(&k->deadline, on_conn_deadline, CTL_DEADLINE_S, 0.);
        ev_timer_start(loop, &k->deadline);
    }
}

int control_open(struct sup *s, char *err, size_t errlen)
{
    s->ctl_fd = unixsock_listen(s->sock_path);
    if (s->ctl_fd < 0) {
        snprintf(err, errlen, "cannot listen on %s: %s", s->sock_path,
                 strerror(errno));
        return -1;
    }
    struct stat st;
    if (stat(s->sock_path, &st) == 0) {
        s->sock_dev = st.st_dev;
        s->sock_ino = st.st_ino;
    }
    ev_io_init(&s->ctl_w, on_accept, s->ctl_fd, EV_READ);
    if (n_conns < CTL_MAX_CONNS)
        ev_io_start(s->loop, &s->ctl_w);
    return 0;
}

int control_reopen(struct sup *s, char *err, size_t errlen)
{
    /* Connections already open carry on; only the listener is new. */
    if (s->ctl_fd >= 0) {
        ev_io_stop(s->loop, &s->ctl_w);
        close(s->ctl_fd);
        s->ctl_fd = -1;
    }
    return control_open(s, err, errlen);
}

void control_close(struct sup *s)
{
    /* Answers still on their way get one last try (a shutdown's). */
    while (conns) {
        struct ctl_conn *k = conns;
        if (k->out && k->out_off < k->out_len)
            (void)!send(k->fd, k->out + k->out_off, k->out_len - k->out_off,
                        MSG_NOSIGNAL | MSG_DONTWAIT);
        conn_close(k);
    }
    if (s->ctl_fd < 0)
        return;
    ev_io_stop(s->loop, &s->ctl_w);
    close(s->ctl_fd);
    s->ctl_fd = -1;
    unlink(s->sock_path);
}

cJSON *control_status(struct sup *s)
{
    return status_json(s);
}
