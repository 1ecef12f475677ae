/* procs: facts about processes from /proc, used to tell our own children
 * (including ones a killed supervisor left behind) from strangers that
 * happen to reuse a pid. */
#ifndef HERD_PROCS_H
#define HERD_PROCS_H

#include <stddef.h>
#include <sys/types.h>

/* Field 22 of /proc/PID/stat (start time in clock ticks), 0 if none. */
unsigned long long procs_starttime(pid_t pid);

/* The state letter of /proc/PID/stat ('R', 'S', 'Z' for a zombie, ...);
 * '?' when the line cannot be read as one; 0 when there is no such
 * process. */
int procs_state(pid_t pid);

/* Stop the processes a previous supervisor recorded in state_path (lines
 * "PID STARTTIME NAME"), if each is still the same process: SIGTERM to
 * its group, SIGKILL after grace_s.  Returns how many were found. */
int procs_take_over(const char *state_path, int grace_s);

/* Live herd-supervisor processes (other than exclude) whose -c names the
 * same file as config (same device and inode; a relative -c resolved
 * against the process's working directory), found in /proc: the
 * supervisor of a herd is found even when its run_dir, pid file and
 * socket are gone.  Up to max pids into out; returns how many there are. */
size_t procs_find_supervisors(const char *config, pid_t exclude, pid_t *out,
                              size_t max);

/* The parent pid of pid, 0 when unknown. */
pid_t procs_parent(pid_t pid);

/* The live children of parent, up to max into out; how many. */
size_t procs_children(pid_t parent, pid_t *out, size_t max);

#endif
