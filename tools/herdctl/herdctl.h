/* herdctl: the one command a person needs.  Shared pieces of its
 * commands: exit codes, the loaded herd.ini, the control socket. */
#ifndef HERDCTL_H
#define HERDCTL_H

#include <stddef.h>
#include <sys/types.h>

#include "common/config.h"

struct cJSON;

/* Exit codes, as `herdctl --help` documents them. */
#define EX_OK 0
#define EX_NOTALL 3             /* not every node runs */
#define EX_DOWN 4               /* supervisor not running, or no such node */
#define EX_USAGE 100            /* usage or herd.ini error */
#define EX_SYS 111              /* system failure */

struct ctl {
    const char *config_path;    /* as given */
    struct herd_config cfg;
    char *sock_path;
    int tty;                    /* stdout is a terminal: colour */
    const char *only_host;      /* --host ADDR, or NULL */
};

/* Send one command line to the supervisor; *reply gets its JSON.  A
 * supervisor that lives but has lost its socket gets a few seconds to
 * put it back.  0 ok; EX_DOWN when no supervisor runs; EX_SYS on other
 * failures, a supervisor that does not answer included (message
 * printed). */
int ctl_request(struct ctl *c, const char *command, struct cJSON **reply);

/* The live supervisors of this herd.ini (found in /proc, so even when
 * its socket and pid file are gone), up to max into out; how many. */
size_t ctl_supervisors(struct ctl *c, pid_t *out, size_t max);

/* When a reply has ok=false: print its error, return its code. */
int ctl_refused(struct cJSON *reply);

/* A node's object in a status reply, or NULL. */
struct cJSON *ctl_find_node(struct cJSON *status, const char *name);

/* True once pid is gone (or a zombie). */
int ctl_pid_gone(pid_t pid);

void ctl_sleep_ms(long ms);
double ctl_now(void);

/* Warn on stderr about herd.ini or the herd secret being open to others. */
void ctl_check_perms(struct ctl *c);

/* Commands; each returns herdctl's exit code. */
int cmd_start(struct ctl *c, const char *node, int foreground);
int cmd_stop(struct ctl *c, const char *node);
int cmd_restart(struct ctl *c, const char *node);
int cmd_reload(struct ctl *c, int dry);
int cmd_status(struct ctl *c, const char *node, int json);
int cmd_graph(struct ctl *c);
int cmd_check(struct ctl *c);
int cmd_send(struct ctl *c, const char *node, const char *line);
int cmd_logs(struct ctl *c, const char *node, int follow, long lines);
/* secret add [FILE] | use ID | remove ID | list: this host's keyring. */
int cmd_secret(struct ctl *c, const char *verb, const char *arg);
/* export systemd: unit files for this host's nodes into dir (NULL = the
 * current directory); output is "journal" or "file". */
int cmd_export(struct ctl *c, const char *what, const char *dir,
               const char *output, const char *user);

/* Follow every log of the herd (as `logs -f`) until stop_pid exits;
 * offsets as taken by logs_mark() before it started.  Frees the mark;
 * returns stop_pid's wait status. */
struct log_mark;
struct log_mark *logs_mark(struct ctl *c);
int logs_follow_until(struct ctl *c, struct log_mark *m, pid_t stop_pid);

#endif
