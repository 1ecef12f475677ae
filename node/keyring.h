/* keyring: the node's link keys (run_dir/herd.keyring, else the single
 * run_dir/herd.secret), loaded at start and again whenever the keyring
 * file changes or the node gets SIGHUP, without a restart. */
#ifndef HERD_KEYRING_H
#define HERD_KEYRING_H

#include <stddef.h>

struct node;

/* Load n->keys and start watching the file.  0, or -1 with err. */
int keyring_start(struct node *n, char *err, size_t errlen);

/* Load again; on a change, tell the links.  A file that does not parse
 * is refused (logged) and the keys in use stay. */
void keyring_reload(struct node *n);

void keyring_stop(struct node *n);

#endif
