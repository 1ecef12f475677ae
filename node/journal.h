/* journal: a node's records on disk.  data_dir/NAME.journal is an
 * append-only log of applied updates (each a stored AT line, framed and
 * checksummed by common/journal_codec); data_dir/NAME.snapshot holds the
 * whole store, written by a child process when the journal grows past
 * twice the last snapshot (at least JOURNAL_COMPACT_MIN).  The journal
 * then starts afresh; the one before, NAME.journal.old, is removed once
 * the snapshot is in place.  Records are last-writer-wins, so replaying
 * files that overlap gives the same store in any order: every crash
 * point of a compaction is safe.
 *
 * Writes are buffered for one loop iteration at most (journal_flush()
 * from the node's ev_prepare); the buffer is capped.  A disk error is
 * logged and the node serves on from memory; see README "Durability". */
#ifndef HERD_JOURNAL_H
#define HERD_JOURNAL_H

#include <ev.h>
#include <stddef.h>
#include <stdint.h>

#include "common/config.h"
#include "journal_read.h"
#include "store.h"

#define JOURNAL_COMPACT_MIN (4u * 1024 * 1024)

struct journal;

/* Load data_dir/NAME.snapshot then NAME.journal into s (which must be
 * empty), cutting a torn journal tail and setting a corrupt snapshot
 * aside, then open the journal for appending.  NULL with a message in err
 * when the files cannot be opened or read at all. */
struct journal *journal_open(struct ev_loop *loop, const char *dir,
                             const char *name,
                             enum fsync_mode mode, uint64_t backlog_bytes,
                             struct store *s, char *err, size_t errlen);

/* Record an applied update (the stored AT line, no "\n").  0, or -1
 * when it missed the journal (out of memory; logged, and a snapshot will
 * cover it): with fsync = always it must then not be acknowledged. */
int journal_append(struct journal *j, const char *line, size_t len);

/* Write what was appended since the last call; with fsync = always, also
 * fsync it.  Called once per loop iteration, before the loop sleeps. */
void journal_flush(struct journal *j);

/* True when fsync = always and an appended update is not yet on disk:
 * a reply that acknowledges it must wait for journal_flush(). */
int journal_unsynced(const struct journal *j);

/* Once a second: fsync (everysec), retry after a disk error, and start a
 * compaction into a snapshot when the journal has grown enough (its end
 * is seen through an ev_child watcher on the loop). */
void journal_tick(struct journal *j, struct store *s);

/* The log (node/journal_load.h): every appended update takes the next
 * number; older journal files stay as backlog (NAME.backlog.FIRST) while
 * the newer ones hold less than backlog_bytes.  Its epoch, and the number
 * of the last update (0 with no journal). */
uint64_t journal_epoch(const struct journal *j);
uint64_t journal_last_seq(const struct journal *j);

/* Where this node is in peer's log: 1 and *epoch, *seq when known. */
int journal_position(const struct journal *j, const char *peer,
                     uint64_t *epoch, uint64_t *seq);
/* This node now holds every record of peer's log epoch up to seq; it is
 * journalled after the updates appended so far (so a restart remembers
 * it only with them). */
void journal_set_position(struct journal *j, const char *peer, uint64_t epoch,
                          uint64_t seq);

/* A reader of this node's log for a peer that holds everything up to
 * after, to the end the log has now (node/journal_read.h): NULL, with
 * the reason, when the log cannot serve it (another epoch, gone from the
 * backlog, past the end): then a full walk. */
struct journal_reader *journal_reader_open(struct journal *j, uint64_t epoch,
                                           uint64_t after, const char **why);

/* Write, fsync and close (a clean stop; a compaction under way is
 * abandoned).  NULL is fine. */
void journal_close(struct journal *j);

#endif
