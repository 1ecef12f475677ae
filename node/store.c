#include "store.h"

#include <stdlib.h>
#include <string.h>

#include <htslib/khash.h>

#include "common/peerproto.h"

/* A lookup key: the ID being sought.  It travels through the table's
 * hash and equality functions as a record pointer with its low bit set
 * (records come from malloc and are never odd). */
struct probe {
    const char *id;
    size_t id_len;
};

static struct record *as_key(const struct probe *p)
{
    return (struct record *)((uintptr_t)p | 1u);
}

const char *record_line(const struct record *r, size_t *len)
{
    const char *line = (const char *)r;
    const char *nl = rawmemchr(line, '\n');

    *len = (size_t)(nl - line);
    return line;
}

static const char *record_id(const struct record *r, size_t *len)
{
    const char *line, *p;

    if ((uintptr_t)r & 1u) {
        const struct probe *pr = (const struct probe *)((uintptr_t)r & ~(uintptr_t)1u);
        *len = pr->id_len;
        return pr->id;
    }
    /* "AT SERVER DIFF ID ...": the ID follows the third space and runs to
     * the fourth (no field holds whitespace, and a stored line always has
     * all six fields, so the scans need no length). */
    line = (const char *)r;
    p = rawmemchr(line + 3, ' ');
    p = (const char *)rawmemchr(p + 1, ' ') + 1;
    *len = (size_t)((const char *)rawmemchr(p, ' ') - p);
    return p;
}

/* FNV-1a over the ID's bytes. */
static khint_t record_hash(const struct record *r)
{
    size_t len;
    const unsigned char *p = (const unsigned char *)record_id(r, &len);
    uint32_t h = 2166136261u;

    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 16777619u;
    }
    return h;
}

static int record_equal(const struct record *a, const struct record *b)
{
    size_t alen, blen;
    const char *aid = record_id(a, &alen), *bid = record_id(b, &blen);

    return alen == blen && memcmp(aid, bid, alen) == 0;
}

KHASH_INIT(records, struct record *, char, 0, record_hash, record_equal)

int store_init(struct store *s)
{
    s->table = kh_init(records);
    s->count = 0;
    s->bytes = 0;
    return s->table ? 0 : -1;
}

void store_free(struct store *s)
{
    if (!s->table)
        return;
    for (khint_t k = 0; k < kh_end(s->table); k++)
        if (kh_exist(s->table, k))
            free(kh_key(s->table, k));
    kh_destroy(records, s->table);
    s->table = NULL;
    s->count = 0;
    s->bytes = 0;
}

static khint_t find(const struct store *s, const char *id, size_t id_len)
{
    struct probe p = {id, id_len};

    return kh_get(records, s->table, as_key(&p));
}

struct record *store_find(struct store *s, const char *id, size_t id_len)
{
    khint_t k = find(s, id, id_len);

    return k == kh_end(s->table) ? NULL : kh_key(s->table, k);
}

/* The client time is the line's last field; held records keep no copy of
 * it (memory per record matters more than this parse, which runs only
 * when a client already known sends again). */
static struct htime held_time(const char *line, size_t len)
{
    const char *space = memrchr(line, ' ', len);
    struct htime t = {0, 0};

    if (space)
        htime_parse(space + 1, len - (size_t)(space + 1 - line), &t);
    return t;
}

/* >0 when the candidate should replace what is held. */
static int newer(const struct record *held, struct htime t, const char *line,
                 size_t len)
{
    size_t held_len;
    const char *held_line = record_line(held, &held_len);
    int c = htime_cmp(t, held_time(held_line, held_len));
    size_t n;

    if (c != 0)
        return c > 0;
    n = len < held_len ? len : held_len;
    c = memcmp(line, held_line, n);
    if (c != 0)
        return c > 0;
    return len > held_len;
}

static void fill(struct record *r, const char *line, size_t len)
{
    memcpy(r, line, len);
    ((char *)r)[len] = '\n';
}

enum store_result store_apply(struct store *s, const char *line, size_t len,
                              const struct proto_at *at, struct record **out)
{
    khint_t k = find(s, at->id.p, at->id.len);
    struct record *r;
    int ret;

    /* The terminator marks the end: a line holding one cannot be stored
     * (a parsed AT line never does). */
    if (memchr(line, '\n', len) != NULL)
        return STORE_STALE;
    /* What no link could carry is not held (a journal written by an
     * older version may hold such a record): every node keeps the same. */
    if (len > PEER_RECORD_MAX)
        return STORE_TOOLONG;
    if (k != kh_end(s->table)) {
        size_t held_len;

        r = kh_key(s->table, k);
        if (!newer(r, at->client_time, line, len))
            return STORE_STALE;
        record_line(r, &held_len);
        if (held_len != len) {
            /* Same ID, so same hash and bucket: only the pointer moves. */
            struct record *moved = realloc(r, len + 1);
            if (!moved)
                return STORE_NOMEM;
            r = moved;
            kh_key(s->table, k) = r;
        }
        fill(r, line, len);
        s->bytes += len - held_len;     /* unsigned: wraps back when shorter */
    } else {
        r = malloc(len + 1);
        if (!r)
            return STORE_NOMEM;
        fill(r, line, len);
        kh_put(records, s->table, r, &ret);
        if (ret < 0) {
            free(r);
            return STORE_NOMEM;
        }
        s->count++;
        s->bytes += len + 1;
    }
    if (out)
        *out = r;
    return STORE_APPLIED;
}

void store_cursor_start(const struct store *s, struct store_cursor *c)
{
    c->next = 0;
    c->n_buckets = kh_end(s->table);
}

struct record *store_cursor_next(const struct store *s, struct store_cursor *c)
{
    if (c->n_buckets != kh_end(s->table)) {
        /* The table grew and rehashed: start over. */
        c->next = 0;
        c->n_buckets = kh_end(s->table);
    }
    while (c->next < kh_end(s->table)) {
        khint_t k = c->next++;
        if (kh_exist(s->table, k))
            return kh_key(s->table, k);
    }
    return NULL;
}
