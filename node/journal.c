#include "journal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <stddef.h>
#include <dirent.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/container.h"
#include "common/journal_codec.h"
#include "common/log.h"
#include "journal_load.h"
#include "metrics.h"

/* Appended frames waiting for the next write; past this the buffer is
 * written at once, and if the disk refuses it, dropped (the records stay
 * in memory and reach the disk with the next snapshot). */
#define JOURNAL_BUF_MAX (4u * 1024 * 1024)
/* Snapshot writes go out in pieces of this size. */
#define SNAP_CHUNK (1u << 20)
/* After a failed compaction, wait this long before the next try. */
#define COMPACT_RETRY_S 10
/* While the disk fails, repeat the error in the log this often. */
#define ERROR_REPEAT_S 10
/* At every start the log's numbers jump this far ahead, so a number a
 * neighbour saw from a record that never reached our disk (flooded, then
 * the process died) is never given to another record. */
#define SEQ_JUMP (1ull << 32)

/* One file of the log: NAME.backlog.FIRST (kept for catch-up),
 * NAME.journal.old, NAME.journal (the last, being written). */
struct segment {
    char *path;
    uint64_t first_seq;         /* no record in it is numbered lower */
    uint64_t size;
    struct journal_index index;
};

struct journal {
    struct ev_loop *loop;
    char *dir, *path, *old_path, *snap_path, *tmp_path;
    enum fsync_mode mode;
    int fd;
    uint64_t size;              /* good bytes in the file */
    uint64_t snap_size;         /* the last snapshot's size */
    unsigned char *buf;         /* frames not yet written */
    size_t len, cap;
    int dirty;                  /* written, not yet fsynced */
    int unsynced;               /* fsync = always: appended, not on disk */
    int failing;                /* a disk error episode is under way */
    int lost;                   /* records missed the journal: snapshot */
    time_t last_error_log;
    time_t next_compact;
    unsigned long errors;
    /* compaction under way in a child */
    pid_t child;
    ev_child child_w;
    unsigned char *chunk;       /* its write buffer, allocated before fork */
    double fork_ms;
    size_t fork_count;
    uint64_t fork_size;
    int lost_at_fork;
    /* the log (journal_load.h): numbers, epoch, positions in others' */
    char *name;
    struct journal_log log;
    int log_due;                /* a HERD-LOG frame is to be appended */
    int pos_dirty;              /* some position is to be journalled */
    int pos_blocked;            /* records missed the journal: positions
                                   are not journalled until a snapshot */
    uint64_t backlog_max;       /* bytes of NAME.backlog.* to keep */
    struct segment *seg;        /* oldest first; the journal is last */
    size_t n_seg;
};

static double now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static char *join(const char *dir, const char *name, const char *suffix)
{
    size_t n = strlen(dir) + 1 + strlen(name) + strlen(suffix) + 1;
    char *p = malloc(n);

    if (p)
        snprintf(p, n, "%s/%s%s", dir, name, suffix);
    return p;
}

/* A disk error: loud in the log, repeated while it lasts, never fatal. */
static void disk_error(struct journal *j, const char *what, int err)
{
    time_t now = time(NULL);

    j->errors++;
    if (!j->failing)
        fprintf(stderr, "herd-node: error: journal: cannot %s %s: %s\n", what,
                j->path, strerror(err));
    if (!j->failing || now - j->last_error_log >= ERROR_REPEAT_S) {
        log_msg(LOG_ERROR, "journal: cannot %s %s: %s (%lu errors); serving on "
                "from memory, updates are not durable until the disk recovers",
                what, j->path, strerror(err), j->errors);
        j->last_error_log = now;
    }
    j->failing = 1;
}

static int cmp_u64_path(const void *a, const void *b)
{
    const char *x = *(const char *const *)a, *y = *(const char *const *)b;

    return strcmp(x, y);       /* same length: hex numbers sort as text */
}

/* data_dir/NAME.backlog.<16 hex digits>, oldest first (NULL-terminated,
 * malloc'd; NULL when out of memory or the directory cannot be read). */
static char **list_backlog(const char *dir, const char *name)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char prefix[CONFIG_NAME_MAX + 16], **v = NULL;
    size_t n = 0, plen;

    if (!d)
        return calloc(1, sizeof *v);
    plen = (size_t)snprintf(prefix, sizeof prefix, "%s.backlog.", name);
    while ((e = readdir(d)) != NULL) {
        const char *hex = e->d_name + plen;
        char **nv;

        if (strncmp(e->d_name, prefix, plen) != 0 || strlen(hex) != 16 ||
            strspn(hex, "0123456789abcdef") != 16)
            continue;
        nv = realloc(v, (n + 2) * sizeof *v);
        if (!nv)
            break;
        v = nv;
        v[n] = join(dir, e->d_name, "");
        if (!v[n])
            break;
        n++;
    }
    closedir(d);
    if (!v)
        return calloc(1, sizeof *v);
    v[n] = NULL;
    qsort(v, n, sizeof *v, cmp_u64_path);
    return v;
}

static uint64_t new_epoch(void)
{
    uint64_t e = 0;

    while (e == 0) {
        if (getrandom(&e, sizeof e, 0) != (ssize_t)sizeof e)
            e = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    }
    return e;
}

static int add_segment(struct journal *j, const char *path, uint64_t first,
                       uint64_t size, struct journal_index *index)
{
    struct segment *v = realloc(j->seg, (j->n_seg + 1) * sizeof *v);
    char *copy = strdup(path);

    if (!v || !copy) {
        free(copy);
        if (v)
            j->seg = v;
        return -1;
    }
    j->seg = v;
    memset(&v[j->n_seg], 0, sizeof *v);
    v[j->n_seg].path = copy;
    v[j->n_seg].first_seq = first;
    v[j->n_seg].size = size;
    if (index) {
        v[j->n_seg].index = *index;
        memset(index, 0, sizeof *index);
    }
    j->n_seg++;
    return 0;
}

static void drop_segment(struct journal *j, size_t i)
{
    free(j->seg[i].path);
    journal_index_free(&j->seg[i].index);
    memmove(&j->seg[i], &j->seg[i + 1], (j->n_seg - i - 1) * sizeof *j->seg);
    j->n_seg--;
}

/* The backlog files past what catchup_backlog_mb keeps: the oldest go
 * while the newer ones alone hold at least that much. */
static void prune_backlog(struct journal *j)
{
    size_t nb = j->n_seg - 1 - (j->n_seg >= 2 &&
                                strcmp(j->seg[j->n_seg - 2].path,
                                       j->old_path) == 0);
    uint64_t total = 0;
    int removed = 0;

    for (size_t i = 0; i < nb; i++)
        total += j->seg[i].size;
    while (nb > 0 && total - j->seg[0].size >= j->backlog_max) {
        total -= j->seg[0].size;
        if (unlink(j->seg[0].path) < 0 && errno != ENOENT)
            log_msg(LOG_WARN, "journal: cannot remove %s: %s", j->seg[0].path,
                    strerror(errno));
        drop_segment(j, 0);
        nb--;
        removed = 1;
    }
    if (removed)
        journal_load_fsync_dir(j->dir);
}

struct journal *journal_open(struct ev_loop *loop, const char *dir,
                             const char *name,
                             enum fsync_mode mode, uint64_t backlog_bytes,
                             struct store *s, char *err, size_t errlen)
{
    struct journal *j = calloc(1, sizeof *j);
    uint64_t from_snap = 0, from_old = 0, from_journal = 0;
    double t0 = now_ms();
    struct journal_files files;
    struct journal_loaded got;
    char **backlog = NULL;
    size_t nb = 0;

    if (!j) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    j->fd = -1;
    j->loop = loop;
    j->mode = mode;
    j->dir = strdup(dir);
    j->path = join(dir, name, ".journal");
    j->old_path = join(dir, name, ".journal.old");
    j->snap_path = join(dir, name, ".snapshot");
    j->tmp_path = join(dir, name, ".snapshot.tmp");
    j->name = strdup(name);
    j->backlog_max = backlog_bytes;
    backlog = list_backlog(dir, name);
    if (!j->dir || !j->path || !j->old_path || !j->snap_path || !j->tmp_path ||
        !j->name || !backlog) {
        free(backlog);
        snprintf(err, errlen, "out of memory");
        journal_close(j);
        return NULL;
    }
    /* A compaction cut short: its snapshot never replaced the old one. */
    if (unlink(j->tmp_path) == 0)
        log_msg(LOG_WARN, "journal: removed %s left by an interrupted "
                "compaction", j->tmp_path);
    files.dir = j->dir;
    files.path = j->path;
    files.old_path = j->old_path;
    files.snap_path = j->snap_path;
    files.backlog = (const char *const *)backlog;
    while (backlog[nb])
        nb++;
    if (journal_load(&files, s, &got, err, errlen) < 0) {
        for (size_t i = 0; i < nb; i++)
            free(backlog[i]);
        free(backlog);
        journal_close(j);
        return NULL;
    }
    /* The log's files, oldest first, each with its index. */
    for (size_t i = 0; i < got.n_files; i++) {
        struct journal_loaded_file *lf = &got.files[i];
        const char *path = i < nb ? backlog[i]
                         : i == nb ? j->old_path : j->path;

        if (lf->present)
            add_segment(j, path, lf->first_seq, lf->size, &lf->index);
    }
    for (size_t i = 0; i < nb; i++)
        free(backlog[i]);
    free(backlog);
    j->log = got.log;
    got.log.pos = NULL;
    got.log.n_pos = 0;
    if (got.damaged || j->log.epoch == 0) {
        /* A new data_dir, files from before logs were numbered, or a file
         * set aside: the log starts afresh, and what we held of others'
         * logs is not known. */
        j->log.epoch = new_epoch();
        j->log.epoch_first = j->log.next_seq;
        j->log.n_pos = 0;
    } else {
        j->log.next_seq += SEQ_JUMP;
    }
    j->log_due = 1;
    j->fd = got.fd;
    j->size = got.size;
    j->snap_size = got.snap_size;
    j->lost = got.old_found;
    from_snap = got.from_snap;
    from_old = got.from_old;
    from_journal = got.from_journal;
    journal_loaded_free(&got);
    if (j->n_seg == 0 || strcmp(j->seg[j->n_seg - 1].path, j->path) != 0) {
        snprintf(err, errlen, "out of memory");
        journal_close(j);
        return NULL;
    }
    prune_backlog(j);
    log_msg(LOG_INFO, "journal: loaded %zu clients from %" PRIu64 " snapshot "
            "records and %" PRIu64 " journal records in %.1f ms (fsync %s, "
            "journal %" PRIu64 " bytes)", s->count, from_snap,
            from_old + from_journal,
            now_ms() - t0, config_fsync_name(mode), j->size);
    log_msg(LOG_INFO, "journal: log epoch %016llx, next record %llu, %zu "
            "files of backlog; positions held in %zu neighbours' logs",
            (unsigned long long)j->log.epoch,
            (unsigned long long)j->log.next_seq, j->n_seg, j->log.n_pos);
    return j;
}

/* Write the buffered frames at the end of the good bytes.  After a
 * failure the file may hold part of them: cut it back first, so a torn
 * frame never sits in the middle of the journal. */
static int write_out(struct journal *j)
{
    if (j->len == 0)
        return 0;
    if (j->failing && ftruncate(j->fd, (off_t)j->size) < 0) {
        disk_error(j, "truncate", errno);
        return -1;
    }
    if (journal_load_write_all(j->fd, j->buf, j->len, j->size) < 0) {
        disk_error(j, "write", errno);
        return -1;
    }
    metrics_journal_bytes(j->len);
    j->size += j->len;
    j->len = 0;
    j->dirty = 1;
    if (j->failing) {
        log_msg(LOG_INFO, "journal: %s is writable again", j->path);
        j->failing = 0;
    }
    return 0;
}

static void log_hole(struct journal *j);

static void sync_out(struct journal *j)
{
    double t0 = metrics_clock();
    int rc;

    if (!j->dirty || j->failing)
        return;
    rc = fdatasync(j->fd);
    metrics_journal_fsync(t0);
    if (rc < 0) {
        /* After a failed fsync the kernel may have dropped the dirty
         * pages: count what was written as lost, re-snapshot later. */
        disk_error(j, "fsync", errno);
        log_hole(j);
        return;
    }
    j->dirty = 0;
}

/* The log has a hole from here: records applied (and flooded) that the
 * journal will not hold.  A new epoch, so no neighbour resumes across the
 * hole, and no position is journalled until a snapshot holds the store. */
static void log_hole(struct journal *j)
{
    j->lost = 1;
    j->pos_blocked = 1;
    j->log.epoch = new_epoch();
    j->log.epoch_first = j->log.next_seq;
    j->log_due = 1;
    log_msg(LOG_WARN, "journal: the log begins epoch %016llx at record %llu; "
            "neighbours' next catch-up from this node is a full walk",
            (unsigned long long)j->log.epoch,
            (unsigned long long)j->log.next_seq);
}

/* Buffer one frame.  0, or -1 when it could not be (a hole). */
static int append_frame(struct journal *j, const char *line, size_t len)
{
    size_t need = JC_FRAME_HEAD + len;

    if (len == 0 || len > JC_MAX_PAYLOAD)
        return -1;
    if (j->len + need > JOURNAL_BUF_MAX && write_out(j) < 0) {
        /* The disk refuses and the buffer is full: drop it rather than
         * grow without bound.  The store still holds every record. */
        log_msg(LOG_ERROR, "journal: dropped %zu buffered bytes; a snapshot "
                "is written when the disk recovers", j->len);
        j->len = 0;
        journal_index_cut(&j->seg[j->n_seg - 1].index, j->size);
        log_hole(j);
    }
    if (j->len + need > j->cap) {
        size_t cap = j->cap ? j->cap : 65536;
        unsigned char *p;

        while (cap < j->len + need)
            cap *= 2;
        p = realloc(j->buf, cap);
        if (!p) {
            log_msg(LOG_ERROR, "journal: out of memory; an update missed the "
                    "journal (a snapshot will cover it)");
            return -1;
        }
        j->buf = p;
        j->cap = cap;
    }
    j->len += jc_frame_encode(line, len, j->buf + j->len);
    return 0;
}

/* HERD-LOG and HERD-POS frames owed (journal_load.h). */
static void append_control(struct journal *j)
{
    char buf[256];
    size_t n;

    if (j->log_due) {
        n = journal_control_log(j->log.epoch, j->log.next_seq, buf,
                                sizeof buf);
        if (append_frame(j, buf, n) == 0)
            j->log_due = 0;
    }
    if (!j->pos_dirty || j->pos_blocked)
        return;
    j->pos_dirty = 0;
    for (size_t i = 0; i < j->log.n_pos; i++) {
        struct journal_pos *p = &j->log.pos[i];

        if (!p->dirty)
            continue;
        n = journal_control_pos(p->peer, p->epoch, p->seq, buf, sizeof buf);
        if (append_frame(j, buf, n) == 0)
            p->dirty = 0;
        else
            j->pos_dirty = 1;
    }
}

int journal_append(struct journal *j, const char *line, size_t len)
{
    uint64_t off;

    if (len == 0 || len > JC_MAX_PAYLOAD)
        return -1;
    if (j->log_due)
        append_control(j);
    if (append_frame(j, line, len) < 0) {
        log_hole(j);
        return -1;
    }
    /* Where the frame will lie (append_frame() may have written or
     * dropped what was buffered before it). */
    off = j->size + j->len - (JC_FRAME_HEAD + len);
    journal_index_add(&j->seg[j->n_seg - 1].index, off, j->log.next_seq);
    j->log.next_seq++;
    if (j->mode == FSYNC_ALWAYS)
        j->unsynced = 1;
    return 0;
}

int journal_unsynced(const struct journal *j)
{
    return j && j->unsynced;
}

void journal_flush(struct journal *j)
{
    if (!j)
        return;
    /* (A HERD-LOG frame owed waits for the first record or position.) */
    if (j->pos_dirty)
        append_control(j);
    /* Every mode writes once per loop iteration, so a kill -9 of the
     * process loses nothing the kernel has been given.  While the disk
     * fails, the retries come from journal_tick(), once a second. */
    if (!j->failing && write_out(j) == 0 && j->mode == FSYNC_ALWAYS)
        sync_out(j);
    /* On a disk error the held replies go out anyway: the update is held
     * in memory and flooded to the neighbours; the error is in the log. */
    j->unsynced = 0;
}

/* The child's work: the store as it was at fork(), into NAME.snapshot.tmp,
 * fsynced.  Only system calls and the pure codec here (no malloc, no
 * log): the parent may have had other threads.  Returns 0 or an errno. */
static int write_snapshot(const struct journal *j, struct store *s,
                          unsigned char *chunk)
{
    unsigned char trail[JC_SNAPSHOT_TRAIL];
    uint64_t off = 0, count = 0;
    uint32_t crc = 0;
    size_t used;
    int fd = open(j->tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

    if (fd < 0)
        return errno;
    jc_snapshot_head(chunk);
    used = JC_SNAPSHOT_HEAD;
    struct store_cursor cur;
    struct record *r;

    store_cursor_start(s, &cur);
    while ((r = store_cursor_next(s, &cur)) != NULL) {
        size_t line_len;
        const char *line = record_line(r, &line_len);
        size_t need = JC_FRAME_HEAD + line_len;

        if (line_len == 0 || line_len > JC_MAX_PAYLOAD)
            continue;
        if (used + need + JC_SNAPSHOT_TRAIL > SNAP_CHUNK) {
            crc = jc_crc(crc, chunk, used);
            if (journal_load_write_all(fd, chunk, used, off) < 0)
                goto fail;
            off += used;
            used = 0;
        }
        if (need + JC_SNAPSHOT_TRAIL > SNAP_CHUNK) {
            /* A record longer than a chunk (a huge client ID): its header,
             * then the line from where it lies. */
            unsigned char head[JC_FRAME_HEAD];

            jc_frame_head(line, line_len, head);
            crc = jc_crc(jc_crc(crc, head, sizeof head), line, line_len);
            if (journal_load_write_all(fd, head, sizeof head, off) < 0 ||
                journal_load_write_all(fd, line, line_len, off + sizeof head) < 0)
                goto fail;
            off += need;
        } else {
            used += jc_frame_encode(line, line_len, chunk + used);
        }
        count++;
    }
    crc = jc_crc(crc, chunk, used);
    jc_snapshot_trail(crc, count, trail);
    memcpy(chunk + used, trail, sizeof trail);
    used += sizeof trail;
    if (journal_load_write_all(fd, chunk, used, off) < 0 || fsync(fd) < 0)
        goto fail;
    return close(fd) < 0 ? errno : 0;

fail:
    {
        int e = errno;
        close(fd);
        return e ? e : EIO;
    }
}

static void retire_old(struct journal *j)
{
    size_t i = j->n_seg >= 2 ? j->n_seg - 2 : 0;
    char name[CONFIG_NAME_MAX + 32], *path;

    if (j->n_seg < 2 || strcmp(j->seg[i].path, j->old_path) != 0) {
        if (unlink(j->old_path) == 0)
            journal_load_fsync_dir(j->dir);
        return;
    }
    snprintf(name, sizeof name, "%s.backlog.%016llx", j->name,
             (unsigned long long)j->seg[i].first_seq);
    path = join(j->dir, name, "");
    if (j->backlog_max == 0 || !path || rename(j->old_path, path) < 0) {
        if (unlink(j->old_path) == 0)
            journal_load_fsync_dir(j->dir);
        drop_segment(j, i);
        free(path);
        return;
    }
    free(j->seg[i].path);
    j->seg[i].path = path;
    journal_load_fsync_dir(j->dir);
    prune_backlog(j);
}

static void on_child(struct ev_loop *loop, ev_child *w, int revents)
{
    struct journal *j = container_of(w, struct journal, child_w);
    int status = w->rstatus, code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    struct stat st;
    const char *what = NULL;

    (void)revents;
    ev_child_stop(loop, w);
    j->child = 0;
    if (code != 0) {
        if (code > 0)
            log_msg(LOG_ERROR, "journal: compaction failed: cannot write %s: "
                    "%s; trying again in %d s", j->tmp_path, strerror(code),
                    COMPACT_RETRY_S);
        else
            log_msg(LOG_ERROR, "journal: compaction failed: its writer died "
                    "(status %d); trying again in %d s", status,
                    COMPACT_RETRY_S);
    } else if (stat(j->tmp_path, &st) < 0) {
        what = "find";
    } else if (rename(j->tmp_path, j->snap_path) < 0) {
        what = "rename";
    } else if (journal_load_fsync_dir(j->dir) < 0) {
        what = "fsync the directory of";
    }
    if (code == 0 && what)
        log_msg(LOG_ERROR, "journal: compaction failed: cannot %s %s: %s; "
                "trying again in %d s", what, j->tmp_path, strerror(errno),
                COMPACT_RETRY_S);
    if (code != 0 || what) {
        unlink(j->tmp_path);
        j->next_compact = time(NULL) + COMPACT_RETRY_S;
        if (j->lost_at_fork)
            j->lost = 1;
        return;
    }
    /* The snapshot holds every record of NAME.journal.old (applied before
     * the fork), so the store needs it no more; the journal holds
     * everything since.  It stays as backlog for catch-up (renamed
     * NAME.backlog.FIRST) while catchup_backlog_mb keeps it. */
    retire_old(j);
    if (j->pos_blocked && !j->lost) {
        /* No hole since the fork: the snapshot and the journal hold all
         * we hold, so positions may be journalled again. */
        j->pos_blocked = 0;
        for (size_t i = 0; i < j->log.n_pos; i++)
            j->log.pos[i].dirty = 1;
        j->pos_dirty = j->log.n_pos > 0;
    }
    j->snap_size = (uint64_t)st.st_size;
    log_msg(LOG_INFO, "journal: compacted %zu records into %s (%" PRIu64
            " bytes) in %.1f ms, in the background; the journal was %" PRIu64
            " bytes", j->fork_count, j->snap_path, j->snap_size,
            now_ms() - j->fork_ms, j->fork_size);
}

/* Move NAME.journal aside as NAME.journal.old and start a new one, so
 * what the child snapshots and what comes after it are apart. */
static int rotate(struct journal *j)
{
    unsigned char head[JC_JOURNAL_HEAD];
    int fd;

    if (write_out(j) < 0)
        return -1;
    if (j->mode != FSYNC_NO)
        sync_out(j);
    if (rename(j->path, j->old_path) < 0) {
        disk_error(j, "rename", errno);
        return -1;
    }
    fd = open(j->path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    jc_journal_head(head);
    if (fd < 0 || journal_load_write_all(fd, head, sizeof head, 0) < 0) {
        /* Put the old one back and carry on with it. */
        disk_error(j, "create", errno);
        if (fd >= 0)
            close(fd);
        rename(j->old_path, j->path);
        return -1;
    }
    close(j->fd);
    j->fd = fd;
    free(j->seg[j->n_seg - 1].path);
    j->seg[j->n_seg - 1].path = strdup(j->old_path);
    j->seg[j->n_seg - 1].size = j->size;
    if (!j->seg[j->n_seg - 1].path ||
        add_segment(j, j->path, j->log.next_seq, JC_JOURNAL_HEAD, NULL) < 0) {
        /* Out of memory: forget the backlog rather than misread it. */
        while (j->n_seg > 0)
            drop_segment(j, j->n_seg - 1);
        add_segment(j, j->path, j->log.next_seq, JC_JOURNAL_HEAD, NULL);
        log_hole(j);
    }
    j->size = JC_JOURNAL_HEAD;
    j->dirty = 1;
    sync_out(j);
    journal_load_fsync_dir(j->dir);
    /* Each file says where the log stands as it begins, and where this
     * node is in its neighbours' logs, so the older files can go. */
    j->log_due = 1;
    for (size_t i = 0; i < j->log.n_pos; i++)
        j->log.pos[i].dirty = 1;
    j->pos_dirty = j->log.n_pos > 0;
    append_control(j);
    return 0;
}

/* Compaction: a child process writes the store as it is now to
 * NAME.snapshot.tmp and fsyncs it while the node serves on; when it has
 * succeeded, the parent renames it over NAME.snapshot, fsyncs the
 * directory and removes NAME.journal.old.  Replay is last-writer-wins,
 * so any overlap of snapshot, old journal and journal is harmless, and a
 * crash at any point leaves files that load to a complete state. */
static void compact_start(struct journal *j, struct store *s)
{
    struct stat st;
    pid_t parent = getpid(), pid;
    uint64_t size = j->size;

    if (!j->chunk) {
        j->chunk = malloc(SNAP_CHUNK);
        if (!j->chunk)
            return;
    }
    /* A NAME.journal.old left by a compaction that did not finish was
     * loaded at start: this snapshot covers it too; no rotation. */
    if (stat(j->old_path, &st) < 0 && rotate(j) < 0) {
        j->next_compact = time(NULL) + COMPACT_RETRY_S;
        return;
    }
    pid = fork();
    if (pid < 0) {
        log_msg(LOG_ERROR, "journal: compaction: cannot fork: %s",
                strerror(errno));
        j->next_compact = time(NULL) + COMPACT_RETRY_S;
        return;
    }
    if (pid == 0) {
        /* Dies with the node, so no writer outlives it. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(EINTR);
        signal(SIGTERM, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        signal(SIGHUP, SIG_DFL);
        /* Let go of the node's sockets and files at once: a connection
         * the node closes must not stay open in here. */
        if (close_range(3, ~0u, 0) < 0) {
            struct rlimit rl;
            rlim_t top = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? rl.rlim_cur : 1024;
            for (rlim_t fd = 3; fd < top && fd < 65536; fd++)
                close((int)fd);
        }
        _exit(write_snapshot(j, s, j->chunk));
    }
    j->child = pid;
    j->fork_ms = now_ms();
    j->fork_count = s->count;
    j->fork_size = size;
    j->lost_at_fork = j->lost;
    j->lost = 0;
    ev_child_init(&j->child_w, on_child, pid, 0);
    ev_child_start(j->loop, &j->child_w);
}

void journal_tick(struct journal *j, struct store *s)
{
    time_t now = time(NULL);
    uint64_t bound;

    if (!j)
        return;
    if (j->failing && j->len == 0) {
        /* Nothing waits to be written (a failed fsync): probe the disk. */
        if (fdatasync(j->fd) == 0) {
            log_msg(LOG_INFO, "journal: %s is writable again", j->path);
            j->failing = 0;
            j->dirty = 0;
        } else {
            disk_error(j, "fsync", errno);
        }
    }
    if (j->failing || j->len > 0)
        write_out(j);
    if (j->mode == FSYNC_EVERYSEC)
        sync_out(j);
    if (j->child || j->failing || now < j->next_compact)
        return;
    bound = 2 * j->snap_size;
    if (bound < JOURNAL_COMPACT_MIN)
        bound = JOURNAL_COMPACT_MIN;
    if (j->size > bound || j->lost)
        compact_start(j, s);
}

void journal_close(struct journal *j)
{
    if (!j)
        return;
    if (j->child > 0) {
        /* A stop does not wait for a snapshot: the next start redoes it. */
        ev_child_stop(j->loop, &j->child_w);
        kill(j->child, SIGKILL);
        waitpid(j->child, NULL, 0);
        unlink(j->tmp_path);
    }
    if (j->fd >= 0) {
        if (write_out(j) == 0 && j->mode != FSYNC_NO)
            sync_out(j);
        close(j->fd);
    }
    free(j->chunk);
    free(j->buf);
    while (j->n_seg > 0)
        drop_segment(j, j->n_seg - 1);
    free(j->seg);
    journal_log_free(&j->log);
    free(j->name);
    free(j->dir);
    free(j->path);
    free(j->old_path);
    free(j->snap_path);
    free(j->tmp_path);
    free(j);
}

uint64_t journal_epoch(const struct journal *j)
{
    return j ? j->log.epoch : 0;
}

uint64_t journal_last_seq(const struct journal *j)
{
    return j ? j->log.next_seq - 1 : 0;
}

int journal_position(const struct journal *j, const char *peer,
                     uint64_t *epoch, uint64_t *seq)
{
    const struct journal_pos *p = j ? journal_log_find_pos(&j->log, peer)
                                    : NULL;

    if (!p)
        return 0;
    *epoch = p->epoch;
    *seq = p->seq;
    return 1;
}

void journal_set_position(struct journal *j, const char *peer, uint64_t epoch,
                          uint64_t seq)
{
    const struct journal_pos *p;

    if (!j || journal_log_set_pos(&j->log, peer, epoch, seq) < 0)
        return;
    p = journal_log_find_pos(&j->log, peer);
    ((struct journal_pos *)p)->dirty = 1;
    j->pos_dirty = 1;
}

struct journal_reader *journal_reader_open(struct journal *j, uint64_t epoch,
                                           uint64_t after, const char **why)
{
    struct journal_reader *r;
    const struct journal_mark *m;
    const char **paths;
    size_t k;

    if (!j) {
        *why = "no journal";
        return NULL;
    }
    if (epoch != j->log.epoch) {
        *why = epoch == 0 ? "the peer holds nothing of this log"
                          : "the peer's position is in another epoch";
        return NULL;
    }
    if (after > j->log.next_seq - 1) {
        *why = "the peer's position is past the end of this log";
        return NULL;
    }
    if (after + 1 < j->log.epoch_first || after + 1 < j->seg[0].first_seq) {
        *why = "the peer's position is gone from the backlog";
        return NULL;
    }
    /* Everything numbered up to now must be in the files. */
    if (j->failing || write_out(j) < 0 || j->len > 0) {
        *why = "the journal cannot be written";
        return NULL;
    }
    for (k = j->n_seg - 1; k > 0 && j->seg[k].first_seq > after + 1; k--)
        ;
    paths = calloc(j->n_seg - k, sizeof *paths);
    if (!paths) {
        *why = "out of memory";
        return NULL;
    }
    for (size_t i = k; i < j->n_seg; i++)
        paths[i - k] = j->seg[i].path;
    m = journal_index_find(&j->seg[k].index, after + 1);
    r = journal_reader_files(paths, j->n_seg - k,
                             m ? m->off : JC_JOURNAL_HEAD,
                             m ? m->seq : j->seg[k].first_seq, after,
                             j->log.next_seq - 1, why);
    free(paths);
    return r;
}

