/* fuzz_peer_line: peer_parse() on any bytes.  Every message that parses
 * must obey peerproto.h (names, lower-case hex of the right length, a
 * canonical AT line), and writing it again with the peer_format_*
 * function of its kind must parse back to the same message. */
#include "tests/fuzz/fuzz.h"

#include "common/config.h"
#include "common/peerproto.h"

/* herd.ini's rule for node names (tests/unit/test_config.c pins it). */
static int valid_name(struct proto_span s)
{
    return config_name_valid(s.p, s.len);
}

static int lower_hex(const char *s, size_t want)
{
    if (strlen(s) != want)
        return 0;
    for (size_t i = 0; i < want; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

/* A span as a NUL-terminated copy, for the formatters. */
static void span_copy(struct proto_span s, char *out, size_t cap)
{
    FUZZ_CHECK(s.len < cap);
    memcpy(out, s.p, s.len);
    out[s.len] = '\0';
}

static void check_message(const struct peer_msg *m, const char *line,
                          size_t len)
{
    switch (m->kind) {
    case PEER_MSG_HELLO:
        FUZZ_CHECK(valid_name(m->from) && valid_name(m->to));
        FUZZ_CHECK(m->version == 1 || m->version == 2);
        /* herd-v2 names its key; an old node's HELLO is only told apart. */
        if (m->version == 2)
            FUZZ_CHECK(lower_hex(m->key_id, PEER_KEY_ID_HEX));
        else
            FUZZ_CHECK(m->key_id[0] == '\0');
        break;
    case PEER_MSG_UP:
        break;
    case PEER_MSG_AT: {
        struct proto_at again;
        FUZZ_CHECK(fuzz_within(m->at_line.p, m->at_line.len, line, len));
        FUZZ_CHECK(m->at_line.p == line + 8);
        FUZZ_CHECK(memcmp(line, "HERD-AT ", 8) == 0);
        FUZZ_CHECK(proto_parse_at(m->at_line.p, m->at_line.len, &again) == 0);
        FUZZ_CHECK(m->at.server.len > 0 && m->at.id.len > 0);
        FUZZ_CHECK(m->at.client_time.nsec >= 0 &&
                   m->at.client_time.nsec < 1000000000);
        break;
    }
    case PEER_MSG_SYNCED:
    case PEER_MSG_PING:
        break;
    case PEER_MSG_RESUME:
    case PEER_MSG_MARK:
        FUZZ_CHECK(m->seq < 10000000000000000000ULL);
        break;
    case PEER_MSG_INVALID:
    default:
        FUZZ_CHECK(0);
    }
}

/* Write m again with its formatter (kinds the node never writes, an
 * old node's HELLO, are not asked for). */
static char *reformat(const struct peer_msg *m, size_t *len)
{
    char from[CONFIG_NAME_MAX + 1], to[CONFIG_NAME_MAX + 1];
    size_t need = 0;
    char *buf, probe[1];

    if (m->kind == PEER_MSG_HELLO) {
        span_copy(m->from, from, sizeof from);
        span_copy(m->to, to, sizeof to);
    }
    for (int pass = 0; pass < 2; pass++) {
        size_t cap = pass == 0 ? 0 : need + 1;
        char *out = pass == 0 ? probe : malloc(cap);
        size_t got = 0;

        FUZZ_CHECK(out);
        switch (m->kind) {
        case PEER_MSG_HELLO:
            got = peer_format_hello(from, to, m->key_id, out, cap);
            break;
        case PEER_MSG_UP:
            got = peer_format_up(out, cap);
            break;
        case PEER_MSG_AT:
            got = peer_format_at(m->at_line.p, m->at_line.len, out, cap);
            break;
        case PEER_MSG_SYNCED:
            got = peer_format_synced(m->count, out, cap);
            break;
        case PEER_MSG_PING:
            got = peer_format_ping(out, cap);
            break;
        case PEER_MSG_RESUME:
            got = peer_format_resume(m->epoch, m->seq, out, cap);
            break;
        case PEER_MSG_MARK:
            got = peer_format_mark(m->epoch, m->seq, out, cap);
            break;
        default:
            FUZZ_CHECK(0);
        }
        if (pass == 0) {
            need = got;
            continue;
        }
        FUZZ_CHECK(got == need);
        FUZZ_CHECK(out[need] == '\0' && need > 0 && out[need - 1] == '\n');
        buf = out;
    }
    *len = need;
    return buf;
}

/* Too small by one: a formatter must write nothing past cap (ASan sees
 * a write past the exact-size buffer) and still say what it needs. */
static void check_short_buffer(const struct peer_msg *m, size_t need)
{
    char *small = malloc(need);

    FUZZ_CHECK(small);
    if (m->kind == PEER_MSG_AT)
        FUZZ_CHECK(peer_format_at(m->at_line.p, m->at_line.len, small,
                                  need) == need);
    else if (m->kind == PEER_MSG_SYNCED)
        FUZZ_CHECK(peer_format_synced(m->count, small, need) == need);
    free(small);
}

static void check_same(const struct peer_msg *a, const struct peer_msg *b)
{
    FUZZ_CHECK(a->kind == b->kind);
    FUZZ_CHECK(fuzz_bytes_eq(a->from.p, a->from.len, b->from.p, b->from.len));
    FUZZ_CHECK(fuzz_bytes_eq(a->to.p, a->to.len, b->to.p, b->to.len));
    FUZZ_CHECK(a->version == b->version);
    FUZZ_CHECK(strcmp(a->key_id, b->key_id) == 0);
    FUZZ_CHECK(a->count == b->count);
    FUZZ_CHECK(a->epoch == b->epoch && a->seq == b->seq);
    FUZZ_CHECK(fuzz_bytes_eq(a->at_line.p, a->at_line.len, b->at_line.p,
                             b->at_line.len));
    if (a->kind == PEER_MSG_AT) {
        FUZZ_CHECK(htime_cmp(a->at.client_time, b->at.client_time) == 0);
        FUZZ_CHECK(fuzz_bytes_eq(a->at.id.p, a->at.id.len, b->at.id.p,
                                 b->at.id.len));
        FUZZ_CHECK(fuzz_bytes_eq(a->at.diff.p, a->at.diff.len, b->at.diff.p,
                                 b->at.diff.len));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *line = (const char *)data;
    struct peer_msg m, back;
    enum peer_msg_kind kind;
    size_t len;
    char *text;

    kind = peer_parse(line, size, &m);
    FUZZ_CHECK(kind == m.kind);
    if (kind == PEER_MSG_INVALID)
        return 0;
    /* Whatever parses is a peer line: a client port must refuse it. */
    FUZZ_CHECK(peer_is_peer_line(line, size));
    check_message(&m, line, size);
    if (kind == PEER_MSG_HELLO && m.version == 1)
        return 0;

    text = reformat(&m, &len);
    check_short_buffer(&m, len);
    FUZZ_CHECK(peer_parse(text, len, &back) == kind);
    check_message(&back, text, len);
    check_same(&m, &back);
    /* ...and the same without the "\n" it was written with. */
    FUZZ_CHECK(peer_parse(text, len - 1, &back) == kind);
    check_same(&m, &back);
    free(text);
    return 0;
}
