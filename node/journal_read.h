/* journal_read: a node's log read back in order, for a catch-up
 * (docs/PEERS.md "The log").  The files are the journal files from the
 * one holding the first record wanted to the one being written; records
 * are numbered as the journal numbered them (one per record frame,
 * HERD-LOG frames setting the next number), control frames are passed
 * over.  Plain file I/O (pread), no event loop: the caller paces it.
 * The journal module chooses the files and the start (node/journal.c,
 * journal_reader_open()). */
#ifndef HERD_JOURNAL_READ_H
#define HERD_JOURNAL_READ_H

#include <stddef.h>
#include <stdint.h>

struct journal_reader;

/* Open paths (log order) for the records numbered after..end, starting
 * at offset off of the first file where the next record is numbered
 * next_seq (an index mark, or the file's start and first number).  The
 * files stay open, so renaming or removing them meanwhile is harmless.
 * NULL with a reason when one cannot be opened or memory runs out. */
struct journal_reader *journal_reader_files(const char *const *paths,
                                            size_t n, uint64_t off,
                                            uint64_t next_seq, uint64_t after,
                                            uint64_t end, const char **why);

/* The next record numbered after `after` and at most `end`: 1 (line
 * valid until the next call), 0 done (a file's torn tail ends that file),
 * -1 a file cannot be read or holds a corrupt frame. */
int journal_reader_next(struct journal_reader *r, const char **line,
                        size_t *len);
/* Every record up to this number has been returned (or passed over). */
uint64_t journal_reader_seq(const struct journal_reader *r);
void journal_reader_close(struct journal_reader *r);

#endif
