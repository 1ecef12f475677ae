/* config: herd.ini, every mistake refused as "PATH:LINE: message", and
 * the good cases (the repo's default herd, relative paths, links). */
#include "tests/unit/unit.h"

#include "common/config.h"

/* Each test gets a private directory holding its herd.ini. */
struct fixture {
    char *dir;
    char *path;                 /* dir/herd.ini */
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);

    if (!f)
        return -1;
    f->dir = unit_tempdir();
    f->path = unit_path(f->dir, "herd.ini");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    unit_rmtree(f->dir);
    free(f->path);
    free(f);
    return 0;
}

/* Write text as the fixture's herd.ini and load it. */
static int load(struct fixture *f, const char *text, struct herd_config *c,
                char *err, size_t errlen)
{
    unit_write(f->path, text, strlen(text));
    return config_load(f->path, c, err, errlen);
}

/* The file must be refused with exactly "PATH:LINE: message". */
static void refused(void **state, const char *text, int line,
                    const char *message)
{
    struct fixture *f = *state;
    struct herd_config c;
    char err[1024], want[1024];

    snprintf(want, sizeof want, "%s:%d: %s", f->path, line, message);
    err[0] = '\0';
    if (load(f, text, &c, err, sizeof err) != -1)
        fail_msg("accepted:\n%s", text);
    if (strcmp(err, want) != 0)
        fail_msg("for:\n%s\ngot:  \"%s\"\nwant: \"%s\"", text, err, want);
    /* A refused load leaves nothing to free. */
    assert_null(c.nodes);
    assert_null(c.path);
    config_free(&c);
}

static void accepted(void **state, const char *text, struct herd_config *c)
{
    struct fixture *f = *state;
    char err[1024] = "";

    if (load(f, text, c, err, sizeof err) != 0)
        fail_msg("refused: %s\nfor:\n%s", err, text);
}

#define ONE_NODE "[node A]\nport = 13000\n"

/* ---- mistakes ---------------------------------------------------------- */

static void test_unknown_section(void **state)
{
    refused(state, "[herd]\n[bogus]\nx = 1\n" ONE_NODE, 2,
            "unknown section [bogus]");
    /* Even with no keys under it. */
    refused(state, ONE_NODE "[bogus]\n", 3, "unknown section [bogus]");
    refused(state, ONE_NODE "[Herd]\nlog_dir = x\n", 3,
            "unknown section [Herd]");
    refused(state, ONE_NODE "[nodes A]\n", 3, "unknown section [nodes A]");
    refused(state, ONE_NODE "[node]\n", 3, "unknown section [node]");
}

/* The one name rule, which herd.ini and the peer protocol share. */
static void test_name_valid(void **state)
{
    char name[CONFIG_NAME_MAX + 1];

    (void)state;
    for (int c = 0; c < 256; c++) {
        char one = (char)c;
        int want = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                   (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
        if (config_name_valid(&one, 1) != want)
            fail_msg("config_name_valid(0x%02x) = %d", c, !want);
    }
    memset(name, 'n', sizeof name);
    assert_false(config_name_valid(name, 0));
    assert_true(config_name_valid(name, CONFIG_NAME_MAX));
    assert_false(config_name_valid(name, CONFIG_NAME_MAX + 1));
    /* Only len bytes count; a NUL inside them is refused. */
    assert_true(config_name_valid("Hill!", 4));
    assert_false(config_name_valid(LIT("Hi\0ll")));
}

static void test_bad_node_name(void **state)
{
    refused(state, "[node A!]\nport = 1\n", 1,
            "bad node name 'A!' (letters, digits, '_', '-', '.'; at most 64)");
    /* "[node ]" is trimmed to "[node]": a section with no name. */
    refused(state, "[node ]\nport = 1\n", 1, "unknown section [node]");
    refused(state, "[node A B]\nport = 1\n", 1,
            "bad node name 'A B' (letters, digits, '_', '-', '.'; at most 64)");
    refused(state,
            "[node nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn]"
            "\nport = 1\n", 1,
            "bad node name "
            "'nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn'"
            " (letters, digits, '_', '-', '.'; at most 64)");
}

static void test_unknown_key(void **state)
{
    refused(state, "[herd]\nlog_dir = l\nlogdir = x\n" ONE_NODE, 3,
            "unknown key 'logdir' in [herd]");
    refused(state, "[places]\nprovider = local\nkey = abc\n" ONE_NODE, 3,
            "unknown key 'key' in [places]");
    refused(state, ONE_NODE "neighbours = B\n", 3,
            "unknown key 'neighbours' in [node A]");
    refused(state, ONE_NODE "Port = 1\n", 3,
            "unknown key 'Port' in [node A]");
    /* A key of one section is unknown in another. */
    refused(state, "[herd]\nport = 1\n" ONE_NODE, 2,
            "unknown key 'port' in [herd]");
    refused(state, "[places]\nlog_dir = x\n" ONE_NODE, 2,
            "unknown key 'log_dir' in [places]");
    refused(state, ONE_NODE "provider = local\n", 3,
            "unknown key 'provider' in [node A]");
    refused(state, "port = 1\n" ONE_NODE, 1, "key 'port' outside any section");
}

static void test_duplicate_key(void **state)
{
    refused(state, "[herd]\nlog_dir = a\nlog_dir = b\n" ONE_NODE, 3,
            "duplicate key 'log_dir' in [herd]");
    refused(state, "[herd]\nmax_line = 300\n[places]\n[herd]\nmax_line = 400\n"
            ONE_NODE, 5, "duplicate key 'max_line' in [herd]");
    refused(state, "[places]\nprovider = local\nprovider = google\n" ONE_NODE,
            3, "duplicate key 'provider' in [places]");
    refused(state, ONE_NODE "port = 13001\n", 3,
            "duplicate key 'port' in [node A]");
    refused(state, ONE_NODE "neighbors =\nneighbors = \n", 4,
            "duplicate key 'neighbors' in [node A]");
    refused(state, ONE_NODE "host = a\nhost = b\n", 4,
            "duplicate key 'host' in [node A]");
}

static void test_duplicate_node(void **state)
{
    refused(state, ONE_NODE "[node B]\nport = 13001\n[node A]\nport = 13002\n",
            5, "duplicate node 'A'");
}

static void test_same_host_and_port(void **state)
{
    struct herd_config c;

    refused(state, ONE_NODE "[node B]\nport = 13000\n", 4,
            "node 'B' uses port 13000 on 127.0.0.1, as node 'A' does");
    refused(state, ONE_NODE "[node B]\nhost = 127.0.0.1\nport = 13000\n", 5,
            "node 'B' uses port 13000 on 127.0.0.1, as node 'A' does");
    refused(state, "[node A]\nhost = 10.0.0.1\nport = 1\n"
            "[node B]\nport = 1\nhost = 10.0.0.1\n", 5,
            "node 'B' uses port 1 on 10.0.0.1, as node 'A' does");
    /* The same port on two hosts is fine. */
    accepted(state, "[node A]\nhost = 10.0.0.1\nport = 1\n"
             "[node B]\nhost = 10.0.0.2\nport = 1\n", &c);
    assert_int_equal(c.n_nodes, 2);
    assert_string_equal(c.nodes[0].host, "10.0.0.1");
    assert_int_equal(c.nodes[0].host_set, 1);
    config_free(&c);
    /* A node on the local emulator's port. */
    refused(state, "[node A]\nport = 12999\n", 2,
            "node 'A' uses port 12999, the places emulator's port");
    refused(state, "[places]\nport = 13000\n" ONE_NODE, 4,
            "node 'A' uses port 13000, the places emulator's port");
    accepted(state, "[places]\nprovider = google\n[node A]\nport = 12999\n",
             &c);
    config_free(&c);
}

static void test_neighbours(void **state)
{
    refused(state, ONE_NODE "neighbors = Z\n", 3,
            "node 'A' names neighbour 'Z', which does not exist");
    refused(state, ONE_NODE "neighbors = a\n", 3,
            "node 'A' names neighbour 'a', which does not exist");
    refused(state, "[node A]\nport = 1\nneighbors = B\n"
            "[node B]\nport = 2\nneighbors = A C\n", 6,
            "node 'B' names neighbour 'C', which does not exist");
    refused(state, ONE_NODE "neighbors = A\n", 3, "node 'A' links to itself");
    refused(state, "[node A]\nport = 1\n[node B]\nneighbors = C B A\nport = 2\n"
            "[node C]\nport = 3\n", 4, "node 'B' links to itself");
}

static void test_bad_numbers(void **state)
{
    static const char *bad_port[] = {"-1", "+1", "abc", "", "0", "65536",
                                     "99999999999999999999999", "12 000",
                                     "0x10", "1.0", "1e3", "13000a", "٣"};
    char text[256], msg[256];

    for (size_t i = 0; i < sizeof bad_port / sizeof bad_port[0]; i++) {
        snprintf(text, sizeof text, "[node A]\nport = %s\n", bad_port[i]);
        snprintf(msg, sizeof msg,
                 "port must be a whole number from 1 to 65535, not '%s'",
                 bad_port[i]);
        refused(state, text, 2, msg);
    }
    refused(state, "[places]\nport = 70000\n" ONE_NODE, 2,
            "port must be a whole number from 1 to 65535, not '70000'");
    refused(state, "[places]\ntimeout_ms = 0\n" ONE_NODE, 2,
            "timeout_ms must be a whole number from 1 to 600000, not '0'");
    refused(state, "[places]\ntimeout_ms = 600001\n" ONE_NODE, 2,
            "timeout_ms must be a whole number from 1 to 600000, not '600001'");
    refused(state, "[places]\ntimeout_ms = -5\n" ONE_NODE, 2,
            "timeout_ms must be a whole number from 1 to 600000, not '-5'");
    refused(state, "[herd]\nlog_max_mb = 1048577\n" ONE_NODE, 2,
            "log_max_mb must be a whole number from 0 to 1048576, not "
            "'1048577'");
    refused(state, "[herd]\ncatchup_backlog_mb = 1048577\n" ONE_NODE, 2,
            "catchup_backlog_mb must be a whole number from 0 to 1048576, not "
            "'1048577'");
    refused(state, "[herd]\nlog_keep = many\n" ONE_NODE, 2,
            "log_keep must be a whole number from 0 to 1000, not 'many'");
    refused(state, "[herd]\nstop_grace_s = 3601\n" ONE_NODE, 2,
            "stop_grace_s must be a whole number from 0 to 3600, not '3601'");
    refused(state, "[herd]\nmax_clients = 0\n" ONE_NODE, 2,
            "max_clients must be a whole number from 1 to 1000000, not '0'");
    refused(state, "[herd]\nmax_line = 255\n" ONE_NODE, 2,
            "max_line must be a whole number from 256 to 1048576, not '255'");
    refused(state, "[herd]\nidle_timeout_s = \n" ONE_NODE, 2,
            "idle_timeout_s must be a whole number from 1 to 86400, not ''");
    refused(state, "[herd]\nmax_output_kb = 63\n" ONE_NODE, 2,
            "max_output_kb must be a whole number from 64 to 1048576, not "
            "'63'");
    refused(state, "[herd]\nmax_output_kb = 18446744073709551617\n" ONE_NODE, 2,
            "max_output_kb must be a whole number from 64 to 1048576, not "
            "'18446744073709551617'");
    refused(state, "[herd]\nmax_records = -1\n" ONE_NODE, 2,
            "max_records must be a whole number from 0 to 1000000000, not "
            "'-1'");
    refused(state, "[herd]\nmax_records = 1000000001\n" ONE_NODE, 2,
            "max_records must be a whole number from 0 to 1000000000, not "
            "'1000000001'");
    refused(state, "[herd]\nmax_records = 10k\n" ONE_NODE, 2,
            "max_records must be a whole number from 0 to 1000000000, not "
            "'10k'");
    refused(state, "[herd]\nlog_dir = x\nmax_records = 1\nmax_records = 2\n"
            ONE_NODE, 4, "duplicate key 'max_records' in [herd]");
    refused(state, "[herd]\nmax_clock_ahead_s = 315360001\n" ONE_NODE, 2,
            "max_clock_ahead_s must be a whole number from 0 to 315360000, "
            "not '315360001'");
    refused(state, "[herd]\nmax_clock_ahead_s = 1.5\n" ONE_NODE, 2,
            "max_clock_ahead_s must be a whole number from 0 to 315360000, "
            "not '1.5'");
    refused(state, "[herd]\nmax_clock_ahead_s =\n" ONE_NODE, 2,
            "max_clock_ahead_s must be a whole number from 0 to 315360000, "
            "not ''");
}

static void test_bad_strings(void **state)
{
    refused(state, "[places]\nprovider = bing\n" ONE_NODE, 2,
            "provider must be local, google or google-legacy, not 'bing'");
    refused(state, "[places]\nprovider = Local\n" ONE_NODE, 2,
            "provider must be local, google or google-legacy, not 'Local'");
    refused(state, "[places]\nprovider =\n" ONE_NODE, 2,
            "provider must be local, google or google-legacy, not ''");
    refused(state, "[places]\nprovider = google_legacy\n" ONE_NODE, 2,
            "provider must be local, google or google-legacy, not "
            "'google_legacy'");
    refused(state, "[places]\nurl = ftp://x\n" ONE_NODE, 2,
            "url must start with http:// or https://");
    refused(state, "[places]\nurl = http://a b\n" ONE_NODE, 2,
            "url is too long or holds a space or quote");
    refused(state, "[places]\nkey_env = MY KEY\n" ONE_NODE, 2,
            "key_env must be an environment variable name");
    refused(state, ONE_NODE "host = a/b\n", 3,
            "host must be an address or host name");
    refused(state, ONE_NODE "host =\n", 3,
            "host must be an address or host name");
    refused(state, "[herd]\nlog_dir =\n" ONE_NODE, 2, "empty path");
    refused(state, "[herd]\nrun_dir =\n" ONE_NODE, 2, "empty path");
}

static void test_syntax_error(void **state)
{
    refused(state, ONE_NODE "this is not a key\n", 3,
            "syntax error (expected [section] or key = value)");
    refused(state, "[herd\n" ONE_NODE, 1,
            "syntax error (expected [section] or key = value)");
    /* An indented line is not a continuation of the one above. */
    refused(state, "[node A]\nport = 13000\nneighbors = B\n  C\n"
            "[node B]\nport = 2\n[node C]\nport = 3\n", 4,
            "syntax error (expected [section] or key = value)");
    /* Comments and blank lines are fine, inline comments too. */
    {
        struct herd_config c;
        accepted(state, "; a comment\n# another\n\n[node A] ; the first\n"
                 "port = 13000 ; its port\n", &c);
        assert_int_equal(c.nodes[0].port, 13000);
        config_free(&c);
    }
}

static void test_line_too_long(void **state)
{
    char text[1024], name[512];
    struct herd_config c;
    struct fixture *f = *state;
    char err[1024];
    int n;

    /* inih reads lines of up to 198 characters (its 200-byte buffer less
     * the newline and NUL); longer ones would be cut and misread. */
    memset(name, 'x', sizeof name);
    n = snprintf(text, sizeof text,
                 "[herd]\nlog_dir = %.*s\n" ONE_NODE, 198 - 10, name);
    assert_true(n > 0);
    accepted(state, text, &c);
    assert_int_equal(strlen(c.log_dir), strlen(c.dir) + 1 + 188);
    config_free(&c);
    snprintf(text, sizeof text, "[herd]\nlog_dir = %.*s\n" ONE_NODE,
             199 - 10, name);
    refused(state, text, 2, "line too long (at most 198 characters)");
    snprintf(text, sizeof text, ONE_NODE "; %.*s\n", 500, name);
    refused(state, text, 3, "line too long (at most 198 characters)");
    /* The longest line as the last one, with no newline after it. */
    snprintf(text, sizeof text, ONE_NODE "host = %.*s", 198 - 7, name);
    err[0] = '\0';
    assert_int_equal(load(f, text, &c, err, sizeof err), 0);
    config_free(&c);
}

static void test_no_nodes(void **state)
{
    refused(state, "", 1, "no [node NAME] section");
    refused(state, "[herd]\nlog_dir = l\n\n", 3, "no [node NAME] section");
}

static void test_node_without_port(void **state)
{
    refused(state, "[node A]\nneighbors =\n", 1, "node 'A' has no port");
    refused(state, ONE_NODE "\n[node B]\n[node C]\nport = 3\n", 4,
            "node 'B' has no port");
}

static void test_first_mistake_wins(void **state)
{
    refused(state, "[herd]\nbogus = 1\n[nope]\n" ONE_NODE, 2,
            "unknown key 'bogus' in [herd]");
    refused(state, "[nope]\nx = 1\n[herd]\nbogus = 1\n" ONE_NODE, 1,
            "unknown section [nope]");
    refused(state, ONE_NODE "neighbors = Z\nzzz\n", 4,
            "syntax error (expected [section] or key = value)");
}

static void test_cannot_open(void **state)
{
    struct fixture *f = *state;
    struct herd_config c;
    char err[1024], want[1024], *missing = unit_path(f->dir, "none.ini");

    snprintf(want, sizeof want, "%s: cannot open: No such file or directory",
             missing);
    assert_int_equal(config_load(missing, &c, err, sizeof err), -1);
    assert_string_equal(err, want);
    free(missing);
}

/* ---- good files -------------------------------------------------------- */

/* True when b (an index) is among node a's neighbours. */
static int linked(const struct herd_config *c, int a, int b)
{
    const struct node_conf *n = &c->nodes[a];

    for (size_t i = 0; i < n->n_neighbors; i++)
        if (n->neighbors[i] == b)
            return 1;
    return 0;
}

static void assert_neighbors(const struct herd_config *c, const char *name,
                             const char *const *want, size_t n)
{
    int i = config_find_node(c, name);

    assert_true(i >= 0);
    assert_int_equal(c->nodes[i].n_neighbors, n);
    for (size_t k = 0; k < n; k++) {
        int j = config_find_node(c, want[k]);
        assert_int_equal(c->nodes[i].neighbors[k], j);
        assert_true(linked(c, i, j));
        assert_true(linked(c, j, i));
    }
    for (size_t k = 1; k < n; k++)
        assert_true(c->nodes[i].neighbors[k - 1] < c->nodes[i].neighbors[k]);
}

static void test_default_herd(void **state)
{
    struct herd_config c;
    char err[1024] = "", cwd[PATH_MAX], want[PATH_MAX + 64];
    static const char *const names[] = {"Hill", "Jaquez", "Smith",
                                        "Singleton", "Campbell"};
    /* SPEC.md's table, neighbours in file (index) order. */
    static const char *const hill[] = {"Jaquez", "Smith"};
    static const char *const jaquez[] = {"Hill", "Singleton"};
    static const char *const smith[] = {"Hill", "Singleton", "Campbell"};
    static const char *const singleton[] = {"Jaquez", "Smith", "Campbell"};
    static const char *const campbell[] = {"Smith", "Singleton"};
    char *p;
    size_t links = 0;

    (void)state;
    /* make runs the tests from the top of the tree. */
    if (config_load("herd.ini", &c, err, sizeof err) != 0)
        fail_msg("the repo's herd.ini: %s", err);
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_string_equal(c.path, "herd.ini");
    assert_string_equal(c.dir, cwd);
    assert_int_equal(c.n_nodes, 5);
    for (size_t i = 0; i < 5; i++) {
        assert_string_equal(c.nodes[i].name, names[i]);
        assert_int_equal(c.nodes[i].port, 12000 + (int)i);
        assert_string_equal(c.nodes[i].host, "127.0.0.1");
        assert_int_equal(c.nodes[i].host_set, 0);
        assert_int_equal(config_find_node(&c, names[i]), (int)i);
        links += c.nodes[i].n_neighbors;
        assert_false(linked(&c, (int)i, (int)i));
    }
    assert_int_equal(links, 2 * 6);             /* six edges, both ways */
    assert_neighbors(&c, "Hill", hill, 2);
    assert_neighbors(&c, "Jaquez", jaquez, 2);
    assert_neighbors(&c, "Smith", smith, 3);
    assert_neighbors(&c, "Singleton", singleton, 3);
    assert_neighbors(&c, "Campbell", campbell, 2);
    assert_false(linked(&c, 0, 3));      /* Hill - Singleton */
    assert_false(linked(&c, 0, 4));      /* Hill - Campbell */
    assert_false(linked(&c, 1, 2));      /* Jaquez - Smith */
    assert_false(linked(&c, 1, 4));      /* Jaquez - Campbell */
    assert_int_equal(config_find_node(&c, "hill"), -1);
    assert_int_equal(config_find_node(&c, "Nobody"), -1);

    /* [herd] and [places] as written, paths against the file's dir. */
    snprintf(want, sizeof want, "%s/logs", cwd);
    assert_string_equal(c.log_dir, want);
    snprintf(want, sizeof want, "%s/run", cwd);
    assert_string_equal(c.run_dir, want);
    assert_int_equal(c.provider, PLACES_LOCAL);
    assert_string_equal(config_provider_name(c.provider), "local");
    assert_int_equal(c.places_port, 12999);
    assert_null(c.places_url);
    assert_string_equal(c.places_key_env, "GOOGLE_PLACES_API_KEY");
    assert_int_equal(c.places_timeout_ms, 5000);
    p = config_places_base(&c);
    assert_string_equal(p, "http://127.0.0.1:12999");
    free(p);
    p = config_run_path(&c, "herd.sock");
    snprintf(want, sizeof want, "%s/run/herd.sock", cwd);
    assert_string_equal(p, want);
    free(p);
    p = config_log_path(&c, "Hill");
    snprintf(want, sizeof want, "%s/logs/Hill.log", cwd);
    assert_string_equal(p, want);
    free(p);
    p = config_status_path(&c, "Hill");
    snprintf(want, sizeof want, "%s/run/Hill.status", cwd);
    assert_string_equal(p, want);
    free(p);
    assert_int_equal(c.nodes[0].line, 15);      /* its [node Hill] line */
    config_free(&c);
}

/* What herdctl's fallback config starts from: config_load()'s defaults,
 * without a file. */
static void test_config_defaults_alone(void **state)
{
    struct herd_config c;

    (void)state;
    memset(&c, 0, sizeof c);
    config_defaults(&c);
    assert_int_equal(c.log_max_mb, 64);
    assert_int_equal(c.log_keep, 5);
    assert_int_equal(c.stop_grace_s, 10);
    assert_int_equal(c.max_clients, 10000);
    assert_int_equal(c.max_line, 4096);
    assert_int_equal(c.idle_timeout_s, 60);
    assert_int_equal(c.max_output_kb, 1024);
    assert_int_equal(c.catchup_backlog_mb, 64);
    assert_int_equal(c.max_records, 0);
    assert_int_equal(c.max_clock_ahead_s, 86400);
    assert_string_equal(c.http_addr, "127.0.0.1");
    assert_int_equal(c.http_port, CONFIG_HTTP_DEFAULT_PORT);
    assert_int_equal(c.fsync, FSYNC_EVERYSEC);
    assert_int_equal(c.log_replies, LOG_REPLIES_SUMMARY);
    assert_int_equal(c.provider, PLACES_LOCAL);
    assert_int_equal(c.places_port, 12999);
    assert_int_equal(c.places_timeout_ms, 5000);
    /* Paths and strings need the file's directory: left alone. */
    assert_null(c.log_dir);
    assert_null(c.places_data);
}

static void test_defaults(void **state)
{
    struct fixture *f = *state;
    struct herd_config c;
    char want[PATH_MAX + 64], *real = realpath(f->dir, NULL);

    accepted(state, ONE_NODE, &c);
    assert_non_null(real);
    assert_string_equal(c.dir, real);
    snprintf(want, sizeof want, "%s/logs", real);
    assert_string_equal(c.log_dir, want);
    snprintf(want, sizeof want, "%s/run", real);
    assert_string_equal(c.run_dir, want);
    assert_int_equal(c.log_max_mb, 64);
    assert_int_equal(c.log_keep, 5);
    assert_int_equal(c.stop_grace_s, 10);
    assert_int_equal(c.max_clients, 10000);
    assert_int_equal(c.max_line, 4096);
    assert_int_equal(c.idle_timeout_s, 60);
    assert_int_equal(c.max_output_kb, 1024);
    assert_int_equal(c.max_records, 0);
    assert_int_equal(c.max_clock_ahead_s, 86400);
    assert_int_equal(c.catchup_backlog_mb, 64);
    assert_int_equal(c.provider, PLACES_LOCAL);
    assert_int_equal(c.places_port, 12999);
    assert_int_equal(c.places_timeout_ms, 5000);
    assert_string_equal(c.places_key_env, "GOOGLE_PLACES_API_KEY");
    assert_string_equal(c.http_addr, "127.0.0.1");
    assert_int_equal(c.http_port, 12900);
    assert_int_equal(c.nodes[0].n_neighbors, 0);
    assert_null(c.nodes[0].neighbors);
    free(real);
    config_free(&c);
}

/* [herd] http: off, or a numeric address and a port; nothing else. */
static void test_http_key(void **state)
{
    static const struct { const char *value, *addr; int port; } good[] = {
        {"off", "", 0},
        {"127.0.0.1:12900", "127.0.0.1", 12900},
        {"0.0.0.0:80", "0.0.0.0", 80},
        {"10.1.2.3:65535", "10.1.2.3", 65535},
        {"[::1]:9100", "::1", 9100},
        {"[fe80::1:2]:1", "fe80::1:2", 1},
    };
    static const char *bad[] = {
        "", "on", "OFF", "127.0.0.1", "127.0.0.1:", "127.0.0.1:0",
        "127.0.0.1:65536", "127.0.0.1:80x", "127.0.0.1:-1", "localhost:80",
        "1.2.3:80", "::1:80", "[::1]", "[::1]80", "[127.0.0.1]:80",
        ":80", "[]:80", "127.0.0.1 :80", "256.0.0.1:80",
    };
    char text[512], msg[512];
    struct herd_config c;

    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        snprintf(text, sizeof text, "[herd]\nhttp = %s\n" ONE_NODE,
                 good[i].value);
        accepted(state, text, &c);
        assert_string_equal(c.http_addr, good[i].addr);
        assert_int_equal(c.http_port, good[i].port);
        config_free(&c);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(text, sizeof text, "[herd]\nhttp = %s\n" ONE_NODE, bad[i]);
        snprintf(msg, sizeof msg, "http must be off or ADDRESS:PORT (a "
                 "numeric IPv4 address, or [IPv6]:PORT; port 1 to 65535), "
                 "not '%s'", bad[i]);
        refused(state, text, 2, msg);
    }
    refused(state, "[herd]\nhttp = off\nhttp = off\n" ONE_NODE, 3,
            "duplicate key 'http' in [herd]");
    /* A node on the HTTP face's address and port. */
    refused(state, "[node A]\nport = 12900\n", 2,
            "node 'A' uses port 12900, the HTTP face's port (http)");
    refused(state, "[herd]\nhttp = 127.0.0.1:13000\n" ONE_NODE, 4,
            "node 'A' uses port 13000, the HTTP face's port (http)");
    accepted(state, "[herd]\nhttp = off\n[node A]\nport = 12900\n", &c);
    config_free(&c);
    accepted(state, "[herd]\nhttp = 127.0.0.2:13000\n" ONE_NODE, &c);
    config_free(&c);
}

static void test_every_key(void **state)
{
    struct herd_config c;
    char *p;

    accepted(state,
             "[herd]\nlog_dir = /var/log/herd\nrun_dir = /run/herd\n"
             "log_max_mb = 0\nlog_keep = 1000\nstop_grace_s = 0\n"
             "max_clients = 1000000\nmax_line = 256\nidle_timeout_s = 86400\n"
             "max_output_kb = 64\nmax_records = 1000000000\n"
             "max_clock_ahead_s = 0\n"
             "[places]\nprovider = google-legacy\nport = 65535\n"
             "url = http://127.0.0.1:18999///\nkey_env = MY_KEY\n"
             "timeout_ms = 600000\n"
             "[node A]\nport = 00001\nhost = example.org\n", &c);
    assert_string_equal(c.log_dir, "/var/log/herd");
    assert_string_equal(c.run_dir, "/run/herd");
    assert_int_equal(c.log_max_mb, 0);
    assert_int_equal(c.log_keep, 1000);
    assert_int_equal(c.stop_grace_s, 0);
    assert_int_equal(c.max_clients, 1000000);
    assert_int_equal(c.max_line, 256);
    assert_int_equal(c.idle_timeout_s, 86400);
    assert_int_equal(c.max_output_kb, 64);
    assert_int_equal(c.max_records, 1000000000);
    assert_int_equal(c.max_clock_ahead_s, 0);
    assert_int_equal(c.provider, PLACES_GOOGLE_LEGACY);
    assert_string_equal(config_provider_name(c.provider), "google-legacy");
    assert_int_equal(c.places_port, 65535);
    assert_string_equal(c.places_url, "http://127.0.0.1:18999");
    assert_string_equal(c.places_key_env, "MY_KEY");
    assert_int_equal(c.places_timeout_ms, 600000);
    assert_int_equal(c.nodes[0].port, 1);
    assert_string_equal(c.nodes[0].host, "example.org");
    p = config_places_base(&c);
    assert_string_equal(p, "http://127.0.0.1:18999");
    free(p);
    config_free(&c);

    accepted(state, "[places]\nprovider = google\n" ONE_NODE, &c);
    assert_string_equal(config_provider_name(c.provider), "google");
    p = config_places_base(&c);
    assert_string_equal(p, "https://places.googleapis.com");
    free(p);
    config_free(&c);
    accepted(state, "[places]\nprovider = google-legacy\n" ONE_NODE, &c);
    p = config_places_base(&c);
    assert_string_equal(p, "https://maps.googleapis.com");
    free(p);
    config_free(&c);
}

static void test_relative_paths(void **state)
{
    struct fixture *f = *state;
    struct herd_config c;
    char err[1024] = "", cwd[PATH_MAX], want[PATH_MAX + 64];
    char *sub = unit_path(f->dir, "conf"), *path = unit_path(sub, "herd.ini");
    char *real;

    assert_int_equal(mkdir(sub, 0700), 0);
    unit_write(path, LIT("[herd]\nlog_dir = ../l\nrun_dir = r/s\n" ONE_NODE));
    real = realpath(sub, NULL);
    assert_non_null(real);
    /* Loaded by an absolute path... */
    assert_int_equal(config_load(path, &c, err, sizeof err), 0);
    assert_string_equal(c.dir, real);
    snprintf(want, sizeof want, "%s/../l", real);
    assert_string_equal(c.log_dir, want);
    snprintf(want, sizeof want, "%s/r/s", real);
    assert_string_equal(c.run_dir, want);
    config_free(&c);
    /* ...and by one relative to another working directory: the paths
     * still resolve against the file's directory, not the cwd. */
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir(f->dir), 0);
    assert_int_equal(config_load("conf/herd.ini", &c, err, sizeof err), 0);
    assert_int_equal(chdir(cwd), 0);
    assert_string_equal(c.path, "conf/herd.ini");
    assert_string_equal(c.dir, real);
    snprintf(want, sizeof want, "%s/r/s", real);
    assert_string_equal(c.run_dir, want);
    config_free(&c);
    free(real);
    free(sub);
    free(path);
}

static void test_links_one_side(void **state)
{
    struct herd_config c;
    static const char *const a[] = {"D", "B", "C"};  /* index order */
    static const char *const b[] = {"A"};
    static const char *const d[] = {"A", "C"};

    /* Listed on one side only, both sides, with commas and tabs. */
    accepted(state,
             "[node D]\nport = 4\nneighbors = C,A\n"
             "[node A]\nport = 1\nneighbors = B\tC, D\n"
             "[node B]\nport = 2\nneighbors = A\n"
             "[node C]\nport = 3\n", &c);
    assert_int_equal(c.n_nodes, 4);
    assert_string_equal(c.nodes[0].name, "D");      /* file order */
    assert_neighbors(&c, "A", a, 3);
    assert_neighbors(&c, "B", b, 1);
    {
        static const char *const cc[] = {"D", "A"};   /* index order */
        assert_neighbors(&c, "C", cc, 2);
    }
    {
        /* D's neighbours sorted by index: A (1), C (3). */
        int i = config_find_node(&c, "D");
        assert_int_equal(c.nodes[i].n_neighbors, 2);
        assert_int_equal(c.nodes[i].neighbors[0], config_find_node(&c, d[0]));
        assert_int_equal(c.nodes[i].neighbors[1], config_find_node(&c, d[1]));
    }
    assert_false(linked(&c, config_find_node(&c, "B"),
                               config_find_node(&c, "C")));
    config_free(&c);
}

static void test_section_spacing(void **state)
{
    struct herd_config c;

    accepted(state, "  [ herd ]  \nlog_dir = l\n[node   A]\nport = 1\n", &c);
    assert_string_equal(c.nodes[0].name, "A");
    config_free(&c);
}

static void test_bom_and_crlf(void **state)
{
    struct herd_config c;

    /* A UTF-8 byte order mark (as some editors write) and CRLF endings. */
    accepted(state, "\xEF\xBB\xBF[node A]\r\nport = 13000\r\n"
             "neighbors = B\r\n[node B]\r\nport = 2\r\n", &c);
    assert_int_equal(c.n_nodes, 2);
    assert_string_equal(c.nodes[0].name, "A");
    assert_int_equal(c.nodes[0].port, 13000);
    assert_true(linked(&c, 0, 1));
    config_free(&c);
    refused(state, "\xEF\xBB\xBF[nope]\n" ONE_NODE, 1,
            "unknown section [nope]");
}

/* [herd] data_dir and fsync: defaults, every value, every mistake. */
static void test_durability_keys(void **state)
{
    struct fixture *f = *state;
    struct herd_config c;
    char want[PATH_MAX + 64], *real = realpath(f->dir, NULL);

    assert_non_null(real);
    accepted(state, ONE_NODE, &c);
    snprintf(want, sizeof want, "%s/data", real);
    assert_string_equal(c.data_dir, want);
    assert_int_equal(c.fsync, FSYNC_EVERYSEC);
    assert_string_equal(config_fsync_name(c.fsync), "everysec");
    config_free(&c);

    accepted(state, "[herd]\ndata_dir = d/e\nfsync = always\n" ONE_NODE, &c);
    snprintf(want, sizeof want, "%s/d/e", real);
    assert_string_equal(c.data_dir, want);
    assert_int_equal(c.fsync, FSYNC_ALWAYS);
    assert_string_equal(config_fsync_name(c.fsync), "always");
    config_free(&c);

    accepted(state, "[herd]\ndata_dir = /var/lib/herd\nfsync = no\n"
             ONE_NODE, &c);
    assert_string_equal(c.data_dir, "/var/lib/herd");
    assert_int_equal(c.fsync, FSYNC_NO);
    assert_string_equal(config_fsync_name(c.fsync), "no");
    config_free(&c);

    accepted(state, "[herd]\nfsync = everysec\n" ONE_NODE, &c);
    assert_int_equal(c.fsync, FSYNC_EVERYSEC);
    config_free(&c);
    free(real);

    refused(state, "[herd]\nfsync = sometimes\n" ONE_NODE, 2,
            "fsync must be always, everysec or no, not 'sometimes'");
    refused(state, "[herd]\nfsync = Always\n" ONE_NODE, 2,
            "fsync must be always, everysec or no, not 'Always'");
    refused(state, "[herd]\nfsync =\n" ONE_NODE, 2,
            "fsync must be always, everysec or no, not ''");
    refused(state, "[herd]\nfsync = 1\n" ONE_NODE, 2,
            "fsync must be always, everysec or no, not '1'");
    refused(state, "[herd]\ndata_dir =\n" ONE_NODE, 2, "empty path");
    refused(state, "[herd]\nfsync = no\nfsync = always\n" ONE_NODE, 3,
            "duplicate key 'fsync' in [herd]");
    refused(state, "[herd]\ndata_dir = a\nlog_dir = l\ndata_dir = b\n"
            ONE_NODE, 4, "duplicate key 'data_dir' in [herd]");
    refused(state, "[places]\nfsync = always\n" ONE_NODE, 2,
            "unknown key 'fsync' in [places]");
    refused(state, ONE_NODE "data_dir = x\n", 3,
            "unknown key 'data_dir' in [node A]");
}

/* [herd] log_replies: summary by default, full on request, nothing else. */
static void test_log_replies_key(void **state)
{
    struct herd_config c;

    accepted(state, ONE_NODE, &c);
    assert_int_equal(c.log_replies, LOG_REPLIES_SUMMARY);
    config_free(&c);
    accepted(state, "[herd]\nlog_replies = full\n" ONE_NODE, &c);
    assert_int_equal(c.log_replies, LOG_REPLIES_FULL);
    config_free(&c);
    accepted(state, "[herd]\nlog_replies = summary\n" ONE_NODE, &c);
    assert_int_equal(c.log_replies, LOG_REPLIES_SUMMARY);
    config_free(&c);

    refused(state, "[herd]\nlog_replies = Full\n" ONE_NODE, 2,
            "log_replies must be summary or full, not 'Full'");
    refused(state, "[herd]\nlog_replies =\n" ONE_NODE, 2,
            "log_replies must be summary or full, not ''");
    refused(state, "[herd]\nlog_replies = none\n" ONE_NODE, 2,
            "log_replies must be summary or full, not 'none'");
    refused(state, "[herd]\nlog_replies = full\nlog_replies = summary\n"
            ONE_NODE, 3, "duplicate key 'log_replies' in [herd]");
    refused(state, "[places]\nlog_replies = full\n" ONE_NODE, 2,
            "unknown key 'log_replies' in [places]");
    refused(state, ONE_NODE "log_replies = full\n", 3,
            "unknown key 'log_replies' in [node A]");
}

static void test_free_twice(void **state)
{
    struct herd_config c;

    accepted(state, ONE_NODE, &c);
    config_free(&c);
    config_free(&c);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_unknown_section),
        T(test_name_valid),
        T(test_log_replies_key),
        T(test_bad_node_name),
        T(test_unknown_key),
        T(test_duplicate_key),
        T(test_duplicate_node),
        T(test_same_host_and_port),
        T(test_neighbours),
        T(test_bad_numbers),
        T(test_bad_strings),
        T(test_syntax_error),
        T(test_line_too_long),
        T(test_no_nodes),
        T(test_node_without_port),
        T(test_first_mistake_wins),
        T(test_cannot_open),
        T(test_default_herd),
        T(test_config_defaults_alone),
        T(test_defaults),
        T(test_http_key),
        T(test_every_key),
        T(test_relative_paths),
        T(test_links_one_side),
        T(test_section_spacing),
        T(test_bom_and_crlf),
        T(test_durability_keys),
        T(test_free_twice),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
