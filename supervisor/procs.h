/* procs: facts about processes from /proc, used to tell our own children
 * (including ones a killed supervisor left behind) from strangers that
 * happen to reuse a pid. */
#ifndef HERD_PROCS_H
#define HERD_PROCS_H

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

#endif
