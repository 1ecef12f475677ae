#include "metrics.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "common/config.h"
#include "node.h"

/* 50 us to 60 s: covers a request served from memory as well as a flood
 * that waited out a redial or a slow places reply. */
const double metrics_bucket_le[METRICS_BUCKETS] = {
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
    0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
};

struct hist {
    unsigned long long bucket[METRICS_BUCKETS];  /* not cumulative here */
    unsigned long long count;
    double sum;
};

enum places_status { PL_OK, PL_HTTP_ERROR, PL_TIMEOUT, PL_FAILED, PL_REFUSED,
                     PL_STATUSES };
static const char *const places_status_name[PL_STATUSES] = {
    "ok", "http_error", "timeout", "failed", "refused",
};
static const char *const verb_name[METRICS_VERBS] = {
    "IAMAT", "WHATSAT", "invalid",
};
static const char *const dir_name[METRICS_DIRS] = { "out", "in" };

/* Counters per peer name, in an open-addressing table keyed by the name:
 * catch-up records are counted one by one, so the lookup must not walk
 * every link of a big node. */
struct peer_stats {
    char name[CONFIG_NAME_MAX + 1];
    unsigned long long drops;
    unsigned long long catchup[METRICS_DIRS];
};

/* Distinct peer names kept; past it, new names are not counted (only a
 * long run of reloads naming ever new neighbours could get there). */
#define PEERS_MAX 65536

static struct {
    unsigned long long requests[METRICS_VERBS];
    struct hist request_time[METRICS_VERBS];
    struct hist flood_lag[2];           /* [0] floods, [1] catch-ups */
    unsigned long long dial_failures;
    struct hist fsync_time;
    unsigned long long journal_bytes;
    unsigned long long places[PL_STATUSES];
    struct hist places_time;
    unsigned long long status_writes;
    struct peer_stats *peers;           /* cap slots, name[0] == 0: free */
    size_t n_peers, cap;
} m;

double metrics_clock(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void observe(struct hist *h, double v)
{
    size_t i = 0;

    if (v < 0 || v != v)
        v = 0;                  /* a clock step or offset: count, as 0 */
    while (i < METRICS_BUCKETS && v > metrics_bucket_le[i])
        i++;
    if (i < METRICS_BUCKETS)
        h->bucket[i]++;
    h->count++;
    h->sum += v;
}

void metrics_request(enum metrics_verb verb, double t0)
{
    if ((unsigned)verb >= METRICS_VERBS)
        return;
    m.requests[verb]++;
    observe(&m.request_time[verb], metrics_clock() - t0);
}

/* "+0.263873386" / "-1.5": the AT line's signed difference in seconds. */
static double parse_diff(const struct proto_span *s)
{
    char text[HTIME_DIFF_MAX + 1];

    if (s->len == 0 || s->len > HTIME_DIFF_MAX)
        return 0;
    memcpy(text, s->p, s->len);
    text[s->len] = '\0';
    return strtod(text, NULL);
}

void metrics_flood_lag(const struct proto_at *at, int catchup)
{
    struct timespec now;
    double lag;

    /* now - (client time + diff), whole seconds subtracted first so the
     * fraction is not rounded away in a double of epoch seconds. */
    clock_gettime(CLOCK_REALTIME, &now);
    lag = (double)(now.tv_sec - at->client_time.sec) +
          (now.tv_nsec - at->client_time.nsec) / 1e9 - parse_diff(&at->diff);
    observe(&m.flood_lag[catchup ? 1 : 0], lag);
}

static uint32_t name_hash(const char *s)
{
    uint32_t h = 2166136261u;   /* FNV-1a */

    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static int peers_grow(void)
{
    size_t cap = m.cap ? m.cap * 2 : 64;
    struct peer_stats *t = calloc(cap, sizeof *t);

    if (!t)
        return -1;
    for (size_t i = 0; i < m.cap; i++) {
        if (!m.peers[i].name[0])
            continue;
        size_t k = name_hash(m.peers[i].name) & (cap - 1);
        while (t[k].name[0])
            k = (k + 1) & (cap - 1);
        t[k] = m.peers[i];
    }
    free(m.peers);
    m.peers = t;
    m.cap = cap;
    return 0;
}

/* The counters of peer, created on first use; NULL when out of room. */
static struct peer_stats *peer(const char *name)
{
    size_t k;

    if (!name || !name[0] || strlen(name) > CONFIG_NAME_MAX)
        return NULL;
    if (m.cap) {
        k = name_hash(name) & (m.cap - 1);
        while (m.peers[k].name[0]) {
            if (strcmp(m.peers[k].name, name) == 0)
                return &m.peers[k];
            k = (k + 1) & (m.cap - 1);
        }
    }
    if (m.n_peers >= PEERS_MAX)
        return NULL;
    if ((m.n_peers + 1) * 2 > m.cap && peers_grow() < 0)
        return NULL;
    k = name_hash(name) & (m.cap - 1);
    while (m.peers[k].name[0])
        k = (k + 1) & (m.cap - 1);
    snprintf(m.peers[k].name, sizeof m.peers[k].name, "%s", name);
    m.n_peers++;
    return &m.peers[k];
}

void metrics_link_drop(const char *name)
{
    struct peer_stats *p = peer(name);

    if (p)
        p->drops++;
}

void metrics_dial_failure(void)
{
    m.dial_failures++;
}

void metrics_catchup(const char *name, enum metrics_dir dir)
{
    struct peer_stats *p = peer(name);

    if (p && (unsigned)dir < METRICS_DIRS)
        p->catchup[dir]++;
}

void metrics_journal_fsync(double t0)
{
    observe(&m.fsync_time, metrics_clock() - t0);
}

void metrics_journal_bytes(size_t n)
{
    m.journal_bytes += n;
}

void metrics_places(int curl_result, long http_status, double seconds)
{
    enum places_status st;

    if (curl_result == CURLE_OPERATION_TIMEDOUT)
        st = PL_TIMEOUT;
    else if (curl_result != CURLE_OK)
        st = PL_FAILED;
    else if (http_status < 200 || http_status > 299)
        st = PL_HTTP_ERROR;
    else
        st = PL_OK;
    m.places[st]++;
    observe(&m.places_time, seconds);
}

void metrics_places_refused(void)
{
    m.places[PL_REFUSED]++;
}

void metrics_status_written(void)
{
    m.status_writes++;
}

void metrics_free(void)
{
    free(m.peers);
    m.peers = NULL;
    m.n_peers = m.cap = 0;
}

/* ---- the JSON the supervisor turns into the text exposition ---- */

static cJSON *family(cJSON *arr, const char *name, const char *type,
                     const char *help)
{
    cJSON *f = cJSON_CreateObject();

    cJSON_AddStringToObject(f, "name", name);
    cJSON_AddStringToObject(f, "type", type);
    cJSON_AddStringToObject(f, "help", help);
    if (strcmp(type, "histogram") == 0) {
        cJSON *le = cJSON_AddArrayToObject(f, "le");
        for (size_t i = 0; i < METRICS_BUCKETS; i++)
            cJSON_AddItemToArray(le, cJSON_CreateNumber(metrics_bucket_le[i]));
    }
    cJSON_AddArrayToObject(f, "series");
    cJSON_AddItemToArray(arr, f);
    return cJSON_GetObjectItemCaseSensitive(f, "series");
}

/* A series with up to two labels (NULL key: none). */
static cJSON *series(cJSON *ser, const char *k1, const char *v1,
                     const char *k2, const char *v2)
{
    cJSON *s = cJSON_CreateObject(), *l = cJSON_AddObjectToObject(s, "labels");

    if (k1)
        cJSON_AddStringToObject(l, k1, v1);
    if (k2)
        cJSON_AddStringToObject(l, k2, v2);
    cJSON_AddItemToArray(ser, s);
    return s;
}

static void value(cJSON *ser, const char *k1, const char *v1,
                  const char *k2, const char *v2, double v)
{
    cJSON_AddNumberToObject(series(ser, k1, v1, k2, v2), "value", v);
}

static void hist(cJSON *ser, const char *k1, const char *v1,
                 const struct hist *h)
{
    cJSON *s = series(ser, k1, v1, NULL, NULL);
    cJSON *b = cJSON_AddArrayToObject(s, "buckets");
    unsigned long long cum = 0;

    for (size_t i = 0; i < METRICS_BUCKETS; i++) {
        cum += h->bucket[i];
        cJSON_AddItemToArray(b, cJSON_CreateNumber((double)cum));
    }
    cJSON_AddNumberToObject(s, "sum", h->sum);
    cJSON_AddNumberToObject(s, "count", (double)h->count);
}

static long open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    long n = 0;

    if (!d)
        return -1;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1;               /* the directory's own descriptor */
}

static long resident_pages(void)
{
    FILE *f = fopen("/proc/self/statm", "re");
    long size = 0, rss = -1;

    if (!f)
        return -1;
    if (fscanf(f, "%ld %ld", &size, &rss) != 2)
        rss = -1;
    fclose(f);
    return rss;
}

static void process_metrics(cJSON *arr, const struct node *n)
{
    struct rusage ru;
    struct rlimit rl;
    long fds = open_fds(), rss = resident_pages();

    if (getrusage(RUSAGE_SELF, &ru) == 0)
        value(family(arr, "process_cpu_seconds_total", "counter",
                     "User and system CPU time spent, in seconds."),
              NULL, NULL, NULL, NULL,
              (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
              (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6);
    if (rss >= 0)
        value(family(arr, "process_resident_memory_bytes", "gauge",
                     "Resident memory size, in bytes."),
              NULL, NULL, NULL, NULL, (double)rss * (double)sysconf(_SC_PAGESIZE));
    if (fds >= 0)
        value(family(arr, "process_open_fds", "gauge",
                     "Open file descriptors."), NULL, NULL, NULL, NULL,
              (double)fds);
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        value(family(arr, "process_max_fds", "gauge",
                     "Maximum number of open file descriptors."),
              NULL, NULL, NULL, NULL, (double)rl.rlim_cur);
    value(family(arr, "process_start_time_seconds", "gauge",
                 "Start time of the process since the Unix epoch, in seconds."),
          NULL, NULL, NULL, NULL, (double)(long long)n->started);
}

cJSON *metrics_json(const struct node *n, const struct metrics_link *links,
                    size_t n_links)
{
    cJSON *arr = cJSON_CreateArray(), *s;

    if (!arr)
        return NULL;
    s = family(arr, "herd_requests_total", "counter",
               "Client requests served, by verb (invalid: answered '? ').");
    for (int v = 0; v < METRICS_VERBS; v++)
        value(s, "verb", verb_name[v], NULL, NULL, (double)m.requests[v]);
    s = family(arr, "herd_request_duration_seconds", "histogram",
               "Time from reading a request line to queueing its reply.");
    for (int v = 0; v < METRICS_VERBS; v++)
        hist(s, "verb", verb_name[v], &m.request_time[v]);
    s = family(arr, "herd_flood_lag_seconds", "histogram",
               "For each update applied from a neighbour, the time since its "
               "origin node received it (includes clock offsets between "
               "machines).");
    hist(s, "via", "flood", &m.flood_lag[0]);
    hist(s, "via", "catchup", &m.flood_lag[1]);
    value(family(arr, "herd_records", "gauge", "Client records held."),
          NULL, NULL, NULL, NULL, (double)n->store.count);
    value(family(arr, "herd_record_bytes", "gauge",
                 "Bytes of the client records held."),
          NULL, NULL, NULL, NULL, (double)n->store.bytes);
    value(family(arr, "herd_updates_applied_total", "counter",
                 "Updates stored, from clients and neighbours."),
          NULL, NULL, NULL, NULL, (double)n->applied);
    value(family(arr, "herd_client_connections", "gauge",
                 "Client connections open."),
          NULL, NULL, NULL, NULL, (double)n->n_clients);
    s = family(arr, "herd_link_up", "gauge",
               "1 while the link to the peer is up, else 0.");
    for (size_t i = 0; i < n_links; i++)
        value(s, "peer", links[i].peer, NULL, NULL, links[i].up);
    s = family(arr, "herd_link_drops_total", "counter",
               "Times the link to the peer went down after being up.");
    /* Per-peer counters only once they count something: a node with
     * thousands of links keeps its status file small. */
    for (size_t i = 0; i < n_links; i++) {
        struct peer_stats *p = peer(links[i].peer);
        if (p && p->drops)
            value(s, "peer", p->name, NULL, NULL, (double)p->drops);
    }
    value(family(arr, "herd_link_dial_failures_total", "counter",
                 "Dials to neighbours that failed."),
          NULL, NULL, NULL, NULL, (double)m.dial_failures);
    s = family(arr, "herd_catchup_records_total", "counter",
               "Catch-up records sent to (out) and received from (in) the peer.");
    for (size_t i = 0; i < n_links; i++) {
        struct peer_stats *p = peer(links[i].peer);
        for (int d = 0; p && d < METRICS_DIRS; d++)
            if (p->catchup[d])
                value(s, "peer", p->name, "direction", dir_name[d],
                      (double)p->catchup[d]);
    }
    s = family(arr, "herd_floods_total", "counter",
               "Flood messages sent to (out) and received from (in) neighbours.");
    value(s, "direction", "out", NULL, NULL, (double)n->flood_sent);
    value(s, "direction", "in", NULL, NULL, (double)n->flood_received);
    hist(family(arr, "herd_journal_fsync_duration_seconds", "histogram",
                "Time of each journal fdatasync."), NULL, NULL, &m.fsync_time);
    value(family(arr, "herd_journal_written_bytes_total", "counter",
                 "Bytes written to the journal."),
          NULL, NULL, NULL, NULL, (double)m.journal_bytes);
    s = family(arr, "herd_places_requests_total", "counter",
               "Places requests by outcome (ok, http_error, timeout, failed, "
               "refused).");
    for (int i = 0; i < PL_STATUSES; i++)
        value(s, "status", places_status_name[i], NULL, NULL, (double)m.places[i]);
    hist(family(arr, "herd_places_request_duration_seconds", "histogram",
                "Time of each places request sent."), NULL, NULL,
         &m.places_time);
    value(family(arr, "herd_status_writes_total", "counter",
                 "Times the node wrote its status file."),
          NULL, NULL, NULL, NULL, (double)m.status_writes);
    process_metrics(arr, n);
    return arr;
}
