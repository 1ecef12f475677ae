/* logs: the last lines of a log, or follow logs through rotation and
 * restarts, one or all of them interleaved with a name prefix. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/grow.h"
#include "herdctl.h"

#define MAX_LOGS 256

struct follower {
    char label[CONFIG_NAME_MAX + 16];
    char *path;
    int fd;
    ino_t ino;
    off_t off;
    char part[8192];            /* an incomplete last line */
    size_t part_len;
};

struct log_mark {
    size_t n;
    int prefix;                 /* more than one log: prefix each line */
    struct follower f[MAX_LOGS];
};

static const char *colours[] = {"\033[36m", "\033[32m", "\033[33m",
                                "\033[35m", "\033[34m", "\033[91m",
                                "\033[92m", "\033[93m", "\033[94m"};

/* The logs of one target (node, "places", "supervisor") or of all. */
static struct log_mark *targets(struct ctl *c, const char *node)
{
    struct log_mark *m = calloc(1, sizeof *m);

    if (!m)
        return NULL;
#define ADD(name)                                                          \
    do {                                                                   \
        if (m->n < MAX_LOGS) {                                             \
            struct follower *f = &m->f[m->n++];                            \
            snprintf(f->label, sizeof f->label, "%s", name);               \
            f->path = config_log_path(&c->cfg, name);                      \
            f->fd = -1;                                                    \
        }                                                                  \
    } while (0)
    if (!node || strcmp(node, "supervisor") == 0)
        ADD("supervisor");
    if ((!node && c->cfg.provider == PLACES_LOCAL) ||
        (node && strcmp(node, "places") == 0))
        ADD("places");
    for (size_t i = 0; i < c->cfg.n_nodes; i++)
        if (!node || strcmp(node, c->cfg.nodes[i].name) == 0)
            ADD(c->cfg.nodes[i].name);
#undef ADD
    m->prefix = m->n > 1;
    return m;
}

static void free_mark(struct log_mark *m)
{
    for (size_t i = 0; m && i < m->n; i++) {
        if (m->f[i].fd >= 0)
            close(m->f[i].fd);
        free(m->f[i].path);
    }
    free(m);
}

static void print_line(struct ctl *c, struct log_mark *m, size_t i,
                       const char *line, size_t len)
{
    const char *mark = memmem(line, len, ": supervisor: started pid ", 26);
    const char *col = c->tty ? colours[i % (sizeof colours / sizeof *colours)]
                             : "";
    const char *end = c->tty ? "\033[0m" : "";

    if (mark) {
        /* Make each (re)start stand out. */
        int pid = atoi(mark + 26);
        int restart = memmem(line, len, "(restart ", 9) != NULL;
        printf("%s-------- %s %s, pid %d --------%s\n", c->tty ? "\033[1m" : "",
               m->f[i].label, restart ? "RESTARTED" : "started", pid, end);
    }
    if (m->prefix)
        printf("%s%-10s%s | %.*s\n", col, m->f[i].label, end, (int)len, line);
    else
        printf("%.*s\n", (int)len, line);
}

/* ---- last N lines ------------------------------------------------------ */

struct tline {
    size_t log;
    char *text;
};

/* The last n lines of fd (size bytes), appended to out. */
static void tail_fd(int fd, off_t size, long n, size_t log, struct tline **out,
                    size_t *count, size_t *cap)
{
    off_t start = size;
    char *buf = NULL;
    size_t len = 0;
    long lines = 0;

    while (start > 0 && lines <= n) {
        off_t step = start > 65536 ? 65536 : start;
        start -= step;
        char *nb = malloc(len + (size_t)step + 1);
        if (!nb)
            break;
        if (pread(fd, nb, (size_t)step, start) != step) {
            free(nb);
            break;
        }
        if (len)
            memcpy(nb + step, buf, len);
        free(buf);
        buf = nb;
        len += (size_t)step;
        lines = 0;
        for (size_t k = 0; k < len; k++)
            lines += buf[k] == '\n';
    }
    if (!buf)
        return;
    buf[len] = '\0';
    /* Split; skip a partial first line when we did not reach the start. */
    char *p = buf, *e;
    if (start > 0 && (e = strchr(p, '\n')))
        p = e + 1;
    size_t first = *count;
    while (*p) {
        e = strchr(p, '\n');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        /* Out of memory: the lines read so far are shown. */
        if (GROW(*out, *cap, *count + 1, 256) < 0)
            break;
        (*out)[*count].log = log;
        if (((*out)[*count].text = strndup(p, l)) == NULL)
            break;
        (*count)++;
        p += l + (e ? 1 : 0);
    }
    /* Keep only the last n of this log. */
    size_t got = *count - first;
    if (got > (size_t)n) {
        size_t drop = got - (size_t)n;
        for (size_t k = first; k < first + drop; k++)
            free((*out)[k].text);
        memmove(*out + first, *out + first + drop,
                (size_t)n * sizeof **out);
        *count -= drop;
    }
    free(buf);
}

static int by_time(const void *a, const void *b)
{
    const struct tline *x = a, *y = b;
    /* Lines start with an ISO UTC timestamp: text order is time order. */
    int r = strncmp(x->text, y->text, 27);
    if (r)
        return r;
    return x->log < y->log ? -1 : x->log > y->log;
}

/* Print the last n lines (of all logs together), and leave each log open
 * at its end for following. */
static void print_last(struct ctl *c, struct log_mark *m, long n)
{
    struct tline *lines = NULL;
    size_t count = 0, cap = 0;

    for (size_t i = 0; i < m->n; i++) {
        struct follower *f = &m->f[i];
        struct stat st;
        f->fd = open(f->path, O_RDONLY | O_CLOEXEC);
        if (f->fd < 0 || fstat(f->fd, &st) < 0)
            continue;
        f->ino = st.st_ino;
        f->off = st.st_size;
        if (n > 0)
            tail_fd(f->fd, st.st_size, n, i, &lines, &count, &cap);
    }
    if (m->n > 1 && count > 1)
        qsort(lines, count, sizeof *lines, by_time);
    size_t from = count > (size_t)n ? count - (size_t)n : 0;
    for (size_t k = 0; k < count; k++) {
        if (k >= from)
            print_line(c, m, lines[k].log, lines[k].text, strlen(lines[k].text));
        free(lines[k].text);
    }
    free(lines);
    fflush(stdout);
}

/* ---- following ----------------------------------------------------------- */

static int drain(struct ctl *c, struct log_mark *m, size_t i)
{
    struct follower *f = &m->f[i];
    int printed = 0;

    for (;;) {
        ssize_t r = pread(f->fd, f->part + f->part_len,
                          sizeof f->part - f->part_len, f->off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        f->off += r;
        f->part_len += (size_t)r;
        size_t start = 0;
        char *nl;
        while ((nl = memchr(f->part + start, '\n', f->part_len - start))) {
            print_line(c, m, i, f->part + start,
                       (size_t)(nl - (f->part + start)));
            start = (size_t)(nl - f->part) + 1;
            printed = 1;
        }
        if (start == 0 && f->part_len == sizeof f->part) {
            print_line(c, m, i, f->part, f->part_len);   /* huge line */
            start = f->part_len;
            printed = 1;
        }
        memmove(f->part, f->part + start, f->part_len - start);
        f->part_len -= start;
    }
    return printed;
}

/* One pass over every log: new lines, rotations, truncations. */
static void poll_logs(struct ctl *c, struct log_mark *m)
{
    int printed = 0;

    for (size_t i = 0; i < m->n; i++) {
        struct follower *f = &m->f[i];
        struct stat st, now;

        if (f->fd < 0) {
            f->fd = open(f->path, O_RDONLY | O_CLOEXEC);
            if (f->fd < 0)
                continue;
            fstat(f->fd, &st);
            f->ino = st.st_ino;
            f->off = 0;         /* a new file: all of it is new */
            f->part_len = 0;
        }
        if (fstat(f->fd, &st) == 0 && st.st_size < f->off)
            f->off = 0;         /* truncated in place */
        printed |= drain(c, m, i);
        /* Rotated: the old file is read to its end; go on with the new. */
        if (stat(f->path, &now) == 0 && now.st_ino != f->ino) {
            printed |= drain(c, m, i);
            if (f->part_len) {
                print_line(c, m, i, f->part, f->part_len);
                f->part_len = 0;
            }
            close(f->fd);
            f->fd = -1;
            i--;                /* open the new one in this same pass */
        }
    }
    if (printed)
        fflush(stdout);
}

struct log_mark *logs_mark(struct ctl *c)
{
    struct log_mark *m = targets(c, NULL);

    if (m)
        print_last(c, m, 0);
    return m;
}

int logs_follow_until(struct ctl *c, struct log_mark *m, pid_t stop_pid)
{
    int status = 0;

    for (;;) {
        pid_t r = waitpid(stop_pid, &status, WNOHANG);
        poll_logs(c, m);
        if (r == stop_pid || (r < 0 && errno == ECHILD))
            break;
        ctl_sleep_ms(100);
    }
    ctl_sleep_ms(200);
    poll_logs(c, m);
    free_mark(m);
    return status;
}

int cmd_logs(struct ctl *c, const char *node, int follow, long lines)
{
    struct log_mark *m;

    if (node && strcmp(node, "supervisor") != 0 && strcmp(node, "places") != 0 &&
        config_find_node(&c->cfg, node) < 0) {
        fprintf(stderr, "herdctl: no node named '%s' in %s\n", node,
                c->config_path);
        return EX_DOWN;
    }
    m = targets(c, node);
    if (!m)
        return EX_SYS;
    if (!follow && node && access(m->f[0].path, F_OK) != 0) {
        fprintf(stderr, "herdctl: no log yet at %s\n", m->f[0].path);
        free_mark(m);
        return EX_OK;
    }
    print_last(c, m, lines);
    if (!follow) {
        free_mark(m);
        return EX_OK;
    }
    for (;;) {
        poll_logs(c, m);
        ctl_sleep_ms(100);
    }
}
