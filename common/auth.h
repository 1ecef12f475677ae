/* auth: the herd secret and the HMAC challenge-response of the links.
 * Uses OpenSSL's libcrypto; knows nothing of sockets. */
#ifndef HERD_AUTH_H
#define HERD_AUTH_H

#include <stddef.h>

#define AUTH_SECRET_MIN 16      /* bytes of secret file content, at least */
#define AUTH_SECRET_MAX 4096

struct auth_secret {
    unsigned char bytes[AUTH_SECRET_MAX];
    size_t len;
};

/* Read the secret at path; if there is none, create it atomically (a
 * temporary file linked into place, mode 0600) with 32 random bytes in
 * hex, so concurrent starters agree on one secret.  Trailing whitespace
 * is not part of the secret.  0, or -1 with a message in err. */
int auth_secret_load(const char *path, struct auth_secret *out,
                     char *err, size_t errlen);

/* Fill hex (PEER_NONCE_HEX + 1 bytes) with a fresh random nonce. 0 / -1. */
int auth_nonce(char *hex, size_t cap);

/* HMAC-SHA256 over the role and the whole handshake, in hex (64 + NUL).
 * role is "listener" or "dialer", so one side's proof never serves as
 * the other's. */
int auth_mac(const struct auth_secret *secret, const char *role,
             const char *dialer, const char *listener,
             const char *dialer_nonce, const char *listener_nonce,
             char *hex, size_t cap);

/* Constant-time equality of two NUL-terminated MACs. */
int auth_mac_equal(const char *a, const char *b);

/* Wipe a secret from memory. */
void auth_secret_clear(struct auth_secret *s);

#endif
