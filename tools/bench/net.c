#include "net.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"

int net_parse_target(const char *s, struct bench_target *t,
                     char *err, size_t errlen)
{
    char host[256];
    const char *port;
    struct addrinfo hints, *res = NULL;
    int rc;

    memset(t, 0, sizeof *t);
    if (strlen(s) >= sizeof t->text) {
        snprintf(err, errlen, "target too long: %.40s...", s);
        return -1;
    }
    strcpy(t->text, s);
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL || close[1] != ':' ||
            (size_t)(close - s - 1) >= sizeof host) {
            snprintf(err, errlen, "bad target: %s", s);
            return -1;
        }
        memcpy(host, s + 1, (size_t)(close - s - 1));
        host[close - s - 1] = '\0';
        port = close + 2;
    } else {
        const char *colon = strrchr(s, ':');
        if (colon == NULL) {
            strcpy(host, "127.0.0.1");
            port = s;
        } else {
            if ((size_t)(colon - s) >= sizeof host || colon == s) {
                snprintf(err, errlen, "bad target: %s", s);
                return -1;
            }
            memcpy(host, s, (size_t)(colon - s));
            host[colon - s] = '\0';
            port = colon + 1;
        }
    }
    {
        char *end;
        long p = strtol(port, &end, 10);
        if (*port == '\0' || *end != '\0' || p < 1 || p > 65535) {
            snprintf(err, errlen, "bad port in target: %s", s);
            return -1;
        }
    }
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "cannot resolve %s: %s", s, gai_strerror(rc));
        return -1;
    }
    memcpy(&t->addr, res->ai_addr, res->ai_addrlen);
    t->addrlen = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

int net_connect(const struct bench_target *t)
{
    int fd, one = 1, flags;

    fd = socket(t->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (const struct sockaddr *)&t->addr, t->addrlen) < 0)
        goto fail;
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0)
        goto fail;
    flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
        goto fail;
    return fd;
fail:
    {
        int saved = errno;
        close(fd);
        errno = saved;
    }
    return -1;
}

uint64_t net_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

size_t net_utoa(uint64_t v, char *out)
{
    char tmp[20];
    size_t n = 0, i;

    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    return n;
}

ssize_t net_flush(int fd, struct buf *b)
{
    ssize_t total = 0;

    while (buf_len(b) > 0) {
        ssize_t n = write(fd, buf_head(b), buf_len(b));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            return -1;
        }
        buf_consume(b, (size_t)n);
        total += n;
    }
    return total;
}

ssize_t net_fill(int fd, struct buf *b, size_t chunk)
{
    ssize_t total = 0;

    for (;;) {
        size_t room;
        char *p = buf_space(b, chunk, &room);
        ssize_t n;

        if (p == NULL)
            return NET_READ_FULL;
        n = read(fd, p, room);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            return NET_READ_ERROR;
        }
        if (n == 0)
            return NET_READ_EOF;
        buf_commit(b, (size_t)n);
        total += n;
        if ((size_t)n < room)
            break;
    }
    return total;
}
