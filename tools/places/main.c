/* herd-places: an offline emulator of Google's Places Nearby Search, the
 * legacy GET endpoint and the new POST one, answering from the GeoNames
 * cities data set.  See usage() for options and exit codes. */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <getopt.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/rlimit.h"
#include "common/config.h"
#include "common/fsutil.h"
#include "common/log.h"
#include "places.h"
#include "selftest.h"
#include "server.h"

/* Exit codes, as s6 tools use them. */
#define EXIT_OK 0               /* served and stopped by SIGTERM/SIGINT */
#define EXIT_SELFTEST 1         /* --selftest found a mismatch */
#define EXIT_USAGE 100          /* bad option, herd.ini, key or data file */
#define EXIT_SYSTEM 111         /* cannot read, bind, allocate */

#define DEFAULT_PORT 12999
#define DEFAULT_DATA "data/places.tsv"
#define DEFAULT_KEY_ENV "GOOGLE_PLACES_API_KEY"
#define LATENCY_MAX_MS 600000

static const char usage_text[] =
    "usage: herd-places [-c herd.ini] [-p PORT] [-d DATAFILE] [-l LOGFILE]\n"
    "                   [--key-env NAME | --require-key] [--latency-ms N]\n"
    "                   [--force-status STATUS]\n"
    "       herd-places [-d DATAFILE] --selftest N | --bench N\n"
    "\n"
    "Serves Google Places Nearby Search on 127.0.0.1:PORT from GeoNames data:\n"
    "  GET  /maps/api/place/nearbysearch/json?location=LAT,LNG&radius=M\n"
    "  POST /v1/places:searchNearby   (X-Goog-FieldMask required)\n"
    "\n"
    "  -c FILE            herd.ini: [places] port, key_env and data, [herd]\n"
    "                     log_dir\n"
    "  -p PORT            listen port (default: [places] port, else 12999;\n"
    "                     0 = any free port, printed on stdout)\n"
    "  -d FILE            data file (written by scripts/places-data.sh; default\n"
    "                     [places] data, else data/places.tsv in the project\n"
    "                     this binary was built in: the directory above its\n"
    "                     bin/, or above build/ for build/MODE/bin/)\n"
    "  -l FILE            log file (default: LOG_DIR/places.log with -c,\n"
    "                     else standard error)\n"
    "  --key-env NAME     require the API key held in environment variable NAME\n"
    "  --require-key      the same, NAME being [places] key_env\n"
    "                     (default GOOGLE_PLACES_API_KEY)\n"
    "  --latency-ms N     answer every request N ms late (others go on)\n"
    "  --force-status S   answer every request with S: ZERO_RESULTS,\n"
    "                     INVALID_REQUEST, REQUEST_DENIED, OVER_QUERY_LIMIT,\n"
    "                     UNKNOWN_ERROR, or an HTTP code 400-599\n"
    "  --selftest N       check the spatial index against a full scan on N\n"
    "                     random queries, then exit\n"
    "  --bench N          time N queries at 5 km and 50 km, then exit\n"
    "\n"
    "Exit codes: 0 stopped by SIGTERM or SIGINT (or --selftest passed),\n"
    "1 --selftest found a mismatch, 100 usage, herd.ini, key or data file\n"
    "error, 111 system failure (read, bind, memory).\n";

enum {
    OPT_KEY_ENV = 256,
    OPT_REQUIRE_KEY,
    OPT_LATENCY,
    OPT_FORCE,
    OPT_SELFTEST,
    OPT_BENCH,
};

struct options {
    const char *config;
    const char *data;
    const char *log;
    const char *key_env;
    int require_key;
    long port;                  /* -1: from herd.ini or the default */
    unsigned latency_ms;
    enum places_force force;
    unsigned force_http;
    const char *force_text;
    unsigned long selftest, bench;
};

/* Set once the log goes to a file; until then (and when the log is
 * standard error) die() has said it all on standard error already. */
static int log_to_file;

static void vfatal(const char *fmt, va_list ap)
{
    char msg[1024];

    vsnprintf(msg, sizeof msg, fmt, ap);
    fprintf(stderr, "herd-places: fatal: %s\n", msg);
    if (log_to_file)
        server_log(1, "fatal: %s", msg);
}

/* Say what went wrong, for a caller that returns to main() to exit. */
static void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void fatal(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vfatal(fmt, ap);
    va_end(ap);
}

static void die(int code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), noreturn));

static void die(int code, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vfatal(fmt, ap);
    va_end(ap);
    log_close();
    exit(code);
}

static int parse_ulong(const char *s, unsigned long max, unsigned long *out)
{
    char *end;
    unsigned long v;

    if (*s < '0' || *s > '9')
        return -1;
    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno || *end || v > max)
        return -1;
    *out = v;
    return 0;
}

static void parse_options(int argc, char **argv, struct options *o)
{
    static const struct option longs[] = {
        {"key-env", required_argument, NULL, OPT_KEY_ENV},
        {"require-key", no_argument, NULL, OPT_REQUIRE_KEY},
        {"latency-ms", required_argument, NULL, OPT_LATENCY},
        {"force-status", required_argument, NULL, OPT_FORCE},
        {"selftest", required_argument, NULL, OPT_SELFTEST},
        {"bench", required_argument, NULL, OPT_BENCH},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    unsigned long v;
    int c;

    memset(o, 0, sizeof *o);
    o->port = -1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":c:p:d:l:h", longs, NULL)) != -1) {
        switch (c) {
        case 'c':
            o->config = optarg;
            break;
        case 'p':
            if (parse_ulong(optarg, 65535, &v) < 0)
                die(EXIT_USAGE, "bad port '%s': want 0-65535", optarg);
            o->port = (long)v;
            break;
        case 'd':
            o->data = optarg;
            break;
        case 'l':
            o->log = optarg;
            break;
        case OPT_KEY_ENV:
            if (optarg[0] == '\0')
                die(EXIT_USAGE, "--key-env wants a variable name");
            o->key_env = optarg;
            break;
        case OPT_REQUIRE_KEY:
            o->require_key = 1;
            break;
        case OPT_LATENCY:
            if (parse_ulong(optarg, LATENCY_MAX_MS, &v) < 0)
                die(EXIT_USAGE, "bad --latency-ms '%s': want 0-%d", optarg,
                    LATENCY_MAX_MS);
            o->latency_ms = (unsigned)v;
            break;
        case OPT_FORCE:
            if (places_parse_force(optarg, &o->force, &o->force_http) < 0)
                die(EXIT_USAGE, "bad --force-status '%s'", optarg);
            o->force_text = optarg;
            break;
        case OPT_SELFTEST:
        case OPT_BENCH:
            if (parse_ulong(optarg, 100000000, &v) < 0 || v == 0)
                die(EXIT_USAGE, "bad count '%s'", optarg);
            if (c == OPT_SELFTEST)
                o->selftest = v;
            else
                o->bench = v;
            break;
        case 'h':
            fputs(usage_text, stdout);
            exit(EXIT_OK);
        case ':':
            fputs(usage_text, stderr);
            die(EXIT_USAGE, "option %s wants a value", argv[optind - 1]);
        default:
            fputs(usage_text, stderr);
            die(EXIT_USAGE, "unknown option %s", argv[optind - 1]);
        }
    }
    if (optind < argc) {
        fputs(usage_text, stderr);
        die(EXIT_USAGE, "unexpected argument '%s'", argv[optind]);
    }
}

static char *join_path(const char *dir, const char *file)
{
    size_t n = strlen(dir) + strlen(file) + 2;
    char *p = malloc(n);

    if (p == NULL)
        die(EXIT_SYSTEM, "out of memory");
    snprintf(p, n, "%s/%s", dir, file);
    return p;
}

/* DEFAULT_DATA in the project this binary belongs to: PROJECT/bin/
 * herd-places (make) or PROJECT/build/MODE/bin/herd-places (the test
 * builds), so a herd.ini kept anywhere, /etc included, finds it. */
static char *project_data(void)
{
    char self[PATH_MAX], *slash;
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);

    if (n <= 0)
        return strdup(DEFAULT_DATA);
    self[n] = '\0';
    /* PROJECT/bin/herd-places -> PROJECT (or PROJECT/build/MODE). */
    for (int up = 0; up < 2; up++) {
        slash = strrchr(self, '/');
        if (!slash)
            return strdup(DEFAULT_DATA);
        *slash = '\0';
    }
    /* PROJECT/build/MODE -> PROJECT */
    slash = strrchr(self, '/');
    if (slash && slash > self) {
        *slash = '\0';
        const char *base = strrchr(self, '/');
        if (strcmp(base ? base + 1 : self, "build") == 0)
            *(char *)(base ? base : self) = '\0';
        else
            *slash = '/';
    }
    return join_path(self, DEFAULT_DATA);
}

static int listen_on(long port, int *bound_port)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t len = sizeof a;
    int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return -1;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 128) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    *bound_port = ntohs(a.sin_port);
    return fd;
}

static double seconds_since(const struct timespec *t0)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

/* Serve on 127.0.0.1:port until SIGTERM or SIGINT.  Returns the exit
 * code; main() frees what it holds. */
static int serve(struct places_ctx *ctx, long port, unsigned latency_ms,
                  const char *force_text)
{
    struct server *srv;
    sigset_t stop;
    int fd, bound_port, sig;

    /* Block the stop signals before any thread exists, so every thread
     * inherits the mask and only sigtimedwait() below sees them. */
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    fd = listen_on(port, &bound_port);
    if (fd < 0) {
        fatal("cannot listen on 127.0.0.1:%ld: %s", port, strerror(errno));
        return EXIT_SYSTEM;
    }
    srv = server_start(ctx, fd, latency_ms);
    if (srv == NULL) {
        fatal("cannot start the HTTP server: %s", strerror(errno));
        return EXIT_SYSTEM;
    }
    server_log(0, "listening on 127.0.0.1:%d (key %s, latency %u ms, "
               "forced status %s)", bound_port,
               ctx->key ? "required" : "not required", latency_ms,
               force_text ? force_text : "none");
    server_log_flush();
    printf("herd-places: listening on 127.0.0.1:%d\n", bound_port);
    fflush(stdout);

    for (;;) {
        struct timespec second = {1, 0};

        sig = sigtimedwait(&stop, NULL, &second);
        if (sig == SIGTERM || sig == SIGINT)
            break;
        server_log_flush();     /* bounds how long a line stays buffered */
    }
    server_log(0, "stopping on signal %d", sig);
    server_stop(srv);
    return EXIT_OK;
}

int main(int argc, char **argv)
{
    static struct places_ctx ctx;
    struct herd_config cfg;
    int have_cfg = 0, rc = EXIT_OK;
    struct options o;
    char *data_path = NULL, *log_path = NULL, err[1024];
    const char *key_env;
    struct timespec t0;

    /* As many descriptors as the system allows (issue 10). */
    rlimit_raise_nofile();
    parse_options(argc, argv, &o);
    if (o.config) {
        if (config_load(o.config, &cfg, err, sizeof err) < 0)
            die(EXIT_USAGE, "%s", err);
        have_cfg = 1;
    }

    /* Logging first, so everything after it is on record. */
    if (o.log && strcmp(o.log, "-") != 0) {
        log_path = strdup(o.log);
    } else if (!o.log && have_cfg && !o.selftest && !o.bench) {
        if (fs_mkdir_p(cfg.log_dir, 0755) < 0)
            die(EXIT_SYSTEM, "cannot create %s: %s", cfg.log_dir, strerror(errno));
        log_path = config_log_path(&cfg, "places");
    }
    if (log_path) {
        if (log_open(log_path, "places",
                     have_cfg ? (size_t)cfg.log_max_mb << 20 : 0,
                     have_cfg ? cfg.log_keep : 0, 0) < 0)
            die(EXIT_SYSTEM, "cannot open log %s: %s", log_path, strerror(errno));
        log_to_file = 1;
    } else if (log_open("/dev/null", "places", 0, 0, 1) < 0) {
        die(EXIT_SYSTEM, "cannot open /dev/null: %s", strerror(errno));
    }

    key_env = o.key_env;
    if (!key_env && o.require_key)
        key_env = have_cfg && cfg.places_key_env ? cfg.places_key_env
                                                 : DEFAULT_KEY_ENV;
    if (key_env) {
        ctx.key = getenv(key_env);
        if (ctx.key == NULL || ctx.key[0] == '\0')
            die(EXIT_USAGE, "a key is required but environment variable %s "
                "is unset or empty", key_env);
    }
    ctx.force = o.force;
    ctx.force_http = o.force_http;

    if (o.data)
        data_path = strdup(o.data);
    else
        data_path = have_cfg && cfg.places_data ? strdup(cfg.places_data)
                                                : project_data();
    if (data_path == NULL)
        die(EXIT_SYSTEM, "out of memory");
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (data_load(data_path, &ctx.data, err, sizeof err) < 0)
        die(errno == EINVAL ? EXIT_USAGE : EXIT_SYSTEM, "%s%s", err,
            errno == ENOENT && !o.data ? " (run make to build it)" : "");
    if (grid_build(&ctx.grid, &ctx.data) < 0)
        die(EXIT_SYSTEM, "out of memory indexing %s", data_path);
    server_log(0, "loaded %zu places from %s in %.3f s", ctx.data.n_places,
               data_path, seconds_since(&t0));

    if (o.selftest || o.bench) {
        unsigned long bad = 0;
        if (o.selftest)
            bad = selftest_run(&ctx, o.selftest, stdout);
        if (o.bench)
            selftest_bench(&ctx, o.bench, stdout);
        rc = bad ? EXIT_SELFTEST : EXIT_OK;
    } else {
        rc = serve(&ctx, o.port >= 0 ? o.port : have_cfg ? cfg.places_port : DEFAULT_PORT,
              o.latency_ms, o.force_text);
    }
    grid_free(&ctx.grid);
    data_free(&ctx.data);
    free(data_path);
    free(log_path);
    if (have_cfg)
        config_free(&cfg);
    log_close();
    return rc;
}
