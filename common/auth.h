/* auth: the herd secret, the keyring and the keys of the links (key ids,
 * link PSKs).  Uses OpenSSL's libcrypto; knows nothing of sockets. */
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

/* Wipe a secret from memory. */
void auth_secret_clear(struct auth_secret *s);

/* The keyring (docs/PEERS.md "Keys"): the secrets a node accepts links
 * keyed by; the first is the primary, the one it dials with.  Each key is
 * known in logs, HELLO lines and herdctl by its id, a fingerprint that
 * reveals nothing of the secret. */
#define AUTH_KEYS_MAX 16
#define AUTH_KEY_ID_HEX 16      /* 8 bytes of SHA-256 over a label and it */
#define AUTH_PSK_LEN 32

struct auth_key {
    struct auth_secret secret;
    char id[AUTH_KEY_ID_HEX + 1];
};

struct auth_keyring {
    struct auth_key keys[AUTH_KEYS_MAX];
    size_t n;                   /* keys[0] is the primary */
};

/* The key id of a secret (AUTH_KEY_ID_HEX + 1 bytes). */
void auth_key_id(const struct auth_secret *s, char *hex);

/* Parse keyring text: one secret per line (any bytes but a newline, at
 * least AUTH_SECRET_MIN after trailing blanks are dropped), empty lines
 * skipped, the first the primary; a secret given twice counts once.
 * 0, or -1 with a message in err. */
int auth_keyring_parse(const char *text, size_t len, struct auth_keyring *out,
                       char *err, size_t errlen);

/* Load run_dir's keys: keyring_path when that file exists, else the
 * single secret at secret_path (created as auth_secret_load() does).
 * *from_keyring says which.  0, or -1 with a message. */
int auth_keyring_load(const char *keyring_path, const char *secret_path,
                      struct auth_keyring *out, int *from_keyring,
                      char *err, size_t errlen);

/* Write a keyring atomically: a temporary file beside it opened with
 * O_EXCL | O_NOFOLLOW, mode 0600, fsynced, renamed over path. */
int auth_keyring_write(const char *path, const struct auth_keyring *ring,
                       char *err, size_t errlen);

/* The key with this id, or NULL. */
const struct auth_key *auth_keyring_find(const struct auth_keyring *ring,
                                         const char *id, size_t id_len);

/* The link's pre-shared key for TLS: HKDF-SHA256 of the secret, bound to
 * the dialer's and the listener's names in that order (the roles). */
int auth_link_psk(const struct auth_secret *s, const char *dialer,
                  const char *listener, unsigned char psk[AUTH_PSK_LEN]);

void auth_keyring_clear(struct auth_keyring *ring);

#endif
