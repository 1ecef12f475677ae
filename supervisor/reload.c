/* reload: compare the herd.ini in force with the file as it is now and
 * apply the difference, touching only what changed. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "child.h"
#include "common/log.h"
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

static void add_change(cJSON *arr, const char *op, const char *name,
                       const char *action, const char *detail)
{
    cJSON *o = cJSON_CreateObject();

    cJSON_AddStringToObject(o, "op", op);
    cJSON_AddStringToObject(o, "name", name);
    cJSON_AddStringToObject(o, "action", action);
    cJSON_AddStringToObject(o, "detail", detail);
    cJSON_AddItemToArray(arr, o);
}

static struct child *find_child(struct sup *s, enum child_kind kind,
                                const char *name)
{
    for (struct child *c = s->children; c; c = c->next)
        if (!c->removed && c->kind == kind &&
            (kind == CHILD_PLACES || strcmp(c->name, name) == 0))
            return c;
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

cJSON *sup_reload(struct sup *s, int dry)
{
    struct herd_config next, old;
    char err[1024], detail[2048], a[512], b[512];
    cJSON *r, *changes, *notes;

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
    r = cJSON_CreateObject();
    cJSON_AddBoolToObject(r, "ok", 1);
    cJSON_AddBoolToObject(r, "dry_run", dry);
    changes = cJSON_AddArrayToObject(r, "changes");
    notes = cJSON_AddArrayToObject(r, "notes");
    note_restart_only(&s->cfg, &next, notes);

    /* Which nodes belong here now (a node whose host changed may have
     * come to this machine or left it). */
    size_t n_here;
    int *here = sup_nodes_here(s, &next, &n_here);
    if (!here) {
        config_free(&next);
        cJSON_Delete(r);
        return refuse(111, "out of memory");
    }

    /* The places emulator. */
    struct child *pc = find_child(s, CHILD_PLACES, NULL);
    int want_places = sup_wants_places(&next, n_here);
    enum { PL_NONE, PL_ADD, PL_REMOVE, PL_RESTART } pl = PL_NONE;
    if (want_places && !pc) {
        pl = PL_ADD;
        snprintf(detail, sizeof detail, "port %d", next.places_port);
        add_change(changes, "+", "places", "start", detail);
    } else if (!want_places && pc) {
        pl = PL_REMOVE;
        add_change(changes, "-", "places", "stop",
                   next.provider == PLACES_LOCAL
                       ? "no node of this machine is left"
                       : "provider is no longer local");
    } else if (pc && pc->port != next.places_port) {
        pl = PL_RESTART;
        snprintf(detail, sizeof detail, "port %d -> %d", pc->port,
                 next.places_port);
        add_change(changes, "~", "places", "restart", detail);
    } else if (pc && !same_text(s->cfg.places_data, next.places_data)) {
        pl = PL_RESTART;        /* it reads its data once, at start */
        snprintf(detail, sizeof detail, "data %s -> %s",
                 s->cfg.places_data ? s->cfg.places_data : "(default)",
                 next.places_data ? next.places_data : "(default)");
        add_change(changes, "~", "places", "restart", detail);
    }

    /* Nodes, in the new file's order, then the removed ones. */
    for (size_t i = 0; i < next.n_nodes; i++) {
        struct node_conf *n = &next.nodes[i];
        int o = config_find_node(&s->cfg, n->name);
        const char *moved;

        struct child *have = find_child(s, CHILD_NODE, n->name);

        if (!here[i]) {
            if (have) {
                snprintf(detail, sizeof detail, "moved to host %s", n->host);
                add_change(changes, "-", n->name, "stop", detail);
            }
            continue;
        }
        if (o < 0 || !have) {
            neighbor_text(&next, (int)i, a, sizeof a);
            snprintf(detail, sizeof detail, "%s:%d, neighbours: %s", n->host,
                     n->port, a[0] ? a : "none");
            add_change(changes, "+", n->name, "start", detail);
            continue;
        }
        struct node_conf *m = &s->cfg.nodes[o];
        if (m->port != n->port || strcmp(m->host, n->host) != 0) {
            snprintf(detail, sizeof detail, "%s:%d -> %s:%d", m->host,
                     m->port, n->host, n->port);
            add_change(changes, "~", n->name, "restart", detail);
            continue;
        }
        neighbor_text(&s->cfg, o, a, sizeof a);
        neighbor_text(&next, (int)i, b, sizeof b);
        if (strcmp(a, b) != 0) {
            snprintf(detail, sizeof detail, "neighbours: %s -> %s",
                     a[0] ? a : "none", b[0] ? b : "none");
            add_change(changes, "~", n->name, "relink", detail);
        } else if ((moved = moved_neighbor(&s->cfg, o, &next)) != NULL) {
            snprintf(detail, sizeof detail, "neighbour %s moved", moved);
            add_change(changes, "~", n->name, "relink", detail);
        }
    }
    for (struct child *c = s->children; c; c = c->next)
        if (c->kind == CHILD_NODE && !c->removed &&
            config_find_node(&next, c->name) < 0)
            add_change(changes, "-", c->name, "stop", "removed from herd.ini");
    free(here);

    if (dry) {
        config_free(&next);
        return r;
    }

    /* Apply: the new configuration is in force from here on. */
    log_msg(LOG_INFO, "reload: %d change(s)", cJSON_GetArraySize(changes));
    old = s->cfg;
    s->cfg = next;
    mkdir(s->cfg.log_dir, 0755);
    if (strcmp(old.log_dir, s->cfg.log_dir) != 0 ||
        old.log_max_mb != s->cfg.log_max_mb || old.log_keep != s->cfg.log_keep) {
        char *path = config_log_path(&s->cfg, "supervisor");
        if (path)
            log_open(path, "supervisor",
                     (size_t)s->cfg.log_max_mb * 1024 * 1024,
                     s->cfg.log_keep, 0);
        free(path);
    }
    if (pl == PL_ADD) {
        struct child *c = child_new(s, CHILD_PLACES, "places", "127.0.0.1",
                                    s->cfg.places_port);
        if (c) {
            c->next = s->children;
            s->children = c;
            child_note(c, "reload: added");
            child_start(c);
        }
    } else if (pl == PL_REMOVE) {
        child_note(pc, "reload: %s; stopping",
                   next.provider == PLACES_LOCAL
                       ? "no node of this machine is left"
                       : "provider is no longer local");
        pc->removed = 1;
        child_stop(pc);
    } else if (pl == PL_RESTART) {
        child_note(pc, "reload: %s; restarting",
                   cJSON_GetObjectItem(cJSON_GetArrayItem(changes, 0),
                                       "detail")->valuestring);
        pc->port = s->cfg.places_port;
        if (pc->want_up)
            child_restart(pc);
    }
    cJSON *ch;
    int index = 0;
    cJSON_ArrayForEach(ch, changes) {
        const char *op = cJSON_GetObjectItem(ch, "op")->valuestring;
        const char *name = cJSON_GetObjectItem(ch, "name")->valuestring;
        const char *action = cJSON_GetObjectItem(ch, "action")->valuestring;
        const char *what = cJSON_GetObjectItem(ch, "detail")->valuestring;
        int i = config_find_node(&s->cfg, name);

        if (index++ == 0 && pl != PL_NONE)
            continue;           /* the places change, done above */
        if (op[0] == '+') {
            struct child *c = child_new(s, CHILD_NODE, name,
                                        s->cfg.nodes[i].host,
                                        s->cfg.nodes[i].port);
            if (!c)
                continue;
            struct child **tail = &s->children;
            while (*tail)
                tail = &(*tail)->next;
            *tail = c;
            child_note(c, "reload: added (%s)", what);
            child_start(c);
        } else if (op[0] == '-') {
            struct child *c = find_child(s, CHILD_NODE, name);
            if (!c)
                continue;
            child_note(c, "reload: %s; stopping", what);
            c->removed = 1;
            child_stop(c);
        } else if (strcmp(action, "restart") == 0) {
            struct child *c = find_child(s, CHILD_NODE, name);
            if (!c)
                continue;
            snprintf(c->host, sizeof c->host, "%s", s->cfg.nodes[i].host);
            c->port = s->cfg.nodes[i].port;
            child_note(c, "reload: address changed (%s); restarting", what);
            if (c->want_up)
                child_restart(c);
        } else {
            struct child *c = find_child(s, CHILD_NODE, name);
            if (!c)
                continue;
            child_note(c, "reload: %s; SIGHUP to re-link", what);
            child_hup(c);
        }
    }
    config_free(&old);

    /* Free what is already gone; keep the list in the file's order. */
    struct child **pp = &s->children;
    while (*pp) {
        struct child *c = *pp;
        if (c->removed && c->pid == 0) {
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
                : (c->kind == CHILD_NODE && !c->removed &&
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
