/* ctl: herdctl's side of the supervisor's control socket. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "herdctl.h"
#include "lib/procs.h"
#include "lib/unixsock.h"

size_t ctl_supervisors(struct ctl *c, pid_t *out, size_t max)
{
    return procs_find_config("herd-supervisor", c->config_path, getpid(), out,
                             max);
}

/* How long a supervisor that lives but has lost its socket (run_dir
 * removed) gets to put it back: it checks four times a second. */
#define REAPPEAR_S 5.0

/* Connect to the supervisor's socket.  The fd; or -1 with *rc EX_DOWN
 * (no supervisor) or EX_SYS (message printed). */
static int connect_supervisor(struct ctl *c, int *rc)
{
    double deadline = 0;
    pid_t sup = 0;

    for (;;) {
        int fd = unixsock_connect(c->sock_path);
        if (fd >= 0)
            return fd;
        if (errno != ENOENT && errno != ECONNREFUSED && errno != ENOTDIR) {
            fprintf(stderr, "herdctl: cannot reach the supervisor at %s: "
                    "%s\n", c->sock_path, strerror(errno));
            *rc = errno == EACCES ? EX_DOWN : EX_SYS;
            return -1;
        }
        /* No socket: is there really no supervisor for this herd.ini? */
        if (ctl_supervisors(c, &sup, 1) == 0) {
            *rc = EX_DOWN;
            return -1;
        }
        if (deadline == 0)
            deadline = ctl_now() + REAPPEAR_S;
        if (ctl_now() > deadline) {
            fprintf(stderr, "herdctl: a supervisor (pid %d) runs for %s but "
                    "does not answer at %s\n", (int)sup, c->config_path,
                    c->sock_path);
            *rc = EX_SYS;
            return -1;
        }
        ctl_sleep_ms(100);
    }
}

int ctl_request(struct ctl *c, const char *command, cJSON **reply)
{
    struct timeval tv = {15, 0};
    char *text = NULL;
    size_t len = 0, cap = 0;
    int fd, rc = 0;

    *reply = NULL;
    fd = connect_supervisor(c, &rc);
    if (fd < 0)
        return rc;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    size_t n = strlen(command);
    char line[1024];            /* the supervisor reads at most 1,023 bytes */
    if (n + 1 >= sizeof line) {
        close(fd);
        fprintf(stderr, "herdctl: command too long for the control socket\n");
        return EX_USAGE;
    }
    memcpy(line, command, n);
    line[n] = '\n';
    if (send(fd, line, n + 1, MSG_NOSIGNAL) != (ssize_t)(n + 1)) {
        close(fd);
        return EX_DOWN;         /* it went away between connect and send */
    }
    for (;;) {
        if (len + 4096 > cap) {
            cap = cap ? cap * 2 : 65536;
            char *p = realloc(text, cap);
            if (!p) {
                free(text);
                close(fd);
                fprintf(stderr, "herdctl: out of memory\n");
                return EX_SYS;
            }
            text = p;
        }
        ssize_t r = read(fd, text + len, cap - len - 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            fprintf(stderr, "herdctl: no answer from the supervisor: %s\n",
                    strerror(errno));
            free(text);
            close(fd);
            return EX_SYS;
        }
        if (r == 0)
            break;
        len += (size_t)r;
    }
    close(fd);
    if (len == 0) {
        free(text);
        return EX_DOWN;         /* it closed on us: stopping */
    }
    text[len] = '\0';
    *reply = cJSON_Parse(text);
    free(text);
    if (!*reply) {
        fprintf(stderr, "herdctl: the supervisor's answer is not JSON\n");
        return EX_SYS;
    }
    return 0;
}

int ctl_refused(cJSON *reply)
{
    cJSON *ok = cJSON_GetObjectItem(reply, "ok");
    cJSON *code = cJSON_GetObjectItem(reply, "code");
    cJSON *err = cJSON_GetObjectItem(reply, "error");

    if (cJSON_IsTrue(ok))
        return 0;
    fprintf(stderr, "herdctl: %s\n",
            cJSON_IsString(err) ? err->valuestring : "refused");
    return cJSON_IsNumber(code) ? (int)code->valuedouble : EX_SYS;
}

cJSON *ctl_find_node(cJSON *status, const char *name)
{
    cJSON *nodes = cJSON_GetObjectItem(status, "nodes"), *n;

    cJSON_ArrayForEach(n, nodes) {
        cJSON *nm = cJSON_GetObjectItem(n, "name");
        if (cJSON_IsString(nm) && strcmp(nm->valuestring, name) == 0)
            return n;
    }
    if (strcmp(name, "places") == 0)
        return cJSON_GetObjectItem(status, "places");
    return NULL;
}

int ctl_pid_gone(pid_t pid)
{
    int state;

    if (pid <= 0)
        return 1;
    if (kill(pid, 0) < 0 && errno == ESRCH)
        return 1;
    state = procs_state(pid);
    return state == 0 || state == 'Z' || state == 'X';
}

void ctl_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

double ctl_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

void ctl_check_perms(struct ctl *c)
{
    struct stat st;
    char *secret = config_run_path(&c->cfg, "herd.secret");
    const char *dirs[] = {c->cfg.log_dir, c->cfg.run_dir, c->cfg.data_dir};
    const char *keys[] = {"log_dir", "run_dir", "data_dir"};

    /* herd.ini holds no secret (the API key comes from the environment;
     * reading it is harmless), but it maps every port and path of the
     * herd, and whoever can write it can point the herd anywhere. */
    if (stat(c->config_path, &st) == 0 && (st.st_mode & 022))
        fprintf(stderr, "herdctl: warning: %s is writable by %s (chmod "
                "go-w %s)\n", c->config_path,
                (st.st_mode & 002) ? "others" : "its group", c->config_path);
    /* A directory others can write (a tmpfs at its default 1777, sticky
     * or not) lets them plant names the herd then creates: the herd never
     * follows a symlink there, but they can still block or fill it. */
    for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++)
        if (dirs[i] && stat(dirs[i], &st) == 0 && (st.st_mode & 002))
            fprintf(stderr, "herdctl: warning: %s %s is writable by others "
                    "(chmod o-w %s, or point %s elsewhere)\n", keys[i],
                    dirs[i], dirs[i], keys[i]);
    if (secret && stat(secret, &st) == 0 && (st.st_mode & 077))
        fprintf(stderr, "herdctl: warning: %s is open to %s; anyone who "
                "reads it can join the herd (chmod 600 %s)\n", secret,
                (st.st_mode & 007) ? "others" : "its group", secret);
    free(secret);
    /* The keyring holds the link secrets too (herdctl secret). */
    secret = config_run_path(&c->cfg, "herd.keyring");
    if (secret && stat(secret, &st) == 0 && (st.st_mode & 077))
        fprintf(stderr, "herdctl: warning: %s is open to %s; anyone who "
                "reads it can join the herd (chmod 600 %s)\n", secret,
                (st.st_mode & 007) ? "others" : "its group", secret);
    free(secret);
}
