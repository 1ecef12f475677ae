#include "hosts.h"

#include "lib/hostaddr.h"

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
            here[i] = hostaddr_same(n->host, only);
        else
            here[i] = !any_host || hostaddr_is_local(n->host);
        count += here[i] != 0;
    }
    return count;
}
