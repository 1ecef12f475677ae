/* config: herd.ini, read through inih and checked as a whole.  Any mistake
 * is refused as "PATH:LINE: what is wrong" before anything starts. */
#ifndef HERD_CONFIG_H
#define HERD_CONFIG_H

#include <stddef.h>

enum places_provider {
    PLACES_LOCAL = 0,           /* herd-places, the offline emulator */
    PLACES_GOOGLE,              /* Places API (New) */
    PLACES_GOOGLE_LEGACY,       /* legacy Nearby Search */
};

/* When the node's journal reaches the disk (see README "Durability"). */
enum fsync_mode {
    FSYNC_EVERYSEC = 0,         /* fsync once a second (the default) */
    FSYNC_ALWAYS,               /* fsync before any reply leaves */
    FSYNC_NO,                   /* leave it to the operating system */
};

/* How a node logs a WHATSAT's reply (see README "Logs"). */
enum log_replies {
    LOG_REPLIES_SUMMARY = 0,    /* the AT line and one summary line */
    LOG_REPLIES_FULL,           /* the whole reply, JSON included */
};

/* A node name: 1 to CONFIG_NAME_MAX letters, digits, '_', '-' and '.'.
 * The one rule and bound for names, in herd.ini and on the wire. */
#define CONFIG_NAME_MAX 64
#define CONFIG_HOST_MAX 255
#define CONFIG_HTTP_ADDR_MAX 45     /* INET6_ADDRSTRLEN - 1 */
#define CONFIG_HTTP_DEFAULT_PORT 12900

/* The largest max_line herd.ini accepts (see PEER_RECORD_MAX). */
#define CONFIG_MAX_LINE_MAX 1048576

struct node_conf {
    char name[CONFIG_NAME_MAX + 1];
    char host[CONFIG_HOST_MAX + 1];  /* bind and dial address */
    int host_set;                    /* host= given explicitly */
    int port;
    int line;                        /* line of its [node NAME] header */
    /* Indices into herd_config.nodes, both directions of every link,
     * no duplicates, sorted. */
    int *neighbors;
    size_t n_neighbors;
};

struct herd_config {
    char *path;                 /* as given */
    char *dir;                  /* directory holding the file, absolute */

    /* [herd]; paths absolute (relative ones resolve against dir) */
    char *log_dir;
    char *run_dir;
    long log_max_mb;            /* rotate a log past this size; 0 = never */
    int log_keep;               /* rotated files kept */
    int stop_grace_s;           /* SIGTERM -> SIGKILL delay */
    int max_clients;            /* client connections per node */
    int max_line;               /* longest request line, bytes */
    int idle_timeout_s;         /* a half-sent line may idle this long */
    int max_output_kb;          /* unread output per connection */
    long max_records;           /* new client ids from clients stop here
                                   (0: no cap) */
    long max_clock_ahead_s;     /* an IAMAT's time may lead the node's
                                   clock by this much (0: no limit) */
    char *data_dir;             /* journal and snapshot of each node */
    enum fsync_mode fsync;
    enum log_replies log_replies;
    long catchup_backlog_mb;    /* journal history kept past compaction */
    /* http = ADDRESS:PORT: the supervisor's metrics, status API and live
     * page; http_port 0 when "off".  http_addr is a numeric IPv4 or IPv6
     * address (given as [v6]:PORT), without brackets. */
    char http_addr[CONFIG_HTTP_ADDR_MAX + 1];
    int http_port;

    /* [places] */
    enum places_provider provider;
    int places_port;
    char *places_url;           /* NULL: the provider's own base URL */
    char *places_key_env;
    long places_timeout_ms;
    char *places_data;          /* the emulator's data file; NULL: the
                                 * default beside the project (herd-places
                                 * --help) */

    struct node_conf *nodes;
    size_t n_nodes;
};

/* Every [herd] and [places] default that is not a path (config_load()
 * starts from these). */
void config_defaults(struct herd_config *c);

/* Load and validate.  0, or -1 with "PATH:LINE: message" in err. */
int config_load(const char *path, struct herd_config *out,
                char *err, size_t errlen);
void config_free(struct herd_config *c);

/* 1 when the len bytes at s are a valid node name (above), else 0. */
int config_name_valid(const char *s, size_t len);

/* The node's index, or -1. */
int config_find_node(const struct herd_config *c, const char *name);

/* "local", "google" or "google-legacy". */
const char *config_provider_name(enum places_provider p);

/* Base URL the node talks to for places: url if set, else the provider's
 * default (for local: http://127.0.0.1:PORT).  Caller frees. */
char *config_places_base(const struct herd_config *c);

/* Parse an http value: "off" (port 0) or ADDRESS:PORT with a numeric
 * IPv4 address or a bracketed IPv6 one.  0, or -1 when malformed. */
int config_parse_http(const char *value, char *addr, size_t addr_cap,
                      int *port);

/* "always", "everysec" or "no". */
const char *config_fsync_name(enum fsync_mode m);

/* The path to a file in run_dir / log_dir (caller frees). */
char *config_run_path(const struct herd_config *c, const char *file);
char *config_log_path(const struct herd_config *c, const char *node_name);
/* run_dir/NAME.status: what a node writes and the supervisor reads. */
char *config_status_path(const struct herd_config *c, const char *node_name);

#endif
