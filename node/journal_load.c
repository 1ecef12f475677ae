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

/* What one pass over a file's frames did. */
struct frames {
    uint64_t count;             /* frames read */
    unsigned long bad;          /* frames whose payload is no AT line */
    size_t end;                 /* offset of the first frame not read */
    int stop;                   /* 1 read to the end, 0 torn, -1 corrupt */
};

/* The one decode-and-apply loop: every frame of p[off, end) into s, up to
 * the first that does not decode.  -1 when memory runs out. */
static int apply_frames(struct store *s, const unsigned char *p, size_t off,
                        size_t end, struct frames *f)
{
    f->count = 0;
    f->bad = 0;
    f->stop = 1;
    while (off < end) {
        const unsigned char *payload;
        size_t plen;
        struct proto_at at;
        int rc = jc_frame_decode(p + off, end - off, &payload, &plen);

        if (rc != 1) {
            f->stop = rc;
            break;
        }
        if (proto_parse_at((const char *)payload, plen, &at) < 0)
            f->bad++;
        else if (store_apply(s, (const char *)payload, plen, &at, NULL) ==
                 STORE_NOMEM)
            return -1;
        f->count++;
        off += JC_FRAME_HEAD + plen;
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
        return 0;
    }
    /* jc_snapshot_check() has decoded every frame already. */
    rc = apply_frames(s, p, JC_SNAPSHOT_HEAD, len - JC_SNAPSHOT_TRAIL, &f);
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
                    struct journal_loaded *out, char *err, size_t errlen)
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
    rc = apply_frames(s, p, JC_JOURNAL_HEAD, len, &f);
    munmap((void *)p, len);
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
                        struct journal_loaded *out, char *err, size_t errlen)
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
        out->size = JC_JOURNAL_HEAD;
        return 0;
    }
    if (apply_frames(s, p, JC_JOURNAL_HEAD, len, &f) < 0) {
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
    out->size = f.end;
    return 0;
}

int journal_load(const struct journal_files *f, struct store *s,
                 struct journal_loaded *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    out->fd = -1;
    if (load_snapshot(f, s, out, err, errlen) < 0 ||
        load_old(f, s, out, err, errlen) < 0 ||
        load_journal(f, s, out, err, errlen) < 0) {
        if (out->fd >= 0)
            close(out->fd);
        out->fd = -1;
        return -1;
    }
    return 0;
}
