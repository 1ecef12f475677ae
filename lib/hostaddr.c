#include "hostaddr.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* A host name is resolved once per process (the supervisor at start or
 * at the first reload that names it; herdctl once per run), waiting at
 * most this long: a resolver that does not answer makes the name "not
 * this machine", it never stalls the supervisor for longer. */
#define NAME_WAIT_MS 2000
#define NAME_CACHE 64

/* An IPv4 or IPv6 address in text, parsed; family 0 when it is neither. */
struct addr {
    int family;
    union {
        struct in_addr v4;
        struct in6_addr v6;
    } u;
};

static struct addr parse(const char *text)
{
    struct addr a;

    memset(&a, 0, sizeof a);
    if (inet_pton(AF_INET, text, &a.u.v4) == 1)
        a.family = AF_INET;
    else if (inet_pton(AF_INET6, text, &a.u.v6) == 1)
        a.family = AF_INET6;
    return a;
}

static int addr_equal(const struct addr *a, const struct addr *b)
{
    if (a->family != b->family || a->family == 0)
        return 0;
    if (a->family == AF_INET)
        return a->u.v4.s_addr == b->u.v4.s_addr;
    return memcmp(&a->u.v6, &b->u.v6, sizeof a->u.v6) == 0;
}

int hostaddr_same(const char *a, const char *b)
{
    struct addr x, y;

    if (strcmp(a, b) == 0)
        return 1;
    x = parse(a);
    y = parse(b);
    return addr_equal(&x, &y);
}

/* True when a is loopback, unspecified or one of this machine's
 * interface addresses. */
static int addr_is_local(const struct addr *a)
{
    struct ifaddrs *ifs;
    int local = 0;

    if (a->family == AF_INET) {
        if ((ntohl(a->u.v4.s_addr) >> 24) == 127 ||
            a->u.v4.s_addr == INADDR_ANY)
            return 1;
    } else if (a->family == AF_INET6) {
        if (IN6_IS_ADDR_LOOPBACK(&a->u.v6) ||
            IN6_IS_ADDR_UNSPECIFIED(&a->u.v6))
            return 1;
    } else {
        return 0;
    }
    if (getifaddrs(&ifs) < 0)
        return 0;
    for (struct ifaddrs *i = ifs; i && !local; i = i->ifa_next) {
        struct addr mine;

        if (!i->ifa_addr)
            continue;
        memset(&mine, 0, sizeof mine);
        if (i->ifa_addr->sa_family == AF_INET) {
            mine.family = AF_INET;
            mine.u.v4 = ((struct sockaddr_in *)(void *)i->ifa_addr)->sin_addr;
        } else if (i->ifa_addr->sa_family == AF_INET6) {
            mine.family = AF_INET6;
            mine.u.v6 = ((struct sockaddr_in6 *)(void *)i->ifa_addr)->sin6_addr;
        }
        local = addr_equal(a, &mine);
    }
    freeifaddrs(ifs);
    return local;
}

/* A name resolved earlier; its request stays here even when it timed
 * out uncancelled (getaddrinfo_a still writes into it). */
struct named {
    char name[HOSTADDR_NAME_MAX + 1];
    int local;
    struct gaicb req;
    struct addrinfo hints;
};

static struct named *names[NAME_CACHE];
static size_t n_names;

/* This machine's own name (gethostname), in full or its first label. */
static int is_my_name(const char *name)
{
    char me[256];
    size_t k;

    if (gethostname(me, sizeof me) < 0)
        return 0;
    me[sizeof me - 1] = '\0';
    if (strcasecmp(name, me) == 0)
        return 1;
    k = strcspn(me, ".");
    return strchr(name, '.') == NULL && strlen(name) == k &&
           strncasecmp(name, me, k) == 0;
}

static int name_is_local(const char *name)
{
    struct named *e;
    const struct gaicb *list[1];
    struct timespec wait = {NAME_WAIT_MS / 1000, (NAME_WAIT_MS % 1000) * 1000000L};
    struct gaicb *reqs[1];

    for (size_t i = 0; i < n_names; i++)
        if (strcmp(names[i]->name, name) == 0)
            return names[i]->local;
    if (is_my_name(name))
        return 1;
    if (n_names == NAME_CACHE || !(e = calloc(1, sizeof *e)))
        return 0;
    snprintf(e->name, sizeof e->name, "%s", name);
    e->hints.ai_family = AF_UNSPEC;
    e->hints.ai_socktype = SOCK_STREAM;
    e->req.ar_name = e->name;
    e->req.ar_request = &e->hints;
    names[n_names++] = e;
    reqs[0] = &e->req;
    list[0] = &e->req;
    if (getaddrinfo_a(GAI_NOWAIT, reqs, 1, NULL) != 0)
        return 0;
    if (gai_suspend(list, 1, &wait) != 0 && gai_error(&e->req) == EAI_INPROGRESS) {
        gai_cancel(&e->req);    /* or it finishes into e, left allocated */
        return 0;
    }
    if (gai_error(&e->req) == 0 && e->req.ar_result) {
        for (struct addrinfo *p = e->req.ar_result; p && !e->local;
             p = p->ai_next) {
            struct addr a;

            memset(&a, 0, sizeof a);
            if (p->ai_family == AF_INET) {
                a.family = AF_INET;
                a.u.v4 = ((struct sockaddr_in *)(void *)p->ai_addr)->sin_addr;
            } else if (p->ai_family == AF_INET6) {
                a.family = AF_INET6;
                a.u.v6 = ((struct sockaddr_in6 *)(void *)p->ai_addr)->sin6_addr;
            }
            e->local = addr_is_local(&a);
        }
        freeaddrinfo(e->req.ar_result);
        e->req.ar_result = NULL;
    }
    return e->local;
}

int hostaddr_is_local(const char *text)
{
    struct addr a = parse(text);

    if (strcmp(text, "localhost") == 0)
        return 1;
    if (a.family == 0)
        return name_is_local(text);
    return addr_is_local(&a);
}
