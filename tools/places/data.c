#include "data.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

#define DATA_MAGIC "herd-places-data"
#define DATA_VERSION 1
/* Far more than GeoNames will ever hold; a bound on what we allocate. */
#define DATA_MAX_BYTES (512u << 20)
#define DATA_MAX_RECORDS 20000000u

static int fail(char *err, size_t errlen, const char *path, int line,
                const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int fail(char *err, size_t errlen, const char *path, int line,
                const char *fmt, ...)
{
    char msg[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(err, errlen, "%s:%d: %s", path, line, msg);
    errno = EINVAL;
    return -1;
}

static char *read_whole(const char *path, size_t *len, char *err,
                        size_t errlen)
{
    struct stat st;
    char *buf = NULL;
    size_t got = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        goto sys;
    if (fstat(fd, &st) < 0)
        goto sys;
    if (!S_ISREG(st.st_mode) || (unsigned long long)st.st_size > DATA_MAX_BYTES) {
        close(fd);
        snprintf(err, errlen, "%s: not a regular file of at most %u MiB",
                 path, DATA_MAX_BYTES >> 20);
        errno = EINVAL;
        return NULL;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (!buf)
        goto sys;
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            goto sys;
        if (r == 0)
            break;              /* shrank under us: parse what is there */
        got += (size_t)r;
    }
    close(fd);
    buf[got] = '\0';
    *len = got;
    return buf;

sys:
    {
        int e = errno;
        snprintf(err, errlen, "%s: %s", path, strerror(e));
        free(buf);
        if (fd >= 0)
            close(fd);
        errno = e;
        return NULL;
    }
}

/* Split line (NUL-terminated, no LF) at tabs into at most max fields. */
static size_t split_tabs(char *line, char **field, size_t max)
{
    size_t n = 0;

    field[n++] = line;
    for (char *p = line; *p; p++) {
        if (*p == '\t') {
            *p = '\0';
            if (n == max)
                return max + 1;
            field[n++] = p + 1;
        }
    }
    return n;
}

static int parse_index(const char *s, unsigned long *out)
{
    unsigned long v = 0;

    if (*s == '\0')
        return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || v > DATA_MAX_RECORDS)
            return -1;
        v = v * 10 + (unsigned long)(*s - '0');
    }
    *out = v;
    return 0;
}

static int parse_header(char *line, unsigned long *n_admin,
                        unsigned long *n_places)
{
    char magic[32];
    int version, used = 0;

    if (sscanf(line, "%31s %d %lu %lu%n", magic, &version, n_admin, n_places,
               &used) != 4 || line[used] != '\0')
        return -1;
    if (strcmp(magic, DATA_MAGIC) != 0 || version != DATA_VERSION)
        return -1;
    if (*n_admin > DATA_MAX_RECORDS || *n_places > DATA_MAX_RECORDS)
        return -1;
    return 0;
}

int data_load(const char *path, struct places_data *out, char *err,
              size_t errlen)
{
    struct places_data d = {0};
    unsigned long want_admin = 0, want_places = 0;
    size_t len, na = 1;
    int line_no = 0;
    char *p, *end;

    d.text = read_whole(path, &len, err, errlen);
    if (!d.text)
        return -1;
    p = d.text;
    end = d.text + len;
    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *line = p, *f[8];
        size_t nf;

        if (!nl) {
            fail(err, errlen, path, line_no + 1, "last line has no newline");
            goto bad;
        }
        *nl = '\0';
        p = nl + 1;
        line_no++;
        if (memchr(line, '\r', (size_t)(nl - line))) {
            fail(err, errlen, path, line_no, "carriage return in line");
            goto bad;
        }
        if (line_no == 1) {
            if (parse_header(line, &want_admin, &want_places) < 0) {
                fail(err, errlen, path, 1, "not a herd-places-data %d file",
                     DATA_VERSION);
                goto bad;
            }
            d.admin = malloc((want_admin + 1) * sizeof *d.admin);
            d.places = malloc((want_places ? want_places : 1) * sizeof *d.places);
            if (!d.admin || !d.places) {
                snprintf(err, errlen, "%s: out of memory", path);
                errno = ENOMEM;
                goto bad;
            }
            d.admin[0] = "";
            continue;
        }
        if (line[0] == '#' || line[0] == '\0')
            continue;
        nf = split_tabs(line, f, 7);
        if (strcmp(f[0], "A") == 0 && nf == 2) {
            if (na > want_admin) {
                fail(err, errlen, path, line_no, "more A lines than the header says");
                goto bad;
            }
            d.admin[na++] = f[1];
        } else if (strcmp(f[0], "P") == 0 && nf == 7) {
            struct place *pl;
            unsigned long a1, a2;

            if (d.n_places >= want_places) {
                fail(err, errlen, path, line_no, "more P lines than the header says");
                goto bad;
            }
            pl = &d.places[d.n_places];
            if (util_parse_decimal(f[1], strlen(f[1]), &pl->lat) < 0 ||
                pl->lat < -90 || pl->lat > 90 ||
                util_parse_decimal(f[2], strlen(f[2]), &pl->lng) < 0 ||
                pl->lng < -180 || pl->lng > 180) {
                fail(err, errlen, path, line_no, "bad coordinates");
                goto bad;
            }
            if (strlen(f[3]) != 2 || parse_index(f[4], &a1) < 0 ||
                parse_index(f[5], &a2) < 0 || a1 > want_admin ||
                a2 > want_admin || f[6][0] == '\0') {
                fail(err, errlen, path, line_no, "bad place record");
                goto bad;
            }
            pl->lat_text = f[1];
            pl->lng_text = f[2];
            pl->country = f[3];
            pl->admin1 = (uint32_t)a1;
            pl->admin2 = (uint32_t)a2;
            pl->name = f[6];
            d.n_places++;
        } else {
            fail(err, errlen, path, line_no, "unknown record");
            goto bad;
        }
    }
    if (line_no == 0) {
        fail(err, errlen, path, 1, "empty file");
        goto bad;
    }
    if (na != want_admin + 1 || d.n_places != want_places) {
        fail(err, errlen, path, line_no, "truncated: header promises %lu "
             "admin names and %lu places", want_admin, want_places);
        goto bad;
    }
    d.n_admin = na;
    /* Every answer names each place by its id: hash them once here, not
     * once per place per answer. */
    if (data_compute_ids(&d) < 0) {
        fail(err, errlen, path, 0, "out of memory");
        goto bad;
    }
    *out = d;
    return 0;

bad:
    {
        int e = errno;
        data_free(&d);
        errno = e;
        return -1;
    }
}

void data_free(struct places_data *d)
{
    free(d->ids);
    free(d->places);
    free(d->admin);
    free(d->text);
    memset(d, 0, sizeof *d);
}

/* The id of p; with ctx and sha (fetched once) when hashing many, else
 * one-shot SHA256(). */
static void compute_id(const struct places_data *d, const struct place *p,
                       char *buf, EVP_MD_CTX *ctx, const EVP_MD *sha)
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    const char *parts[6] = {
        p->name, p->country, data_admin(d, p->admin1),
        data_admin(d, p->admin2), p->lat_text, p->lng_text,
    };
    char text[1024];
    size_t n = 0;

    for (int i = 0; i < 6; i++) {
        size_t k = strlen(parts[i]);
        if (k > sizeof text - n - 1)
            k = sizeof text - n - 1;
        memcpy(text + n, parts[i], k);
        n += k;
        if (i < 5 && n < sizeof text - 1)
            text[n++] = '\t';
    }
    if (!ctx || EVP_DigestInit_ex(ctx, sha, NULL) != 1 ||
        EVP_DigestUpdate(ctx, text, n) != 1 ||
        EVP_DigestFinal_ex(ctx, md, NULL) != 1)
        SHA256((const unsigned char *)text, n, md);
    /* 20 bytes make 27 base64url characters. */
    util_b64url_encode(md, 20, buf);
}

void data_place_id(const struct places_data *d, const struct place *p,
                   char *buf)
{
    if (d->ids)
        memcpy(buf, data_place_id_text(d, p), DATA_ID_LEN + 1);
    else
        compute_id(d, p, buf, NULL, NULL);
}

int data_compute_ids(struct places_data *d)
{
    char *ids = malloc(d->n_places ? d->n_places * (DATA_ID_LEN + 1) : 1);
    /* One context and one fetched digest for all: SHA256() fetches the
     * algorithm again for every call, most of its cost. */
    EVP_MD *sha = EVP_MD_fetch(NULL, "SHA256", NULL);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();

    if (ids)
        for (size_t i = 0; i < d->n_places; i++)
            compute_id(d, &d->places[i], ids + i * (DATA_ID_LEN + 1),
                       sha ? ctx : NULL, sha);
    EVP_MD_CTX_free(ctx);
    EVP_MD_free(sha);
    if (!ids)
        return -1;
    d->ids = ids;
    return 0;
}

/* Append part to buf unless empty or equal to the previous part. */
static void join(char *buf, size_t cap, size_t *len, const char **prev,
                 const char *part)
{
    int m;

    if (part[0] == '\0' || (*prev && strcmp(*prev, part) == 0))
        return;
    m = snprintf(buf + *len, cap - *len, "%s%s", *len ? ", " : "", part);
    if (m > 0)
        *len += (size_t)m < cap - *len ? (size_t)m : cap - *len - 1;
    *prev = part;
}

size_t data_vicinity(const struct places_data *d, const struct place *p,
                     char *buf, size_t cap)
{
    const char *prev = NULL;
    size_t len = 0;

    buf[0] = '\0';
    join(buf, cap, &len, &prev, data_admin(d, p->admin2));
    join(buf, cap, &len, &prev, data_admin(d, p->admin1));
    if (len == 0)
        join(buf, cap, &len, &prev, p->country);
    return len;
}

size_t data_address(const struct places_data *d, const struct place *p,
                    char *buf, size_t cap)
{
    const char *prev = NULL;
    size_t len = 0;

    buf[0] = '\0';
    join(buf, cap, &len, &prev, p->name);
    join(buf, cap, &len, &prev, data_admin(d, p->admin2));
    join(buf, cap, &len, &prev, data_admin(d, p->admin1));
    join(buf, cap, &len, &prev, p->country);
    return len;
}
