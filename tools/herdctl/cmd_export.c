/* export systemd: hand this machine's part of the herd to systemd.
 *
 * Three files, for the nodes whose host is this machine (or --host):
 *   herd-node@.service   a template, one instance per node (%i = name)
 *   herd-places.service  the emulator, when the provider is local
 *   herd-http.service    the HTTP face (herd-supervisor --http-only,
 *                        supervisor/watch.h), unless [herd] http = off
 *   herd.target          Wants= every instance of this host, places, http
 *
 * The units do what herd-supervisor does: restart on failure with a
 * short delay, give up after 5 failures in 60 s, never retry a usage or
 * herd.ini error (exit 100), stop with SIGTERM and SIGKILL after
 * stop_grace_s.  systemd >= 254 also grows the delay like the
 * supervisor's backoff (RestartSteps=, RestartMaxDelaySec=); older ones
 * do not know those keys, so they are written only where systemctl
 * --version says they work (HERD_SYSTEMD_VERSION overrides the probe). */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fsutil.h"
#include "herdctl.h"
#include "common/ctlproto.h"
#include "common/hosts.h"

/* Growing text, for one unit file. */
struct text {
    char *p;
    size_t len, cap;
    int failed;
};

static void add(struct text *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void add(struct text *t, const char *fmt, ...)
{
    va_list ap;

    for (;;) {
        va_start(ap, fmt);
        int n = vsnprintf(t->p ? t->p + t->len : NULL,
                          t->p ? t->cap - t->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->failed = 1;
            return;
        }
        if (t->p && t->len + (size_t)n < t->cap) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = (t->cap ? t->cap * 2 : 4096) + (size_t)n;
        char *p = realloc(t->p, cap);
        if (!p) {
            t->failed = 1;
            return;
        }
        t->p = p;
        t->cap = cap;
    }
}

/* A path as a unit file wants it: '%' doubled (it starts a specifier),
 * and, for command lines, quoted when it holds a space, quote or
 * backslash. */
static void add_path(struct text *t, const char *path, int quote)
{
    int q = quote && strpbrk(path, " \t\"'\\") != NULL;

    if (q)
        add(t, "\"");
    for (const char *s = path; *s; s++) {
        if (*s == '%')
            add(t, "%%%%");
        else if (q && (*s == '"' || *s == '\\'))
            add(t, "\\%c", *s);
        else
            add(t, "%c", *s);
    }
    if (q)
        add(t, "\"");
}

/* Write path atomically (temp file, rename; never through a symlink). */
static int write_file(const char *path, const struct text *t)
{
    return fs_write_atomic(path, t->p, t->len, 0644);
}

/* $env, or the program named name beside this herdctl, absolute. */
static void sibling(const char *env, const char *name, char *out, size_t cap)
{
    const char *over = getenv(env);
    char self[PATH_MAX];
    ssize_t n;

    if (over && *over) {
        if (!realpath(over, out))
            snprintf(out, cap, "%s", over);
        return;
    }
    n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) {
        snprintf(out, cap, "/usr/local/bin/%s", name);
        return;
    }
    self[n] = '\0';
    /* Replace our own name with theirs, in place. */
    char *slash = strrchr(self, '/');
    size_t room = sizeof self - (size_t)(slash + 1 - self);
    if (strlen(name) < room)
        memcpy(slash + 1, name, strlen(name) + 1);
    snprintf(out, cap, "%.*s", (int)(cap - 1), self);
}

/* The installed systemd's version (systemctl --version), or 0. */
static int systemd_version(void)
{
    const char *over = getenv("HERD_SYSTEMD_VERSION");
    char line[256];
    int v = 0;
    FILE *p;

    if (over && *over)
        return atoi(over);
    p = popen("systemctl --version 2>/dev/null", "r");
    if (!p)
        return 0;
    if (fgets(line, sizeof line, p) && sscanf(line, "systemd %d", &v) != 1)
        v = 0;
    while (fgets(line, sizeof line, p))
        ;
    pclose(p);
    return v;
}

/* What every service of the herd shares: restarts, stopping, limits,
 * output, user. */
/* systemd's RestartSteps: how many doublings take the supervisor's
 * backoff from its first delay to its cap. */
static int backoff_steps(void)
{
    int steps = 0;

    for (double d = CTL_BACKOFF_MIN; d < CTL_BACKOFF_MAX; d *= 2)
        steps++;
    return steps;
}

static void add_service_common(struct text *t, const struct ctl *c,
                               int version, const char *output,
                               const char *user, const char *log_name)
{
    add(t, "WorkingDirectory=");
    add_path(t, c->cfg.dir, 0);
    add(t, "\n");
    if (user)
        add(t, "User=%s\n", user);
    add(t, "Restart=on-failure\n"
           "RestartSec=%dms\n", (int)(CTL_BACKOFF_MIN * 1000 + 0.5));
    if (version >= 254)
        add(t, "# Grow the delay like herd-supervisor's backoff: %g s "
               "doubling to %g s.\n"
               "RestartSteps=%d\n"
               "RestartMaxDelaySec=%gs\n", CTL_BACKOFF_MIN, CTL_BACKOFF_MAX,
            backoff_steps(), CTL_BACKOFF_MAX);
    add(t, "# Exit 100 is a usage or herd.ini error: restarting would not "
           "help.\n"
           "RestartPreventExitStatus=100\n"
           "KillSignal=SIGTERM\n"
           "TimeoutStopSec=%ds\n", c->cfg.stop_grace_s > 0
                                       ? c->cfg.stop_grace_s : 1);
    if (strcmp(output, "file") == 0) {
        add(t, "# The program logs to log_dir itself; its stdout and stderr "
               "(a fatal start-up\n# error) are appended to the same file.\n"
               "StandardOutput=append:");
        add_path(t, c->cfg.log_dir, 0);
        add(t, "/%s.log\nStandardError=append:", log_name);
        add_path(t, c->cfg.log_dir, 0);
        add(t, "/%s.log\n", log_name);
    } else {
        add(t, "# The program logs to log_dir itself; its stdout and stderr "
               "(a fatal start-up\n# error) go to the journal: journalctl "
               "-u UNIT.\n"
               "StandardOutput=journal\n"
               "StandardError=journal\n");
    }
    add(t, "UMask=0027\n"
           "NoNewPrivileges=yes\n");
}

static int emit(const char *dir, const char *name, struct text *t)
{
    char path[PATH_MAX];

    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (t->failed) {
        fprintf(stderr, "herdctl: out of memory\n");
        return EX_SYS;
    }
    if (write_file(path, t) < 0) {
        fprintf(stderr, "herdctl: cannot write %s: %s\n", path,
                strerror(errno));
        return EX_SYS;
    }
    printf("wrote %s\n", path);
    return EX_OK;
}

int cmd_export(struct ctl *c, const char *what, const char *dir_arg,
               const char *output, const char *user)
{
    char node_bin[PATH_MAX], places_bin[PATH_MAX], config[PATH_MAX];
    char sup_bin[PATH_MAX];
    char dir[PATH_MAX], me[256];
    struct text node = {0}, places = {0}, target = {0}, http = {0};
    int rc = EX_OK, version = systemd_version();
    int *here = calloc(c->cfg.n_nodes + 1, sizeof *here);
    size_t n_here;

    (void)what;                 /* main() accepts only "systemd" */
    if (!here) {
        fprintf(stderr, "herdctl: out of memory\n");
        return EX_SYS;
    }
    n_here = hosts_select(&c->cfg, c->only_host, here);
    if (n_here == 0) {
        if (c->only_host)
            fprintf(stderr, "herdctl: no node of %s has host %s\n",
                    c->config_path, c->only_host);
        else
            fprintf(stderr, "herdctl: no node of %s is on this machine; "
                    "--host ADDR picks a host\n", c->config_path);
        free(here);
        return EX_USAGE;
    }
    if (!output)
        output = "journal";
    if (!user && geteuid() != 0) {
        /* System units run as root unless told; a herd set up by a user
         * keeps running as that user, owning its own files. */
        struct passwd *pw = getpwuid(geteuid());
        if (pw) {
            snprintf(me, sizeof me, "%s", pw->pw_name);
            user = me;
        }
    }
    if (!realpath(c->config_path, config))
        snprintf(config, sizeof config, "%s", c->config_path);
    sibling("HERD_NODE_BIN", "herd-node", node_bin, sizeof node_bin);
    sibling("HERD_PLACES_BIN", "herd-places", places_bin, sizeof places_bin);
    sibling("HERD_SUPERVISOR_BIN", "herd-supervisor", sup_bin, sizeof sup_bin);
    int with_http = c->cfg.http_port != 0;
    snprintf(dir, sizeof dir, "%s", dir_arg ? dir_arg : ".");
    fs_mkdir_p(dir, 0755);
    if (strcmp(output, "file") == 0)
        fs_mkdir_p(c->cfg.log_dir, 0755);  /* systemd opens the file, not the node */
    int with_places = c->cfg.provider == PLACES_LOCAL;
    const char *host = c->only_host ? c->only_host : "this machine";

    /* herd-node@.service */
    add(&node, "# herd-node@.service: one Herd node per instance "
               "(herd-node@NAME.service).\n"
               "# Written by `herdctl export systemd` from %s; edit "
               "herd.ini and export again.\n", config);
    add(&node, "[Unit]\n"
               "Description=Herd node %%i\n"
               "PartOf=herd.target\n"
               "# A node binds its host address: wait until the network "
               "has it.\n"
               "Wants=network-online.target\n"
               "After=network-online.target%s\n"
               "# Like herd-supervisor: %d failures within %g s and it is "
               "given up on.\n"
               "StartLimitIntervalSec=%g\n"
               "StartLimitBurst=%d\n"
               "\n"
               "[Service]\n"
               "Type=simple\n"
               "ExecStart=", with_places ? " herd-places.service" : "",
        CTL_DEATHS, CTL_DEATH_WINDOW, CTL_DEATH_WINDOW, CTL_DEATHS);
    add_path(&node, node_bin, 1);
    add(&node, " -c ");
    add_path(&node, config, 1);
    add(&node, " %%i\n");
    if (c->cfg.provider != PLACES_LOCAL)
        add(&node, "# The places key comes from the environment (key_env = "
                   "%s); keep it in this\n# file, mode 600, as "
                   "%s=...\nEnvironmentFile=-", c->cfg.places_key_env,
                   c->cfg.places_key_env);
    if (c->cfg.provider != PLACES_LOCAL) {
        add_path(&node, c->cfg.dir, 0);
        add(&node, "/herd.env\n");
    }
    add_service_common(&node, c, version, output, user, "%i");
    /* max_clients, 64 spare for peers' handshakes, up to 1024 places
     * requests in flight, links, logs, the journal: round up. */
    add(&node, "# max_clients (%d) + peers' handshakes + places requests + "
               "files.\nLimitNOFILE=%ld\n", c->cfg.max_clients,
        (long)c->cfg.max_clients + 2048);
    add(&node, "\n[Install]\nWantedBy=herd.target\n");
    rc = emit(dir, "herd-node@.service", &node);

    /* herd-places.service */
    if (rc == EX_OK && with_places) {
        add(&places, "# herd-places.service: the Google Places emulator of "
                     "this Herd host.\n"
                     "# Written by `herdctl export systemd` from %s.\n",
            config);
        add(&places, "[Unit]\n"
                     "Description=Herd places emulator (port %d)\n"
                     "PartOf=herd.target\n"
                     "After=network.target\n"
                     "StartLimitIntervalSec=%g\n"
                     "StartLimitBurst=%d\n"
                     "\n"
                     "[Service]\n"
                     "Type=simple\n"
                     "ExecStart=", c->cfg.places_port, CTL_DEATH_WINDOW,
            CTL_DEATHS);
        add_path(&places, places_bin, 1);
        add(&places, " -c ");
        add_path(&places, config, 1);
        add(&places, "\n");
        add_service_common(&places, c, version, output, user, "places");
        add(&places, "\n[Install]\nWantedBy=herd.target\n");
        rc = emit(dir, "herd-places.service", &places);
    }

    /* herd-http.service: the supervisor's HTTP face without the
     * supervisor, reading the status files the nodes write. */
    if (rc == EX_OK && with_http) {
        add(&http, "# herd-http.service: the HTTP face of this Herd host "
                   "(/metrics, /api/status, the page).\n"
                   "# Written by `herdctl export systemd` from %s.\n",
            config);
        add(&http, "[Unit]\n"
                   "Description=Herd HTTP face (%s%s%s:%d)\n"
                   "PartOf=herd.target\n"
                   "Wants=network-online.target\n"
                   "After=network-online.target\n"
                   "\n"
                   "[Service]\n"
                   "Type=simple\n"
                   "ExecStart=", strchr(c->cfg.http_addr, ':') ? "[" : "",
            c->cfg.http_addr, strchr(c->cfg.http_addr, ':') ? "]" : "",
            c->cfg.http_port);
        add_path(&http, sup_bin, 1);
        add(&http, " -c ");
        add_path(&http, config, 1);
        if (c->only_host) {
            add(&http, " --host ");
            add_path(&http, c->only_host, 1);
        }
        add(&http, " --http-only\n");
        add_service_common(&http, c, version, output, user, "http");
        add(&http, "\n[Install]\nWantedBy=herd.target\n");
        rc = emit(dir, "herd-http.service", &http);
    }

    /* herd.target */
    if (rc == EX_OK) {
        add(&target, "# herd.target: every Herd process of %s.\n"
                     "# Written by `herdctl export systemd` from %s.\n",
            host, config);
        add(&target, "[Unit]\nDescription=Herd on %s:", host);
        for (size_t i = 0; i < c->cfg.n_nodes; i++)
            if (here[i])
                add(&target, " %s", c->cfg.nodes[i].name);
        add(&target, "\nWants=");
        if (with_places)
            add(&target, "herd-places.service");
        if (with_http)
            add(&target, "%sherd-http.service", with_places ? " " : "");
        for (size_t i = 0, k = with_places + with_http; i < c->cfg.n_nodes; i++)
            if (here[i])
                add(&target, "%sherd-node@%s.service", k++ ? " " : "",
                    c->cfg.nodes[i].name);
        add(&target, "\n\n[Install]\nWantedBy=multi-user.target\n");
        rc = emit(dir, "herd.target", &target);
    }
    if (rc == EX_OK) {
        printf("%zu node(s) of %s:", n_here, host);
        for (size_t i = 0; i < c->cfg.n_nodes; i++)
            if (here[i])
                printf(" %s", c->cfg.nodes[i].name);
        printf("\ninstall: cp %s/herd-node@.service ", dir);
        if (with_places)
            printf("%s/herd-places.service ", dir);
        if (with_http)
            printf("%s/herd-http.service ", dir);
        printf("%s/herd.target /etc/systemd/system/\n"
               "         systemctl daemon-reload && systemctl enable --now "
               "herd.target\n", dir);
        printf("(stop the herd-supervisor of this herd first: one engine "
               "per machine)\n");
    }
    free(node.p);
    free(places.p);
    free(target.p);
    free(http.p);
    free(here);
    return rc;
}
