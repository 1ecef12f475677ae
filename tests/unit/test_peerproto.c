/* peerproto: the server-to-server lines, each kind, and their refusals. */
#include "tests/unit/unit.h"

#include "common/config.h"
#include "common/peerproto.h"

#define NONCE "0123456789abcdef0123456789abcdef"     /* herd-v1 */
#define KID "0123456789abcdef"
#define MAC "00112233445566778899aabbccddeeff" \
            "ffeeddccbbaa99887766554433221100"
#define AT_EX "AT Hill +0.263873386 kiwi.cs.ucla.edu +34.068930-118.445127 " \
              "1621464827.959498503"

static int span_eq(struct proto_span s, const char *p, size_t len)
{
    return s.len == len && memcmp(s.p, p, len) == 0;
}

#define assert_span(s, lit) assert_true(span_eq((s), LIT(lit)))

static enum peer_msg_kind kind_of(const char *line, size_t len)
{
    struct peer_msg m;

    return peer_parse(line, len, &m);
}

static void invalid(const char *line, size_t len)
{
    struct peer_msg m;

    memset(&m, 0x5a, sizeof m);
    if (peer_parse(line, len, &m) != PEER_MSG_INVALID)
        fail_msg("peer line accepted: \"%.*s\"", (int)len, line);
    assert_int_equal(m.kind, PEER_MSG_INVALID);
}

#define INVALID(s) invalid(LIT(s))

static void test_is_peer_line(void **state)
{
    (void)state;
    assert_true(peer_is_peer_line(LIT("HERD-AT x")));
    assert_true(peer_is_peer_line(LIT("HERD-")));
    assert_true(peer_is_peer_line(LIT("HERD-NONSENSE")));
    assert_true(peer_is_peer_line(LIT(" \t\r\n\f\vHERD-PING")));
    assert_false(peer_is_peer_line(LIT("")));
    assert_false(peer_is_peer_line(LIT("HERD")));
    assert_false(peer_is_peer_line("HERD-", 4));
    assert_false(peer_is_peer_line(LIT("herd-ping")));
    assert_false(peer_is_peer_line(LIT("HERD_PING")));
    assert_false(peer_is_peer_line(LIT("\0HERD-PING")));
    assert_false(peer_is_peer_line(LIT("IAMAT HERD-AT")));
    assert_false(peer_is_peer_line(LIT("   ")));
}

static void test_hello(void **state)
{
    struct peer_msg m;

    (void)state;
    assert_int_equal(peer_parse(LIT("HERD-HELLO Hill Jaquez herd-v2 " KID), &m),
                     PEER_MSG_HELLO);
    assert_int_equal(m.kind, PEER_MSG_HELLO);
    assert_int_equal(m.version, 2);
    assert_span(m.from, "Hill");
    assert_span(m.to, "Jaquez");
    assert_string_equal(m.key_id, KID);
    /* Names of the config's alphabet, up to CONFIG_NAME_MAX. */
    assert_int_equal(kind_of(LIT("HERD-HELLO a.b-c_D9 Z herd-v2 " KID)),
                     PEER_MSG_HELLO);
    INVALID("HERD-HELLO Hi!l Jaquez herd-v2 " KID);
    INVALID("HERD-HELLO Hill Jaq/uez herd-v2 " KID);
    INVALID("HERD-HELLO Hill Jaquez\0 herd-v2 " KID);
    /* The protocol, exactly. */
    INVALID("HERD-HELLO Hill Jaquez herd-v3 " KID);
    INVALID("HERD-HELLO Hill Jaquez HERD-V2 " KID);
    INVALID("HERD-HELLO Hill Jaquez herd-v2x " KID);
    /* Key id: exactly 16 lowercase hex digits. */
    INVALID("HERD-HELLO Hill Jaquez herd-v2 0123456789abcde");
    INVALID("HERD-HELLO Hill Jaquez herd-v2 0123456789abcdef0");
    INVALID("HERD-HELLO Hill Jaquez herd-v2 0123456789ABCDEF");
    INVALID("HERD-HELLO Hill Jaquez herd-v2 0123456789abcdeg");
    INVALID("HERD-HELLO Hill Jaquez herd-v2 " NONCE);
    /* Operand counts. */
    INVALID("HERD-HELLO");
    INVALID("HERD-HELLO Hill");
    INVALID("HERD-HELLO Hill Jaquez");
    INVALID("HERD-HELLO Hill Jaquez herd-v2");
    INVALID("HERD-HELLO Hill Jaquez herd-v2 " KID " x");
    /* Case of the verb. */
    INVALID("herd-hello Hill Jaquez herd-v2 " KID);
    INVALID("HERD-Hello Hill Jaquez herd-v2 " KID);
}

/* An old node's HELLO (herd-v1) is recognised, so it can be refused by
 * name; its nonce must still be well formed. */
static void test_hello_v1(void **state)
{
    struct peer_msg m;

    (void)state;
    assert_int_equal(peer_parse(LIT("HERD-HELLO Hill Jaquez " NONCE), &m),
                     PEER_MSG_HELLO);
    assert_int_equal(m.version, 1);
    assert_span(m.from, "Hill");
    assert_span(m.to, "Jaquez");
    assert_string_equal(m.key_id, "");
    INVALID("HERD-HELLO Hill Jaquez 0123456789abcdef0123456789abcde");
    INVALID("HERD-HELLO Hill Jaquez 0123456789abcdef0123456789abcdef0");
    INVALID("HERD-HELLO Hill Jaquez 0123456789ABCDEF0123456789ABCDEF");
    INVALID("HERD-HELLO Hill Jaquez 0123456789abcdef0123456789abcde\0");
    INVALID("HERD-HELLO Hill Jaquez " KID);
}

static void test_names_length(void **state)
{
    char name[CONFIG_NAME_MAX + 2], line[256];
    struct peer_msg m;

    (void)state;
    memset(name, 'n', sizeof name);
    for (int len = CONFIG_NAME_MAX - 1; len <= CONFIG_NAME_MAX + 1; len++) {
        int n = snprintf(line, sizeof line, "HERD-HELLO %.*s B herd-v2 " KID,
                         len, name);
        assert_int_equal(peer_parse(line, (size_t)n, &m),
                         len <= CONFIG_NAME_MAX ? PEER_MSG_HELLO
                                              : PEER_MSG_INVALID);
        n = snprintf(line, sizeof line, "HERD-HELLO A %.*s herd-v2 " KID,
                     len, name);
        assert_int_equal(peer_parse(line, (size_t)n, &m),
                         len <= CONFIG_NAME_MAX ? PEER_MSG_HELLO
                                              : PEER_MSG_INVALID);
    }
}

static void test_up(void **state)
{
    (void)state;
    assert_int_equal(kind_of(LIT("HERD-UP")), PEER_MSG_UP);
    assert_int_equal(kind_of(LIT("HERD-UP\r\n")), PEER_MSG_UP);
    INVALID("HERD-UP x");
    INVALID("HERD-UPX");
    INVALID("herd-up");
    /* The retired herd-v1 proofs are no messages now. */
    INVALID("HERD-AUTH " MAC);
    INVALID("HERD-CHALLENGE Smith " NONCE " " MAC);
}

static void test_at(void **state)
{
    struct peer_msg m;

    (void)state;
    assert_int_equal(peer_parse(LIT("HERD-AT " AT_EX), &m), PEER_MSG_AT);
    assert_span(m.at_line, AT_EX);
    assert_span(m.at.server, "Hill");
    assert_span(m.at.diff, "+0.263873386");
    assert_span(m.at.id, "kiwi.cs.ucla.edu");
    assert_span(m.at.location, "+34.068930-118.445127");
    assert_span(m.at.time, "1621464827.959498503");
    assert_int_equal(m.at.client_time.sec, 1621464827);
    assert_int_equal(m.at.client_time.nsec, 959498503);
    /* A line ending (CRLF or LF) is not part of the stored line. */
    assert_int_equal(peer_parse(LIT("HERD-AT " AT_EX "\r"), &m), PEER_MSG_AT);
    assert_span(m.at_line, AT_EX);
    assert_int_equal(peer_parse(LIT("HERD-AT " AT_EX "\n"), &m), PEER_MSG_AT);
    assert_span(m.at_line, AT_EX);
    assert_int_equal(peer_parse(LIT("HERD-AT " AT_EX "\r\n"), &m), PEER_MSG_AT);
    assert_span(m.at_line, AT_EX);
    /* The client ID may hold any non-whitespace byte, NUL included. */
    assert_int_equal(peer_parse(LIT("HERD-AT AT S +1.000000000 a\0\xff +0+0 1"),
                                &m),
                     PEER_MSG_AT);
    assert_span(m.at.id, "a\0\xff");
    /* Exactly one space after HERD-AT, then a canonical AT line. */
    INVALID("HERD-AT");
    INVALID("HERD-AT ");
    INVALID("HERD-AT  " AT_EX);
    INVALID("HERD-AT\t" AT_EX);
    INVALID(" HERD-AT " AT_EX);
    INVALID("HERD-AT " AT_EX " ");
    INVALID("HERD-AT " AT_EX " x");
    INVALID("HERD-AT " AT_EX "\r\r");
    INVALID("HERD-ATAT Hill +0.263873386 kiwi +34.068930-118.445127 1.5");
    INVALID("HERD-AT AT  Hill +0.263873386 kiwi +34.068930-118.445127 1.5");
    INVALID("HERD-AT AT Hill\t+0.263873386 kiwi +34.068930-118.445127 1.5");
    INVALID("HERD-AT IAMAT kiwi +34.068930-118.445127 1.5");
    INVALID("HERD-AT AT Hill 0.263873386 kiwi +34.068930-118.445127 1.5");
    INVALID("HERD-AT AT Hill +0.263873386 kiwi +91-118 1.5");
    INVALID("HERD-AT AT Hill +0.263873386 kiwi +34.068930-118.445127 1.");
    INVALID("HERD-AT AT Hill +0.263873386 kiwi +34.068930-118.445127");
    INVALID("herd-at " AT_EX);
}

static void test_resume_and_mark(void **state)
{
    struct peer_msg m;
    char buf[128];
    size_t n;

    (void)state;
    assert_int_equal(peer_parse(LIT("HERD-RESUME 00000000000000ff 42"), &m),
                     PEER_MSG_RESUME);
    assert_true(m.epoch == 255 && m.seq == 42);
    assert_int_equal(peer_parse(LIT("HERD-MARK ffffffffffffffff "
                                    "9999999999999999999"), &m),
                     PEER_MSG_MARK);
    assert_true(m.epoch == ~0ULL && m.seq == 9999999999999999999ULL);
    assert_int_equal(peer_parse(LIT("HERD-RESUME 0000000000000000 0\n"), &m),
                     PEER_MSG_RESUME);
    assert_true(m.epoch == 0 && m.seq == 0);
    n = peer_format_resume(0xabcULL, 7, buf, sizeof buf);
    assert_int_equal(n, strlen("HERD-RESUME 0000000000000abc 7\n"));
    assert_string_equal(buf, "HERD-RESUME 0000000000000abc 7\n");
    n = peer_format_mark(1, 18446744073709551615ULL, buf, sizeof buf);
    assert_string_equal(buf, "HERD-MARK 0000000000000001 18446744073709551615\n");
    assert_int_equal(peer_parse(buf, n, &m), PEER_MSG_INVALID);  /* 20 digits */
    INVALID("HERD-RESUME 00000000000000ff");
    INVALID("HERD-RESUME 00000000000000FF 1");  /* lowercase only */
    INVALID("HERD-RESUME 0ff 1");
    INVALID("HERD-RESUME 00000000000000ff -1");
    INVALID("HERD-MARK 00000000000000ff 1 2");
    INVALID("HERD-MARK 000000000000000g 1");
}

static void test_synced(void **state)
{
    struct peer_msg m;

    (void)state;
    assert_int_equal(peer_parse(LIT("HERD-SYNCED 0"), &m), PEER_MSG_SYNCED);
    assert_int_equal(m.count, 0);
    assert_int_equal(peer_parse(LIT("HERD-SYNCED 00042"), &m),
                     PEER_MSG_SYNCED);
    assert_int_equal(m.count, 42);
    assert_int_equal(peer_parse(LIT("HERD-SYNCED 9999999999999999999"), &m),
                     PEER_MSG_SYNCED);
    assert_true(m.count == 9999999999999999999ULL);
    assert_int_equal(peer_parse(LIT("HERD-SYNCED 7\r"), &m), PEER_MSG_SYNCED);
    assert_int_equal(m.count, 7);
    INVALID("HERD-SYNCED");
    INVALID("HERD-SYNCED 1 2");
    INVALID("HERD-SYNCED -1");
    INVALID("HERD-SYNCED +1");
    INVALID("HERD-SYNCED 1a");
    INVALID("HERD-SYNCED 0x10");
    INVALID("HERD-SYNCED 1.0");
    INVALID("HERD-SYNCED 1e3");
    INVALID("HERD-SYNCED 18446744073709551616");
    INVALID("HERD-SYNCED 99999999999999999999");
    INVALID("HERD-SYNCED 1\0");
}

static void test_ping(void **state)
{
    (void)state;
    assert_int_equal(kind_of(LIT("HERD-PING")), PEER_MSG_PING);
    assert_int_equal(kind_of(LIT("HERD-PING\r")), PEER_MSG_PING);
    assert_int_equal(kind_of(LIT("HERD-PING\n")), PEER_MSG_PING);
    INVALID("HERD-PING x");
    INVALID("HERD-PING\0");
    INVALID("HERD-PINGX");
    INVALID("HERD-PIN");
}

static void test_unknown(void **state)
{
    (void)state;
    INVALID("");
    INVALID("\r");
    INVALID(" \t ");
    INVALID("HERD-");
    INVALID("HERD-NOPE a b c");
    INVALID("HERD-hello Hill Jaquez " NONCE);
    INVALID("IAMAT kiwi +34.068930-118.445127 1621464827.959498503");
    INVALID("WHATSAT kiwi 10 5");
    INVALID(AT_EX);
}

/* Every formatter: exact bytes, the length, and a parse of its output. */
static void test_formatters(void **state)
{
    char buf[512];
    struct peer_msg m;
    size_t n;

    (void)state;
    n = peer_format_hello("Hill", "Jaquez", KID, buf, sizeof buf);
    assert_string_equal(buf, "HERD-HELLO Hill Jaquez herd-v2 " KID "\n");
    assert_int_equal(n, strlen(buf));
    assert_int_equal(peer_parse(buf, n - 1, &m), PEER_MSG_HELLO);
    assert_span(m.from, "Hill");
    assert_span(m.to, "Jaquez");
    assert_string_equal(m.key_id, KID);

    n = peer_format_up(buf, sizeof buf);
    assert_string_equal(buf, "HERD-UP\n");
    assert_int_equal(n, 8);
    assert_int_equal(peer_parse(buf, n, &m), PEER_MSG_UP);

    n = peer_format_refused("key " KID " is not in the keyring", buf,
                            sizeof buf);
    assert_string_equal(buf, "HERD-REFUSED key " KID " is not in the keyring\n");
    assert_int_equal(n, strlen(buf));

    n = peer_format_at(LIT(AT_EX), buf, sizeof buf);
    assert_string_equal(buf, "HERD-AT " AT_EX "\n");
    assert_int_equal(n, strlen(buf));
    assert_int_equal(peer_parse(buf, n - 1, &m), PEER_MSG_AT);
    assert_span(m.at_line, AT_EX);
    assert_int_equal(peer_parse(buf, n, &m), PEER_MSG_AT);
    assert_span(m.at_line, AT_EX);

    n = peer_format_synced(12345678901234567890ULL, buf, sizeof buf);
    assert_string_equal(buf, "HERD-SYNCED 12345678901234567890\n");
    assert_int_equal(n, strlen(buf));
    n = peer_format_synced(0, buf, sizeof buf);
    assert_string_equal(buf, "HERD-SYNCED 0\n");
    assert_int_equal(peer_parse(buf, n - 1, &m), PEER_MSG_SYNCED);
    assert_int_equal(m.count, 0);

    n = peer_format_ping(buf, sizeof buf);
    assert_string_equal(buf, "HERD-PING\n");
    assert_int_equal(n, 10);
}

static void test_format_at_binary_and_cap(void **state)
{
    static const char at[] = "AT S +1.000000000 a\0b +0+0 1";
    static const char want[] = "HERD-AT AT S +1.000000000 a\0b +0+0 1\n";
    char buf[64];
    size_t need = sizeof want - 1;
    struct peer_msg m;

    (void)state;
    memset(buf, 'X', sizeof buf);
    assert_int_equal(peer_format_at(at, sizeof at - 1, buf, need), need);
    for (size_t i = 0; i < sizeof buf; i++)
        assert_int_equal(buf[i], 'X');        /* too small: nothing written */
    assert_int_equal(peer_format_at(at, sizeof at - 1, buf, need + 1), need);
    assert_memory_equal(buf, want, sizeof want);
    assert_int_equal(peer_parse(buf, need - 1, &m), PEER_MSG_AT);
    assert_span(m.at.id, "a\0b");
}

static void test_format_small_cap(void **state)
{
    char buf[8];

    (void)state;
    /* The needed length comes back; nothing is written past cap. */
    memset(buf, 'X', sizeof buf);
    assert_int_equal(peer_format_hello("Hill", "Jaquez", KID, buf, 4),
                     strlen("HERD-HELLO Hill Jaquez herd-v2 " KID "\n"));
    assert_int_equal(buf[4], 'X');
    assert_int_equal(peer_format_up(NULL, 0), 8);
    assert_int_equal(peer_format_synced(5, NULL, 0), 14);
    assert_int_equal(peer_format_ping(NULL, 0), 10);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_is_peer_line),
        cmocka_unit_test(test_hello),
        cmocka_unit_test(test_hello_v1),
        cmocka_unit_test(test_names_length),
        cmocka_unit_test(test_up),
        cmocka_unit_test(test_at),
        cmocka_unit_test(test_synced),
        cmocka_unit_test(test_ping),
        cmocka_unit_test(test_unknown),
        cmocka_unit_test(test_formatters),
        cmocka_unit_test(test_resume_and_mark),
        cmocka_unit_test(test_format_at_binary_and_cap),
        cmocka_unit_test(test_format_small_cap),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
