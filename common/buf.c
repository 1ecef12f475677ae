#include "buf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void buf_init(struct buf *b, size_t max)
{
    memset(b, 0, sizeof *b);
    b->max = max;
}

void buf_free(struct buf *b)
{
    free(b->data);
    b->data = NULL;
    b->start = b->end = b->cap = 0;
}

void buf_compact(struct buf *b)
{
    if (b->start == 0)
        return;
    if (b->start == b->end) {
        b->start = b->end = 0;
        return;
    }
    memmove(b->data, b->data + b->start, b->end - b->start);
    b->end -= b->start;
    b->start = 0;
}

char *buf_space(struct buf *b, size_t n, size_t *room)
{
    if (b->cap - b->end < n)
        buf_compact(b);
    if (b->cap - b->end < n) {
        size_t want = b->end + n, cap = b->cap ? b->cap : 256;
        char *p;

        if (want > b->max) {
            errno = ENOBUFS;
            return NULL;
        }
        while (cap < want)
            cap *= 2;
        if (cap > b->max)
            cap = b->max;
        p = realloc(b->data, cap);
        if (p == NULL) {
            errno = ENOMEM;
            return NULL;
        }
        b->data = p;
        b->cap = cap;
    }
    if (room)
        *room = b->cap - b->end;
    return b->data + b->end;
}

void buf_commit(struct buf *b, size_t n)
{
    b->end += n;
}

int buf_append(struct buf *b, const void *p, size_t n)
{
    char *dst;

    if (n == 0)
        return 0;
    dst = buf_space(b, n, NULL);
    if (dst == NULL)
        return -1;
    memcpy(dst, p, n);
    b->end += n;
    return 0;
}

void buf_consume(struct buf *b, size_t n)
{
    if (n >= b->end - b->start) {
        b->start = b->end = 0;
        return;
    }
    b->start += n;
}

int buf_take_line(struct buf *b, const char **line, size_t *len)
{
    const char *head, *nl;

    /* A fresh buffer has no data yet: NULL + 0 is undefined in C. */
    if (b->start == b->end)
        return 0;
    head = b->data + b->start;
    nl = memchr(head, '\n', b->end - b->start);
    if (nl == NULL)
        return 0;
    *line = head;
    *len = (size_t)(nl - head);
    b->start += *len + 1;
    return 1;
}
