/* reload: compare the herd.ini in force with the file as it is now and
 * apply the difference, touching only what changed, from a typed plan
 * (struct change[]) that the reply, the dry run and the log all show. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "child.h"
#include "common/fsutil.h"
#include "common/grow.h"
#include "common/log.h"
#include "http.h"
#include "sup.h"

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Node i's neighbours as sorted names joined by spaces. */
static void neighbor_text(const struct herd_config *c, int i, char *buf,
                          size_t cap)
{
    const struct node_conf *n = &c->nodes[i];
    const char **names = calloc(n->n_neighbors + 1, sizeof *names);
    size_t used = 0;

    buf[0] = '\0';
    if (!names)
        return;
    for (size_t k = 0; k < n->n_neighbors; k++)
        names[k] = c->nodes[n->neighbors[k]].name;
    qsort(names, n->n_neighbors, sizeof *names, cmp_str);
    for (size_t k = 0; k < n->n_neighbors; k++) {
        int m = snprintf(buf + used, cap - used, "%s%s", k ? " " : "",
                         names[k]);
        if (m < 0 || (size_t)m >= cap - used)
            break;
        used += (size_t)m;
    }
    free(names);
}

/* A neighbour of node i (in c) whose address differs in d. */
static const char *moved_neighbor(const struct herd_config *c, int i,
                                  const struct herd_config *d)
{
    const struct node_conf *n = &c->nodes[i];

    for (size_t k = 0; k < n->n_neighbors; k++) {
        const struct node_conf *m = &c->nodes[n->neighbors[k]];
        int j = config_find_node(d, m->name);
        if (j >= 0 && (d->nodes[j].port != m->port ||
                       strcmp(d->nodes[j].host, m->host) != 0))
            return m->name;
    }
    return NULL;
}

/* Equal strings, NULL counting as its own value. */
static int same_text(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

static cJSON *refuse(int code, const char *msg)
{
    cJSON *r = cJSON_CreateObject();

    cJSON_AddBoolToObject(r, "ok", 0);
    cJSON_AddNumberToObject(r, "code", code);
    cJSON_AddStringToObject(r, "error", msg);
    return r;
}

/* Settings a node reads only when it starts. */
static void note_restart_only(const struct herd_config *a,
                              const struct herd_config *b, cJSON *notes)
{
    char msg[256];
#define KNOB(field, key)                                                   \
    if (a->field != b->field) {                                            \
        snprintf(msg, sizeof msg, "%s changed: nodes use it from their "   \
                 "next restart", key);                                     \
        cJSON_AddItemToArray(notes, cJSON_CreateString(msg));              \
    }
    KNOB(max_clients, "[herd] max_clients")
    KNOB(max_line, "[herd] max_line")
    KNOB(idle_timeout_s, "[herd] idle_timeout_s")
    KNOB(max_output_kb, "[herd] max_output_kb")
    KNOB(catchup_backlog_mb, "[herd] catchup_backlog_mb")
    KNOB(provider, "[places] provider")
    KNOB(places_timeout_ms, "[places] timeout_ms")
#undef KNOB
    const char *ua = a->places_url ? a->places_url : "";
    const char *ub = b->places_url ? b->places_url : "";
    if (strcmp(ua, ub) != 0 || strcmp(a->places_key_env, b->places_key_env))
        cJSON_AddItemToArray(notes, cJSON_CreateString(
            "[places] url or key_env changed: nodes use it from their next "
            "restart"));
}

/* ---- the plan ----------------------------------------------------------
 *
 * A reload compares the configuration in force with the file as it is
 * now and writes down what to do as a typed plan: built once, then
 * rendered (the dry run's and the reply's JSON, the log) and applied
 * from the same array, so what is shown is what is done. */

enum change_op {
    CH_START,                   /* + a new node, or the emulator */
    CH_STOP,                    /* - removed, moved away, no longer wanted */
    CH_RESTART,                 /* ~ its address (or the emulator's data) */
    CH_RELINK,                  /* ~ its neighbours: SIGHUP, same pid */
};

struct change {
    enum change_op op;
    enum child_kind kind;
    char name[CONFIG_NAME_MAX + 1];
    char detail[2048];          /* what changed, for people */
    struct child *child;        /* the child it touches; NULL for a start */
    int node;                   /* its index in the new herd.ini, or -1 */
};

struct plan {
    struct change *v;
    size_t n, cap;
};

/* A new change at the end of the plan, or NULL when out of memory. */
static struct change *plan_add(struct plan *p, enum change_op op,
                               enum child_kind kind, const char *name,
                               struct child *child, int node)
{
    if (GROW(p->v, p->cap, p->n + 1, 16) < 0)
        return NULL;
    struct change *ch = &p->v[p->n++];
    memset(ch, 0, sizeof *ch);
    ch->op = op;
    ch->kind = kind;
    snprintf(ch->name, sizeof ch->name, "%s", name);
    ch->child = child;
    ch->node = node;
    return ch;
}

static const char *op_sign(enum change_op op)
{
    return op == CH_START ? "+" : op == CH_STOP ? "-" : "~";
}

static const char *op_action(enum change_op op)
{
    switch (op) {
    case CH_START: return "start";
    case CH_STOP: return "stop";
    case CH_RESTART: return "restart";
    case CH_RELINK: return "relink";
    }
    return "?";
}

/* The plan as the control reply's "changes": op, name, action, detail. */
static cJSON *plan_json(const struct plan *p)
{
    cJSON *arr = cJSON_CreateArray();

    for (size_t i = 0; i < p->n; i++) {
        const struct change *ch = &p->v[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "op", op_sign(ch->op));
        cJSON_AddStringToObject(o, "name", ch->name);
        cJSON_AddStringToObject(o, "action", op_action(ch->op));
        cJSON_AddStringToObject(o, "detail", ch->detail);
        cJSON_AddItemToArray(arr, o);
    }
    return arr;
}

/* What the plan does to the emulator: start, stop or restart it.  0, or
 * -1 when out of memory. */
static int plan_places(struct sup *s, const struct herd_config *next,
                       size_t n_here, struct plan *p)
{
    struct child *pc = sup_find_child(s, CHILD_PLACES, NULL);
    int want = sup_wants_places(next, n_here);
    struct change *ch;

    if (want && !pc) {
        if (!(ch = plan_add(p, CH_START, CHILD_PLACES, "places", NULL, -1)))
            return -1;
        snprintf(ch->detail, sizeof ch->detail, "port %d", next->places_port);
    } else if (!want && pc) {
        if (!(ch = plan_add(p, CH_STOP, CHILD_PLACES, "places", pc, -1)))
            return -1;
        snprintf(ch->detail, sizeof ch->detail, "%s",
                 next->provider == PLACES_LOCAL
                     ? "no node of this machine is left"
                     : "provider is no longer local");
    } else if (pc && pc->port != next->places_port) {
        if (!(ch = plan_add(p, CH_RESTART, CHILD_PLACES, "places", pc, -1)))
            return -1;
        snprintf(ch->detail, sizeof ch->detail, "port %d -> %d", pc->port,
                 next->places_port);
    } else if (pc && !same_text(s->cfg.places_data, next->places_data)) {
        /* It reads its data once, at start. */
        if (!(ch = plan_add(p, CH_RESTART, CHILD_PLACES, "places", pc, -1)))
            return -1;
        snprintf(ch->detail, sizeof ch->detail, "data %s -> %s",
                 s->cfg.places_data ? s->cfg.places_data : "(default)",
                 next->places_data ? next->places_data : "(default)");
    }
    return 0;
}

/* What the plan does to the nodes: in the new file's order, then the
 * ones it no longer has.  0, or -1 when out of memory. */
static int plan_nodes(struct sup *s, const struct herd_config *next,
                      const int *here, struct plan *p)
{
    char a[512], b[512];
    struct change *ch;

    for (size_t i = 0; i < next->n_nodes; i++) {
        const struct node_conf *n = &next->nodes[i];
        int o = config_find_node(&s->cfg, n->name);
        struct child *have = sup_find_child(s, CHILD_NODE, n->name);
        const char *moved;

        if (!here[i]) {
            if (have) {
                if (!(ch = plan_add(p, CH_STOP, CHILD_NODE, n->name, have,
                                    (int)i)))
                    return -1;
                snprintf(ch->detail, sizeof ch->detail, "moved to host %s",
                         n->host);
            }
            continue;
        }
        if (o < 0 || !have) {
            if (!(ch = plan_add(p, CH_START, CHILD_NODE, n->name, NULL,
                                (int)i)))
                return -1;
            neighbor_text(next, (int)i, a, sizeof a);
            snprintf(ch->detail, sizeof ch->detail, "%s:%d, neighbours: %s",
                     n->host, n->port, a[0] ? a : "none");
            continue;
        }
        const struct node_conf *m = &s->cfg.nodes[o];
        if (m->port != n->port || strcmp(m->host, n->host) != 0) {
            if (!(ch = plan_add(p, CH_RESTART, CHILD_NODE, n->name, have,
                                (int)i)))
                return -1;
            snprintf(ch->detail, sizeof ch->detail, "%s:%d -> %s:%d",
                     m->host, m->port, n->host, n->port);
            continue;
        }
        neighbor_text(&s->cfg, o, a, sizeof a);
        neighbor_text(next, (int)i, b, sizeof b);
        if (strcmp(a, b) != 0) {
            if (!(ch = plan_add(p, CH_RELINK, CHILD_NODE, n->name, have,
                                (int)i)))
                return -1;
            snprintf(ch->detail, sizeof ch->detail, "neighbours: %s -> %s",
                     a[0] ? a : "none", b[0] ? b : "none");
        } else if ((moved = moved_neighbor(&s->cfg, o, next)) != NULL) {
            if (!(ch = plan_add(p, CH_RELINK, CHILD_NODE, n->name, have,
                                (int)i)))
                return -1;
            snprintf(ch->detail, sizeof ch->detail, "neighbour %s moved",
                     moved);
        }
    }
    for (struct child *c = s->children; c; c = c->next)
        if (c->kind == CHILD_NODE && c->want != WANT_GONE &&
            config_find_node(next, c->name) < 0) {
            if (!(ch = plan_add(p, CH_STOP, CHILD_NODE, c->name, c, -1)))
                return -1;
            snprintf(ch->detail, sizeof ch->detail, "removed from herd.ini");
        }
    return 0;
}

/* Do one change; s->cfg is the new configuration already. */
static void apply_change(struct sup *s, const struct change *ch)
{
    struct child *c = ch->child;

    switch (ch->op) {
    case CH_START:
        if (ch->kind == CHILD_PLACES) {
            c = child_new(s, CHILD_PLACES, "places", "127.0.0.1",
                          s->cfg.places_port);
            if (!c)
                return;
            c->next = s->children;      /* the emulator comes first */
            s->children = c;
            child_note(c, "reload: added");
        } else {
            const struct node_conf *n = &s->cfg.nodes[ch->node];
            c = child_new(s, CHILD_NODE, n->name, n->host, n->port);
            if (!c)
                return;
            struct child **tail = &s->children;
            while (*tail)
                tail = &(*tail)->next;
            *tail = c;
            child_note(c, "reload: added (%s)", ch->detail);
        }
        child_start(c);
        break;
    case CH_STOP:
        child_remove(c, ch->detail);
        break;
    case CH_RESTART:
        if (ch->kind == CHILD_PLACES) {
            child_note(c, "reload: %s; restarting", ch->detail);
            c->port = s->cfg.places_port;
        } else {
            const struct node_conf *n = &s->cfg.nodes[ch->node];
            snprintf(c->host, sizeof c->host, "%s", n->host);
            c->port = n->port;
            child_note(c, "reload: address changed (%s); restarting",
                       ch->detail);
        }
        if (child_wants_up(c))
            child_restart(c);
        break;
    case CH_RELINK:
        child_note(c, "reload: %s; SIGHUP to re-link", ch->detail);
        child_hup(c);
        break;
    }
}

cJSON *sup_reload(struct sup *s, int dry)
{
    struct herd_config next, old;
    struct plan plan = {0};
    char err[1024];
    cJSON *r, *notes;

    if (config_load(s->config_path, &next, err, sizeof err) < 0) {
        log_msg(LOG_WARN, "reload refused: %s", err);
        return refuse(100, err);
    }
    if (strcmp(next.run_dir, s->cfg.run_dir) != 0) {
        snprintf(err, sizeof err, "%s: run_dir changed from %s to %s; stop "
                 "the herd and start it again to move it", s->config_path,
                 s->cfg.run_dir, next.run_dir);
        config_free(&next);
        return refuse(100, err);
    }

    /* Which nodes belong here now (a node whose host changed may have
     * come to this machine or left it). */
    size_t n_here;
    int *here = sup_nodes_here(s, &next, &n_here);
    if (!here || plan_places(s, &next, n_here, &plan) < 0 ||
        plan_nodes(s, &next, here, &plan) < 0) {
        free(here);
        free(plan.v);
        config_free(&next);
        return refuse(111, "out of memory");
    }
    free(here);

    r = cJSON_CreateObject();
    cJSON_AddBoolToObject(r, "ok", 1);
    cJSON_AddBoolToObject(r, "dry_run", dry);
    cJSON_AddItemToObject(r, "changes", plan_json(&plan));
    notes = cJSON_AddArrayToObject(r, "notes");
    note_restart_only(&s->cfg, &next, notes);
    if (dry) {
        free(plan.v);
        config_free(&next);
        return r;
    }

    /* Apply: the new configuration is in force from here on. */
    log_msg(LOG_INFO, "reload: %zu change(s)", plan.n);
    for (size_t i = 0; i < plan.n; i++)
        log_msg(LOG_INFO, "reload: %s %s %s (%s)", op_sign(plan.v[i].op),
                plan.v[i].name, op_action(plan.v[i].op), plan.v[i].detail);
    old = s->cfg;
    s->cfg = next;
    http_reconfigure(s);
    fs_mkdir_p(s->cfg.log_dir, 0755);
    if (strcmp(old.log_dir, s->cfg.log_dir) != 0 ||
        old.log_max_mb != s->cfg.log_max_mb || old.log_keep != s->cfg.log_keep) {
        char *path = config_log_path(&s->cfg, "supervisor");
        if (path)
            log_open(path, "supervisor",
                     (size_t)s->cfg.log_max_mb * 1024 * 1024,
                     s->cfg.log_keep, 0);
        free(path);
    }
    for (size_t i = 0; i < plan.n; i++)
        apply_change(s, &plan.v[i]);
    free(plan.v);
    config_free(&old);

    /* Free what is already gone; keep the list in the file's order. */
    struct child **pp = &s->children;
    while (*pp) {
        struct child *c = *pp;
        if (child_gone(c)) {
            *pp = c->next;
            child_free(c);
        } else {
            pp = &c->next;
        }
    }
    struct child *sorted = NULL, **tail = &sorted;
    for (int pass = -1; pass < (int)s->cfg.n_nodes; pass++) {
        for (pp = &s->children; *pp;) {
            struct child *c = *pp;
            int match = pass < 0 ? c->kind == CHILD_PLACES
                : (c->kind == CHILD_NODE && c->want != WANT_GONE &&
                   strcmp(c->name, s->cfg.nodes[pass].name) == 0);
            if (match) {
                *pp = c->next;
                c->next = NULL;
                *tail = c;
                tail = &c->next;
            } else {
                pp = &c->next;
            }
        }
    }
    *tail = s->children;        /* removed ones still stopping */
    s->children = sorted;
    sup_save_state(s);
    return r;
}
