/* rlimit: process limits every Herd program sets at start. */
#ifndef HERD_RLIMIT_H
#define HERD_RLIMIT_H

/* Raise the soft RLIMIT_NOFILE to the hard limit: a server of many
 * connections should not stop at a shell's default of 1024 when the
 * system allows more.  Returns the soft limit now in force (0 when it
 * cannot be read). */
unsigned long rlimit_raise_nofile(void);

#endif
