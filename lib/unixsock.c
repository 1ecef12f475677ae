#include "unixsock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* Fill a with path.  When path is too long for sun_path, chdir into its
 * directory, put its base name in a and keep the old directory open in
 * *dirfd for leave(); otherwise *dirfd is -1.  0, or -1 with errno set
 * (and the directory unchanged). */
static int enter(const char *path, struct sockaddr_un *a, int *dirfd)
{
    const char *slash = strrchr(path, '/');

    memset(a, 0, sizeof *a);
    a->sun_family = AF_UNIX;
    *dirfd = -1;
    if (strlen(path) < sizeof a->sun_path || !slash) {
        snprintf(a->sun_path, sizeof a->sun_path, "%s", path);
        return 0;
    }
    char dir[4096];
    snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    *dirfd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (*dirfd < 0 || chdir(dir) < 0) {
        int e = errno;
        if (*dirfd >= 0)
            close(*dirfd);
        *dirfd = -1;
        errno = e;
        return -1;
    }
    snprintf(a->sun_path, sizeof a->sun_path, "%s", slash + 1);
    return 0;
}

/* Back to the directory enter() left, if it left one.  errno is kept,
 * unless going back fails. */
static void leave(int dirfd)
{
    int e = errno;

    if (dirfd < 0)
        return;
    if (fchdir(dirfd) < 0)
        e = errno;
    close(dirfd);
    errno = e;
}

int unixsock_listen(const char *path)
{
    struct sockaddr_un a;
    int fd, dirfd, rc;
    mode_t old;

    if (enter(path, &a, &dirfd) < 0)
        return -1;
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd >= 0) {
        unlink(a.sun_path);     /* we hold the lock: any socket is stale */
        old = umask(0177);      /* born 0600, no window */
        rc = bind(fd, (struct sockaddr *)&a, sizeof a);
        umask(old);
        if (rc < 0 || chmod(a.sun_path, 0600) < 0 || listen(fd, 64) < 0) {
            int e = errno;
            close(fd);
            fd = -1;
            errno = e;
        }
    }
    leave(dirfd);
    return fd;
}

int unixsock_connect(const char *path)
{
    struct sockaddr_un a;
    int fd, dirfd, rc;

    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (enter(path, &a, &dirfd) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    rc = connect(fd, (struct sockaddr *)&a, sizeof a);
    leave(dirfd);
    if (rc < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}
