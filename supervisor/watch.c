#include "watch.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "child.h"
#include "common/ctlproto.h"
#include "common/log.h"
#include "http.h"
#include "lib/procs.h"
#include "sup.h"

/* A status file past this is not read (a node writes far less). */
#define WATCH_STATUS_MAX (64u << 20)

static char *read_small(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat st;
    char *text;
    size_t got = 0;

    if (fd < 0)
        return NULL;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size < 0 ||
        (unsigned long long)st.st_size > WATCH_STATUS_MAX) {
        close(fd);
        return NULL;
    }
    text = malloc((size_t)st.st_size + 1);
    while (text && got < (size_t)st.st_size) {
        ssize_t r = read(fd, text + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    if (text)
        text[got] = '\0';
    return text;
}

/* pid runs and is a herd-node (not a stranger that took a dead node's
 * pid). */
static int alive(pid_t pid)
{
    int st = pid > 0 ? procs_state(pid) : 0;
    char path[64], comm[32] = "";
    FILE *f;

    if (st == 0 || st == 'Z' || st == 'X')
        return 0;
    snprintf(path, sizeof path, "/proc/%d/comm", (int)pid);
    f = fopen(path, "re");
    if (!f)
        return 0;
    if (!fgets(comm, sizeof comm, f))
        comm[0] = '\0';
    fclose(f);
    comm[strcspn(comm, "\n")] = '\0';
    return strcmp(comm, "herd-node") == 0;
}

static void watch_node(struct child *c)
{
    char *base = config_run_path(&c->sup->cfg, c->name), path[4096], *text;
    cJSON *j = NULL, *pid, *started;
    pid_t p = 0;

    if (base) {
        snprintf(path, sizeof path, "%s.status", base);
        free(base);
        text = read_small(path);
        j = text ? cJSON_Parse(text) : NULL;
        free(text);
    }
    pid = cJSON_GetObjectItemCaseSensitive(j, "pid");
    if (cJSON_IsNumber(pid) && pid->valuedouble > 0 &&
        pid->valuedouble < 4194305 && alive((pid_t)pid->valuedouble))
        p = (pid_t)pid->valuedouble;
    if (p && p != c->pid) {
        /* A node we have not seen: the first one is a start, each next
         * one a restart (systemd's, or the operator's). */
        c->restarts++;
        c->pid = p;
        started = cJSON_GetObjectItemCaseSensitive(j, "started");
        c->spawned_wall = cJSON_IsNumber(started) ? started->valuedouble : 0;
        log_msg(LOG_INFO, "%s: pid %d is serving on port %d", c->name, (int)p,
                c->port);
    }
    if (p) {
        cJSON *up = cJSON_GetObjectItemCaseSensitive(j, "links_up");
        cJSON *total = cJSON_GetObjectItemCaseSensitive(j, "links_total");
        cJSON *clients = cJSON_GetObjectItemCaseSensitive(j, "clients");
        c->state = CTL_RUNNING;
        c->links_up = cJSON_IsNumber(up) ? (int)up->valuedouble : -1;
        c->links_total = cJSON_IsNumber(total) ? (int)total->valuedouble : -1;
        c->clients = cJSON_IsNumber(clients) ? (int)clients->valuedouble : -1;
    } else {
        if (c->pid)
            log_msg(LOG_INFO, "%s: pid %d is gone", c->name, (int)c->pid);
        c->pid = 0;
        c->state = CTL_STOPPED;
        c->links_up = c->links_total = c->clients = -1;
    }
    cJSON_Delete(j);
}

static void watch_places(struct child *c)
{
    struct sockaddr_in a;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), ok = 0;

    if (fd >= 0) {
        memset(&a, 0, sizeof a);
        a.sin_family = AF_INET;
        a.sin_port = htons((uint16_t)c->port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
        close(fd);
    }
    c->state = ok ? CTL_RUNNING : CTL_STOPPED;
}

static void on_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct sup *s = (struct sup *)(void *)((char *)w - offsetof(struct sup, tick_w));

    (void)loop;
    (void)revents;
    for (struct child *c = s->children; c; c = c->next) {
        if (c->kind == CHILD_NODE)
            watch_node(c);
        else
            watch_places(c);
    }
    log_flush();
}

static void on_stop(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)revents;
    log_msg(LOG_INFO, "stopping on signal %d", w->signum);
    ev_break(loop, EVBREAK_ALL);
}

int watch_run(struct sup *s, const int *here, int with_places)
{
    struct child **tail = &s->children;
    char err[1024];

    if (with_places) {
        *tail = child_new(s, CHILD_PLACES, "places", "127.0.0.1",
                          s->cfg.places_port);
        if (*tail)
            tail = &(*tail)->next;
    }
    for (size_t i = 0; i < s->cfg.n_nodes; i++) {
        const struct node_conf *nc = &s->cfg.nodes[i];
        if (!here[i])
            continue;
        *tail = child_new(s, CHILD_NODE, nc->name, nc->host, nc->port);
        if (*tail)
            tail = &(*tail)->next;
    }
    for (struct child *c = s->children; c; c = c->next) {
        c->want = WANT_UP;      /* systemd's to keep up; shown as "up" */
        c->restarts = -1;       /* the first pid seen is no restart */
    }
    s->loop = ev_default_loop(0);
    if (!s->loop) {
        fprintf(stderr, "herd-supervisor: fatal: cannot start libev\n");
        return 111;
    }
    if (s->cfg.http_port == 0) {
        fprintf(stderr, "herd-supervisor: --http-only, but %s sets http = "
                "off\n", s->config_path);
        return 100;
    }
    if (http_open(s, err, sizeof err) < 0) {
        fprintf(stderr, "herd-supervisor: fatal: %s\n", err);
        log_msg(LOG_ERROR, "%s", err);
        return 111;
    }
    ev_signal_init(&s->term_w, on_stop, SIGTERM);
    ev_signal_init(&s->int_w, on_stop, SIGINT);
    ev_signal_start(s->loop, &s->term_w);
    ev_signal_start(s->loop, &s->int_w);
    ev_timer_init(&s->tick_w, on_tick, 0., 0.25);
    ev_timer_start(s->loop, &s->tick_w);
    log_msg(LOG_INFO, "http-only: watching the nodes of this machine "
            "through their status files");
    log_flush();
    ev_run(s->loop, 0);
    http_close(s);
    while (s->children) {
        struct child *c = s->children;
        s->children = c->next;
        child_free(c);
    }
    log_msg(LOG_INFO, "stopped");
    return 0;
}
