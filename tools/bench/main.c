/* herd-bench: a load generator and convergence meter for Herd's client
 * protocol, which can also drive Redis through the same code path. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/rlimit.h"
#include "converge.h"
#include "hist.h"
#include "load.h"
#include "net.h"

#define EXIT_BAD_REPLIES 1
#define EXIT_USAGE 100
#define EXIT_SYSTEM 111

static const char usage_text[] =
"usage: herd-bench [load] [OPTIONS] TARGET...\n"
"       herd-bench converge [OPTIONS] ORIGIN TARGET...\n"
"\n"
"TARGET is PORT (on 127.0.0.1), HOST:PORT or [IPV6]:PORT.\n"
"\n"
"load: C connections, spread round-robin over the targets, each keeping D\n"
"requests in flight.  Requests are IAMAT (and WHATSAT, with -W) for client\n"
"ids PREFIX0 .. PREFIX(K-1), picked at random; every IAMAT carries a client\n"
"time later than the one before, so a herd floods every update.  Latency\n"
"is from the write of a request to the arrival of its whole reply.\n"
"  -c, --conns N        connections (default 50)\n"
"  -d, --depth N        requests in flight per connection (default 16)\n"
"  -k, --keys N         client ids in the key space (default 100000)\n"
"  -w, --warmup SECS    warm-up, not measured (default 1)\n"
"  -t, --time SECS      measured window (default 3); SIGTERM or SIGINT\n"
"                       ends it early, and the results are printed\n"
"  -n, --requests N     send exactly N requests, measure them all, no\n"
"                       warm-up (for instruction counts)\n"
"  -W, --whatsat PCT    percentage of WHATSAT requests (default 0); a\n"
"                       reply whose places status is not OK or\n"
"                       ZERO_RESULTS counts as an error\n"
"      --radius KM      WHATSAT radius (default 10)\n"
"      --bound N        WHATSAT bound (default 5)\n"
"      --redis          send Redis inline commands \"SET id value\" instead\n"
"                       (value: the IAMAT's location and time); expect +OK\n"
"      --prefix TEXT    client id prefix (default \"b\")\n"
"      --seed N         random seed (default fixed)\n"
"      --seq            ids in order (PREFIX0, PREFIX1, ...) instead of at\n"
"                       random: -n K -k K --seq sends each id once\n"
"      --rate R         send R requests/s in all, paced by a 1 ms tick,\n"
"                       instead of keeping D in flight; D still caps what\n"
"                       is in flight per connection, and requests due\n"
"                       while every connection is full wait at most\n"
"                       10 ms, then are dropped and counted as skipped\n"
"\n"
"converge: for each sample, one IAMAT for a fresh id to ORIGIN; as soon as\n"
"its reply arrives, every TARGET is probed with \"WHATSAT id 1 1\", one\n"
"probe in flight per target, until it answers with the AT line of that\n"
"update instead of \"? \".  A target applied the update after its last\n"
"\"? \" probe was sent (lower bound) and before its first AT line arrived\n"
"(upper bound); a sample's convergence is the largest over the targets.\n"
"Needs places that fail fast (e.g. an url where nothing listens).\n"
"  -n, --samples N      samples (default 200)\n"
"  -g, --gap MS         idle time between samples (default 5)\n"
"      --timeout MS     a sample must converge within this (default 2000)\n"
"      --prefix TEXT    id prefix (default \"cv-PID-TIME-\")\n"
"      --no-probe       only send the IAMATs, one per sample, and let the\n"
"                       nodes' logs tell when each applied it (TARGETs may\n"
"                       then be left out)\n"
"\n"
"both:\n"
"  -j, --json           one JSON object on stdout instead of text\n"
"  -h, --help           this text\n"
"\n"
"Exit: 0 ok; 1 finished, but some replies were errors (\"? \", \"-ERR\")\n"
"or connections were lost; 100 usage; 111 system failure (cannot connect,\n"
"no memory, convergence not reached in time).\n";

static void usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "herd-bench: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nTry 'herd-bench --help'.\n");
    exit(EXIT_USAGE);
}

static long parse_long(const char *s, long min, long max, const char *what)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || *s == '\0' || *end != '\0' || v < min || v > max)
        usage_error("bad %s", what);
    return v;
}

static double parse_double(const char *s, double min, double max,
                           const char *what)
{
    char *end;
    double v;

    errno = 0;
    v = strtod(s, &end);
    if (errno || *s == '\0' || *end != '\0' || !(v >= min) || !(v <= max))
        usage_error("bad %s", what);
    return v;
}

static struct bench_target *parse_targets(int n, char **args)
{
    struct bench_target *t = calloc((size_t)n, sizeof *t);
    char err[400];

    if (t == NULL) {
        fprintf(stderr, "herd-bench: fatal: out of memory\n");
        exit(EXIT_SYSTEM);
    }
    for (int i = 0; i < n; i++) {
        if (net_parse_target(args[i], &t[i], err, sizeof err) < 0)
            usage_error("%s", err);
    }
    return t;
}

static void json_hist_us(const char *name, const struct hist *h, int comma)
{
    printf("\"%s\":{\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,\"p999\":%.1f,"
           "\"max\":%.1f,\"mean\":%.1f,\"count\":%llu}%s",
           name, hist_percentile(h, 50) / 1e3, hist_percentile(h, 90) / 1e3,
           hist_percentile(h, 99) / 1e3, hist_percentile(h, 99.9) / 1e3,
           h->max / 1e3, hist_mean(h) / 1e3, (unsigned long long)h->count,
           comma ? "," : "");
}

static void text_hist_us(const char *name, const struct hist *h)
{
    printf("%s (us): p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f  "
           "mean %.1f\n", name,
           hist_percentile(h, 50) / 1e3, hist_percentile(h, 90) / 1e3,
           hist_percentile(h, 99) / 1e3, hist_percentile(h, 99.9) / 1e3,
           h->max / 1e3, hist_mean(h) / 1e3);
}

static void json_string(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            printf("\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            printf("\\u%04x", *s);
        else
            putchar(*s);
    }
    putchar('"');
}

static int main_load(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"conns", required_argument, NULL, 'c'},
        {"depth", required_argument, NULL, 'd'},
        {"keys", required_argument, NULL, 'k'},
        {"warmup", required_argument, NULL, 'w'},
        {"time", required_argument, NULL, 't'},
        {"requests", required_argument, NULL, 'n'},
        {"whatsat", required_argument, NULL, 'W'},
        {"radius", required_argument, NULL, 'R'},
        {"bound", required_argument, NULL, 'B'},
        {"redis", no_argument, NULL, 'r'},
        {"prefix", required_argument, NULL, 'P'},
        {"seed", required_argument, NULL, 'S'},
        {"seq", no_argument, NULL, 'Q'},
        {"rate", required_argument, NULL, 'A'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct load_opts o = {
        .conns = 50, .depth = 16, .keys = 100000, .warmup_s = 1,
        .duration_s = 3, .radius = "10", .bound = "5", .prefix = "b",
    };
    struct load_result *r;
    int json = 0, opt;
    char err[512];

    while ((opt = getopt_long(argc, argv, "c:d:k:w:t:n:W:jh", longopts,
                              NULL)) != -1) {
        switch (opt) {
        case 'c': o.conns = (int)parse_long(optarg, 1, 100000, "connections"); break;
        case 'd': o.depth = (int)parse_long(optarg, 1, 100000, "depth"); break;
        case 'k': o.keys = (uint32_t)parse_long(optarg, 1, 1000000000, "key space"); break;
        case 'w': o.warmup_s = parse_double(optarg, 0, 3600, "warm-up"); break;
        case 't': o.duration_s = parse_double(optarg, 0.001, 3600, "time"); break;
        case 'n': o.total = (uint64_t)parse_long(optarg, 1, 1000000000000L, "request count"); break;
        case 'W': o.whatsat_pct = (int)parse_long(optarg, 0, 100, "WHATSAT percentage"); break;
        case 'R':
            parse_double(optarg, 0, 1e9, "radius");
            o.radius = optarg;
            break;
        case 'B':
            parse_long(optarg, 0, 1000000, "bound");
            o.bound = optarg;
            break;
        case 'r': o.redis = 1; break;
        case 'P':
            if (strlen(optarg) > 100 || strpbrk(optarg, " \t\r\n\v\f"))
                usage_error("bad prefix: %s", optarg);
            o.prefix = optarg;
            break;
        case 'S': o.seed = (uint64_t)parse_long(optarg, 0, __LONG_MAX__, "seed"); break;
        case 'Q': o.seq = 1; break;
        case 'A': o.rate = parse_double(optarg, 1, 1e9, "rate"); break;
        case 'j': json = 1; break;
        case 'h': fputs(usage_text, stdout); return 0;
        default: usage_error("%s", "bad option");
        }
    }
    if (optind >= argc)
        usage_error("%s", "no target given");
    if (o.redis && o.whatsat_pct > 0)
        usage_error("%s", "--redis and --whatsat do not mix");
    o.n_targets = argc - optind;
    o.targets = parse_targets(o.n_targets, argv + optind);

    r = malloc(sizeof *r);
    if (r == NULL) {
        fprintf(stderr, "herd-bench: fatal: out of memory\n");
        return EXIT_SYSTEM;
    }
    if (load_run(&o, r, err, sizeof err) < 0) {
        fprintf(stderr, "herd-bench: fatal: %s\n", err);
        return EXIT_SYSTEM;
    }
    {
        double rps = r->elapsed_s > 0 ? r->replies / r->elapsed_s : 0;
        const char *mode = o.redis ? "redis-set" : "herd";

        if (json) {
            printf("{\"mode\":\"%s\",\"targets\":[", mode);
            for (int i = 0; i < o.n_targets; i++) {
                if (i)
                    putchar(',');
                json_string(o.targets[i].text);
            }
            printf("],\"conns\":%d,\"depth\":%d,\"keys\":%u,"
                   "\"whatsat_pct\":%d,\"warmup_s\":%g,\"elapsed_s\":%.6f,"
                   "\"replies\":%llu,\"ok\":%llu,\"bad\":%llu,"
                   "\"iamat\":%llu,\"whatsat\":%llu,\"rps\":%.1f,"
                   "\"bytes_in\":%llu,\"bytes_out\":%llu,"
                   "\"conns_lost\":%d,\"rate\":%.1f,\"skipped\":%llu,",
                   o.conns, o.depth, o.keys, o.whatsat_pct,
                   o.total ? 0.0 : o.warmup_s, r->elapsed_s,
                   (unsigned long long)r->replies, (unsigned long long)r->ok,
                   (unsigned long long)r->bad, (unsigned long long)r->iamat,
                   (unsigned long long)r->whatsat, rps,
                   (unsigned long long)r->bytes_in,
                   (unsigned long long)r->bytes_out, r->conns_lost, o.rate,
                   (unsigned long long)r->skipped);
            json_hist_us("latency_us", &r->lat, 0);
            printf("}\n");
        } else {
            printf("%s: %d target(s), C=%d D=%d K=%u", mode, o.n_targets,
                   o.conns, o.depth, o.keys);
            if (!o.redis)
                printf(" WHATSAT=%d%%", o.whatsat_pct);
            if (o.rate > 0)
                printf(" rate=%.0f/s", o.rate);
            printf("\n%llu replies in %.3f s: %.0f requests/s\n",
                   (unsigned long long)r->replies, r->elapsed_s, rps);
            text_hist_us("latency", &r->lat);
            printf("ok %llu  bad %llu  connections lost %d",
                   (unsigned long long)r->ok, (unsigned long long)r->bad,
                   r->conns_lost);
            if (o.rate > 0)
                printf("  skipped (paced, no free slot) %llu",
                       (unsigned long long)r->skipped);
            putchar('\n');
        }
    }
    {
        int bad = r->bad > 0 || r->conns_lost > 0;
        free(r);
        free(o.targets);
        return bad ? EXIT_BAD_REPLIES : 0;
    }
}

static int main_converge(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"samples", required_argument, NULL, 'n'},
        {"gap", required_argument, NULL, 'g'},
        {"timeout", required_argument, NULL, 'T'},
        {"prefix", required_argument, NULL, 'P'},
        {"no-probe", no_argument, NULL, 'N'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct conv_opts o = {.samples = 200, .gap_s = 0.005, .timeout_s = 2,
                          .probe = 1};
    struct conv_result r;
    char prefix[64], err[1200];
    int json = 0, opt;

    snprintf(prefix, sizeof prefix, "cv-%ld-%ld-", (long)getpid(),
             (long)time(NULL));
    o.prefix = prefix;
    while ((opt = getopt_long(argc, argv, "n:g:jh", longopts, NULL)) != -1) {
        switch (opt) {
        case 'n': o.samples = (int)parse_long(optarg, 1, 10000000, "sample count"); break;
        case 'g': o.gap_s = parse_double(optarg, 0, 60000, "gap") / 1e3; break;
        case 'T': o.timeout_s = parse_double(optarg, 1, 600000, "timeout") / 1e3; break;
        case 'P':
            if (strlen(optarg) > 100 || strpbrk(optarg, " \t\r\n\v\f"))
                usage_error("bad prefix: %s", optarg);
            o.prefix = optarg;
            break;
        case 'N': o.probe = 0; break;
        case 'j': json = 1; break;
        case 'h': fputs(usage_text, stdout); return 0;
        default: usage_error("%s", "bad option");
        }
    }
    if (argc - optind < (o.probe ? 2 : 1))
        usage_error("%s", "converge needs ORIGIN and at least one TARGET");
    if (argc - optind - 1 > CONV_MAX_TARGETS)
        usage_error("%s", "too many targets");
    o.origin = parse_targets(1, argv + optind);
    o.n_targets = argc - optind - 1;
    o.targets = parse_targets(o.n_targets, argv + optind + 1);

    if (conv_run(&o, &r, err, sizeof err) < 0) {
        fprintf(stderr, "herd-bench: fatal: %s\n", err);
        conv_result_free(&r);
        return EXIT_SYSTEM;
    }
    if (json) {
        printf("{\"mode\":\"converge\",\"origin\":");
        json_string(o.origin->text);
        printf(",\"prefix\":");
        json_string(o.prefix);
        printf(",\"probe\":%s,\"samples\":%d,\"probes\":%llu,"
               "\"gap_ms\":%g,", o.probe ? "true" : "false", r.samples,
               (unsigned long long)r.probes, o.gap_s * 1e3);
        json_hist_us("upper_us", &r.upper, 1);
        json_hist_us("lower_us", &r.lower, 1);
        json_hist_us("origin_rtt_us", &r.origin_rtt, 1);
        printf("\"per_target_upper_us\":{");
        for (int i = 0; i < o.n_targets; i++) {
            json_string(o.targets[i].text);
            putchar(':');
            printf("{\"p50\":%.1f,\"p99\":%.1f,\"max\":%.1f}%s",
                   hist_percentile(&r.per_target_upper[i], 50) / 1e3,
                   hist_percentile(&r.per_target_upper[i], 99) / 1e3,
                   r.per_target_upper[i].max / 1e3,
                   i + 1 < o.n_targets ? "," : "");
        }
        printf("}}\n");
    } else {
        printf("converge: origin %s, %d target(s), %d samples, %llu probes\n",
               o.origin->text, o.n_targets, r.samples,
               (unsigned long long)r.probes);
        text_hist_us("convergence, upper bound", &r.upper);
        text_hist_us("convergence, lower bound", &r.lower);
        text_hist_us("IAMAT round trip at origin", &r.origin_rtt);
        for (int i = 0; i < o.n_targets; i++) {
            char name[340];
            snprintf(name, sizeof name, "  %s upper", o.targets[i].text);
            text_hist_us(name, &r.per_target_upper[i]);
        }
    }
    conv_result_free(&r);
    free(o.origin);
    free(o.targets);
    return 0;
}

int main(int argc, char **argv)
{
    /* Many connections at once: as many descriptors as allowed. */
    rlimit_raise_nofile();
    if (argc > 1 && strcmp(argv[1], "converge") == 0)
        return main_converge(argc - 1, argv + 1);
    if (argc > 1 && strcmp(argv[1], "load") == 0)
        return main_load(argc - 1, argv + 1);
    return main_load(argc, argv);
}
