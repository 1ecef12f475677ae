#include "status.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "journal.h"
#include "link.h"
#include "metrics.h"
#include "places.h"

/* A link's catch-up figures (docs/PEERS.md "Catch-up"). */
static void add_catchup(cJSON *l, const struct link_catchup *cu)
{
    cJSON *c = cJSON_AddObjectToObject(l, "catchup");
    char epoch[24];

    if (!c)
        return;
    cJSON_AddStringToObject(c, "mode", cu->mode);
    cJSON_AddBoolToObject(c, "sending", cu->sending);
    cJSON_AddBoolToObject(c, "receiving", cu->receiving);
    cJSON_AddNumberToObject(c, "sent_records", (double)cu->sent_records);
    cJSON_AddNumberToObject(c, "sent_bytes", (double)cu->sent_bytes);
    cJSON_AddNumberToObject(c, "received_records",
                            (double)cu->received_records);
    cJSON_AddNumberToObject(c, "received_bytes", (double)cu->received_bytes);
    cJSON_AddNumberToObject(c, "incremental", (double)cu->incremental);
    cJSON_AddNumberToObject(c, "full", (double)cu->full);
    snprintf(epoch, sizeof epoch, "%016llx",
             (unsigned long long)cu->their_epoch);
    cJSON_AddStringToObject(c, "their_epoch", epoch);
    cJSON_AddNumberToObject(c, "their_seq", (double)cu->their_seq);
}

/* The node's log: its epoch (hex: 64 bits do not fit a JSON number) and
 * the number of its last update. */
static void add_log(cJSON *o, const struct journal *j)
{
    cJSON *g = cJSON_AddObjectToObject(o, "log");
    char epoch[24];

    if (!g)
        return;
    snprintf(epoch, sizeof epoch, "%016llx",
             (unsigned long long)journal_epoch(j));
    cJSON_AddStringToObject(g, "epoch", epoch);
    cJSON_AddNumberToObject(g, "seq", (double)journal_last_seq(j));
}

static cJSON *status_json(const struct node *n)
{
    cJSON *o = cJSON_CreateObject(), *links, *mx;
    struct places_counts pc = {0, 0};
    struct metrics_link *ml;

    if (!o)
        return NULL;
    cJSON_AddStringToObject(o, "name", n->name);
    cJSON_AddNumberToObject(o, "pid", (double)getpid());
    cJSON_AddNumberToObject(o, "port", n->port);
    cJSON_AddStringToObject(o, "host", n->host);
    cJSON_AddNumberToObject(o, "started", (double)(long long)n->started);
    cJSON_AddNumberToObject(o, "clients", (double)n->store.count);
    cJSON_AddNumberToObject(o, "connections", (double)n->n_clients);
    cJSON_AddNumberToObject(o, "applied", (double)n->applied);
    cJSON_AddNumberToObject(o, "flood_sent", (double)n->flood_sent);
    cJSON_AddNumberToObject(o, "flood_received", (double)n->flood_received);
    cJSON_AddNumberToObject(o, "catchup_sent", (double)n->catchup_sent);
    if (n->places)
        places_get_counts(n->places, &pc);
    cJSON_AddNumberToObject(o, "places_requests", (double)pc.upstream);
    cJSON_AddNumberToObject(o, "places_shared", (double)pc.shared);
    cJSON_AddNumberToObject(o, "links_up", (double)link_count_up(n));
    cJSON_AddNumberToObject(o, "links_total", (double)n->n_links);
    links = cJSON_AddArrayToObject(o, "links");
    for (size_t i = 0; links && i < n->n_links; i++) {
        cJSON *l = cJSON_CreateObject();
        cJSON_AddStringToObject(l, "peer", link_peer(n->links[i]));
        cJSON_AddStringToObject(l, "state",
                                link_state_name(link_state(n->links[i])));
        add_catchup(l, link_catchup(n->links[i]));
        cJSON_AddItemToArray(links, l);
    }
    add_log(o, n->journal);
    /* The metrics learn the links from here, so metrics.c never calls
     * into link.c, which counts into it. */
    ml = calloc(n->n_links ? n->n_links : 1, sizeof *ml);
    for (size_t i = 0; ml && i < n->n_links; i++) {
        ml[i].peer = link_peer(n->links[i]);
        ml[i].up = link_state(n->links[i]) == LINK_UP;
    }
    mx = ml ? metrics_json(n, ml, n->n_links) : NULL;
    free(ml);
    if (mx)
        cJSON_AddItemToObject(o, "metrics", mx);
    return o;
}

/* Create path exclusively, never through a symlink: a stale temporary
 * (a crash between open and rename) is removed once and tried again;
 * whatever sits there, the open never follows it. */
static int open_exclusive(const char *path)
{
    int flags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;
    int fd = open(path, flags, 0644);

    if (fd < 0 && errno == EEXIST && unlink(path) == 0)
        fd = open(path, flags, 0644);
    return fd;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int status_write_now(struct node *n)
{
    char *final = config_status_path(&n->cfg, n->name), *tmp = NULL;
    char *text = NULL;
    cJSON *j = NULL;
    size_t len;
    int fd = -1, rc = -1;

    ev_timer_stop(n->loop, &n->status_timer);
    n->status_dirty = 0;
    n->status_written = metrics_clock();
    metrics_status_written();
    if (!final)
        return -1;
    len = strlen(final) + sizeof ".tmp";
    tmp = malloc(len);
    j = status_json(n);
    text = j ? cJSON_PrintUnformatted(j) : NULL;
    if (!tmp || !text)
        goto out;
    snprintf(tmp, len, "%s.tmp", final);
    fd = open_exclusive(tmp);
    if (fd < 0)
        goto out;
    if (write_all(fd, text, strlen(text)) < 0 || write_all(fd, "\n", 1) < 0 ||
        close(fd) < 0) {
        fd = -1;
        unlink(tmp);
        goto out;
    }
    fd = -1;
    if (rename(tmp, final) < 0)
        unlink(tmp);
    else
        rc = 0;
out:
    if (fd >= 0)
        close(fd);
    cJSON_Delete(j);
    free(text);
    free(tmp);
    free(final);
    return rc;
}

void node_write_status(struct node *n)
{
    double since = metrics_clock() - n->status_written;

    if (n->status_written > 0 && since < STATUS_MIN_INTERVAL) {
        /* Too soon: once the interval is over, the timer writes it. */
        n->status_dirty = 1;
        if (!ev_is_active(&n->status_timer)) {
            ev_timer_set(&n->status_timer, STATUS_MIN_INTERVAL - since, 0.);
            ev_timer_start(n->loop, &n->status_timer);
        }
        return;
    }
    status_write_now(n);
}

static void on_status_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct node *n = container_of(w, struct node, status_timer);

    (void)loop;
    (void)revents;
    if (n->status_dirty)
        status_write_now(n);
}

void status_init(struct node *n)
{
    ev_timer_init(&n->status_timer, on_status_timer, STATUS_MIN_INTERVAL, 0.);
}
