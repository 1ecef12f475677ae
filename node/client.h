/* client: one client connection: requests in, replies out in order. */
#ifndef HERD_CLIENT_H
#define HERD_CLIENT_H

#include "node.h"

/* Take an accepted socket as a client connection. */
void client_accept(struct node *n, int fd, const char *addr);

/* Send a one-line notice to a socket that will not be served, and close
 * it (too many clients). */
void client_refuse(int fd, const char *line);

/* Send the IAMAT replies held for the journal's fsync (fsync = always).
 * Called right after journal_flush(), before the loop sleeps. */
void client_release_held(void);

#endif
