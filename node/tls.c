#include "tls.h"

#include <errno.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

#define IDENTITY_MAX 256

struct tls {
    SSL *ssl;
    BIO *rbio, *wbio;           /* socket bytes in, socket bytes out */
    int server;
    int fed;                    /* some input seen (the plain-text check) */
    int psk_found;              /* server: the identity matched */
    char identity[IDENTITY_MAX];
    size_t identity_len;
    unsigned char psk[AUTH_PSK_LEN];
    char why[200];
};

static SSL_CTX *client_ctx, *server_ctx;
/* TLS_AES_128_GCM_SHA256: the one suite both sides offer, and the one the
 * PSK's session names (its hash must be the handshake's). */
static const unsigned char suite_id[2] = { 0x13, 0x01 };

static SSL_SESSION *psk_session(SSL *ssl, const struct tls *t)
{
    const SSL_CIPHER *cipher = SSL_CIPHER_find(ssl, suite_id);
    SSL_SESSION *s = SSL_SESSION_new();

    if (!s || !cipher || !SSL_SESSION_set1_master_key(s, t->psk, sizeof t->psk) ||
        !SSL_SESSION_set_cipher(s, cipher) ||
        !SSL_SESSION_set_protocol_version(s, TLS1_3_VERSION)) {
        SSL_SESSION_free(s);
        return NULL;
    }
    return s;
}

static int use_session(SSL *ssl, const EVP_MD *md, const unsigned char **id,
                       size_t *idlen, SSL_SESSION **sess)
{
    struct tls *t = SSL_get_app_data(ssl);

    (void)md;
    *sess = psk_session(ssl, t);
    if (!*sess)
        return 0;
    *id = (const unsigned char *)t->identity;
    *idlen = t->identity_len;
    return 1;
}

static int find_session(SSL *ssl, const unsigned char *identity,
                        size_t identity_len, SSL_SESSION **sess)
{
    struct tls *t = SSL_get_app_data(ssl);

    /* The identity names both nodes and the key, exactly as the plain
     * HERD-HELLO did; anything else gets no key, and the handshake fails
     * (there is no certificate to fall back on). */
    *sess = NULL;
    if (identity_len != t->identity_len ||
        CRYPTO_memcmp(identity, t->identity, identity_len) != 0)
        return 1;
    *sess = psk_session(ssl, t);
    if (!*sess)
        return 0;
    t->psk_found = 1;
    return 1;
}

static SSL_CTX *new_ctx(int server)
{
    SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());

    if (!ctx)
        return NULL;
    if (!SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) ||
        !SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) ||
        !SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256") ||
        !SSL_CTX_set1_groups_list(ctx, "X25519")) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    /* No tickets, no session cache, no early data: every link handshake
     * is a full PSK + (EC)DHE handshake with fresh randoms on both sides,
     * so nothing recorded can be replayed into a working session. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    SSL_CTX_clear_options(ctx, SSL_OP_ENABLE_MIDDLEBOX_COMPAT);
    if (server) {
        SSL_CTX_set_num_tickets(ctx, 0);
        SSL_CTX_set_psk_find_session_callback(ctx, find_session);
    } else {
        SSL_CTX_set_psk_use_session_callback(ctx, use_session);
    }
    return ctx;
}

int tls_global_init(void)
{
    client_ctx = new_ctx(0);
    server_ctx = new_ctx(1);
    if (!client_ctx || !server_ctx) {
        tls_global_free();
        return -1;
    }
    return 0;
}

void tls_global_free(void)
{
    SSL_CTX_free(client_ctx);
    SSL_CTX_free(server_ctx);
    client_ctx = server_ctx = NULL;
}

struct tls *tls_new(int server, const char *identity,
                    const unsigned char psk[AUTH_PSK_LEN])
{
    struct tls *t;
    size_t len = strlen(identity);

    if (len >= IDENTITY_MAX)
        return NULL;
    t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->server = server;
    memcpy(t->identity, identity, len + 1);
    t->identity_len = len;
    memcpy(t->psk, psk, AUTH_PSK_LEN);
    return t;
}

/* The engine itself, made only when there is TLS to do: a HELLO that
 * never sends a TLS byte, or sends something else, costs no SSL object
 * (a flood of them stays cheap).  0 / -1. */
static int engine(struct tls *t)
{
    if (t->ssl)
        return 0;
    t->ssl = SSL_new(t->server ? server_ctx : client_ctx);
    t->rbio = BIO_new(BIO_s_mem());
    t->wbio = BIO_new(BIO_s_mem());
    if (!t->ssl || !t->rbio || !t->wbio) {
        BIO_free(t->rbio);
        BIO_free(t->wbio);
        SSL_free(t->ssl);
        t->ssl = NULL;
        t->rbio = t->wbio = NULL;
        snprintf(t->why, sizeof t->why, "out of memory");
        return -1;
    }
    /* An empty memory BIO means "no more yet", not end of file. */
    BIO_set_mem_eof_return(t->rbio, -1);
    SSL_set_bio(t->ssl, t->rbio, t->wbio);
    SSL_set_app_data(t->ssl, t);
    if (t->server)
        SSL_set_accept_state(t->ssl);
    else
        SSL_set_connect_state(t->ssl);
    return 0;
}

void tls_free(struct tls *t)
{
    if (!t)
        return;
    SSL_free(t->ssl);           /* frees both BIOs (NULL is fine) */
    OPENSSL_cleanse(t->psk, sizeof t->psk);
    free(t);
}

int tls_feed(struct tls *t, const void *p, size_t n)
{
    const unsigned char *b = p;

    if (n == 0)
        return 0;
    if (!t->fed) {
        t->fed = 1;
        /* A TLS record starts with its content type, 20 to 23.  Anything
         * else is a plain-text answer: an old node (herd-v1) answering
         * our HERD-HELLO, or a refusal line; say what it was. */
        if (b[0] < 20 || b[0] > 23) {
            char esc[120];
            size_t show = n > 60 ? 60 : n;
            const unsigned char *nl = memchr(b, '\n', show);

            if (nl)
                show = (size_t)(nl - b);
            log_escape((const char *)b, show, esc, sizeof esc);
            snprintf(t->why, sizeof t->why, "not TLS: the other side sent "
                     "\"%s\"", esc);
            return -1;
        }
    }
    if (engine(t) < 0)
        return -1;
    if (BIO_write(t->rbio, p, (int)n) != (int)n) {
        snprintf(t->why, sizeof t->why, "out of memory");
        return -1;
    }
    return 0;
}

size_t tls_buffered(const struct tls *t)
{
    if (!t->ssl)
        return 0;
    return BIO_ctrl_pending(t->rbio) + (size_t)SSL_pending(t->ssl);
}

static void set_error(struct tls *t, int rc, const char *what)
{
    int e = SSL_get_error(t->ssl, rc);
    unsigned long code = ERR_get_error();
    const char *reason = code ? ERR_reason_error_string(code) : NULL;

    if (e == SSL_ERROR_ZERO_RETURN)
        snprintf(t->why, sizeof t->why, "closed by the other side");
    else
        snprintf(t->why, sizeof t->why, "TLS %s failed: %s", what,
                 reason ? reason : "protocol error");
    ERR_clear_error();
}

int tls_handshake(struct tls *t)
{
    int rc;

    /* A server waits for the ClientHello before it makes its engine. */
    if (!t->ssl && (t->server || engine(t) < 0))
        return t->server ? 0 : -1;
    rc = SSL_do_handshake(t->ssl);

    if (rc == 1)
        return 1;
    if (SSL_get_error(t->ssl, rc) == SSL_ERROR_WANT_READ)
        return 0;
    set_error(t, rc, "handshake");
    return -1;
}

int tls_hello_proven(const struct tls *t)
{
    return t->ssl && t->psk_found && SSL_session_reused(t->ssl);
}

ssize_t tls_read(struct tls *t, void *dst, size_t cap)
{
    int rc = SSL_read(t->ssl, dst, cap > (1u << 30) ? (1 << 30) : (int)cap);

    if (rc > 0)
        return rc;
    if (SSL_get_error(t->ssl, rc) == SSL_ERROR_WANT_READ)
        return 0;
    set_error(t, rc, "read");
    return -1;
}

int tls_write(struct tls *t, const void *p, size_t n)
{
    int rc;

    if (n == 0)
        return 0;
    rc = SSL_write(t->ssl, p, (int)n);
    if (rc == (int)n)
        return 0;
    set_error(t, rc, "write");
    return -1;
}

int tls_drain(struct tls *t, struct buf *wire)
{
    size_t pending;

    while (t->wbio && (pending = BIO_ctrl_pending(t->wbio)) > 0) {
        size_t room;
        char *dst = buf_space(wire, pending, &room);
        int got;

        if (!dst) {
            snprintf(t->why, sizeof t->why, "%s", errno == ENOBUFS ?
                     "output queue full (peer not reading)" : "out of memory");
            return -1;
        }
        got = BIO_read(t->wbio, dst, (int)(room < pending ? room : pending));
        if (got <= 0)
            break;
        buf_commit(wire, (size_t)got);
    }
    return 0;
}

const char *tls_why(const struct tls *t)
{
    return t->why[0] ? t->why : "TLS failed";
}
