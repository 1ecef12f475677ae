/* journal_codec: frames, the journal header and snapshot images round-trip,
 * and every way a frame or a snapshot can be torn or corrupted is caught. */
#include "tests/unit/unit.h"

#include "common/journal_codec.h"

static const char *samples[] = {
    "x",
    "AT Hill +0.263873386 kiwi.cs.ucla.edu +34.068930-118.445127 "
    "1621464827.959498503",
    "AT Campbell -0.000000001 \x01\xff\x7f odd-id +0-0 0.1",
};

static unsigned char *frame_of(const void *payload, size_t len, size_t *size)
{
    unsigned char *out = malloc(JC_FRAME_HEAD + len);

    assert_non_null(out);
    *size = jc_frame_encode(payload, len, out);
    assert_int_equal(*size, JC_FRAME_HEAD + len);
    return out;
}

static void test_crc_known_answer(void **state)
{
    (void)state;
    assert_int_equal(jc_crc(0, "123456789", 9), 0xCBF43926u);
    /* Fed in pieces, the same. */
    assert_int_equal(jc_crc(jc_crc(0, "1234", 4), "56789", 5), 0xCBF43926u);
    assert_int_equal(jc_crc(0, "", 0), 0);
}

static void test_frame_round_trip(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++) {
        size_t len = strlen(samples[i]), size, got_len = 0;
        unsigned char *f = frame_of(samples[i], len, &size);
        const unsigned char *got = NULL;

        assert_int_equal(jc_frame_decode(f, size, &got, &got_len), 1);
        assert_int_equal(got_len, len);
        assert_memory_equal(got, samples[i], len);
        assert_ptr_equal(got, f + JC_FRAME_HEAD);
        free(f);
    }
}

/* The header alone is the encoded frame's first bytes. */
static void test_frame_head_alone(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++) {
        size_t len = strlen(samples[i]), size;
        unsigned char *f = frame_of(samples[i], len, &size);
        unsigned char head[JC_FRAME_HEAD];

        jc_frame_head(samples[i], len, head);
        assert_memory_equal(head, f, JC_FRAME_HEAD);
        free(f);
    }
}

static void test_frame_with_nul_bytes(void **state)
{
    const char payload[] = "a\0b\0\0c";
    size_t size, len;
    unsigned char *f = frame_of(payload, sizeof payload, &size);
    const unsigned char *got;

    (void)state;
    assert_int_equal(jc_frame_decode(f, size, &got, &len), 1);
    assert_int_equal(len, sizeof payload);
    assert_memory_equal(got, payload, sizeof payload);
    free(f);
}

static void test_largest_frame(void **state)
{
    size_t size, len;
    unsigned char *payload = malloc(JC_MAX_PAYLOAD), *f;
    const unsigned char *got;

    (void)state;
    assert_non_null(payload);
    for (size_t i = 0; i < JC_MAX_PAYLOAD; i++)
        payload[i] = (unsigned char)(i * 7);
    f = frame_of(payload, JC_MAX_PAYLOAD, &size);
    assert_int_equal(jc_frame_decode(f, size, &got, &len), 1);
    assert_int_equal(len, JC_MAX_PAYLOAD);
    assert_memory_equal(got, payload, JC_MAX_PAYLOAD);
    free(payload);
    free(f);
}

/* Frames back to back, as in a journal, then a torn last one. */
static void test_frame_sequence(void **state)
{
    unsigned char buf[4096];
    size_t used = 0, off = 0, len;
    const unsigned char *got;
    int n = 0;

    (void)state;
    for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++)
        used += jc_frame_encode(samples[i], strlen(samples[i]), buf + used);
    used += jc_frame_encode("tail", 4, buf + used) - 3;  /* torn */
    for (;;) {
        int rc = jc_frame_decode(buf + off, used - off, &got, &len);
        if (rc != 1) {
            assert_int_equal(rc, 0);
            break;
        }
        assert_memory_equal(got, samples[n], strlen(samples[n]));
        off += JC_FRAME_HEAD + len;
        n++;
    }
    assert_int_equal(n, 3);
    assert_int_equal(used - off, JC_FRAME_HEAD + 1);
}

/* Cut anywhere before its end, a frame is incomplete, never good. */
static void test_frame_torn_everywhere(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++) {
        size_t size, len;
        unsigned char *f = frame_of(samples[i], strlen(samples[i]), &size);
        const unsigned char *got;

        for (size_t cut = 0; cut < size; cut++)
            assert_int_equal(jc_frame_decode(f, cut, &got, &len), 0);
        free(f);
    }
}

/* Any one bit flipped anywhere, and the frame is not taken as good: a
 * bigger length reads as torn (0), anything else as corrupt (-1). */
static void test_frame_bit_flips(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++) {
        size_t size, len;
        unsigned char *f = frame_of(samples[i], strlen(samples[i]), &size);
        const unsigned char *got;

        for (size_t byte = 0; byte < size; byte++) {
            for (int bit = 0; bit < 8; bit++) {
                int rc;

                f[byte] ^= (unsigned char)(1u << bit);
                rc = jc_frame_decode(f, size, &got, &len);
                if (byte >= 4)
                    assert_int_equal(rc, -1);
                else
                    assert_int_not_equal(rc, 1);
                f[byte] ^= (unsigned char)(1u << bit);
            }
        }
        assert_int_equal(jc_frame_decode(f, size, &got, &len), 1);
        free(f);
    }
}

static void test_frame_bad_lengths(void **state)
{
    unsigned char zeros[64] = {0}, big[16], ones[64];
    const unsigned char *got;
    size_t len;

    (void)state;
    /* A zero-filled tail (a file extended but never written) is corrupt. */
    assert_int_equal(jc_frame_decode(zeros, sizeof zeros, &got, &len), -1);
    /* Past the cap: corrupt, however many bytes follow. */
    memset(big, 0, sizeof big);
    big[0] = 0x01;
    big[3] = 0x01;              /* 16 MiB + 1 */
    assert_int_equal(jc_frame_decode(big, sizeof big, &got, &len), -1);
    memset(ones, 0xff, sizeof ones);
    assert_int_equal(jc_frame_decode(ones, sizeof ones, &got, &len), -1);
}

/* Garbage appended after good frames: the good ones decode, the garbage
 * never does. */
static void test_frame_garbage(void **state)
{
    unsigned char buf[256];
    size_t used, len;
    const unsigned char *got;
    unsigned seed = 12345;

    (void)state;
    for (int round = 0; round < 2000; round++) {
        used = jc_frame_encode("AT a", 4, buf);
        for (size_t i = 0; i < 40; i++) {
            seed = seed * 1103515245u + 12345u;
            buf[used + i] = (unsigned char)(seed >> 16);
        }
        assert_int_equal(jc_frame_decode(buf, used + 40, &got, &len), 1);
        assert_int_not_equal(jc_frame_decode(buf + used, 40, &got, &len), 1);
    }
}

static void test_journal_head(void **state)
{
    unsigned char h[JC_JOURNAL_HEAD];

    (void)state;
    jc_journal_head(h);
    assert_memory_equal(h, "HERDJNL\x01", JC_JOURNAL_HEAD);
    assert_int_equal(jc_journal_head_check(h, sizeof h), 1);
    assert_int_equal(jc_journal_head_check(h, sizeof h + 0), 1);
    for (size_t cut = 0; cut < JC_JOURNAL_HEAD; cut++)
        assert_int_equal(jc_journal_head_check(h, cut), 0);
    h[7] = 0x02;                /* a later version */
    assert_int_equal(jc_journal_head_check(h, sizeof h), -1);
    assert_int_equal(jc_journal_head_check((const unsigned char *)"HERDSNAP",
                                           8), -1);
    assert_int_equal(jc_journal_head_check((const unsigned char *)"X", 1), -1);
}

/* A snapshot image of n records, as the node writes it. */
static unsigned char *snapshot_of(size_t n, size_t *size)
{
    size_t cap = JC_SNAPSHOT_HEAD + JC_SNAPSHOT_TRAIL + n * 64, used;
    unsigned char *p = malloc(cap);
    char line[64];

    assert_non_null(p);
    jc_snapshot_head(p);
    used = JC_SNAPSHOT_HEAD;
    for (size_t i = 0; i < n; i++) {
        int len = snprintf(line, sizeof line,
                           "AT Hill +0.000000001 client%zu +1+1 %zu.5", i, i);
        used += jc_frame_encode(line, (size_t)len, p + used);
    }
    jc_snapshot_trail(jc_crc(0, p, used), n, p + used);
    *size = used + JC_SNAPSHOT_TRAIL;
    return p;
}

static void test_snapshot_round_trip(void **state)
{
    size_t sizes[] = {0, 1, 3, 200};

    (void)state;
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        size_t size, off = JC_SNAPSHOT_HEAD, len, n = 0;
        unsigned char *p = snapshot_of(sizes[k], &size);
        const unsigned char *got;
        const char *why = NULL;
        uint64_t count = 99;

        assert_int_equal(jc_snapshot_check(p, size, &count, &why), 0);
        assert_int_equal(count, sizes[k]);
        while (off < size - JC_SNAPSHOT_TRAIL) {
            char want[64];
            int wl = snprintf(want, sizeof want,
                              "AT Hill +0.000000001 client%zu +1+1 %zu.5", n, n);
            assert_int_equal(jc_frame_decode(p + off, size - off, &got, &len), 1);
            assert_int_equal(len, (size_t)wl);
            assert_memory_equal(got, want, len);
            off += JC_FRAME_HEAD + len;
            n++;
        }
        assert_int_equal(n, sizes[k]);
        free(p);
    }
}

static void test_snapshot_torn_everywhere(void **state)
{
    size_t size;
    unsigned char *p = snapshot_of(5, &size);
    const char *why;
    uint64_t count;

    (void)state;
    for (size_t cut = 0; cut < size; cut++) {
        why = NULL;
        assert_int_equal(jc_snapshot_check(p, cut, &count, &why), -1);
        assert_non_null(why);
    }
    free(p);
}

static void test_snapshot_bit_flips(void **state)
{
    size_t size;
    unsigned char *p = snapshot_of(4, &size);
    const char *why;
    uint64_t count;

    (void)state;
    for (size_t byte = 0; byte < size; byte++) {
        for (int bit = 0; bit < 8; bit++) {
            p[byte] ^= (unsigned char)(1u << bit);
            why = NULL;
            assert_int_equal(jc_snapshot_check(p, size, &count, &why), -1);
            assert_non_null(why);
            p[byte] ^= (unsigned char)(1u << bit);
        }
    }
    assert_int_equal(jc_snapshot_check(p, size, &count, &why), 0);
    free(p);
}

static void test_snapshot_mistakes(void **state)
{
    size_t size;
    unsigned char *p = snapshot_of(3, &size), *q;
    const char *why;
    uint64_t count;

    (void)state;
    /* Extra bytes after the trailer. */
    q = malloc(size + 1);
    assert_non_null(q);
    memcpy(q, p, size);
    q[size] = 0;
    assert_int_equal(jc_snapshot_check(q, size + 1, &count, &why), -1);
    free(q);
    /* A trailer whose checksum is right but whose count is not. */
    jc_snapshot_trail(jc_crc(0, p, size - JC_SNAPSHOT_TRAIL), 4,
                      p + size - JC_SNAPSHOT_TRAIL);
    assert_int_equal(jc_snapshot_check(p, size, &count, &why), -1);
    assert_string_equal(why, "record count mismatch");
    /* A trailer whose checksum is wrong. */
    jc_snapshot_trail(0x12345678u, 3, p + size - JC_SNAPSHOT_TRAIL);
    assert_int_equal(jc_snapshot_check(p, size, &count, &why), -1);
    assert_string_equal(why, "checksum mismatch");
    /* A journal is not a snapshot. */
    jc_journal_head(p);
    assert_int_equal(jc_snapshot_check(p, size, &count, &why), -1);
    assert_string_equal(why, "not a snapshot (bad magic)");
    free(p);
    /* Another version. */
    p = snapshot_of(0, &size);
    p[8] = 2;
    assert_int_equal(jc_snapshot_check(p, size, &count, &why), -1);
    assert_string_equal(why, "unknown snapshot version");
    free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc_known_answer),
        cmocka_unit_test(test_frame_round_trip),
        cmocka_unit_test(test_frame_head_alone),
        cmocka_unit_test(test_frame_with_nul_bytes),
        cmocka_unit_test(test_largest_frame),
        cmocka_unit_test(test_frame_sequence),
        cmocka_unit_test(test_frame_torn_everywhere),
        cmocka_unit_test(test_frame_bit_flips),
        cmocka_unit_test(test_frame_bad_lengths),
        cmocka_unit_test(test_frame_garbage),
        cmocka_unit_test(test_journal_head),
        cmocka_unit_test(test_snapshot_round_trip),
        cmocka_unit_test(test_snapshot_torn_everywhere),
        cmocka_unit_test(test_snapshot_bit_flips),
        cmocka_unit_test(test_snapshot_mistakes),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
