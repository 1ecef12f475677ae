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

#include "store.h"

struct journal_files {
    const char *dir;            /* data_dir, fsynced after a file is made */
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
};

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
