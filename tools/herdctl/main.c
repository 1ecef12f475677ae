/* herdctl: start, watch and change a herd.  See usage() for the commands
 * and exit codes. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/rlimit.h"
#include "herdctl.h"

static void usage(FILE *out)
{
    fprintf(out,
"usage: herdctl [-c herd.ini] COMMAND [ARGS]\n"
"\n"
"  start [NODE] [--foreground] [--host ADDR]\n"
"                               start the herd (daemonized; returns once the\n"
"                               nodes run) or one stopped node; --foreground\n"
"                               shows every log line until Ctrl-C stops it.\n"
"                               Only this machine's nodes start: those whose\n"
"                               host is ADDR, or without --host one of its own\n"
"                               addresses (every node when none sets host=)\n"
"  stop [NODE]                  stop one node (it stays stopped until\n"
"                               `start NODE`), or the whole herd and the\n"
"                               supervisor, returning when all are gone\n"
"  restart NODE                 stop and start one node\n"
"  status [NODE] [--json]       per node: state, pid, uptime, port, restarts,\n"
"                               links up/total, clients known; a node of\n"
"                               another host is `remote`, with the state of\n"
"                               our links to it\n"
"  reload [--dry-run]           apply an edited herd.ini: + added nodes start,\n"
"                               - removed ones stop, ~ a changed port/host\n"
"                               restarts, ~ changed neighbours re-link in place\n"
"  logs [NODE] [-f] [-n N]      last N lines (default 10) of a log (NODE may be\n"
"                               places or supervisor), or all interleaved;\n"
"                               -f follows through rotations and restarts\n"
"  check                        validate herd.ini (like nginx -t)\n"
"  graph                        the topology as Graphviz DOT, live link state\n"
"  send NODE LINE...            send one request line, print the whole reply\n"
"  secret add [FILE|-] | use ID | remove ID | list\n"
"                               this host's link keys (run_dir/herd.keyring):\n"
"                               add a secret (read from FILE, or a fresh\n"
"                               one), make one the primary that nodes dial\n"
"                               with, remove one (its links drop), list ids;\n"
"                               running nodes apply it within a second\n"
"  export systemd [--host ADDR] [--dir DIR] [--output journal|file]\n"
"                 [--user USER]\n"
"                               write herd-node@.service, herd-places.service\n"
"                               (provider local) and herd.target for this\n"
"                               machine's nodes (or ADDR's) into DIR\n"
"                               (default .); --output file sends the nodes'\n"
"                               stdout/stderr to log_dir/NAME.log instead of\n"
"                               the journal\n"
"\n"
"  -c FILE   herd.ini to use (default: $HERD_CONFIG, else ./herd.ini)\n"
"\n"
"exit codes:\n"
"  0    ok (status: every node of this machine runs)\n"
"  3    not every node of this machine runs (status, start, restart,\n"
"       reload), or send:\n"
"       the node refused the connection\n"
"  4    the supervisor is not running, or no such node\n"
"  100  usage or herd.ini error\n"
"  111  system failure\n");
}

/* herd.ini does not validate (someone is editing it): find just run_dir,
 * log_dir and the places provider in it, so status, stop, restart and
 * logs keep working. */
static int fallback_config(const char *path, struct herd_config *c)
{
    char real[PATH_MAX], line[4096], section[128] = "";
    char run[PATH_MAX] = "run", logs[PATH_MAX] = "logs";
    FILE *f;

    memset(c, 0, sizeof *c);
    config_defaults(c);                 /* as config_load starts */
    if (!realpath(path, real) || !(f = fopen(real, "re")))
        return -1;
    while (fgets(line, sizeof line, f)) {
        char key[64], value[PATH_MAX];
        line[strcspn(line, ";#\n")] = '\0';
        if (sscanf(line, " [%127[^]]", section) == 1)
            continue;
        if (sscanf(line, " %63[a-z_] = %4095s", key, value) != 2)
            continue;
        if (strcmp(section, "herd") == 0 && strcmp(key, "run_dir") == 0)
            snprintf(run, sizeof run, "%s", value);
        else if (strcmp(section, "herd") == 0 && strcmp(key, "log_dir") == 0)
            snprintf(logs, sizeof logs, "%s", value);
        else if (strcmp(section, "places") == 0 &&
                 strcmp(key, "provider") == 0)
            c->provider = strcmp(value, "google") == 0 ? PLACES_GOOGLE
                        : strcmp(value, "google-legacy") == 0
                            ? PLACES_GOOGLE_LEGACY : PLACES_LOCAL;
    }
    fclose(f);
    c->path = strdup(path);
    c->dir = strdup(real);
    c->run_dir = malloc(2 * PATH_MAX);
    c->log_dir = malloc(2 * PATH_MAX);
    c->places_key_env = strdup("");
    if (!c->path || !c->dir || !c->run_dir || !c->log_dir ||
        !c->places_key_env)
        return -1;
    char *slash = strrchr(c->dir, '/');     /* realpath: always one */
    if (!slash)
        return -1;
    *slash = '\0';
    snprintf(c->run_dir, 2 * PATH_MAX, "%s%s%s", run[0] == '/' ? "" : c->dir,
             run[0] == '/' ? "" : "/", run);
    snprintf(c->log_dir, 2 * PATH_MAX, "%s%s%s", logs[0] == '/' ? "" : c->dir,
             logs[0] == '/' ? "" : "/", logs);
    return 0;
}

static int bad_usage(const char *fmt, const char *arg)
{
    fprintf(stderr, "herdctl: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n(herdctl --help shows the commands)\n");
    return EX_USAGE;
}

int main(int argc, char **argv)
{
    struct ctl c;
    const char *command = NULL, *pos[2] = {NULL, NULL};
    int npos = 0, json = 0, follow = 0, foreground = 0, dry = 0;
    const char *dir = NULL, *output = NULL, *user = NULL;
    long lines = 10;
    char err[2048], line[8192];
    int i, rc;

    /* As many descriptors as the system allows (issue 10). */
    rlimit_raise_nofile();
    memset(&c, 0, sizeof c);
    c.config_path = getenv("HERD_CONFIG");
    if (!c.config_path || !*c.config_path)
        c.config_path = "herd.ini";
    line[0] = '\0';
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (command && strcmp(command, "send") == 0 && npos == 1) {
            /* Everything after the node is the request line. */
            size_t used = strlen(line);
            snprintf(line + used, sizeof line - used, "%s%s", used ? " " : "",
                     a);
            continue;
        }
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return EX_OK;
        } else if (strcmp(a, "-c") == 0) {
            if (++i >= argc)
                return bad_usage("-c needs a file%s", "");
            c.config_path = argv[i];
        } else if (strcmp(a, "--json") == 0) {
            json = 1;
        } else if (strcmp(a, "-f") == 0 || strcmp(a, "--follow") == 0) {
            follow = 1;
        } else if (strcmp(a, "--foreground") == 0) {
            foreground = 1;
        } else if (strcmp(a, "--dry-run") == 0) {
            dry = 1;
        } else if (strcmp(a, "--host") == 0 || strcmp(a, "--dir") == 0 ||
                   strcmp(a, "--output") == 0 || strcmp(a, "--user") == 0) {
            if (++i >= argc || !argv[i][0])
                return bad_usage("%s needs a value", a);
            if (strcmp(a, "--host") == 0)
                c.only_host = argv[i];
            else if (strcmp(a, "--dir") == 0)
                dir = argv[i];
            else if (strcmp(a, "--output") == 0)
                output = argv[i];
            else
                user = argv[i];
        } else if (strcmp(a, "-n") == 0) {
            char *end;
            if (++i >= argc)
                return bad_usage("-n needs a number%s", "");
            lines = strtol(argv[i], &end, 10);
            if (*end || lines < 0)
                return bad_usage("-n needs a number, not '%s'", argv[i]);
        } else if (a[0] == '-' && a[1]) {
            return bad_usage("unknown option '%s'", a);
        } else if (!command) {
            command = a;
        } else if (npos < 2) {
            pos[npos++] = a;
        } else {
            return bad_usage("too many arguments at '%s'", a);
        }
    }
    if (!command) {
        usage(stderr);
        return EX_USAGE;
    }

    static const struct {
        const char *name;
        int min, max;           /* positional arguments */
    } cmds[] = {{"start", 0, 1}, {"stop", 0, 1}, {"restart", 1, 1},
                {"status", 0, 1}, {"reload", 0, 0}, {"logs", 0, 1},
                {"check", 0, 0}, {"graph", 0, 0}, {"send", 1, 1},
                {"export", 1, 1}, {"secret", 1, 2}};
    int known = -1;
    for (size_t k = 0; k < sizeof cmds / sizeof *cmds; k++)
        if (strcmp(command, cmds[k].name) == 0)
            known = (int)k;
    if (known < 0)
        return bad_usage("unknown command '%s'", command);
    if (npos < cmds[known].min || npos > cmds[known].max)
        return bad_usage("wrong number of arguments for %s", command);
    if (strcmp(command, "send") == 0 && line[0] == '\0')
        return bad_usage("send needs a NODE and a LINE%s", "");
    if ((json && strcmp(command, "status")) ||
        (follow && strcmp(command, "logs")) ||
        (foreground && strcmp(command, "start")) ||
        (dry && strcmp(command, "reload")) ||
        (c.only_host && strcmp(command, "start") && strcmp(command, "export")) ||
        ((dir || output || user) && strcmp(command, "export")) ||
        (c.only_host && strcmp(command, "start") == 0 && pos[0]))
        return bad_usage("that option does not go with %s", command);
    if (strcmp(command, "export") == 0 && strcmp(pos[0], "systemd") != 0)
        return bad_usage("export knows only systemd, not '%s'", pos[0]);
    if (output && strcmp(output, "journal") && strcmp(output, "file"))
        return bad_usage("--output is journal or file, not '%s'", output);

    if (config_load(c.config_path, &c.cfg, err, sizeof err) < 0) {
        /* Looking at or stopping a running herd must not depend on the
         * file being valid right now; changing it must. */
        int tolerant = strcmp(command, "status") == 0 ||
                       strcmp(command, "stop") == 0 ||
                       strcmp(command, "restart") == 0 ||
                       (strcmp(command, "logs") == 0 && !pos[0]) ||
                       strcmp(command, "graph") == 0;
        if (tolerant && fallback_config(c.config_path, &c.cfg) == 0) {
            fprintf(stderr, "herdctl: warning: %s (the running herd keeps "
                    "its last good configuration)\n", err);
            goto loaded;
        }
        config_free(&c.cfg);
        fprintf(stderr, "herdctl: %s\n", err);
        if (strcmp(command, "check") == 0)
            fprintf(stderr, "herdctl: %s: test failed\n", c.config_path);
        return EX_USAGE;
    }
loaded:
    c.sock_path = config_run_path(&c.cfg, "supervisor.sock");
    c.tty = isatty(1);

    if (strcmp(command, "start") == 0)
        rc = cmd_start(&c, pos[0], foreground);
    else if (strcmp(command, "stop") == 0)
        rc = cmd_stop(&c, pos[0]);
    else if (strcmp(command, "restart") == 0)
        rc = cmd_restart(&c, pos[0]);
    else if (strcmp(command, "status") == 0)
        rc = cmd_status(&c, pos[0], json);
    else if (strcmp(command, "reload") == 0)
        rc = cmd_reload(&c, dry);
    else if (strcmp(command, "logs") == 0)
        rc = cmd_logs(&c, pos[0], follow, lines);
    else if (strcmp(command, "check") == 0)
        rc = cmd_check(&c);
    else if (strcmp(command, "graph") == 0)
        rc = cmd_graph(&c);
    else if (strcmp(command, "export") == 0)
        rc = cmd_export(&c, pos[0], dir, output, user);
    else if (strcmp(command, "secret") == 0)
        rc = cmd_secret(&c, pos[0], pos[1]);
    else
        rc = cmd_send(&c, pos[0], line);
    free(c.sock_path);
    config_free(&c.cfg);
    return rc;
}
