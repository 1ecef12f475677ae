/* peerproto: the server-to-server line protocol (see docs/PEERS.md).
 *
 *   dialer   -> listener  HERD-HELLO FROM TO herd-v2 KEYID   (clear text)
 *   then TLS 1.3 on the same connection, and inside it:
 *   listener -> dialer    HERD-UP
 *   either way, once up:
 *                         HERD-AT <stored AT line>
 *                         HERD-SYNCED COUNT
 *                         HERD-PING
 *                         HERD-RESUME EPOCH SEQ   where I am in your log
 *                         HERD-MARK EPOCH SEQ     my log up to SEQ is sent
 * EPOCH is 16 lowercase hex digits (all zero: no log), SEQ decimal.
 */
#ifndef HERD_PEERPROTO_H
#define HERD_PEERPROTO_H

#include <stddef.h>
#include "protocol.h"

#define PEER_NONCE_HEX 32       /* herd-v1 HELLO: 16 random bytes */
#define PEER_KEY_ID_HEX 16      /* AUTH_KEY_ID_HEX */
#define PEER_PROTOCOL "herd-v2"
/* The longest AT line any node stores or sends: a client line of the
 * largest max_line herd.ini allows (CONFIG_MAX_LINE_MAX, 1 MiB) becomes
 * "AT NAME DIFF" and its operands, well within 256 more bytes.  Every
 * link admits it, whatever each node's own max_line, so a record one
 * node holds can always reach the others. */
#define PEER_RECORD_MAX ((1u << 20) + 256)
/* The longest peer message: "HERD-AT " and such a record. */
#define PEER_LINE_MAX (PEER_RECORD_MAX + 8)

enum peer_msg_kind {
    PEER_MSG_INVALID = 0,
    PEER_MSG_HELLO,
    PEER_MSG_UP,
    PEER_MSG_AT,
    PEER_MSG_SYNCED,
    PEER_MSG_PING,
    PEER_MSG_RESUME,
    PEER_MSG_MARK,
};

#define PEER_EPOCH_HEX 16

struct peer_msg {
    enum peer_msg_kind kind;
    struct proto_span from, to;             /* HELLO */
    /* HELLO: 2 for this protocol (key_id set); 1 for an old node's
     * "HERD-HELLO FROM TO NONCE", parsed only to be refused clearly. */
    int version;
    char key_id[PEER_KEY_ID_HEX + 1];
    struct proto_span at_line;              /* AT: the stored line */
    struct proto_at at;                     /* AT: parsed */
    unsigned long long count;               /* SYNCED */
    unsigned long long epoch, seq;          /* RESUME, MARK */
};

/* True when the line's first field starts with "HERD-": a peer message,
 * whether well formed or not. */
int peer_is_peer_line(const char *line, size_t len);

/* Parse one peer line.  Returns the kind (PEER_MSG_INVALID when malformed). */
enum peer_msg_kind peer_parse(const char *line, size_t len, struct peer_msg *out);

/* Formatters: return the length needed (without NUL), like snprintf;
 * peer_format_at() writes only when it fits, the others may leave a cut
 * line, so callers give room for the longest (256 bytes do).  Each line
 * ends in "\n". */
size_t peer_format_hello(const char *from, const char *to, const char *key_id,
                         char *buf, size_t cap);
size_t peer_format_up(char *buf, size_t cap);
/* A listener's clear-text refusal of a HELLO (no TLS follows). */
size_t peer_format_refused(const char *why, char *buf, size_t cap);
size_t peer_format_at(const char *at_line, size_t at_len, char *buf, size_t cap);
size_t peer_format_synced(unsigned long long count, char *buf, size_t cap);
size_t peer_format_ping(char *buf, size_t cap);
size_t peer_format_resume(unsigned long long epoch, unsigned long long seq,
                          char *buf, size_t cap);
size_t peer_format_mark(unsigned long long epoch, unsigned long long seq,
                        char *buf, size_t cap);

#endif
