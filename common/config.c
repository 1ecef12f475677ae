#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Parsing state: inih calls handle_pair() line by line; the reader counts
 * lines so every message can name one. */
struct loader {
    FILE *file;
    int line;                   /* the line inih is handling */
    int too_long_line;          /* first line longer than inih takes */
    struct herd_config *cfg;
    char *err;
    size_t errlen;
    int err_line;               /* first error found, 0 = none */
    int in_node;                /* index of the current [node], or -1 */
    int section_ok;             /* current section known */
    char section[128];
    char **neighbor_text;       /* per node: its raw neighbors= value */
    int *neighbor_line;
    int *port_line;
    unsigned seen_herd, seen_places;  /* bit per key, for duplicates */
    unsigned *seen_node;
    size_t nodes_cap;
};

static void fail(struct loader *ld, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail(struct loader *ld, int line, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    if (ld->err_line && ld->err_line <= line)
        return;                 /* keep the first mistake in the file */
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(ld->err, ld->errlen, "%s:%d: %s", ld->cfg->path, line, msg);
    ld->err_line = line;
}

static void notice_section(struct loader *ld, const char *line);

/* fgets-like reader that counts lines and notices lines that would not
 * fit inih's line buffer (it would split them silently). */
static char *read_line(char *str, int num, void *stream)
{
    struct loader *ld = stream;
    int c, n = 0, overflow = 0;

    if (num < 2)
        return NULL;
    while ((c = fgetc(ld->file)) != EOF) {
        if (n < num - 2)
            str[n++] = (char)c;
        else if (c != '\n')
            overflow = 1;
        if (c == '\n')
            break;
    }
    if (n == 0 && c == EOF)
        return NULL;
    ld->line++;
    if (overflow && !ld->too_long_line)
        ld->too_long_line = ld->line;
    if (overflow && c == '\n')
        str[n++] = '\n';
    str[n] = '\0';
    notice_section(ld, str);
    return str;
}

/* A whole decimal number in [min, max], nothing else. */
static int parse_long(const char *s, long min, long max, long *out)
{
    long v = 0;

    if (*s == '\0')
        return -1;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        if (v > (LONG_MAX - 9) / 10)
            return -1;
        v = v * 10 + (*p - '0');
    }
    if (v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

int config_name_valid(const char *s, size_t len)
{
    if (len == 0 || len > CONFIG_NAME_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.'))
            return 0;
    }
    return 1;
}

static int valid_name(const char *s)
{
    return config_name_valid(s, strlen(s));
}

static char *absolute(const char *dir, const char *path)
{
    char *out;
    size_t n;

    if (path[0] == '/')
        return strdup(path);
    n = strlen(dir) + 1 + strlen(path) + 1;
    out = malloc(n);
    if (out)
        snprintf(out, n, "%s/%s", dir, path);
    return out;
}

static int replace_path(struct loader *ld, char **slot, const char *value)
{
    char *p;

    if (*value == '\0') {
        fail(ld, ld->line, "empty path");
        return 0;
    }
    p = absolute(ld->cfg->dir, value);
    if (p == NULL) {
        fail(ld, ld->line, "out of memory");
        return 0;
    }
    free(*slot);
    *slot = p;
    return 1;
}

/* Reject a second occurrence of the same key within one section. */
static int once(struct loader *ld, unsigned *seen, unsigned bit, const char *name)
{
    if (*seen & bit) {
        fail(ld, ld->line, "duplicate key '%s' in [%s]", name, ld->section);
        return 0;
    }
    *seen |= bit;
    return 1;
}

static int number(struct loader *ld, const char *name, const char *value,
                  long min, long max, long *out)
{
    if (parse_long(value, min, max, out) < 0) {
        fail(ld, ld->line, "%s must be a whole number from %ld to %ld, not '%s'",
             name, min, max, value);
        return 0;
    }
    return 1;
}

int config_parse_http(const char *value, char *addr, size_t addr_cap,
                      int *port)
{
    char host[CONFIG_HTTP_ADDR_MAX + 1];
    unsigned char bin[sizeof(struct in6_addr)];
    const char *colon, *start = value;
    size_t len;
    long p;

    if (strcmp(value, "off") == 0) {
        if (addr_cap > 0)
            addr[0] = '\0';
        *port = 0;
        return 0;
    }
    colon = strrchr(value, ':');
    if (!colon || parse_long(colon + 1, 1, 65535, &p) < 0)
        return -1;
    len = (size_t)(colon - value);
    if (value[0] == '[') {
        /* [v6]:PORT */
        if (len < 2 || value[len - 1] != ']')
            return -1;
        start = value + 1;
        len -= 2;
    }
    if (len == 0 || len >= sizeof host || len >= addr_cap)
        return -1;
    memcpy(host, start, len);
    host[len] = '\0';
    if (value[0] == '[' ? inet_pton(AF_INET6, host, bin) != 1
                        : inet_pton(AF_INET, host, bin) != 1)
        return -1;
    memcpy(addr, host, len + 1);
    *port = (int)p;
    return 0;
}

/* One row per key of [herd] and [places]: how its value is read, where it
 * goes, its bounds and its default.  The parser, the defaults and the
 * duplicate check all read these tables, so a key is written once. */
enum key_kind {
    KEY_PATH,                   /* a path; relative ones against the file */
    KEY_INT,                    /* a whole number in [min, max] into an int */
    KEY_LONG,                   /* the same into a long */
    KEY_CHOICE,                 /* one of the names in choices */
    KEY_OTHER,                  /* read by its section's own function */
};

struct choice {
    const char *name;
    int value;
};

struct key_def {
    const char *name;
    enum key_kind kind;
    size_t offset;              /* of its field in struct herd_config */
    long min, max;              /* KEY_INT, KEY_LONG */
    long def;                   /* KEY_INT, KEY_LONG, KEY_CHOICE */
    const char *def_path;       /* KEY_PATH: below the file's dir; NULL: none */
    const struct choice *choices;   /* KEY_CHOICE, ends with a NULL name */
};

/* Enums are written through an int. */
_Static_assert(sizeof(enum fsync_mode) == sizeof(int) &&
               sizeof(enum log_replies) == sizeof(int) &&
               sizeof(enum places_provider) == sizeof(int),
               "enum fields are int-sized");

#define FIELD(f) offsetof(struct herd_config, f)
#define PATH_KEY(name, f, def) {name, KEY_PATH, FIELD(f), 0, 0, 0, def, NULL}
#define INT_KEY(name, f, min, max, def) \
    {name, KEY_INT, FIELD(f), min, max, def, NULL, NULL}
#define LONG_KEY(name, f, min, max, def) \
    {name, KEY_LONG, FIELD(f), min, max, def, NULL, NULL}
#define CHOICE_KEY(name, f, choices, def) \
    {name, KEY_CHOICE, FIELD(f), 0, 0, def, NULL, choices}
#define OTHER_KEY(name) {name, KEY_OTHER, 0, 0, 0, 0, NULL, NULL}

static const struct choice FSYNC_CHOICES[] = {
    {"always", FSYNC_ALWAYS}, {"everysec", FSYNC_EVERYSEC}, {"no", FSYNC_NO},
    {NULL, 0},
};
static const struct choice LOG_REPLIES_CHOICES[] = {
    {"summary", LOG_REPLIES_SUMMARY}, {"full", LOG_REPLIES_FULL}, {NULL, 0},
};
static const struct choice PROVIDER_CHOICES[] = {
    {"local", PLACES_LOCAL}, {"google", PLACES_GOOGLE},
    {"google-legacy", PLACES_GOOGLE_LEGACY}, {NULL, 0},
};

static const struct key_def HERD_KEYS[] = {
    PATH_KEY("log_dir", log_dir, "logs"),
    PATH_KEY("run_dir", run_dir, "run"),
    LONG_KEY("log_max_mb", log_max_mb, 0, 1048576, 64),
    INT_KEY("log_keep", log_keep, 0, 1000, 5),
    INT_KEY("stop_grace_s", stop_grace_s, 0, 3600, 10),
    INT_KEY("max_clients", max_clients, 1, 1000000, 10000),
    INT_KEY("max_line", max_line, 256, CONFIG_MAX_LINE_MAX, 4096),
    INT_KEY("idle_timeout_s", idle_timeout_s, 1, 86400, 60),
    INT_KEY("max_output_kb", max_output_kb, 64, 1048576, 1024),
    LONG_KEY("catchup_backlog_mb", catchup_backlog_mb, 0, 1048576, 64),
    LONG_KEY("max_records", max_records, 0, 1000000000, 0),
    LONG_KEY("max_clock_ahead_s", max_clock_ahead_s, 0, 315360000, 86400),
    OTHER_KEY("http"),
    PATH_KEY("data_dir", data_dir, "data"),
    CHOICE_KEY("fsync", fsync, FSYNC_CHOICES, FSYNC_EVERYSEC),
    CHOICE_KEY("log_replies", log_replies, LOG_REPLIES_CHOICES,
               LOG_REPLIES_SUMMARY),
};

static const struct key_def PLACES_KEYS[] = {
    CHOICE_KEY("provider", provider, PROVIDER_CHOICES, PLACES_LOCAL),
    INT_KEY("port", places_port, 1, 65535, 12999),
    OTHER_KEY("url"),
    OTHER_KEY("key_env"),
    LONG_KEY("timeout_ms", places_timeout_ms, 1, 600000, 5000),
    PATH_KEY("data", places_data, NULL),
};

#define N_KEYS(t) (sizeof(t) / sizeof(t)[0])
/* The duplicate check keeps one bit per key. */
_Static_assert(N_KEYS(HERD_KEYS) <= 32 && N_KEYS(PLACES_KEYS) <= 32,
               "a section has at most 32 keys");

static void *field(struct herd_config *c, const struct key_def *k)
{
    return (char *)c + k->offset;
}

/* "a, b or c" for a message. */
static void choice_list(const struct choice *ch, char *out, size_t cap)
{
    size_t used = 0;

    out[0] = '\0';
    for (size_t i = 0; ch[i].name && used < cap; i++)
        used += (size_t)snprintf(out + used, cap - used, "%s%s",
                                 i == 0 ? "" : ch[i + 1].name ? ", " : " or ",
                                 ch[i].name);
}

static int set_choice(struct loader *ld, const struct key_def *k,
                      const char *value)
{
    char names[128];

    for (const struct choice *ch = k->choices; ch->name; ch++) {
        if (strcmp(ch->name, value) == 0) {
            *(int *)field(ld->cfg, k) = ch->value;
            return 1;
        }
    }
    choice_list(k->choices, names, sizeof names);
    fail(ld, ld->line, "%s must be %s, not '%s'", k->name, names, value);
    return 0;
}

/* [herd] http, [places] url and key_env: the keys no kind above
 * describes. */
static int other_key(struct loader *ld, const char *name, const char *value)
{
    struct herd_config *c = ld->cfg;

    if (strcmp(name, "http") == 0) {
        if (config_parse_http(value, c->http_addr, sizeof c->http_addr,
                              &c->http_port) < 0) {
            fail(ld, ld->line, "http must be off or ADDRESS:PORT (a numeric "
                 "IPv4 address, or [IPv6]:PORT; port 1 to 65535), not '%s'",
                 value);
            return 0;
        }
        return 1;
    }
    if (strcmp(name, "url") == 0) {
        if (strncmp(value, "http://", 7) != 0 &&
            strncmp(value, "https://", 8) != 0) {
            fail(ld, ld->line, "url must start with http:// or https://");
            return 0;
        }
        if (strlen(value) > 1024 || strpbrk(value, " \t\"'<>\\") != NULL) {
            fail(ld, ld->line, "url is too long or holds a space or quote");
            return 0;
        }
        free(c->places_url);
        c->places_url = strdup(value);
        /* A trailing slash would double up with the request path. */
        size_t n = strlen(c->places_url);
        while (n > 0 && c->places_url[n - 1] == '/')
            c->places_url[--n] = '\0';
        return 1;
    }
    /* key_env */
    if (!valid_name(value)) {
        fail(ld, ld->line, "key_env must be an environment variable name");
        return 0;
    }
    free(c->places_key_env);
    c->places_key_env = strdup(value);
    return 1;
}

/* One key of [herd] or [places], as its table row says. */
static int table_key(struct loader *ld, const char *section,
                     const struct key_def *keys, size_t n, unsigned *seen,
                     const char *name, const char *value)
{
    const struct key_def *k = NULL;
    long v;

    for (size_t i = 0; i < n && !k; i++)
        if (strcmp(keys[i].name, name) == 0)
            k = &keys[i];
    if (!k) {
        fail(ld, ld->line, "unknown key '%s' in [%s]", name, section);
        return 0;
    }
    if (!once(ld, seen, 1u << (k - keys), name))
        return 0;
    switch (k->kind) {
    case KEY_PATH:
        return replace_path(ld, (char **)field(ld->cfg, k), value);
    case KEY_INT:
    case KEY_LONG:
        if (!number(ld, name, value, k->min, k->max, &v))
            return 0;
        if (k->kind == KEY_INT)
            *(int *)field(ld->cfg, k) = (int)v;
        else
            *(long *)field(ld->cfg, k) = v;
        return 1;
    case KEY_CHOICE:
        return set_choice(ld, k, value);
    case KEY_OTHER:
        break;
    }
    return other_key(ld, name, value);
}

static int herd_key(struct loader *ld, const char *name, const char *value)
{
    return table_key(ld, "herd", HERD_KEYS, N_KEYS(HERD_KEYS), &ld->seen_herd,
                     name, value);
}

static int places_key(struct loader *ld, const char *name, const char *value)
{
    return table_key(ld, "places", PLACES_KEYS, N_KEYS(PLACES_KEYS),
                     &ld->seen_places, name, value);
}

static int node_key(struct loader *ld, const char *name, const char *value)
{
    struct node_conf *n = &ld->cfg->nodes[ld->in_node];
    unsigned *seen = &ld->seen_node[ld->in_node];
    long v;

    if (strcmp(name, "port") == 0) {
        if (!once(ld, seen, 1, name) || !number(ld, name, value, 1, 65535, &v))
            return 0;
        n->port = (int)v;
        ld->port_line[ld->in_node] = ld->line;
    } else if (strcmp(name, "neighbors") == 0) {
        if (!once(ld, seen, 2, name))
            return 0;
        free(ld->neighbor_text[ld->in_node]);
        ld->neighbor_text[ld->in_node] = strdup(value);
        ld->neighbor_line[ld->in_node] = ld->line;
    } else if (strcmp(name, "host") == 0) {
        if (!once(ld, seen, 4, name))
            return 0;
        if (*value == '\0' || strlen(value) > CONFIG_HOST_MAX ||
            strpbrk(value, " \t/") != NULL) {
            fail(ld, ld->line, "host must be an address or host name");
            return 0;
        }
        snprintf(n->host, sizeof n->host, "%s", value);
        n->host_set = 1;
    } else {
        fail(ld, ld->line, "unknown key '%s' in [%s]", name, ld->section);
        return 0;
    }
    return 1;
}

static int grow_nodes(struct loader *ld)
{
    struct herd_config *c = ld->cfg;
    size_t cap = ld->nodes_cap ? ld->nodes_cap * 2 : 8;

    if (c->n_nodes < ld->nodes_cap)
        return 0;
    struct node_conf *nodes = realloc(c->nodes, cap * sizeof *nodes);
    if (!nodes)
        return -1;
    c->nodes = nodes;
    char **text = realloc(ld->neighbor_text, cap * sizeof *text);
    if (!text)
        return -1;
    ld->neighbor_text = text;
    int *nl = realloc(ld->neighbor_line, cap * sizeof *nl);
    if (!nl)
        return -1;
    ld->neighbor_line = nl;
    int *pl = realloc(ld->port_line, cap * sizeof *pl);
    if (!pl)
        return -1;
    ld->port_line = pl;
    unsigned *seen = realloc(ld->seen_node, cap * sizeof *seen);
    if (!seen)
        return -1;
    ld->seen_node = seen;
    ld->nodes_cap = cap;
    return 0;
}

/* A new section header: inih reports it only through the first key, so
 * the section is opened lazily, at the line of its first key. */
static int open_section(struct loader *ld, const char *section)
{
    struct herd_config *c = ld->cfg;

    snprintf(ld->section, sizeof ld->section, "%s", section);
    ld->in_node = -1;
    ld->section_ok = 0;
    if (strcmp(section, "herd") == 0 || strcmp(section, "places") == 0) {
        ld->section_ok = 1;
        return 1;
    }
    if (strncmp(section, "node ", 5) == 0) {
        const char *name = section + 5;
        while (*name == ' ')
            name++;
        if (!valid_name(name)) {
            fail(ld, ld->line, "bad node name '%s' (letters, digits, '_', "
                 "'-', '.'; at most %d)", name, CONFIG_NAME_MAX);
            return 0;
        }
        if (config_find_node(c, name) >= 0) {
            fail(ld, ld->line, "duplicate node '%s'", name);
            return 0;
        }
        if (grow_nodes(ld) < 0) {
            fail(ld, ld->line, "out of memory");
            return 0;
        }
        struct node_conf *n = &c->nodes[c->n_nodes];
        memset(n, 0, sizeof *n);
        /* valid_name() bounded it by CONFIG_NAME_MAX; gcc cannot see that
         * through snprintf and warns at -O1, so copy it plainly. */
        memcpy(n->name, name, strlen(name) + 1);
        snprintf(n->host, sizeof n->host, "127.0.0.1");
        n->line = ld->line;
        ld->neighbor_text[c->n_nodes] = NULL;
        ld->neighbor_line[c->n_nodes] = 0;
        ld->port_line[c->n_nodes] = 0;
        ld->seen_node[c->n_nodes] = 0;
        ld->in_node = (int)c->n_nodes++;
        ld->section_ok = 1;
        return 1;
    }
    fail(ld, ld->line, "unknown section [%s]", section);
    return 0;
}

/* Sections are opened by the reader, which sees every header (inih only
 * reports sections through their keys, so an empty or unknown section
 * would pass unseen). */
static void notice_section(struct loader *ld, const char *line)
{
    const char *p = line, *end;
    char name[128];
    size_t n;

    /* inih skips a UTF-8 byte order mark on the first line; so must we,
     * or "[herd]" behind one would go unseen. */
    if (ld->line == 1 && strncmp(p, "\xEF\xBB\xBF", 3) == 0)
        p += 3;
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p != '[')
        return;
    end = strchr(p, ']');
    if (end == NULL)
        return;                 /* inih reports the syntax error */
    p++;
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    n = (size_t)(end - p);
    while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
        n--;
    if (n >= sizeof name) {
        fail(ld, ld->line, "section name too long");
        ld->section_ok = 0;
        ld->in_node = -1;
        return;
    }
    memcpy(name, p, n);
    name[n] = '\0';
    open_section(ld, name);
}

static int handle_pair(void *user, const char *section, const char *name,
                       const char *value)
{
    struct loader *ld = user;

    (void)section;
    if (ld->section[0] == '\0') {
        fail(ld, ld->line, "key '%s' outside any section", name);
        return 0;
    }
    if (!ld->section_ok)
        return 0;               /* the section itself was reported */
    if (ld->in_node >= 0)
        return node_key(ld, name, value);
    if (strcmp(ld->section, "herd") == 0)
        return herd_key(ld, name, value);
    return places_key(ld, name, value);
}

/* Turn each node's neighbors= text into links, both directions. */
static int add_link(struct herd_config *c, int a, int b)
{
    struct node_conf *n = &c->nodes[a];

    for (size_t i = 0; i < n->n_neighbors; i++)
        if (n->neighbors[i] == b)
            return 0;
    int *p = realloc(n->neighbors, (n->n_neighbors + 1) * sizeof *p);
    if (!p)
        return -1;
    n->neighbors = p;
    n->neighbors[n->n_neighbors++] = b;
    return 0;
}

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

static void resolve_links(struct loader *ld)
{
    struct herd_config *c = ld->cfg;

    for (size_t i = 0; i < c->n_nodes; i++) {
        char *text = ld->neighbor_text[i], *save = NULL, *tok;

        if (text == NULL)
            continue;
        /* Names may be separated by spaces, tabs or commas. */
        for (tok = strtok_r(text, " \t,", &save); tok;
             tok = strtok_r(NULL, " \t,", &save)) {
            int j = config_find_node(c, tok);
            if (j < 0) {
                fail(ld, ld->neighbor_line[i],
                     "node '%s' names neighbour '%s', which does not exist",
                     c->nodes[i].name, tok);
                continue;
            }
            if ((size_t)j == i) {
                fail(ld, ld->neighbor_line[i], "node '%s' links to itself",
                     tok);
                continue;
            }
            if (add_link(c, (int)i, j) < 0 || add_link(c, j, (int)i) < 0)
                fail(ld, ld->neighbor_line[i], "out of memory");
        }
    }
    for (size_t i = 0; i < c->n_nodes; i++)
        if (c->nodes[i].n_neighbors > 1)
            qsort(c->nodes[i].neighbors, c->nodes[i].n_neighbors,
                  sizeof(int), cmp_int);
}

static void check_nodes(struct loader *ld)
{
    struct herd_config *c = ld->cfg;

    if (c->n_nodes == 0) {
        fail(ld, ld->line > 0 ? ld->line : 1, "no [node NAME] section");
        return;
    }
    for (size_t i = 0; i < c->n_nodes; i++) {
        struct node_conf *n = &c->nodes[i];

        if (n->port == 0) {
            fail(ld, n->line, "node '%s' has no port", n->name);
            continue;
        }
        for (size_t j = 0; j < i; j++) {
            if (c->nodes[j].port == n->port &&
                strcmp(c->nodes[j].host, n->host) == 0)
                fail(ld, ld->port_line[i],
                     "node '%s' uses port %d on %s, as node '%s' does",
                     n->name, n->port, n->host, c->nodes[j].name);
        }
        if (c->http_port && n->port == c->http_port &&
            strcmp(n->host, c->http_addr) == 0)
            fail(ld, ld->port_line[i],
                 "node '%s' uses port %d, the HTTP face's port (http)",
                 n->name, n->port);
        if (c->provider == PLACES_LOCAL && c->places_url == NULL &&
            n->port == c->places_port && strcmp(n->host, "127.0.0.1") == 0)
            fail(ld, ld->port_line[i],
                 "node '%s' uses port %d, the places emulator's port",
                 n->name, n->port);
    }
}

static void table_defaults(struct herd_config *c, const struct key_def *keys,
                           size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const struct key_def *k = &keys[i];

        if (k->kind == KEY_INT || k->kind == KEY_CHOICE)
            *(int *)field(c, k) = (int)k->def;
        else if (k->kind == KEY_LONG)
            *(long *)field(c, k) = k->def;
    }
}

void config_defaults(struct herd_config *c)
{
    table_defaults(c, HERD_KEYS, N_KEYS(HERD_KEYS));
    table_defaults(c, PLACES_KEYS, N_KEYS(PLACES_KEYS));
    /* http, the one KEY_OTHER with a default that is not a string to own */
    snprintf(c->http_addr, sizeof c->http_addr, "127.0.0.1");
    c->http_port = CONFIG_HTTP_DEFAULT_PORT;
}

/* The paths a file need not name, below its directory. */
static int default_paths(struct herd_config *c)
{
    for (size_t i = 0; i < N_KEYS(HERD_KEYS); i++) {
        const struct key_def *k = &HERD_KEYS[i];

        if (k->kind == KEY_PATH && k->def_path) {
            char **slot = field(c, k);
            free(*slot);
            *slot = absolute(c->dir, k->def_path);
            if (!*slot)
                return -1;
        }
    }
    return 0;
}

static char *dir_of(const char *path)
{
    char cwd[PATH_MAX], *copy, *slash, *out;

    copy = strdup(path);
    if (!copy)
        return NULL;
    slash = strrchr(copy, '/');
    if (slash == copy)
        copy[1] = '\0';
    else if (slash)
        *slash = '\0';
    else
        snprintf(copy, strlen(copy) + 1, ".");
    if (copy[0] == '/') {
        out = realpath(copy, NULL);
        if (!out)
            out = strdup(copy);
        free(copy);
        return out;
    }
    if (!getcwd(cwd, sizeof cwd)) {
        free(copy);
        return NULL;
    }
    out = absolute(cwd, copy);
    free(copy);
    if (out) {
        char *real = realpath(out, NULL);
        if (real) {
            free(out);
            out = real;
        }
    }
    return out;
}

int config_load(const char *path, struct herd_config *out,
                char *err, size_t errlen)
{
    struct loader ld;
    int rc;

    memset(out, 0, sizeof *out);
    memset(&ld, 0, sizeof ld);
    ld.cfg = out;
    ld.err = err;
    ld.errlen = errlen;
    ld.in_node = -1;
    if (errlen)
        err[0] = '\0';
    config_defaults(out);
    out->path = strdup(path);
    out->dir = dir_of(path);
    out->places_key_env = strdup("GOOGLE_PLACES_API_KEY");
    if (!out->path || !out->dir || !out->places_key_env) {
        snprintf(err, errlen, "%s: out of memory", path);
        config_free(out);
        return -1;
    }
    if (default_paths(out) < 0) {
        snprintf(err, errlen, "%s: out of memory", path);
        config_free(out);
        return -1;
    }

    ld.file = fopen(path, "r");
    if (ld.file == NULL) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        config_free(out);
        return -1;
    }
    /* One key per line, no continuation lines: an indented line is a
     * mistake to report, not a value to glue on. */
    ini_allow_multiline = false;
    rc = ini_parse_stream(read_line, &ld, handle_pair, &ld);
    fclose(ld.file);
    if (rc > 0)
        fail(&ld, rc, "syntax error (expected [section] or key = value)");
    if (ld.too_long_line)
        fail(&ld, ld.too_long_line, "line too long (at most %d characters)",
             ini_max_line - 2);  /* the buffer less "\n" and NUL */
    if (!ld.err_line) {
        resolve_links(&ld);
        check_nodes(&ld);
    }
    for (size_t i = 0; i < out->n_nodes; i++)
        free(ld.neighbor_text[i]);
    free(ld.neighbor_text);
    free(ld.neighbor_line);
    free(ld.port_line);
    free(ld.seen_node);
    if (ld.err_line || rc < 0) {
        if (rc < 0 && !ld.err_line)
            snprintf(err, errlen, "%s: out of memory", path);
        config_free(out);
        return -1;
    }
    return 0;
}

void config_free(struct herd_config *c)
{
    for (size_t i = 0; i < c->n_nodes; i++)
        free(c->nodes[i].neighbors);
    free(c->nodes);
    free(c->path);
    free(c->dir);
    free(c->log_dir);
    free(c->run_dir);
    free(c->data_dir);
    free(c->places_data);
    free(c->places_url);
    free(c->places_key_env);
    memset(c, 0, sizeof *c);
}

int config_find_node(const struct herd_config *c, const char *name)
{
    for (size_t i = 0; i < c->n_nodes; i++)
        if (strcmp(c->nodes[i].name, name) == 0)
            return (int)i;
    return -1;
}

/* The name of a choice's value, as herd.ini spells it; fallback (the
 * default's name) for a value outside the enum. */
static const char *choice_name(const struct choice *ch, int value,
                               const char *fallback)
{
    for (; ch->name; ch++)
        if (ch->value == value)
            return ch->name;
    return fallback;
}

const char *config_provider_name(enum places_provider p)
{
    return choice_name(PROVIDER_CHOICES, (int)p, "local");
}

char *config_places_base(const struct herd_config *c)
{
    char buf[64];

    if (c->places_url)
        return strdup(c->places_url);
    switch (c->provider) {
    case PLACES_GOOGLE:
        return strdup("https://places.googleapis.com");
    case PLACES_GOOGLE_LEGACY:
        return strdup("https://maps.googleapis.com");
    case PLACES_LOCAL:
        break;
    }
    snprintf(buf, sizeof buf, "http://127.0.0.1:%d", c->places_port);
    return strdup(buf);
}

const char *config_fsync_name(enum fsync_mode m)
{
    return choice_name(FSYNC_CHOICES, (int)m, "everysec");
}

char *config_run_path(const struct herd_config *c, const char *file)
{
    return absolute(c->run_dir, file);
}

/* dir/NAME.suffix, absolute. */
static char *named_path(const char *dir, const char *name, const char *suffix)
{
    size_t n = strlen(name) + strlen(suffix) + 1;
    char *file = malloc(n), *out;

    if (!file)
        return NULL;
    snprintf(file, n, "%s%s", name, suffix);
    out = absolute(dir, file);
    free(file);
    return out;
}

char *config_log_path(const struct herd_config *c, const char *node_name)
{
    return named_path(c->log_dir, node_name, ".log");
}

char *config_status_path(const struct herd_config *c, const char *node_name)
{
    return named_path(c->run_dir, node_name, ".status");
}
