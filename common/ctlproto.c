#include "ctlproto.h"

#include <cjson/cJSON.h>
#include <string.h>

static const char *const state_names[] = {
    [CTL_STARTING] = "starting", [CTL_RUNNING] = "running",
    [CTL_BACKOFF] = "backoff",   [CTL_STOPPING] = "stopping",
    [CTL_STOPPED] = "stopped",   [CTL_FATAL] = "fatal",
    [CTL_ABSENT] = "absent",     [CTL_REMOTE] = "remote",
    [CTL_UNKNOWN] = "unknown",
};

static const char *const want_names[] = {
    [CTL_WANT_UP] = "up", [CTL_WANT_DOWN] = "down",
    [CTL_WANT_ELSEWHERE] = "elsewhere", [CTL_WANT_UNKNOWN] = "unknown",
};

const char *ctlproto_state_name(enum ctl_state st)
{
    return (unsigned)st <= CTL_UNKNOWN ? state_names[st] : "unknown";
}

enum ctl_state ctlproto_state_parse(const char *name)
{
    for (int i = 0; name && i < CTL_UNKNOWN; i++)
        if (strcmp(name, state_names[i]) == 0)
            return (enum ctl_state)i;
    return CTL_UNKNOWN;
}

const char *ctlproto_want_name(enum ctl_want w)
{
    return (unsigned)w <= CTL_WANT_UNKNOWN ? want_names[w] : "unknown";
}

static void add_count(cJSON *o, const char *key, int v)
{
    if (v >= 0)
        cJSON_AddNumberToObject(o, key, v);
    else
        cJSON_AddNullToObject(o, key);
}

static void add_text(cJSON *o, const char *key, const char *v)
{
    if (v)
        cJSON_AddStringToObject(o, key, v);
    else
        cJSON_AddNullToObject(o, key);
}

cJSON *ctlproto_row(const struct ctl_row *r)
{
    cJSON *o = cJSON_CreateObject(), *tail;

    cJSON_AddStringToObject(o, "name", r->name);
    cJSON_AddStringToObject(o, "state", ctlproto_state_name(r->state));
    if (r->pid)
        cJSON_AddNumberToObject(o, "pid", r->pid);
    else
        cJSON_AddNullToObject(o, "pid");
    cJSON_AddStringToObject(o, "host", r->host);
    cJSON_AddNumberToObject(o, "port", r->port);
    cJSON_AddNumberToObject(o, "uptime_s", (double)r->uptime_s);
    cJSON_AddNumberToObject(o, "restarts", r->restarts);
    add_text(o, "last_exit", r->last_exit);
    add_count(o, "links_up", r->links_up);
    add_count(o, "links_total", r->links_total);
    add_count(o, "clients", r->clients);
    cJSON_AddStringToObject(o, "want", ctlproto_want_name(r->want));
    add_text(o, "reason", r->reason);
    tail = cJSON_AddArrayToObject(o, "output_tail");
    for (int i = 0; i < r->n_tail; i++)
        cJSON_AddItemToArray(tail, cJSON_CreateString(r->tail[i]));
    return o;
}

cJSON *ctlproto_row_idle(const struct node_conf *n, enum ctl_state state)
{
    cJSON *o = cJSON_CreateObject();

    cJSON_AddStringToObject(o, "name", n->name);
    cJSON_AddStringToObject(o, "state", ctlproto_state_name(state));
    cJSON_AddNullToObject(o, "pid");
    cJSON_AddStringToObject(o, "host", n->host);
    cJSON_AddNumberToObject(o, "port", n->port);
    cJSON_AddNumberToObject(o, "uptime_s", 0);
    cJSON_AddNumberToObject(o, "restarts", 0);
    cJSON_AddNullToObject(o, "last_exit");
    return o;
}

cJSON *ctlproto_row_neighbors(cJSON *row, const struct herd_config *cfg,
                              const struct node_conf *n)
{
    cJSON *nb = cJSON_AddArrayToObject(row, "neighbors");

    for (size_t k = 0; n && k < n->n_neighbors; k++)
        cJSON_AddItemToArray(nb, cJSON_CreateString(
            cfg->nodes[n->neighbors[k]].name));
    return nb;
}

enum ctl_state ctlproto_row_state(const cJSON *row)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(row, "state");
    return cJSON_IsString(v) ? ctlproto_state_parse(v->valuestring)
                             : CTL_UNKNOWN;
}

enum ctl_want ctlproto_row_want(const cJSON *row)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(row, "want");

    for (int i = 0; cJSON_IsString(v) && i < CTL_WANT_UNKNOWN; i++)
        if (strcmp(v->valuestring, want_names[i]) == 0)
            return (enum ctl_want)i;
    return CTL_WANT_UNKNOWN;
}
