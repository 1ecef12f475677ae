#include "peerproto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

static int span_is(struct proto_span s, const char *word)
{
    size_t n = strlen(word);
    return s.len == n && memcmp(s.p, word, n) == 0;
}

static int copy_hex(struct proto_span s, size_t want, char *out)
{
    if (s.len != want)
        return -1;
    for (size_t i = 0; i < s.len; i++) {
        char c = s.p[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return -1;
    }
    memcpy(out, s.p, want);
    out[want] = '\0';
    return 0;
}

/* Names on the wire are herd.ini's node names. */
static int valid_name(struct proto_span s)
{
    return config_name_valid(s.p, s.len);
}

/* A decimal number of 1 to 19 digits (never overflows 64 bits). */
static int parse_dec(struct proto_span s, unsigned long long *out)
{
    unsigned long long v = 0;

    if (s.len == 0 || s.len > 19)
        return -1;
    for (size_t i = 0; i < s.len; i++) {
        if (s.p[i] < '0' || s.p[i] > '9')
            return -1;
        v = v * 10 + (unsigned)(s.p[i] - '0');
    }
    *out = v;
    return 0;
}

/* An epoch: exactly PEER_EPOCH_HEX lowercase hex digits. */
static int parse_epoch(struct proto_span s, unsigned long long *out)
{
    char hex[PEER_EPOCH_HEX + 1];

    if (copy_hex(s, PEER_EPOCH_HEX, hex) < 0)
        return -1;
    *out = strtoull(hex, NULL, 16);
    return 0;
}

int peer_is_peer_line(const char *line, size_t len)
{
    size_t i = 0;

    while (i < len && proto_is_space((unsigned char)line[i]))
        i++;
    return len - i >= 5 && memcmp(line + i, "HERD-", 5) == 0;
}

enum peer_msg_kind peer_parse(const char *line, size_t len, struct peer_msg *out)
{
    struct proto_span f[5];
    size_t n;

    memset(out, 0, sizeof *out);
    /* The formatters end lines in "\n"; take the line with or without it
     * (and a CR before it), as proto_parse_request() does. */
    if (len > 0 && line[len - 1] == '\n')
        len--;
    if (len > 0 && line[len - 1] == '\r')
        len--;
    n = proto_split(line, len, f, 5);
    if (n == 0)
        return PEER_MSG_INVALID;

    if (span_is(f[0], "HERD-HELLO") && (n == 4 || n == 5)) {
        char nonce[PEER_NONCE_HEX + 1];

        if (!valid_name(f[1]) || !valid_name(f[2]))
            return PEER_MSG_INVALID;
        if (n == 5) {
            if (!span_is(f[3], PEER_PROTOCOL) ||
                copy_hex(f[4], PEER_KEY_ID_HEX, out->key_id) < 0)
                return PEER_MSG_INVALID;
            out->version = 2;
        } else {
            /* herd-v1: recognised so that it can be refused by name. */
            if (copy_hex(f[3], PEER_NONCE_HEX, nonce) < 0)
                return PEER_MSG_INVALID;
            out->version = 1;
        }
        out->from = f[1];
        out->to = f[2];
        return out->kind = PEER_MSG_HELLO;
    }
    if (span_is(f[0], "HERD-UP") && n == 1)
        return out->kind = PEER_MSG_UP;
    if (span_is(f[0], "HERD-AT")) {
        /* The stored line follows "HERD-AT " exactly. */
        if (f[0].p != line || len < 9 || line[8 - 1] != ' ')
            return PEER_MSG_INVALID;
        out->at_line.p = line + 8;
        out->at_line.len = len - 8;
        if (proto_parse_at(out->at_line.p, out->at_line.len, &out->at) < 0)
            return PEER_MSG_INVALID;
        return out->kind = PEER_MSG_AT;
    }
    if (span_is(f[0], "HERD-SYNCED") && n == 2) {
        if (parse_dec(f[1], &out->count) < 0)
            return PEER_MSG_INVALID;
        return out->kind = PEER_MSG_SYNCED;
    }
    if ((span_is(f[0], "HERD-RESUME") || span_is(f[0], "HERD-MARK")) &&
        n == 3) {
        if (parse_epoch(f[1], &out->epoch) < 0 ||
            parse_dec(f[2], &out->seq) < 0)
            return PEER_MSG_INVALID;
        return out->kind = span_is(f[0], "HERD-MARK") ? PEER_MSG_MARK
                                                      : PEER_MSG_RESUME;
    }
    if (span_is(f[0], "HERD-PING") && n == 1)
        return out->kind = PEER_MSG_PING;
    return PEER_MSG_INVALID;
}

/* snprintf's count as a length (0 on an encoding error, which cannot
 * happen with these formats). */
static size_t fmt_len(int n)
{
    return n < 0 ? 0 : (size_t)n;
}

size_t peer_format_hello(const char *from, const char *to, const char *key_id,
                         char *buf, size_t cap)
{
    return fmt_len(snprintf(buf, cap, "HERD-HELLO %s %s " PEER_PROTOCOL
                            " %s\n", from, to, key_id));
}

size_t peer_format_up(char *buf, size_t cap)
{
    return fmt_len(snprintf(buf, cap, "HERD-UP\n"));
}

size_t peer_format_refused(const char *why, char *buf, size_t cap)
{
    return fmt_len(snprintf(buf, cap, "HERD-REFUSED %s\n", why));
}

size_t peer_format_at(const char *at_line, size_t at_len, char *buf, size_t cap)
{
    size_t need = 8 + at_len + 1;

    if (need + 1 <= cap) {
        memcpy(buf, "HERD-AT ", 8);
        memcpy(buf + 8, at_line, at_len);
        buf[8 + at_len] = '\n';
        buf[need] = '\0';
    }
    return need;
}

size_t peer_format_synced(unsigned long long count, char *buf, size_t cap)
{
    return fmt_len(snprintf(buf, cap, "HERD-SYNCED %llu\n", count));
}

size_t peer_format_ping(char *buf, size_t cap)
{
    return fmt_len(snprintf(buf, cap, "HERD-PING\n"));
}

size_t peer_format_resume(unsigned long long epoch, unsigned long long seq,
                          char *buf, size_t cap)
{
    return fmt_len(snprintf(buf, cap, "HERD-RESUME %016llx %llu\n", epoch,
                            seq));
}

size_t peer_format_mark(unsigned long long epoch, unsigned long long seq,
                        char *buf, size_t cap)
{
    return fmt_len(snprintf(buf, cap, "HERD-MARK %016llx %llu\n", epoch, seq));
}
