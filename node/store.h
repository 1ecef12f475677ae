/* store: the latest known AT line of every client, in a khash table (klib,
 * as shipped in Debian's libhts-dev).  One allocation per record, the line
 * itself; the table holds only pointers.  Records are never removed. */
#ifndef HERD_STORE_H
#define HERD_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "common/protocol.h"

/* A record is its AT line followed by "\n", in one allocation and
 * nothing else: no line holds a "\n", so the terminator gives the length,
 * and the ID is the fourth field.  The type is opaque; use the accessors. */
struct record;

/* The stored AT line (without "\n") and its length. */
const char *record_line(const struct record *r, size_t *len);

enum store_result {
    STORE_APPLIED,              /* new client, or newer than held */
    STORE_STALE,                /* not newer: nothing changed */
    STORE_NOMEM,
    STORE_TOOLONG,              /* longer than PEER_RECORD_MAX: refused */
};

struct kh_records_s;

struct store {
    struct kh_records_s *table;
    size_t count;
    size_t bytes;               /* of the lines held, terminators included */
};

/* A walk over every record that survives new records arriving between its
 * steps.  When the table grows meanwhile, records move, so the walk starts
 * over: records may then be seen twice, never missed. */
struct store_cursor {
    uint32_t next;
    uint32_t n_buckets;
};

int store_init(struct store *s);
void store_free(struct store *s);

/* Apply an AT line (already parsed into at).  Last writer wins by client
 * time; equal times are ordered by the lines' bytes, so every node keeps
 * the same one.  *out (if given) is the record now held. */
enum store_result store_apply(struct store *s, const char *line, size_t len,
                              const struct proto_at *at, struct record **out);

struct record *store_find(struct store *s, const char *id, size_t id_len);

void store_cursor_start(const struct store *s, struct store_cursor *c);
/* The next record, or NULL when the walk is done. */
struct record *store_cursor_next(const struct store *s, struct store_cursor *c);

#endif
