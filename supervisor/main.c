/* herd-supervisor: starts every node of herd.ini (and the places
 * emulator when the provider is local), restarts the ones that die, stops
 * them gracefully, applies an edited herd.ini on reload.  herdctl talks to
 * it over run_dir/supervisor.sock.
 *
 * Exit codes: 0 stopped cleanly, 100 usage or herd.ini error, 111 system
 * failure (including "already running"). */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "child.h"
#include "common/fsutil.h"
#include "common/log.h"
#include "control.h"
#include "common/hosts.h"
#include "lib/procs.h"
#include "http.h"
#include "watch.h"
#include "sup.h"

#include "common/container.h"
#include "common/rlimit.h"

static struct sup sup_state;

static void notify(struct sup *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Tell the herdctl that started us how it went; the first word is
 * READY or an exit code. */
static void notify(struct sup *s, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    int n;

    if (s->notify_fd < 0)
        return;
    va_start(ap, fmt);
    n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n > 0 && write(s->notify_fd, msg, (size_t)n < sizeof msg ? (size_t)n
                                                                : sizeof msg - 1) < 0) {
        /* herdctl went away; nothing to tell */
    }
    close(s->notify_fd);
    s->notify_fd = -1;
}

static void die(struct sup *s, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4), noreturn));

static void die(struct sup *s, int code, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "herd-supervisor: %s%s\n", code == 111 ? "fatal: " : "",
            msg);
    log_msg(LOG_ERROR, "%s", msg);
    log_close();
    notify(s, "%d %s\n", code, msg);
    exit(code);
}

static void on_child(struct ev_loop *loop, ev_child *w, int revents)
{
    struct sup *s = container_of(w, struct sup, child_w);

    (void)loop;
    (void)revents;
    sup_reaped(s, w->rpid, w->rstatus);
}

static void on_stop_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
    struct sup *s = &sup_state;

    (void)loop;
    (void)revents;
    if (s->shutting_down && w->signum == SIGINT) {
        /* A second Ctrl-C: no more waiting. */
        log_msg(LOG_WARN, "second interrupt: SIGKILL to every child");
        for (struct child *c = s->children; c; c = c->next)
            child_kill(c);
        return;
    }
    log_msg(LOG_INFO, "%s received", strsignal(w->signum));
    sup_shutdown(s);
}

static void on_hup(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)loop;
    (void)w;
    (void)revents;
    log_msg(LOG_INFO, "SIGHUP: reloading herd.ini");
    cJSON_Delete(sup_reload(&sup_state, 0));
}

static void on_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct sup *s = container_of(w, struct sup, tick_w);

    (void)loop;
    (void)revents;
    for (struct child *c = s->children; c; c = c->next)
        child_tick(c);
    sup_check_run_dir(s);
    log_flush();
}

/* "a, b, c": the distinct hosts of herd.ini, for an error message. */
static void list_hosts(const struct herd_config *cfg, char *buf, size_t cap)
{
    size_t used = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < cfg->n_nodes; i++) {
        size_t k;
        for (k = 0; k < i; k++)
            if (strcmp(cfg->nodes[k].host, cfg->nodes[i].host) == 0)
                break;
        if (k < i)
            continue;
        int m = snprintf(buf + used, cap - used, "%s%s", used ? ", " : "",
                         cfg->nodes[i].host);
        if (m < 0 || (size_t)m >= cap - used)
            break;
        used += (size_t)m;
    }
}

static char *sibling(const char *self_dir, const char *env, const char *name)
{
    const char *over = getenv(env);
    char buf[PATH_MAX];

    if (over && *over)
        return strdup(over);
    snprintf(buf, sizeof buf, "%s/%s", self_dir, name);
    return strdup(buf);
}

static void note_leftover(const char *name, pid_t pid, const char *what)
{
    log_msg(LOG_WARN, "%s: pid %d %s", name, (int)pid, what);
}

static void usage(void)
{
    fprintf(stderr,
            "usage: herd-supervisor -c herd.ini [--host ADDR] [--notify-fd N]\n"
            "       herd-supervisor -c herd.ini [--host ADDR] --http-only\n"
            "Runs the nodes of herd.ini that belong on this machine in the "
            "foreground:\nwith --host, those whose host is ADDR; without, "
            "those whose host is one of\nthis machine's addresses (every "
            "node when none sets host=).  The places\nemulator runs here "
            "when the provider is local and any node does.  herdctl\nis "
            "the usual way to start it.  --http-only starts none: it serves "
            "the HTTP face\n([herd] http) for nodes something else runs "
            "(systemd), seen through their\nstatus files.\n"
            "exit codes: 0 stopped cleanly, 100 usage or herd.ini error, "
            "111 system failure\n");
    exit(100);
}

int main(int argc, char **argv)
{
    struct sup *s = &sup_state;
    const char *config = NULL;
    char err[2048], self[PATH_MAX], real[PATH_MAX];
    ssize_t n;
    int http_only = 0;

    /* As many descriptors as the system allows (issue 10). */
    rlimit_raise_nofile();
    s->notify_fd = -1;
    s->ctl_fd = -1;
    s->lock_fd = -1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-c") == 0 && i + 1 < argc)
            config = argv[++i];
        else if (strcmp(argv[i], "--host") == 0 && i + 1 < argc && argv[i + 1][0])
            s->only_host = argv[++i];
        else if (strcmp(argv[i], "--notify-fd") == 0 && i + 1 < argc)
            s->notify_fd = atoi(argv[++i]);
        else if (strcmp(argv[i], "--http-only") == 0)
            http_only = 1;
        else
            usage();
    }
    if (!config)
        usage();
    if (s->notify_fd >= 0)
        fcntl(s->notify_fd, F_SETFD, FD_CLOEXEC);
    signal(SIGPIPE, SIG_IGN);

    if (!realpath(config, real))
        die(s, 100, "%s: cannot open: %s", config, strerror(errno));
    if (config_load(real, &s->cfg, err, sizeof err) < 0) {
        /* Name the file as the user gave it. */
        const char *msg = err;
        if (strncmp(err, real, strlen(real)) == 0)
            msg = err + strlen(real);
        die(s, 100, "%s%s", msg == err ? "" : config, msg);
    }
    s->config_path = strdup(real);
    size_t n_here;
    /* Static: reachable from a die() anywhere below (leak checkers). */
    static int *here;
    here = sup_nodes_here(s, &s->cfg, &n_here);
    if (!here)
        die(s, 111, "out of memory");
    if (n_here == 0) {
        char hosts[1024];
        list_hosts(&s->cfg, hosts, sizeof hosts);
        free(here);
        if (s->only_host)
            die(s, 100, "%s: no node has host %s (its hosts: %s)", config,
                s->only_host, hosts);
        die(s, 100, "%s: no node is on this machine (its hosts: %s; none is "
            "an address of this machine); --host ADDR picks one", config,
            hosts);
    }
    s->pid = getpid();
    s->started = (double)time(NULL);
    if (http_only) {
        /* The face alone, for a herd systemd runs (supervisor/watch.h):
         * no lock, socket or pid file, which belong to a supervisor. */
        fs_mkdir_p(s->cfg.log_dir, 0755);
        char *hl = config_log_path(&s->cfg, "http");
        if (!hl || log_open(hl, "http", (size_t)s->cfg.log_max_mb * 1024 * 1024,
                            s->cfg.log_keep, 0) < 0)
            die(s, 111, "cannot open %s: %s", hl ? hl : "the log",
                strerror(errno));
        free(hl);
        int code = watch_run(s, here, sup_wants_places(&s->cfg, n_here));
        free(here);
        log_close();
        config_free(&s->cfg);
        free(s->config_path);
        return code;
    }

    n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        die(s, 111, "cannot find my own binary: %s", strerror(errno));
    self[n] = '\0';
    *strrchr(self, '/') = '\0';
    s->node_bin = sibling(self, "HERD_NODE_BIN", "herd-node");
    s->places_bin = sibling(self, "HERD_PLACES_BIN", "herd-places");

    fs_mkdir_p(s->cfg.run_dir, 0700);
    fs_mkdir_p(s->cfg.log_dir, 0755);
    s->sock_path = config_run_path(&s->cfg, "supervisor.sock");
    s->pid_path = config_run_path(&s->cfg, "supervisor.pid");
    s->state_path = config_run_path(&s->cfg, "supervisor.state");
    s->lock_path = config_run_path(&s->cfg, "supervisor.lock");
    char *log_path = config_log_path(&s->cfg, "supervisor");
    if (log_open(log_path, "supervisor",
                 (size_t)s->cfg.log_max_mb * 1024 * 1024, s->cfg.log_keep,
                 0) < 0)
        die(s, 111, "cannot open %s: %s", log_path, strerror(errno));
    free(log_path);

    /* One supervisor per run_dir.  The lock dies with its holder, so a
     * killed supervisor never blocks the next one. */
    if (sup_take_lock(s) < 0 && errno != EWOULDBLOCK)
        die(s, 111, "cannot open the lock in %s: %s", s->cfg.run_dir,
            strerror(errno));
    if (s->lock_fd < 0) {
        char pid[32] = "?";
        int fd = open(s->pid_path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd >= 0) {
            ssize_t r = read(fd, pid, sizeof pid - 1);
            pid[r > 0 ? r : 0] = '\0';
            pid[strcspn(pid, "\n")] = '\0';
            close(fd);
        }
        die(s, 111, "a supervisor already runs for %s (pid %s)",
            s->cfg.run_dir, pid);
    }
    /* The lock is only as good as its file: with run_dir removed under a
     * live supervisor (until it notices), a second one would get a fresh
     * lock.  The process table still tells. */
    pid_t other;
    if (procs_find_config("herd-supervisor", s->config_path, s->pid,
                          &other, 1) > 0)
        die(s, 111, "a supervisor already runs for %s (pid %d)",
            s->config_path, (int)other);
    log_msg(LOG_INFO, "starting, pid %d, config %s%s%s", (int)s->pid,
            s->config_path, s->only_host ? ", host " : "",
            s->only_host ? s->only_host : "");

    /* Children a killed supervisor left behind (say a node that was
     * stopped with SIGSTOP and so missed its death signal). */
    int left = procs_take_over(s->state_path, s->cfg.stop_grace_s,
                               note_leftover);
    if (left)
        log_msg(LOG_WARN, "stopped %d process(es) left by a previous "
                "supervisor", left);

    s->loop = ev_default_loop(0);
    if (!s->loop)
        die(s, 111, "cannot start libev");
    ev_signal_init(&s->term_w, on_stop_signal, SIGTERM);
    ev_signal_init(&s->int_w, on_stop_signal, SIGINT);
    ev_signal_init(&s->hup_w, on_hup, SIGHUP);
    ev_signal_start(s->loop, &s->term_w);
    ev_signal_start(s->loop, &s->int_w);
    ev_signal_start(s->loop, &s->hup_w);
    ev_child_init(&s->child_w, on_child, 0, 0);
    ev_child_start(s->loop, &s->child_w);
    ev_timer_init(&s->tick_w, on_tick, 0.25, 0.25);
    ev_timer_start(s->loop, &s->tick_w);

    if (control_open(s, err, sizeof err) < 0)
        die(s, 111, "%s", err);
    if (http_open(s, err, sizeof err) < 0)
        die(s, 111, "%s", err);
    char pidtext[32];
    snprintf(pidtext, sizeof pidtext, "%d\n", (int)s->pid);
    if (fs_write_atomic(s->pid_path, pidtext, strlen(pidtext), 0600) < 0)
        die(s, 111, "cannot write %s: %s", s->pid_path, strerror(errno));
    sup_save_state(s);

    struct child **tail = &s->children;
    if (sup_wants_places(&s->cfg, n_here)) {
        *tail = child_new(s, CHILD_PLACES, "places", "127.0.0.1",
                          s->cfg.places_port);
        if (*tail)
            tail = &(*tail)->next;
    }
    for (size_t i = 0; i < s->cfg.n_nodes; i++) {
        const struct node_conf *nc = &s->cfg.nodes[i];
        if (!here[i]) {
            log_msg(LOG_INFO, "%s: on host %s, not this machine's; not "
                    "started here", nc->name, nc->host);
            continue;
        }
        *tail = child_new(s, CHILD_NODE, nc->name, nc->host, nc->port);
        if (*tail)
            tail = &(*tail)->next;
    }
    free(here);
    for (struct child *c = s->children; c; c = c->next)
        child_start(c);
    notify(s, "READY %d\n", (int)s->pid);

    ev_run(s->loop, 0);

    log_msg(LOG_INFO, "every child has stopped; exiting");
    http_close(s);
    control_close(s);
    unlink(s->pid_path);
    unlink(s->state_path);
    while (s->children) {
        struct child *c = s->children;
        s->children = c->next;
        child_free(c);
    }
    config_free(&s->cfg);
    free(s->config_path);
    free(s->node_bin);
    free(s->places_bin);
    free(s->sock_path);
    free(s->pid_path);
    free(s->state_path);
    free(s->lock_path);
    sup_kept_free(s);
    log_close();
    close(s->lock_fd);
    return 0;
}
