/* fuzz_config: config_load() on any file contents.  A loaded herd has a
 * port on every node, symmetric sorted links and no self-link; a refused
 * one says "PATH:LINE: message" with a line the file has. */
#include "tests/fuzz/fuzz.h"

#include <unistd.h>

#include "common/config.h"

static char path[256];

static void remove_file(void)
{
    unlink(path);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *tmp = getenv("TMPDIR");

    (void)argc;
    (void)argv;
    /* One file, rewritten for every input, removed at exit. */
    snprintf(path, sizeof path, "%s/herd-fuzz-config-%ld.ini",
             tmp && *tmp ? tmp : "/tmp", (long)getpid());
    atexit(remove_file);
    return 0;
}

static void check_loaded(const struct herd_config *c)
{
    FUZZ_CHECK(c->n_nodes >= 1 && c->nodes != NULL);
    FUZZ_CHECK(c->log_dir && c->log_dir[0] == '/');
    FUZZ_CHECK(c->run_dir && c->run_dir[0] == '/');
    FUZZ_CHECK(c->places_port >= 1 && c->places_port <= 65535);
    for (size_t i = 0; i < c->n_nodes; i++) {
        const struct node_conf *n = &c->nodes[i];

        FUZZ_CHECK(n->port >= 1 && n->port <= 65535);
        FUZZ_CHECK(n->name[0] != '\0' && n->host[0] != '\0');
        FUZZ_CHECK(config_find_node(c, n->name) == (int)i);
        for (size_t k = 0; k < n->n_neighbors; k++) {
            int j = n->neighbors[k];

            FUZZ_CHECK(j >= 0 && (size_t)j < c->n_nodes);
            FUZZ_CHECK((size_t)j != i);                 /* no self-link */
            FUZZ_CHECK(k == 0 || n->neighbors[k - 1] < j);  /* sorted */
            int back = 0;                                   /* symmetric */

            for (size_t m = 0; m < c->nodes[j].n_neighbors; m++)
                back |= c->nodes[j].neighbors[m] == (int)i;
            FUZZ_CHECK(back);
        }
        for (size_t j = 0; j < i; j++)
            FUZZ_CHECK(c->nodes[j].port != n->port ||
                       strcmp(c->nodes[j].host, n->host) != 0);
    }
}

static void check_refused(const char *err, const uint8_t *data, size_t size)
{
    size_t plen = strlen(path), lines = 0;
    const char *p;
    long line = 0;

    for (size_t i = 0; i < size; i++)
        if (data[i] == '\n')
            lines++;
    if (size > 0 && data[size - 1] != '\n')
        lines++;
    FUZZ_CHECK(strncmp(err, path, plen) == 0 && err[plen] == ':');
    p = err + plen + 1;
    FUZZ_CHECK(*p >= '1' && *p <= '9');
    while (*p >= '0' && *p <= '9')
        line = line * 10 + (*p++ - '0');
    FUZZ_CHECK(p[0] == ':' && p[1] == ' ' && p[2] != '\0');
    FUZZ_CHECK(line >= 1 && (size_t)line <= (lines ? lines : 1));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct herd_config c;
    char err[1024];
    FILE *f = fopen(path, "wb");

    FUZZ_CHECK(f);
    FUZZ_CHECK(fwrite(data, 1, size, f) == size);
    FUZZ_CHECK(fclose(f) == 0);

    memset(err, 0x5a, sizeof err);
    if (config_load(path, &c, err, sizeof err) == 0) {
        check_loaded(&c);
        config_free(&c);
    } else {
        FUZZ_CHECK(memchr(err, '\0', sizeof err) != NULL);
        check_refused(err, data, size);
        /* A refused load leaves nothing behind. */
        FUZZ_CHECK(c.nodes == NULL && c.path == NULL && c.n_nodes == 0);
    }
    return 0;
}
