#include "child.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/container.h"
#include "common/fsutil.h"
#include "common/htime.h"
#include "common/log.h"
#include "lib/procs.h"
#include "sup.h"


static void spawn(struct child *c);

/* The program this child runs. */
static const char *child_bin(const struct child *c)
{
    return c->kind == CHILD_PLACES ? c->sup->places_bin : c->sup->node_bin;
}

static double wall_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static char *log_path(const struct child *c)
{
    return config_log_path(&c->sup->cfg, c->name);
}

/* Append whole lines to the child's log.  The node appends to the same
 * file; O_APPEND keeps each write whole, and opening per write follows
 * the node's rotations. */
static void append_log(struct child *c, const char *text, size_t n)
{
    char *path = log_path(c);
    int fd;

    if (!path)
        return;
    fd = fs_open_append(path, 0640);
    if (fd < 0) {
        /* Said once per spell in the supervisor's own log, which is all
         * that is left to say it in. */
        if (!c->log_failed)
            log_msg(LOG_ERROR, "%s: cannot append to %s: %s", c->name, path,
                    errno == ELOOP ? "it is a symbolic link, not followed"
                                   : strerror(errno));
        c->log_failed = 1;
        free(path);
        return;
    }
    c->log_failed = 0;
    free(path);
    while (n > 0) {
        ssize_t w = write(fd, text, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        text += w;
        n -= (size_t)w;
    }
    close(fd);
}

/* "TIMESTAMP NAME: LABEL: text\n" into buf; returns its length. */
static size_t format_line(const struct child *c, const char *label,
                          const char *text, char *buf, size_t cap)
{
    size_t n = htime_format_utc(htime_now(), buf, cap);
    int m = snprintf(buf + n, cap - n, " %s: %s: %s", c->name, label, text);

    if (m < 0)
        m = 0;
    n += (size_t)m < cap - n - 1 ? (size_t)m : cap - n - 2;
    buf[n++] = '\n';
    buf[n] = '\0';
    return n;
}

void child_note(struct child *c, const char *fmt, ...)
{
    char text[1536], line[2048];
    va_list ap;
    size_t n;

    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    n = format_line(c, "supervisor", text, line, sizeof line);
    append_log(c, line, n);
    log_msg(LOG_INFO, "%s: %s", c->name, text);
}

/* ---- output capture ------------------------------------------------ */

static void keep_tail(struct child *c, const char *esc)
{
    size_t n = strlen(esc);

    if (n >= CHILD_TAIL_LEN)
        n = CHILD_TAIL_LEN - 1;
    memcpy(c->tail[c->tail_next], esc, n);
    c->tail[c->tail_next][n] = '\0';
    c->tail_next = (c->tail_next + 1) % CHILD_TAIL_LINES;
    if (c->tail_count < CHILD_TAIL_LINES)
        c->tail_count++;
}

/* Lines complete in c->out go to the log (one write for the batch);
 * with flush, a trailing partial line goes too. */
static void emit_lines(struct child *c, int flush)
{
    char batch[16384];
    size_t used = 0, start = 0;

    for (;;) {
        char *nl = memchr(c->out + start, '\n', c->out_len - start);
        size_t len;

        if (nl)
            len = (size_t)(nl - (c->out + start));
        else if (c->out_len - start > 0 &&
                 (flush || (start == 0 && c->out_len == sizeof c->out)))
            len = c->out_len - start;   /* partial, or too long to wait */
        else
            break;
        size_t shown = len;
        while (shown > 0 && c->out[start + shown - 1] == '\r')
            shown--;
        char esc[4 * sizeof c->out + 1], line[sizeof esc + 256];
        log_escape(c->out + start, shown, esc, sizeof esc);
        keep_tail(c, esc);
        size_t n = format_line(c, "output", esc, line, sizeof line);
        if (used + n > sizeof batch) {
            append_log(c, batch, used);
            used = 0;
        }
        if (n > sizeof batch)
            append_log(c, line, n);
        else {
            memcpy(batch + used, line, n);
            used += n;
        }
        start += len + (nl ? 1 : 0);
    }
    if (used)
        append_log(c, batch, used);
    memmove(c->out, c->out + start, c->out_len - start);
    c->out_len -= start;
}

static void close_output(struct child *c)
{
    if (c->out_fd < 0)
        return;
    emit_lines(c, 1);
    ev_io_stop(c->sup->loop, &c->out_w);
    close(c->out_fd);
    c->out_fd = -1;
    c->out_len = 0;
}

/* Read what the pipe holds.  1 = more may come, 0 = EOF or error. */
static int read_output(struct child *c)
{
    for (int rounds = 0; rounds < 16; rounds++) {
        ssize_t r = read(c->out_fd, c->out + c->out_len,
                         sizeof c->out - c->out_len);
        if (r > 0) {
            c->out_len += (size_t)r;
            emit_lines(c, 0);
            continue;
        }
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && errno == EAGAIN)
            return 1;
        return 0;
    }
    return 1;
}

static void on_output(struct ev_loop *loop, ev_io *w, int revents)
{
    struct child *c = container_of(w, struct child, out_w);

    (void)loop;
    (void)revents;
    if (!read_output(c))
        close_output(c);
}

/* ---- lifecycle ------------------------------------------------------ */

static void on_restart(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct child *c = container_of(w, struct child, restart_w);

    (void)loop;
    (void)revents;
    if (child_wants_up(c) && c->pid == 0 && !c->sup->shutting_down)
        spawn(c);
}

static void on_kill(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct child *c = container_of(w, struct child, kill_w);

    (void)loop;
    (void)revents;
    if (c->pid == 0)
        return;
    child_note(c, "pid %d did not stop within %d s: SIGKILL", (int)c->pid,
               c->sup->cfg.stop_grace_s);
    child_kill(c);
}

struct child *child_new(struct sup *s, enum child_kind kind,
                        const char *name, const char *host, int port)
{
    struct child *c = calloc(1, sizeof *c);

    if (!c)
        return NULL;
    c->sup = s;
    c->kind = kind;
    snprintf(c->name, sizeof c->name, "%s", name);
    snprintf(c->host, sizeof c->host, "%s", host);
    c->port = port;
    c->state = CTL_STOPPED;
    c->want = WANT_DOWN;
    c->backoff = CTL_BACKOFF_MIN;
    c->out_fd = -1;
    c->restarts = -1;           /* the first spawn is not a restart */
    c->links_up = c->links_total = c->clients = -1;
    ev_init(&c->out_w, on_output);
    ev_init(&c->restart_w, on_restart);
    ev_init(&c->kill_w, on_kill);
    return c;
}

void child_free(struct child *c)
{
    if (!c)
        return;
    close_output(c);
    ev_timer_stop(c->sup->loop, &c->restart_w);
    ev_timer_stop(c->sup->loop, &c->kill_w);
    free(c);
}

/* In the forked child: become a group of our own, die with the
 * supervisor, send output to the pipe, run the program. */
static void exec_child(struct child *c, int out, pid_t parent)
{
    char line[512];
    sigset_t none;
    int null;
    size_t n;

    setpgid(0, 0);
    /* If the supervisor dies, even by SIGKILL, the kernel sends us
     * SIGTERM: no node keeps running unnoticed. */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent)
        _exit(111);             /* it died before we asked */
    null = open("/dev/null", O_RDONLY);
    if (null >= 0 && null != 0) {
        dup2(null, 0);
        close(null);
    }
    dup2(out, 1);
    dup2(out, 2);
    if (out > 2)
        close(out);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);

    /* Marks the (re)start in the log before the program writes a line. */
    char text[256];
    if (c->restarts > 0)
        snprintf(text, sizeof text, "started pid %d (restart %d)",
                 (int)getpid(), c->restarts);
    else
        snprintf(text, sizeof text, "started pid %d", (int)getpid());
    n = format_line(c, "supervisor", text, line, sizeof line);
    append_log(c, line, n);

    if (c->kind == CHILD_PLACES) {
        char *argv[] = {c->sup->places_bin, "-c", c->sup->config_path, NULL};
        execv(argv[0], argv);
    } else {
        char *argv[] = {c->sup->node_bin, "-c", c->sup->config_path,
                        c->name, NULL};
        execv(argv[0], argv);
    }
    dprintf(2, "herd-supervisor: cannot run %s: %s\n",
            c->kind == CHILD_PLACES ? c->sup->places_bin : c->sup->node_bin,
            strerror(errno));
    _exit(111);
}

static void spawn(struct child *c)
{
    struct sup *s = c->sup;
    const char *bin = child_bin(c);
    int p[2];
    pid_t pid, parent = getpid();

    ev_timer_stop(s->loop, &c->restart_w);
    if (access(bin, X_OK) != 0) {
        if (c->state != CTL_ABSENT)
            log_msg(LOG_WARN, "%s: %s is not installed; not started",
                    c->name, bin);
        snprintf(c->reason, sizeof c->reason, "%s is not installed", bin);
        c->state = CTL_ABSENT;
        return;
    }
    close_output(c);
    if (pipe2(p, O_CLOEXEC) < 0) {
        log_msg(LOG_ERROR, "%s: pipe: %s", c->name, strerror(errno));
        goto retry;
    }
    c->restarts++;
    pid = fork();
    if (pid < 0) {
        log_msg(LOG_ERROR, "%s: fork: %s", c->name, strerror(errno));
        c->restarts--;
        close(p[0]);
        close(p[1]);
        goto retry;
    }
    if (pid == 0)
        exec_child(c, p[1], parent);
    setpgid(pid, pid);          /* either side may win the race */
    close(p[1]);
    fcntl(p[0], F_SETFL, fcntl(p[0], F_GETFL) | O_NONBLOCK);
    c->out_fd = p[0];
    c->out_len = 0;
    c->tail_count = c->tail_next = 0;   /* the tail tells of this run */
    ev_io_set(&c->out_w, p[0], EV_READ);
    ev_io_start(s->loop, &c->out_w);
    c->pid = pid;
    c->starttime = procs_starttime(pid);
    c->spawned = ev_now(s->loop);
    c->spawned_wall = wall_now();
    c->state = CTL_STARTING;
    c->reason[0] = '\0';
    c->links_up = c->links_total = c->clients = -1;
    log_msg(LOG_INFO, "%s: started pid %d", c->name, (int)pid);
    sup_save_state(s);
    return;
retry:
    c->state = CTL_BACKOFF;
    ev_timer_set(&c->restart_w, 1.0, 0.);
    ev_timer_start(s->loop, &c->restart_w);
}

/* SIGTERM to the group; SIGKILL after the grace period. */
static void signal_stop(struct child *c)
{
    struct sup *s = c->sup;

    if (c->state == CTL_STOPPING)
        return;
    c->state = CTL_STOPPING;
    if (kill(-c->pid, SIGTERM) < 0)
        kill(c->pid, SIGTERM);
    ev_timer_set(&c->kill_w, s->cfg.stop_grace_s > 0 ? s->cfg.stop_grace_s
                                                     : 0.001, 0.);
    ev_timer_start(s->loop, &c->kill_w);
}

int child_wants_up(const struct child *c)
{
    return c->want == WANT_UP || c->want == WANT_RESTART;
}

int child_gone(const struct child *c)
{
    return c->want == WANT_GONE && c->pid == 0;
}

void child_start(struct child *c)
{
    if (c->want == WANT_GONE)
        return;                 /* removed: not to be started again */
    if (c->pid) {
        /* Already stopping: start again as soon as it is reaped. */
        c->want = c->state == CTL_STOPPING ? WANT_RESTART : WANT_UP;
        return;
    }
    c->want = WANT_UP;
    c->n_deaths = 0;
    c->backoff = CTL_BACKOFF_MIN;
    spawn(c);
}

void child_stop(struct child *c)
{
    if (c->want != WANT_GONE)
        c->want = WANT_DOWN;
    ev_timer_stop(c->sup->loop, &c->restart_w);
    if (c->pid)
        signal_stop(c);
    else
        c->state = CTL_STOPPED;
}

void child_remove(struct child *c, const char *why)
{
    child_note(c, "reload: %s; stopping", why);
    c->want = WANT_GONE;
    child_stop(c);
}

void child_restart(struct child *c)
{
    if (c->want == WANT_GONE)
        return;
    if (c->pid) {
        c->want = WANT_RESTART;
        signal_stop(c);
    } else {
        child_start(c);
    }
}

void child_hup(struct child *c)
{
    if (c->pid && c->state != CTL_STOPPING)
        kill(c->pid, SIGHUP);
}

void child_kill(struct child *c)
{
    if (c->pid == 0)
        return;
    if (kill(-c->pid, SIGKILL) < 0)
        kill(c->pid, SIGKILL);
}

void child_describe_status(int status, char *buf, size_t cap)
{
    if (WIFEXITED(status))
        snprintf(buf, cap, "exit %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(buf, cap, "signal %d (%s)%s", WTERMSIG(status),
                 strsignal(WTERMSIG(status)),
                 WCOREDUMP(status) ? ", core dumped" : "");
    else
        snprintf(buf, cap, "status %d", status);
}

/* The last output lines, oldest first, joined by " | ". */
static void tail_text(const struct child *c, int lines, char *buf, size_t cap)
{
    size_t n = 0;
    int count = c->tail_count < lines ? c->tail_count : lines;

    buf[0] = '\0';
    for (int i = count; i >= 1; i--) {
        int k = (c->tail_next - i + CHILD_TAIL_LINES) % CHILD_TAIL_LINES;
        int m = snprintf(buf + n, cap - n, "%s%s", n ? " | " : "", c->tail[k]);
        if (m < 0 || (size_t)m >= cap - n)
            break;
        n += (size_t)m;
    }
}

static void go_fatal(struct child *c, const char *why)
{
    char how[96], tail[600];

    child_describe_status(c->last_status, how, sizeof how);
    tail_text(c, 2, tail, sizeof tail);
    snprintf(c->reason, sizeof c->reason, "%s; last %s%s%s", why, how,
             tail[0] ? ": " : "", tail);
    c->state = CTL_FATAL;
    child_note(c, "FATAL, not restarted: %s", c->reason);
}

void child_reaped(struct child *c, int status)
{
    struct sup *s = c->sup;
    double now = ev_now(s->loop);
    char how[96];

    /* Its output is complete in the pipe: log it before the verdict. */
    if (c->out_fd >= 0) {
        read_output(c);
        close_output(c);
    }
    ev_timer_stop(s->loop, &c->kill_w);
    c->pid = 0;
    c->starttime = 0;
    c->last_status = status;
    c->has_last = 1;
    c->links_up = c->links_total = c->clients = -1;
    child_describe_status(status, how, sizeof how);

    if (!child_wants_up(c) || s->shutting_down) {
        child_note(c, "stopped (%s)", how);
        c->state = CTL_STOPPED;
        sup_save_state(s);
        return;
    }
    if (c->want == WANT_RESTART) {
        c->want = WANT_UP;
        child_note(c, "exited (%s) to restart", how);
        spawn(c);
        return;
    }

    /* An unexpected death. */
    if (now - c->spawned >= CTL_HEALTHY)
        c->backoff = CTL_BACKOFF_MIN;
    c->deaths[c->n_deaths % CTL_DEATHS] = now;
    c->n_deaths++;
    int recent = 0;
    for (int i = 0; i < CTL_DEATHS && i < c->n_deaths; i++)
        if (now - c->deaths[i] <= CTL_DEATH_WINDOW)
            recent++;
    sup_save_state(s);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 100) {
        go_fatal(c, "usage or herd.ini error (exit 100), restarting "
                 "would not help");
        return;
    }
    if (recent >= CTL_DEATHS) {
        char why[64];
        snprintf(why, sizeof why, "died %d times within %.0f s",
                 CTL_DEATHS, CTL_DEATH_WINDOW);
        go_fatal(c, why);
        return;
    }
    c->state = CTL_BACKOFF;
    child_note(c, "exited unexpectedly (%s); restarting in %.1f s", how,
               c->backoff);
    ev_timer_set(&c->restart_w, c->backoff, 0.);
    ev_timer_start(s->loop, &c->restart_w);
    c->backoff *= 2;
    if (c->backoff > CTL_BACKOFF_MAX)
        c->backoff = CTL_BACKOFF_MAX;
}

/* ---- noticing that it serves ----------------------------------------- */

static int port_accepts(int port)
{
    struct sockaddr_in a;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), ok;

    if (fd < 0)
        return 0;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

/* The whole of a file, NUL-terminated (caller frees), or NULL.  A node
 * with thousands of links writes a status file of hundreds of KiB: read
 * it all, up to a bound that no real one comes near. */
#define STATUS_FILE_MAX (64u << 20)

static char *read_whole(const char *path)
{
    struct stat st;
    char *text, *p;
    size_t len = 0, cap;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

    if (fd < 0)
        return NULL;
    cap = fstat(fd, &st) == 0 && st.st_size > 0 &&
          (unsigned long long)st.st_size < STATUS_FILE_MAX
              ? (size_t)st.st_size + 2 : 65536;
    text = malloc(cap);
    while (text) {
        if (len + 1 == cap) {   /* full: it grew since fstat */
            p = cap < STATUS_FILE_MAX ? realloc(text, cap * 2) : NULL;
            if (!p)
                break;
            text = p;
            cap *= 2;
        }
        ssize_t r = read(fd, text + len, cap - len - 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            break;
        if (r == 0) {
            close(fd);
            text[len] = '\0';
            return text;
        }
        len += (size_t)r;
    }
    close(fd);
    free(text);
    return NULL;
}

cJSON *child_status_file(const struct child *c)
{
    char *path, *text;
    cJSON *j, *pid;

    if (c->kind != CHILD_NODE || c->pid == 0)
        return NULL;
    path = config_status_path(&c->sup->cfg, c->name);
    text = path ? read_whole(path) : NULL;
    free(path);
    if (!text)
        return NULL;
    j = cJSON_Parse(text);
    free(text);
    pid = cJSON_GetObjectItemCaseSensitive(j, "pid");
    if (!cJSON_IsNumber(pid) || (pid_t)pid->valuedouble != c->pid) {
        cJSON_Delete(j);        /* a previous run's, or not JSON */
        return NULL;
    }
    return j;
}

/* Refresh counts from our live child's NAME.status; the first one seen
 * means it serves. */
static void read_node_status(struct child *c)
{
    cJSON *j = child_status_file(c);

    if (!j)
        return;
    cJSON *up = cJSON_GetObjectItemCaseSensitive(j, "links_up");
    cJSON *total = cJSON_GetObjectItemCaseSensitive(j, "links_total");
    cJSON *clients = cJSON_GetObjectItemCaseSensitive(j, "clients");
    c->links_up = cJSON_IsNumber(up) ? (int)up->valuedouble : -1;
    c->links_total = cJSON_IsNumber(total) ? (int)total->valuedouble : -1;
    c->clients = cJSON_IsNumber(clients) ? (int)clients->valuedouble : -1;
    if (c->state == CTL_STARTING) {
        c->state = CTL_RUNNING;
        child_note(c, "pid %d is serving on port %d", (int)c->pid, c->port);
    }
    cJSON_Delete(j);
}

void child_tick(struct child *c)
{
    if (c->state == CTL_ABSENT) {
        /* Retried once its own program is there (a node's, or the
         * emulator's), not on every tick. */
        if (child_wants_up(c) && !c->sup->shutting_down &&
            access(child_bin(c), X_OK) == 0)
            spawn(c);
        return;
    }
    if (c->pid == 0 || c->state == CTL_STOPPING)
        return;
    if (c->kind == CHILD_NODE) {
        read_node_status(c);
    } else if (c->state == CTL_STARTING && port_accepts(c->port)) {
        c->state = CTL_RUNNING;
        child_note(c, "pid %d is serving on port %d", (int)c->pid, c->port);
    }
}

cJSON *child_json(const struct child *c)
{
    char how[96];
    const char *tail[CHILD_TAIL_LINES];
    struct ctl_row r = {
        .name = c->name, .host = c->host, .state = c->state,
        .want = child_wants_up(c) ? CTL_WANT_UP : CTL_WANT_DOWN,
        .pid = c->pid, .port = c->port,
        .restarts = c->restarts > 0 ? c->restarts : 0,
        .links_up = c->links_up, .links_total = c->links_total,
        .clients = c->clients, .tail = tail,
    };

    if (c->pid && c->state != CTL_STOPPING)
        r.uptime_s = (long long)(wall_now() - c->spawned_wall);
    if (c->has_last) {
        child_describe_status(c->last_status, how, sizeof how);
        r.last_exit = how;
    }
    if (c->reason[0] && (c->state == CTL_FATAL || c->state == CTL_ABSENT))
        r.reason = c->reason;
    for (int i = c->tail_count; i >= 1; i--)
        tail[r.n_tail++] = c->tail[(c->tail_next - i + CHILD_TAIL_LINES) %
                                   CHILD_TAIL_LINES];
    return ctlproto_row(&r);
}
