/* link: the TLS link to one neighbour.  The node whose name
 * sorts first dials; the other accepts.  See docs/PEERS.md. */
#ifndef HERD_LINK_H
#define HERD_LINK_H

#include <stddef.h>
#include <stdint.h>

#include "common/peerproto.h"
#include "node.h"

struct conn;

enum link_state {
    LINK_DOWN,
    LINK_CONNECTING,
    LINK_HANDSHAKE,
    LINK_UP,
};

/* Catch-up figures of one link, for the status file. */
struct link_catchup {
    const char *mode;           /* the last we sent: "incremental", "full",
                                   or "none" yet */
    unsigned long long sent_records, sent_bytes;        /* the last we sent */
    unsigned long long received_records, received_bytes; /* last received */
    unsigned long long incremental, full;   /* catch-ups sent of each kind */
    int sending, receiving;     /* under way */
    /* where this node is in the peer's log (HERD-MARK) */
    uint64_t their_epoch, their_seq;
};

const struct link_catchup *link_catchup(const struct link *l);

/* Create the links of n->cfg's node n->name, and start dialing. */
int link_start_all(struct node *n);

/* Apply a reloaded herd.ini: drop links that went, add new ones, redial
 * ones whose address changed; the rest stay up. */
void link_reconfigure(struct node *n);

/* A client connection said HERD-HELLO: when it names a neighbour that
 * dials us, take the connection over (returns 1): for the TLS handshake,
 * or to refuse it in clear (an old node, a key not in the keyring). */
int link_accept(struct node *n, struct conn *c, const struct peer_msg *hello);

/* The keyring changed (n->keys): drop what removed keys keyed, re-key
 * the links this node dials onto the new primary. */
void link_keyring_changed(struct node *n);

/* Send an applied update to every link that is up, but from. */
void link_flood(struct node *n, const char *line, size_t len, struct link *from);

/* Once a second: pings, silent peers, handshake timeouts. */
void link_tick(struct node *n, double now);

void link_free_all(struct node *n);

size_t link_count_up(const struct node *n);
const char *link_peer(const struct link *l);
enum link_state link_state(const struct link *l);
const char *link_state_name(enum link_state s);

#endif
