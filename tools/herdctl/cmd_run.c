/* start, stop, restart, reload: commands that change what runs. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/ctlproto.h"
#include "common/fsutil.h"
#include "lib/procs.h"
#include "herdctl.h"

#define SETTLE_S 30.0           /* how long start/restart wait for nodes */

static const char *str(cJSON *o, const char *key)
{
    cJSON *v = cJSON_GetObjectItem(o, key);
    return cJSON_IsString(v) ? v->valuestring : "";
}

static pid_t pid_of(cJSON *o)
{
    cJSON *v = cJSON_GetObjectItem(o, "pid");
    return cJSON_IsNumber(v) ? (pid_t)v->valuedouble : 0;
}

/* Is this node done moving: running, or given up on?  A node that is
 * wanted down counts as settled once it has stopped. */
static int settled(cJSON *n)
{
    enum ctl_state st = ctlproto_row_state(n);

    if (st == CTL_REMOTE)
        return 1;               /* another machine's; not ours to wait for */
    if (ctlproto_row_want(n) == CTL_WANT_DOWN)
        return st == CTL_STOPPED;
    return st == CTL_RUNNING || st == CTL_FATAL || st == CTL_ABSENT;
}

/* Poll status until every node named in names (NULL = all) has settled;
 * returns the last status (caller frees), or NULL if the supervisor went
 * away. */
static cJSON *wait_settled(struct ctl *c, const char *const *names,
                           size_t n_names, double timeout)
{
    double deadline = ctl_now() + timeout;
    cJSON *st = NULL;

    for (;;) {
        cJSON_Delete(st);
        if (ctl_request(c, "status", &st) != 0)
            return NULL;
        int done = 1;
        cJSON *n, *nodes = cJSON_GetObjectItem(st, "nodes");
        cJSON_ArrayForEach(n, nodes) {
            int wanted = names == NULL;
            for (size_t i = 0; i < n_names && !wanted; i++)
                wanted = strcmp(names[i], str(n, "name")) == 0;
            if (wanted && !settled(n))
                done = 0;
        }
        /* The whole herd includes the places emulator: a WHATSAT right
         * after `herdctl start` should find it serving. */
        cJSON *pl = cJSON_GetObjectItem(st, "places");
        if (names == NULL && pl && !settled(pl))
            done = 0;
        if (done || ctl_now() > deadline)
            return st;
        ctl_sleep_ms(100);
    }
}

/* Print the nodes that do not run, with why; returns EX_OK / EX_NOTALL. */
static int report_nodes(cJSON *st, const char *const *names, size_t n_names)
{
    int running = 0, total = 0;
    cJSON *n, *nodes = cJSON_GetObjectItem(st, "nodes");

    cJSON_ArrayForEach(n, nodes) {
        int wanted = names == NULL;
        for (size_t i = 0; i < n_names && !wanted; i++)
            wanted = strcmp(names[i], str(n, "name")) == 0;
        if (!wanted || ctlproto_row_state(n) == CTL_REMOTE)
            continue;
        total++;
        if (ctlproto_row_state(n) == CTL_RUNNING) {
            running++;
            continue;
        }
        cJSON *reason = cJSON_GetObjectItem(n, "reason");
        fprintf(stderr, "herdctl: %s is %s%s%s\n", str(n, "name"),
                str(n, "state"), cJSON_IsString(reason) ? ": " : "",
                cJSON_IsString(reason) ? reason->valuestring : "");
    }
    cJSON *pl = cJSON_GetObjectItem(st, "places");
    int places_fatal = 0;
    if (pl && ctlproto_row_state(pl) != CTL_RUNNING) {
        cJSON *reason = cJSON_GetObjectItem(pl, "reason");
        /* Fatal (say its data file is missing) fails the start: WHATSAT
         * cannot work.  Absent (not installed) stays a warning. */
        places_fatal = names == NULL && ctlproto_row_state(pl) == CTL_FATAL;
        fprintf(stderr, "herdctl: %sthe places emulator is %s%s%s%s\n",
                places_fatal ? "" : "warning: ", str(pl, "state"),
                cJSON_IsString(reason) ? ": " : "",
                cJSON_IsString(reason) ? reason->valuestring : "",
                places_fatal ? "; WHATSAT cannot work" : "");
    }
    return running == total && !places_fatal ? EX_OK : EX_NOTALL;
}

static int count_running(cJSON *st, int *total, int *remote)
{
    int running = 0;
    cJSON *n;

    *total = *remote = 0;
    cJSON_ArrayForEach(n, cJSON_GetObjectItem(st, "nodes")) {
        if (ctlproto_row_state(n) == CTL_REMOTE) {
            (*remote)++;
            continue;
        }
        (*total)++;
        running += ctlproto_row_state(n) == CTL_RUNNING;
    }
    return running;
}

static char *supervisor_bin(void)
{
    const char *over = getenv("HERD_SUPERVISOR_BIN");
    char self[PATH_MAX];
    ssize_t n;

    if (over && *over)
        return strdup(over);
    n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return strdup("herd-supervisor");
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    snprintf(slash + 1, sizeof self - (size_t)(slash + 1 - self),
             "herd-supervisor");
    return strdup(self);
}

/* Run the supervisor; returns its pid, or -1 after printing why.  With
 * daemon, it is detached (new session, stdio to /dev/null and its log)
 * and reparented away from us. */
static pid_t spawn_supervisor(struct ctl *c, int daemon, int *code)
{
    char *bin = supervisor_bin(), fdtext[16], msg[2048];
    char config[PATH_MAX];
    int p[2];
    pid_t pid;
    size_t got = 0;

    *code = EX_SYS;
    if (!realpath(c->config_path, config))
        snprintf(config, sizeof config, "%s", c->config_path);
    if (pipe2(p, O_CLOEXEC) < 0) {
        fprintf(stderr, "herdctl: pipe: %s\n", strerror(errno));
        free(bin);
        return -1;
    }
    fs_mkdir_p(c->cfg.log_dir, 0755);
    char *log = config_log_path(&c->cfg, "supervisor");
    pid = fork();
    if (pid < 0) {
        fprintf(stderr, "herdctl: fork: %s\n", strerror(errno));
        free(bin);
        free(log);
        return -1;
    }
    if (pid == 0) {
        close(p[0]);
        if (daemon) {
            setsid();
            pid_t again = fork();
            if (again != 0)
                _exit(again < 0 ? 111 : 0);
            if (chdir("/") < 0)
                _exit(111);
            int null = open("/dev/null", O_RDWR);
            int out = log ? fs_open_append(log, 0640) : -1;
            dup2(null, 0);
            dup2(null, 1);
            /* Whatever the supervisor writes to stderr (a crash report
             * too) lands in its log. */
            dup2(out >= 0 ? out : null, 2);
            if (null > 2)
                close(null);
            if (out > 2)
                close(out);
        }
        fcntl(p[1], F_SETFD, 0);
        snprintf(fdtext, sizeof fdtext, "%d", p[1]);
        if (c->only_host)
            execl(bin, "herd-supervisor", "-c", config, "--host", c->only_host,
                  "--notify-fd", fdtext, (char *)NULL);
        else
            execl(bin, "herd-supervisor", "-c", config, "--notify-fd", fdtext,
                  (char *)NULL);
        dprintf(p[1], "111 cannot run %s: %s\n", bin, strerror(errno));
        _exit(111);
    }
    close(p[1]);
    free(log);
    if (daemon)
        waitpid(pid, NULL, 0);
    for (;;) {
        ssize_t r = read(p[0], msg + got, sizeof msg - 1 - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
        if (got == sizeof msg - 1)
            break;
    }
    close(p[0]);
    msg[got] = '\0';
    msg[strcspn(msg, "\n")] = '\0';
    free(bin);
    if (strncmp(msg, "READY ", 6) == 0)
        return daemon ? (pid_t)atoi(msg + 6) : pid;
    if (!daemon)
        waitpid(pid, NULL, 0);
    if (got == 0) {
        fprintf(stderr, "herdctl: the supervisor exited before it was ready; "
                "see %s/supervisor.log\n", c->cfg.log_dir);
        return -1;
    }
    char *rest = msg;
    long v = strtol(msg, &rest, 10);
    *code = v == EX_USAGE ? EX_USAGE : EX_SYS;
    fprintf(stderr, "herdctl: %s\n", *rest == ' ' ? rest + 1 : rest);
    return -1;
}

static volatile sig_atomic_t interrupted;

static void on_interrupt(int sig)
{
    (void)sig;
    interrupted = 1;
}

static int start_foreground(struct ctl *c)
{
    struct log_mark *mark = logs_mark(c);
    struct sigaction sa;
    int code;

    /* Ctrl-C reaches the supervisor too (same process group) and it stops
     * the herd; we keep showing the logs until it is gone. */
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_interrupt;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    pid_t pid = spawn_supervisor(c, 0, &code);
    if (pid < 0) {
        free(mark);
        return code;
    }
    if (c->tty)
        fprintf(stderr, "herdctl: herd running in the foreground "
                "(supervisor pid %d); Ctrl-C stops it\n", (int)pid);
    int status = logs_follow_until(c, mark, pid);   /* frees mark */
    if (WIFEXITED(status))
        return WEXITSTATUS(status) == 0 ? EX_OK : WEXITSTATUS(status);
    return EX_SYS;
}

int cmd_start(struct ctl *c, const char *node, int foreground)
{
    cJSON *st = NULL;
    int rc, total, remote;
    char cmd[128];

    ctl_check_perms(c);
    if (node) {
        if (config_find_node(&c->cfg, node) < 0 && strcmp(node, "places")) {
            fprintf(stderr, "herdctl: no node named '%s' in %s\n", node,
                    c->config_path);
            return EX_DOWN;
        }
        snprintf(cmd, sizeof cmd, "start %s", node);
        rc = ctl_request(c, cmd, &st);
        if (rc == EX_DOWN)
            fprintf(stderr, "herdctl: the herd is not running (herdctl "
                    "start starts it)\n");
        if (rc)
            return rc;
        if ((rc = ctl_refused(st))) {
            cJSON_Delete(st);
            return rc;
        }
        cJSON_Delete(st);
        const char *names[] = {node};
        st = wait_settled(c, names, 1, SETTLE_S);
        if (!st)
            return EX_DOWN;
        rc = report_nodes(st, names, 1);
        if (rc == EX_OK)
            printf("%s: running, pid %d\n", node,
                   (int)pid_of(ctl_find_node(st, node)));
        cJSON_Delete(st);
        return rc;
    }

    rc = ctl_request(c, "status", &st);
    if (rc == 0) {
        cJSON *herd = cJSON_GetObjectItem(st, "herd");
        cJSON *pid = cJSON_GetObjectItem(herd, "supervisor_pid");
        if (foreground) {
            fprintf(stderr, "herdctl: the herd already runs (supervisor pid "
                    "%d); `herdctl logs -f` shows its logs\n",
                    cJSON_IsNumber(pid) ? (int)pid->valuedouble : 0);
            cJSON_Delete(st);
            return EX_SYS;
        }
        printf("herd already running (supervisor pid %d)\n",
               cJSON_IsNumber(pid) ? (int)pid->valuedouble : 0);
        cJSON *host = cJSON_GetObjectItem(herd, "host");
        const char *running_host = cJSON_IsString(host) ? host->valuestring
                                                        : NULL;
        if (c->only_host && (!running_host ||
                             strcmp(running_host, c->only_host) != 0))
            fprintf(stderr, "herdctl: warning: it runs the nodes of %s%s, "
                    "not --host %s; stop it first to change that\n",
                    running_host ? "host " : "this machine",
                    running_host ? running_host : "", c->only_host);
        cJSON_Delete(st);
        /* Bring back whatever was stopped or had failed. */
        if ((rc = ctl_request(c, "start", &st)))
            return rc;
        cJSON_Delete(st);
    } else if (rc == EX_DOWN) {
        if (foreground)
            return start_foreground(c);
        pid_t pid = spawn_supervisor(c, 1, &rc);
        if (pid < 0)
            return rc;
        printf("herd started: supervisor pid %d\n", (int)pid);
    } else {
        return rc;
    }
    st = wait_settled(c, NULL, 0, SETTLE_S);
    if (!st) {
        fprintf(stderr, "herdctl: the supervisor stopped; see %s/"
                "supervisor.log\n", c->cfg.log_dir);
        return EX_SYS;
    }
    rc = report_nodes(st, NULL, 0);
    int running = count_running(st, &total, &remote);
    if (remote)
        printf("%d of %d nodes running (%d more on other hosts)\n", running,
               total, remote);
    else
        printf("%d of %d nodes running\n", running, total);
    cJSON_Delete(st);
    return rc;
}

/* Wait until every pid is gone. */
static int wait_gone(const pid_t *pids, size_t n, double timeout)
{
    double deadline = ctl_now() + timeout;

    for (;;) {
        size_t left = 0;
        for (size_t i = 0; i < n; i++)
            left += !ctl_pid_gone(pids[i]);
        if (left == 0)
            return 1;
        if (ctl_now() > deadline)
            return 0;
        ctl_sleep_ms(50);
    }
}

/* How long a stop may take: the supervisor's grace period for its
 * children, then room for it to reap them and exit. */
static double stop_timeout(const struct ctl *c)
{
    return c->cfg.stop_grace_s + 15.0;
}

/* The end of a whole-herd stop: wait for every pid, then say the herd
 * stopped, or which pids have not (EX_SYS). */
static int finish_stop(const struct ctl *c, const pid_t *pids, size_t np)
{
    if (!wait_gone(pids, np, stop_timeout(c))) {
        fprintf(stderr, "herdctl: some processes have not stopped:");
        for (size_t i = 0; i < np; i++)
            if (!ctl_pid_gone(pids[i]))
                fprintf(stderr, " %d", (int)pids[i]);
        fprintf(stderr, "\n");
        return EX_SYS;
    }
    printf("herd stopped (%zu processes)\n", np);
    return EX_OK;
}

/* Send "VERB NODE" to the supervisor, then wait until the process the
 * node had in its answer is gone; *pid gets that pid (0 when it had
 * none).  0, or herdctl's exit code (message printed). */
static int node_request(struct ctl *c, const char *verb, const char *node,
                        pid_t *pid)
{
    cJSON *st = NULL;
    char cmd[128];
    int rc;

    snprintf(cmd, sizeof cmd, "%s %s", verb, node);
    rc = ctl_request(c, cmd, &st);
    if (rc == EX_DOWN)
        fprintf(stderr, "herdctl: the herd is not running\n");
    if (rc)
        return rc;
    if ((rc = ctl_refused(st))) {
        cJSON_Delete(st);
        return rc;
    }
    *pid = pid_of(ctl_find_node(st, node));
    cJSON_Delete(st);
    if (!wait_gone(pid, 1, stop_timeout(c))) {
        fprintf(stderr, "herdctl: %s (pid %d) has not stopped\n", node,
                (int)*pid);
        return EX_SYS;
    }
    return 0;
}

#define STOP_PIDS_MAX 1024

static void say_leftover(const char *name, pid_t pid, const char *what)
{
    fprintf(stderr, "herdctl: %s: pid %d %s\n", name, (int)pid, what);
}

/* No supervisor runs: stop what a killed one left behind (recorded in
 * run_dir/supervisor.state, matched by pid and start time; say a node
 * that was SIGSTOPped and so missed its death signal). */
static int stop_leftovers(struct ctl *c)
{
    char *state = config_run_path(&c->cfg, "supervisor.state");
    int n = state ? procs_take_over(state, c->cfg.stop_grace_s, say_leftover)
                  : 0;

    free(state);
    if (n == 0) {
        printf("herd is not running\n");
        return EX_OK;
    }
    printf("herd is not running; stopped %d process%s a killed supervisor "
           "left\n", n, n == 1 ? "" : "es");
    return EX_OK;
}

/* A supervisor lives but does not answer (its socket gone and not put
 * back, or it is stopped): SIGTERM it, which stops its children, and
 * wait until it and they are gone.  rc is returned if there is none. */
static int stop_by_signal(struct ctl *c, int rc)
{
    pid_t sups[16], pids[STOP_PIDS_MAX];
    size_t ns = ctl_supervisors(c, sups, 16), np = 0;

    if (ns == 0)
        return rc;
    if (ns > 16)
        ns = 16;
    for (size_t i = 0; i < ns; i++) {
        np += procs_children(sups[i], pids + np, STOP_PIDS_MAX - ns - np);
        if (np > STOP_PIDS_MAX - ns)
            np = STOP_PIDS_MAX - ns;
    }
    for (size_t i = 0; i < ns; i++) {
        fprintf(stderr, "herdctl: stopping supervisor pid %d with SIGTERM\n",
                (int)sups[i]);
        kill(sups[i], SIGTERM);
        kill(sups[i], SIGCONT);     /* a stopped one must see it */
        pids[np++] = sups[i];
    }
    return finish_stop(c, pids, np);
}

int cmd_stop(struct ctl *c, const char *node)
{
    cJSON *st = NULL, *n;
    int rc;

    if (node) {
        pid_t pid;
        if ((rc = node_request(c, "stop", node, &pid)))
            return rc;
        const char *names[] = {node};
        st = wait_settled(c, names, 1, 5.0);
        cJSON_Delete(st);
        printf("%s: stopped (it stays stopped until `herdctl start %s`)\n",
               node, node);
        return EX_OK;
    }

    rc = ctl_request(c, "shutdown", &st);
    if (rc == EX_DOWN)
        return stop_leftovers(c);
    if (rc == EX_SYS)
        return stop_by_signal(c, rc);
    if (rc)
        return rc;
    pid_t pids[STOP_PIDS_MAX];
    size_t np = 0;
    cJSON *herd = cJSON_GetObjectItem(st, "herd");
    cJSON *sp = cJSON_GetObjectItem(herd, "supervisor_pid");
    /* Room is kept for the places emulator and the supervisor. */
    cJSON_ArrayForEach(n, cJSON_GetObjectItem(st, "nodes"))
        if (pid_of(n) && np < STOP_PIDS_MAX - 2)
            pids[np++] = pid_of(n);
    if (pid_of(cJSON_GetObjectItem(st, "places")))
        pids[np++] = pid_of(cJSON_GetObjectItem(st, "places"));
    if (cJSON_IsNumber(sp))
        pids[np++] = (pid_t)sp->valuedouble;
    cJSON_Delete(st);
    return finish_stop(c, pids, np);
}

int cmd_restart(struct ctl *c, const char *node)
{
    cJSON *st = NULL;
    int rc;
    pid_t old;

    if ((rc = node_request(c, "restart", node, &old)))
        return rc;
    const char *names[] = {node};
    double deadline = ctl_now() + SETTLE_S;
    for (;;) {
        st = wait_settled(c, names, 1, SETTLE_S);
        if (!st)
            return EX_DOWN;
        cJSON *n = ctl_find_node(st, node);
        if (pid_of(n) != old || !settled(n) || ctl_now() > deadline)
            break;
        cJSON_Delete(st);
        ctl_sleep_ms(100);
    }
    rc = report_nodes(st, names, 1);
    if (rc == EX_OK)
        printf("%s: restarted, pid %d -> %d\n", node, (int)old,
               (int)pid_of(ctl_find_node(st, node)));
    cJSON_Delete(st);
    return rc;
}

int cmd_reload(struct ctl *c, int dry)
{
    cJSON *r = NULL, *ch;
    int rc;

    ctl_check_perms(c);
    rc = ctl_request(c, dry ? "reload-dry" : "reload", &r);
    if (rc == EX_DOWN)
        fprintf(stderr, "herdctl: the herd is not running; nothing to "
                "reload (herdctl start reads %s)\n", c->config_path);
    if (rc)
        return rc;
    if ((rc = ctl_refused(r))) {
        cJSON_Delete(r);
        return rc;
    }
    const char *names[256];
    size_t nn = 0;
    cJSON *changes = cJSON_GetObjectItem(r, "changes");
    if (cJSON_GetArraySize(changes) == 0)
        printf("no changes\n");
    cJSON_ArrayForEach(ch, changes) {
        printf("%s %-12s %-8s %s\n", str(ch, "op"), str(ch, "name"),
               str(ch, "action"), str(ch, "detail"));
        if (strcmp(str(ch, "op"), "-") != 0 && nn < 256)
            names[nn++] = str(ch, "name");
    }
    cJSON_ArrayForEach(ch, cJSON_GetObjectItem(r, "notes"))
        if (cJSON_IsString(ch))
            printf("note: %s\n", ch->valuestring);
    if (dry || nn == 0) {
        cJSON_Delete(r);
        return EX_OK;
    }
    /* Wait for what was added or restarted to come up. */
    cJSON *st = wait_settled(c, names, nn, SETTLE_S);
    if (st)
        rc = report_nodes(st, names, nn);
    cJSON_Delete(st);
    cJSON_Delete(r);
    return st ? rc : EX_DOWN;
}
