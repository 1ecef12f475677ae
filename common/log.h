/* log: one process's log file.  Lines start with a UTC timestamp with
 * microseconds and the process's name.  Writes are buffered and reach the
 * file when the buffer fills, when log_flush() is called (the node calls
 * it from a timer, so the delay is bounded) and at exit.  Rotates by size. */
#ifndef HERD_LOG_H
#define HERD_LOG_H

#include <stddef.h>
#include <stdio.h>

enum log_level { LOG_INFO, LOG_WARN, LOG_ERROR };

/* Open path for appending (creating its directory's file, not the
 * directory).  name prefixes every line.  max_bytes 0 = never rotate;
 * keep = how many rotated files (path.1 .. path.keep) to keep.
 * Also echo to stderr when echo is set.  0, or -1 with errno. */
int log_open(const char *path, const char *name, size_t max_bytes, int keep,
             int echo);

void log_msg(enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Log a label then bytes from outside, escaped: printable ASCII as is,
 * anything else as \xNN (\n, \r, \t as themselves escaped), cut at limit
 * bytes with a note of the full size. */
void log_bytes(const char *label, const char *p, size_t len, size_t limit);

void log_flush(void);
void log_close(void);

/* Escape bytes as log_bytes() does, into buf (always NUL-terminated).
 * Returns the length written. */
size_t log_escape(const char *p, size_t len, char *buf, size_t cap);

#endif
