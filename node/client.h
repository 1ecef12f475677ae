/* client: one client connection: requests in, replies out in order. */
#ifndef HERD_CLIENT_H
#define HERD_CLIENT_H

#include "node.h"

/* Take an accepted socket as a client connection; spare: in a slot past
 * max_clients, which only a neighbour's link opening may keep. */
void client_accept(struct node *n, int fd, const char *addr, int spare);

/* The node is full: close the client connection idle the longest, if it
 * has been idle (nothing under way) at least 1 s.  1 when one was closed. */
int client_evict_idle(struct node *n, ev_tstamp now);

/* Every spare slot is held: close the oldest connection in one (none of
 * them has opened a link yet) if it has been there 0.5 s, so strangers
 * who keep reconnecting cannot hold a neighbour out.  1 when one was
 * closed. */
int client_evict_spare(struct node *n, ev_tstamp now);

/* Once a second: close connections that sent no request within
 * idle_timeout_s of connecting (5 s in a spare slot), and those silent
 * for idle_timeout_s with nothing under way. */
void client_sweep_idle(struct node *n, ev_tstamp now);

/* Send a one-line notice to a socket that will not be served, and close
 * it (too many clients). */
void client_refuse(int fd, const char *line);

/* Send the IAMAT replies held for the journal's fsync (fsync = always).
 * Called right after journal_flush(), before the loop sleeps. */
void client_release_held(void);

#endif
