#include "journal_load.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/grow.h"
#include "common/journal_codec.h"
#include "common/log.h"
#include "common/protocol.h"

int journal_load_fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc;

    if (fd < 0)
        return -1;
    rc = fsync(fd);
    close(fd);
    return rc;
}

int journal_load_write_all(int fd, const void *p, size_t n, uint64_t off)
{
    const unsigned char *b = p;

    while (n > 0) {
        ssize_t w = pwrite(fd, b, n, (off_t)off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (w == 0) {
            errno = EIO;
            return -1;
        }
        b += w;
        n -= (size_t)w;
        off += (uint64_t)w;
    }
    return 0;
}

/* Move a file that cannot be trusted out of the way, keeping it. */
static char *set_aside(const char *path)
{
    char stamp[32], suffix[48], *aside;
    time_t t = time(NULL);
    struct tm tm;
    size_t n;

    gmtime_r(&t, &tm);
    strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
    snprintf(suffix, sizeof suffix, ".corrupt-%s", stamp);
    n = strlen(path) + strlen(suffix) + 1;
    aside = malloc(n);
    if (!aside)
        return NULL;
    snprintf(aside, n, "%s%s", path, suffix);
    if (rename(path, aside) < 0) {
        free(aside);
        return NULL;
    }
    return aside;
}

/* Map a whole file read-only; *len 0 and NULL for an empty one. */
static int map_file(int fd, const unsigned char **p, size_t *len)
{
    struct stat st;
    void *m;

    *p = NULL;
    *len = 0;
    if (fstat(fd, &st) < 0)
        return -1;
    if (st.st_size == 0)
        return 0;
    m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m == MAP_FAILED)
        return -1;
    *p = m;
    *len = (size_t)st.st_size;
    return 0;
}

int journal_log_set_pos(struct journal_log *log, const char *peer,
                        uint64_t epoch, uint64_t seq)
{
    struct journal_pos *p;
    size_t i;

    for (i = 0; i < log->n_pos; i++)
        if (strcmp(log->pos[i].peer, peer) == 0)
            break;
    if (i == log->n_pos) {
        if (log->n_pos == JOURNAL_MAX_PEERS ||
            strlen(peer) > CONFIG_NAME_MAX)
            return -1;
        p = realloc(log->pos, (log->n_pos + 1) * sizeof *p);
        if (!p)
            return -1;
        log->pos = p;
        snprintf(p[log->n_pos].peer, sizeof p->peer, "%s", peer);
        log->n_pos++;
    }
    log->pos[i].epoch = epoch;
    log->pos[i].seq = seq;
    return 0;
}

const struct journal_pos *journal_log_find_pos(const struct journal_log *log,
                                               const char *peer)
{
    for (size_t i = 0; i < log->n_pos; i++)
        if (strcmp(log->pos[i].peer, peer) == 0)
            return &log->pos[i];
    return NULL;
}

void journal_log_free(struct journal_log *log)
{
    free(log->pos);
    log->pos = NULL;
    log->n_pos = 0;
}

int journal_index_add(struct journal_index *x, uint64_t off, uint64_t seq)
{
    if (x->n > 0 && off < x->m[x->n - 1].off + JOURNAL_INDEX_STEP)
        return 0;
    if (GROW(x->m, x->cap, x->n + 1, 64) < 0)
        return -1;
    x->m[x->n].off = off;
    x->m[x->n].seq = seq;
    x->n++;
    return 0;
}

const struct journal_mark *journal_index_find(const struct journal_index *x,
                                              uint64_t seq)
{
    size_t lo = 0, hi = x->n;

    if (x->n == 0)
        return NULL;
    /* The last mark with m.seq <= seq: marks are in file order, and
     * numbers never go down along a file. */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (x->m[mid].seq <= seq)
            lo = mid;
        else
            hi = mid;
    }
    return &x->m[lo];
}

void journal_index_cut(struct journal_index *x, uint64_t off)
{
    while (x->n > 0 && x->m[x->n - 1].off >= off)
        x->n--;
}

void journal_index_free(struct journal_index *x)
{
    free(x->m);
    x->m = NULL;
    x->n = x->cap = 0;
}

static int hex_epoch(const unsigned char *p, size_t len, uint64_t *out)
{
    uint64_t v = 0;

    if (len != 16)
        return -1;
    for (size_t i = 0; i < len; i++) {
        unsigned c = p[i];
        if (c >= '0' && c <= '9')
            v = v * 16 + (c - '0');
        else if (c >= 'a' && c <= 'f')
            v = v * 16 + (c - 'a' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

static int dec_seq(const unsigned char *p, size_t len, uint64_t *out)
{
    uint64_t v = 0;

    if (len == 0 || len > 19)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        v = v * 10 + (p[i] - '0');
    }
    *out = v;
    return 0;
}

int journal_control_parse(const unsigned char *p, size_t len,
                          char peer[CONFIG_NAME_MAX + 1], uint64_t *epoch,
                          uint64_t *seq)
{
    const unsigned char *f[5];
    size_t fl[5], n = 0, i = 0;

    if (len < 5 || memcmp(p, "HERD-", 5) != 0)
        return 0;
    /* Fields split at single spaces: we wrote these lines ourselves. */
    while (i <= len && n < 5) {
        size_t k = i;
        while (k < len && p[k] != ' ')
            k++;
        f[n] = p + i;
        fl[n] = k - i;
        n++;
        i = k + 1;
    }
    if (i <= len)
        return -1;              /* more than 5 fields */
    if (n == 3 && fl[0] == 8 && memcmp(f[0], "HERD-LOG", 8) == 0 &&
        hex_epoch(f[1], fl[1], epoch) == 0 && dec_seq(f[2], fl[2], seq) == 0)
        return 1;
    if (n == 4 && fl[0] == 8 && memcmp(f[0], "HERD-POS", 8) == 0 &&
        config_name_valid((const char *)f[1], fl[1]) &&
        hex_epoch(f[2], fl[2], epoch) == 0 && dec_seq(f[3], fl[3], seq) == 0) {
        memcpy(peer, f[1], fl[1]);
        peer[fl[1]] = '\0';
        return 2;
    }
    return -1;
}

size_t journal_control_log(uint64_t epoch, uint64_t next, char *buf,
                           size_t cap)
{
    int n = snprintf(buf, cap, "HERD-LOG %016llx %llu",
                     (unsigned long long)epoch, (unsigned long long)next);
    return n < 0 ? 0 : (size_t)n;
}

size_t journal_control_pos(const char *peer, uint64_t epoch, uint64_t seq,
                           char *buf, size_t cap)
{
    int n = snprintf(buf, cap, "HERD-POS %s %016llx %llu", peer,
                     (unsigned long long)epoch, (unsigned long long)seq);
    return n < 0 ? 0 : (size_t)n;
}

/* What one pass over a file's frames did. */
struct frames {
    uint64_t count;             /* frames read */
    unsigned long bad;          /* frames whose payload is no AT line */
    size_t end;                 /* offset of the first frame not read */
    int stop;                   /* 1 read to the end, 0 torn, -1 corrupt */
};

/* The one decode-and-apply loop: every frame of p[off, end) up to the
 * first that does not decode.  Records go into s (when not NULL) and are
 * numbered in log; control frames move log; idx (when not NULL) gets a
 * mark every JOURNAL_INDEX_STEP bytes.  -1 when memory runs out. */
static int apply_frames(struct store *s, const unsigned char *p, size_t off,
                        size_t end, struct frames *f, struct journal_log *log,
                        struct journal_index *idx)
{
    f->count = 0;
    f->bad = 0;
    f->stop = 1;
    while (off < end) {
        const unsigned char *payload;
        size_t plen;
        struct proto_at at;
        char peer[CONFIG_NAME_MAX + 1];
        uint64_t epoch, seq;
        int rc = jc_frame_decode(p + off, end - off, &payload, &plen), kind;

        if (rc != 1) {
            f->stop = rc;
            break;
        }
        if (idx && log)
            journal_index_add(idx, off, log->next_seq);
        off += JC_FRAME_HEAD + plen;
        kind = journal_control_parse(payload, plen, peer, &epoch, &seq);
        if (kind == 1 && log) {
            if (epoch != log->epoch) {
                /* A log begun afresh: what we held of others' logs before
                 * it is not known to be on disk. */
                log->n_pos = 0;
                log->epoch = epoch;
                log->epoch_first = seq;
            }
            log->next_seq = seq;
            continue;
        }
        if (kind == 2 && log) {
            journal_log_set_pos(log, peer, epoch, seq);
            continue;
        }
        if (kind != 0) {
            if (kind < 0)
                f->bad++;
            continue;
        }
        if (log)
            log->next_seq++;
        f->count++;
        if (!s)
            continue;
        if (proto_parse_at((const char *)payload, plen, &at) < 0)
            f->bad++;
        else if (store_apply(s, (const char *)payload, plen, &at, NULL) ==
                 STORE_NOMEM)
            return -1;
    }
    f->end = off;
    return 0;
}

static void log_bad(const struct frames *f, const char *path)
{
    if (f->bad)
        log_msg(LOG_WARN, "journal: %lu unreadable records in %s skipped",
                f->bad, path);
}

/* Open and map path read-only.  1 mapped (*p may be NULL for an empty
 * file), 0 absent, -1 with a message in err. */
static int map_path(const char *path, const unsigned char **p, size_t *len,
                    char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0) {
        if (errno == ENOENT)
            return 0;
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    if (map_file(fd, p, len) < 0) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    close(fd);
    return 1;
}

/* The snapshot: -1 only when it cannot be read at all (a corrupt one is
 * set aside and the node goes on without it). */
static int load_snapshot(const struct journal_files *jf, struct store *s,
                         struct journal_loaded *out, char *err, size_t errlen)
{
    const unsigned char *p;
    const char *why = NULL;
    struct frames f;
    uint64_t count;
    size_t len;
    int rc = map_path(jf->snap_path, &p, &len, err, errlen);

    if (rc <= 0)
        return rc;
    if (jc_snapshot_check(p ? p : (const unsigned char *)"", len, &count,
                          &why) < 0) {
        char *aside;

        if (p)
            munmap((void *)p, len);
        aside = set_aside(jf->snap_path);
        log_msg(LOG_ERROR, "journal: snapshot %s is corrupt (%s); set aside as "
                "%s; starting from the journal and the neighbours",
                jf->snap_path, why, aside ? aside : "(cannot rename it)");
        fprintf(stderr, "herd-node: error: snapshot %s is corrupt (%s); set "
                "aside as %s\n", jf->snap_path, why, aside ? aside : "?");
        if (!aside) {
            snprintf(err, errlen, "cannot set corrupt %s aside: %s",
                     jf->snap_path, strerror(errno));
            return -1;
        }
        free(aside);
        out->damaged = 1;
        return 0;
    }
    /* jc_snapshot_check() has decoded every frame already. */
    rc = apply_frames(s, p, JC_SNAPSHOT_HEAD, len - JC_SNAPSHOT_TRAIL, &f,
                      NULL, NULL);
    munmap((void *)p, len);
    if (rc < 0) {
        snprintf(err, errlen, "out of memory loading %s", jf->snap_path);
        return -1;
    }
    log_bad(&f, jf->snap_path);
    out->snap_size = len;
    out->from_snap = count;
    return 0;
}

/* NAME.journal.old: left by a compaction that did not finish.  Read it
 * (never written again); the caller asks for a snapshot, which removes
 * it. */
static int load_old(const struct journal_files *jf, struct store *s,
                    struct journal_loaded *out,
                    struct journal_loaded_file *file, char *err, size_t errlen)
{
    const unsigned char *p;
    struct frames f;
    size_t len;
    int rc = map_path(jf->old_path, &p, &len, err, errlen);

    if (rc <= 0)
        return rc;
    out->old_found = 1;
    if (!p || jc_journal_head_check(p, len) != 1) {
        log_msg(LOG_WARN, "journal: %s has no journal header; ignored",
                jf->old_path);
        if (p)
            munmap((void *)p, len);
        return 0;
    }
    /* Part of the log only with a header (a file without one is read by
     * nobody). */
    file->present = 1;
    file->first_seq = out->log.next_seq;
    rc = apply_frames(s, p, JC_JOURNAL_HEAD, len, &f, &out->log,
                      &file->index);
    munmap((void *)p, len);
    file->size = f.end;
    if (rc < 0) {
        snprintf(err, errlen, "out of memory loading %s", jf->old_path);
        return -1;
    }
    out->from_old = f.count;
    if (f.end < len)
        log_msg(LOG_WARN, "journal: ignored %zu bytes of torn tail at offset "
                "%zu of %s", len - f.end, f.end, jf->old_path);
    return 0;
}

/* Start the journal file afresh: just its header. */
static int journal_reset(int fd)
{
    unsigned char head[JC_JOURNAL_HEAD];

    jc_journal_head(head);
    if (ftruncate(fd, 0) < 0 ||
        journal_load_write_all(fd, head, sizeof head, 0) < 0)
        return -1;
    return 0;
}

static int load_journal(const struct journal_files *jf, struct store *s,
                        struct journal_loaded *out,
                        struct journal_loaded_file *file, char *err,
                        size_t errlen)
{
    const unsigned char *p;
    struct frames f;
    size_t len;
    int created = 0, head;

    out->fd = open(jf->path, O_RDWR | O_CLOEXEC);
    if (out->fd < 0 && errno == ENOENT) {
        out->fd = open(jf->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        created = 1;
    }
    if (out->fd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", jf->path, strerror(errno));
        return -1;
    }
    if (map_file(out->fd, &p, &len) < 0) {
        snprintf(err, errlen, "cannot read %s: %s", jf->path, strerror(errno));
        return -1;
    }
    head = p ? jc_journal_head_check(p, len) : 0;
    if (head < 0) {
        /* Not a journal of ours at all: keep it for a person to look at,
         * and start a new one. */
        char *aside;

        munmap((void *)p, len);
        aside = set_aside(jf->path);
        log_msg(LOG_ERROR, "journal: %s is not a journal (bad header); set "
                "aside as %s; starting a new one", jf->path,
                aside ? aside : "(cannot rename it)");
        fprintf(stderr, "herd-node: error: %s is not a journal; set aside as "
                "%s\n", jf->path, aside ? aside : "?");
        if (!aside) {
            snprintf(err, errlen, "cannot set %s aside: %s", jf->path,
                     strerror(errno));
            return -1;
        }
        free(aside);
        out->damaged = 1;
        close(out->fd);
        out->fd = open(jf->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (out->fd < 0) {
            snprintf(err, errlen, "cannot create %s: %s", jf->path,
                     strerror(errno));
            return -1;
        }
        p = NULL;
        len = 0;
        created = 1;
    }
    file->present = 1;
    file->first_seq = out->log.next_seq;
    if (head <= 0) {
        /* Empty, new, or torn while its header was being written. */
        if (len > 0)
            log_msg(LOG_WARN, "journal: truncated %zu bytes of torn tail at "
                    "offset 0 (incomplete header)", len);
        if (p)
            munmap((void *)p, len);
        if (journal_reset(out->fd) < 0 || fsync(out->fd) < 0 ||
            (created && journal_load_fsync_dir(jf->dir) < 0)) {
            snprintf(err, errlen, "cannot write %s: %s", jf->path,
                     strerror(errno));
            return -1;
        }
        out->size = file->size = JC_JOURNAL_HEAD;
        return 0;
    }
    if (apply_frames(s, p, JC_JOURNAL_HEAD, len, &f, &out->log,
                     &file->index) < 0) {
        munmap((void *)p, len);
        snprintf(err, errlen, "out of memory loading %s", jf->path);
        return -1;
    }
    munmap((void *)p, len);
    log_bad(&f, jf->path);
    out->from_journal = f.count;
    if (f.end < len) {
        /* A write cut short by a crash or power loss (or bytes gone bad):
         * keep every good record before it, drop the rest. */
        log_msg(LOG_WARN, "journal: truncated %zu bytes of torn tail at offset "
                "%zu (%s record)", len - f.end, f.end,
                f.stop == 0 ? "incomplete" : "corrupt");
        if (ftruncate(out->fd, (off_t)f.end) < 0 || fsync(out->fd) < 0) {
            snprintf(err, errlen, "cannot truncate %s: %s", jf->path,
                     strerror(errno));
            return -1;
        }
    }
    out->size = file->size = f.end;
    return 0;
}

/* A backlog file: numbered and indexed, not applied (the snapshot holds
 * its records).  One that cannot be read or has no header is left out:
 * the backlog then starts after it. */
static void scan_backlog(const char *path, struct journal_loaded *out,
                         struct journal_loaded_file *file)
{
    const unsigned char *p;
    struct frames f;
    size_t len;
    char err[64];

    if (map_path(path, &p, &len, err, sizeof err) <= 0 || !p)
        return;
    if (jc_journal_head_check(p, len) == 1) {
        file->first_seq = out->log.next_seq;
        if (apply_frames(NULL, p, JC_JOURNAL_HEAD, len, &f, &out->log,
                         &file->index) == 0) {
            file->present = 1;
            file->size = f.end;
        }
    }
    munmap((void *)p, len);
}

void journal_loaded_free(struct journal_loaded *out)
{
    for (size_t i = 0; i < out->n_files; i++)
        journal_index_free(&out->files[i].index);
    free(out->files);
    out->files = NULL;
    out->n_files = 0;
    journal_log_free(&out->log);
}

int journal_load(const struct journal_files *f, struct store *s,
                 struct journal_loaded *out, char *err, size_t errlen)
{
    size_t nb = 0;

    memset(out, 0, sizeof *out);
    out->fd = -1;
    out->log.next_seq = 1;
    while (f->backlog && f->backlog[nb])
        nb++;
    out->files = calloc(nb + 2, sizeof *out->files);
    if (!out->files) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    out->n_files = nb + 2;
    for (size_t i = 0; i < nb; i++)
        scan_backlog(f->backlog[i], out, &out->files[i]);
    if (load_snapshot(f, s, out, err, errlen) < 0 ||
        load_old(f, s, out, &out->files[nb], err, errlen) < 0 ||
        load_journal(f, s, out, &out->files[nb + 1], err, errlen) < 0) {
        if (out->fd >= 0)
            close(out->fd);
        out->fd = -1;
        journal_loaded_free(out);
        return -1;
    }
    return 0;
}
