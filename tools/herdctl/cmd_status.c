/* status and graph: what runs, as a table, JSON or Graphviz DOT. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "herdctl.h"
#include "common/ctlproto.h"
#include "common/hosts.h"

static const char *str(cJSON *o, const char *key, const char *dflt)
{
    cJSON *v = cJSON_GetObjectItem(o, key);
    return cJSON_IsString(v) ? v->valuestring : dflt;
}

static long num(cJSON *o, const char *key)
{
    cJSON *v = cJSON_GetObjectItem(o, key);
    return cJSON_IsNumber(v) ? (long)v->valuedouble : -1;
}

static void uptime(long s, char *buf, size_t cap)
{
    if (s < 0)
        snprintf(buf, cap, "-");
    else if (s < 60)
        snprintf(buf, cap, "%lds", s);
    else if (s < 3600)
        snprintf(buf, cap, "%ldm%02lds", s / 60, s % 60);
    else if (s < 86400)
        snprintf(buf, cap, "%ldh%02ldm", s / 3600, (s % 3600) / 60);
    else
        snprintf(buf, cap, "%ldd%02ldh", s / 86400, (s % 86400) / 3600);
}

/* The status the supervisor would give if nothing ran: every node of
 * this machine stopped, the others remote. */
static cJSON *offline_status(struct ctl *c)
{
    cJSON *r = cJSON_CreateObject(), *herd, *nodes;
    int *here = calloc(c->cfg.n_nodes + 1, sizeof *here);

    if (here && hosts_select(&c->cfg, NULL, here) == 0)
        for (size_t i = 0; i < c->cfg.n_nodes; i++)
            here[i] = 1;        /* none here: show them all as ours */

    herd = cJSON_AddObjectToObject(r, "herd");
    cJSON_AddStringToObject(herd, "config", c->cfg.path);
    cJSON_AddNullToObject(herd, "supervisor_pid");
    nodes = cJSON_AddArrayToObject(r, "nodes");
    for (size_t i = 0; i < c->cfg.n_nodes; i++) {
        const struct node_conf *n = &c->cfg.nodes[i];
        cJSON *o = ctlproto_row_idle(n, here && !here[i] ? CTL_REMOTE
                                                       : CTL_STOPPED);
        cJSON_AddNullToObject(o, "links_up");
        cJSON_AddNullToObject(o, "links_total");
        cJSON_AddNullToObject(o, "clients");
        ctlproto_row_neighbors(o, &c->cfg, n);
        cJSON_AddItemToArray(nodes, o);
    }
    free(here);
    return r;
}

static void print_row(cJSON *n, int tty)
{
    char up[32], links[32], clients[32], pid[32];
    const char *state = str(n, "state", "?");
    enum ctl_state st = ctlproto_row_state(n);
    const char *colour = "";

    if (tty)
        colour = st == CTL_RUNNING ? "\033[32m"
               : st == CTL_FATAL ? "\033[31m"
               : st == CTL_REMOTE ? "\033[36m" : "\033[33m";
    uptime(st == CTL_RUNNING || st == CTL_STARTING
               ? num(n, "uptime_s") : -1, up, sizeof up);
    if (num(n, "links_total") >= 0)
        snprintf(links, sizeof links, "%ld/%ld", num(n, "links_up"),
                 num(n, "links_total"));
    else
        snprintf(links, sizeof links, "-");
    if (num(n, "clients") >= 0)
        snprintf(clients, sizeof clients, "%ld", num(n, "clients"));
    else
        snprintf(clients, sizeof clients, "-");
    if (num(n, "pid") > 0)
        snprintf(pid, sizeof pid, "%ld", num(n, "pid"));
    else
        snprintf(pid, sizeof pid, "-");
    printf("%-12s %s%-9s%s %-8s %-8s %-6ld %-9ld %-6s %s\n",
           str(n, "name", "?"), colour, state, tty ? "\033[0m" : "", pid, up,
           num(n, "port"), num(n, "restarts") < 0 ? 0 : num(n, "restarts"),
           links, clients);
    if (st == CTL_REMOTE) {
        /* Another machine runs it: say where, and how our nodes see it. */
        cJSON *l, *here = cJSON_GetObjectItem(n, "links_here");
        printf("    on host %s", str(n, "host", "?"));
        int k = 0;
        cJSON_ArrayForEach(l, here)
            printf("%s%s %s", k++ ? ", " : "; links from here: ",
                   str(l, "from", "?"), str(l, "state", "?"));
        printf("\n");
        return;
    }
    cJSON *reason = cJSON_GetObjectItem(n, "reason");
    if (cJSON_IsString(reason))
        printf("    %s: %s\n", st == CTL_ABSENT ? "absent" : "why",
               reason->valuestring);
    else if (cJSON_IsString(cJSON_GetObjectItem(n, "last_exit")) &&
             st != CTL_RUNNING && st != CTL_STOPPED)
        printf("    last exit: %s\n", str(n, "last_exit", ""));
}

/* What a places emulator that does not run means for clients. */
static void places_line(cJSON *pl)
{
    cJSON *reason = cJSON_GetObjectItem(pl, "reason");

    printf("WHATSAT cannot work: the places emulator is %s%s%s\n",
           str(pl, "state", "?"), cJSON_IsString(reason) ? ": " : "",
           cJSON_IsString(reason) ? reason->valuestring : "");
}

int cmd_status(struct ctl *c, const char *node, int json)
{
    cJSON *st = NULL, *n;
    int rc = ctl_request(c, "status", &st), down = 0;

    if (rc == EX_DOWN) {
        down = 1;
        st = offline_status(c);
    } else if (rc) {
        return rc;
    } else {
        cJSON_DeleteItemFromObject(st, "ok");
    }
    if (node && !ctl_find_node(st, node)) {
        fprintf(stderr, "herdctl: no node named '%s' in this herd\n", node);
        cJSON_Delete(st);
        return EX_DOWN;
    }
    /* Only this machine's nodes count; a remote node asked for by name
     * counts as running when every link of ours to it is up. */
    int all = 1;
    cJSON_ArrayForEach(n, cJSON_GetObjectItem(st, "nodes")) {
        if (node && strcmp(str(n, "name", ""), node) != 0)
            continue;
        if (ctlproto_row_state(n) == CTL_REMOTE) {
            if (node && num(n, "links_up") != num(n, "links_total"))
                all = 0;
            continue;
        }
        if (ctlproto_row_state(n) != CTL_RUNNING)
            all = 0;
    }
    if (node && strcmp(node, "places") == 0)
        all = ctlproto_row_state(ctl_find_node(st, node)) == CTL_RUNNING;
    /* The whole herd counts its places emulator: with it down, WHATSAT
     * cannot work, and that is not "every node runs". */
    cJSON *places = cJSON_GetObjectItem(st, "places");
    int places_down = places && !node &&
                      ctlproto_row_state(places) != CTL_RUNNING;
    if (places_down)
        all = 0;
    if (json) {
        if (node) {
            cJSON *only = cJSON_CreateArray();
            cJSON_AddItemToArray(only, cJSON_Duplicate(ctl_find_node(st, node), 1));
            cJSON_ReplaceItemInObject(st, "nodes", only);
        }
        char *text = cJSON_Print(st);
        printf("%s\n", text);
        free(text);
    } else {
        cJSON *herd = cJSON_GetObjectItem(st, "herd");
        if (down) {
            printf("herd %s: not running (no supervisor answers at %s)\n",
                   c->cfg.path, c->sock_path);
        } else {
            const char *host = str(herd, "host", NULL);
            printf("herd %s: supervisor pid %ld%s%s%s\n",
                   str(herd, "config", "?"), num(herd, "supervisor_pid"),
                   host ? ", host " : "", host ? host : "",
                   cJSON_IsTrue(cJSON_GetObjectItem(herd, "stopping"))
                       ? ", stopping" : "");
        }
        printf("%-12s %-9s %-8s %-8s %-6s %-9s %-6s %s\n", "NAME", "STATE",
               "PID", "UPTIME", "PORT", "RESTARTS", "LINKS", "CLIENTS");
        cJSON_ArrayForEach(n, cJSON_GetObjectItem(st, "nodes"))
            if (!node || strcmp(str(n, "name", ""), node) == 0)
                print_row(n, c->tty);
        cJSON *pl = cJSON_GetObjectItem(st, "places");
        if (pl && (!node || strcmp(node, "places") == 0)) {
            printf("places emulator (provider local):\n");
            print_row(pl, c->tty);
            if (ctlproto_row_state(pl) != CTL_RUNNING)
                places_line(pl);
        } else if (!down && !node) {
            printf("places: provider %s, no emulator\n",
                   str(herd, "places_provider", "?"));
        }
    }
    cJSON_Delete(st);
    if (down)
        return EX_DOWN;
    return all ? EX_OK : EX_NOTALL;
}

/* What node a says about its link to b: "up", "down" or NULL.  For a
 * remote a, what our node b says (we cannot see a's side). */
static const char *link_state(cJSON *st, const char *a, const char *b)
{
    cJSON *n = ctl_find_node(st, a), *l;

    if (n && ctlproto_row_state(n) == CTL_REMOTE) {
        cJSON_ArrayForEach(l, cJSON_GetObjectItem(n, "links_here"))
            if (strcmp(str(l, "from", ""), b) == 0)
                return str(l, "state", NULL);
        return NULL;
    }

    if (!n || ctlproto_row_state(n) != CTL_RUNNING)
        return "down";
    cJSON_ArrayForEach(l, cJSON_GetObjectItem(n, "links"))
        if (strcmp(str(l, "peer", ""), b) == 0)
            return str(l, "state", NULL);
    return NULL;
}

static int running(cJSON *st, const char *name)
{
    cJSON *n = ctl_find_node(st, name);
    return n && ctlproto_row_state(n) == CTL_RUNNING;
}

static int remote(cJSON *st, const char *name)
{
    cJSON *n = ctl_find_node(st, name);
    return n && ctlproto_row_state(n) == CTL_REMOTE;
}

static void dot_string(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            putchar('\\');
        putchar(*s);
    }
    putchar('"');
}

int cmd_graph(struct ctl *c)
{
    cJSON *st = NULL, *n;
    int rc = ctl_request(c, "status", &st), live = rc == 0;

    if (rc == EX_DOWN)
        st = offline_status(c);
    else if (rc)
        return rc;
    printf("// herd %s: %s\n", c->cfg.path,
           live ? "live link state from the running herd"
                : "not running; topology only");
    printf("graph herd {\n    node [shape=box, style=rounded];\n");
    cJSON_ArrayForEach(n, cJSON_GetObjectItem(st, "nodes")) {
        const char *state = str(n, "state", "stopped");
        enum ctl_state st = ctlproto_row_state(n);
        const char *colour = st == CTL_RUNNING ? "darkgreen"
                           : st == CTL_FATAL ? "red"
                           : st == CTL_REMOTE ? "blue" : "gray";
        char label[512];
        snprintf(label, sizeof label, "%s\\n%s:%ld\\n%s", str(n, "name", "?"),
                 str(n, "host", "?"), num(n, "port"), state);
        printf("    ");
        dot_string(str(n, "name", "?"));
        printf(" [label=\"%s\", color=%s];\n", label, colour);
    }
    cJSON_ArrayForEach(n, cJSON_GetObjectItem(st, "nodes")) {
        const char *a = str(n, "name", "?");
        cJSON *nb;
        cJSON_ArrayForEach(nb, cJSON_GetObjectItem(n, "neighbors")) {
            const char *b = cJSON_IsString(nb) ? nb->valuestring : "?";
            if (strcmp(a, b) >= 0)
                continue;       /* each edge once */
            const char *state = "unknown", *colour = "gray", *style = "dashed";
            if (live && remote(st, a) && remote(st, b)) {
                /* Neither end is ours: another machine's to tell. */
            } else if (live) {
                const char *sa = link_state(st, a, b);
                const char *sb = link_state(st, b, a);
                int ua = sa && strcmp(sa, "up") == 0;
                int ub = sb && strcmp(sb, "up") == 0;
                int ra = remote(st, a), rb = remote(st, b);
                if (ra || rb) {
                    /* One side is ours: its view is all we have. */
                    if ((ra ? ua : ub) && running(st, ra ? b : a)) {
                        state = "up";
                        colour = "darkgreen";
                        style = "solid";
                    } else {
                        state = "down";
                        colour = "red";
                    }
                } else if (!running(st, a) || !running(st, b)) {
                    state = "down";     /* whatever a stale file says */
                    colour = "red";
                } else if (ua && ub) {
                    state = "up";
                    colour = "darkgreen";
                    style = "solid";
                } else if (ua || ub) {
                    state = "half-up";
                    colour = "orange";
                } else {
                    state = "down";
                    colour = "red";
                }
            }
            printf("    ");
            dot_string(a);
            printf(" -- ");
            dot_string(b);
            printf(" [label=\"%s\", color=%s, style=%s];\n", state, colour,
                   style);
        }
    }
    printf("}\n");
    cJSON_Delete(st);
    return EX_OK;
}
