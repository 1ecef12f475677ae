#include "store.h"

#include <stdlib.h>
#include <string.h>

void store_init(struct store *s)
{
    s->table = NULL;
    s->count = 0;
}

void store_free(struct store *s)
{
    struct record *r, *tmp;

    HASH_ITER(hh, s->table, r, tmp) {
        HASH_DEL(s->table, r);
        free(r->line);
        free(r);
    }
    s->count = 0;
}

struct record *store_find(struct store *s, const char *id, size_t id_len)
{
    struct record *r = NULL;

    HASH_FIND(hh, s->table, id, id_len, r);
    return r;
}

/* >0 when the candidate should replace what is held. */
static int newer(const struct record *held, struct htime t, const char *line,
                 size_t len)
{
    int c = htime_cmp(t, held->client_time);
    size_t n;

    if (c != 0)
        return c > 0;
    n = len < held->line_len ? len : held->line_len;
    c = memcmp(line, held->line, n);
    if (c != 0)
        return c > 0;
    return len > held->line_len;
}

enum store_result store_apply(struct store *s, const char *line, size_t len,
                              const struct proto_at *at, struct record **out)
{
    uint32_t id_off = (uint32_t)(at->id.p - line);
    struct record *r = store_find(s, at->id.p, at->id.len);
    char *copy;

    if (r && !newer(r, at->client_time, line, len))
        return STORE_STALE;
    copy = malloc(len);
    if (!copy)
        return STORE_NOMEM;
    memcpy(copy, line, len);
    if (r) {
        /* Same ID bytes at a new address: point the table's key at the
         * new copy; its hash is unchanged, and so is its place in order. */
        free(r->line);
        r->line = copy;
        r->line_len = (uint32_t)len;
        r->id_off = id_off;
        r->hh.key = copy + id_off;
        r->client_time = at->client_time;
    } else {
        r = malloc(sizeof *r);
        if (!r) {
            free(copy);
            return STORE_NOMEM;
        }
        memset(r, 0, sizeof *r);
        r->line = copy;
        r->line_len = (uint32_t)len;
        r->id_off = id_off;
        r->client_time = at->client_time;
        HASH_ADD_KEYPTR(hh, s->table, r->line + id_off, at->id.len, r);
        s->count++;
    }
    if (out)
        *out = r;
    return STORE_APPLIED;
}

struct record *store_first(struct store *s)
{
    return s->table;
}

struct record *store_last(struct store *s)
{
    if (!s->table)
        return NULL;
    return ELMT_FROM_HH(s->table->hh.tbl, s->table->hh.tbl->tail);
}

struct record *store_next(struct record *r)
{
    return r->hh.next;
}
