/* buf: lines, partial lines, the hard cap, compaction. */
#include "tests/unit/unit.h"

#include "common/buf.h"

static void append_str(struct buf *b, const char *s, size_t n)
{
    assert_int_equal(buf_append(b, s, n), 0);
}

#define APPEND(b, s) append_str((b), LIT(s))

static void take(struct buf *b, const char *want, size_t want_len)
{
    const char *line = NULL;
    size_t len = 12345;

    assert_int_equal(buf_take_line(b, &line, &len), 1);
    assert_int_equal(len, want_len);
    assert_memory_equal(line, want, want_len);
}

#define TAKE(b, s) take((b), LIT(s))

static void no_line(struct buf *b)
{
    const char *line = NULL;
    size_t len = 0;

    assert_int_equal(buf_take_line(b, &line, &len), 0);
}

static void test_empty(void **state)
{
    struct buf b;

    (void)state;
    buf_init(&b, 1024);
    assert_int_equal(buf_len(&b), 0);
    assert_non_null(buf_head(&b));
    no_line(&b);
    buf_compact(&b);
    buf_consume(&b, 10);
    assert_int_equal(buf_len(&b), 0);
    assert_int_equal(buf_append(&b, "", 0), 0);
    assert_int_equal(buf_len(&b), 0);
    buf_free(&b);
    buf_free(&b);               /* twice is harmless */
}

static void test_lines(void **state)
{
    struct buf b;

    (void)state;
    buf_init(&b, 4096);
    APPEND(&b, "IAMAT a +0+0 1\nWHATSAT a 1 1\r\n\n\0x\0\nlast");
    TAKE(&b, "IAMAT a +0+0 1");
    TAKE(&b, "WHATSAT a 1 1\r");    /* only the "\n" is taken off */
    TAKE(&b, "");
    TAKE(&b, "\0x\0");
    no_line(&b);
    assert_int_equal(buf_len(&b), 4);
    assert_memory_equal(buf_head(&b), "last", 4);
    buf_free(&b);
}

static void test_partial_lines(void **state)
{
    static const char text[] = "IAMAT kiwi +34.068930-118.445127 1.5\n";
    struct buf b;

    (void)state;
    buf_init(&b, 4096);
    /* One byte at a time: nothing until the "\n" arrives. */
    for (size_t i = 0; i < sizeof text - 2; i++) {
        assert_int_equal(buf_append(&b, text + i, 1), 0);
        no_line(&b);
    }
    assert_int_equal(buf_append(&b, "\n", 1), 0);
    take(&b, text, sizeof text - 2);
    no_line(&b);
    assert_int_equal(buf_len(&b), 0);
    /* A line split across two reads, with another after it. */
    APPEND(&b, "WHATS");
    no_line(&b);
    APPEND(&b, "AT a 1 1\nIAM");
    TAKE(&b, "WHATSAT a 1 1");
    no_line(&b);
    APPEND(&b, "AT\n");
    TAKE(&b, "IAMAT");
    buf_free(&b);
}

static void test_cap(void **state)
{
    struct buf b;
    size_t room = 0;

    (void)state;
    buf_init(&b, 16);
    APPEND(&b, "0123456789abcdef");          /* exactly the cap */
    assert_int_equal(buf_len(&b), 16);
    errno = 0;
    assert_int_equal(buf_append(&b, "x", 1), -1);
    assert_int_equal(errno, ENOBUFS);
    assert_int_equal(buf_len(&b), 16);        /* unchanged */
    assert_memory_equal(buf_head(&b), "0123456789abcdef", 16);
    /* A line longer than the cap can never be taken: the caller sees the
     * buffer full with no line in it. */
    no_line(&b);
    /* Room again once bytes are consumed. */
    buf_consume(&b, 10);
    APPEND(&b, "ghijklmnop");
    assert_int_equal(buf_len(&b), 16);
    assert_memory_equal(buf_head(&b), "abcdefghijklmnop", 16);
    errno = 0;
    assert_null(buf_space(&b, 1, &room));
    assert_int_equal(errno, ENOBUFS);
    buf_free(&b);

    /* More than the cap at once, into an empty buffer. */
    buf_init(&b, 16);
    errno = 0;
    assert_int_equal(buf_append(&b, "0123456789abcdefg", 17), -1);
    assert_int_equal(errno, ENOBUFS);
    assert_int_equal(buf_len(&b), 0);
    errno = 0;
    assert_null(buf_space(&b, 17, &room));
    assert_int_equal(errno, ENOBUFS);
    assert_non_null(buf_space(&b, 16, &room));
    assert_int_equal(room, 16);
    buf_free(&b);
}

static void test_space_commit(void **state)
{
    struct buf b;
    size_t room = 0;
    char *p;

    (void)state;
    buf_init(&b, 1 << 20);
    p = buf_space(&b, 10, &room);
    assert_non_null(p);
    assert_true(room >= 10);
    memcpy(p, "abc\ndef\ngh", 10);
    buf_commit(&b, 10);
    assert_int_equal(buf_len(&b), 10);
    TAKE(&b, "abc");
    /* More room than asked may come back; commit only what was used. */
    p = buf_space(&b, 1, &room);
    assert_non_null(p);
    assert_true(room >= 1);
    memcpy(p, "i\n", 2 <= room ? 2 : 1);
    buf_commit(&b, 2);
    TAKE(&b, "def");
    TAKE(&b, "ghi");
    no_line(&b);
    buf_free(&b);
}

static void test_compaction(void **state)
{
    struct buf b;
    const char *before;
    size_t room;

    (void)state;
    buf_init(&b, 64);
    /* Fill to the cap, take two lines off the front: the free space is at
     * the front, and buf_space() compacts to reach it. */
    APPEND(&b, "0123456789\n0123456789\n0123456789\n0123456789\n01234567");
    assert_int_equal(buf_len(&b), 52);
    APPEND(&b, "89\n012345678");
    assert_int_equal(buf_len(&b), 64);
    TAKE(&b, "0123456789");
    TAKE(&b, "0123456789");
    assert_int_equal(buf_len(&b), 42);
    assert_non_null(buf_space(&b, 22, &room));
    assert_int_equal(room, 22);
    assert_int_equal(b.start, 0);             /* compacted */
    assert_memory_equal(buf_head(&b), "0123456789\n0123456789\n0123456789\n"
                                      "012345678", 42);
    APPEND(&b, "\nabcdefghijklmnopqrstu");
    assert_int_equal(buf_len(&b), 64);
    TAKE(&b, "0123456789");
    TAKE(&b, "0123456789");
    TAKE(&b, "0123456789");
    TAKE(&b, "012345678");
    no_line(&b);

    /* buf_compact() by hand keeps the unread bytes, moved to the front. */
    before = buf_head(&b);
    assert_true(before != b.data);
    buf_compact(&b);
    assert_ptr_equal(buf_head(&b), b.data);
    assert_int_equal(buf_len(&b), 21);
    assert_memory_equal(buf_head(&b), "abcdefghijklmnopqrstu", 21);
    buf_compact(&b);                          /* already compact */
    assert_int_equal(buf_len(&b), 21);
    /* Consuming everything resets the cursor. */
    buf_consume(&b, 21);
    assert_int_equal(buf_len(&b), 0);
    assert_int_equal(b.start, 0);
    assert_int_equal(b.end, 0);
    buf_free(&b);
}

static void test_consume(void **state)
{
    struct buf b;

    (void)state;
    buf_init(&b, 1024);
    APPEND(&b, "abcdef");
    buf_consume(&b, 2);
    assert_int_equal(buf_len(&b), 4);
    assert_memory_equal(buf_head(&b), "cdef", 4);
    buf_consume(&b, 0);
    assert_int_equal(buf_len(&b), 4);
    buf_consume(&b, 100);                     /* more than there is */
    assert_int_equal(buf_len(&b), 0);
    APPEND(&b, "x\n");
    TAKE(&b, "x");
    buf_free(&b);
}

static void test_growth(void **state)
{
    struct buf b;
    char line[1000];
    size_t lines = 0;

    (void)state;
    /* Many appends past the first allocation; all bytes survive. */
    buf_init(&b, 1 << 20);
    memset(line, 'q', sizeof line);
    line[sizeof line - 1] = '\n';
    for (int i = 0; i < 1000; i++) {
        line[0] = (char)('a' + i % 26);
        assert_int_equal(buf_append(&b, line, sizeof line), 0);
    }
    assert_int_equal(buf_len(&b), 1000 * sizeof line);
    assert_true(b.cap <= b.max);
    for (;;) {
        const char *p;
        size_t len;

        if (!buf_take_line(&b, &p, &len))
            break;
        assert_int_equal(len, sizeof line - 1);
        assert_int_equal(p[0], 'a' + lines % 26);
        assert_int_equal(p[len - 1], 'q');
        lines++;
    }
    assert_int_equal(lines, 1000);
    assert_int_equal(b.cap <= 1 << 20, 1);
    buf_free(&b);

    /* A cap below the first allocation size is honoured exactly. */
    buf_init(&b, 10);
    APPEND(&b, "0123456789");
    assert_true(b.cap <= 10);
    assert_int_equal(buf_append(&b, "x", 1), -1);
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_lines),
        cmocka_unit_test(test_partial_lines),
        cmocka_unit_test(test_cap),
        cmocka_unit_test(test_space_commit),
        cmocka_unit_test(test_compaction),
        cmocka_unit_test(test_consume),
        cmocka_unit_test(test_growth),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
