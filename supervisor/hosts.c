#include "hosts.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

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

int hosts_same(const char *a, const char *b)
{
    struct addr x, y;

    if (strcmp(a, b) == 0)
        return 1;
    x = parse(a);
    y = parse(b);
    return addr_equal(&x, &y);
}

int hosts_is_local(const char *text)
{
    struct addr a = parse(text);
    struct ifaddrs *ifs;
    int local = 0;

    if (strcmp(text, "localhost") == 0)
        return 1;
    if (a.family == AF_INET) {
        if ((ntohl(a.u.v4.s_addr) >> 24) == 127 || a.u.v4.s_addr == INADDR_ANY)
            return 1;
    } else if (a.family == AF_INET6) {
        if (IN6_IS_ADDR_LOOPBACK(&a.u.v6) || IN6_IS_ADDR_UNSPECIFIED(&a.u.v6))
            return 1;
    } else {
        return 0;               /* a name: never resolved here */
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
        local = addr_equal(&a, &mine);
    }
    freeifaddrs(ifs);
    return local;
}

size_t hosts_select(const struct herd_config *cfg, const char *only,
                    int *here)
{
    size_t count = 0;
    int any_host = 0;

    for (size_t i = 0; i < cfg->n_nodes; i++)
        any_host |= cfg->nodes[i].host_set;
    for (size_t i = 0; i < cfg->n_nodes; i++) {
        const struct node_conf *n = &cfg->nodes[i];
        if (only)
            here[i] = hosts_same(n->host, only);
        else
            here[i] = !any_host || hosts_is_local(n->host);
        count += here[i] != 0;
    }
    return count;
}
