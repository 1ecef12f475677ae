/* sup: the supervisor's state and its core operations: the children and
 * their lookup, the files in run_dir that herdctl finds the herd by, the
 * shutdown.  child.c, control.c and reload.c call these; main.c only
 * parses arguments and wires the loop. */
#include "sup.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "child.h"
#include "common/fsutil.h"
#include "common/hosts.h"
#include "common/log.h"
#include "control.h"

struct child *sup_find_child(struct sup *s, enum child_kind kind,
                             const char *name)
{
    for (struct child *c = s->children; c; c = c->next)
        if (c->want != WANT_GONE && c->kind == kind &&
            (kind == CHILD_PLACES || strcmp(c->name, name) == 0))
            return c;
    return NULL;
}

struct child *sup_find(struct sup *s, const char *name)
{
    for (struct child *c = s->children; c; c = c->next)
        if (c->want != WANT_GONE && strcmp(c->name, name) == 0)
            return c;
    return NULL;
}

void sup_reaped(struct sup *s, pid_t pid, int status)
{
    struct child **pp;

    for (pp = &s->children; *pp; pp = &(*pp)->next)
        if ((*pp)->pid == pid)
            break;
    if (!*pp) {
        log_msg(LOG_INFO, "reaped pid %d, not one of ours", (int)pid);
        return;
    }
    struct child *c = *pp;
    child_reaped(c, status);
    if (child_gone(c)) {
        *pp = c->next;
        child_free(c);
        sup_save_state(s);
    }
    sup_check_done(s);
}

static int write_atomic(const char *path, const char *text)
{
    return fs_write_atomic(path, text, strlen(text), 0600);
}

void sup_save_state(struct sup *s)
{
    char text[16384];
    size_t used = 0;

    text[0] = '\0';
    for (struct child *c = s->children; c; c = c->next) {
        if (c->pid == 0 || c->starttime == 0)
            continue;
        int m = snprintf(text + used, sizeof text - used, "%d %llu %s\n",
                         (int)c->pid, c->starttime, c->name);
        if (m < 0 || (size_t)m >= sizeof text - used)
            break;
        used += (size_t)m;
    }
    if (write_atomic(s->state_path, text) < 0)
        log_msg(LOG_WARN, "cannot write %s: %s", s->state_path,
                strerror(errno));
}

void sup_check_done(struct sup *s)
{
    if (!s->shutting_down)
        return;
    for (struct child *c = s->children; c; c = c->next)
        if (c->pid)
            return;
    ev_break(s->loop, EVBREAK_ALL);
}

void sup_shutdown(struct sup *s)
{
    if (!s->shutting_down)
        log_msg(LOG_INFO, "stopping the herd");
    s->shutting_down = 1;
    for (struct child *c = s->children; c; c = c->next)
        child_stop(c);
    sup_check_done(s);
}

/* Whether path is missing, or is no longer the file (dev, ino). */
static int gone(const char *path, dev_t dev, ino_t ino)
{
    struct stat st;

    return stat(path, &st) < 0 || st.st_dev != dev || st.st_ino != ino;
}

/* Take the lock at s->lock_path (a new file when the old one was
 * removed).  0, or -1 with errno (EWOULDBLOCK: someone else holds it). */
int sup_take_lock(struct sup *s)
{
    int fd = open(s->lock_path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC,
                  0600);

    if (fd < 0)
        return -1;
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    if (s->lock_fd >= 0)
        close(s->lock_fd);
    s->lock_fd = fd;
    return 0;
}

void sup_write_pid(struct sup *s)
{
    char pidtext[32];

    snprintf(pidtext, sizeof pidtext, "%d\n", (int)s->pid);
    if (write_atomic(s->pid_path, pidtext) < 0)
        log_msg(LOG_ERROR, "cannot write %s: %s", s->pid_path,
                strerror(errno));
}

/* run_dir, the lock, the socket, the pid and state files are what
 * herdctl finds the herd by.  A /tmp cleaner or an `rm -rf run` takes
 * them while everything runs: put them back, so the herd stays
 * manageable (and a second supervisor cannot take the lock). */
/* Refresh the copy of k's file when the file changed (read only then:
 * a stat a tick otherwise). */
static void keep_refresh(struct sup *s, struct sup_kept *k)
{
    char *path = config_run_path(&s->cfg, k->file), *data;
    struct stat st;
    int fd;

    if (!path)
        return;
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    free(path);
    if (fd < 0)
        return;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 ||
        st.st_size > SUP_KEPT_MAX ||
        (k->data && st.st_dev == k->dev && st.st_ino == k->ino &&
         st.st_size == k->size &&
         st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec ==
             k->mtime_ns)) {
        close(fd);
        return;
    }
    data = malloc((size_t)st.st_size);
    if (data && read(fd, data, (size_t)st.st_size) == st.st_size) {
        free(k->data);
        k->data = data;
        k->len = (size_t)st.st_size;
        k->dev = st.st_dev;
        k->ino = st.st_ino;
        k->size = st.st_size;
        k->mtime_ns = st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
    } else {
        free(data);
    }
    close(fd);
}

/* run_dir was removed: put back the key files the herd was using. */
static void keep_restore(struct sup *s)
{
    for (size_t i = 0; i < sizeof s->kept / sizeof *s->kept; i++) {
        struct sup_kept *k = &s->kept[i];
        char *path = k->data ? config_run_path(&s->cfg, k->file) : NULL;
        if (!path)
            continue;
        if (fs_write_atomic(path, k->data, k->len, 0600) < 0)
            log_msg(LOG_ERROR, "cannot restore %s: %s", path, strerror(errno));
        else
            log_msg(LOG_WARN, "restored %s, which went with run_dir", path);
        free(path);
        free(k->data);          /* re-read from the new file */
        k->data = NULL;
    }
}

void sup_kept_free(struct sup *s)
{
    for (size_t i = 0; i < sizeof s->kept / sizeof *s->kept; i++) {
        free(s->kept[i].data);
        s->kept[i].data = NULL;
    }
}

void sup_check_run_dir(struct sup *s)
{
    struct stat st, lk;
    char err[512];
    int redone = 0;

    if (s->shutting_down)
        return;
    if (!s->kept[0].file) {
        s->kept[0].file = "herd.secret";
        s->kept[1].file = "herd.keyring";
    }
    if (stat(s->cfg.run_dir, &st) < 0) {
        if (fs_mkdir_p(s->cfg.run_dir, 0700) < 0) {
            log_msg(LOG_ERROR, "run_dir %s is gone and cannot be re-created: "
                    "%s", s->cfg.run_dir, strerror(errno));
            return;
        }
        log_msg(LOG_WARN, "run_dir %s was removed; re-created it",
                s->cfg.run_dir);
        keep_restore(s);
    }
    for (size_t i = 0; i < sizeof s->kept / sizeof *s->kept; i++)
        keep_refresh(s, &s->kept[i]);
    if (fstat(s->lock_fd, &lk) < 0 || gone(s->lock_path, lk.st_dev, lk.st_ino)) {
        static int complained;  /* once, not four times a second */
        if (sup_take_lock(s) == 0) {
            redone = 1;
            complained = 0;
        } else if (!complained++) {
            log_msg(LOG_ERROR, "cannot re-take the lock %s: %s", s->lock_path,
                    errno == EWOULDBLOCK ? "another process holds it"
                                         : strerror(errno));
        }
    }
    if (s->ctl_fd < 0 || gone(s->sock_path, s->sock_dev, s->sock_ino)) {
        if (control_reopen(s, err, sizeof err) < 0)
            log_msg(LOG_ERROR, "%s", err);
        else
            redone = 1;
    }
    if (stat(s->pid_path, &st) < 0) {
        sup_write_pid(s);
        redone = 1;
    }
    if (stat(s->state_path, &st) < 0) {
        sup_save_state(s);
        redone = 1;
    }
    if (redone)
        log_msg(LOG_WARN, "files in %s were removed; re-created the lock, "
                "control socket, pid and state files as needed",
                s->cfg.run_dir);
}

int *sup_nodes_here(const struct sup *s, const struct herd_config *cfg,
                    size_t *count)
{
    int *here = calloc(cfg->n_nodes + 1, sizeof *here);

    *count = here ? hosts_select(cfg, s->only_host, here) : 0;
    return here;
}

int sup_wants_places(const struct herd_config *cfg, size_t nodes_here)
{
    return cfg->provider == PLACES_LOCAL && nodes_here > 0;
}

