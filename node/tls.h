/* tls: TLS 1.3 for the links, keyed by an external pre-shared key (see
 * docs/PEERS.md).  The TLS engine works on memory BIOs: it never touches
 * a socket, so conn.c keeps doing every read and write on the libev loop,
 * and "want read" / "want write" are simply "wait for the read watcher"
 * and "queue the bytes for the write watcher". */
#ifndef HERD_TLS_H
#define HERD_TLS_H

#include <stddef.h>
#include <sys/types.h>

#include "common/auth.h"
#include "common/buf.h"

struct tls;

/* The process-wide contexts (one client, one server).  0 / -1. */
int tls_global_init(void);
void tls_global_free(void);

/* One connection's TLS, as the dialer (client) or the listener (server).
 * identity is the PSK identity, sent in clear by the client and required
 * byte for byte by the server; psk the key both derived.  NULL when out
 * of memory. */
struct tls *tls_new(int server, const char *identity,
                    const unsigned char psk[AUTH_PSK_LEN]);
void tls_free(struct tls *t);

/* Bytes from the socket.  0, or -1 when the peer is not speaking TLS at
 * all (tls_why() says what it sent instead). */
int tls_feed(struct tls *t, const void *p, size_t n);

/* Ciphertext received but not yet decrypted. */
size_t tls_buffered(const struct tls *t);

/* Drive the handshake: 1 done, 0 needs more input, -1 failed. */
int tls_handshake(struct tls *t);

/* The server has read a ClientHello whose binder proved the PSK (only a
 * replay of a real dialer's could, and a replay cannot finish). */
int tls_hello_proven(const struct tls *t);

/* Decrypt up to cap bytes: > 0 bytes, 0 none available yet, -1 closed or
 * failed (tls_why()). */
ssize_t tls_read(struct tls *t, void *dst, size_t cap);

/* Encrypt n bytes (records of up to 16 KiB).  0 / -1. */
int tls_write(struct tls *t, const void *p, size_t n);

/* Move the ciphertext waiting to go out to the end of wire.  0, or -1
 * when wire's cap refuses it (errno ENOBUFS) or memory is short. */
int tls_drain(struct tls *t, struct buf *wire);

/* Why the last call failed, for the log. */
const char *tls_why(const struct tls *t);

#endif
