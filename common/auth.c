#include "auth.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
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

int auth_nonce(char *hex, size_t cap)
{
    unsigned char raw[16];

    if (cap < 2 * sizeof raw + 1 || RAND_bytes(raw, sizeof raw) != 1)
        return -1;
    to_hex(raw, sizeof raw, hex);
    return 0;
}

int auth_mac(const struct auth_secret *secret, const char *role,
             const char *dialer, const char *listener,
             const char *dialer_nonce, const char *listener_nonce,
             char *hex, size_t cap)
{
    char msg[512];
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    int n;

    n = snprintf(msg, sizeof msg, "herd-v1\n%s\n%s\n%s\n%s\n%s", role, dialer,
                 listener, dialer_nonce, listener_nonce);
    if (n < 0 || (size_t)n >= sizeof msg)
        return -1;
    if (HMAC(EVP_sha256(), secret->bytes, (int)secret->len,
             (const unsigned char *)msg, (size_t)n, mac, &mac_len) == NULL)
        return -1;
    if (cap < 2 * (size_t)mac_len + 1)
        return -1;
    to_hex(mac, mac_len, hex);
    return 0;
}

int auth_mac_equal(const char *a, const char *b)
{
    size_t n = strlen(a);

    if (n != strlen(b))
        return 0;
    return CRYPTO_memcmp(a, b, n) == 0;
}

void auth_secret_clear(struct auth_secret *s)
{
    OPENSSL_cleanse(s, sizeof *s);
}
