#include "status_row.h"

#include <cjson/cJSON.h>

cJSON *status_row_idle(const struct node_conf *n, const char *state)
{
    cJSON *o = cJSON_CreateObject();

    cJSON_AddStringToObject(o, "name", n->name);
    cJSON_AddStringToObject(o, "state", state);
    cJSON_AddNullToObject(o, "pid");
    cJSON_AddStringToObject(o, "host", n->host);
    cJSON_AddNumberToObject(o, "port", n->port);
    cJSON_AddNumberToObject(o, "uptime_s", 0);
    cJSON_AddNumberToObject(o, "restarts", 0);
    cJSON_AddNullToObject(o, "last_exit");
    return o;
}

cJSON *status_row_neighbors(cJSON *row, const struct herd_config *cfg,
                            const struct node_conf *n)
{
    cJSON *nb = cJSON_AddArrayToObject(row, "neighbors");

    for (size_t k = 0; n && k < n->n_neighbors; k++)
        cJSON_AddItemToArray(nb, cJSON_CreateString(
            cfg->nodes[n->neighbors[k]].name));
    return nb;
}
