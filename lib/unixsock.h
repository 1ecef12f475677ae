/* unixsock: a Unix stream socket at a path that may be longer than
 * sun_path allows (a deep run_dir): such a path is bound or connected to
 * by its base name from inside its directory, and the working directory
 * is put back.  The supervisor listens with it, herdctl connects. */
#ifndef HERD_UNIXSOCK_H
#define HERD_UNIXSOCK_H

/* Listen at path: non-blocking, mode 0600 from birth; any socket file
 * already there is removed (the caller holds the lock that makes it
 * stale).  Returns the fd, or -1 with errno set. */
int unixsock_listen(const char *path);

/* Connect to the socket at path (blocking).  Returns the fd, or -1 with
 * errno set. */
int unixsock_connect(const char *path);

#endif
