/* net: where herd-bench connects, and small helpers shared by its modes. */
#ifndef HERD_BENCH_NET_H
#define HERD_BENCH_NET_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

struct bench_target {
    char text[300];                 /* as given, for messages */
    struct sockaddr_storage addr;
    socklen_t addrlen;
};

/* "PORT" (meaning 127.0.0.1:PORT), "HOST:PORT" or "[V6]:PORT", resolved
 * numerically or by name.  0, or -1 with a message in err. */
int net_parse_target(const char *s, struct bench_target *t,
                     char *err, size_t errlen);

/* A connected, non-blocking TCP socket with TCP_NODELAY.  The connect
 * itself blocks (it happens before any measurement).  fd, or -1 (errno). */
int net_connect(const struct bench_target *t);

struct buf;

/* Write as much of b as the socket takes now.  Returns the bytes written
 * (0 when the socket is full), or -1 with errno on a real error. */
ssize_t net_flush(int fd, struct buf *b);

/* Read what the socket has into b, chunk bytes of room at a time.
 * Returns the bytes read (0 when nothing was waiting), or NET_READ_ERROR
 * (errno set), NET_READ_FULL (b is at its cap: a reply too long) or
 * NET_READ_EOF (the other side closed). */
#define NET_READ_ERROR (-1)
#define NET_READ_FULL (-2)
#define NET_READ_EOF (-3)
ssize_t net_fill(int fd, struct buf *b, size_t chunk);

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t net_now_ns(void);

/* Write an unsigned decimal; returns the digits written (no NUL). */
size_t net_utoa(uint64_t v, char *out);

#endif
