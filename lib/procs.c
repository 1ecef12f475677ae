#include "procs.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>


/* /proc/PID/stat into text, and in *fields what follows the command
 * name (which may hold spaces and parentheses, so it ends at the last
 * ')'), or NULL when there is no ')'.  0, or -1 when there is no such
 * file. */
static int read_stat(pid_t pid, char *text, size_t size, char **fields)
{
    char path[64];
    FILE *f;
    size_t n;

    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    f = fopen(path, "re");
    if (!f)
        return -1;
    n = fread(text, 1, size - 1, f);
    fclose(f);
    text[n] = '\0';
    *fields = strrchr(text, ')');
    if (*fields)
        (*fields)++;
    return 0;
}

unsigned long long procs_starttime(pid_t pid)
{
    char text[1024], *p;
    unsigned long long start = 0;

    /* Count fields from past the command name (field 3 comes next). */
    if (read_stat(pid, text, sizeof text, &p) < 0 || !p)
        return 0;
    for (int field = 3; field < 22 && p; field++) {
        p = strchr(p + 1, ' ');
    }
    if (p && sscanf(p, " %llu", &start) != 1)
        start = 0;
    return start;
}

int procs_state(pid_t pid)
{
    char text[512], *p;

    if (read_stat(pid, text, sizeof text, &p) < 0)
        return 0;
    return p && p[0] == ' ' && p[1] ? p[1] : '?';
}

struct leftover {
    pid_t pid;
    char name[80];
};

static void nap(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int any_alive(const struct leftover *l, int n, const unsigned long long *st)
{
    for (int i = 0; i < n; i++)
        if (procs_starttime(l[i].pid) == st[i])
            return 1;
    return 0;
}

int procs_take_over(const char *state_path, int grace_s,
                    void (*say)(const char *name, pid_t pid, const char *what))
{
    struct leftover found[256];
    unsigned long long st[256];
    char line[256];
    int n = 0;
    FILE *f = fopen(state_path, "re");

    if (!f)
        return 0;
    while (n < 256 && fgets(line, sizeof line, f)) {
        int pid;
        unsigned long long start;
        char name[80];

        if (sscanf(line, "%d %llu %79s", &pid, &start, name) != 3 || pid <= 1)
            continue;
        if (start == 0 || procs_starttime(pid) != start)
            continue;           /* gone, or the pid now names another */
        found[n].pid = pid;
        snprintf(found[n].name, sizeof found[n].name, "%s", name);
        st[n] = start;
        n++;
    }
    fclose(f);
    for (int i = 0; i < n; i++) {
        say(found[i].name, found[i].pid, "was left running by a previous "
            "supervisor; stopping it");
        if (kill(-found[i].pid, SIGTERM) < 0)
            kill(found[i].pid, SIGTERM);
        kill(-found[i].pid, SIGCONT);   /* a stopped one must see it */
    }
    for (long waited = 0; n && waited < grace_s * 1000L; waited += 50) {
        if (!any_alive(found, n, st))
            break;
        nap(50);
    }
    for (int i = 0; i < n; i++) {
        if (procs_starttime(found[i].pid) == st[i]) {
            say(found[i].name, found[i].pid, "ignored SIGTERM; SIGKILL");
            if (kill(-found[i].pid, SIGKILL) < 0)
                kill(found[i].pid, SIGKILL);
        }
    }
    /* Not our children, so we cannot reap them: wait until they are gone
     * (a zombie still holds its pid but no longer its ports). */
    for (int waited = 0; n && waited < 5000; waited += 50) {
        int alive = 0;
        for (int i = 0; i < n; i++) {
            int state = procs_state(found[i].pid);
            if (state && state != '?' && state != 'Z' && state != 'X' &&
                procs_starttime(found[i].pid) == st[i])
                alive = 1;
        }
        if (!alive)
            break;
        nap(50);
    }
    return n;
}

/* The NUL-separated argv of pid into buf; its length, or 0. */
static size_t read_cmdline(pid_t pid, char *buf, size_t cap)
{
    char path[64];
    size_t n;
    FILE *f;

    snprintf(path, sizeof path, "/proc/%d/cmdline", (int)pid);
    f = fopen(path, "re");
    if (!f)
        return 0;
    n = fread(buf, 1, cap - 1, f);
    fclose(f);
    buf[n] = '\0';
    return n;
}

static const char *base_name(const char *p)
{
    const char *slash = strrchr(p, '/');
    return slash ? slash + 1 : p;
}

struct wanted {
    const char *prog;
    struct stat st;
};

/* Is pid a run of w->prog whose -c names the file w->st describes? */
static int runs_config(pid_t pid, const struct wanted *w)
{
    const struct stat *want = &w->st;
    char args[8192], exe[PATH_MAX], path[PATH_MAX * 2], link[64];
    size_t n = read_cmdline(pid, args, sizeof args);
    ssize_t k;
    struct stat st;

    if (n == 0)
        return 0;
    snprintf(link, sizeof link, "/proc/%d/exe", (int)pid);
    k = readlink(link, exe, sizeof exe - 1);
    exe[k > 0 ? k : 0] = '\0';
    if (strcmp(base_name(args), w->prog) != 0 &&
        strcmp(base_name(exe), w->prog) != 0)
        return 0;
    for (size_t i = strlen(args) + 1; i < n; i += strlen(args + i) + 1) {
        if (strcmp(args + i, "-c") != 0 || i + 3 > n)
            continue;
        const char *conf = args + i + 3;
        if (conf[0] == '/') {
            snprintf(path, sizeof path, "%s", conf);
        } else {
            char cwd[PATH_MAX];
            snprintf(link, sizeof link, "/proc/%d/cwd", (int)pid);
            k = readlink(link, cwd, sizeof cwd - 1);
            if (k <= 0)
                return 0;
            cwd[k] = '\0';
            snprintf(path, sizeof path, "%s/%s", cwd, conf);
        }
        return stat(path, &st) == 0 && st.st_dev == want->st_dev &&
               st.st_ino == want->st_ino;
    }
    return 0;
}

/* Every live pid in /proc (but exclude) for which match() holds, up to
 * max into out; how many matched (may exceed max). */
static size_t scan(int (*match)(pid_t, const void *), const void *arg,
                   pid_t exclude, pid_t *out, size_t max)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    size_t found = 0;

    if (!d)
        return 0;
    while ((e = readdir(d))) {
        char *end;
        long v = strtol(e->d_name, &end, 10);
        if (*end || v <= 1 || (pid_t)v == exclude)
            continue;
        int state = procs_state((pid_t)v);
        if (state == 0 || state == 'Z' || state == 'X')
            continue;
        if (!match((pid_t)v, arg))
            continue;
        if (found < max)
            out[found] = (pid_t)v;
        found++;
    }
    closedir(d);
    return found;
}

static int match_config(pid_t pid, const void *arg)
{
    return runs_config(pid, arg);
}

size_t procs_find_config(const char *prog, const char *config, pid_t exclude,
                         pid_t *out, size_t max)
{
    struct wanted w = {.prog = prog};

    if (stat(config, &w.st) < 0)
        return 0;
    return scan(match_config, &w, exclude, out, max);
}

pid_t procs_parent(pid_t pid)
{
    char text[1024], *p;
    int ppid = 0;

    if (read_stat(pid, text, sizeof text, &p) < 0 || !p ||
        sscanf(p, " %*c %d", &ppid) != 1)
        return 0;
    return (pid_t)ppid;
}

static int match_parent(pid_t pid, const void *arg)
{
    return procs_parent(pid) == *(const pid_t *)arg;
}

size_t procs_children(pid_t parent, pid_t *out, size_t max)
{
    return scan(match_parent, &parent, 0, out, max);
}
