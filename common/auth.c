#include "auth.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/sha.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void to_hex(const unsigned char *in, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";

    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[in[i] >> 4];
        out[2 * i + 1] = hex[in[i] & 15];
    }
    out[2 * n] = '\0';
}

static int read_secret(const char *path, struct auth_secret *out, char *err,
                       size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n;
    size_t total = 0;

    if (fd < 0) {
        int e = errno;

        /* ENOENT is no mistake: the caller creates the secret. */
        if (e != ENOENT)
            snprintf(err, errlen, "cannot open secret %s: %s", path,
                     strerror(e));
        errno = e;
        return -1;
    }
    for (;;) {
        n = read(fd, out->bytes + total, sizeof out->bytes - total);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        total += (size_t)n;
        if (total == sizeof out->bytes)
            break;
    }
    close(fd);
    if (n < 0) {
        snprintf(err, errlen, "cannot read secret %s: %s", path, strerror(errno));
        errno = EIO;
        return -1;
    }
    while (total > 0 && (out->bytes[total - 1] == '\n' ||
                         out->bytes[total - 1] == '\r' ||
                         out->bytes[total - 1] == ' ' ||
                         out->bytes[total - 1] == '\t'))
        total--;
    if (total < AUTH_SECRET_MIN) {
        snprintf(err, errlen, "secret %s is shorter than %d bytes", path,
                 AUTH_SECRET_MIN);
        errno = EINVAL;
        return -1;
    }
    out->len = total;
    return 0;
}

int auth_secret_load(const char *path, struct auth_secret *out,
                     char *err, size_t errlen)
{
    unsigned char raw[32];
    char hex[65], tmp[4096];
    int fd;

    memset(out, 0, sizeof *out);
    if (read_secret(path, out, err, errlen) == 0)
        return 0;
    if (errno != ENOENT)
        return -1;

    if (RAND_bytes(raw, sizeof raw) != 1) {
        snprintf(err, errlen, "no randomness for a new secret");
        return -1;
    }
    to_hex(raw, sizeof raw, hex);
    OPENSSL_cleanse(raw, sizeof raw);
    hex[64] = '\n';
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "cannot create %s: %s", tmp, strerror(errno));
        return -1;
    }
    if (write(fd, hex, 65) != 65 || fsync(fd) < 0) {
        snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        return -1;
    }
    close(fd);
    OPENSSL_cleanse(hex, sizeof hex);
    /* link() fails if another process won the race; then use its secret. */
    if (link(tmp, path) < 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    unlink(tmp);
    return read_secret(path, out, err, errlen);
}

void auth_secret_clear(struct auth_secret *s)
{
    OPENSSL_cleanse(s, sizeof *s);
}

void auth_key_id(const struct auth_secret *s, char *hex)
{
    static const char label[] = "herd key id\n";
    unsigned char md[SHA256_DIGEST_LENGTH];
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned int mdlen = 0;

    /* A labelled hash: the id of a secret is never a hash anyone else
     * computes of it, and 8 bytes are plenty to tell 16 keys apart. */
    if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 ||
        EVP_DigestUpdate(ctx, label, sizeof label - 1) != 1 ||
        EVP_DigestUpdate(ctx, s->bytes, s->len) != 1 ||
        EVP_DigestFinal_ex(ctx, md, &mdlen) != 1)
        memset(md, 0, sizeof md);
    EVP_MD_CTX_free(ctx);
    to_hex(md, AUTH_KEY_ID_HEX / 2, hex);
}

int auth_keyring_parse(const char *text, size_t len, struct auth_keyring *out,
                       char *err, size_t errlen)
{
    size_t pos = 0, lineno = 0;

    memset(out, 0, sizeof *out);
    while (pos < len) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - text) : len, n;
        struct auth_key *k;

        lineno++;
        n = end - pos;
        while (n > 0 && (text[pos + n - 1] == '\r' || text[pos + n - 1] == ' ' ||
                         text[pos + n - 1] == '\t'))
            n--;
        if (n > 0) {
            if (n < AUTH_SECRET_MIN || n > AUTH_SECRET_MAX) {
                snprintf(err, errlen, "keyring line %zu: a secret must be "
                         "%d to %d bytes", lineno, AUTH_SECRET_MIN,
                         AUTH_SECRET_MAX);
                auth_keyring_clear(out);
                return -1;
            }
            if (out->n == AUTH_KEYS_MAX) {
                snprintf(err, errlen, "keyring holds more than %d keys",
                         AUTH_KEYS_MAX);
                auth_keyring_clear(out);
                return -1;
            }
            k = &out->keys[out->n];
            memcpy(k->secret.bytes, text + pos, n);
            k->secret.len = n;
            auth_key_id(&k->secret, k->id);
            /* Searched among the keys before k: a repeat is dropped. */
            if (auth_keyring_find(out, k->id, AUTH_KEY_ID_HEX) == NULL)
                out->n++;
            else
                auth_secret_clear(&k->secret);
        }
        pos = end + 1;
    }
    if (out->n == 0) {
        snprintf(err, errlen, "keyring holds no key");
        return -1;
    }
    return 0;
}

int auth_keyring_load(const char *keyring_path, const char *secret_path,
                      struct auth_keyring *out, int *from_keyring,
                      char *err, size_t errlen)
{
    char *text;
    size_t cap = (size_t)AUTH_KEYS_MAX * (AUTH_SECRET_MAX + 2) + 1, total = 0;
    ssize_t n = 0;
    int fd, rc;

    memset(out, 0, sizeof *out);
    *from_keyring = 0;
    fd = open(keyring_path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0 && errno != ENOENT) {
        snprintf(err, errlen, "cannot open keyring %s: %s", keyring_path,
                 strerror(errno));
        return -1;
    }
    if (fd < 0) {
        if (auth_secret_load(secret_path, &out->keys[0].secret, err,
                             errlen) < 0)
            return -1;
        auth_key_id(&out->keys[0].secret, out->keys[0].id);
        out->n = 1;
        return 0;
    }
    text = malloc(cap);
    if (!text) {
        close(fd);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    while (total < cap) {
        n = read(fd, text + total, cap - total);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        total += (size_t)n;
    }
    close(fd);
    if (n < 0 || total == cap) {
        snprintf(err, errlen, n < 0 ? "cannot read keyring %s" :
                 "keyring %s is too big", keyring_path);
        OPENSSL_cleanse(text, total);
        free(text);
        return -1;
    }
    rc = auth_keyring_parse(text, total, out, err, errlen);
    OPENSSL_cleanse(text, total);
    free(text);
    if (rc == 0)
        *from_keyring = 1;
    return rc;
}

int auth_keyring_write(const char *path, const struct auth_keyring *ring,
                       char *err, size_t errlen)
{
    char tmp[4096];
    int fd, ok = 1;

    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >=
        (int)sizeof tmp) {
        snprintf(err, errlen, "keyring path too long");
        return -1;
    }
    /* O_EXCL | O_NOFOLLOW: a file or link planted at the temporary name
     * is never written through; a stale one from a crash is removed first
     * only if it is ours to remove (unlink does not follow links). */
    unlink(tmp);
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "cannot create %s: %s", tmp, strerror(errno));
        return -1;
    }
    for (size_t i = 0; i < ring->n && ok; i++) {
        const struct auth_secret *s = &ring->keys[i].secret;
        ok = write(fd, s->bytes, s->len) == (ssize_t)s->len &&
             write(fd, "\n", 1) == 1;
    }
    if (!ok || fsync(fd) < 0) {
        snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        return -1;
    }
    close(fd);
    if (rename(tmp, path) < 0) {
        snprintf(err, errlen, "cannot rename %s to %s: %s", tmp, path,
                 strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

const struct auth_key *auth_keyring_find(const struct auth_keyring *ring,
                                         const char *id, size_t id_len)
{
    if (id_len != AUTH_KEY_ID_HEX)
        return NULL;
    for (size_t i = 0; i < ring->n; i++)
        if (memcmp(ring->keys[i].id, id, AUTH_KEY_ID_HEX) == 0)
            return &ring->keys[i];
    return NULL;
}

int auth_link_psk(const struct auth_secret *s, const char *dialer,
                  const char *listener, unsigned char psk[AUTH_PSK_LEN])
{
    static const char salt[] = "herd-v2 link psk";
    char info[2 * 256 + 32];
    size_t outlen = AUTH_PSK_LEN;
    EVP_PKEY_CTX *ctx;
    int n, ok;

    n = snprintf(info, sizeof info, "dialer %s\nlistener %s", dialer, listener);
    if (n < 0 || (size_t)n >= sizeof info)
        return -1;
    ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, NULL);
    ok = ctx && EVP_PKEY_derive_init(ctx) > 0 &&
         EVP_PKEY_CTX_set_hkdf_md(ctx, EVP_sha256()) > 0 &&
         EVP_PKEY_CTX_set1_hkdf_salt(ctx, (const unsigned char *)salt,
                                     sizeof salt - 1) > 0 &&
         EVP_PKEY_CTX_set1_hkdf_key(ctx, s->bytes, (int)s->len) > 0 &&
         EVP_PKEY_CTX_add1_hkdf_info(ctx, (const unsigned char *)info, n) > 0 &&
         EVP_PKEY_derive(ctx, psk, &outlen) > 0 && outlen == AUTH_PSK_LEN;
    EVP_PKEY_CTX_free(ctx);
    return ok ? 0 : -1;
}

void auth_keyring_clear(struct auth_keyring *ring)
{
    OPENSSL_cleanse(ring, sizeof *ring);
}
