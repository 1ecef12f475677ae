/* fsutil: small filesystem helpers every program needs.  Every file the
 * herd creates or appends to is opened through them, with O_NOFOLLOW: a
 * log_dir or run_dir that others can write must not let them redirect a
 * root-run herd's writes through a planted symlink. */
#ifndef HERD_FSUTIL_H
#define HERD_FSUTIL_H

#include <stddef.h>
#include <sys/types.h>

/* Create path and any missing parents (parents 0755, the last one with
 * mode).  An existing directory is fine.  The parent of every directory
 * it creates is fsynced, so a first start is durable: a power loss right
 * after it cannot lose a data_dir (and the journal in it).  0, or -1 with
 * errno. */
int fs_mkdir_p(const char *path, mode_t mode);

/* fsync the directory that holds path ("." for a bare name).  0, or -1
 * with errno. */
int fs_fsync_parent(const char *path);

/* Open path for appending, creating it with mode; never through a
 * symlink (ELOOP then).  The fd, or -1 with errno. */
int fs_open_append(const char *path, mode_t mode);

/* Replace path by a file holding len bytes of data, atomically: written
 * to path.tmp.PID (created with O_EXCL | O_NOFOLLOW: a stale or planted
 * one is removed first, never written through), then renamed over path.
 * 0, or -1 with errno (path untouched). */
int fs_write_atomic(const char *path, const void *data, size_t len,
                    mode_t mode);

#endif
