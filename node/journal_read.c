#include "journal_read.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "common/journal_codec.h"
#include "journal_load.h"

/* A reader's buffer (it grows for a longer frame). */
#define READ_CHUNK (256u * 1024)

struct journal_reader {
    int *fd;                    /* the files, in log order */
    size_t n, cur;
    uint64_t off;               /* next frame in fd[cur] */
    uint64_t next_seq, after, end, last;
    unsigned char *buf;
    size_t cap, have;
    uint64_t buf_off;           /* file offset of buf[0] */
};

struct journal_reader *journal_reader_files(const char *const *paths,
                                            size_t n, uint64_t off,
                                            uint64_t next_seq, uint64_t after,
                                            uint64_t end, const char **why)
{
    struct journal_reader *r = calloc(1, sizeof *r);

    if (!r || !(r->fd = calloc(n ? n : 1, sizeof *r->fd)) ||
        !(r->buf = malloc(READ_CHUNK))) {
        if (r)
            free(r->fd);
        free(r);
        *why = "out of memory";
        return NULL;
    }
    r->cap = READ_CHUNK;
    for (size_t i = 0; i < n; i++) {
        int fd = open(paths[i], O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            *why = "a backlog file cannot be opened";
            journal_reader_close(r);
            return NULL;
        }
        r->fd[r->n++] = fd;
    }
    r->off = off < JC_JOURNAL_HEAD ? JC_JOURNAL_HEAD : off;
    r->next_seq = next_seq;
    r->after = after;
    r->last = after;
    r->end = end;
    return r;
}

/* Make the frame at r->off whole in the buffer: 1, 0 at the end of the
 * file (or a torn tail), -1 corrupt. */
static int reader_frame(struct journal_reader *r, const unsigned char **payload,
                        size_t *plen)
{
    for (int tries = 0; tries < 3; tries++) {
        size_t at = (size_t)(r->off - r->buf_off);
        int rc = 0;

        if (r->off >= r->buf_off && at <= r->have)
            rc = jc_frame_decode(r->buf + at, r->have - at, payload, plen);
        if (rc != 0)
            return rc;
        /* Not whole here: read from the frame on (a bigger buffer when
         * the frame is longer than it). */
        if (r->off >= r->buf_off && at <= r->have && r->have - at >= 4) {
            uint32_t len = (uint32_t)r->buf[at] | (uint32_t)r->buf[at + 1] << 8 |
                           (uint32_t)r->buf[at + 2] << 16 |
                           (uint32_t)r->buf[at + 3] << 24;
            size_t need = JC_FRAME_HEAD + (size_t)len;
            if (len <= JC_MAX_PAYLOAD && need > r->cap) {
                unsigned char *b = realloc(r->buf, need);
                if (!b)
                    return -1;
                r->buf = b;
                r->cap = need;
            }
        }
        ssize_t got = pread(r->fd[r->cur], r->buf, r->cap, (off_t)r->off);
        if (got < 0)
            return -1;
        r->buf_off = r->off;
        r->have = (size_t)got;
        if (got == 0)
            return 0;
    }
    return 0;
}

int journal_reader_next(struct journal_reader *r, const char **line,
                        size_t *len)
{
    while (r->cur < r->n) {
        const unsigned char *payload;
        size_t plen;
        char peer[CONFIG_NAME_MAX + 1];
        uint64_t epoch, seq;
        int rc = reader_frame(r, &payload, &plen), kind;

        if (rc < 0)
            return -1;
        if (rc == 0) {
            r->cur++;
            r->off = JC_JOURNAL_HEAD;
            r->have = 0;
            continue;
        }
        r->off += JC_FRAME_HEAD + plen;
        kind = journal_control_parse(payload, plen, peer, &epoch, &seq);
        if (kind == 1)
            r->next_seq = seq;
        if (kind != 0)
            continue;
        seq = r->next_seq++;
        if (seq <= r->after)
            continue;
        if (seq > r->end)
            break;
        r->last = seq;
        *line = (const char *)payload;
        *len = plen;
        return 1;
    }
    r->last = r->end;
    return 0;
}

uint64_t journal_reader_seq(const struct journal_reader *r)
{
    return r->last;
}

void journal_reader_close(struct journal_reader *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++)
        close(r->fd[i]);
    free(r->fd);
    free(r->buf);
    free(r);
}
