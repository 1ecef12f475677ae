/* procs: facts about processes from /proc, used to tell our own children
 * (including ones a killed supervisor left behind) from strangers that
 * happen to reuse a pid, and to find a program's run by its -c file. */
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

/* Stop the processes listed in state_path (lines "PID STARTTIME NAME", as
 * the supervisor writes its state), if each is still the same process:
 * SIGTERM to its group, SIGKILL after grace_s; say() is told of each
 * step.  Returns how many were found. */
int procs_take_over(const char *state_path, int grace_s,
                    void (*say)(const char *name, pid_t pid, const char *what));

/* Live runs of the program prog (its argv[0] or executable's base name)
 * other than exclude whose -c names the same file as config (same device
 * and inode; a relative -c resolved against the process's working
 * directory), found in /proc: a herd's supervisor is found this way
 * even when its run_dir, pid file and socket are gone.  Up to max pids
 * into out; returns how many there are. */
size_t procs_find_config(const char *prog, const char *config, pid_t exclude,
                         pid_t *out, size_t max);

/* The parent pid of pid, 0 when unknown. */
pid_t procs_parent(pid_t pid);

/* The live children of parent, up to max into out; how many. */
size_t procs_children(pid_t parent, pid_t *out, size_t max);

#endif
