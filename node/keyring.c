#include "keyring.h"

#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "link.h"
#include "node.h"

/* ev_stat uses inotify where it can; the interval is its fallback poll. */
#define WATCH_INTERVAL 0.5

static int load(struct node *n, struct auth_keyring *out, int *from_ring,
                char *err, size_t errlen)
{
    char *ring = config_run_path(&n->cfg, "herd.keyring");
    char *secret = config_run_path(&n->cfg, "herd.secret");
    int rc = -1;

    if (ring && secret)
        rc = auth_keyring_load(ring, secret, out, from_ring, err, errlen);
    else
        snprintf(err, errlen, "out of memory");
    free(ring);
    free(secret);
    return rc;
}

static void say(const struct node *n, int from_ring, const char *what)
{
    char ids[AUTH_KEYS_MAX * (AUTH_KEY_ID_HEX + 1) + 1] = "";

    /* Key ids only: a secret never reaches the log. */
    for (size_t i = 1; i < n->keys.n; i++) {
        strcat(ids, " ");
        strcat(ids, n->keys.keys[i].id);
    }
    log_msg(LOG_INFO, "%s %s: primary key %s%s%s", what,
            from_ring ? "herd.keyring" : "herd.secret", n->keys.keys[0].id,
            n->keys.n > 1 ? ", also accepting" : "", ids);
}

static int same(const struct auth_keyring *a, const struct auth_keyring *b)
{
    if (a->n != b->n)
        return 0;
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->keys[i].id, b->keys[i].id) != 0)
            return 0;
    return 1;
}

void keyring_reload(struct node *n)
{
    static struct auth_keyring fresh;   /* 64 KiB: not on the stack */
    char err[512];
    int from_ring = 0;

    if (load(n, &fresh, &from_ring, err, sizeof err) < 0) {
        log_msg(LOG_ERROR, "keyring change refused: %s; the keys in use stay",
                err);
        auth_keyring_clear(&fresh);
        return;
    }
    if (same(&fresh, &n->keys)) {
        auth_keyring_clear(&fresh);
        return;
    }
    auth_keyring_clear(&n->keys);
    n->keys = fresh;
    auth_keyring_clear(&fresh);
    say(n, from_ring, "keys changed:");
    link_keyring_changed(n);
}

static void on_change(struct ev_loop *loop, ev_stat *w, int revents)
{
    (void)loop;
    (void)revents;
    keyring_reload(w->data);
}

int keyring_start(struct node *n, char *err, size_t errlen)
{
    int from_ring = 0;
    char *ring;

    if (load(n, &n->keys, &from_ring, err, errlen) < 0)
        return -1;
    say(n, from_ring, "keys from");
    ring = config_run_path(&n->cfg, "herd.keyring");
    if (!ring) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    /* ev_stat keeps the path pointer: it lives as long as the watcher. */
    ev_stat_init(&n->keyring_watch, on_change, ring, WATCH_INTERVAL);
    n->keyring_watch.data = n;
    ev_stat_start(n->loop, &n->keyring_watch);
    return 0;
}

void keyring_stop(struct node *n)
{
    if (!ev_is_active(&n->keyring_watch))
        return;
    ev_stat_stop(n->loop, &n->keyring_watch);
    free((char *)n->keyring_watch.path);
    auth_keyring_clear(&n->keys);
}
