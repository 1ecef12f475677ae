/* peerproto: the server-to-server line protocol (see docs/PEERS.md).
 *
 *   dialer   -> listener  HERD-HELLO FROM TO NONCE
 *   listener -> dialer    HERD-CHALLENGE FROM NONCE MAC
 *   dialer   -> listener  HERD-AUTH MAC
 *   either way, once authenticated:
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

#define PEER_NONCE_HEX 32       /* 16 random bytes */
#define PEER_MAC_HEX 64         /* HMAC-SHA256 */
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
    PEER_MSG_CHALLENGE,
    PEER_MSG_AUTH,
    PEER_MSG_AT,
    PEER_MSG_SYNCED,
    PEER_MSG_PING,
    PEER_MSG_RESUME,
    PEER_MSG_MARK,
};

#define PEER_EPOCH_HEX 16

struct peer_msg {
    enum peer_msg_kind kind;
    struct proto_span from, to;             /* HELLO, CHALLENGE (from) */
    char nonce[PEER_NONCE_HEX + 1];         /* HELLO, CHALLENGE */
    char mac[PEER_MAC_HEX + 1];             /* CHALLENGE, AUTH */
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
size_t peer_format_hello(const char *from, const char *to, const char *nonce,
                         char *buf, size_t cap);
size_t peer_format_challenge(const char *from, const char *nonce,
                             const char *mac, char *buf, size_t cap);
size_t peer_format_auth(const char *mac, char *buf, size_t cap);
size_t peer_format_at(const char *at_line, size_t at_len, char *buf, size_t cap);
size_t peer_format_synced(unsigned long long count, char *buf, size_t cap);
size_t peer_format_ping(char *buf, size_t cap);
size_t peer_format_resume(unsigned long long epoch, unsigned long long seq,
                          char *buf, size_t cap);
size_t peer_format_mark(unsigned long long epoch, unsigned long long seq,
                        char *buf, size_t cap);

#endif
