/* check and send: herd.ini validation, one request to a node. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "herdctl.h"

int cmd_check(struct ctl *c)
{
    size_t links = 0;

    /* main() already loaded and validated the file: it is good. */
    ctl_check_perms(c);
    for (size_t i = 0; i < c->cfg.n_nodes; i++)
        links += c->cfg.nodes[i].n_neighbors;
    printf("%s: syntax is ok\n", c->config_path);
    printf("%s: %zu nodes, %zu links, places provider %s", c->config_path,
           c->cfg.n_nodes, links / 2, config_provider_name(c->cfg.provider));
    if (c->cfg.provider == PLACES_LOCAL && !c->cfg.places_url)
        printf(" on port %d", c->cfg.places_port);
    printf("\n%s: test is successful\n", c->config_path);
    return EX_OK;
}

static int dial(const char *host, int port, int timeout_ms)
{
    struct addrinfo hints, *res, *ai;
    char service[16];
    int fd = -1, rc;

    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    snprintf(service, sizeof service, "%d", port);
    if ((rc = getaddrinfo(host, service, &hints, &res)) != 0) {
        errno = EHOSTUNREACH;
        return -1;
    }
    for (ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC |
                    SOCK_NONBLOCK, ai->ai_protocol);
        if (fd < 0)
            continue;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        if (errno == EINPROGRESS) {
            struct pollfd p = {fd, POLLOUT, 0};
            int err = 0;
            socklen_t len = sizeof err;
            if (poll(&p, 1, timeout_ms) == 1 &&
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 &&
                err == 0)
                break;
            errno = err ? err : ETIMEDOUT;
        }
        int e = errno;
        close(fd);
        fd = -1;
        errno = e;
    }
    freeaddrinfo(res);
    return fd;
}

int cmd_send(struct ctl *c, const char *node, const char *line)
{
    int i = config_find_node(&c->cfg, node);
    char buf[65536];
    size_t got = 0;

    if (i < 0) {
        fprintf(stderr, "herdctl: no node named '%s' in %s\n", node,
                c->config_path);
        return EX_DOWN;
    }
    if (strchr(line, '\n')) {
        fprintf(stderr, "herdctl: send takes one line\n");
        return EX_USAGE;
    }
    const struct node_conf *n = &c->cfg.nodes[i];
    int fd = dial(n->host, n->port, 5000);
    if (fd < 0) {
        fprintf(stderr, "herdctl: cannot connect to %s at %s:%d: %s\n", node,
                n->host, n->port, strerror(errno));
        return errno == ECONNREFUSED ? EX_NOTALL : EX_SYS;
    }
    /* Does the reply end at the first newline, or at an empty line? */
    char verb[16] = "";
    sscanf(line, " %15s", verb);
    int whatsat = strcmp(verb, "WHATSAT") == 0;
    size_t len = strlen(line);
    char *req = malloc(len + 2);
    if (!req) {
        close(fd);
        return EX_SYS;
    }
    memcpy(req, line, len);
    req[len++] = '\n';
    for (size_t off = 0; off < len;) {
        struct pollfd p = {fd, POLLOUT, 0};
        if (poll(&p, 1, 5000) != 1)
            break;
        ssize_t w = send(fd, req + off, len - off, MSG_NOSIGNAL);
        if (w < 0 && errno != EAGAIN && errno != EINTR)
            break;
        if (w > 0)
            off += (size_t)w;
    }
    free(req);
    long timeout = c->cfg.places_timeout_ms + 5000;
    double deadline = ctl_now() + timeout / 1000.0;
    int complete = 0;
    while (!complete) {
        struct pollfd p = {fd, POLLIN, 0};
        long left = (long)((deadline - ctl_now()) * 1000);
        if (left <= 0 || poll(&p, 1, (int)left) != 1)
            break;
        ssize_t r = recv(fd, buf + got, sizeof buf - got, 0);
        if (r < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (r <= 0)
            break;
        fwrite(buf + got, 1, (size_t)r, stdout);
        got += (size_t)r;
        char *nl = memchr(buf, '\n', got);
        if (nl && (!whatsat || strncmp(buf, "? ", 2) == 0))
            complete = 1;
        else if (whatsat && got >= 2 && memmem(buf, got, "\n\n", 2))
            complete = 1;
        if (got == sizeof buf) {
            /* Keep the tail for spotting the end. */
            memmove(buf, buf + got - 2, 2);
            got = 2;
        }
    }
    close(fd);
    fflush(stdout);
    if (!complete) {
        fprintf(stderr, "herdctl: %s: %s\n", node,
                got ? "the reply was cut short" : "no reply");
        return EX_SYS;
    }
    return EX_OK;
}
