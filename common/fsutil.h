/* fsutil: small filesystem helpers every program needs. */
#ifndef HERD_FSUTIL_H
#define HERD_FSUTIL_H

#include <sys/types.h>

/* Create path and any missing parents (parents 0755, the last one with
 * mode).  An existing directory is fine.  0, or -1 with errno. */
int fs_mkdir_p(const char *path, mode_t mode);

#endif
