/* herdctl secret: the link keyring of this host (run_dir/herd.keyring),
 * changed without stopping anything.  Every node of the host watches the
 * file and applies a change within a second (docs/PEERS.md "Keys"). */
#include <errno.h>
#include <fcntl.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "common/auth.h"
#include "herdctl.h"

struct paths {
    char *ring, *secret, *lock;
};

static void free_paths(struct paths *p)
{
    free(p->ring);
    free(p->secret);
    free(p->lock);
}

/* One herdctl at a time changes the keyring (the lock is released when
 * the process exits). */
static int lock_ring(const struct paths *p)
{
    int fd = open(p->lock, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);

    if (fd < 0 || flock(fd, LOCK_EX) < 0) {
        fprintf(stderr, "herdctl: cannot lock %s: %s\n", p->lock,
                strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

static int read_secret_file(const char *path, struct auth_secret *out)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "re");
    char err[512];
    static char text[AUTH_SECRET_MAX + 2];
    size_t n;
    struct auth_keyring one;
    int rc;

    if (!f) {
        fprintf(stderr, "herdctl: cannot read %s: %s\n", path, strerror(errno));
        return -1;
    }
    n = fread(text, 1, sizeof text, f);
    if (f != stdin)
        fclose(f);
    /* One secret: one line, the keyring's own rules. */
    rc = auth_keyring_parse(text, n, &one, err, sizeof err);
    if (rc == 0 && one.n != 1) {
        snprintf(err, sizeof err, "more than one line");
        rc = -1;
    }
    if (rc < 0) {
        fprintf(stderr, "herdctl: %s: not a secret: %s\n", path, err);
        auth_keyring_clear(&one);
        return -1;
    }
    *out = one.keys[0].secret;
    auth_keyring_clear(&one);
    memset(text, 0, sizeof text);
    return 0;
}

static int fresh_secret(struct auth_secret *out)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char raw[32];

    if (RAND_bytes(raw, sizeof raw) != 1)
        return -1;
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < sizeof raw; i++) {
        out->bytes[2 * i] = (unsigned char)hex[raw[i] >> 4];
        out->bytes[2 * i + 1] = (unsigned char)hex[raw[i] & 15];
    }
    out->len = 2 * sizeof raw;
    memset(raw, 0, sizeof raw);
    return 0;
}

static void list(const struct auth_keyring *r, int from_ring)
{
    for (size_t i = 0; i < r->n; i++)
        printf("%s %s\n", r->keys[i].id, i == 0 ? "primary (dials)" : "accepted");
    if (!from_ring)
        printf("(the single herd.secret; `herdctl secret add` starts a "
               "keyring)\n");
}

/* The key an id names, or an error (exit code) said. */
static int find(const struct auth_keyring *r, const char *id)
{
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->keys[i].id, id) == 0)
            return (int)i;
    fprintf(stderr, "herdctl: no key %s in the keyring (herdctl secret list "
            "shows them)\n", id);
    return -1;
}

int cmd_secret(struct ctl *c, const char *verb, const char *arg)
{
    static struct auth_keyring ring;    /* 64 KiB: not on the stack */
    struct paths p;
    char err[1024];
    int from_ring = 0, lock = -1, rc = EX_SYS, i;

    p.ring = config_run_path(&c->cfg, "herd.keyring");
    p.secret = config_run_path(&c->cfg, "herd.secret");
    p.lock = config_run_path(&c->cfg, "herd.keyring.lock");
    if (!p.ring || !p.secret || !p.lock)
        goto out;
    if (strcmp(verb, "list") != 0) {
        if (arg == NULL && strcmp(verb, "add") != 0) {
            fprintf(stderr, "herdctl: secret %s needs a key id\n", verb);
            rc = EX_USAGE;
            goto out;
        }
        lock = lock_ring(&p);
        if (lock < 0)
            goto out;
    }
    if (auth_keyring_load(p.ring, p.secret, &ring, &from_ring, err,
                          sizeof err) < 0) {
        fprintf(stderr, "herdctl: %s\n", err);
        goto out;
    }
    if (strcmp(verb, "list") == 0) {
        list(&ring, from_ring);
        rc = EX_OK;
        goto out;
    }
    if (strcmp(verb, "add") == 0) {
        struct auth_key *k = &ring.keys[ring.n];

        if (ring.n == AUTH_KEYS_MAX) {
            fprintf(stderr, "herdctl: the keyring holds %d keys already; "
                    "remove one first\n", AUTH_KEYS_MAX);
            goto out;
        }
        if ((arg ? read_secret_file(arg, &k->secret) : fresh_secret(&k->secret)) < 0)
            goto out;
        auth_key_id(&k->secret, k->id);
        for (size_t j = 0; j < ring.n; j++) {
            if (strcmp(ring.keys[j].id, k->id) == 0) {
                printf("%s is in the keyring already\n", k->id);
                rc = EX_OK;
                goto out;
            }
        }
        ring.n++;
        printf("added %s (accepted; `herdctl secret use %s` dials with it)\n",
               k->id, k->id);
    } else if (strcmp(verb, "use") == 0) {
        struct auth_key chosen;

        if ((i = find(&ring, arg)) < 0) {
            rc = EX_DOWN;
            goto out;
        }
        /* The primary is the first; the others keep their order. */
        chosen = ring.keys[i];
        memmove(&ring.keys[1], &ring.keys[0], (size_t)i * sizeof ring.keys[0]);
        ring.keys[0] = chosen;
        memset(&chosen, 0, sizeof chosen);
        printf("%s is the primary key: this host's nodes dial with it and "
               "re-key their links\n", arg);
    } else if (strcmp(verb, "remove") == 0) {
        if ((i = find(&ring, arg)) < 0) {
            rc = EX_DOWN;
            goto out;
        }
        if (i == 0) {
            fprintf(stderr, "herdctl: %s is the primary key; `herdctl secret "
                    "use` another one first\n", arg);
            rc = EX_USAGE;
            goto out;
        }
        auth_secret_clear(&ring.keys[i].secret);
        memmove(&ring.keys[i], &ring.keys[i + 1],
                (ring.n - (size_t)i - 1) * sizeof ring.keys[0]);
        ring.n--;
        memset(&ring.keys[ring.n], 0, sizeof ring.keys[0]);
        printf("removed %s: links keyed by it are dropped and it is refused\n",
               arg);
    } else {
        fprintf(stderr, "herdctl: secret knows add, use, remove and list, not "
                "'%s'\n", verb);
        rc = EX_USAGE;
        goto out;
    }
    if (auth_keyring_write(p.ring, &ring, err, sizeof err) < 0) {
        fprintf(stderr, "herdctl: %s\n", err);
        goto out;
    }
    rc = EX_OK;
out:
    auth_keyring_clear(&ring);
    if (lock >= 0)
        close(lock);
    free_paths(&p);
    return rc;
}
