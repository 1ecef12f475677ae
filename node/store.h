/* store: the latest known AT line of every client, in a uthash table.
 * Records are never removed, so a pointer to one stays valid and the
 * insertion order (used by catch-up cursors) never changes. */
#ifndef HERD_STORE_H
#define HERD_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <uthash.h>

#include "common/protocol.h"

struct record {
    UT_hash_handle hh;          /* key: the client ID inside line */
    struct htime client_time;
    char *line;                 /* the stored AT line, no "\n" */
    uint32_t line_len;
    uint32_t id_off;
};

enum store_result {
    STORE_APPLIED,              /* new client, or newer than held */
    STORE_STALE,                /* not newer: nothing changed */
    STORE_NOMEM,
};

struct store {
    struct record *table;
    size_t count;
};

void store_init(struct store *s);
void store_free(struct store *s);

/* Apply an AT line (already parsed into at).  Last writer wins by client
 * time; equal times are ordered by the lines' bytes, so every node keeps
 * the same one. */
enum store_result store_apply(struct store *s, const char *line, size_t len,
                              const struct proto_at *at, struct record **out);

struct record *store_find(struct store *s, const char *id, size_t id_len);

/* Insertion order: the first record, and the one after r (NULL at end). */
struct record *store_first(struct store *s);
struct record *store_last(struct store *s);
struct record *store_next(struct record *r);

#endif
