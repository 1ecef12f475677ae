/* sup: the supervisor's state and its core operations (sup.c; the reload
 * in reload.c).  One struct sup per process; the children it runs hang
 * off it in a list (places first, then the nodes in herd.ini order).
 * child.c, control.c and reload.c call these, and sup.c calls child.c:
 * the state module and the modules it serves, no circle through main.c. */
#ifndef HERD_SUP_H
#define HERD_SUP_H

#include <ev.h>
#include <sys/types.h>

#include "child.h"
#include "common/config.h"

struct http;

/* A copy of a key file of run_dir (herd.secret, herd.keyring), to put
 * back if run_dir is removed under the herd: a node restarted after
 * that would otherwise make a new secret and be refused by the rest. */
struct sup_kept {
    const char *file;           /* its name in run_dir */
    char *data;                 /* NULL until seen */
    size_t len;
    dev_t dev;
    ino_t ino;
    long long mtime_ns;
    off_t size;
};

#define SUP_KEPT_MAX (64 * 1024)   /* bigger ones are not kept */

struct sup {
    struct ev_loop *loop;
    char *config_path;          /* absolute */
    char *only_host;            /* --host ADDR, or NULL: this machine's */
    struct herd_config cfg;     /* the configuration in force */
    char *node_bin;             /* herd-node next to this binary */
    char *places_bin;           /* herd-places next to this binary */
    char *sock_path, *pid_path, *state_path, *lock_path;
    pid_t pid;
    double started;             /* wall clock, for status */
    int shutting_down;          /* stop everything, then exit */
    int lock_fd;
    int ctl_fd;
    dev_t sock_dev;             /* the socket file we bound, to notice */
    ino_t sock_ino;             /* it removed or replaced */
    int notify_fd;              /* herdctl waits on it; -1 once told */
    struct child *children;
    struct http *http;          /* the HTTP face (http.h), NULL when off */
    struct sup_kept kept[2];
    ev_io ctl_w;
    ev_child child_w;
    ev_signal term_w, int_w, hup_w;
    ev_timer tick_w;
};

/* Write run_dir/supervisor.state (pid and start time of every child), so
 * the next supervisor can find children a killed one left behind. */
void sup_save_state(struct sup *s);

/* Called whenever a child is reaped: exits the loop once shutting down
 * and nothing is left. */
void sup_check_done(struct sup *s);

/* Re-read herd.ini and apply it (dry = only describe).  Returns a cJSON
 * object {"ok":..,"changes":[..]} for the control reply (caller frees). */
struct cJSON *sup_reload(struct sup *s, int dry);

/* Which nodes of cfg this supervisor runs (hosts_select with its
 * --host), as a calloc'd array of n_nodes flags (caller frees); and
 * whether the places emulator belongs here (provider local and at least
 * one node here). */
int *sup_nodes_here(const struct sup *s, const struct herd_config *cfg,
                    size_t *count);
int sup_wants_places(const struct herd_config *cfg, size_t nodes_here);

/* Start, as a unit, the shutdown of every child. */
void sup_shutdown(struct sup *s);

/* The child of that kind (and, for a node, name) that herd.ini still has
 * (removed ones being stopped do not count), or NULL. */
struct child *sup_find_child(struct sup *s, enum child_kind kind,
                             const char *name);
/* The same by name alone ("places" names the emulator). */
struct child *sup_find(struct sup *s, const char *name);

/* waitpid() said pid is gone with this status: tell its child, free it
 * if it was removed, and exit the loop once shutting down is done. */
void sup_reaped(struct sup *s, pid_t pid, int status);

/* The lock at s->lock_path (a new file when the old one was removed).
 * 0, or -1 with errno (EWOULDBLOCK: another process holds it). */
int sup_take_lock(struct sup *s);
/* Write run_dir/supervisor.pid (an error is logged). */
void sup_write_pid(struct sup *s);
/* Put back run_dir, the lock, socket, pid and state files if something
 * removed them (once a tick). */
void sup_check_run_dir(struct sup *s);
/* Free the copies sup_check_run_dir keeps. */
void sup_kept_free(struct sup *s);

#endif
