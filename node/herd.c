/* herd: the node's core operations on its state (node.h): store an
 * update, reload herd.ini.  client.c and link.c call in; this module
 * calls out only to the store, the journal and the links it serves.  The
 * status file has its own module (status.c). */
#include "node.h"

#include <string.h>

#include "common/log.h"
#include "common/peerproto.h"
#include "journal.h"
#include "keyring.h"
#include "link.h"

enum store_result node_apply_update(struct node *n, const char *at_line,
                                    size_t len, const struct proto_at *at,
                                    struct link *from)
{
    enum store_result res = store_apply(&n->store, at_line, len, at, NULL);

    if (res == STORE_NOMEM) {
        log_msg(LOG_ERROR, "out of memory storing an update");
        return res;
    }
    if (res == STORE_TOOLONG) {
        log_msg(LOG_WARN, "refused a record of %zu bytes (longest held: %u)",
                len, PEER_RECORD_MAX);
        return res;
    }
    if (res == STORE_APPLIED) {
        n->applied++;
        /* Journaled before it is flooded or acknowledged. */
        int missed = n->journal && journal_append(n->journal, at_line, len) < 0;
        link_flood(n, at_line, len, from);
        /* With fsync = always an acknowledgment promises the disk: an
         * update the journal could not take is held and flooded, but a
         * client must not be told it is safe. */
        if (missed && n->cfg.fsync == FSYNC_ALWAYS)
            return STORE_NOMEM;
    }
    return res;
}

static int same_text(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "") == 0;
}

/* places.c copied these at start (places_new), and its requests in flight
 * hold them: a change waits for a restart. */
static int places_changed(const struct herd_config *a,
                          const struct herd_config *b)
{
    return a->provider != b->provider || a->places_port != b->places_port ||
           a->places_timeout_ms != b->places_timeout_ms ||
           !same_text(a->places_url, b->places_url) ||
           !same_text(a->places_key_env, b->places_key_env);
}

void node_reload(struct node *n)
{
    struct herd_config fresh;
    char err[1024];
    int self;

    if (config_load(n->config_path, &fresh, err, sizeof err) < 0) {
        log_msg(LOG_ERROR, "reload refused: %s", err);
        return;
    }
    self = config_find_node(&fresh, n->name);
    if (self < 0) {
        log_msg(LOG_ERROR, "reload refused: node %s is no longer in %s",
                n->name, n->config_path);
        config_free(&fresh);
        return;
    }
    if (fresh.nodes[self].port != n->port ||
        strcmp(fresh.nodes[self].host, n->host) != 0)
        log_msg(LOG_WARN, "reload: my address changed to %s:%d; a restart "
                "applies it (still serving on %s:%d)", fresh.nodes[self].host,
                fresh.nodes[self].port, n->host, n->port);
    if (strcmp(fresh.data_dir, n->cfg.data_dir) != 0 ||
        fresh.fsync != n->cfg.fsync)
        log_msg(LOG_WARN, "reload: data_dir or fsync changed; a restart "
                "applies it (still %s, fsync %s)", n->cfg.data_dir,
                config_fsync_name(n->cfg.fsync));
    if (places_changed(&n->cfg, &fresh))
        log_msg(LOG_WARN, "reload: [places] settings changed; a restart "
                "applies them (still %s)", config_provider_name(n->cfg.provider));
    /* Limits take effect for new connections and requests; the links are
     * reconciled in place.  The address, data_dir, fsync and [places]
     * keep their start-up values (warned above) until a restart. */
    config_free(&n->cfg);
    n->cfg = fresh;
    log_msg(LOG_INFO, "reloaded %s", n->config_path);
    link_reconfigure(n);
    keyring_reload(n);
    /* Written at the end of this loop iteration (main.c's check watcher),
     * so this module never calls the status writer, which reads links. */
    n->status_dirty = 1;
}
