/* buf: a byte buffer with a read cursor, used for line input and for
 * output queues.  It grows on demand up to a hard cap. */
#ifndef HERD_BUF_H
#define HERD_BUF_H

#include <stddef.h>

struct buf {
    char *data;
    size_t start;               /* first unread byte */
    size_t end;                 /* one past the last byte */
    size_t cap;                 /* allocated */
    size_t max;                 /* never grows past this */
};

void buf_init(struct buf *b, size_t max);
void buf_free(struct buf *b);

static inline size_t buf_len(const struct buf *b) { return b->end - b->start; }
/* Never NULL: a buffer that has not allocated yet reads as "" (NULL + 0
 * would be undefined, and callers pass the head along with buf_len()). */
static inline const char *buf_head(const struct buf *b)
{
    return b->data ? b->data + b->start : "";
}

/* Make room for at least n more bytes at the end; returns a pointer to the
 * free space and its size in *room, or NULL when the cap forbids it
 * (errno = ENOBUFS) or memory is short (ENOMEM).  Compacts first. */
char *buf_space(struct buf *b, size_t n, size_t *room);

/* Record that n bytes were written at the pointer buf_space() returned. */
void buf_commit(struct buf *b, size_t n);

/* Append n bytes.  0, or -1 (errno ENOBUFS past the cap, or ENOMEM). */
int buf_append(struct buf *b, const void *p, size_t n);

/* Drop n bytes from the front. */
void buf_consume(struct buf *b, size_t n);

/* Find the next complete line.  Returns 1 and sets *line and *len (the line
 * without its "\n") and consumes it; 0 when no full line is buffered yet. */
int buf_take_line(struct buf *b, const char **line, size_t *len);

/* Move unread bytes to the front (once per read, not per line). */
void buf_compact(struct buf *b);

#endif
