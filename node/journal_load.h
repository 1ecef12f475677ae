/* journal_load: rebuild a node's store from its files in data_dir at
 * start, and repair what a crash left: NAME.snapshot (a corrupt one is
 * set aside), NAME.journal.old (left by an unfinished compaction), then
 * NAME.journal (a torn or corrupt tail is cut off; a file that is not a
 * journal is set aside and a new one begun).  Plain file I/O and the
 * store, no event loop, so unit tests drive it on files they craft.  The
 * journal module (node/journal.c) writes the files and calls this once. */
#ifndef HERD_JOURNAL_LOAD_H
#define HERD_JOURNAL_LOAD_H

#include <stddef.h>
#include <stdint.h>

#include "common/config.h"
#include "store.h"

/* The node's log: every record appended to the journal takes the next
 * sequence number.  Control frames (payloads starting "HERD-", never an
 * AT line) carry the rest:
 *   HERD-LOG EPOCH NEXT         the log's epoch (16 hex digits) and the
 *                               number the next record takes; written at
 *                               every start and at the head of each file
 *   HERD-POS PEER EPOCH SEQ     this node holds every record of PEER's log
 *                               EPOCH up to SEQ
 * An epoch changes when the log starts afresh (a new data_dir, a file set
 * aside, records that missed the journal); positions read before a new
 * epoch are forgotten. */
#define JOURNAL_MAX_PEERS 1024
/* One index mark per this many bytes of a file, to seek into it. */
#define JOURNAL_INDEX_STEP (64u * 1024)

struct journal_pos {
    char peer[CONFIG_NAME_MAX + 1];
    uint64_t epoch, seq;
    int dirty;                  /* changed since last journalled */
};

struct journal_log {
    uint64_t epoch;             /* 0: no log seen (fresh, or older files) */
    uint64_t epoch_first;       /* the first number of this epoch */
    uint64_t next_seq;          /* the number the next record takes */
    struct journal_pos *pos;    /* where this node is in others' logs */
    size_t n_pos;
};

/* A file's index: the frame at off is the first whose record, if any,
 * takes seq or later. */
struct journal_mark {
    uint64_t off, seq;
};

struct journal_index {
    struct journal_mark *m;
    size_t n, cap;
};

/* Set (or add) PEER's position; 0, or -1 when the table is full or out
 * of memory. */
int journal_log_set_pos(struct journal_log *log, const char *peer,
                        uint64_t epoch, uint64_t seq);
const struct journal_pos *journal_log_find_pos(const struct journal_log *log,
                                               const char *peer);
void journal_log_free(struct journal_log *log);

/* Note a mark when off is a step past the last one (0 is always marked).
 * -1 when out of memory (the index then stays coarser: still correct). */
int journal_index_add(struct journal_index *x, uint64_t off, uint64_t seq);
/* The last mark whose seq <= seq (the first mark when none). */
const struct journal_mark *journal_index_find(const struct journal_index *x,
                                              uint64_t seq);
/* Drop marks at or past off (the file was cut back). */
void journal_index_cut(struct journal_index *x, uint64_t off);
void journal_index_free(struct journal_index *x);

/* What a control frame says.  Returns 1 for HERD-LOG (epoch, next in
 * seq), 2 for HERD-POS (peer, epoch, seq), 0 for a record (not "HERD-"),
 * -1 for a malformed control frame (skipped). */
int journal_control_parse(const unsigned char *p, size_t len,
                          char peer[CONFIG_NAME_MAX + 1], uint64_t *epoch,
                          uint64_t *seq);

/* Control frames' payloads; return the length written (cap >= 128). */
size_t journal_control_log(uint64_t epoch, uint64_t next, char *buf,
                           size_t cap);
size_t journal_control_pos(const char *peer, uint64_t epoch, uint64_t seq,
                           char *buf, size_t cap);

struct journal_files {
    const char *dir;            /* data_dir, fsynced after a file is made */
    const char *const *backlog; /* NAME.backlog.* kept for catch-up, oldest
                                   first (NULL-terminated; may be NULL) */
    const char *path;           /* NAME.journal */
    const char *old_path;       /* NAME.journal.old */
    const char *snap_path;      /* NAME.snapshot */
};

struct journal_loaded {
    int fd;                     /* NAME.journal, open read-write */
    uint64_t size;              /* its good bytes (the tail past is cut) */
    uint64_t snap_size;         /* the snapshot's bytes, 0 without one */
    int old_found;              /* NAME.journal.old was there: the store
                                   needs a new snapshot to let it go */
    uint64_t from_snap, from_old, from_journal;   /* records read */
    int damaged;                /* a snapshot or journal was set aside */
    struct journal_log log;     /* the log as the files leave it */
    /* per file: first record number, size, index (backlog..., old,
     * journal); the backlog files are scanned, not applied (the
     * snapshot holds what they hold) */
    size_t n_files;
    struct journal_loaded_file {
        uint64_t first_seq, size;
        struct journal_index index;
        int present;
    } *files;
};

/* Free what journal_load() allocated in out (not the fd). */
void journal_loaded_free(struct journal_loaded *out);

/* Load f's files into s (empty).  0, or -1 with a message in err when a
 * file cannot be opened, read or repaired at all, or memory runs out
 * (out->fd is then closed or -1). */
int journal_load(const struct journal_files *f, struct store *s,
                 struct journal_loaded *out, char *err, size_t errlen);

/* pwrite all n bytes at off (EINTR retried).  0, or -1 with errno. */
int journal_load_write_all(int fd, const void *p, size_t n, uint64_t off);

/* fsync a directory, so a file made or renamed in it lasts. */
int journal_load_fsync_dir(const char *dir);

#endif
